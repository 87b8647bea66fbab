"""Reference figures: results drawn ahead, so that a reader sees what the method makes before running anything.

    make figures WEIGHTS=PATH LABEL="what the weights are"     # all four, into docs/figures/
    python -m styletransfer_tools.figures --weights PATH --label TEXT [--out FOLDER] [--only NAME ...]
                                          [--size N] [--steps N]

The README opens with ``result.jpg``, and notebooks 00, 03, 04 and 06 show theirs beside the reader's
own run. Each figure is made by the code its notebook runs (`stylize`, `textures_from_noise`,
`reconstructions_from_noise`, `figure3_grid`), at that notebook's size and step count (``result.jpg`` at
`stylize`'s own defaults, 384 px, where notebook 00 runs a small 160 px version) unless --size and
--steps say otherwise (a test draws all four at 32 px), and its title names the weights: --label, else
`load_vgg19`'s description. The bundled copies were made with the VGG16 stand-in features
(../shared/tools/real_features.py); with torchvision's real weights, where there is internet:
``make figures WEIGHTS=imagenet LABEL="ImageNet VGG19"``. Files are JPEG, written whole or not at all.
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from torch import nn

from styletransfer_tools.files import check_destination, save_figure
from styletransfer_tools.notebook import (
    figure3_grid,
    layers_label,
    reconstructions_from_noise,
    show_figure3_grid,
    show_images,
    textures_from_noise,
)
from styletransfer_utils import (
    DEFAULT_CONTENT,
    DEFAULT_STYLE,
    Settings,
    StyleTransferError,
    load_image,
    load_vgg19,
    stylize,
)

ASSETS = Path(__file__).resolve().parents[1] / "assets"
FIGURE3_BETAS = (100.0, 10.0, 1.0, 0.1)  # notebook 06's columns: most style on the left, as the paper's


def titled(figure: Any, what: str, label: str) -> Any:
    """``figure`` with a title that says what it shows and which weights made it."""
    figure.suptitle(f"{what}\nweights: {label}", fontsize=9)
    return figure


def draw_result(model: nn.Module, size: int, steps: int, label: str) -> Any:
    """The README's opening picture and notebook 00's: the bundled photo, the painting, and `stylize`'s result."""
    photo, painting = load_image(DEFAULT_CONTENT, max_size=size), load_image(DEFAULT_STYLE, max_size=size)
    result = stylize(photo, painting, model=model, size=size, steps=steps)
    print(f"  total loss {result.history.total[0]:.3g} -> {result.best_loss:.3g}")
    figure = show_images([photo, painting, result.best_image], ["photo (content)", "painting (style)", "result"])
    scales = len(dict.fromkeys(result.history.size))
    return titled(figure, f"stylize: {size} px, {steps} {result.settings.optimizer} steps over {scales} "
                  f"scale{'s' * (scales > 1)}", label)


def draw_textures(model: nn.Module, size: int, steps: int, label: str) -> Any:
    """Notebook 03's textures: the stained glass's style alone, from noise, at growing sets of layers."""
    style = load_image(ASSETS / "stained_glass.png", max_size=size)
    runs = textures_from_noise(style, model=model, size=size, steps=steps)
    for layer, run in runs.items():
        print(f"  up to {layer}: style error {run.history.style[0]:.3g} -> {run.best_loss:.3g}")
    figure = show_images([style, *(run.best_image for run in runs.values())],
                         ["style", *(f"up to {layer}" for layer in runs)], height=2.4, columns=3)
    return titled(figure, f"textures from noise, the style term alone: {size} px, {steps} steps at one scale", label)


def draw_reconstructions(model: nn.Module, size: int, steps: int, label: str) -> Any:
    """Notebook 04's reconstructions: the astronaut rebuilt from noise by the content term at each layer."""
    photo = load_image(ASSETS / "astronaut.jpg", max_size=size)
    runs = reconstructions_from_noise(photo, model=model, size=size, steps=steps)
    for layer, run in runs.items():
        print(f"  {layer}: content error {run.history.content[0]:.3g} -> {run.best_loss:.3g}")
    figure = show_images([photo, *(run.best_image for run in runs.values())], ["photo", *runs], height=2.4,
                         columns=3)
    what = f"the photo rebuilt from noise, the content term alone: {size} px, {steps} steps at one scale"
    return titled(figure, what, label)


