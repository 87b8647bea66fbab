"""The overview diagram of the method, in the paper's notation, drawn with matplotlib.

The photo p, the artwork a and the image x go through VGG19; the features Pˡ
and Fˡ and the Gram matrices Gˡ and Aˡ feed the losses; the gradient of the
total loss flows back to the pixels of x, which the optimiser changes, and the
loop repeats. Notebook 00 opens the series with it; later notebooks draw it
again with one piece emphasised (``draw_overview(highlight="gram")``) to say
"you are here". The layer names and defaults on it are read from the course's
code, so the drawing cannot drift from what runs.

``python -m styletransfer_tools.diagram docs/overview.png`` writes the figure
for the README (whole or not at all, `files.save_figure`).
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from styletransfer_tools.files import save_figure
from styletransfer_utils import CONTENT_LAYER, STYLE_LAYERS, OutputError, Settings

if TYPE_CHECKING:  # matplotlib is imported where a figure is drawn, as in notebook.py
    from matplotlib.figure import Figure

# The pieces that `highlight` can emphasise, what each is, and the notebook that builds it.
PIECES = {
    "images": "the images p, a and x (notebook 01)",
    "vgg19": "VGG19 and its features Pˡ, Fˡ (notebook 02)",
    "gram": "the Gram matrices Gˡ and Aˡ (notebook 03)",
    "losses": "the losses and their weights α, β (notebooks 04 and 06)",
    "optimiser": "the gradient and the optimiser (notebook 05)",
}
_COLOURS = {"images": "#1f77b4", "vgg19": "#7b4ea3", "gram": "#2a9d8f", "losses": "#d1495b", "optimiser": "#e07b00"}
_DIM_EDGE, _DIM_FACE, _DIM_TEXT = "#c9c9c9", "#f4f4f4", "#a6a6a6"


def _tint(colour: str, amount: float = 0.85) -> tuple[float, float, float]:
    """``colour`` mixed with white (``amount`` of white): the face of a box whose edge is ``colour``."""
    from matplotlib.colors import to_rgb

    return tuple(c + (1 - c) * amount for c in to_rgb(colour))


class _Painter:
    """Draws boxes, arrows and labels on one axis, each belonging to a piece, emphasised or greyed."""

    def __init__(self, axis, highlight: str | None) -> None:
        self.axis, self.highlight = axis, highlight

    def look(self, piece: str) -> tuple[str, object, str, float]:
        """(edge colour, face colour, text colour, line width) of a piece, given what is highlighted."""
        colour = _COLOURS[piece]
        if self.highlight is None:
            return colour, _tint(colour), "black", 1.4
        if piece == self.highlight:
            return colour, _tint(colour, 0.75), "black", 2.6
        return _DIM_EDGE, _DIM_FACE, _DIM_TEXT, 1.0

    def box(self, piece: str, x: float, y: float, width: float, height: float, symbol: str, text: str,
            symbol_size: float = 15) -> None:
        """A rounded box centred on (x, y): the paper's symbol on top, a short description under it."""
        from matplotlib.patches import FancyBboxPatch

        edge, face, ink, width_line = self.look(piece)
        self.axis.add_patch(FancyBboxPatch((x - width / 2, y - height / 2), width, height,
                                           boxstyle="round,pad=0,rounding_size=1.2", linewidth=width_line,
                                           edgecolor=edge, facecolor=face))
        top = y + height / 2
        self.axis.text(x, top - 1.2, symbol, ha="center", va="top", fontsize=symbol_size, color=ink,
                       fontweight="bold")
        self.axis.text(x, top - 1.6 - symbol_size / 5.5, text, ha="center", va="top", fontsize=8.5, color=ink,
                       linespacing=1.25)

    def arrow(self, piece: str, start: tuple[float, float], end: tuple[float, float], label: str = "",
              dashed: bool = False, bend: float = 0.0) -> None:
        """An arrow from ``start`` to ``end`` (optionally bent, dashed), with a small label above its middle."""
        from matplotlib.patches import FancyArrowPatch

        edge, _, ink, width_line = self.look(piece)
        self.axis.add_patch(FancyArrowPatch(start, end, arrowstyle="-|>", mutation_scale=13, color=edge,
                                            linewidth=width_line, linestyle="--" if dashed else "-",
                                            connectionstyle=f"arc3,rad={bend}", shrinkA=0, shrinkB=0))
        if label:
            middle = ((start[0] + end[0]) / 2, (start[1] + end[1]) / 2 + 1.0)
            self.axis.text(*middle, label, ha="center", va="bottom", fontsize=8, color=ink)

    def path_arrow(self, piece: str, points: Sequence[tuple[float, float]], dashed: bool = True) -> None:
        """An arrow along a polyline (the gradient's way back around the diagram)."""
        from matplotlib.patches import FancyArrowPatch
        from matplotlib.path import Path as MplPath

        edge, _, _, width_line = self.look(piece)
        path = MplPath(points, [MplPath.MOVETO] + [MplPath.LINETO] * (len(points) - 1))
        self.axis.add_patch(FancyArrowPatch(path=path, arrowstyle="-|>", mutation_scale=15, color=edge,
                                            linewidth=width_line + 0.6, linestyle="--" if dashed else "-"))

    def label(self, piece: str, x: float, y: float, text: str, size: float = 9, **options) -> None:
        """Free text that belongs to a piece (column headings, the gradient's caption)."""
        _, _, ink, _ = self.look(piece)
        colour = _COLOURS[piece] if ink == "black" else ink
        self.axis.text(x, y, text, **{"ha": "center", "va": "center", "fontsize": size, "color": colour, **options})


