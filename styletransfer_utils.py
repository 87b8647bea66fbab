"""Neural style transfer as in Gatys, Ecker & Bethge (CVPR 2016), step by step.

This one file is what every notebook in ``notebooks/`` imports, and it is also
a command-line tool (``python styletransfer_utils.py --help``). It reads top to
bottom in the order the notebooks teach, following the data::

    image -> tensor -> VGG19 features -> losses -> optimiser -> image

Sections
    1. Errors and exit codes          (used everywhere)
    2. Images                         (notebook 01)
    3. The network: VGG19             (notebook 02)
    4. Features                       (notebook 02)
    5. Gram matrices and losses       (notebooks 03 and 04)
    6. The optimisation loop          (notebook 05)
    7. Notebook helpers               (settings, figures, live preview, sliders)
    8. Command line

Optional front-end packages (IPython, ipywidgets, matplotlib) are imported
inside the functions that need them, so the module imports in a plain Python
process and in a background thread.
"""

from __future__ import annotations

import argparse
import contextlib
import math
import numbers
import os
import pickle
import socket
import sys
import tempfile
import time
import warnings
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol
from urllib.parse import urlparse

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image, ImageOps, UnidentifiedImageError
from torch import Tensor, nn
from torchvision.models import VGG19_Weights, vgg19
from torchvision.transforms import InterpolationMode, v2

ASSETS_DIR = Path(__file__).resolve().parent / "assets"
DEFAULT_CONTENT = ASSETS_DIR / "astronaut.jpg"
DEFAULT_STYLE = ASSETS_DIR / "stained_glass.png"

ImageSource = str | os.PathLike | Image.Image


# =============================================================================
# 1. Errors and exit codes
# =============================================================================
# Every problem a user can cause ends in one of these errors. Each message says
# what went wrong *and what to do*; the command line turns each class into its
# own exit code, so scripts can tell "bad photo" from "no weights".

EXIT_OK = 0
EXIT_UNEXPECTED = 1
EXIT_USAGE = 2  # also what argparse uses for a malformed command line
EXIT_BAD_IMAGE = 3
EXIT_WEIGHTS = 4
EXIT_OUTPUT = 5
EXIT_DEVICE = 6
EXIT_DIVERGED = 7
EXIT_INTERRUPTED = 130  # the shell's convention for Ctrl-C


class StyleTransferError(Exception):
    """Base class of the project's own errors: the message is meant for a user."""

    exit_code = EXIT_UNEXPECTED


class ParameterError(StyleTransferError, ValueError):
    """A setting is out of range or unknown (a size of 0, a misspelt layer)."""

    exit_code = EXIT_USAGE


class ImageError(StyleTransferError, ValueError):
    """An input image is missing, unreadable, damaged or unusable."""

    exit_code = EXIT_BAD_IMAGE


class WeightsError(StyleTransferError, RuntimeError):
    """The VGG19 weights cannot be had or are not the right file."""

    exit_code = EXIT_WEIGHTS


class OutputError(StyleTransferError, OSError):
    """The result cannot be written where the user asked."""

    exit_code = EXIT_OUTPUT


class DeviceError(StyleTransferError, RuntimeError):
    """The requested device does not exist here, or ran out of memory."""

    exit_code = EXIT_DEVICE


def _check_positive(name: str, value: float, *, integer: bool = False, allow_zero: bool = False) -> None:
    """Refuse sizes, steps, weights and rates that make no sense, naming the setting."""
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise ParameterError(f"{name} must be a number, got {value!r}.")
    if integer and not isinstance(value, numbers.Integral):
        raise ParameterError(f"{name} must be a whole number, got {value!r}.")
    if not math.isfinite(value) or value < 0 or (value == 0 and not allow_zero):
        wanted = "zero or more" if allow_zero else "greater than zero"
        raise ParameterError(f"{name} must be {wanted}, got {value!r}.")


# =============================================================================
# 2. Images  (notebook 01)
# =============================================================================
# Images travel as PIL images until the last moment, then become float tensors
# of shape (1, 3, H, W) with values in [0, 1]. The ImageNet normalisation that
# VGG19 expects happens inside `extract_features`, so user code never juggles
# normalised pixels and clamping to [0, 1] is always meaningful.

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)

# Pillow refuses images over twice its own limit (about 179 Mpx); we are
# stricter, because a 50 Mpx photo is already 100 times more than style
# transfer can use, and we check the header before any pixel is decoded.
MAX_IMAGE_PIXELS = 50_000_000


def load_image(path: str | os.PathLike, max_size: int | None = None) -> Image.Image:
    """Open an image file as an upright RGB picture, optionally shrunk.

    Phone photos store "which way is up" in their EXIF data rather than in the
    pixels, so the orientation is applied here. Grey, palette, transparent,
    CMYK and 16-bit images all become plain 8-bit RGB, because VGG19 was
    trained on RGB photos. With ``max_size`` the *longer* side is scaled down
    to at most that many pixels, keeping the aspect ratio (a common bug is to
    cap the shorter side instead). Introduced in notebook 01.
    """
    if max_size is not None:
        _check_positive("max_size", max_size, integer=True)
    path = Path(path)
    if not path.exists():
        raise ImageError(f"No file at {path}. Check the path (it is relative to {Path.cwd()}).")
    if path.is_dir():
        raise ImageError(f"{path} is a folder, not an image. Give the path of one image file.")
    if path.stat().st_size == 0:
        raise ImageError(f"{path} is empty (0 bytes). Copy or download the image again.")
    try:
        with Image.open(path) as opened:  # reads only the header so far
            width, height = opened.size
            if width * height > MAX_IMAGE_PIXELS:
                raise ImageError(_too_many_pixels(path, width, height))
            upright = ImageOps.exif_transpose(opened)  # decodes the pixels
            upright.load()
            image = _to_rgb(upright)
    except Image.DecompressionBombError as error:
        raise ImageError(
            f"{path} is refused: {error} Shrink it first (at most {MAX_IMAGE_PIXELS:,} pixels)."
        ) from None
    except UnidentifiedImageError:
        raise ImageError(
            f"{path} is not an image that Pillow can read. Is it really a JPEG or PNG? "
            "Open it in an image viewer and export it again as PNG or JPEG."
        ) from None
    except PermissionError:
        raise ImageError(f"{path} cannot be read (permission denied). Check the file's permissions.") from None
    except (OSError, SyntaxError, ValueError) as error:
        if isinstance(error, StyleTransferError):
            raise
        raise ImageError(
            f"{path} is damaged or truncated ({error}). Download or export it again."
        ) from None
    if max_size is not None and max(image.size) > max_size:
        image = resize_longer_side(image, max_size)
    return image


def _too_many_pixels(path: Path, width: int, height: int) -> str:
    return (
        f"{path} claims to be {width} x {height} pixels ({width * height:,}), more than the "
        f"{MAX_IMAGE_PIXELS:,} this project decodes; it may be a decompression bomb. "
        "Shrink it with an image editor first."
    )


def _to_rgb(image: Image.Image) -> Image.Image:
    """Convert any Pillow mode to 8-bit RGB, flattening transparency onto white."""
    if image.mode in ("I;16", "I;16B", "I;16L", "I;16N", "I", "F"):
        # Pillow's own conversion clips 16-bit values at 255 (a white image);
        # scale the full range down instead.
        values = np.asarray(image, dtype=np.float64)
        top = 65535.0 if image.mode.startswith("I;16") or values.max() > 255 else 255.0
        if image.mode == "F" and values.max() <= 1.0:
            top = 1.0
        grey = np.clip(values / top * 255.0 + 0.5, 0, 255).astype(np.uint8)
        return Image.fromarray(grey).convert("RGB")
    if image.mode in ("RGBA", "LA", "PA", "RGBa", "La") or (
        image.mode == "P" and "transparency" in image.info
    ):
        rgba = image.convert("RGBA")
        background = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
        return Image.alpha_composite(background, rgba).convert("RGB")
    return image.convert("RGB")


def resize_longer_side(image: Image.Image, size: int) -> Image.Image:
    """Scale ``image`` so that its longer side is exactly ``size`` pixels.

    The aspect ratio is kept, so content and style images of any shape work:
    the style representation (Gram matrices) does not depend on where things
    are, only on which features occur together.
    """
    _check_positive("size", size, integer=True)
    width, height = image.size
    scale = size / max(width, height)
    new_size = (max(1, round(width * scale)), max(1, round(height * scale)))
    if new_size == image.size:
        return image.copy()
    return v2.functional.resize(image, [new_size[1], new_size[0]], interpolation=InterpolationMode.LANCZOS)


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
    """Undo `imagenet_normalize`, giving [0, 1] pixels back (taught in notebook 01).

    Normalising with mean −m/s and std 1/s is exactly the inverse of normalising with m and s.
    """
    mean = [-m / s for m, s in zip(IMAGENET_MEAN, IMAGENET_STD, strict=True)]
    return v2.functional.normalize(normalized, mean, [1 / s for s in IMAGENET_STD])


def _umask() -> int:
    current = os.umask(0)
    os.umask(current)
    return current


def save_image(image: Image.Image | Tensor, path: str | os.PathLike) -> Path:
    """Write an image so that ``path`` holds either the complete file or what it held before.

    The pixels go to a temporary file in the same folder, which is then renamed
    over ``path`` in one step: an interrupted or failed write never leaves a
    half-written picture behind. The format follows the file extension.
    """
    if isinstance(image, Tensor):
        image = tensor_to_image(image)
    path = Path(path)
    extension = path.suffix.lower()
    formats = Image.registered_extensions()
    if extension not in formats:
        raise OutputError(f"Cannot tell the image format from {path.name!r}: end the file name with .png or .jpg.")
    folder = path.parent
    if not folder.is_dir():
        raise OutputError(
            f"The folder {folder} does not exist. Create it first (mkdir -p {folder}) or choose another --output."
        )
    if path.is_dir():
        raise OutputError(f"{path} is a folder. Give a file name such as {path / 'stylized.png'}.")
    return _write_atomically(path, lambda stream: image.save(stream, format=formats[extension]))


