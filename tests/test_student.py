"""The student edition and the autograder (styletransfer_tools/student.py).

Nothing generated is committed: these tests generate the edition into a temporary folder and check
that it is in step with the teacher's notebooks (the same cells, the exercise bodies blanked, no
outputs), then run the autograder on the teacher's notebooks (all PASS), a fresh student notebook
(TODO), a filled-in one (PASS) and deliberately wrong ones (FAIL).
"""

from __future__ import annotations

import ast
import json
import re
import subprocess
import sys
from pathlib import Path

import nbformat
import pytest

from styletransfer_tools import student

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOKS = sorted((ROOT / "notebooks").glob(student.NOTEBOOK_GLOB))
VERDICT = re.compile(r"^(PASS|FAIL|TODO) (\w+)")


def load(path: Path) -> dict:
    return json.loads(path.read_text(encoding="utf-8"))


def save(notebook: dict, path: Path) -> Path:
    path.write_text(json.dumps(notebook, indent=1, ensure_ascii=False) + "\n", encoding="utf-8")
    return path


def source(cell: dict) -> str:
    return "".join(cell["source"])


def is_exercise(cell: dict) -> bool:
    return "exercise" in cell["metadata"].get("tags", [])


def by_hand(cell_text: str) -> list[ast.FunctionDef]:
    return [node for node in student.parse_cell(cell_text).body
            if isinstance(node, ast.FunctionDef) and node.name.endswith("_by_hand")]


def has_docstring(function: ast.FunctionDef) -> bool:
    first = function.body[0]
    return isinstance(first, ast.Expr) and isinstance(getattr(first.value, "value", None), str)


def body_start(function: ast.FunctionDef) -> int:
    """The first line the edition blanks: after the docstring, or the first statement."""
    first = function.body[0]
    return first.end_lineno + 1 if has_docstring(function) else first.lineno


def verdicts(output: str) -> dict[str, str]:
    """{function name: PASS/FAIL/TODO} from the autograder's output."""
    return {match[2]: match[1] for match in map(VERDICT.match, output.splitlines()) if match}


def replace_function(notebook: dict, name: str, new_text: str) -> dict:
    """``notebook`` with the function ``name`` replaced by ``new_text`` in the cell that defines it."""
    for cell in notebook["cells"]:
        for function in by_hand(source(cell)) if cell["cell_type"] == "code" else []:
            if function.name == name:
                old_text = ast.get_source_segment(source(cell), function)
                cell["source"] = source(cell).replace(old_text, new_text).splitlines(keepends=True)
                return notebook
    raise AssertionError(f"{name} not found")


