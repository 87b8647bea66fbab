"""The reference figures (`make figures`): every one drawn, by the notebooks' code, titled with its weights."""

from __future__ import annotations

import pytest
from PIL import Image

from styletransfer_tools import figures


@pytest.mark.slow
def test_make_figures_draws_every_reference_at_a_tiny_size(tmp_path, monkeypatch, capsys):
    """All four at 32 px and 2 steps with random weights: each file is a whole JPEG, and each title says
    what it shows and names the weights it was made with."""
    titles = {}
    save = figures.save_figure

    def keep_title(figure, path, dpi):
        titles[path.name] = figure.get_suptitle()
        return save(figure, path, dpi)

    monkeypatch.setattr(figures, "save_figure", keep_title)
    assert figures.main(["--weights", "random", "--label", "untrained test weights", "--out", str(tmp_path),
                         "--size", "32", "--steps", "2"]) == 0
    assert sorted(path.name for path in tmp_path.iterdir()) == sorted(figures.FIGURES)
    for name in figures.FIGURES:
        with Image.open(tmp_path / name) as picture:
            assert picture.format == "JPEG" and picture.width > 300
        assert titles[name].endswith("weights: untrained test weights"), titles[name]
        assert "32 px" in titles[name]
    assert "up to relu5_1: style error" in capsys.readouterr().out


@pytest.mark.parametrize("flag", ["--size", "--steps"])
def test_a_size_or_step_count_of_zero_is_refused_not_taken_for_the_default(flag, capsys):
    with pytest.raises(SystemExit):
        figures.main(["--weights", "random", flag, "0"])
    assert "must be a whole number of at least 1, got '0'" in capsys.readouterr().err


def test_the_default_label_is_where_the_weights_came_from(tmp_path, monkeypatch):
    monkeypatch.setattr(figures, "save_figure", lambda figure, path, dpi: titles.append(figure.get_suptitle()))
    titles = []
    assert figures.main(["--weights", "random", "--out", str(tmp_path), "--only", "result.jpg", "--size", "32",
                         "--steps", "1"]) == 0
    assert titles[0].endswith("weights: random (untrained) weights")


@pytest.mark.parametrize(("arguments", "says"),
                         [(["--out", "/no/such/folder"], "the folder /no/such/folder does not exist"),
                          (["--weights", "/no/such.pth"], "No weights file at /no/such.pth")])
def test_bad_input_is_refused_before_any_run(arguments, says, tmp_path, capsys, monkeypatch):
    monkeypatch.setattr(figures, "draw", lambda *args: pytest.fail("a figure was drawn"))
    assert figures.main(["--weights", "random", "--out", str(tmp_path), *arguments]) == 2
    assert says in capsys.readouterr().err


def test_show_images_in_rows_keeps_every_picture_and_title():
    from styletransfer_tools.notebook import show_images

    pictures = [Image.new("RGB", size) for size in [(40, 40), *[(60, 40)] * 5]]
    figure = show_images(pictures, [f"p{n}" for n in range(6)], height=1, columns=4)
    shown = [axis for axis in figure.axes if axis.images]
    assert [axis.get_title().splitlines()[0] for axis in shown] == [f"p{n}" for n in range(6)]
    assert len(figure.axes) == 8 and figure.get_size_inches()[1] == pytest.approx(2 * 1.45)
    one_row = show_images(pictures[:2], height=1)
    assert one_row.get_size_inches()[1] == 1  # without titles, no room is kept for them