def draw_figure3(model: nn.Module, size: int, steps: int, label: str) -> Any:
    """Notebook 06's grid, the paper's Figure 3: growing sets of style layers (rows) x β (columns)."""
    grid = figure3_grid(ASSETS / "chelsea.jpg", ASSETS / "swirls.png", FIGURE3_BETAS, model=model, size=size,
                        steps=steps, progress=False)
    print("  content error / style error of each cell (relative errors; the style error over that row's layers)")
    print(f"  {'style layers':20}" + "".join(f"{f'β = {beta:g}':>18}" for beta in grid.betas))
    for subset, row in zip(grid.layer_subsets, grid.errors(), strict=True):
        print(f"  {layers_label(subset):20}" + "".join(f"{f'{c:.3g} / {s:.3g}':>18}" for c, s in row))
    return show_figure3_grid(grid, label=label)


@dataclass(frozen=True)
class Reference:
    """One reference figure: the notebook that shows it, that notebook's size and steps, and how to draw it."""

    notebook: str
    size: int
    steps: int
    draw: Callable[[nn.Module, int, int, str], Any]  # (model, size, steps, label) -> a titled figure


FIGURES = {  # file name in docs/figures/ -> how it is made: the notebooks' own defaults, stylize's for result.jpg
    "result.jpg": Reference("00 and the README", Settings().size, Settings().steps, draw_result),
    "textures.jpg": Reference("03_gram_matrices", 256, 120, draw_textures),
    "reconstructions.jpg": Reference("04_building_the_losses", 192, 150, draw_reconstructions),
    "figure3_grid.jpg": Reference("06_tuning_the_style_weights", 128, Settings().steps, draw_figure3),
}


def draw(name: str, model: nn.Module, label: str, size: int | None = None, steps: int | None = None) -> Any:
    """The figure ``name`` of `FIGURES`, titled with what it shows and the weights that made it (``label``)."""
    reference = FIGURES[name]
    return reference.draw(model, reference.size if size is None else size,
                          reference.steps if steps is None else steps, label)


def positive(text: str) -> int:
    """An argparse type: a whole number of at least 1 (``--size 0`` must not mean "the default")."""
    if not text.strip().isdigit() or int(text) < 1:
        raise argparse.ArgumentTypeError(f"must be a whole number of at least 1, got {text!r}")
    return int(text)


def main(argv: Sequence[str] | None = None) -> int:
    """Draw the reference figures; returns the exit code (0, or 2 for bad input)."""
    parser = argparse.ArgumentParser(prog="python -m styletransfer_tools.figures", description=__doc__.split("\n")[0])
    parser.add_argument("--weights", default="imagenet", help="'imagenet', 'random' or a checkpoint's path")
    parser.add_argument("--label", default="", help="what the weights are, written on every figure "
                        "(default: where they were loaded from)")
    parser.add_argument("--out", type=Path, default=Path(__file__).resolve().parents[1] / "docs" / "figures",
                        help="the folder to write into (default: docs/figures)")
    parser.add_argument("--only", nargs="+", choices=list(FIGURES), default=list(FIGURES), help="some figures only")
    parser.add_argument("--size", type=positive, help="longer side of every run, px (default: each notebook's)")
    parser.add_argument("--steps", type=positive, help="steps of every run (default: each notebook's)")
    args = parser.parse_args(argv)
    try:
        for name in args.only:
            check_destination(args.out / name, "--out")
        model = load_vgg19(args.weights)
        label = args.label or model.weights_source
        for name in args.only:
            started = time.perf_counter()
            print(f"{name} (notebook {FIGURES[name].notebook}):")
            save_figure(draw(name, model, label, args.size, args.steps), args.out / name, dpi=100)
            print(f"  wrote {args.out / name} in {time.perf_counter() - started:.0f} s")
    except StyleTransferError as error:  # bad weights, a size too small for the layers, an unwritable folder
        print(f"error: {error}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