@pytest.fixture(scope="module")
def edition(tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("student")
    assert student.main(["--output", str(folder)]) == 0
    return folder


# --- the tags in the teacher's notebooks -------------------------------------------------------------


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_exactly_the_cells_with_a_by_hand_function_are_tagged(path):
    """An untagged by-hand function would give its solution away; a tag on another cell blanks nothing."""
    for cell in load(path)["cells"]:
        defines = cell["cell_type"] == "code" and bool(by_hand(re.sub(r"^[%!].*$", "", source(cell), flags=re.M)))
        assert is_exercise(cell) == defines, source(cell)[:80]


def test_there_are_exercises_to_blank():
    assert sum(is_exercise(cell) for path in NOTEBOOKS for cell in load(path)["cells"]) >= 5


# --- the generated edition ---------------------------------------------------------------------------


def test_one_student_notebook_per_teachers_notebook(edition):
    assert sorted(p.name for p in edition.iterdir()) == [p.name for p in NOTEBOOKS]


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_student_edition_is_in_step_with_the_notebook(path, edition):
    """The same cells (type, metadata, text), but the exercise bodies, after a header cell.

    Cell ids are left out: the edition numbers its cells from 0 as nbstripout does (tested below).
    """
    teacher, pupil = load(path), load(edition / path.name)
    header, *cells = pupil["cells"]
    assert header["cell_type"] == "markdown" and "Student edition" in source(header)
    assert "`notebooks/`" in source(header)
    if any(is_exercise(cell) for cell in teacher["cells"]):
        assert f"python -m styletransfer_tools.student check student/{path.name}" in source(header)
    assert len(cells) == len(teacher["cells"])
    assert pupil["metadata"] == teacher["metadata"]
    for mine, theirs in zip(cells, teacher["cells"], strict=True):
        assert {k: v for k, v in mine.items() if k not in ("source", "id")} == {
            k: v for k, v in theirs.items() if k not in ("source", "id")}
        if not is_exercise(theirs):
            assert source(mine) == source(theirs)
            continue
        [function] = by_hand(source(theirs))  # one exercise per cell, as the notebooks are written
        lines = source(theirs).splitlines()
        expected = [*lines[:body_start(function) - 1],
                    f"    # YOUR CODE HERE (exercise: {function.name}; see the markdown above)",
                    f'    raise NotImplementedError("{function.name}")',
                    *lines[function.end_lineno:]]
        assert source(mine).splitlines() == expected


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_every_exercise_is_blanked(path, edition):
    """No statement of a solution survives: each by-hand body is only the placeholder."""
    for cell in load(edition / path.name)["cells"]:
        if is_exercise(cell):
            for function in by_hand(source(cell)):
                statements = function.body[1:] if has_docstring(function) else function.body
                assert [type(s) for s in statements] == [ast.Raise], function.name


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_student_notebooks_are_valid_and_carry_no_outputs(path, edition):
    text = (edition / path.name).read_text(encoding="utf-8")
    nbformat.validate(nbformat.reads(text, as_version=4))  # raises if not valid (ids unique and well formed too)
    for cell in json.loads(text)["cells"]:
        if cell["cell_type"] == "code":
            assert cell["outputs"] == [] and cell["execution_count"] is None


def test_nbstripout_accepts_the_student_notebooks(edition):
    result = subprocess.run([sys.executable, "-m", "nbstripout", "--verify", *map(str, sorted(edition.iterdir()))],
                            capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr


def test_regenerating_keeps_a_students_work(edition, tmp_path, capsys):
    """A filled-in notebook is not overwritten unless --force; an untouched one is."""
    folder = tmp_path / "student"
    student.generate(output=folder)
    filled = replace_function(load(folder / "03_gram_matrices.ipynb"), "gram_matrix_by_hand",
                              "def gram_matrix_by_hand(features):\n    return features  # my attempt")
    save(filled, folder / "03_gram_matrices.ipynb")
    save({"cells": [], "note": "stale"}, folder / "04_building_the_losses.ipynb")  # not a filled-in exercise
    (folder / "01_loading_images.ipynb").write_text("{ half written")

    assert student.main(["--output", str(folder)]) == 0
    assert "my attempt" in (folder / "03_gram_matrices.ipynb").read_text()
    assert (folder / "01_loading_images.ipynb").read_text() == "{ half written"
    assert load(folder / "04_building_the_losses.ipynb") == load(edition / "04_building_the_losses.ipynb")
    assert "03_gram_matrices.ipynb: it holds your work" in capsys.readouterr().err

    assert student.main(["--output", str(folder), "--force"]) == 0
    for path in NOTEBOOKS:
        assert load(folder / path.name) == load(edition / path.name)


def test_a_tagged_cell_without_a_by_hand_function_is_refused(tmp_path, capsys):
    source_dir, output = tmp_path / "notebooks", tmp_path / "student"
    source_dir.mkdir()
    notebook = load(NOTEBOOKS[0])
    untagged = next(i for i, cell in enumerate(notebook["cells"]) if cell["cell_type"] == "code"
                    and not is_exercise(cell))
    notebook["cells"][untagged]["metadata"]["tags"] = ["exercise"]
    save(notebook, source_dir / NOTEBOOKS[0].name)

    assert student.main(["--source", str(source_dir), "--output", str(output)]) == 2
    message = capsys.readouterr().err
    assert f"{NOTEBOOKS[0].name}, cell {untagged}" in message and "defines no *_by_hand function" in message
    assert not output.exists()  # checked before anything is written


def test_an_untagged_by_hand_function_is_refused(tmp_path):
    """Its solution would otherwise reach the student edition."""
    notebook = load(next(p for p in NOTEBOOKS if p.name.startswith("03_")))
    for cell in notebook["cells"]:
        cell["metadata"].pop("tags", None)
    with pytest.raises(student.ExerciseTagError, match="gram_matrix_by_hand but is not tagged 'exercise'"):
        student.student_notebook(notebook, next(p for p in NOTEBOOKS if p.name.startswith("03_")).name)


BEFORE_BLANKING = '''%matplotlib inline
scale = 2

def twice_by_hand(x: "tensor",
                  y: dict[str, int] = {"a": 1}) -> "tensor":
    """Doubled · twice."""
    def inner():
        return x
    return inner() * scale  # ok

print(twice_by_hand(1))'''
AFTER_BLANKING = '''%matplotlib inline
scale = 2

def twice_by_hand(x: "tensor",
                  y: dict[str, int] = {"a": 1}) -> "tensor":
    """Doubled · twice."""
    # YOUR CODE HERE (exercise: twice_by_hand; see the markdown above)
    raise NotImplementedError("twice_by_hand")

print(twice_by_hand(1))'''


def test_blanking_keeps_what_surrounds_the_function():
    """A signature over two lines with annotations, a non-ASCII docstring, a magic, code before and after."""
    assert student.blank_cell(BEFORE_BLANKING) == (AFTER_BLANKING, ["twice_by_hand"])
    assert student.blank_cell("def f_by_hand(x): return x\n") == (
        'def f_by_hand(x):\n    # YOUR CODE HERE (exercise: f_by_hand; see the markdown above)\n'
        '    raise NotImplementedError("f_by_hand")\n', ["f_by_hand"])


# --- the autograder ----------------------------------------------------------------------------------


def test_autograder_passes_the_teachers_notebooks(capsys):
    code = student.main(["check", *map(str, NOTEBOOKS)])
    found = verdicts(capsys.readouterr().out)
    assert code == 0
    expected = {d.name for path in NOTEBOOKS for d in student.find_definitions(path)}
    assert found == dict.fromkeys(expected, "PASS")


@pytest.mark.slow
def test_autograder_reports_todo_for_a_fresh_student_notebook(edition):
    """Run as a student would, through ``python -m``: every exercise TODO, a non-zero exit code."""
    paths = [str(edition / name) for name in ("03_gram_matrices.ipynb", "05_optimising_the_pixels.ipynb")]
    result = subprocess.run([sys.executable, "-m", "styletransfer_tools.student", "check", *paths],
                            capture_output=True, text=True, cwd=ROOT, timeout=300)
    assert result.returncode == 1, result.stderr
    assert "TODO gram_matrix_by_hand (not filled in)" in result.stdout.splitlines()
    assert verdicts(result.stdout) == {"gram_matrix_by_hand": "TODO", "optimize_by_hand": "TODO"}


def test_a_filled_in_student_notebook_passes(edition, tmp_path, capsys):
    """Each blank, filled in with the teacher's body, passes; the blanks left are TODO."""
    teacher = {d.name: d.source for path in NOTEBOOKS for d in student.find_definitions(path)}
    filled = replace_function(load(edition / "04_building_the_losses.ipynb"), "style_loss_by_hand",
                              teacher["style_loss_by_hand"])
    path = save(filled, tmp_path / "04_building_the_losses.ipynb")
    assert student.main(["check", str(path)]) == 1
    assert verdicts(capsys.readouterr().out) == {
        "content_loss_by_hand": "TODO", "style_loss_by_hand": "PASS", "total_variation_loss_by_hand": "TODO"}


WRONG = {
    "gram_matrix_by_hand": (
        "03_gram_matrices.ipynb",
        "def gram_matrix_by_hand(features):\n"
        "    batch, channels, height, width = features.shape\n"
        "    flat = features.reshape(batch, channels, height * width)\n"
        "    return flat @ flat.transpose(1, 2) / (height * width)  # forgot the channels",
        "the result differs from the module's by up to"),
    "content_loss_by_hand": (
        "04_building_the_losses.ipynb",
        "def content_loss_by_hand(features, target):\n    return (features - target).pow(2).sum()",
        "the result differs from the module's by up to"),
    "total_variation_loss_by_hand": (
        "04_building_the_losses.ipynb",
        "def total_variation_loss_by_hand(image):\n    return image.diff(dim=-1).pow(2)",
        "the result has shape (1, 3, 9, 10), expected ()"),
    "imagenet_normalize_by_hand": (
        "01_loading_images.ipynb",
        "def imagenet_normalize_by_hand(image):\n    return (image - mean) / std  # notebook variables",
        "raised NameError: name 'mean' is not defined"),
    "optimize_by_hand": (
        "05_optimising_the_pixels.ipynb",
        "def optimize_by_hand(objective, image, optimizer, steps):\n"
        "    history = []\n"
        "    for _ in range(steps - 1):  # one step short\n"
        "        def closure():\n"
        "            optimizer.zero_grad()\n"
        "            total, losses = objective(image)\n"
        "            total.backward()\n"
        "            history.append(losses)\n"
        "            return total\n"
        "        optimizer.step(closure)\n"
        "    return image.detach().clone(), history",
        "with adam, the image after 6 steps differs from the module's by up to"),
}


@pytest.mark.parametrize("name", WRONG)
def test_autograder_reports_fail_for_a_wrong_function(name, tmp_path, capsys):
    notebook_name, wrong, reason = WRONG[name]
    path = save(replace_function(load(ROOT / "notebooks" / notebook_name), name, wrong), tmp_path / notebook_name)
    assert student.main(["check", str(path)]) == 1
    output = capsys.readouterr().out
    assert f"FAIL {name}: {reason}" in output
    assert all(status == "PASS" for other, status in verdicts(output).items() if other != name)


def test_autograder_reports_a_cell_that_does_not_parse(tmp_path, capsys):
    notebook = load(next(p for p in NOTEBOOKS if p.name.startswith("03_")))
    cell = next(cell for cell in notebook["cells"] if is_exercise(cell))
    cell["source"] = ["def gram_matrix_by_hand(features):\n", "    return features @@ features\n"]
    path = save(notebook, tmp_path / next(p for p in NOTEBOOKS if p.name.startswith("03_")).name)
    assert student.main(["check", str(path)]) == 1
    assert re.search(r"^FAIL gram_matrix_by_hand: cell \d+ is not valid Python \(line 2: ",
                     capsys.readouterr().out, re.M)


def test_autograder_refuses_a_missing_file(tmp_path, capsys):
    with pytest.raises(SystemExit) as exit_info:
        student.main(["check", str(tmp_path / "nope.ipynb")])
    assert exit_info.value.code == 2 and "no such notebook" in capsys.readouterr().err
