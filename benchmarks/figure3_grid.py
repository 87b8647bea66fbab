"""The paper's Figure 3 recomputed as one figure for a slide: style layers (rows) x β (columns).

Gatys et al. (2016), Figure 3, matches the style at growing sets of layers (conv1_1, then conv1_1 and
conv2_1, ... up to conv5_1) and weighs content against style with four ratios α/β one decade apart. This
script runs `stylize` for every pair (`styletransfer_tools.notebook.figure3_grid`, the code notebook 06
runs) and writes the figure (`show_figure3_grid`) to the file you name, whole or not at all. The rows are
this project's relu1_1 ... relu5_1 (the paper's convX_1 read after the ReLU); the columns are β values on
this project's scale, where the terms are relative errors, so the paper's α/β numbers do not carry over
(notebook 04, section 6; notebook 06 says how the default β values were chosen).

Usage:
    python benchmarks/figure3_grid.py --weights PATH --out FILE.png [--size 128] [--steps 80] \\
        [--beta 100 10 1 0.1] [--content IMAGE] [--style IMAGE] [--label "what the weights are"]
It prints each cell's content and style errors and the time taken; nothing is written into the project.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
from styletransfer_tools.files import save_figure  # noqa: E402
from styletransfer_tools.notebook import figure3_grid, layers_label, show_figure3_grid  # noqa: E402
from styletransfer_utils import load_vgg19  # noqa: E402

BETAS = (100.0, 10.0, 1.0, 0.1)  # left to right: most style to most content, as the paper's columns


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--weights", required=True, help="'imagenet', 'random' or a checkpoint's path")
    parser.add_argument("--out", required=True, type=Path, help="the figure's file (.png, .jpg, .pdf, .svg)")
    parser.add_argument("--size", type=int, default=128, help="longer side of each result (px)")
    parser.add_argument("--steps", type=int, default=80, help="optimisation steps of each run")
    parser.add_argument("--beta", type=float, nargs="+", default=list(BETAS), help="the columns' style weights")
    parser.add_argument("--content", default=str(ROOT / "assets" / "chelsea.jpg"), help="the photo")
    parser.add_argument("--style", default=str(ROOT / "assets" / "swirls.png"), help="the painting")
    parser.add_argument("--label", default=None, help="what the weights are, written on the figure")
    parser.add_argument("--dpi", type=int, default=150)
    args = parser.parse_args()
    if not args.out.parent.is_dir():
        parser.error(f"the folder {args.out.parent} does not exist")
    if args.out.suffix.lower() not in (".png", ".jpg", ".jpeg", ".pdf", ".svg"):
        parser.error("--out must end in .png, .jpg, .pdf or .svg")

    model = load_vgg19(args.weights)
    started = time.perf_counter()
    grid = figure3_grid(args.content, args.style, args.beta, model=model, size=args.size, steps=args.steps)
    seconds = time.perf_counter() - started
    print(f"weights: {args.label or ''} ({grid.weights_source})")
    print(f"{len(grid.betas) * len(grid.layer_subsets)} runs at {args.size} px, {args.steps} steps: {seconds:.0f} s")
    print("content error / style error of each cell (relative errors; the style error over that row's layers)")
    print(f"{'style layers':20}" + "".join(f"{f'β = {beta:g}':>18}" for beta in grid.betas))
    for subset, row in zip(grid.layer_subsets, grid.errors(), strict=True):
        print(f"{layers_label(subset):20}" + "".join(f"{f'{c:.3g} / {s:.3g}':>18}" for c, s in row))
    figure = show_figure3_grid(grid, label=args.label)
    save_figure(figure, args.out, args.dpi)
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
