"""The overview diagram (styletransfer_tools/diagram.py): every piece draws, names the paper's symbols, writes a PNG."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from matplotlib.figure import Figure
from matplotlib.text import Text
from PIL import Image

from styletransfer_tools.diagram import PIECES, draw_overview, main
from styletransfer_utils import CONTENT_LAYER, STYLE_LAYERS

ROOT = Path(__file__).resolve().parents[1]


def figure_text(figure: Figure) -> str:
    """Every string drawn on the figure (titles, box labels, captions), joined."""
    return "\n".join(text.get_text() for text in figure.findobj(Text))


@pytest.mark.parametrize("highlight", [None, *PIECES])
def test_every_highlight_draws(highlight):
    figure = draw_overview(highlight)
    assert isinstance(figure, Figure)
    figure.canvas.draw()  # lays the text out: a bad mathtext string fails here, not at display time
    text = figure_text(figure)
    if highlight is not None:
        assert "You are here" in text and PIECES[highlight] in text


def test_a_wrong_highlight_names_the_choices():
    with pytest.raises(ValueError, match="highlight") as raised:
        draw_overview("grams")
    for piece in PIECES:
        assert repr(piece) in str(raised.value)
    assert "'grams'" in str(raised.value)


def test_the_figure_speaks_the_papers_notation_and_the_codes_layers():
    text = figure_text(draw_overview())
    for symbol in (r"\vec{p}", r"\vec{a}", r"\vec{x}", "P^l", "F^l", "G^l", "A^l", r"\alpha", r"\beta",
                   r"\mathcal{L}_{content}", r"\mathcal{L}_{style}", r"\mathcal{L}_{total}",
                   r"\partial\mathcal{L}_{total}/\partial\vec{x}"):
        assert symbol in text, symbol
    for layer in (CONTENT_LAYER, *STYLE_LAYERS):  # the names the code uses, not only the paper's
        assert layer in text, layer
    assert "conv4_2" in text and "after the ReLU" in text  # the paper's name, said truthfully
    assert "NOT in the paper" in text  # the TV term is this project's addition


@pytest.mark.slow
def test_the_command_line_writes_a_png(tmp_path):
    output = tmp_path / "overview.png"
    result = subprocess.run([sys.executable, "-m", "styletransfer_tools.diagram", str(output), "--highlight", "gram"],
                            capture_output=True, text=True, cwd=ROOT)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == str(output)
    with Image.open(output) as image:
        assert image.format == "PNG" and image.width > 800
    assert [p.name for p in tmp_path.iterdir()] == ["overview.png"]  # no temporary file left behind


def test_the_command_line_refuses_an_unknown_format_and_a_missing_folder(tmp_path, capsys):
    assert main([str(tmp_path / "overview.txt")]) == 5
    assert main([str(tmp_path / "missing" / "overview.png")]) == 5
    assert "does not exist" in capsys.readouterr().err
    assert list(tmp_path.iterdir()) == []


def test_the_readme_figure_exists():
    """docs/overview.png is made with `python -m styletransfer_tools.diagram docs/overview.png`."""
    with Image.open(ROOT / "docs" / "overview.png") as image:
        assert image.format == "PNG"
