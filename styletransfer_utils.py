"""Neural style transfer as in Gatys, Ecker & Bethge (CVPR 2016): the course's code.

Every notebook in ``notebooks/`` imports this file. It holds what the series
teaches, in the order it teaches it, and reads top to bottom following the
data: every name is defined before it is used, except the last two sections'::

    image -> tensor -> VGG19 features -> Gram matrices and losses -> optimiser -> image

Sections
    1. Errors                          (used everywhere)
    2. Images                          (notebook 01)
    3. VGG19 features                  (notebook 02)
    4. The Gram matrix and the losses  (notebooks 03 and 04)
    5. The optimisation loop           (notebook 05)
    6. Settings and `stylize`          (notebooks 05 and 06)
    7. Going further                   (notebook 07: several styles, masks, colour control, pooling)
    8. Under the hood                  (what the notebooks do not teach: speed, memory, plumbing)

The tools that stand beside it (the command line, figures and live previews,
the slider panel, checkpoint utilities) are in ``styletransfer_tools/``. They
import this module; this module never imports them (only
``python styletransfer_utils.py``, run as a script, hands over to the command line).
"""

from __future__ import annotations

import contextlib
import ctypes
import dataclasses
import io
import math
import numbers
import os
import pickle
import socket
import time
import warnings
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from fractions import Fraction
from pathlib import Path
from types import MappingProxyType
from typing import Any, BinaryIO, NoReturn, Protocol

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image, ImageOps, UnidentifiedImageError
from torch import Tensor, nn
from torch.autograd.function import once_differentiable
from torch.utils.checkpoint import checkpoint
from torchvision.models import VGG19_Weights, vgg19
from torchvision.transforms import InterpolationMode, v2

ASSETS_DIR = Path(__file__).resolve().parent / "assets"
DEFAULT_CONTENT = ASSETS_DIR / "astronaut.jpg"
DEFAULT_STYLE = ASSETS_DIR / "stained_glass.png"

ImageSource = str | os.PathLike | Image.Image


# =============================================================================
# 1. Errors
# =============================================================================
# Every problem a user can cause ends in one of these errors, and each message says what went wrong *and what to do*.
# An error about one setting or parameter carries its ``name``: the message then begins with that name, and ``detail``
# is the rest, so a front-end can put its own word for the setting in its place (the command line its flag,
# styletransfer_tools/cli.py) without reading the text.


class StyleTransferError(Exception):
    """Base class of the project's own errors: the message is meant for a user. ``name``: the setting or
    parameter it is about, if one; ``str(error)`` is then ``f"{name} {detail}"``."""

    def __init__(self, detail: str, *, name: str | None = None) -> None:
        super().__init__(f"{name} {detail}" if name else detail)
        self.name, self.detail = name, detail


class ParameterError(StyleTransferError, ValueError):
    """A setting is out of range or unknown (a size of 0, a misspelt layer)."""


class ImageError(StyleTransferError, ValueError):
    """An input image is missing, unreadable, damaged or unusable."""


class WeightsError(StyleTransferError, RuntimeError):
    """The VGG19 weights cannot be had or are not the right file."""


class OutputError(StyleTransferError, OSError):
    """The result cannot be written where the user asked."""


class DeviceError(StyleTransferError, RuntimeError):
    """The requested device does not exist here, or ran out of memory."""


# =============================================================================
# 2. Images  (notebook 01)
# =============================================================================
# Images travel as PIL images until the last moment, then become float tensors of shape (1, 3, H, W) with values in
# [0, 1]. The ImageNet normalisation that VGG19 expects happens inside the forward pass (`iter_features`), so user
# code never juggles normalised pixels and clamping to [0, 1] is always meaningful.

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)

# Pillow refuses images over twice its own limit (about 179 Mpx); we are
# stricter, because a 50 Mpx photo is already 100 times more than style
# transfer can use, and we check the header before any pixel is decoded.
MAX_IMAGE_PIXELS = 50_000_000


def resize_longer_side(image: Image.Image, size: int) -> Image.Image:
    """Scale ``image`` so that its longer side is exactly ``size`` pixels, keeping the aspect ratio.

    Content and style images of any shape work: the style representation (Gram matrices) does not depend on where
    things are, only on which features occur together.
    """
    check_number("size", size, integer=True, at_least=1)
    width, height = image.size
    scale = size / max(width, height)
    new_size = (max(1, round(width * scale)), max(1, round(height * scale)))
    if new_size == image.size:
        return image.copy()
    return v2.functional.resize(image, [new_size[1], new_size[0]], interpolation=InterpolationMode.LANCZOS)


def load_image(file: str | os.PathLike | bytes | BinaryIO, max_size: int | None = None, background: str = "white", *,
               name: str | None = None) -> Image.Image:
    """Open an image file as an upright RGB picture, optionally shrunk so its longer side is ``max_size``.

    Phone photos store "which way is up" in their EXIF data rather than in the pixels, so the orientation
    is applied; grey, palette, transparent, CMYK and 16-bit images all become 8-bit RGB (`decode_image`).
    ``file``: a path, an image's bytes or a binary file object that can seek (the studio's upload), called
    ``name`` in messages (default: the path, or the file object's name). Introduced in notebook 01.
    """
    if max_size is not None:
        check_number("max_size", max_size, integer=True, at_least=1)
    file, name = image_file(file, name)
    image = decode_image(file, name, background)
    if max_size is not None and max(image.size) > max_size:
        image = resize_longer_side(image, max_size)
    return image


_PIL_TO_TENSOR = v2.Compose([v2.ToImage(), v2.ToDtype(torch.float32, scale=True)])


def image_to_tensor(image: Image.Image, device: str | torch.device | None = None) -> Tensor:
    """PIL image -> float tensor of shape (1, 3, H, W) with values in [0, 1] (torchvision's v2 transforms)."""
    if not isinstance(image, Image.Image):
        raise ImageError(f"Expected a PIL image, got {type(image).__name__}. Use load_image(path) first.")
    tensor = _PIL_TO_TENSOR(image.convert("RGB")).as_subclass(Tensor)  # a plain tensor, not a tv_tensors.Image
    return tensor.unsqueeze(0).to(device=device or "cpu").contiguous()


def tensor_to_image(tensor: Tensor) -> Image.Image:
    """Tensor (1, 3, H, W) or (3, H, W) in [0, 1] -> PIL image (values clamped)."""
    if tensor.dim() == 4:
        if tensor.shape[0] != 1:
            raise ParameterError(f"Expected one image, got a batch of {tensor.shape[0]}.")
        tensor = tensor[0]
    if tensor.dim() != 3 or tensor.shape[0] != 3:
        raise ParameterError(f"Expected a tensor of shape (1, 3, H, W) or (3, H, W), got {tuple(tensor.shape)}.")
    array = tensor.detach().float().clamp(0, 1).mul(255).round().byte().permute(1, 2, 0).cpu().numpy()
    return Image.fromarray(array)


def imagenet_normalize(image: Tensor) -> Tensor:
    """Shift and scale [0, 1] pixels the way VGG19 saw its ImageNet training data (``v2.Normalize``)."""
    return v2.functional.normalize(image, list(IMAGENET_MEAN), list(IMAGENET_STD))


def imagenet_denormalize(normalized: Tensor) -> Tensor:
    """Undo `imagenet_normalize`: normalising with mean −m/s and std 1/s is its exact inverse."""
    mean = [-m / s for m, s in zip(IMAGENET_MEAN, IMAGENET_STD, strict=True)]
    return v2.functional.normalize(normalized, mean, [1 / s for s in IMAGENET_STD])


# =============================================================================
# 3. VGG19 features  (notebook 02)
# =============================================================================
# Style transfer uses torchvision's `vgg19().features`, 37 modules numbered 0 ... 36; VGG19_LAYER_NAMES maps the
# paper's names to those indices. "convX_Y" is a convolution's output *before* its ReLU, "reluX_Y" after it. The
# paper's conv4_2 and conv1_1 ... conv5_1 were read after Caffe's in-place ReLUs: relu4_2 and relu1_1 ... relu5_1 in
# our names, and in our defaults.

VGG19_WEIGHTS = VGG19_Weights.IMAGENET1K_V1  # URL, hash, ImageNet class names, preprocessing
WEIGHTS_ENV = "STYLETRANSFER_VGG19_WEIGHTS"  # a path or URL of the checkpoint, for offline classrooms
CONTENT_LAYER = "relu4_2"
STYLE_LAYERS = ("relu1_1", "relu2_1", "relu3_1", "relu4_1", "relu5_1")


def vgg19_skeleton(classifier: bool = False) -> nn.Module:
    """torchvision's VGG19 on the meta device: its layout and shapes, with no memory and no weights.

    The real tensors are attached later, from a memory-mapped checkpoint, so
    the 548 MB file is never copied into memory.
    """
    with torch.device("meta"):
        network = vgg19()
    return network if classifier else network.features


def _vgg19_layer_names() -> tuple[str, ...]:
    names, block, conv = [], 1, 0
    for layer in vgg19_skeleton():
        if isinstance(layer, nn.Conv2d):
            conv += 1
            names.append(f"conv{block}_{conv}")
        elif isinstance(layer, nn.ReLU):
            names.append(f"relu{block}_{conv}")
        else:
            names.append(f"pool{block}")
            block, conv = block + 1, 0
    return tuple(names)


VGG19_LAYER_NAMES = _vgg19_layer_names()  # position i names torchvision's features[i]: conv1_1, relu1_1, ...
VGG19_LAYER_INDEX = {name: index for index, name in enumerate(VGG19_LAYER_NAMES)}
VGG19_CONV_LAYERS = tuple(name for name in VGG19_LAYER_NAMES if name.startswith("conv"))


def load_vgg19(
    weights: str | os.PathLike | None = "imagenet", device: str | torch.device | None = None,
    seed: int | None = None,
) -> nn.Sequential:
    """torchvision's VGG19 feature layers (``vgg19().features``), frozen, in eval mode, on ``device``.

    ``weights`` is ``"imagenet"`` (torchvision's checkpoint, see `read_checkpoint`), a checkpoint's path or URL,
    or ``"random"`` for untrained weights, which only tests and demonstrations want. The module's
    ``weights_source`` says which weights it holds. It never falls back to random weights by itself: if the real
    ones cannot be had, a `WeightsError` says how to get them. ``seed``: random weights drawn from that seed (else
    from torch's global one), so that a run with random weights repeats. Introduced in notebook 02.
    """
    features = vgg19_skeleton()
    if weights is None or weights == "random":
        random_weights(features, seed)
    else:
        state, features.weights_source = read_checkpoint(weights)
        features.load_state_dict(features_state_dict(state, features), assign=True)
    features.requires_grad_(False)  # we optimise the image, never the network
    return features.eval().to(choose_device(device))


def min_image_side(layers: Iterable[str]) -> int:
    """The smallest height/width that reaches all of ``layers``: a layer after k 2x2 poolings needs 2**k pixels."""
    deepest = max(VGG19_LAYER_INDEX[name] for name in check_layers(layers))
    return 2 ** sum(1 for name in VGG19_LAYER_NAMES[:deepest] if name.startswith("pool"))


