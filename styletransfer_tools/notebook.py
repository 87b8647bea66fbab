"""Figures, the live preview and the environment-settings helper that the notebooks use.

Display code stays out of the course's code: the optimisation loop takes a
callback, and `LivePreview` is one. matplotlib, IPython and tqdm are imported
inside the functions that need them. Figures are made with
matplotlib.figure.Figure (not pyplot), so nothing piles up in memory when a
cell runs many times; a notebook shows one by leaving it as the cell's last
expression (after `%matplotlib inline`, which every notebook runs).
"""

from __future__ import annotations

import math
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Any

from PIL import Image
from torch import Tensor, nn

from styletransfer_utils import (
    CONTENT_LAYER,
    STYLE_LAYERS,
    VGG19_LAYER_NAMES,
    ImageSource,
    Losses,
    LossHistory,
    ParameterError,
    Settings,
    StyleTransferResult,
    as_image,
    check_number,
    stylize,
    tensor_to_image,
    vgg19_skeleton,
)


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
        variable = f"STYLETRANSFER_{name.upper()}"
        raw = os.environ.get(variable)
        values[name] = default if raw is None else environment_number(variable, raw, type(default))
    return SimpleNamespace(**values)


def environment_number(variable: str, raw: str, kind: type) -> int | float:
    """The value of ``variable`` as a whole number (``kind`` int) or a number, at least 1 (a size, a step
    count), or a `ParameterError` that names the variable and what it may be."""
    allowed = "a whole number" if kind is int else "a number"
    try:
        value = kind(raw.strip())
    except ValueError:
        raise ParameterError(f"must be {allowed} of at least 1, got {raw!r}. Unset it, or give for example "
                             f"{variable}=64.", name=variable) from None
    check_number(variable, value, integer=kind is int, at_least=1)
    return value


def _new_figure(width: float, height: float):
    from matplotlib.figure import Figure

    return Figure(figsize=(width, height), layout="constrained")


def show_images(
    images: Sequence[Image.Image | Tensor], titles: Sequence[str] | None = None, height: float = 3.5,
    columns: int | None = None,
):
    """Images side by side in one figure, each with its own aspect ratio (notebook 01); with ``columns``,
    in rows of that many, each image in a cell as wide as the widest needs."""
    pictures = [tensor_to_image(im) if isinstance(im, Tensor) else im for im in images]
    widths = [p.width / p.height for p in pictures]
    if columns is not None:
        check_number("columns", columns, integer=True, at_least=1)
    title_room = 0.45 if titles is not None else 0  # inches for two lines of title above each image
    if columns is None or columns >= len(pictures):
        figure = _new_figure(height * sum(widths) + 0.2 * len(pictures), height + title_room)
        axes = figure.subplots(1, len(pictures), width_ratios=widths, squeeze=False)[0]
    else:
        rows = math.ceil(len(pictures) / columns)
        figure = _new_figure((height * max(widths) + 0.2) * columns, (height + title_room) * rows)
        axes = figure.subplots(rows, columns, squeeze=False).flatten()
        for axis in axes[len(pictures):]:
            axis.set_axis_off()
    for index, (axis, picture) in enumerate(zip(axes, pictures, strict=False)):
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
    for name, layer in zip(VGG19_LAYER_NAMES, vgg19_skeleton(), strict=True):
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


def scale_changes(history: LossHistory) -> list[int]:
    """The steps at which a coarse-to-fine run moved to a new image size (from ``history.size``), notebook 05.

    Step ``s`` in the list is the first step at the new size; step ``s - 1`` was the last at the old one.
    """
    sizes = history.size
    return [step for step in range(1, len(sizes)) if sizes[step] != sizes[step - 1]]