def _write_atomically(path: str | os.PathLike, write: Callable[[Any], None]) -> Path:
    """Call ``write(stream)`` on a temporary file beside ``path``, then rename it over ``path`` in one step.

    An interrupted or failed write never leaves a half-written file behind:
    ``path`` holds either the complete new file or what it held before.
    """
    path = Path(path)
    try:
        handle, temporary = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".partial", dir=path.parent)
    except OSError as error:
        raise OutputError(f"Could not write {path}: {error.strerror or error}. Choose another output path.") from None
    try:
        with os.fdopen(handle, "wb") as stream:
            write(stream)
            stream.flush()
            os.fsync(stream.fileno())
        os.chmod(temporary, 0o666 & ~_umask())  # mkstemp makes it owner-only; give it a normal file's mode
        os.replace(temporary, path)
    except BaseException as error:
        with contextlib.suppress(OSError):
            os.unlink(temporary)
        if isinstance(error, OSError):
            raise OutputError(
                f"Could not write {path}: {error.strerror or error}. Choose another output path."
            ) from None
        raise
    return path


# =============================================================================
# 3. The network: torchvision's VGG19 with the paper's layer names  (notebook 02)
# =============================================================================
# The network is torchvision's `vgg19`, exactly as every PyTorch tutorial
# builds it; style transfer uses only its convolutional part, `.features`, an
# nn.Sequential of 37 modules numbered 0 ... 36. The paper names the layers
# (conv4_2, relu4_2, pool4 ...); VGG19_LAYER_NAMES, read off torchvision's own
# layout, is the one table that maps those names to torchvision's indices.
# The weights come from `VGG19_Weights.IMAGENET1K_V1`: its URL, its hash (the
# first 8 hex digits of the file's SHA-256 are in the file name), the
# torch.hub cache and its metadata (the 1,000 ImageNet class names).

VGG19_WEIGHTS = VGG19_Weights.IMAGENET1K_V1
VGG19_URL = VGG19_WEIGHTS.url
WEIGHTS_ENV = "STYLETRANSFER_VGG19_WEIGHTS"


def _vgg19_skeleton(classifier: bool = False) -> nn.Module:
    """torchvision's VGG19 on the meta device: its layout and shapes, with no memory and no weights.

    Building it there costs nothing; the real tensors are attached later (from
    a checkpoint, without copying the 548 MB file into memory) or made empty
    and initialised, for random weights.
    """
    with torch.device("meta"):
        network = vgg19()
    return network if classifier else network.features


def _vgg19_layer_names() -> tuple[str, ...]:
    """The paper's name of each module of ``vgg19().features``, by index: conv1_1, relu1_1, ..., pool5."""
    names, block, conv = [], 1, 0
    for layer in _vgg19_skeleton():
        if isinstance(layer, nn.Conv2d):
            conv += 1
            names.append(f"conv{block}_{conv}")
        elif isinstance(layer, nn.ReLU):
            names.append(f"relu{block}_{conv}")
        else:
            names.append(f"pool{block}")
            block, conv = block + 1, 0
    return tuple(names)


VGG19_LAYER_NAMES = _vgg19_layer_names()  # position i is torchvision's features[i]
VGG19_LAYER_INDEX = {name: index for index, name in enumerate(VGG19_LAYER_NAMES)}
VGG19_CONV_LAYERS = tuple(name for name in VGG19_LAYER_NAMES if name.startswith("conv"))


def choose_device(device: str | torch.device | None = None) -> torch.device:
    """The requested device, or the best available one: CUDA, then Apple MPS, then CPU."""
    if device is None or str(device) == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda")
        if getattr(torch.backends, "mps", None) is not None and torch.backends.mps.is_available():
            return torch.device("mps")
        return torch.device("cpu")
    try:
        chosen = torch.device(device)
    except (RuntimeError, TypeError):
        raise DeviceError(f"Unknown device {device!r}. Use 'cpu', 'cuda', 'cuda:0', 'mps' or 'auto'.") from None
    if chosen.type == "cuda" and not torch.cuda.is_available():
        raise DeviceError("CUDA was requested, but this PyTorch sees no NVIDIA GPU. Use device='cpu' (or 'auto').")
    if chosen.type == "cuda" and chosen.index is not None and chosen.index >= torch.cuda.device_count():
        raise DeviceError(f"There is no {chosen}: this machine has {torch.cuda.device_count()} GPU(s).")
    if chosen.type == "mps" and not (getattr(torch.backends, "mps", None) and torch.backends.mps.is_available()):
        raise DeviceError("Apple MPS was requested, but it is not available here. Use device='cpu' (or 'auto').")
    if chosen.type not in ("cpu", "cuda", "mps"):
        raise DeviceError(f"Device {device!r} is not supported. Use 'cpu', 'cuda' or 'mps'.")
    return chosen


def load_vgg19(
    weights: str | os.PathLike | None = "imagenet",
    device: str | torch.device | None = None,
) -> nn.Sequential:
    """torchvision's VGG19 feature layers (``vgg19().features``) in eval mode, frozen, on ``device``.

    ``weights`` is
      * ``"imagenet"``: torchvision's ``VGG19_Weights.IMAGENET1K_V1``,
        downloaded once through torch.hub into the cache torchvision also uses
        (its hash is checked). The environment variable
        ``STYLETRANSFER_VGG19_WEIGHTS`` may point at a local copy (a path or
        URL) for offline classrooms;
      * a path or URL of a checkpoint in torchvision's format: the full file
        or its ``features.*`` part only (see `save_features_checkpoint`);
      * ``"random"`` (or ``None``) for random weights, which only tests and
        demonstrations want.
    The returned module's ``weights_source`` says in words which weights it
    holds. If the real weights cannot be had, a `WeightsError` says how to
    provide them; this function never falls back to random weights by itself.
    torchvision's ReLUs are in-place, which saves memory; `extract_features`
    takes care that a stored convolution output is not overwritten by them.
    """
    features = _vgg19_skeleton()
    if weights is None or weights == "random":
        features.to_empty(device="cpu")
        _init_like_torchvision(features)
        features.weights_source = "random (untrained) weights"
    else:
        checkpoint, features.weights_source = _read_checkpoint(weights)
        features.load_state_dict(_features_state_dict(checkpoint, features), assign=True)
    features.requires_grad_(False)  # we optimise the image, never the network
    return features.eval().to(choose_device(device))


def _init_like_torchvision(features: nn.Module) -> None:
    """The initialisation torchvision's VGG gives its convolutions (seeded by ``torch.manual_seed``).

    With it, activations keep their scale with depth, so a random network is a
    fair stand-in for the plumbing in tests.
    """
    for layer in features:
        if isinstance(layer, nn.Conv2d):
            nn.init.kaiming_normal_(layer.weight, mode="fan_out", nonlinearity="relu")
            nn.init.zeros_(layer.bias)


def _features_state_dict(checkpoint: Mapping[str, Any], features: nn.Module) -> dict[str, Tensor]:
    """The ``features.*`` part of a torchvision VGG19 checkpoint, keyed as ``features`` expects.

    Accepts the full checkpoint (its classifier is left on disk: style transfer
    never uses it) or the features alone. Anything that is not VGG19's
    convolutional weights is refused with a message saying what it is.
    """
    if not isinstance(checkpoint, Mapping):
        raise WeightsError(
            f"The checkpoint holds a {type(checkpoint).__name__}, not a state dict. "
            "Use torchvision's vgg19 checkpoint (a dict of tensors)."
        )
    wanted = {key: tensor.shape for key, tensor in features.state_dict().items()}
    state: dict[str, Tensor] = {}
    problems: list[str] = []
    for key, shape in wanted.items():
        tensor = checkpoint.get(f"features.{key}")
        if not isinstance(tensor, Tensor):
            problems.append(f"features.{key} is missing")
        elif tensor.shape != shape:
            problems.append(f"features.{key} has shape {tuple(tensor.shape)}, VGG19 needs {tuple(shape)}")
        else:
            state[key] = tensor.detach().float()
    unexpected = [
        key for key in checkpoint
        if not isinstance(key, str) or key.startswith("features.") and key.removeprefix("features.") not in wanted
    ]
    if unexpected:
        problems.append(f"unexpected keys such as {unexpected[0]} (batch norm? another VGG?)")
    if problems:
        keys = list(checkpoint)[:3]
        raise WeightsError(
            "This file is not torchvision's VGG19 checkpoint: "
            + "; ".join(problems[:3])
            + (f" (and {len(problems) - 3} more problems)" if len(problems) > 3 else "")
            + f". Its first keys are {keys}. Use vgg19-dcbb9e9d.pth ({VGG19_URL})."
        )
    return state


def _read_checkpoint(weights: str | os.PathLike) -> tuple[Mapping[str, Any], str]:
    """Resolve ``weights`` to a loaded state dict and a sentence saying where it came from."""
    source = os.fspath(weights)
    from_env = source == "imagenet" and bool(os.environ.get(WEIGHTS_ENV))
    if source == "imagenet":
        source = os.environ.get(WEIGHTS_ENV) or VGG19_URL
    label = "ImageNet VGG19 (torchvision's IMAGENET1K_V1)" if source == VGG19_URL else f"checkpoint {source}"
    if from_env:
        label += f" (from ${WEIGHTS_ENV})"
    if "://" in source:
        checkpoint, where = _download_checkpoint(source)
        return checkpoint, f"{label}, {where}"
    path = Path(source).expanduser()
    if not path.is_file():
        raise WeightsError(
            f"No weights file at {path}." + (f" ${WEIGHTS_ENV} points there." if from_env else "")
            + "\n" + how_to_get_weights()
        )
    return _torch_load(path, str(path)), f"{label}"