def iter_features(model: nn.Module, image: Tensor, layers: Iterable[str],
                  autocast_dtype: torch.dtype | None = None) -> Iterator[tuple[str, Tensor]]:
    """The forward pass of `extract_features` (normalising, stopping at the deepest requested layer), one
    layer at a time: (name, activations) as each requested layer is reached, in the network's order.

    `StyleTransferLoss` computes each term as soon as its layer is reached (section 4). ``autocast_dtype``:
    run the layers in that precision (`choose_precision`); None leaves the caller's autocast, if any, as it is.
    """
    wanted = check_layers(layers)
    check_image_side(image, wanted)
    remaining, kept = set(wanted), None
    # channels-last ("NHWC"): the layout oneDNN and cuDNN convolutions prefer; every activation follows it
    x = imagenet_normalize(image).contiguous(memory_format=torch.channels_last)
    for name, layer in zip(VGG19_LAYER_NAMES, model, strict=False):
        with contextlib.nullcontext() if autocast_dtype is None else torch.autocast(x.device.type, autocast_dtype):
            x = run_layer(layer, x, kept)  # layer(x), keeping what we yielded intact (under the hood)
        if name in remaining:
            kept = x
            yield name, x
            remaining.discard(name)
            if not remaining:
                return


def extract_features(model: nn.Module, image: Tensor, layers: Iterable[str] = STYLE_LAYERS) -> dict[str, Tensor]:
    """Run ``image`` (values in [0, 1]) through VGG19 and keep the named activations.

    ImageNet normalisation happens here, so callers always work in [0, 1]. The forward pass stops at the deepest
    requested layer: for the paper's layers that skips conv5_2 ... pool5, which would cost time and give nothing.
    Introduced in notebook 02.
    """
    wanted = check_layers(layers)
    found = dict(iter_features(model, image, wanted))
    return {name: found[name] for name in wanted}


# =============================================================================
# 4. The Gram matrix and the losses  (notebooks 03 and 04)
# =============================================================================
# Every implementation normalises differently (so their weights cannot be
# copied between them). Ours, with N channels and M = H·W positions per layer:
#   * gram_matrix divides F Fᵀ by N·M, so the style target does not depend on
#     the image size;
#   * content_loss and style_loss are means of squared differences: the
#     paper's ½Σ(F−P)² is ours times N·M/2, its Σ(G−A)²/(4N²M²) ours times N²/4;
#   * our departure from the paper: `StyleTransferLoss` divides each term by
#     its target's energy, making it a relative error, ‖F−P‖²/‖P‖² and
#     ‖G−A‖²/‖A‖². Scaling every activation by a constant (another network or
#     checkpoint) then changes nothing, so α, β and the layer weights mean the
#     same for any weights. Notebook 04 derives it.


def gram_matrix(features: Tensor) -> Tensor:
    """Channel-by-channel correlations of feature maps, shape (B, C, C), divided by C·H·W.

    Entry (i, j) is how strongly channels i and j fire *together*, averaged over all positions: texture without
    layout. Computed in float32 even when the network ran in bfloat16, because the sums are long. Its gradient is
    written out (`GramMatrix`), so that no float32 copy of the features waits for the backward pass. Introduced in
    notebook 03.
    """
    return GramMatrix.apply(features)


def content_loss(features: Tensor, target: Tensor) -> Tensor:
    """Mean squared difference between feature maps: "does it show the same things?"."""
    return F.mse_loss(features.float(), target.float())


def style_terms(
    features: Mapping[str, Tensor], target_grams: Mapping[str, Tensor], layer_weights: Mapping[str, float] | None = None
) -> dict[str, Tensor]:
    """Each layer's w_l · mean squared difference of Gram matrices; by default w_l = 1 for every target layer."""
    weights = dict(layer_weights) if layer_weights is not None else {name: 1.0 for name in target_grams}
    return {name: weight * F.mse_loss(gram_matrix(features[name]), target_grams[name])
            for name, weight in weights.items() if weight}


def style_loss(
    features: Mapping[str, Tensor], target_grams: Mapping[str, Tensor], layer_weights: Mapping[str, float] | None = None
) -> Tensor:
    """Σ_l w_l · mean squared difference of Gram matrices: the sum of `style_terms`. Introduced in notebook 03."""
    return sum(style_terms(features, target_grams, layer_weights).values(), torch.zeros(()))


def total_variation_loss(image: Tensor) -> Tensor:
    """The mean squared difference between horizontal neighbours plus that between vertical ones; zero for a flat
    image.

    Not in the paper: a smoothness prior against the pixel-level noise the optimiser can leave behind.
    """
    across = image[..., :, 1:] - image[..., :, :-1]
    down = image[..., 1:, :] - image[..., :-1, :]
    # sum / count rather than mean(): a one-pixel-wide image has no neighbours and costs 0, not NaN
    return sum(d.float().pow(2).sum() / max(1, d.numel()) for d in (across, down))


def target_energy(target: Tensor) -> float:
    """mean(target²): what `StyleTransferLoss` divides each term by, making it a relative error.

    ``content_loss(F, P) / target_energy(P)`` is ‖F−P‖² / ‖P‖², which does not
    change when F and P are multiplied by the same constant. Introduced in notebook 04.
    """
    return target.float().pow(2).mean().item()


# The objective's terms, in the order they are reported, each with the setting that weighs it. Everything
# that reports losses (`Losses`, `LossHistory`, the plots, the studio, the run record) loops over these names:
# a new term is an entry here, its computation in `StyleTransferLoss.__call__` and its setting.
LOSS_TERMS = {"content": "content_weight", "style": "style_weight", "tv": "tv_weight"}  # α, β, TV weight


class TermsByName:
    """``losses.style`` as a short name for ``losses.terms["style"]``, for each term of `LOSS_TERMS`."""

    def __getattr__(self, name: str) -> Any:
        terms = self.__dict__.get("terms", {})
        if name in terms:
            return terms[name]
        raise AttributeError(f"{type(self).__name__} has no attribute {name!r}; its terms are {', '.join(terms)}.")


@dataclass(frozen=True)
class Losses(TermsByName):
    """One evaluation of the objective as plain numbers: each term of `LOSS_TERMS`, weighted
    (``losses.terms["style"]``, or ``losses.style`` for short), their sum ``total``, and ``style_layers``,
    each layer's part of the style term."""

    terms: Mapping[str, float]
    total: float
    style_layers: Mapping[str, float] = field(default_factory=dict)


@dataclass(frozen=True)
class ObjectivePlan:
    """What one call of `StyleTransferLoss` reads, made by its `set_weights`: each term's weight (by the names
    of `LOSS_TERMS`), each region's style layers with w_l / energy, whether content counts, the layers to reach."""

    weights: Mapping[str, float]
    style_scales: list[dict[str, float]]
    uses_content: bool
    layers: list[str]


class StyleTransferLoss:
    """The full objective  α·content + β·style + tv_weight·TV  for one photo and one or more style images.

    content = content_loss(F, P) / mean(P²) and style = Σ_l w_l · mse(G_l, A_l) / mean(A_l²): relative errors
    (see the note above). The targets and their energies are computed once, here; a call then costs one
    forward pass up to the deepest layer with a weight. A target with no energy (a layer all zeros for this
    image) is left out, with a warning. Introduced in notebook 04.

    ``masks`` (one per style image, 1 x 1 x H x W, 0 to 1): style i is matched only where mask i is white
    (`through_mask`), each region's term weighted by the share it covers, so that a pixel is pulled as hard
    as without masks; where no mask is white there is only content. Notebook 07.
    """

    def __init__(
        self,
        model: nn.Module,
        content: Tensor,
        style: Tensor | Sequence[Tensor],
        *,
        style_blend: Sequence[float] | None = None,
        content_weight: float = 1.0,
        style_weight: float = 1.0,
        style_layer_weights: Mapping[str, float] | None = None,
        tv_weight: float = 0.0,
        content_layer: str = CONTENT_LAYER,
        autocast_dtype: torch.dtype | None = None,
        masks: Sequence[Tensor] | None = None,
    ) -> None:
        self.model, self.autocast_dtype, self.content = model, autocast_dtype, content  # content: the photo
        self.content_layer = check_layers([content_layer])[0]
        named = check_style_layer_weights(style_layer_weights)
        styles = [style] if isinstance(style, Tensor) else list(style)
        check_masks(masks, len(styles), style_blend)
        with torch.no_grad():
            self.content_target = self.features(content, [self.content_layer])[self.content_layer].float()
            grams = [{name: gram_matrix(f) for name, f in self.features(one, list(named)).items()} for one in styles]
            if masks is None:  # several style images everywhere: each layer's target is the blend of their Grams
                blend = blend_weights(style_blend, len(styles))
                grams = [{name: sum(b * g[name] for b, g in zip(blend, grams, strict=True)) for name in named}]
        # one region per mask (one region without a mask): its targets, their energies, its mask
        self.region_targets, self.masks = grams, list(masks) if masks is not None else [None]
        self.region_energies = [{name: target_energy(t) for name, t in targets.items()} for targets in grams]
        self.style_targets = self.region_targets[0]  # the first region's (the only one without masks)
        self.content_energy = target_energy(self.content_target)
        self.version = 0
        self.set_weights(content_weight=content_weight, style_weight=style_weight, tv_weight=tv_weight,
                         style_layer_weights=named)
        warn_of_empty_targets(self, named)

    def set_weights(self, *, content_weight: float | None = None, style_weight: float | None = None,
                    tv_weight: float | None = None, style_layer_weights: Mapping[str, float] | None = None) -> None:
        """Change α, β, the TV weight or the layer weights (None: keep); the next call uses them. The
        studio calls this during a run, from another thread: the weights are swapped in as one object."""
        given = {"content": content_weight, "style": style_weight, "tv": tv_weight}
        current = self.plan.weights if hasattr(self, "plan") else {}
        weights = {term: current[term] if given[term] is None else given[term] for term in LOSS_TERMS}
        check_loss_weights(weights)
        layers = self.style_layer_weights if style_layer_weights is None else check_style_layer_weights(
            style_layer_weights, has_targets=self.style_targets)
        # each style layer's weight divided by its target's energy: the style terms are then relative errors
        scales = [{n: w / energies[n] for n, w in layers.items() if w and weights["style"] and energies[n] > 0}
                  for energies in self.region_energies]
        uses_content = bool(weights["content"]) and self.content_energy > 0
        self.style_layer_weights = layers
        style_layers = [name for region in scales for name in region]
        reached = list(dict.fromkeys(([self.content_layer] if uses_content else []) + style_layers))
        self.plan = ObjectivePlan(weights, scales, uses_content, reached)  # what __call__ reads, in one piece
        self.version += 1

    # The weights in use, read from the plan (its one copy): α, β, the TV weight, w_l / energy per style layer
    # (the first region's), and the layers a call reaches.
    content_weight = property(lambda self: self.plan.weights["content"])
    style_weight = property(lambda self: self.plan.weights["style"])
    tv_weight = property(lambda self: self.plan.weights["tv"])
    style_scales = property(lambda self: self.plan.style_scales[0])
    layers = property(lambda self: self.plan.layers)

    def features(self, image: Tensor, layers: Sequence[str] | None = None) -> dict[str, Tensor]:
        """`extract_features` (by default of the layers in use), in the precision asked for (`choose_precision`)."""
        layers = self.layers if layers is None else layers
        return dict(iter_features(self.model, image, layers, self.autocast_dtype))

    def __call__(self, image: Tensor) -> tuple[Tensor, Losses]:
        """(the total as a tensor to backpropagate, the weighted terms as plain numbers).

        Each term is computed as soon as the forward pass reaches its layer. The backward pass runs the most
        recent operations first, so a term's gradient is then made when the backward pass is back at its layer,
        not at its start and held throughout (README, High resolution).
        """
        plan = self.plan
        weight = plan.weights
        zero = image.new_zeros((), dtype=torch.float32)
        terms, style_layers = dict.fromkeys(LOSS_TERMS, zero), {}
        reached = iter_features(self.model, image, plan.layers, self.autocast_dtype) if plan.layers else []
        for name, features in reached:
            if plan.uses_content and name == self.content_layer:
                terms["content"] = weight["content"] * content_loss(features, self.content_target) / self.content_energy
            for mask, targets, region_scales in zip(self.masks, self.region_targets, plan.style_scales, strict=True):
                scale, seen = region_scales.get(name, 0.0), features  # scale: w_l / target energy (set_weights)
                if scale and mask is not None:  # the region's features, its term weighted by the share it covers
                    seen, share = through_mask(features, mask)
                    scale *= share
                if scale:
                    term = style_terms({name: seen}, targets, {name: scale})[name]
                    style_layers[name] = style_layers.get(name, zero) + weight["style"] * term
        terms["style"] = sum(style_layers.values(), zero)
        if weight["tv"]:
            terms["tv"] = weight["tv"] * total_variation_loss(image)
        total = sum(terms.values(), zero)
        values = torch.stack([*terms.values(), *style_layers.values(), total]).detach().tolist()
        first = len(terms)
        return total, Losses(dict(zip(terms, values[:first], strict=True)), values[-1],
                             dict(zip(style_layers, values[first:-1], strict=True)))