def plot_losses(history: LossHistory, axis=None, log: bool = True, mark_scales: bool = False):
    """Each term of the objective (`LOSS_TERMS`) and the total against the step, on a log scale (notebooks 04-06).

    With ``mark_scales``, a dashed line marks each change of image size (`scale_changes`), and each
    scale's longer side is written at the top: the losses on either side of a line belong to two
    different objectives (notebook 05).
    """
    figure = None
    if axis is None:
        figure = _new_figure(5, 3.2)
        axis = figure.add_subplot()
    axis.clear()
    for name, values in {"total": history.total, **history.terms}.items():
        if any(values):
            axis.plot(values, label=name, lw=2 if name == "total" else 1)
    if log and any(history.total):
        axis.set_yscale("log")
    if mark_scales and history.size:
        starts = [0, *scale_changes(history)]
        for start in starts:
            if start:
                axis.axvline(start - 0.5, color="grey", linestyle="--", linewidth=0.8)
            axis.annotate(f"{history.size[start]} px", xy=(start, 1), xycoords=("data", "axes fraction"),
                          xytext=(2, -2), textcoords="offset points", va="top", fontsize=7, color="grey")
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


# ---- The paper's Figure 1: textures and reconstructions from noise (notebooks 03 and 04) --------------------

FIGURE_1_CONTENT_LAYERS = {"conv1_2": "relu1_2", "conv2_2": "relu2_2", "conv3_2": "relu3_2",
                           "conv4_2": "relu4_2", "conv5_2": "relu5_2"}  # the paper's names -> read after the ReLU


def textures_from_noise(style: ImageSource, *, model: nn.Module, shape: tuple[int, int] = (450, 300),
                        layers: Sequence[str] = STYLE_LAYERS, **changes: Any) -> dict[str, StyleTransferResult]:
    """The style half of the paper's Figure 1 (notebook 03): the style term alone, from noise, matched at
    ``layers[:1]``, then ``layers[:2]``, ... one scale each, equal layer weights. Keyed by the deepest
    layer used. The canvas is a blank image of ``shape`` (width, height): with α = 0 only its shape counts.
    ``changes`` (``size``, ``steps``, ``pooling``, even ``scales=None`` ...) apply to every run, as in `stylize`."""
    canvas = Image.new("RGB", shape)
    settings = {"content_weight": 0, "style_weight": 1, "init": "noise", "scales": 1, **changes}
    return {layers[depth - 1]: stylize(canvas, style, model=model, style_layer_weights=dict.fromkeys(
        layers[:depth], 1.0), **settings) for depth in range(1, len(layers) + 1)}


def reconstructions_from_noise(photo: ImageSource, *, model: nn.Module, layers: Sequence[str] = tuple(
        FIGURE_1_CONTENT_LAYERS.values()), **changes: Any) -> dict[str, StyleTransferResult]:
    """The content half of the paper's Figure 1 (notebook 04): the photo rebuilt from noise by the content
    term alone, at each of ``layers`` in turn, one scale each. Keyed by the layer. The photo stands in as
    the style image too: with β = 0 no style term enters the objective, whatever the style image.
    ``changes`` (``size``, ``steps``, ``pooling`` ...) apply to every run, as in `stylize`."""
    settings = {"style_weight": 0, "init": "noise", "scales": 1, **changes}
    return {layer: stylize(photo, photo, model=model, content_layer=layer, **settings) for layer in layers}


# ---- The paper's Figure 3: style layers x β (notebook 06, styletransfer_tools.figures) ---------------------


def figure3_layer_subsets(layers: Sequence[str] = STYLE_LAYERS) -> list[dict[str, float]]:
    """The rows of the paper's Figure 3: style matched at the first layer, then the first two, ... then all.

    Each row is a ``style_layer_weights`` for `stylize`: the k layers used get equal weights that add up to
    ``len(layers)`` (5/k each of the five), as the default of 1 per layer does for all five. The style term's
    total weight, and so what β means, is then the same in every row; the other layers get no entry, so the
    forward pass stops at the deepest one needed.
    """
    layers = list(layers)
    return [{name: len(layers) / count for name in layers[:count]} for count in range(1, len(layers) + 1)]


@dataclass(frozen=True)
class Figure3Grid:
    """What `figure3_grid` computed: ``results[row][column]`` used ``layer_subsets[row]`` and ``betas[column]``."""

    layer_subsets: list[dict[str, float]]
    betas: list[float]
    results: list[list[StyleTransferResult]]

    @property
    def weights_source(self) -> str:
        """Where the network's weights came from (`load_vgg19`'s description), the same for every cell."""
        return self.results[0][0].weights_source

    def errors(self) -> list[list[tuple[float, float]]]:
        """(content error, style error) of each cell's best image: the weighted terms divided by α and by β.

        Both are relative errors (notebook 04); the style error is Σ w_l ‖G_l−A_l‖²/‖A_l‖² over that row's
        layers only, so it compares cells within a row, while the content error compares any two cells.
        A term whose weight is 0 cannot be divided back: its error is NaN.
        """
        def error(term: float, weight: float) -> float:
            return term / weight if weight else math.nan

        return [[(error(run.history.content[run.best_step], run.settings.content_weight),
                  error(run.history.style[run.best_step], beta)) for run, beta in zip(row, self.betas, strict=True)]
                for row in self.results]