def _download_checkpoint(url: str, timeout: float = 15.0) -> tuple[Mapping[str, Any], str]:
    """Fetch ``url`` through torch.hub's cache (torchvision's), turning its failures into advice.

    For the published URL this is what ``VGG19_WEIGHTS.get_state_dict`` does,
    with the hash checked and ``weights_only=True``.
    """
    file_name = Path(urlparse(url).path).name
    cached = Path(torch.hub.get_dir()) / "checkpoints" / file_name
    where = f"cached at {cached}" if cached.exists() else f"downloaded to {cached}"
    try:
        with _socket_timeout(timeout):
            checkpoint = torch.hub.load_state_dict_from_url(
                url, map_location="cpu", progress=True, check_hash=True, weights_only=True
            )
    except OSError as error:  # URLError, timeouts, refused connections, failed DNS look-ups
        reason = getattr(error, "reason", error)
        raise WeightsError(f"Could not download {url}: {reason}.\n" + how_to_get_weights()) from None
    except RuntimeError as error:
        if "invalid hash value" in str(error):
            raise WeightsError(
                f"The file from {url} does not match the hash in its name ({error}). It was not kept: "
                "the download was probably cut short or the file is not the published one. "
                "Try again, or download it by hand and check it.\n" + how_to_get_weights()
            ) from None
        raise _checkpoint_error(str(cached), error, cached=True) from None
    except Exception as error:  # noqa: BLE001 - any unreadable file gets the same clear message
        raise _checkpoint_error(str(cached), error, cached=True) from None
    return checkpoint, where


@contextlib.contextmanager
def _socket_timeout(seconds: float):
    """torch.hub opens URLs without a timeout; bound it so offline runs fail fast."""
    previous = socket.getdefaulttimeout()
    socket.setdefaulttimeout(seconds)
    try:
        yield
    finally:
        socket.setdefaulttimeout(previous)


def _torch_load(path: Path, label: str) -> Mapping[str, Any]:
    """``torch.load`` with ``weights_only=True`` (a checkpoint may hold tensors, never code) and ``mmap=True``.

    Memory-mapping reads only the bytes that are used: the features' 80 MB of
    a 548 MB file, never its classifier.
    """
    try:
        return torch.load(path, map_location="cpu", weights_only=True, mmap=True)
    except RuntimeError as error:
        if "mmap" not in str(error):  # an old (non-zip) checkpoint cannot be mapped: read it whole
            raise _checkpoint_error(label, error) from None
    except Exception as error:  # noqa: BLE001 - every failure becomes one clear message
        raise _checkpoint_error(label, error) from None
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except Exception as error:  # noqa: BLE001
        raise _checkpoint_error(label, error) from None


def _checkpoint_error(label: str, error: BaseException, cached: bool = False) -> WeightsError:
    text = str(error)
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    if isinstance(error, pickle.UnpicklingError) and "GLOBAL" in text:
        return WeightsError(
            f"Refused to load {label}: it contains Python objects or code, not just tensors, "
            "and loading it could run that code. Use the published vgg19-dcbb9e9d.pth instead."
        )
    if "Weights only load failed" in text:
        # not code, just bytes torch cannot read; never echo torch's "retry with weights_only=False"
        detail = next((line for line in lines if line.startswith("Unsupported operand")), "not a pickle")
    else:
        detail = lines[0] if lines else ""
    return WeightsError(
        f"{label} is not a readable PyTorch checkpoint ({type(error).__name__}: {detail}). "
        + (f"It may be truncated or damaged: delete {label} and try again.\n" if cached
           else "It may be truncated or damaged: download it again.\n")
        + how_to_get_weights()
    )


def how_to_get_weights() -> str:
    """The instructions shown whenever the ImageNet weights are not available."""
    cache = Path(torch.hub.get_dir()) / "checkpoints"
    return (
        "To use the real ImageNet weights, do one of:\n"
        f"  1. let this machine download them once ({VGG19_WEIGHTS.meta['_file_size']:.0f} MB) from {VGG19_URL};\n"
        f"  2. download that file elsewhere and copy it to {cache}/vgg19-dcbb9e9d.pth "
        "(torchvision's cache: a copy there is used as is);\n"
        f"  3. set {WEIGHTS_ENV}=/path/to/vgg19-dcbb9e9d.pth (or a file:// or http:// URL), or pass the "
        "path as weights=PATH (command line: --weights PATH). A features-only copy (80 MB, made by "
        "`python styletransfer_utils.py features-only`) works the same.\n"
        "For a quick test without them, use weights=\"random\" (command line: --weights random); "
        "the result will not look like style transfer."
    )


def save_features_checkpoint(source: str | os.PathLike, destination: str | os.PathLike) -> Path:
    """Write the ``features.*`` part of a VGG19 checkpoint (about 80 MB of the 548 MB file).

    For classrooms that copy the weights onto every machine: style transfer
    never uses the classifier. The source is checked like any checkpoint, and
    the destination is written whole or not at all.
    """
    checkpoint, _ = _read_checkpoint(source)
    state = _features_state_dict(checkpoint, _vgg19_skeleton())
    return _write_atomically(destination, lambda stream: torch.save(
        {f"features.{key}": tensor.contiguous() for key, tensor in state.items()}, stream))


def imagenet_top5(image: Image.Image, weights: str | os.PathLike = "imagenet") -> list[tuple[str, float]]:
    """The five ImageNet classes VGG19's classifier finds most likely in ``image``, with probabilities.

    A quick check that the weights are real: trained weights name what is in
    the photo, random ones produce arbitrary classes. It needs the full
    checkpoint (a features-only file has no classifier) and uses the
    preprocessing that ships with the weights (resize 256, centre crop 224,
    normalise), as torchvision documents. Introduced in notebook 02.
    """
    if weights is None or weights == "random":
        network = vgg19()  # torchvision's own random initialisation
    else:
        network = _vgg19_skeleton(classifier=True)
        checkpoint, source = _read_checkpoint(weights)
        if not any(str(key).startswith("classifier.") for key in checkpoint):
            raise WeightsError(
                f"{source} holds only VGG19's feature layers, no classifier, so it cannot name what is in a "
                "photo. Use the full vgg19-dcbb9e9d.pth for this check."
            )
        try:
            network.load_state_dict(checkpoint, assign=True)
        except RuntimeError as error:
            raise WeightsError(f"{source} is not torchvision's full VGG19 checkpoint: {error}") from None
    with torch.no_grad():
        batch = VGG19_WEIGHTS.transforms()(_to_rgb(image)).unsqueeze(0)
        probabilities = network.eval()(batch).softmax(dim=1)[0]
    top = probabilities.topk(5)
    categories = VGG19_WEIGHTS.meta["categories"]
    return [(categories[i], p) for p, i in zip(top.values.tolist(), top.indices.tolist(), strict=True)]


# =============================================================================
# 4. Features  (notebook 02)
# =============================================================================
# "convX_Y" is the convolution's output before its ReLU, "reluX_Y" after it.
# The paper takes content from its "conv4_2" and style from "conv1_1" ...
# "conv5_1", equally weighted; its Caffe network's ReLUs worked in place, so
# those features were read *after* the ReLU: relu4_2 and relu1_1 ... relu5_1
# in our names. So do Gatys' own PyTorch code, jcjohnson/neural-style and
# crowsonkb/style-transfer-pytorch, and so do our defaults. On the VGG16
# stand-in features, reading before the ReLU gave much the same pictures at
# about 3x the style weight, and kept six more tensors for the backward pass
# (about 100 MiB at 512 px). Notebook 02 compares the two sides.

CONTENT_LAYER = "relu4_2"
STYLE_LAYERS = ("relu1_1", "relu2_1", "relu3_1", "relu4_1", "relu5_1")


def check_layers(layers: Iterable[str]) -> list[str]:
    """Return ``layers`` as a list, refusing names VGG19 does not have."""
    layers = [layers] if isinstance(layers, str) else list(layers)
    unknown = [name for name in layers if name not in VGG19_LAYER_NAMES]
    if unknown:
        raise ParameterError(
            f"Unknown layer name(s) {unknown}. Valid names: {', '.join(VGG19_LAYER_NAMES)}."
        )
    if not layers:
        raise ParameterError(f"Give at least one layer name, e.g. {CONTENT_LAYER}.")
    return layers


def min_image_side(layers: Iterable[str]) -> int:
    """The smallest height/width the network can take to reach all of ``layers``.

    Each 2x2 pooling halves the image, and a pooling needs at least 2 pixels,
    so a layer after k poolings needs 2**k pixels on each side.
    """
    deepest = max(VGG19_LAYER_NAMES.index(name) for name in check_layers(layers))
    poolings = sum(1 for name in VGG19_LAYER_NAMES[:deepest] if name.startswith("pool"))
    return 2**poolings


def extract_features(model: nn.Module, image: Tensor, layers: Iterable[str] = STYLE_LAYERS) -> dict[str, Tensor]:
    """Run ``image`` (values in [0, 1]) through VGG19 and keep the named activations.

    ImageNet normalisation happens here, so callers always work in [0, 1].
    The forward pass stops at the deepest requested layer: for the paper's
    layers that skips conv5_2 ... pool5, which would cost time and give nothing.
    Introduced in notebook 02.
    """
    wanted = check_layers(layers)
    height, width = image.shape[-2:]
    needed = min_image_side(wanted)
    if min(height, width) < needed:
        raise ImageError(
            f"The image is {width} x {height} pixels, but layer {max(wanted, key=VGG19_LAYER_NAMES.index)} "
            f"needs at least {needed} pixels on each side. Use a larger size or a less elongated image."
        )
    remaining = set(wanted)
    found: dict[str, Tensor] = {}
    x = imagenet_normalize(image)
    kept = None
    for name, layer in zip(VGG19_LAYER_NAMES, model, strict=False):
        # torchvision's ReLUs are in-place: one would overwrite a conv output we just kept
        x = F.relu(x) if x is kept and isinstance(layer, nn.ReLU) else layer(x)
        if name in remaining:
            found[name] = kept = x
            remaining.discard(name)
            if not remaining:
                break
    return {name: found[name] for name in wanted}