# =============================================================================
# 5. The optimisation loop  (notebook 05)
# =============================================================================
# The loop knows nothing about figures, widgets or progress bars: it calls a `callback(step, image, losses)` after
# every step and stops when `stop.is_set()`. So the same loop runs in a notebook, a test, a background thread and the
# command line.

OPTIMIZERS = ("lbfgs", "adam")
DEFAULT_LR = {"adam": 0.02, "lbfgs": 1.0}  # Adam: pixel units (0-1 scale); L-BFGS: times its own step
LBFGS_HISTORY = 10  # pairs of (step, gradient change) kept (README, Performance: why 10)
PRECISIONS = ("auto", "fp32", "bf16")
@dataclass
class LossHistory(TermsByName):
    """Every step's weighted terms (by the names of `LOSS_TERMS`) and total, ready to plot
    (``plt.plot(history.total)``, ``history.terms["style"]`` or ``history.style`` for short)."""

    terms: dict[str, list[float]] = field(default_factory=lambda: {term: [] for term in LOSS_TERMS})
    total: list[float] = field(default_factory=list)
    size: list[int] = field(default_factory=list)  # longer side of the image at that step

    def append(self, losses: Losses, size: int) -> None:
        for term, value in losses.terms.items():
            self.terms.setdefault(term, []).append(value)
        self.total.append(losses.total)
        self.size.append(size)

    def __len__(self) -> int:
        return len(self.total)

    def record(self) -> dict[str, list]:
        """As JSON-ready lists: one per term, the total and the size."""
        return {**self.terms, "total": self.total, "size": self.size}


MAX_PIXEL_STEP = 0.1  # the most one L-BFGS step may move any pixel, on the 0-1 scale (see PixelLBFGS)


def new_optimizer(name: str, image: Tensor, lr: float) -> torch.optim.Optimizer:
    """Adam or L-BFGS (`PixelLBFGS`) over the pixels of ``image``; one ``.step(closure)`` evaluates the
    objective once (a line search would evaluate every accepted point twice)."""
    if name not in OPTIMIZERS:
        raise ParameterError(f"must be one of {', '.join(OPTIMIZERS)}, got {name!r}.", name="optimizer")
    if name == "adam":
        return torch.optim.Adam([image], lr=lr)
    return PixelLBFGS(image, lr=lr)


class StopFlag(Protocol):
    def is_set(self) -> bool: ...


Callback = Callable[[int, Tensor, Losses], Any]


def too_large(lr: float) -> str:
    """What to do when the loss or the image stops being a finite number."""
    return f"the learning rate ({lr}) is probably too large. Try a smaller lr (for example half)."


@dataclass
class OptimizationRun:
    """What `optimize` returns: the best image it saw, when, its loss, why it ended early (or None), and
    the optimiser's state at the end (to resume from)."""

    best: Tensor
    best_step: int
    best_loss: float
    stopped: str | None
    history: LossHistory
    optimizer_state: dict | None = None


def optimize(objective: StyleTransferLoss, image: Tensor, *, steps: int, optimizer: str = "lbfgs",
             lr: float | None = None, callback: Callback | None = None, stop: StopFlag | None = None,
             first_step: int = 0, history: LossHistory | None = None,
             optimizer_state: dict | None = None) -> OptimizationRun:
    """The loop: evaluate, backpropagate to the pixels, step, clamp to [0, 1], keep the best image. Notebook 05.

    ``image`` (requires_grad) changes in place. ``callback(step, image, losses)`` runs after every step;
    ``stop.is_set()``, Ctrl-C and a loss that blows up end the loop, keeping the best image. Beyond
    notebook 05's loop: L-BFGS restarts when it finds no descent direction or the objective's weights
    change (the best image is then counted afresh); ``optimizer_state`` resumes an earlier run's optimiser.
    """
    lr = DEFAULT_LR[optimizer] if lr is None and optimizer in DEFAULT_LR else lr
    opt = new_optimizer(optimizer, image, lr)
    if optimizer_state is not None:
        opt.load_state_dict(optimizer_state)
    history = LossHistory() if history is None else history
    best, best_step, best_loss, stopped = image.detach().clone(), first_step, math.inf, None
    version, longer_side = getattr(objective, "version", 0), max(image.shape[-2:])
    evaluated: list[Losses] = []  # this step's evaluations; both optimisers evaluate the step's start first

    def closure() -> Tensor:
        opt.zero_grad(set_to_none=True)
        total, losses = objective(image)
        evaluated.append(losses)
        if math.isfinite(losses.total):
            total.backward()
        return total

    try:
        for step in range(first_step, first_step + steps):
            if stop is not None and stop.is_set():
                stopped = "stopped"
                break
            if getattr(objective, "version", 0) != version:  # its weights were changed (the studio's sliders)
                version, best_loss = objective.version, math.inf  # losses of other weights do not compare
                if optimizer == "lbfgs":
                    opt = new_optimizer(optimizer, image, lr)  # its curvature estimate was of the old objective
            before = image.detach().clone()
            evaluated.clear()
            opt.step(closure)
            losses = evaluated[0]  # the loss of `before`, the image this step started from
            if not math.isfinite(losses.total):
                stopped = f"the loss became {losses.total} at step {step}: {too_large(lr)}"
                break
            if optimizer == "lbfgs" and torch.equal(image.detach(), before):
                opt = new_optimizer(optimizer, image, lr)  # no descent direction: start afresh from the gradient
            history.append(losses, longer_side)
            if losses.total < best_loss:
                best, best_step, best_loss = before, step, losses.total
            with torch.no_grad():
                image.clamp_(0, 1)
            if not torch.isfinite(image).all():
                stopped = f"the image became NaN at step {step}: {too_large(lr)}"
                break
            release_freed_memory(image)
            if callback is not None:
                callback(step, image.detach(), losses)
    except KeyboardInterrupt:
        stopped = "interrupted"
    return OptimizationRun(best, best_step, best_loss, stopped, history, opt.state_dict())


# =============================================================================
# 6. Settings and `stylize`  (notebooks 05 and 06)
# =============================================================================
# Every setting of a run is declared once, in `Settings`: its default, its range or choices, its unit and a line of
# help. `stylize` validates through it; the command line builds its flags, the panel its controls and the run record
# its fields from `dataclasses.fields(Settings)`.


# "luminance", "histogram": Gatys et al. 2017, "Controlling Perceptual Factors"; "content": jcjohnson's -original_colors
COLORS = ("style", "content", "luminance", "histogram")
POOLINGS = ("max", "avg")  # VGG19's pooling layers: as torchvision trained them, or as the paper used them


def setting(default: Any, kind: type, help: str, *, unit: str = "", at_least: float | None = None,
            above: bool = False, choices: Sequence[str] | None = None, optional: bool = False) -> Any:
    """A field of `Settings`. ``optional``: None is allowed too."""
    metadata = {"kind": kind, "help": help, "unit": unit, "at_least": at_least, "above": above,
                "choices": tuple(choices) if choices else None, "optional": optional or default is None}
    return field(default=default, metadata=metadata)


@dataclass(frozen=True)
class Settings:
    """Every setting of a `stylize` run, with the project's defaults (chosen as the README's Performance says)."""

    size: int = setting(384, int, "longer side of the result", unit="px", at_least=1)
    steps: int = setting(80, int, "optimisation steps, over all scales", at_least=1)
    content_weight: float = setting(1.0, float, "α, weight of the content term (a relative error)", at_least=0)
    style_weight: float = setting(1.0, float, "β, weight of the style term (a sum of relative errors)", at_least=0)
    style_layer_weights: Mapping[str, float] | None = setting(
        None, dict, "weight w_l of each style layer; None: relu1_1 ... relu5_1, 1 each")
    style_blend: tuple[float, ...] | None = setting(
        None, tuple, "how much each style image counts, when there are several (normalised to sum 1); None: "
        "equally")
    style_scale: float = setting(1.0, float, "the style image's longer side, relative to the result's: 0.5 "
                                 "makes its patterns half as large in the result", at_least=0, above=True)
    tv_weight: float = setting(0.0, float, "weight of the total-variation (smoothness) term, not in the paper",
                               at_least=0)
    content_layer: str = setting(CONTENT_LAYER, str, "layer whose activations define content",
                                 choices=VGG19_LAYER_NAMES)
    optimizer: str = setting("lbfgs", str, "the optimiser; L-BFGS reached lower objectives on trained features",
                             choices=OPTIMIZERS)
    lr: float | None = setting(None, float, "step size; None: 1.0 for L-BFGS (times its own step), 0.02 for Adam "
                               "(pixel units on a 0-1 scale)", at_least=0, above=True)
    init: str = setting("content", str, "where to start: 'content', 'noise' or an image path")
    seed: int | None = setting(0, int, "seed of the noise, when init is 'noise'", optional=True)
    scales: int | None = setting(None, int, "resolutions of the coarse-to-fine schedule; None: from size, "
                                 "1: full size only", at_least=1)
    color: str = setting("style", str, "colours of the result: style (the paper's), content (the photo's, put "
                         "back afterwards), luminance (only luminance is transferred), histogram (the style image "
                         "recoloured to the photo's colours first)", choices=COLORS)
    pooling: str = setting("max", str, "VGG19's pooling: max, as torchvision trained it, or avg, as in the paper",
                           choices=POOLINGS)
    precision: str = setting("auto", str, "network precision; auto: bf16 where the hardware has it natively",
                             choices=PRECISIONS)
    device: str = setting("auto", str, "auto, cpu, cuda, cuda:N or mps", optional=True)
    weights: str = setting("imagenet", str, "'imagenet', 'random', or a checkpoint's path or URL")

    def __post_init__(self) -> None:
        """Check every setting before any work, naming the one that is wrong (`check_settings`)."""
        check_settings(self)

    def replace(self, **changes: Any) -> Settings:
        """A copy with some settings changed (and checked); an unknown name is refused."""
        unknown = set(changes) - {f.name for f in dataclasses.fields(self)}
        if unknown:
            raise ParameterError(f"Unknown setting(s) {sorted(unknown)}. Settings are: "
                                 f"{', '.join(f.name for f in dataclasses.fields(self))}.")
        return dataclasses.replace(self, **changes)

    def record(self) -> dict[str, Any]:
        """The settings as JSON-ready values (an image given as init: its description)."""
        return {f.name: json_value(getattr(self, f.name)) for f in dataclasses.fields(self)}