def figure3_grid(
    content: ImageSource,
    style: ImageSource,
    betas: Sequence[float],
    *,
    model: nn.Module,
    layer_subsets: Sequence[Mapping[str, float]] | None = None,
    settings: Settings | None = None,
    progress: bool = True,
    **changes: Any,
) -> Figure3Grid:
    """Re-run the paper's Figure 3: one `stylize` run per (style layers, β) pair, everything else the same.

    ``layer_subsets`` (default: `figure3_layer_subsets`) are the rows, ``betas`` the columns;
    ``settings`` and ``changes`` (``size=128, steps=80`` ...) apply to every run, as in `stylize`. The
    images are loaded once. A tqdm bar counts the runs unless ``progress`` is False. The results keep no
    ``resume_state``: no run goes on from a cell of the grid, and twenty runs' L-BFGS histories would stay in
    memory with it, in a kernel that a class's server shares (benchmarks/capacity.py).
    """
    from tqdm.auto import tqdm

    subsets = [dict(subset) for subset in (figure3_layer_subsets() if layer_subsets is None else layer_subsets)]
    base = (settings or Settings()).replace(**changes)
    photo, painting = as_image(content, "content"), as_image(style, "style")
    results = []
    with tqdm(total=len(subsets) * len(betas), unit="run", disable=not progress) as bar:
        for subset in subsets:
            row = []
            for beta in betas:
                run = stylize(photo, painting, base, model=model, style_weight=beta, style_layer_weights=subset)
                row.append(replace(run, resume_state=None))
                bar.update(1)
            results.append(row)
    return Figure3Grid(subsets, list(betas), results)


def layers_label(weights: Mapping[str, float]) -> str:
    """A short name for a set of style layers: 'relu1_1 … relu4_1' for a run of consecutive style layers."""
    names = [name for name, weight in weights.items() if weight]
    places = [STYLE_LAYERS.index(name) if name in STYLE_LAYERS else -1 for name in names]
    if len(names) > 2 and -1 not in places and places == list(range(places[0], places[0] + len(names))):
        return f"{names[0]} … {names[-1]}"
    return " + ".join(names) or "no style layer"


def show_figure3_grid(grid: Figure3Grid, label: str | None = None, cell: float = 1.9):
    """The grid as one figure for a slide: a row per set of style layers, a column per β, titled with the
    weights used: ``label`` (e.g. "VGG16 stand-in features"), else `load_vgg19`'s description."""
    rows, columns = len(grid.results), len(grid.betas)
    first = grid.results[0][0]
    aspect = first.best_image.width / first.best_image.height
    figure = _new_figure(cell * aspect * columns + 1.3, cell * rows + 1.1)
    axes = figure.subplots(rows, columns, squeeze=False)
    for row, (subset, runs) in enumerate(zip(grid.layer_subsets, grid.results, strict=True)):
        for column, (beta, run) in enumerate(zip(grid.betas, runs, strict=True)):
            axis = axes[row][column]
            axis.imshow(run.best_image)
            axis.set_xticks([])
            axis.set_yticks([])
            if row == 0:
                axis.set_title(f"β = {beta:g}", fontsize=10)
            if column == 0:
                weights = sorted({f"{weight:.3g}" for weight in subset.values() if weight})
                axis.set_ylabel(f"{layers_label(subset)}\nw_l = {', '.join(weights)}", fontsize=8)
    s = first.settings
    weights = label or grid.weights_source  # a label names the weights without a machine's file path
    figure.suptitle(
        f"Gatys et al. (2016), Figure 3, recomputed: style layers (rows) × β (columns); α = {s.content_weight:g}, "
        f"content {s.content_layer}, {s.size} px, {s.steps} {s.optimizer} steps\nweights: {weights}", fontsize=9)
    return figure
