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
from dataclasses import dataclass
from typing import Any

from PIL import Image
from torch import Tensor, nn

from styletransfer_utils import (
    CONTENT_LAYER,
    STYLE_LAYERS,
    VGG19_LAYER_NAMES,
    Losses,
    LossHistory,
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