@dataclass
class StyleTransferResult:
    """What `stylize` returns.

    ``best_image`` has the lowest loss seen at the last scale reached, computed at ``best_size`` (smaller than
    ``size``, and soft, if the run stopped during a coarse scale). ``stopped`` says why the run ended early, or is
    None. ``history`` holds every step of every scale (``history.size`` says which).
    """

    image: Image.Image
    best_image: Image.Image
    history: LossHistory
    best_step: int
    best_loss: float
    steps_run: int
    stopped: str | None
    seconds: float
    weights_source: str
    device: str
    precision: str
    size: int
    best_size: int
    settings: Settings
    resume_state: dict | None = None  # the last image (a tensor) and the optimiser's state: `stylize(resume=...)`

    def record(self) -> dict[str, Any]:
        """Everything needed to know how this picture was made: settings, weights, timing, loss history."""
        facts = {name: getattr(self, name) for name in ("best_step", "best_loss", "steps_run", "stopped", "seconds",
                                                        "weights_source", "device", "precision", "size", "best_size")}
        facts["best_loss"] = self.best_loss if math.isfinite(self.best_loss) else None  # JSON has no infinity
        return {"settings": self.settings.record(), **facts, "history": self.history.record()}


COARSE_STEP_RATIO = 0.5  # each coarser scale runs half the steps of the next finer one (measured: see README)


def shorter_side(shape: tuple[float, float], longer_side: int) -> int:
    """The shorter side of ``shape`` scaled to ``longer_side``, rounded as `resize_longer_side` does."""
    return max(1, round(min(shape) * longer_side / max(shape)))


def scale_schedule(shape: tuple[float, float], steps: int, scales: int | None = None,
                   min_side: int = 16) -> list[tuple[int, int]]:
    """The coarse-to-fine plan for an image of ``shape``: [(longer side, steps), ...] ending at full size,
    ``max(shape)`` px (the shorter side may be fractional: its ratio is what counts).

    A step at half the size costs a quarter as much, and the large shapes settle there (Gatys et al. 2017). Each
    resolution is half the next; ``scales=None`` halves while the coarsest longer side stays at least 96 px and
    the shorter side ``min_side`` (384 px: 96, 192, 384). Each coarser scale gets half the steps of the next finer
    one (80 steps: 11 + 22 + 47), which reached the lowest objective for the time on the stand-in features.
    """
    size = round(max(shape))
    if scales is None:
        scales = 1
        while size / 2**scales >= 96 and shorter_side(shape, round(size / 2**scales)) >= min_side:
            scales += 1
    check_number("scales", scales, integer=True, at_least=1)
    sizes = [max(1, round(size / 2**k)) for k in reversed(range(min(scales, steps)))]
    check_coarsest_side(shape, sizes[0], min_side)
    shares = [Fraction(COARSE_STEP_RATIO) ** k for k in reversed(range(len(sizes)))]  # exact, for any steps
    counts = [max(1, int(steps * share / sum(shares))) for share in shares]
    while sum(counts) > steps:
        counts[counts.index(max(counts))] -= 1
    counts[-1] += steps - sum(counts)
    return list(zip(sizes, counts, strict=True))


def resize_tensor(image: Tensor, shape: tuple[int, int] | torch.Size) -> Tensor:
    """Bicubic resize of an image tensor (antialiased when shrinking), kept in [0, 1]."""
    if tuple(image.shape[-2:]) == tuple(shape):
        return image
    resized = v2.functional.resize(image.float(), list(shape), interpolation=InterpolationMode.BICUBIC, antialias=True)
    return resized.clamp(0, 1)


def upscale(image: Tensor, content: Tensor) -> Tensor:
    """Carry the picture up to the next resolution, with the photo's fine detail added.

    Adding what the photo has at the new size and not at the old one, content − enlarge(shrink(content)), starts
    the finer scale closer to the photo than enlarging alone (README, Performance, gives what it gained).
    """
    shape = content.shape[-2:]
    detail = content - resize_tensor(resize_tensor(content, image.shape[-2:]), shape)
    return (resize_tensor(image, shape) + detail).clamp(0, 1)


def initial_image(init: str | ImageSource, content: Tensor, seed: int | None) -> Tensor:
    """Where the optimisation starts: the content photo, uniform noise (seeded), or a given image."""
    if isinstance(init, str) and init == "content":
        return content.clone()
    if isinstance(init, str) and init == "noise":
        noise = torch.rand(content.shape, generator=torch.Generator().manual_seed(seed or 0))
        return noise.to(content.device)
    start = as_image(init, "init").resize((content.shape[-1], content.shape[-2]), Image.Resampling.LANCZOS)
    return image_to_tensor(start, content.device)


@dataclass
class RunImages:
    """What `prepare_images` makes: the pictures a run works from, the photo at the result's size."""

    photo: Image.Image  # the content photo at the result's size, in its own colours
    content: Image.Image  # what the run matches: the photo, or its luminance (color="luminance")
    styles: list[Image.Image]  # recoloured to the photo's colours first for color="histogram" and "luminance"
    masks: list[Image.Image] | None  # grey, one per style image


def prepare_images(content: ImageSource, style: ImageSource | Sequence[ImageSource], settings: Settings,
                   masks: Sequence[ImageSource] | None = None) -> RunImages:
    """Step 1 of `stylize`: open the pictures, check that they fit together, bring the photo to the
    result's size and apply the colour control (Gatys et al. 2017) the run is to see."""
    s = settings
    photo = as_image(content, "content")
    one_style = isinstance(style, (str, os.PathLike, Image.Image))
    styles = [as_image(one, "style") for one in ([style] if one_style else style)]
    if not styles:
        raise ParameterError("is an empty list: give at least one style image.", name="style")
    blend_weights(s.style_blend, len(styles))
    masks = None if masks is None else open_masks(masks, len(styles), s)
    warn_if_enlarged(photo, styles, s.size)
    photo = resize_longer_side(photo, s.size)
    if s.color in ("luminance", "histogram"):
        styles = [match_colors(one, photo, luminance_only=s.color == "luminance") for one in styles]
    seen = photo.convert("L").convert("RGB") if s.color == "luminance" else photo
    return RunImages(photo, seen, styles, masks)


def plan_scales(images: RunImages, settings: Settings) -> list[tuple[int, int]]:
    """Step 2: the coarse-to-fine schedule [(longer side, steps), ...] (`scale_schedule`), its coarsest
    scale still large enough for the deepest layer in use, on the most elongated of the images."""
    s = settings
    layer_weights = check_style_layer_weights(s.style_layer_weights)
    used = [s.content_layer] * bool(s.content_weight) + [n for n, w in layer_weights.items() if w and s.style_weight]
    shapes = [images.content.size, *(one.size for one in images.styles)]
    elongated = min(shapes, key=lambda shape: min(shape) / max(shape))
    needed = min_image_side(used or ["conv1_1"])
    schedule = scale_schedule((s.size, s.size * min(elongated) / max(elongated)), s.steps, s.scales, needed)
    check_style_scale(images, settings, schedule[0][0], needed)
    return schedule


def scale_objective(model: nn.Module, images: RunImages, settings: Settings, size: int,
                    autocast_dtype: torch.dtype | None = None) -> StyleTransferLoss:
    """Step 3: the objective at one scale: the photo and the style images at this size (the style's times
    ``style_scale``), and their targets. Its ``content`` is the photo at this size."""
    s = settings
    device = next(model.parameters()).device
    content = image_to_tensor(resize_longer_side(images.content, size), device)
    style_side = max(1, round(size * s.style_scale))
    styles = [image_to_tensor(resize_longer_side(one, style_side), device) for one in images.styles]
    masks = None if images.masks is None else [mask_tensor(one, content) for one in images.masks]
    return StyleTransferLoss(
        model, content, styles, style_blend=s.style_blend, content_weight=s.content_weight,
        style_weight=s.style_weight, style_layer_weights=check_style_layer_weights(s.style_layer_weights),
        tv_weight=s.tv_weight, content_layer=s.content_layer, autocast_dtype=autocast_dtype, masks=masks)


def starting_image(previous: Tensor | None, objective: StyleTransferLoss, settings: Settings) -> Tensor:
    """Step 4: where a scale starts: ``settings.init`` at the first scale, then the previous scale's picture
    enlarged with the photo's detail (`upscale`). A fresh leaf tensor, ready for the optimiser."""
    content = objective.content
    image = initial_image(settings.init, content, settings.seed) if previous is None else upscale(previous, content)
    return image.detach().contiguous().requires_grad_(True)  # L-BFGS flattens it with .view(-1)


def run_scale(objective: StyleTransferLoss, image: Tensor, settings: Settings, steps: int, history: LossHistory,
              *, callback: Callback | None = None, stop: StopFlag | None = None,
              optimizer_state: dict | None = None) -> OptimizationRun:
    """Step 5: `optimize` at one scale, its steps counted on from the scales before (in ``history``). What other
    work freed goes back to the system before it, and what it freed after it (`release_freed_memory`)."""
    release_freed_memory(image, between_runs=True)
    run = optimize(objective, image, steps=steps, optimizer=settings.optimizer, lr=settings.lr, callback=callback,
                   stop=stop, first_step=len(history), history=history, optimizer_state=optimizer_state)
    release_freed_memory(image, between_runs=True)
    return run


def build_result(images: RunImages, image: Tensor, runs: list[tuple[int, OptimizationRun]], history: LossHistory,
                 settings: Settings, model: nn.Module, device: torch.device, autocast_dtype: torch.dtype | None,
                 started: float) -> StyleTransferResult:
    """Step 6: the result, from the scales run (``runs``: [(longer side, run), ...]). Its best image is
    the last scale's, or the scale's before when the last was stopped before its first step; both are
    enlarged to the result's size and given the colours ``settings.color`` asks for."""
    (size, run), earlier = runs[-1], runs[-2:-1]
    if earlier and run.best_loss == math.inf:
        size, run = earlier[0][0], dataclasses.replace(earlier[0][1], stopped=run.stopped, optimizer_state=None)
    shape = (images.photo.height, images.photo.width)

    def picture(tensor: Tensor) -> Image.Image:
        made = tensor_to_image(resize_tensor(tensor.detach(), shape))
        return keep_colors(made, images.photo) if settings.color in ("content", "luminance") else made

    return StyleTransferResult(
        image=picture(image), best_image=picture(run.best), history=history, best_step=run.best_step,
        best_loss=run.best_loss, steps_run=len(history), stopped=run.stopped,
        seconds=time.perf_counter() - started,
        weights_source=getattr(model, "weights_source", "weights supplied by the caller"),
        device=str(device), precision="fp32" if autocast_dtype is None else str(autocast_dtype).removeprefix("torch."),
        size=max(images.photo.size), best_size=size, settings=settings,
        resume_state={"image": image.detach().clamp(0, 1).cpu(), "optimizer": settings.optimizer,
                      "state": run.optimizer_state, "photo": photo_fingerprint(images.photo)},
    )