# =============================================================================
# 5. Gram matrices and losses  (notebooks 03 and 04)
# =============================================================================
# Normalisations differ between every implementation, which is why their
# weights cannot be copied between them. Ours, and why:
#   * gram_matrix divides F Fᵀ by C·H·W, so the style target does not depend on
#     the image size (content and style images may differ in size);
#   * content_loss and style_loss are *means* of squared differences, as in
#     the paper up to constant factors: the paper's per-layer style loss,
#     (1 / 4N²M²) Σ(G−A)² with G = F Fᵀ, equals ours times N²/4, and its content
#     loss ½ Σ(F−P)² equals ours times N·M/2;
#   * the objective (`StyleTransferLoss`) then divides every term by its
#     target's own energy, mean(P²) or mean(A²): each term becomes a relative
#     error, ‖F−P‖²/‖P‖² and ‖G−A‖²/‖A‖². That is our departure from the paper.
#     Multiplying every activation by a constant (another network, another
#     checkpoint's scale, another layer) changes nothing, so α, β and the layer
#     weights mean the same for any weights, and equal layer weights give the
#     layers comparable shares (the paper's raw terms differ by 1000x between
#     layers). Notebook 04 derives it and shows how β maps to the paper's α/β.


def gram_matrix(features: Tensor) -> Tensor:
    """Channel-by-channel correlations of feature maps, shape (B, C, C).

    Entry (i, j) is how strongly channels i and j fire *together*, averaged over
    all positions: texture without layout. Computed in float32 even when the
    network ran in bfloat16, because the sums are long. Introduced in notebook 03.
    """
    batch, channels, height, width = features.shape
    flat = features.float().reshape(batch, channels, height * width)
    return torch.bmm(flat, flat.transpose(1, 2)) / (channels * height * width)


def content_loss(features: Tensor, target: Tensor) -> Tensor:
    """Mean squared difference between feature maps: "does it show the same things?"."""
    return F.mse_loss(features.float(), target.float())


def style_loss(
    features: Mapping[str, Tensor],
    target_grams: Mapping[str, Tensor],
    layer_weights: Mapping[str, float] | None = None,
) -> Tensor:
    """Weighted sum over layers of the mean squared difference of Gram matrices.

    ``layer_weights`` maps layer names to their weight w_l; by default every
    layer of ``target_grams`` counts equally (w_l = 1), as in the paper.
    """
    weights = dict(layer_weights) if layer_weights is not None else {name: 1.0 for name in target_grams}
    total = torch.zeros(())  # a 0-d CPU tensor adds to tensors on any device
    for name, weight in weights.items():
        if weight:
            total = total + weight * F.mse_loss(gram_matrix(features[name]), target_grams[name])
    return total


def total_variation_loss(image: Tensor) -> Tensor:
    """Mean squared difference between neighbouring pixels, across and down.

    Not in the paper: a smoothness prior that penalises the pixel-level noise
    the optimiser otherwise leaves behind. Zero for a flat image.
    """
    across = image[..., :, 1:] - image[..., :, :-1]
    down = image[..., 1:, :] - image[..., :-1, :]
    # sum / count rather than mean(): a one-pixel-wide image has no neighbours and costs 0, not NaN
    return sum(d.float().pow(2).sum() / max(1, d.numel()) for d in (across, down))


@dataclass(frozen=True)
class Losses:
    """One evaluation of the objective, as plain numbers (weighted terms)."""

    content: float
    style: float
    tv: float
    total: float


def target_energy(target: Tensor) -> float:
    """mean(target²): what `StyleTransferLoss` divides each term by, making it a relative error.

    ``content_loss(F, P) / target_energy(P)`` is ‖F−P‖² / ‖P‖², which does not
    change when F and P are multiplied by the same constant. Introduced in notebook 04.
    """
    return target.float().pow(2).mean().item()


class StyleTransferLoss:
    """The full objective  α·content + β·style + tv_weight·TV  for one content/style pair.

    content = content_loss(F, P) / mean(P²)  and
    style = Σ_l w_l · mse(G_l, A_l) / mean(A_l²): relative errors, so that
    the weights do not depend on the network's activation scale (see the note
    at the top of this section). The targets (content features, style Gram
    matrices) and their energies are computed once, here, without gradients;
    calling the object on an image then costs one forward pass up to the
    deepest layer needed. A target with no energy (a layer that is all zeros
    for this image) cannot be matched relatively: its term is left out, with
    a warning. Introduced in notebook 04.
    """

    def __init__(
        self,
        model: nn.Module,
        content: Tensor,
        style: Tensor,
        *,
        content_weight: float = 1.0,
        style_weight: float = 1.0,
        style_layer_weights: Mapping[str, float] | None = None,
        tv_weight: float = 0.0,
        content_layer: str = CONTENT_LAYER,
        autocast_dtype: torch.dtype | None = None,
    ) -> None:
        check_loss_weights(content_weight, style_weight, tv_weight)
        self.model = model
        self.content_weight = content_weight
        self.style_weight = style_weight
        self.tv_weight = tv_weight
        self.content_layer = check_layers([content_layer])[0]
        self.style_layer_weights = check_style_layer_weights(style_layer_weights)
        self.autocast_dtype = autocast_dtype
        # Only terms that count are computed: a zero weight costs no forward or backward work.
        self.active_style = {n: w for n, w in self.style_layer_weights.items() if w} if style_weight else {}
        uses_content = bool(content_weight)
        self.layers = list(dict.fromkeys([self.content_layer] * uses_content + list(self.active_style)))
        self.content_target: Tensor | None = None
        self.style_targets: dict[str, Tensor] = {}
        with torch.no_grad():
            if uses_content:
                self.content_target = self.features(content, [self.content_layer])[self.content_layer].float()
                self.content_energy = target_energy(self.content_target)
            if self.active_style:
                style_features = self.features(style, list(self.active_style))
                self.style_targets = {name: gram_matrix(f) for name, f in style_features.items()}
        empty = [self.content_layer] if uses_content and not self.content_energy > 0 else []
        # each style layer's weight, divided by its target's energy: style_loss then sums relative errors
        self.style_scales: dict[str, float] = {}
        for name, target in self.style_targets.items():
            energy = target_energy(target)
            if energy > 0:
                self.style_scales[name] = self.active_style[name] / energy
            else:
                empty.append(name)
        if empty:
            warnings.warn(
                f"Layer(s) {', '.join(empty)} are all zeros for this image, so there is nothing to match there; "
                "they are left out of the objective.", stacklevel=2,
            )
        if self.content_layer in empty:
            self.content_target = None
        uses_content = self.content_target is not None
        self.layers = list(dict.fromkeys([self.content_layer] * uses_content + [*self.style_scales]))

    def features(self, image: Tensor, layers: Sequence[str] | None = None) -> dict[str, Tensor]:
        """`extract_features`, under autocast when a lower precision was asked for."""
        layers = self.layers if layers is None else layers
        with _autocast(image.device, self.autocast_dtype):
            return extract_features(self.model, image, layers)

    def __call__(self, image: Tensor) -> tuple[Tensor, Losses]:
        features = self.features(image) if self.layers else {}
        zero = image.new_zeros((), dtype=torch.float32)
        content = zero
        if self.content_target is not None:
            relative = content_loss(features[self.content_layer], self.content_target) / self.content_energy
            content = self.content_weight * relative
        style = zero
        if self.style_scales:
            style = self.style_weight * style_loss(features, self.style_targets, self.style_scales)
        tv = self.tv_weight * total_variation_loss(image) if self.tv_weight else zero
        total = content + style + tv
        parts = torch.stack([content.detach(), style.detach(), tv.detach(), total.detach()]).tolist()
        return total, Losses(*parts)


def check_style_layer_weights(weights: Mapping[str, float] | None) -> dict[str, float]:
    """Validate per-layer style weights; ``None`` means the paper's five layers, equally."""
    if weights is None:
        return {name: 1.0 for name in STYLE_LAYERS}
    weights = dict(weights)
    check_layers(weights)
    for name, weight in weights.items():
        _check_positive(f"style weight of {name}", weight, allow_zero=True)
    return weights


def _autocast(device: torch.device, dtype: torch.dtype | None):
    """Mixed precision for the network only; a no-op context when ``dtype`` is None."""
    if dtype is None:
        return contextlib.nullcontext()
    return torch.autocast(device_type=device.type, dtype=dtype)


# =============================================================================
# 6. The optimisation loop  (notebook 05)
# =============================================================================


PRECISIONS = ("auto", "fp32", "bf16")
OPTIMIZERS = ("lbfgs", "adam")
DEFAULT_LR = {"adam": 0.02, "lbfgs": 1.0}  # Adam: pixel units (0-1 scale); L-BFGS: times its own step
LBFGS_HISTORY = 10  # pairs of (step, gradient change) kept: 100 reached no lower objective and costs 10x the memory
COARSE_STEP_RATIO = 0.5  # each coarser scale runs half the steps of the next finer one (measured: see README)


def choose_precision(precision: str, device: torch.device) -> torch.dtype | None:
    """The autocast dtype for the network, or None for plain float32.

    Only the convolutions run in lower precision; Gram matrices and losses stay
    in float32 (see `gram_matrix`). "auto" picks bfloat16 where the hardware
    computes it natively (recent CPUs with AVX512-BF16 or AMX, and GPUs since
    Ampere), and float32 elsewhere.
    """
    if precision == "fp16":
        # The gradients reaching the features are of order 1e-5 to 1e-6, below fp16's normal range
        # (6e-5): without loss scaling they would be flushed towards zero. bf16 has fp32's range.
        raise ParameterError(
            "fp16 is not supported: its range is too small for this objective's gradients, which would "
            "underflow. Use precision='bf16' (GPUs since Ampere, CPUs with AVX512-BF16 or AMX) or 'fp32'."
        )
    if precision not in PRECISIONS:
        raise ParameterError(f"precision must be one of {', '.join(PRECISIONS)}, got {precision!r}.")
    if precision == "fp32":
        return None
    supported = _bf16_supported(device)
    if precision == "bf16":
        if not supported:
            raise ParameterError(f"This {device.type} has no fast bfloat16; use --precision fp32.")
        return torch.bfloat16
    return torch.bfloat16 if supported else None


