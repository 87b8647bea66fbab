"""The notebooks as files: complete, stripped, linked, and in step with the module.

nbval runs them (``make test`` collects notebooks/ too); these tests check
what nbval cannot: that each notebook really has code to run, carries no
outputs, teaches in the agreed shape, and that every function a notebook
develops inline for teaching (``def NAME_by_hand``) agrees with the module's
(tests/test_assignments.py runs each one's autograded check).
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import pytest

import styletransfer_utils as st

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOKS = sorted((ROOT / "notebooks").glob("[0-9][0-9]_*.ipynb"))
SKIP_MARKS = ("NBVAL_SKIP", "NBVAL_IGNORE")


def load(path: Path) -> dict:
    return json.loads(path.read_text())


def code_cells(path: Path) -> list[str]:
    return ["".join(cell["source"]) for cell in load(path)["cells"] if cell["cell_type"] == "code"]


def test_there_are_nine_notebooks_in_order():
    assert [p.name[:2] for p in NOTEBOOKS] == [f"{n:02d}" for n in range(9)]


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_notebook_has_code_that_runs(path):
    """A notebook with no code, or whose every cell nbval would skip, tests nothing."""
    cells = code_cells(path)
    assert len(cells) >= 5, "too little code"
    assert any(not any(mark in cell for mark in SKIP_MARKS) for cell in cells)
    assert sum(any(mark in cell for mark in SKIP_MARKS) for cell in cells) <= 1


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_notebook_is_committed_without_outputs(path):
    notebook = load(path)
    for cell in notebook["cells"]:
        if cell["cell_type"] == "code":
            assert cell["outputs"] == [] and cell["execution_count"] is None
    assert notebook["metadata"]["kernelspec"]["name"] == "python3"


def test_nbstripout_verify_agrees():
    """The same check with nbstripout itself (what a pre-commit hook would run)."""
    result = subprocess.run([sys.executable, "-m", "nbstripout", "--verify", *map(str, NOTEBOOKS)],
                            capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_notebook_teaching_shape(path):
    """Title 'NN · Title', 'You will learn', 'You need', Summary, Exercises, links to neighbours."""
    markdown = "\n".join("".join(c["source"]) for c in load(path)["cells"] if c["cell_type"] == "markdown")
    number = int(path.name[:2])
    assert re.search(rf"^# {number:02d} · \S", markdown, re.M)
    for heading in ("You will learn", "You need", "Summary", "Exercises"):
        assert heading in markdown, heading
    position = NOTEBOOKS.index(path)
    if position > 0:
        assert NOTEBOOKS[position - 1].name in markdown
    if position < len(NOTEBOOKS) - 1:
        assert NOTEBOOKS[position + 1].name in markdown


GOING_DEEPER = "## Going deeper (optional)"  # the one heading over what a first reading may skip


def main_path_words(path: Path) -> int:
    """Words of markdown a first reading meets: every markdown cell before the "Going deeper" heading."""
    words = 0
    for cell in load(path)["cells"]:
        source = "".join(cell["source"])
        if cell["cell_type"] == "markdown" and source.startswith(GOING_DEEPER):
            break
        words += len(source.split()) if cell["cell_type"] == "markdown" else 0
    return words


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_the_main_path_fits_a_lesson(path):
    """A first-year student's path through a notebook is at most 1,800 words of markdown (1,000 for the
    overview, 00); engineering detail and measurements sit under one heading at the end, GOING_DEEPER."""
    limit = 1000 if path.name.startswith("00_") else 1800
    assert main_path_words(path) <= limit, f"{main_path_words(path)} words before {GOING_DEEPER!r}"
    markdown = ["".join(cell["source"]) for cell in load(path)["cells"] if cell["cell_type"] == "markdown"]
    headings = [line for source in markdown for line in source.splitlines() if line.startswith("#")]
    deeper = [line for line in headings if "going deeper" in line.lower()]
    assert deeper in ([], [GOING_DEEPER]), f"one heading, spelled {GOING_DEEPER!r}: {deeper}"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_notebook_imports_explicit_names(path):
    """Beginners must see where each helper comes from: no star imports, no copied helpers."""
    source = "\n".join(code_cells(path))
    assert "import *" not in source
    assert "from styletransfer_utils import" in source
    assert "os.environ" not in source and "getenv" not in source  # only notebook_settings reads it
    for name, value in vars(st).items():
        if callable(value) and getattr(value, "__module__", "") == "styletransfer_utils" and not name.startswith("_"):
            assert f"def {name}(" not in source, f"{name} is redefined; import it instead"


def paper_table(text: str) -> list[list[str]]:
    """The 'the paper | this code | why' table's rows, without the 'why' column (which says where to read on)."""
    start = text.index("| | the paper | this code | why |")
    rows = []
    for line in text[start:].splitlines()[2:]:
        if not line.startswith("|"):
            break
        rows.append([cell.strip() for cell in line.strip("|").split("|")][:3])
    return rows


def test_notebook_04_and_the_readme_compare_with_the_paper_alike():
    """The paper ↔ this code table appears twice; the two must not drift apart."""
    [path] = [p for p in NOTEBOOKS if p.name.startswith("04_")]
    markdown = "\n".join("".join(c["source"]) for c in load(path)["cells"] if c["cell_type"] == "markdown")
    readme = paper_table((ROOT / "README.md").read_text())
    assert [row[0] for row in readme][:9] == ["network", "ReLU side", "pooling", "losses", "weights", "start",
                                              "optimiser", "schedule", "TV"]
    assert paper_table(markdown) == readme