def stylize(
    content: ImageSource,
    style: ImageSource | Sequence[ImageSource],
    settings: Settings | None = None,
    *,
    model: nn.Module | None = None,
    callback: Callback | None = None,
    stop: StopFlag | None = None,
    resume: StyleTransferResult | dict | None = None,
    masks: Sequence[ImageSource] | None = None,
    **changes: Any,
) -> StyleTransferResult:
    """Paint ``content`` in the style of ``style`` by optimising the pixels, coarse to fine. Notebook 05.

    ``content``, ``style``: paths or PIL images, any sizes; several styles are blended (``style_blend``) or each
    painted where its mask is white (``masks``, notebook 07). Settings: ``settings`` (default `Settings()`) with
    keyword changes, ``stylize(photo, painting, style_weight=10)``. ``model``: from `load_vgg19`, else loaded from
    ``settings.weights``. ``callback``, ``stop``: as in `optimize`; Ctrl-C, ``stop`` and a diverging loss keep the
    best image so far. ``resume``: a result (or its ``resume_state``) to go on from for ``steps`` more steps. The
    steps are the functions above, in order (the studio calls them itself, to keep each scale's objective); a run
    repeats exactly on the same machine, device and precision.
    """
    settings = (settings or Settings()).replace(**changes)
    started, device = time.perf_counter(), run_device(model, settings)
    autocast_dtype = choose_precision(settings.precision, device)
    images = prepare_images(content, style, settings, masks)
    schedule, image, optimizer_state = plan_scales(images, settings), None, None
    if resume is not None:
        schedule, image, optimizer_state = resume_from(resume, images, settings, device)
    model = with_pooling((load_vgg19(settings.weights, device) if model is None else model).to(device),
                         settings.pooling)
    history, runs = LossHistory(), []
    try:
        for size, steps in schedule:
            forget_optimizer_state(runs)
            objective = scale_objective(model, images, settings, size, autocast_dtype)
            image = starting_image(image, objective, settings)
            run = run_scale(objective, image, settings, steps, history, callback=callback, stop=stop,
                            optimizer_state=optimizer_state)
            runs.append((size, run))
            optimizer_state = None
            if run.stopped is not None:
                break
    except KeyboardInterrupt:  # between scales (inside one, `optimize` handles it): keep what we have
        if not runs:
            raise
        runs[-1] = (runs[-1][0], dataclasses.replace(runs[-1][1], stopped="interrupted", optimizer_state=None))
    except (torch.OutOfMemoryError, MemoryError, RuntimeError) as error:  # re-raised: out of memory with advice
        reraise_out_of_memory(error, settings, device)
    return build_result(images, image, runs, history, settings, model, device, autocast_dtype, started)


# =============================================================================
# 7. Going further  (notebook 07)
# =============================================================================
# What a setting beyond the paper's own method asks for: several style images, masks (a style for each
# region), colour control (Gatys et al. 2017) and the paper's average pooling. The first reading, sections
# 1 to 6, calls these by name and can skip them; notebook 07 teaches them.


def blend_weights(blend: Sequence[float] | None, count: int) -> list[float]:
    """How much each of ``count`` style images counts, summing to 1; None: equally."""
    blend = [1.0] * count if blend is None else list(blend)
    if len(blend) != count:
        raise ParameterError(f"has {len(blend)} weight(s) for {count} style image(s): give one each.",
                             name="style_blend")
    for weight in blend:
        check_number("style_blend", weight)
    if not max(blend, default=0):
        raise ParameterError("weights are all zero: give at least one style image a weight.", name="style_blend")
    shares = [weight / max(blend) for weight in blend]  # each at most 1: their sum cannot overflow
    return [share / sum(shares) for share in shares]


def mask_tensor(mask: Image.Image, content: Tensor) -> Tensor:
    """A grey mask image as a 1 x 1 x H x W tensor of 0 to 1, stretched to the content tensor's shape."""
    height, width = content.shape[-2:]
    return image_to_tensor(mask.resize((width, height), Image.Resampling.BILINEAR), content.device)[:, :1]


def through_mask(features: Tensor, mask: Tensor) -> tuple[Tensor, float]:
    """``features`` seen through ``mask`` (1 x 1 x H x W, 0 to 1, any resolution), and the share of the
    picture the mask covers at this layer's resolution: the mean of the mask squared (for a black-and-white
    mask, the white share exactly).

    The masked maps are divided by √share, so that `gram_matrix` of them is an average over the region
    only, comparable with a whole style image's Gram matrix. Spatial control (Gatys et al. 2017): a
    style for each region. Introduced in notebook 07.
    """
    small = F.interpolate(mask.float(), size=features.shape[-2:], mode="bilinear", antialias=True)
    share = small.pow(2).mean().item()
    weights = small / math.sqrt(share) if share else small
    return features * weights.to(features.dtype), share  # in the features' precision: half the memory in bf16


def with_pooling(model: nn.Sequential, pooling: str) -> nn.Sequential:
    """The same network with max pooling (as torchvision trained it) or average pooling (as the paper used).

    The paper found that average pooling "yields slightly more appealing results" (CVPR 2016, section
    2; its 2015 arXiv version adds that it improves the gradient flow). The convolutions are shared, not
    copied; only the five pooling layers are swapped. Introduced in notebook 07.
    """
    if pooling not in POOLINGS:
        raise ParameterError(f"must be one of {', '.join(POOLINGS)}, got {pooling!r}.", name="pooling")
    kind = nn.MaxPool2d if pooling == "max" else nn.AvgPool2d
    layers = [kind(2, 2) if isinstance(layer, (nn.MaxPool2d, nn.AvgPool2d)) else layer for layer in model]
    swapped = nn.Sequential(*layers)
    swapped.weights_source = getattr(model, "weights_source", "weights supplied by the caller")
    return swapped.eval()


def keep_colors(picture: Image.Image, photo: Image.Image) -> Image.Image:
    """``picture``'s luminance with ``photo``'s colours (the chroma of YCbCr): the painting's strokes in the
    photo's colours: color="content" after the run (jcjohnson/neural-style's ``-original_colors``), and the
    last step of Gatys et al. 2017's luminance-only transfer (color="luminance"). Notebook 07."""
    _, blue, red = photo.resize(picture.size, Image.Resampling.LANCZOS).convert("YCbCr").split()
    return Image.merge("YCbCr", (picture.convert("L"), blue, red)).convert("RGB")


def match_colors(image: Image.Image, target: Image.Image, luminance_only: bool = False) -> Image.Image:
    """``image`` recoloured so that its colours have ``target``'s mean and covariance (Gatys et al. 2017's
    colour histogram matching, by a linear map); with ``luminance_only``, its grey levels get ``target``'s
    mean and spread, and the result is grey. Introduced in notebook 07."""
    if luminance_only:
        grey, goal = (np.asarray(picture.convert("L"), np.float64) for picture in (image, target))
        matched = (grey - grey.mean()) / (grey.std() + 1e-6) * goal.std() + goal.mean()
        return Image.fromarray(np.clip(matched + 0.5, 0, 255).astype(np.uint8)).convert("RGB")
    pixels, goal = (np.asarray(picture, np.float64).reshape(-1, 3) for picture in (image, target))
    spread, wanted = (np.linalg.cholesky(np.cov(x.T) + 1e-3 * np.eye(3)) for x in (pixels, goal))
    matched = (pixels - pixels.mean(0)) @ (wanted @ np.linalg.inv(spread)).T + goal.mean(0)
    return Image.fromarray(np.clip(matched + 0.5, 0, 255).astype(np.uint8).reshape(image.height, image.width, 3))


# =============================================================================
# 8. Under the hood
# =============================================================================
# What the notebooks do not teach line by line, each group there for one reason, said in its first line:
# the run record's values, checks that name a wrong value, image decoding, devices, resuming a run, the
# optimiser's safeguards, the weights' download and checks, precision, the forward pass's and the Gram matrix's
# savings, memory release. The sections above call down into it; the figures that justify a piece are in the
# README (Performance, High resolution), where they are measured, not here.


# The run record: a setting's value as JSON can hold it.
def json_value(value: Any) -> Any:
    """A mapping as a dict, a tuple as a list, a number, string or None as itself, anything else (a PIL image
    given as init) as its description."""
    if isinstance(value, Mapping):
        return dict(value)
    if isinstance(value, tuple):
        return list(value)
    return value if value is None or isinstance(value, (int, float, str)) else str(value)


# Checks of what a caller passes: a wrong value is named, with what to give instead.
def check_number(name: str, value: Any, *, integer: bool = False, at_least: float = 0, above: bool = False) -> None:
    """Refuse sizes, steps, weights and rates that make no sense, naming the parameter."""
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise ParameterError(f"must be a number, got {value!r}.", name=name)
    if integer and not isinstance(value, numbers.Integral):
        raise ParameterError(f"must be a whole number, got {value!r}.", name=name)
    if not math.isfinite(value) or value < at_least or (above and value == at_least):
        raise ParameterError(f"must be {'greater than' if above else 'at least'} {at_least}, got {value!r}.", name=name)


def check_layers(layers: Iterable[str]) -> list[str]:
    """``layers`` as a list, refusing names VGG19 does not have."""
    layers = [layers] if isinstance(layers, str) else list(layers)
    unknown = [name for name in layers if name not in VGG19_LAYER_INDEX]
    if unknown:
        raise ParameterError(f"Unknown layer name(s) {unknown}. Valid names: {', '.join(VGG19_LAYER_NAMES)}.")
    if not layers:
        raise ParameterError(f"Give at least one layer name, e.g. {CONTENT_LAYER}.")
    return layers


def check_loss_weights(weights: Mapping[str, float]) -> None:
    """Each term's weight (α, β, the TV weight, by term name) must be zero or more, and not all zero."""
    for term, setting_name in LOSS_TERMS.items():
        check_number(setting_name, weights[term])
    if not any(weights.values()):
        *most, last = LOSS_TERMS.values()
        raise ParameterError(f"{', '.join(most)} and {last} are all zero: there is nothing to optimise.")


def check_masks(masks: Sequence[Tensor] | None, styles: int, style_blend: Sequence[float] | None) -> None:
    """One mask per style image, and no ``style_blend`` with masks (each style has its own region)."""
    if masks is None:
        return
    if len(masks) != styles:
        raise ParameterError(f"has {len(masks)} mask(s) for {styles} style image(s): give one mask per "
                             "style image (white where that style goes).", name="masks")
    if style_blend is not None:
        raise ParameterError("mixes styles everywhere, masks give each style its own region: use one or the "
                             "other.", name="style_blend")