def _layer_notes() -> tuple[str, str]:
    """(the layers as this code names them, the same layers in the paper's names), read from the code.

    This code reads the paper's ``conv4_2`` and ``conv1_1 … conv5_1`` after the
    ReLU, under the truthful names ``relu4_2`` and ``relu1_1 … relu5_1``
    (notebook 02); a ``convX_Y`` name here would be the value before the ReLU.
    """
    style = ", ".join(STYLE_LAYERS[:2]) + ",\n" + ", ".join(STYLE_LAYERS[2:4]) + ",\n" + ", ".join(STYLE_LAYERS[4:])
    ours = f"content layer\n{CONTENT_LAYER}\n\nstyle layers\n{style}"
    if all(name.startswith("relu") for name in (CONTENT_LAYER, *STYLE_LAYERS)):
        first, last = STYLE_LAYERS[0].replace("relu", "conv"), STYLE_LAYERS[-1].replace("relu", "conv")
        paper = (f"the paper's {CONTENT_LAYER.replace('relu', 'conv')},\n{first} … {last}:\n"
                 "the same features,\nread after the ReLU")
    else:
        paper = "(convX_Y: before the ReLU;\nreluX_Y: after it)"
    return ours, paper


def draw_overview(highlight: str | None = None) -> Figure:
    """The method on one figure, in the paper's notation; ``highlight`` emphasises one piece and greys the rest.

    ``highlight`` is None (everything in colour) or one of `PIECES`:
    ``"images"`` (notebook 01), ``"vgg19"`` (02), ``"gram"`` (03), ``"losses"``
    (04, and the weights α, β of 06) or ``"optimiser"`` (05). Returns a
    ``matplotlib.figure.Figure`` (not pyplot, so redrawing it does not pile up
    figures); a notebook shows it as a cell's last expression.
    """
    from matplotlib.figure import Figure

    if highlight is not None and highlight not in PIECES:
        raise ValueError(f"highlight must be None or one of {', '.join(map(repr, PIECES))}, got {highlight!r}.")
    defaults = Settings()
    figure = Figure(figsize=(11, 5.8), layout="constrained")
    axis = figure.add_subplot()
    axis.set_xlim(-0.5, 122)
    axis.set_ylim(-9, 60)
    axis.set_axis_off()
    draw = _Painter(axis, highlight)
    top, middle, bottom = 43.0, 27.0, 11.0

    # column headings: the notebook that builds each piece
    draw.label("images", 11, 57, "01 · images", weight="bold")
    draw.label("vgg19", 42.5, 57, "02 · VGG19 and its features", weight="bold")
    draw.label("gram", 73, 57, "03 · Gram matrices", weight="bold")
    draw.label("losses", 103, 57, "04 · the losses  ·  06 · their weights", weight="bold")

    # 01: the three images; x sits between the photo and the artwork it is compared with
    start = "the photo" if defaults.init == "content" else f"{defaults.init!r}"
    draw.box("images", 11, top, 16, 10, r"$\vec{p}$", "photo (content)")
    draw.box("images", 11, middle, 16, 11, r"$\vec{x}$", f"the image being\noptimised (starts\nas {start})")
    draw.box("images", 11, bottom, 16, 10, r"$\vec{a}$", "artwork (style)")

    # 02: the network, and the features it gives
    ours, paper = _layer_notes()
    draw.box("vgg19", 32, 27, 16, 48, "VGG19", f"torchvision's, frozen\n\n{ours}", symbol_size=13)
    draw.label("vgg19", 32, 4.5, paper, size=7.5, va="bottom", style="italic")
    for row in (top, middle, bottom):
        draw.arrow("vgg19", (19, row), (24, row))
    draw.box("vgg19", 53, top, 16, 10, r"$P^l$", f"the photo's features\nat {CONTENT_LAYER}")
    draw.box("vgg19", 53, middle, 16, 10, r"$F^l$", r"features of $\vec{x}$" + "\nat the same layers")
    draw.arrow("vgg19", (40, top), (45, top))
    draw.arrow("vgg19", (40, middle), (45, middle))

    # 03: Gram matrices, of x's features and of the artwork's
    draw.box("gram", 73, middle, 16, 10, r"$G^l$", "Gram matrices of\n" + r"$F^l$ (style layers)")
    draw.box("gram", 73, bottom, 16, 10, r"$A^l$", "Gram matrices of\n" + r"$\vec{a}$'s features")
    draw.arrow("gram", (61, middle), (65, middle))
    draw.arrow("gram", (40, bottom), (65, bottom), label="features, then Gram")

    # 04: the losses and the total; 06 tunes the weights
    draw.box("losses", 93, top, 16, 10, r"$\mathcal{L}_{content}$", r"$F^l$ against $P^l$", symbol_size=13)
    draw.box("losses", 93, 21, 16, 10, r"$\mathcal{L}_{style}$",
             r"$G^l$ against $A^l$," + "\n" + r"layer weights $w_l$", symbol_size=13)
    tv = "off by default" if defaults.tv_weight == 0 else f"default {defaults.tv_weight:g}"
    draw.box("losses", 93, 6, 16, 9, r"$\mathcal{L}_{TV}$",
             r"smoothness of $\vec{x}$;" + f"\nNOT in the paper\n({tv})", symbol_size=11)
    draw.box("losses", 113, 27, 16, 26, r"$\mathcal{L}_{total}$",
             r"$=\ \alpha\,\mathcal{L}_{content}$" + "\n" + r"$+\ \beta\,\mathcal{L}_{style}$" + "\n"
             + r"$+$ tv_weight $\mathcal{L}_{TV}$" + "\n\nhere each term is\na relative error\n(notebook 04)",
             symbol_size=13)
    draw.arrow("losses", (61, top), (85, top))
    draw.arrow("losses", (57, middle + 5), (85, top - 2), bend=-0.1)
    draw.arrow("losses", (81, middle), (85, 23))
    draw.arrow("losses", (81, bottom), (85, 18))
    draw.arrow("losses", (101, top), (105, 36))
    draw.arrow("losses", (101, 21), (105, 22))
    draw.arrow("losses", (101, 6), (105, 16), dashed=True)

    # 05: the gradient goes back around to the pixels of x, and the optimiser changes them
    draw.path_arrow("optimiser", [(113, 14), (113, -0.5), (0.5, -0.5), (0.5, middle), (3, middle)])
    optimiser = "L-BFGS" if defaults.optimizer == "lbfgs" else defaults.optimizer
    draw.label("optimiser", 57, -5.5,
               r"05 · the gradient $\partial\mathcal{L}_{total}/\partial\vec{x}$ flows back through VGG19 to the "
               f"pixels of $\\vec{{x}}$;\nthe optimiser ({optimiser} by default, or Adam) changes them, "
               "and the loop repeats", size=9.5, weight="bold")

    title = ("Style transfer as in Gatys, Ecker & Bethge (2016), in the paper's notation"
             if highlight is None else f"You are here: {PIECES[highlight]}")
    axis.set_title(title, fontsize=11.5, loc="left")
    return figure


def write_overview(path: str | Path, highlight: str | None = None, dpi: int = 110) -> Path:
    """Draw the overview and write it to ``path`` (format from the extension), whole or not at all."""
    return save_figure(draw_overview(highlight), path, dpi)


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m styletransfer_tools.diagram OUT.png [--highlight PIECE]``: write the overview figure."""
    parser = argparse.ArgumentParser(prog="python -m styletransfer_tools.diagram",
                                     description="Write the overview diagram of the method (PNG, SVG or PDF).")
    parser.add_argument("output", help="the file to write, e.g. docs/overview.png")
    parser.add_argument("--highlight", choices=list(PIECES), default=None, help="emphasise one piece")
    arguments = parser.parse_args(argv)
    try:
        written = write_overview(arguments.output, arguments.highlight)
    except OutputError as error:
        print(f"error: {error}", file=sys.stderr)
        return 5
    print(written)
    return 0


if __name__ == "__main__":
    sys.exit(main())