def _bf16_supported(device: torch.device) -> bool:
    """Native bfloat16 only: where it is emulated (older AVX512 CPUs, pre-Ampere GPUs) it is slower than fp32."""
    if device.type == "cuda":
        return torch.cuda.get_device_capability(device)[0] >= 8
    if device.type == "cpu":
        return bool(torch.cpu._is_avx512_bf16_supported() or torch.cpu._is_amx_tile_supported())
    return False


@dataclass
class LossHistory:
    """The weighted loss terms at every step, ready to plot (``plt.plot(history.total)``)."""

    content: list[float] = field(default_factory=list)
    style: list[float] = field(default_factory=list)
    tv: list[float] = field(default_factory=list)
    total: list[float] = field(default_factory=list)
    size: list[int] = field(default_factory=list)  # longer side of the image at that step

    def append(self, losses: Losses, size: int) -> None:
        self.content.append(losses.content)
        self.style.append(losses.style)
        self.tv.append(losses.tv)
        self.total.append(losses.total)
        self.size.append(size)

    def __len__(self) -> int:
        return len(self.total)


@dataclass
class StyleTransferResult:
    """What `stylize` returns.

    ``best_image`` is the image with the lowest total loss seen at the last
    scale reached, enlarged to the full size if needed; it is what the command
    line saves. ``best_size`` is the longer side at which it was computed:
    smaller than ``size`` when a run stopped during a coarse scale of the
    coarse-to-fine schedule (the picture is then soft). ``stopped`` says why
    the run ended early ("interrupted", "stopped", or why the loss diverged),
    or is None. ``history`` holds every step of every scale (its ``size``
    list says which), so its curve jumps where the scale changes.
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


class StopFlag(Protocol):
    def is_set(self) -> bool: ...


Callback = Callable[[int, Tensor, Losses], Any]


def check_loss_weights(content_weight: float, style_weight: float, tv_weight: float) -> None:
    """α, β and the TV weight must be zero or more, and not all zero."""
    _check_positive("content_weight", content_weight, allow_zero=True)
    _check_positive("style_weight", style_weight, allow_zero=True)
    _check_positive("tv_weight", tv_weight, allow_zero=True)
    if not (content_weight or style_weight or tv_weight):
        raise ParameterError("content_weight, style_weight and tv_weight are all zero: there is nothing to optimise.")


def check_stylize_settings(
    *, content_weight: float, style_weight: float, tv_weight: float, steps: int, lr: float | None, size: int,
    optimizer: str, style_layer_weights: Mapping[str, float] | None, content_layer: str, scales: int | None,
) -> dict[str, float]:
    """Every check of `stylize`'s settings, done before any work (the command line runs it
    before loading the weights); returns the validated per-layer style weights."""
    check_loss_weights(content_weight, style_weight, tv_weight)
    _check_positive("steps", steps, integer=True)
    if lr is not None:  # None: the optimiser's own default (DEFAULT_LR)
        _check_positive("lr", lr)
    _check_positive("size", size, integer=True)
    if scales is not None:
        _check_positive("scales", scales, integer=True)
    if optimizer not in OPTIMIZERS:
        raise ParameterError(f"optimizer must be 'adam' or 'lbfgs', got {optimizer!r}.")
    check_layers([content_layer])
    return check_style_layer_weights(style_layer_weights)


def stylize(
    content: ImageSource,
    style: ImageSource,
    *,
    content_weight: float = 1.0,
    style_weight: float = 1.0,
    style_layer_weights: Mapping[str, float] | None = None,
    tv_weight: float = 0.0,
    content_layer: str = CONTENT_LAYER,
    steps: int = 80,
    lr: float | None = None,
    optimizer: str = "lbfgs",
    init: str | ImageSource = "content",
    size: int = 384,
    seed: int | None = 0,
    device: str | torch.device | None = None,
    weights: str | os.PathLike | None = "imagenet",
    model: nn.Module | None = None,
    precision: str = "auto",
    scales: int | None = None,
    callback: Callback | None = None,
    stop: StopFlag | None = None,
) -> StyleTransferResult:
    """Paint ``content`` in the style of ``style`` by optimising the pixels.

    ``content`` and ``style`` are paths or PIL images of any sizes; ``size`` is
    the longer side of the result (the style image is scaled to the same
    longer side). α = ``content_weight`` and β = ``style_weight`` weigh
    relative errors (see `StyleTransferLoss`), so β = 1 weighs content and
    style alike whatever the network. ``optimizer`` is "lbfgs" (the default:
    on trained features it reached a lower objective than Adam for the same
    number of steps) or "adam"; ``lr=None`` takes that optimiser's default
    (`DEFAULT_LR`: a multiple of L-BFGS's own step, or Adam's step in pixel
    units on a 0-1 scale). Each step evaluates the objective once. ``seed``
    matters only for ``init="noise"``; a run repeats exactly on the same
    machine, device and precision. ``callback(step, image,
    losses)`` is called after every step (previews, progress bars);
    ``stop.is_set()`` ends the run early. Ctrl-C, ``stop`` and a diverging loss
    all keep the best image so far. ``scales`` is the number of resolutions of
    the coarse-to-fine schedule (see `scale_schedule`; None picks it from
    ``size``, 1 optimises at full size only). Introduced in notebook 05.
    """
    lr = DEFAULT_LR[optimizer] if lr is None and optimizer in DEFAULT_LR else lr
    layer_weights = check_stylize_settings(
        content_weight=content_weight, style_weight=style_weight, tv_weight=tv_weight, steps=steps, lr=lr,
        size=size, optimizer=optimizer, style_layer_weights=style_layer_weights, content_layer=content_layer,
        scales=scales,
    )
    started = time.perf_counter()
    device = choose_device(device) if model is None or device is not None else next(model.parameters()).device
    autocast_dtype = choose_precision(precision, device)
    content_image = _as_image(content, "content")
    style_image = _as_image(style, "style")
    for role, picture in (("content", content_image), ("style", style_image)):
        if max(picture.size) < size:
            warnings.warn(
                f"The {role} image is only {picture.width} x {picture.height} pixels; it is enlarged to {size} px "
                "on its longer side and will look soft. Use a larger image or a smaller size.", stacklevel=2,
            )
    content_image = resize_longer_side(content_image, size)
    used = [content_layer] * bool(content_weight) + [n for n, w in layer_weights.items() if w and style_weight]
    needed = min_image_side(used or ["conv1_1"])
    elongated = min(content_image.size, style_image.size, key=lambda shape: min(shape) / max(shape))
    schedule = scale_schedule((size, _shorter_side(elongated, size)), steps, scales, needed)
    if model is None:
        model = load_vgg19(weights, device)
    model = model.to(device)  # (channels-last weights measured no faster, and cost a copy of 80 MB)

    history = LossHistory()
    image: Tensor | None = None
    previous: _Run | None = None
    run: _Run | None = None
    best_size = previous_size = schedule[0][0]
    try:
        for scale_size, scale_steps in schedule:
            content_tensor = _to_device(image_to_tensor(resize_longer_side(content_image, scale_size)), device)
            style_tensor = _to_device(image_to_tensor(resize_longer_side(style_image, scale_size)), device)
            objective = StyleTransferLoss(
                model, content_tensor, style_tensor,
                content_weight=content_weight, style_weight=style_weight,
                style_layer_weights=layer_weights, tv_weight=tv_weight,
                content_layer=content_layer, autocast_dtype=autocast_dtype,
            )
            if image is None:
                image = _initial_image(init, content_tensor, seed)
            else:
                image = _upscale(image.detach(), content_tensor)
            if optimizer == "lbfgs":
                image = image.contiguous()  # L-BFGS flattens its parameter with .view(-1)
            image.requires_grad_(True)
            run = _optimize(objective, image, steps=scale_steps, lr=lr, optimizer=optimizer, callback=callback,
                            stop=stop, first_step=len(history), history=history)
            best_size = scale_size
            if previous is not None and run.best_loss == math.inf:  # stopped before this scale's first step
                run, best_size = _Run(previous.best, previous.best_step, previous.best_loss, run.stopped), previous_size
            if run.stopped is not None:
                break
            previous, previous_size = run, scale_size
    except KeyboardInterrupt:  # between scales (inside one, _optimize handles it): keep what we have
        if previous is None:
            raise
        run, best_size = _Run(previous.best, previous.best_step, previous.best_loss, "interrupted"), previous_size
    except (torch.OutOfMemoryError, MemoryError, RuntimeError) as error:
        if not isinstance(error, (torch.OutOfMemoryError, MemoryError)) and "allocate" not in str(error):
            raise
        where = "GPU" if device.type != "cpu" else "CPU"
        raise DeviceError(
            f"Ran out of {where} memory at size {size}. Try a smaller --size"
            + (", or --device cpu." if device.type != "cpu" else ".")
        ) from None
    final_shape = (content_image.height, content_image.width)
    return StyleTransferResult(
        image=tensor_to_image(_resize_tensor(image.detach(), final_shape)),
        best_image=tensor_to_image(_resize_tensor(run.best, final_shape)),
        history=history,
        best_step=run.best_step,
        best_loss=run.best_loss,
        steps_run=len(history),
        stopped=run.stopped,
        seconds=time.perf_counter() - started,
        weights_source=getattr(model, "weights_source", "weights supplied by the caller"),
        device=str(device),
        precision="fp32" if autocast_dtype is None else str(autocast_dtype).removeprefix("torch."),
        size=max(content_image.size),
        best_size=best_size,
    )


def stylize_defaults() -> dict[str, Any]:
    """`stylize`'s keyword defaults, read from its signature: the one place they are written.

    The command line and the slider panel start from these, so they cannot drift apart.
    """
    import inspect

    return {name: p.default for name, p in inspect.signature(stylize).parameters.items()
            if p.default is not inspect.Parameter.empty}


def scale_schedule(
    shape: tuple[int, int], steps: int, scales: int | None = None, min_side: int = 16
) -> list[tuple[int, int]]:
    """The coarse-to-fine plan for an image of ``shape``: [(longer side, steps), ...] ending at full size.

    A step at half the size costs about a quarter as much, and the large
    shapes of the picture settle there; the full size then refines the detail
    (Gatys et al. 2017, "Controlling Perceptual Factors", do the same). Each
    resolution is half the next. ``scales=None`` halves while the coarsest
    longer side stays at least 96 px and the shorter side at least
    ``min_side`` (384 px runs at 96, 192 and 384; 64 px at full size only).
    Each coarser scale gets half the steps of the next finer one, so the 80
    default steps at 384 px are 11 + 22 + 47. On the stand-in features that
    split reached a lower objective for the same time than equal or
    coarse-heavy splits: a long coarse stage over-fits the coarse picture,
    and the loss then jumps higher at the change of scale. Every scale gets
    at least one step.
    """
    size = max(shape)
    if scales is None:
        scales = 1
        while size / 2**scales >= 96 and _shorter_side(shape, round(size / 2**scales)) >= min_side:
            scales += 1
    _check_positive("scales", scales, integer=True)
    sizes = [max(1, round(size / 2**k)) for k in reversed(range(min(scales, steps)))]
    if _shorter_side(shape, sizes[0]) < min_side:
        raise ImageError(
            f"At {sizes[0]} px on its longer side the image is only {_shorter_side(shape, sizes[0])} px on its "
            f"shorter side, but the layers used need at least {min_side}. Use a larger size, fewer scales, "
            "or a less elongated image."
        )
    shares = [COARSE_STEP_RATIO**k for k in reversed(range(len(sizes)))]
    counts = [max(1, int(steps * share / sum(shares))) for share in shares]
    while sum(counts) > steps:
        counts[counts.index(max(counts))] -= 1
    counts[-1] += steps - sum(counts)
    return list(zip(sizes, counts, strict=True))


def _upscale(image: Tensor, content: Tensor) -> Tensor:
    """Carry the picture up to the next resolution, with the photo's fine detail added.

    Enlarging alone gives a soft picture whose content error at the new size
    is high (the photo's edges are blurred). Adding what the photo has at the
    new size and not at the old one, content − enlarge(shrink(content)), starts
    the finer scale closer to the photo; on the stand-in features it ended a
    default run with a 2-4 % lower objective.
    """
    shape = content.shape[-2:]
    detail = content - _resize_tensor(_resize_tensor(content, image.shape[-2:]), shape)
    return (_resize_tensor(image, shape) + detail).clamp(0, 1).contiguous(memory_format=torch.channels_last)


def _shorter_side(shape: tuple[int, int], longer_side: int) -> int:
    """The shorter side of ``shape`` scaled to ``longer_side``, rounded as `resize_longer_side` does."""
    return max(1, round(min(shape) * longer_side / max(shape)))


def _resize_tensor(image: Tensor, shape: tuple[int, int] | torch.Size) -> Tensor:
    """Bicubic resize of an image tensor (antialiased when shrinking), kept in [0, 1]; a no-op at the same size."""
    if tuple(image.shape[-2:]) == tuple(shape):
        return image
    resized = v2.functional.resize(image.float(), list(shape), interpolation=InterpolationMode.BICUBIC, antialias=True)
    return resized.clamp(0, 1).contiguous(memory_format=torch.channels_last)


def _as_image(source: ImageSource, role: str) -> Image.Image:
    """Accept a path or a PIL image for the content/style/init arguments."""
    if isinstance(source, Image.Image):
        return _to_rgb(source)
    if isinstance(source, (str, os.PathLike)):
        return load_image(source)
    raise ImageError(f"The {role} image must be a file path or a PIL image, got {type(source).__name__}.")


def _to_device(tensor: Tensor, device: torch.device) -> Tensor:
    return tensor.to(device).contiguous(memory_format=torch.channels_last)


def _initial_image(init: str | ImageSource, content: Tensor, seed: int | None) -> Tensor:
    """Where the optimisation starts: the content photo, white noise, or a given image."""
    if isinstance(init, str) and init == "content":
        return content.clone()
    if isinstance(init, str) and init == "noise":
        generator = torch.Generator().manual_seed(0 if seed is None else seed)
        noise = torch.rand(content.shape, generator=generator)
        return _to_device(noise, content.device)
    if isinstance(init, str) and not Path(init).exists() and "." not in Path(init).name:
        raise ParameterError(f"init must be 'content', 'noise' or an image path, got {init!r}.")
    start = _as_image(init, "init").resize((content.shape[-1], content.shape[-2]), Image.Resampling.LANCZOS)
    return _to_device(image_to_tensor(start), content.device)


def _new_optimizer(name: str, image: Tensor, lr: float) -> torch.optim.Optimizer:
    """Adam, or L-BFGS; one ``.step()`` evaluates the objective once with either.

    L-BFGS runs without a line search: with ``max_iter=1`` torch's line search
    would evaluate every accepted point twice, and on the stand-in features
    the plain step (scaled by its curvature estimate, times ``lr``) reached a
    lower objective for the same number of evaluations.
    """
    if name == "adam":
        return torch.optim.Adam([image], lr=lr)
    return torch.optim.LBFGS([image], lr=lr, max_iter=1, history_size=LBFGS_HISTORY)


@dataclass
class _Run:
    best: Tensor
    best_step: int
    best_loss: float
    stopped: str | None


def _optimize(
    objective: StyleTransferLoss,
    image: Tensor,
    *,
    steps: int,
    lr: float,
    optimizer: str,
    callback: Callback | None,
    stop: StopFlag | None,
    first_step: int,
    history: LossHistory,
) -> _Run:
    """The loop itself: evaluate, keep the best image, step, clamp to [0, 1]; appends to ``history``."""
    opt = _new_optimizer(optimizer, image, lr)
    best, best_step, best_loss, stopped = image.detach().clone(), first_step, math.inf, None
    longer_side = max(image.shape[-2:])
    last: list[Losses] = []

    def closure() -> Tensor:
        opt.zero_grad(set_to_none=True)
        total, losses = objective(image)
        last.append(losses)
        if math.isfinite(losses.total):
            total.backward()
        return total

    try:
        for step in range(first_step, first_step + steps):
            if stop is not None and stop.is_set():
                stopped = "stopped"
                break
            snapshot = image.detach().clone()
            last.clear()
            opt.step(closure)
            losses = last[0]
            if optimizer == "lbfgs" and torch.equal(image.detach(), snapshot):
                # L-BFGS found no descent direction (its curvature memory went stale, as it can on
                # a non-convex objective): start it afresh from the steepest descent.
                opt = _new_optimizer(optimizer, image, lr)
            if not math.isfinite(losses.total):
                stopped = (
                    f"the loss became {losses.total} at step {step}: the learning rate ({lr}) is "
                    "probably too large. Try a smaller lr (for example half)."
                )
                break
            history.append(losses, longer_side)
            if losses.total < best_loss:
                best, best_step, best_loss = snapshot, step, losses.total
            with torch.no_grad():
                image.clamp_(0, 1)
                if not torch.isfinite(image).all():
                    stopped = f"the image became NaN at step {step}: the learning rate ({lr}) is too large."
                    break
            if callback is not None:
                callback(step, image.detach(), losses)
    except KeyboardInterrupt:
        stopped = "interrupted"
    return _Run(best, best_step, best_loss, stopped)


# =============================================================================
# 7. Notebook helpers
# =============================================================================
# Figures and controls for the notebooks, in the order the notebooks use them.
# matplotlib, IPython and ipywidgets are imported inside each function. Figures
# are made with matplotlib.figure.Figure (not pyplot), so nothing piles up in
# memory when a cell runs many times; a notebook shows one by leaving it as the
# cell's last expression or with IPython's display(). Such figures render as
# pictures only once the notebook has run `%matplotlib inline` (every notebook
# does, in its import cell).


def notebook_settings(**defaults: Any) -> Any:
    """The few settings a notebook lets tests shrink, read from the environment.

    ``settings = notebook_settings(size=384, steps=300)`` gives
    ``settings.size == 384`` unless ``STYLETRANSFER_SIZE`` is set, and so on
    for each name (``STYLETRANSFER_STEPS`` ...). This is the only way a
    notebook reads the environment: the tests run every notebook at a tiny size
    and a few steps, without editing it.
    """
    from types import SimpleNamespace

    values = {}
    for name, default in defaults.items():
        raw = os.environ.get(f"STYLETRANSFER_{name.upper()}")
        values[name] = default if raw is None else type(default)(raw)
    return SimpleNamespace(**values)


def _new_figure(width: float, height: float):
    from matplotlib.figure import Figure

    return Figure(figsize=(width, height), layout="constrained")


def show_images(
    images: Sequence[Image.Image | Tensor], titles: Sequence[str] | None = None, height: float = 3.5
):
    """Images side by side in one figure, each with its own aspect ratio (notebook 01)."""
    pictures = [tensor_to_image(im) if isinstance(im, Tensor) else im for im in images]
    widths = [p.width / p.height for p in pictures]
    figure = _new_figure(height * sum(widths) + 0.2 * len(pictures), height)
    axes = figure.subplots(1, len(pictures), width_ratios=widths, squeeze=False)[0]
    for index, (axis, picture) in enumerate(zip(axes, pictures, strict=True)):
        axis.imshow(picture)
        axis.set_axis_off()
        if titles is not None:
            axis.set_title(f"{titles[index]}\n{picture.width} x {picture.height}", fontsize=9)
    return figure


def show_feature_maps(features: Tensor, count: int = 16, title: str = ""):
    """The first ``count`` channels of one layer's activations as a grid of grey images (notebook 02)."""
    maps = features.detach().float()[0, :count].cpu()
    columns = min(8, len(maps))
    rows = math.ceil(len(maps) / columns)
    figure = _new_figure(1.3 * columns, 1.3 * rows + 0.4)
    axes = figure.subplots(rows, columns, squeeze=False)
    for index, axis in enumerate(axes.flat):
        axis.set_axis_off()
        if index < len(maps):
            axis.imshow(maps[index], cmap="magma")
            axis.set_title(f"ch {index}", fontsize=7)
    if title:
        figure.suptitle(f"{title}: {tuple(features.shape[1:])}", fontsize=10)
    return figure


@dataclass(frozen=True)
class LayerInfo:
    """One row of `vgg19_summary`: what a layer outputs and how far it sees."""

    name: str
    channels: int
    height: int
    width: int
    receptive_field: int  # side, in input pixels, of the patch one output value depends on


def vgg19_summary(height: int = 224, width: int | None = None) -> list[LayerInfo]:
    """Output size and receptive field of every VGG19 layer for an input of the given size.

    Worked out from torchvision's layout rather than by running the network: 3x3
    convolutions grow the receptive field by 2 x (current stride), 2x2
    poolings double the stride. Used by notebook 02's table and diagram.
    """
    width = height if width is None else width
    rows, field, stride, channels = [], 1, 1, 3
    for name, layer in zip(VGG19_LAYER_NAMES, _vgg19_skeleton(), strict=True):
        if isinstance(layer, nn.Conv2d):
            field += 2 * stride
            channels = layer.out_channels
        elif name.startswith("pool"):
            field += stride
            stride *= 2
            height, width = height // 2, width // 2
        rows.append(LayerInfo(name, channels, height, width, field))
    return rows


def draw_vgg19_diagram(size: int = 224, path: str | os.PathLike | None = None):
    """A drawing of VGG19's five blocks: one bar per conv layer, height = channels, width = image size.

    Generated from `vgg19_summary`, so it always matches the network; with
    ``path`` it is also saved (``assets/vgg19_diagram.png`` was made this way,
    for the README). The convolutions whose outputs (or ReLU outputs) the
    default layers read are highlighted.
    """
    from matplotlib.patches import Rectangle

    figure = _new_figure(12, 3.6)
    axis = figure.add_subplot()
    used = {CONTENT_LAYER.replace("relu", "conv"): "tab:orange",
            **{name.replace("relu", "conv"): "tab:blue" for name in STYLE_LAYERS}}
    x = 0.0
    for info in vgg19_summary(size):
        if info.name.startswith("relu"):
            continue
        if info.name.startswith("pool"):
            axis.annotate("", xy=(x + 0.8, 0.2), xytext=(x, 0.2), arrowprops={"arrowstyle": "->", "color": "grey"})
            axis.text(x + 0.4, 0.02, info.name, ha="center", fontsize=7, color="grey")
            x += 1.2
            continue
        bar_height = 0.4 + 2.6 * math.log2(info.channels / 32) / 4
        colour = used.get(info.name, "lightgrey")
        axis.add_patch(Rectangle((x, 0.3), 0.55, bar_height, color=colour, ec="black", lw=0.5))
        axis.text(x + 0.27, 0.35 + bar_height, f"{info.name}\n{info.channels}ch\n{info.height}px",
                  ha="center", fontsize=6.5)
        x += 0.8
    axis.set_xlim(-0.3, x + 0.3)
    axis.set_ylim(0, 4.2)
    axis.set_axis_off()
    axis.set_title(
        f"VGG19 feature layers at a {size} x {size} input: bar height ~ channels; "
        "blue = style layers, orange = content layer", fontsize=9,
    )
    if path is not None:
        figure.savefig(path, dpi=120)
    return figure


def show_gram_matrices(grams: Mapping[str, Tensor], channels: int = 64):
    """Heatmaps of Gram matrices, one per layer (the first ``channels`` channels), notebook 03."""
    figure = _new_figure(2.6 * len(grams), 2.9)
    axes = figure.subplots(1, len(grams), squeeze=False)[0]
    for axis, (name, gram) in zip(axes, grams.items(), strict=True):
        matrix = gram.detach().float()[0, :channels, :channels].cpu()
        shown = axis.imshow(matrix, cmap="viridis")
        axis.set_title(f"{name} ({gram.shape[-1]}x{gram.shape[-1]})", fontsize=9)
        axis.set_xticks([])
        axis.set_yticks([])
        figure.colorbar(shown, ax=axis, shrink=0.7)
    return figure


def plot_losses(history: LossHistory, axis=None, log: bool = True):
    """Content, style, TV and total loss against the step, on a log scale (notebooks 04-06)."""
    figure = None
    if axis is None:
        figure = _new_figure(5, 3.2)
        axis = figure.add_subplot()
    axis.clear()
    for name in ("total", "content", "style", "tv"):
        values = getattr(history, name)
        if any(values):
            axis.plot(values, label=name, lw=2 if name == "total" else 1)
    if log and any(history.total):
        axis.set_yscale("log")
    axis.set_xlabel("step")
    axis.set_ylabel("weighted loss")
    axis.legend(fontsize=8)
    return figure if figure is not None else axis.figure


class LivePreview:
    """A `stylize` callback that redraws ONE figure in place: the image and the loss curves.

    The figure is shown once through an IPython display handle and then
    updated every ``every`` steps, so a long run does not fill the notebook
    with figures. A tqdm progress bar counts the steps. Introduced in notebook 05.
    """

    def __init__(self, steps: int, every: int = 10, progress: bool = True) -> None:
        from IPython.display import display
        from tqdm.auto import tqdm

        self.every = max(1, every)
        self.history = LossHistory()
        self.figure = _new_figure(10, 4)
        self.image_axis, self.loss_axis = self.figure.subplots(1, 2, width_ratios=[1, 1.2])
        self.image_axis.set_axis_off()
        self.bar = tqdm(total=steps, unit="step", disable=not progress)
        self.handle = display(self.figure, display_id=True)
        self.updates = 0

    def __call__(self, step: int, image: Tensor, losses: Losses) -> None:
        self.history.append(losses, max(image.shape[-2:]))
        self.bar.update(1)
        self.bar.set_postfix(loss=f"{losses.total:.4g}", refresh=False)
        if step % self.every == 0 or step == self.bar.total - 1:
            self.image_axis.clear()
            self.image_axis.set_axis_off()
            self.image_axis.imshow(tensor_to_image(image))
            self.image_axis.set_title(f"step {step}")
            plot_losses(self.history, self.loss_axis)
            if self.handle is not None:
                self.handle.update(self.figure)
            self.updates += 1

    def close(self) -> None:
        """Finish the progress bar (call once the run is over)."""
        self.bar.close()


class StylePanel:
    """Sliders for α, β, TV, each style layer, steps and size, with Run and Stop (notebook 06).

    The run goes on in a background thread, so the Stop button (and the rest
    of the notebook) stays responsive; the preview image and the loss readout
    update inside the panel. ``panel.widget`` is what the notebook displays.
    """

    def __init__(self, content: ImageSource, style: ImageSource, model: nn.Module, *,
                 size: int = 256, steps: int = 200, preview_every: int = 5) -> None:
        import threading

        import ipywidgets as widgets

        self.content, self.style, self.model = content, style, model
        self.preview_every = preview_every
        self.result: StyleTransferResult | None = None
        self.error: Exception | None = None
        self.thread: threading.Thread | None = None
        self._stop = threading.Event()
        slider = {"continuous_update": False, "style": {"description_width": "9em"},
                  "layout": widgets.Layout(width="26em")}
        default = stylize_defaults()
        self.content_weight = widgets.FloatLogSlider(value=default["content_weight"], base=10, min=-3, max=3,
                                                     step=0.25, description="content α", **slider)
        self.style_weight = widgets.FloatLogSlider(value=default["style_weight"], base=10, min=-3, max=3,
                                                   step=0.25, description="style β", **slider)
        # a log slider cannot show 0: its left end (1e-6) is the "no TV" setting, negligible beside α and β
        self.tv_weight = widgets.FloatLogSlider(value=max(default["tv_weight"], 1e-6), base=10, min=-6, max=2,
                                                step=0.5, description="TV weight", **slider)
        self.layer_weights = {
            name: widgets.FloatSlider(value=1.0, min=0.0, max=2.0, step=0.05, description=f"w {name}", **slider)
            for name in STYLE_LAYERS
        }
        self.steps = widgets.IntSlider(value=steps, min=1, max=max(1000, steps), step=1, description="steps", **slider)
        self.size = widgets.IntSlider(value=size, min=32, max=max(768, size), step=16, description="size", **slider)
        self.run_button = widgets.Button(description="Run", button_style="success", icon="play")
        self.stop_button = widgets.Button(description="Stop", button_style="danger", icon="stop", disabled=True)
        self.preview = widgets.Image(format="png", layout=widgets.Layout(max_width="420px"))
        self.readout = widgets.HTML("Set the sliders, then press Run.")
        self.run_button.on_click(lambda _: self.start())
        self.stop_button.on_click(lambda _: self.stop())
        controls = widgets.VBox([
            self.content_weight, self.style_weight, self.tv_weight, *self.layer_weights.values(),
            self.steps, self.size, widgets.HBox([self.run_button, self.stop_button]),
        ])
        self.widget = widgets.HBox([controls, widgets.VBox([self.preview, self.readout])])

    def settings(self) -> dict[str, Any]:
        """The `stylize` keyword arguments the sliders describe right now."""
        return {
            "content_weight": self.content_weight.value,
            "style_weight": self.style_weight.value,
            "tv_weight": 0.0 if self.tv_weight.value <= 10**self.tv_weight.min else self.tv_weight.value,
            "style_layer_weights": {name: s.value for name, s in self.layer_weights.items()},
            "steps": self.steps.value,
            "size": self.size.value,
        }

    def start(self) -> None:
        """Start a run in a background thread (what the Run button does)."""
        import threading

        if self.thread is not None and self.thread.is_alive():
            return
        self._stop.clear()
        self.result, self.error = None, None
        self.run_button.disabled, self.stop_button.disabled = True, False
        self.readout.value = "Starting ..."
        self.thread = threading.Thread(target=self._run, args=(self.settings(),), daemon=True)
        self.thread.start()

    def stop(self) -> None:
        """Ask the run to end after the current step; it keeps its best image (the Stop button)."""
        self._stop.set()

    def wait(self, timeout: float | None = None) -> StyleTransferResult | None:
        """Block until the current run ends (for scripts and tests); returns its result,
        or raises the error that ended it (the panel's readout shows it too)."""
        if self.thread is not None:
            self.thread.join(timeout)
        if self.error is not None:
            raise self.error
        return self.result

    def _run(self, settings: dict[str, Any]) -> None:
        try:
            self.result = stylize(self.content, self.style, model=self.model, callback=self._show,
                                  stop=self._stop, **settings)
            self._show_image(self.result.best_image)
            ending = f"stopped early ({self.result.stopped})" if self.result.stopped else "done"
            if self.result.steps_run == 0:
                self.readout.value = f"<b>{ending}</b> before the first step; nothing changed."
                return
            self.readout.value = (
                f"<b>{ending}</b>: {self.result.steps_run} steps in {self.result.seconds:.1f} s; "
                f"best total loss {self.result.best_loss:.4g} at step {self.result.best_step} "
                "(the preview shows the best image)"
            )
        except Exception as error:  # noqa: BLE001 - a thread's error would vanish; keep it for wait()
            self.error = error
            self.readout.value = f"<b>error</b>: {error}"
        finally:
            self.run_button.disabled, self.stop_button.disabled = False, True

    def _show(self, step: int, image: Tensor, losses: Losses) -> None:
        if step % self.preview_every == 0:
            self._show_image(tensor_to_image(image))
        self.readout.value = (
            f"step {step + 1}/{self.steps.value}: total {losses.total:.4g} = content {losses.content:.4g} "
            f"+ style {losses.style:.4g} + TV {losses.tv:.4g}"
        )

    def _show_image(self, image: Image.Image) -> None:
        import io

        buffer = io.BytesIO()
        image.save(buffer, format="PNG")
        self.preview.value = buffer.getvalue()


# =============================================================================
# 8. Command line
# =============================================================================


def _parse_layer_weights(text: str) -> dict[str, float]:
    """'relu1_1=1,relu2_1=0.75' -> {'relu1_1': 1.0, 'relu2_1': 0.75}."""
    weights = {}
    for item in filter(None, (part.strip() for part in text.split(","))):
        name, sep, value = item.partition("=")
        try:
            weights[name.strip()] = float(value) if sep else 1.0
        except ValueError:
            raise argparse.ArgumentTypeError(f"bad layer weight {item!r}: write it as relu1_1=0.5") from None
    return weights


def build_parser() -> argparse.ArgumentParser:
    """The command line's options, one per `stylize` parameter."""
    parser = argparse.ArgumentParser(
        prog="styletransfer_utils.py",
        description="Neural style transfer (Gatys, Ecker & Bethge 2016): paint a photo in the style of another image.",
        epilog=(
            "exit codes: 0 done; 2 bad option; 3 bad input image; 4 VGG19 weights missing or invalid; "
            "5 output cannot be written; 6 device unavailable or out of memory; 7 loss diverged "
            "(best image saved); 130 interrupted (best image saved). "
            "`styletransfer_utils.py features-only SOURCE DEST` writes an 80 MB features-only copy of the weights."
        ),
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    parser.add_argument("--content", default=str(DEFAULT_CONTENT), help="the photo to repaint")
    parser.add_argument("--style", default=str(DEFAULT_STYLE), help="the image whose style to copy")
    parser.add_argument("--output", default="stylized.png", help="where to write the result (.png or .jpg)")
    default = stylize_defaults()
    parser.add_argument("--size", type=int, default=default["size"], help="longer side of the result, in pixels")
    parser.add_argument("--steps", type=int, default=default["steps"], help="optimisation steps, over all scales")
    parser.add_argument("--content-weight", type=float, default=default["content_weight"],
                        help="α, weight of the content loss (a relative error)")
    parser.add_argument("--style-weight", type=float, default=default["style_weight"],
                        help="β, weight of the style loss (a sum of relative errors)")
    parser.add_argument(
        "--style-layer-weights", type=_parse_layer_weights, default=None, metavar="LAYER=W,...",
        help=f"per-layer style weights (default: {'=1,'.join(STYLE_LAYERS)}=1)",
    )
    parser.add_argument("--content-layer", default=default["content_layer"],
                        help="layer whose activations define content")
    parser.add_argument("--tv-weight", type=float, default=default["tv_weight"],
                        help="weight of the total-variation (smoothness) loss")
    parser.add_argument("--lr", type=float, default=default["lr"],
                        help=f"step size (default: {DEFAULT_LR['lbfgs']} for L-BFGS, a multiple of its own step; "
                        f"{DEFAULT_LR['adam']} for Adam, in pixel units on a 0-1 scale)")
    parser.add_argument("--optimizer", choices=OPTIMIZERS, default=default["optimizer"])
    parser.add_argument("--init", default=default["init"], help="start from 'content', 'noise' or an image path")
    parser.add_argument("--seed", type=int, default=default["seed"],
                        help="seed of the noise for --init noise (runs are repeatable on the same machine, "
                        "device and precision)")
    parser.add_argument("--device", default="auto", help="auto, cpu, cuda, cuda:N or mps")
    parser.add_argument("--precision", choices=PRECISIONS, default="auto", help="network precision")
    parser.add_argument("--scales", type=int, default=None,
                        help="resolutions of the coarse-to-fine schedule (default: from --size; 1 = full size only)")
    parser.add_argument(
        "--weights", default="imagenet",
        help="imagenet (torchvision's checkpoint, or $STYLETRANSFER_VGG19_WEIGHTS), random, or a path/URL",
    )
    parser.add_argument("--quiet", action="store_true", help="no progress bar")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; returns the process exit code (see ``--help``)."""
    argv = sys.argv[1:] if argv is None else list(argv)
    if argv[:1] == ["features-only"]:
        return features_only_main(argv[1:])
    args = build_parser().parse_args(argv)
    say = (lambda *a: None) if args.quiet else (lambda *a: print(*a, file=sys.stderr))
    try:
        # Everything a user can get wrong is checked before the (possibly long) weights download.
        check_stylize_settings(
            content_weight=args.content_weight, style_weight=args.style_weight, tv_weight=args.tv_weight,
            steps=args.steps, lr=args.lr, size=args.size, optimizer=args.optimizer,
            style_layer_weights=args.style_layer_weights, content_layer=args.content_layer, scales=args.scales,
        )
        device = choose_device(args.device)
        choose_precision(args.precision, device)
        content, style = _as_image(args.content, "content"), _as_image(args.style, "style")
        say(f"Loading VGG19 on {device} ...")
        model = load_vgg19(args.weights, device)
        say(f"Weights: {model.weights_source}")
        if args.weights in ("random", None):
            say("WARNING: random weights: the result will not look like style transfer. Use --weights imagenet.")
        result = _run_with_progress(args, content, style, model, device)
    except StyleTransferError as error:
        print(f"error: {error}", file=sys.stderr)
        return error.exit_code
    except KeyboardInterrupt:
        print("Interrupted before the optimisation started; nothing was written.", file=sys.stderr)
        return EXIT_INTERRUPTED
    try:
        output = save_image(result.best_image, args.output)
    except StyleTransferError as error:
        print(f"error: {error}", file=sys.stderr)
        return error.exit_code
    except KeyboardInterrupt:
        print(f"Interrupted while writing; {args.output} was left as it was.", file=sys.stderr)
        return EXIT_INTERRUPTED
    if result.stopped is None:
        print(f"Wrote {output} ({result.steps_run} steps, {result.seconds:.1f} s, best loss {result.best_loss:.4g})")
        return EXIT_OK
    print(f"Stopped early: {result.stopped}", file=sys.stderr)
    if result.best_size < result.size:
        print(f"The run stopped during a coarse scale: the saved picture was computed at {result.best_size} px "
              f"and enlarged to {result.size} px, so it looks soft.", file=sys.stderr)
    print(f"Wrote the best image so far (step {result.best_step}) to {output}")
    return EXIT_INTERRUPTED if result.stopped == "interrupted" else EXIT_DIVERGED


def features_only_main(argv: Sequence[str]) -> int:
    """``styletransfer_utils.py features-only SOURCE DESTINATION``: see `save_features_checkpoint`."""
    parser = argparse.ArgumentParser(
        prog="styletransfer_utils.py features-only",
        description="Copy the feature layers (about 80 MB) out of torchvision's 548 MB VGG19 checkpoint. "
        "Style transfer needs nothing else, so classrooms can copy the small file onto every machine and "
        f"point ${WEIGHTS_ENV} (or --weights) at it.",
    )
    parser.add_argument("source", help="'imagenet' (the cached or downloaded checkpoint), a path or a URL")
    parser.add_argument("destination", help="where to write the features-only checkpoint (.pth)")
    args = parser.parse_args(argv)
    try:
        written = save_features_checkpoint(args.source, args.destination)
    except StyleTransferError as error:
        print(f"error: {error}", file=sys.stderr)
        return error.exit_code
    print(f"Wrote {written} ({written.stat().st_size / 1e6:.0f} MB); use it with --weights {written}")
    return EXIT_OK


def _run_with_progress(
    args: argparse.Namespace, content: Image.Image, style: Image.Image, model: nn.Module, device: torch.device
) -> StyleTransferResult:
    """Call `stylize` with a tqdm progress bar as its callback."""
    from tqdm.auto import tqdm

    with tqdm(total=args.steps, disable=args.quiet, unit="step", desc="stylizing") as bar:

        def progress(step: int, image: Tensor, losses: Losses) -> None:
            bar.update(1)
            bar.set_postfix(loss=f"{losses.total:.4g}", refresh=False)

        return stylize(
            content, style,
            content_weight=args.content_weight, style_weight=args.style_weight,
            style_layer_weights=args.style_layer_weights, tv_weight=args.tv_weight,
            content_layer=args.content_layer, steps=args.steps, lr=args.lr,
            optimizer=args.optimizer, init=args.init, size=args.size, seed=args.seed,
            device=device, model=model, precision=args.precision, scales=args.scales, callback=progress,
        )


if __name__ == "__main__":
    warnings.simplefilter("default")
    sys.exit(main())