def check_style_layer_weights(weights: Mapping[str, float] | None,
                              has_targets: Mapping[str, Tensor] | None = None) -> dict[str, float]:
    """Validate per-layer style weights; ``None`` means the paper's five layers, equally. ``has_targets``:
    an objective's style targets, which a change of its weights (`StyleTransferLoss.set_weights`) cannot add to."""
    if weights is None:
        return {name: 1.0 for name in STYLE_LAYERS}
    if not isinstance(weights, Mapping):
        raise ParameterError(f"must map layer names to weights, got {weights!r}.", name="style_layer_weights")
    check_layers(weights)
    for name, weight in weights.items():
        check_number(f"style_layer_weights[{name!r}]", weight)
    missing = [] if has_targets is None else [name for name in weights if name not in has_targets]
    if missing:
        raise ParameterError(f"This objective has style targets for {', '.join(has_targets)} only; "
                             f"make a new one to use {', '.join(missing)}.")
    return dict(weights)


def check_style_scale(images: RunImages, settings: Settings, coarsest: int, needed: int) -> None:
    """``style_scale`` must leave every style image large enough for the layers at the coarsest scale, and
    no larger than the pixels this project decodes (`MAX_IMAGE_PIXELS`) at full size."""
    for style in images.styles:
        ratio = max(style.size) / min(style.size)
        smallest = shorter_side(style.size, max(1, round(coarsest * settings.style_scale)))
        if smallest < needed:
            raise ParameterError(
                f"is too small: at the coarsest scale ({coarsest} px) the style image would be {smallest} px on "
                f"its shorter side, and the layers used need {needed}. Use at least {needed * ratio / coarsest:.3g}.",
                name="style_scale")
        side = round(settings.size * settings.style_scale)
        if settings.style_scale > 1 and side * shorter_side(style.size, side) > MAX_IMAGE_PIXELS:
            raise ParameterError(
                f"is too large: at {settings.size} px the style image would be {side} px on its longer side, more "
                f"than the {MAX_IMAGE_PIXELS:,} pixels this project works with. Use at most "
                f"{math.sqrt(MAX_IMAGE_PIXELS * ratio) / settings.size:.3g}.", name="style_scale")


def check_coarsest_side(shape: tuple[float, float], coarsest: int, min_side: int) -> None:
    """The coarsest scale of `scale_schedule` must still reach the deepest layer in use."""
    if shorter_side(shape, coarsest) < min_side:
        raise ImageError(
            f"At {coarsest} px on its longer side the image is only {shorter_side(shape, coarsest)} px on its "
            f"shorter side, but the layers used need at least {min_side}. Use a larger size, fewer scales, "
            "or a less elongated image."
        )


def check_settings(settings: Settings) -> None:
    """Each setting against its declaration in `Settings` (kind, range, choices), and the weights, blend and
    layer weights against their own checks; the blend becomes a tuple and the layer weights a read-only copy."""
    for f in dataclasses.fields(settings):
        value, meta = getattr(settings, f.name), f.metadata
        if value is None and meta["optional"]:
            continue
        if f.name == "precision" and value == "fp16":
            raise ParameterError(FP16_REFUSED, name="precision")
        if meta["choices"] and value not in meta["choices"]:
            raise ParameterError(f"must be one of {', '.join(meta['choices'])}, got {value!r}.", name=f.name)
        if meta["kind"] is str and f.name != "device" and isinstance(value, (numbers.Number, Mapping, list, tuple)):
            raise ParameterError(f"must be text (a name or a path), got {value!r:.80}.", name=f.name)
        if meta["kind"] in (int, float):
            check_number(f.name, value, integer=meta["kind"] is int,
                         at_least=-math.inf if meta["at_least"] is None else meta["at_least"], above=meta["above"])
    check_loss_weights({term: getattr(settings, name) for term, name in LOSS_TERMS.items()})
    if settings.style_blend is not None:
        object.__setattr__(settings, "style_blend", tuple(settings.style_blend))
        blend_weights(settings.style_blend, len(settings.style_blend))
    if settings.style_layer_weights is not None:  # a read-only copy: the caller's dict may change later
        object.__setattr__(settings, "style_layer_weights", MappingProxyType(
            check_style_layer_weights(settings.style_layer_weights)))
    init = settings.init
    named = isinstance(init, str) and init not in ("content", "noise")
    if named and not Path(init).suffix and not Path(init).exists():
        raise ParameterError(f"must be 'content', 'noise' or an image path, got {init!r}.", name="init")


def warn_of_empty_targets(objective: StyleTransferLoss, layer_weights: Mapping[str, float]) -> None:
    """Warn when a layer the objective uses has a target with no energy (all zeros for this image, as a black
    style image gives): there is nothing to match there, and `set_weights` leaves it out."""
    energies = {name: min(one[name] for one in objective.region_energies)
                for name, weight in layer_weights.items() if weight and objective.style_weight}
    if objective.content_weight:
        energies[objective.content_layer] = objective.content_energy
    empty = [name for name, energy in energies.items() if not energy > 0]
    if empty:
        warnings.warn(f"Layer(s) {', '.join(empty)} are all zeros for this image, so there is nothing to match "
                      "there; they are left out of the objective.", stacklevel=3)


def check_image_side(image: Tensor, layers: Sequence[str]) -> None:
    """Refuse an image too small for the deepest of ``layers`` (each pooling halves it), before the network
    fails with a message about kernel sizes."""
    height, width = image.shape[-2:]
    needed = min_image_side(layers)
    if min(height, width) < needed:
        raise ImageError(
            f"The image is {width} x {height} pixels, but layer {max(layers, key=VGG19_LAYER_INDEX.get)} "
            f"needs at least {needed} pixels on each side. Use a larger size or a less elongated image."
        )


def warn_if_enlarged(photo: Image.Image, styles: Sequence[Image.Image], size: int) -> None:
    """A picture smaller than the result is enlarged and looks soft: say so, naming it."""
    for role, picture in (("content", photo), *(("style", one) for one in styles)):
        if max(picture.size) < size:
            warnings.warn(f"The {role} image is only {picture.width} x {picture.height} pixels; it is enlarged to "
                          f"{size} px on its longer side and will look soft. Use a larger image or a smaller size.",
                          stacklevel=4)


# Images: what load_image was given, checked and decoded; whatever Pillow hands over, made plain RGB.
def to_rgb(image: Image.Image, background: str = "white") -> Image.Image:
    """Any Pillow mode as 8-bit RGB (VGG19 saw RGB photos); transparency is flattened onto ``background``
    (white for pictures; black for masks, so that a transparent part of a mask means "no style here")."""
    if image.mode in ("I;16", "I;16B", "I;16L", "I;16N", "I", "F"):
        # Pillow's own conversion clips 16-bit values at 255 (a white image): scale the range down instead.
        values = np.asarray(image, dtype=np.float64)
        top = 65535.0 if image.mode.startswith("I;16") or values.max() > 255 else 255.0
        if image.mode == "F" and values.max() <= 1.0:
            top = 1.0
        return Image.fromarray(np.clip(values / top * 255.0 + 0.5, 0, 255).astype(np.uint8)).convert("RGB")
    if image.mode in ("RGBA", "LA", "PA", "RGBa", "La") or (image.mode == "P" and "transparency" in image.info):
        rgba = image.convert("RGBA")
        return Image.alpha_composite(Image.new("RGBA", rgba.size, background), rgba).convert("RGB")
    return image.convert("RGB")


def byte_count(file: Path | BinaryIO) -> int:
    """The size of an image file in bytes: on disk, or to the end of a file object (Pillow reads it from the
    start, so where this leaves the position does not matter)."""
    if isinstance(file, Path):
        return file.stat().st_size
    return file.seek(0, os.SEEK_END)


def image_file(file: str | os.PathLike | bytes | BinaryIO, name: str | None) -> tuple[Path | BinaryIO, str]:
    """What `load_image` was given, as a path or a seekable file object, and the name messages call it;
    a missing, empty or wrong kind of input is refused before Pillow sees it."""
    if isinstance(file, (str, os.PathLike)):
        file = Path(file)
        name = name or str(file)
        if not file.exists():
            raise ImageError(f"No file at {name}. Check the path (it is relative to {Path.cwd()}).")
        if file.is_dir():
            raise ImageError(f"{name} is a folder, not an image. Give the path of one image file.")
    elif isinstance(file, (bytes, bytearray, memoryview)):
        file, name = io.BytesIO(file), name or "the image given"  # an upload's content
    elif hasattr(file, "read") and hasattr(file, "seek"):
        name = name or str(getattr(file, "name", "the file given"))
    else:
        raise ImageError(f"load_image needs a path, bytes or a binary file object, got {type(file).__name__}.")
    if byte_count(file) == 0:
        raise ImageError(f"{name} is empty (0 bytes). Copy or download the image again.")
    return file, name


def decode_image(file: Path | BinaryIO, name: str, background: str) -> Image.Image:
    """Decode ``file`` upright (its EXIF orientation applied) as 8-bit RGB, after the pixel count in its
    header is checked; each way Pillow can fail becomes an `ImageError` that says what to do."""
    try:
        with Image.open(file) as opened:  # reads only the header so far
            width, height = opened.size
            if width * height > MAX_IMAGE_PIXELS:
                raise ImageError(
                    f"{name} claims to be {width} x {height} pixels ({width * height:,}), more than the "
                    f"{MAX_IMAGE_PIXELS:,} this project decodes; it may be a decompression bomb. "
                    "Shrink it with an image editor first."
                )
            upright = ImageOps.exif_transpose(opened)  # decodes the pixels
            upright.load()
            image = to_rgb(upright, background)
    except Image.DecompressionBombError as error:
        raise ImageError(f"{name} is refused: {error} Shrink it first.") from None
    except UnidentifiedImageError:
        raise ImageError(
            f"{name} is not an image that Pillow can read. Is it really a JPEG or PNG? "
            "Open it in an image viewer and export it again as PNG or JPEG."
        ) from None
    except PermissionError:
        raise ImageError(f"{name} cannot be read (permission denied). Check the file's permissions.") from None
    except (OSError, SyntaxError, ValueError) as error:
        if isinstance(error, StyleTransferError):
            raise
        raise ImageError(f"{name} is damaged or truncated ({error}). Download or export it again.") from None
    return image


def as_image(source: ImageSource, role: str, background: str = "white") -> Image.Image:
    """A path or a PIL image (content, style, mask or init), as an upright RGB PIL image (transparency
    flattened onto ``background``): a PIL image from ``Image.open`` gets its EXIF orientation, as a file does."""
    if isinstance(source, Image.Image):
        return to_rgb(ImageOps.exif_transpose(source), background)
    if isinstance(source, (str, os.PathLike)):
        return load_image(source, background=background)
    raise ImageError(f"The {role} image must be a file path or a PIL image, got {type(source).__name__}.")


def open_masks(masks: Sequence[ImageSource], styles: int, settings: Settings) -> list[Image.Image]:
    """The masks as grey pictures, one per style image; a mask black everywhere is warned about (its style
    would apply nowhere)."""
    if isinstance(masks, (str, os.PathLike, Image.Image)):
        raise ParameterError("must be a list of images, one per style image, not one image.", name="masks")
    opened = [as_image(one, "mask", background="black").convert("L") for one in masks]
    check_masks(opened, styles, settings.style_blend)
    for number, mask in enumerate(opened, start=1):
        if mask.getextrema()[1] == 0:
            warnings.warn(f"Mask {number} is black everywhere, so style {number} applies nowhere. White (or "
                          "opaque white) is where a style goes.", stacklevel=4)
    return opened


# Devices: which one to run on, and an out-of-memory error that says what to do.
def choose_device(device: str | torch.device | None = None) -> torch.device:
    """The requested device, or with None/"auto" the best available one: CUDA, then Apple MPS, then CPU."""
    mps = getattr(torch.backends, "mps", None) is not None and torch.backends.mps.is_available()
    if device is None or str(device) == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "mps" if mps else "cpu")
    try:
        chosen = torch.device(device)
    except (RuntimeError, TypeError):
        raise DeviceError(f"cannot be {device!r}: use cpu, cuda, cuda:0, mps or auto.", name="device") from None
    if chosen.type == "cuda" and not torch.cuda.is_available():
        raise DeviceError("cannot be CUDA here: this PyTorch sees no NVIDIA GPU. Use cpu (or auto).", name="device")
    if chosen.type == "cuda" and chosen.index is not None and chosen.index >= torch.cuda.device_count():
        raise DeviceError(f"cannot be {chosen}: this machine has {torch.cuda.device_count()} GPU(s).", name="device")
    if chosen.type == "mps" and not mps:
        raise DeviceError("cannot be Apple MPS here: it is not available. Use cpu (or auto).", name="device")
    if chosen.type not in ("cpu", "cuda", "mps"):
        raise DeviceError(f"cannot be {device!r}: use cpu, cuda or mps.", name="device")
    return chosen


def run_device(model: nn.Module | None, settings: Settings) -> torch.device:
    """The device of the run: the one asked for, else the given network's, else the best available."""
    if model is not None and settings.device in (None, "auto"):
        return next(model.parameters()).device
    return choose_device(settings.device)


def reraise_out_of_memory(error: BaseException, settings: Settings, device: torch.device) -> NoReturn:
    """Raise ``error`` again, as a `DeviceError` that says what to do if it is the device running out of
    memory (called in an ``except`` block)."""
    if not isinstance(error, (torch.OutOfMemoryError, MemoryError)) and "allocate" not in str(error):
        raise error
    where, advice = ("CPU", "") if device.type == "cpu" else ("GPU", ", or the device cpu")
    raise DeviceError(f"{settings.size} ran out of {where} memory. Try a smaller size, for example "
                      f"{settings.size // 2}{advice}.", name="size") from None


# Resuming a run: its state checked against the run it is given to; what a finished scale no longer needs.
def photo_fingerprint(photo: Image.Image) -> Tensor:
    """The photo's grey levels on a 16 x 16 grid: the same for any size of one photo (they differed by at
    most 0.01 between 64 and 1024 px on the bundled photos), and far apart for two photos (0.19 to 0.28)."""
    return image_to_tensor(photo.convert("L").resize((16, 16), Image.Resampling.BOX), "cpu")[0, 0]


def check_resume_state(state: Any, images: RunImages) -> None:
    """A resume state must be what a run left (`StyleTransferResult.resume_state`): a picture of shape
    (1, 3, H, W) in [0, 1], the optimiser's name and its state, made from this photo (its shape, and its
    `photo_fingerprint` where the state has one). Another size of the same photo is fine (the picture is
    enlarged); another photo is refused."""
    if not isinstance(state, Mapping) or not {"image", "optimizer", "state"} <= set(state):
        raise ParameterError("is not a state a run left: it needs an image, an optimizer and a state.", name="resume")
    image = state["image"]
    if not (isinstance(image, Tensor) and image.is_floating_point() and image.dim() == 4 and image.shape[:2] == (1, 3)):
        kind = f"a {image.dtype} tensor of shape {tuple(image.shape)}" if isinstance(image, Tensor) else repr(image)
        raise ParameterError(f"holds no picture (a float tensor of shape 1 x 3 x H x W): got {kind:.80}.",
                             name="resume")
    if not torch.isfinite(image).all() or image.min() < 0 or image.max() > 1:
        raise ParameterError("holds a picture with values outside [0, 1]: it is damaged.", name="resume")
    if state["optimizer"] not in OPTIMIZERS or not isinstance(state["state"], Mapping | None):
        raise ParameterError(f"names the optimizer {state['optimizer']!r} (one of {', '.join(OPTIMIZERS)} is "
                             "needed) or holds a damaged optimiser state.", name="resume")
    (height, width), (photo_width, photo_height) = image.shape[-2:], images.content.size
    if abs(width * photo_height - height * photo_width) > max(width, height, photo_width, photo_height):
        raise ParameterError(f"was made for a picture of {width} x {height} px, not of this photo's shape "
                             f"({photo_width} x {photo_height} px): resume with the photo it was made from.",
                             name="resume")
    if "photo" not in state:  # states saved before the fingerprint: the shape check above is all there is
        return
    photo, fingerprint = state["photo"], photo_fingerprint(images.photo)
    if not (isinstance(photo, Tensor) and photo.shape == fingerprint.shape and photo.is_floating_point()):
        raise ParameterError("holds a damaged fingerprint of its photo (a 16 x 16 float tensor is needed).",
                             name="resume")
    if not (photo - fingerprint).abs().mean() <= 0.05:  # NaN is "not close" too
        raise ParameterError("was made from another photo of the same shape (their grey levels differ): resume "
                             "with the photo it was made from.", name="resume")


def resume_from(resume: StyleTransferResult | dict, images: RunImages, settings: Settings,
                device: torch.device) -> tuple[list[tuple[int, int]], Tensor, dict | None]:
    """Step 2, resuming: one scale at full size, from the last image and optimiser state of an earlier run.
    Its optimiser state is dropped for another optimiser or another size (the image is enlarged)."""
    state = resume.resume_state if isinstance(resume, StyleTransferResult) else resume
    if state is None:  # a result that kept no state: an ordinary run
        return plan_scales(images, settings), None, None
    check_resume_state(state, images)
    image = state["image"].to(device)
    fits = state["optimizer"] == settings.optimizer and tuple(image.shape[-2:]) == images.content.size[::-1]
    if not fits and state["state"] is not None:
        warnings.warn(f"The resumed run's optimiser state ({state['optimizer']}, {image.shape[-1]} x "
                      f"{image.shape[-2]} px) does not fit this run ({settings.optimizer}, {images.content.width} x "
                      f"{images.content.height} px): a fresh optimiser goes on from its picture, enlarged if need be.",
                      stacklevel=3)
    return [(settings.size, settings.steps)], image, state["state"] if fits else None


def forget_optimizer_state(runs: list[tuple[int, OptimizationRun]]) -> None:
    """Before the next scale: the last scale's optimiser state (L-BFGS's history, ten image-sized pairs)
    is not needed again, so its memory is freed. Only the last scale's state is kept, for ``resume``."""
    if runs:
        runs[-1] = (runs[-1][0], dataclasses.replace(runs[-1][1], optimizer_state=None))


# The optimiser: torch's L-BFGS with a step bound in pixels and tests that do not depend on the objective's scale.
class PixelLBFGS(torch.optim.LBFGS):
    """torch's L-BFGS (no line search: one evaluation per step), fitted to pixels in [0, 1]. Notebook 05.

    1. Scale-free: torch learns curvature only from steps with y·s > 1e-10 (and stops when every gradient
       is below 1e-7), absolute numbers that our relative errors can fall short of: a relu1_1-only
       texture learnt nothing and crept along the gradient. So L-BFGS sees the objective times a ``gain``
       fixed at the first evaluation, making that gradient 1 per pixel on average.
    2. Steps in pixel units: torch's first step is tiny and mostly teaches rounding; ours moves the pixel
       that moves most by lr x ``max_step``. Without a line search a step can overshoot far (at a large β
       the objective rose to 24 times its start), so no step moves any pixel more than ``max_step``.
    3. The step is clamped to [0, 1], and the next curvature pair uses the step actually taken.
    4. A step that raised the objective discards the curvature learnt so far: the next step starts again
       from the gradient. On stiff objectives (a large β) bounded steps otherwise went up and down for good.
    """

    def __init__(self, image: Tensor, lr: float = 1.0, max_step: float = MAX_PIXEL_STEP) -> None:
        super().__init__([image], lr=lr, max_iter=1, history_size=LBFGS_HISTORY)
        self.image, self.max_step = image, max_step

    @torch.no_grad()
    def step(self, closure: Callable[[], Tensor]) -> Tensor:  # type: ignore[override]
        image, state = self.image, self.state[self.image]

        def scaled() -> Tensor:
            with torch.enable_grad():
                loss = closure()
            if image.grad is not None:
                size = image.grad.abs().mean().item()
                state.setdefault("gain", 1 / size if 0 < size < math.inf else 1.0)  # kept for a resumed run
                image.grad.mul_(state["gain"])
            if loss.item() * state.get("gain", 1.0) > state.get("prev_loss", math.inf):
                state["n_iter"] = 0  # the last step went uphill: forget the curvature, start again from the gradient
            return loss * state.get("gain", 1.0)

        start = image.clone()
        loss = super().step(scaled)
        taken = image.clamp_(0, 1) - start
        largest = taken.abs().max().item()
        longest = self.max_step * (self.param_groups[0]["lr"] if state["n_iter"] == 1 else 1)
        if largest > 0:
            if state["n_iter"] == 1 or largest > longest:
                taken = image.copy_(start + taken * (longest / largest)).clamp_(0, 1) - start
            state["d"] = taken.view(-1) / state["t"]  # what the next curvature pair learns from
        return loss / state.get("gain", 1.0)


# Where to get the weights, for every message about missing or unreadable ones.
def how_to_get_weights() -> str:
    """The instructions shown whenever the ImageNet weights are not available."""
    cache = Path(torch.hub.get_dir()) / "checkpoints"
    return (
        "To use the real ImageNet weights, do one of:\n"
        f"  1. let this machine download them once ({VGG19_WEIGHTS.meta['_file_size']:.0f} MB) from "
        f"{VGG19_WEIGHTS.url};\n"
        f"  2. download that file elsewhere and copy it to {cache}/vgg19-dcbb9e9d.pth "
        "(torchvision's cache: a copy there is used as is);\n"
        f"  3. set {WEIGHTS_ENV}=/path/to/vgg19-dcbb9e9d.pth (or a file:// or http:// URL), or give that "
        "path as the weights setting. A features-only copy (80 MB; the README's Weights section says how "
        "to make one) works the same.\n"
        "For a quick test without them, set the weights to \"random\"; the result will not look like style "
        "transfer."
    )


def random_weights(features: nn.Sequential, seed: int | None) -> None:
    """Untrained weights, drawn as torchvision initialises VGG19 (from ``seed``, else torch's global
    generator), for tests and demonstrations only."""
    features.to_empty(device="cpu")
    generator = None if seed is None else torch.Generator().manual_seed(seed)
    for layer in features:
        if isinstance(layer, nn.Conv2d):
            nn.init.kaiming_normal_(layer.weight, mode="fan_out", nonlinearity="relu", generator=generator)
            nn.init.zeros_(layer.bias)
    features.weights_source = "random (untrained) weights"


# Weights: download, cache and checks, so that a wrong or damaged file says what to do.
def refused_code(label: str, instead: str) -> str:
    """The message for a file that ``torch.load(..., weights_only=True)`` refused because it holds code."""
    return (f"Refused to load {label}: it contains Python objects or code, not just tensors, and loading it "
            f"could run that code. Use {instead} instead.")


def _unreadable(label: str, error: BaseException, url: str = "") -> WeightsError:
    """One clear message for a checkpoint torch could not load (never torch's "retry with weights_only=False")."""
    text = str(error)
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    if isinstance(error, OSError) and url:  # URLError, timeouts, refused connections, failed DNS look-ups
        return WeightsError(f"Could not download {url}: {getattr(error, 'reason', error)}.\n" + how_to_get_weights())
    if "invalid hash value" in text:
        return WeightsError(
            f"The file from {url} does not match the hash in its name ({error}). It was not kept: the download "
            "was probably cut short or the file is not the published one. Try again.\n" + how_to_get_weights()
        )
    if isinstance(error, pickle.UnpicklingError) and "GLOBAL" in text:
        return WeightsError(refused_code(label, "the published vgg19-dcbb9e9d.pth"))
    if "Weights only load failed" in text:
        detail = next((line for line in lines if line.startswith("Unsupported operand")), "not a pickle")
    else:
        detail = lines[0] if lines else ""
    return WeightsError(
        f"{label} is not a readable PyTorch checkpoint ({type(error).__name__}: {detail}). It may be truncated "
        "or damaged: delete it and download it again.\n" + how_to_get_weights()
    )


@contextlib.contextmanager
def _socket_timeout(seconds: float):
    """torch.hub opens URLs without a timeout; bound it so that offline runs fail fast."""
    previous = socket.getdefaulttimeout()
    socket.setdefaulttimeout(seconds)
    try:
        yield
    finally:
        socket.setdefaulttimeout(previous)


def read_checkpoint(weights: str | os.PathLike) -> tuple[Mapping[str, Any], str]:
    """Load a checkpoint's state dict, and a sentence saying where it came from.

    ``"imagenet"`` means ``$STYLETRANSFER_VGG19_WEIGHTS`` if set, else
    torchvision's URL. A URL is downloaded once into torch.hub's cache (the one
    torchvision uses), its hash checked as torch.hub does. The file is then
    memory-mapped, so only the tensors used are read (80 MB of 548), and
    loaded with ``weights_only=True``: a checkpoint may hold tensors, never code.
    """
    source = os.fspath(weights)
    from_env = source == "imagenet" and bool(os.environ.get(WEIGHTS_ENV))
    if source == "imagenet":
        source = os.environ.get(WEIGHTS_ENV) or VGG19_WEIGHTS.url
    label = "ImageNet VGG19 (torchvision's IMAGENET1K_V1)" if source == VGG19_WEIGHTS.url else f"checkpoint {source}"
    label += f" (from ${WEIGHTS_ENV})" if from_env else ""
    if "://" in source:
        path = Path(torch.hub.get_dir()) / "checkpoints" / Path(source.split("?")[0]).name
        label += f", cached at {path}" if path.exists() else f", downloaded to {path}"
        if not path.exists():
            path.parent.mkdir(parents=True, exist_ok=True)
            expected = torch.hub.HASH_REGEX.search(path.name)  # name-<first hex digits of its SHA-256>.pth
            try:
                with _socket_timeout(15):
                    torch.hub.download_url_to_file(source, str(path), expected and expected[1], progress=True)
            except Exception as error:  # noqa: BLE001 - every failure becomes one clear message
                raise _unreadable(str(path), error, url=source) from None
    else:
        path = Path(source).expanduser()
        if not path.is_file():
            hint = f" ${WEIGHTS_ENV} points there." if from_env else ""
            raise WeightsError(f"No weights file at {path}.{hint}\n" + how_to_get_weights())
    try:
        return torch.load(path, map_location="cpu", weights_only=True, mmap=True), label
    except RuntimeError as error:
        if "mmap" not in str(error):  # an old (non-zip) checkpoint cannot be memory-mapped: read it whole
            raise _unreadable(str(path), error) from None
    except Exception as error:  # noqa: BLE001
        raise _unreadable(str(path), error) from None
    try:
        return torch.load(path, map_location="cpu", weights_only=True), label
    except Exception as error:  # noqa: BLE001
        raise _unreadable(str(path), error) from None


def features_state_dict(checkpoint: Mapping[str, Any], features: nn.Module) -> dict[str, Tensor]:
    """The ``features.*`` tensors of a VGG19 checkpoint, keyed as ``vgg19().features`` expects.

    Accepts the full checkpoint (its classifier is never read) or the features
    alone; anything else is refused with a message saying what it is.
    """
    if not isinstance(checkpoint, Mapping):
        raise WeightsError(f"This file is not torchvision's VGG19 checkpoint: it holds a {type(checkpoint).__name__}, "
                           "not a state dict of tensors.")
    wanted = {key: tensor.shape for key, tensor in features.state_dict().items()}
    state, problems = {}, []
    for key, shape in wanted.items():
        tensor = checkpoint.get(f"features.{key}")
        if not isinstance(tensor, Tensor):
            problems.append(f"features.{key} is missing")
        elif tensor.shape != shape:
            problems.append(f"features.{key} has shape {tuple(tensor.shape)}, VGG19 needs {tuple(shape)}")
        else:
            state[key] = tensor.detach().float()
    unexpected = [key for key in checkpoint if not isinstance(key, str)
                  or key.startswith("features.") and key.removeprefix("features.") not in wanted]
    if unexpected:
        problems.append(f"unexpected keys such as {unexpected[0]} (batch norm? another VGG?)")
    if problems:
        more = f" (and {len(problems) - 3} more problems)" if len(problems) > 3 else ""
        raise WeightsError(
            "This file is not torchvision's VGG19 checkpoint: " + "; ".join(problems[:3]) + more
            + f". Its first keys are {list(checkpoint)[:3]}. Use vgg19-dcbb9e9d.pth ({VGG19_WEIGHTS.url})."
        )
    return state


# Precision: bfloat16 where the hardware has it natively, float32 elsewhere.
FP16_REFUSED = (
    # The gradients reaching the features are of order 1e-5 to 1e-6, below fp16's normal range (6e-5):
    # without loss scaling they would be flushed towards zero. bf16 has fp32's range.
    "cannot be fp16: its range is too small for this objective's gradients, which would underflow. "
    "Use bf16 (GPUs since Ampere, CPUs with AVX512-BF16 or AMX) or fp32."
)


def choose_precision(precision: str, device: torch.device) -> torch.dtype | None:
    """The autocast dtype for the network, or None for plain float32.

    Only the convolutions run in lower precision; Gram matrices and losses stay
    in float32 (see `gram_matrix`). "auto" picks bfloat16 where the hardware
    computes it natively (CPUs with AVX512-BF16 or AMX, GPUs since Ampere):
    where it is emulated it is slower than float32.
    """
    if precision == "fp16":
        raise ParameterError(FP16_REFUSED, name="precision")
    if precision not in PRECISIONS:
        raise ParameterError(f"must be one of {', '.join(PRECISIONS)}, got {precision!r}.", name="precision")
    if device.type == "cuda":
        native = torch.cuda.get_device_capability(device)[0] >= 8
    else:
        native = device.type == "cpu" and (torch.cpu._is_avx512_bf16_supported() or torch.cpu._is_amx_tile_supported())
    if precision == "bf16" and not native:
        raise ParameterError(f"cannot be bf16 here: this {device.type} has no fast bfloat16. Use fp32 (or auto).",
                             name="precision")
    return torch.bfloat16 if precision != "fp32" and native else None


# The forward pass: what we yield stays intact, and max pooling keeps no indices for the backward pass.
def run_layer(layer: nn.Module, x: Tensor, kept: Tensor | None) -> Tensor:
    """``layer(x)`` for `iter_features`, with two exceptions. torchvision's ReLUs are in-place: one would
    overwrite a conv output we just yielded (``kept``), so that ReLU runs out of place. Max pooling is
    recomputed in the backward pass, rather than keeping one int64 index per output value."""
    if x is kept and isinstance(layer, nn.ReLU):
        return F.relu(x)
    if isinstance(layer, nn.MaxPool2d) and x.requires_grad:
        return checkpoint(layer, x, use_reentrant=False)
    return layer(x)


# Memory: the Gram matrix's gradient a slice at a time, with no float32 copy of the features kept.
class GramMatrix(torch.autograd.Function):
    """`gram_matrix` with its gradient written out: the Gram-matrix part of the paper's equation (6).

    For a loss L of G = F Fᵀ / (C·H·W), ∂L/∂F = (∂L/∂G + ∂L/∂Gᵀ) F / (C·H·W). Both directions convert
    the features to float32 a slice of positions at a time. Left to autograd, ``features.float()`` would
    keep a float32 copy of every style layer for the backward pass (the README's High resolution says how
    much). Notebook 03 checks this gradient against autograd's, and a test keeps the two equal.
    """

    SLICE = 2**22  # float32 numbers converted at a time (16 MiB)

    @staticmethod
    def slices(maps: Tensor) -> tuple[Tensor, ...]:
        """(B, C, H, W) maps as slices of (B, positions, C) rows, SLICE numbers each; views of channels-last maps."""
        batch, channels, height, width = maps.shape
        rows = maps.permute(0, 2, 3, 1).reshape(batch, height * width, channels)
        return rows.split(max(1, GramMatrix.SLICE // channels), dim=1)

    @staticmethod
    def forward(ctx: Any, features: Tensor) -> Tensor:
        batch, channels, height, width = features.shape
        gram = features.new_zeros((batch, channels, channels), dtype=torch.float32)
        with torch.autocast(features.device.type, enabled=False):  # float32 even inside autocast
            for rows in GramMatrix.slices(features):
                rows = rows.float()
                gram.baddbmm_(rows.transpose(1, 2), rows)
        ctx.save_for_backward(features)
        return gram / (channels * height * width)

    @staticmethod
    @once_differentiable  # no second derivative: nothing here needs one
    def backward(ctx: Any, grad: Tensor) -> Tensor:
        (features,) = ctx.saved_tensors
        both = (grad + grad.transpose(1, 2)) / features[0].numel()
        result = torch.empty_like(features, memory_format=torch.channels_last)
        with torch.autocast(features.device.type, enabled=False):
            for rows, into in zip(GramMatrix.slices(features), GramMatrix.slices(result), strict=True):
                into.copy_(torch.bmm(rows.float(), both))
        return result


# Memory: give freed pages back to the operating system after a large step, and around every run.
try:  # glibc (Linux); other C libraries give freed memory back by themselves or not at all
    _malloc_trim = ctypes.CDLL("libc.so.6").malloc_trim
except (OSError, AttributeError):
    _malloc_trim = None


RELEASE_FROM_PIXELS = 2**19  # images from about 724 x 724 px up


def release_freed_memory(image: Tensor, *, between_runs: bool = False) -> None:
    """Hand memory freed earlier back to the operating system, where glibc keeps freed blocks for reuse:
    after each step on a large ``image`` (the scattered blocks of a large step raised the peak: README, High
    resolution), and before and after each run at any size (``between_runs``). Each thread keeps its own
    freed blocks (one arena each): without that, a run in another thread (the studio's) or after other work
    (drawing figures) could not reuse them, and each run's working memory stayed counted on top of the next
    one's. Not after the steps of small images, where the pages are faulted in again at once; elsewhere than
    glibc, nothing."""
    large = image[0, 0].numel() >= RELEASE_FROM_PIXELS
    if _malloc_trim is not None and image.device.type == "cpu" and (large or between_runs):
        _malloc_trim(0)


if __name__ == "__main__":  # `python styletransfer_utils.py ...` is the command line (styletransfer_tools/cli.py)
    import runpy

    runpy.run_module("styletransfer_tools.cli", run_name="__main__")
