"""The course as nbgrader assignments (styletransfer_tools/assignments.py, classroom/nbgrader_config.py).

Nothing generated is committed: the tests build the course into a temporary folder, as ``make student``
does, and check the release version nbgrader writes. The slow test grades submissions with ``nbgrader
autograde`` as a teacher would: the teacher's own version, a wrong answer, and the tricks a student
might try (switching off ``torch.allclose``, ``SystemExit``, an endless loop, ``os.system``, a flood of
output, a number passed off as the check's result).
"""

from __future__ import annotations

import copy
import json
import math
import re
import shutil
from pathlib import Path

import nbformat
import pytest
import torch
import torch.nn.functional as F

from styletransfer_tools import assignments, grading

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOKS = sorted((ROOT / "notebooks").glob(assignments.NOTEBOOK_GLOB))
CODED = ["01_loading_images", "03_gram_matrices", "04_building_the_losses", "05_optimising_the_pixels"]
STUB = "# YOUR CODE HERE\n    raise NotImplementedError()"


def load(path: Path) -> dict:
    return json.loads(path.read_text(encoding="utf-8"))


def source(cell: dict) -> str:
    return "".join(cell["source"])


def grade_id(cell: dict) -> str | None:
    return cell["metadata"].get("nbgrader", {}).get("grade_id")


def teacher_functions() -> list[tuple[str, str, str]]:
    """(notebook, function name, the exercise cell's source) for every by-hand function."""
    found = []
    for path in NOTEBOOKS:
        notebook = assignments.read_notebook(path)
        for index, functions in assignments.exercise_functions(notebook, path.stem).items():
            found += [(path.stem, function.name, source(notebook["cells"][index])) for function in functions]
    return found


def run_check(function_source: str, name: str) -> None:
    """The function's cell, then its generated check cell (hidden part included), in one fresh namespace."""
    namespace = {"torch": torch, "F": F, "math": math}
    exec(compile(function_source, f"<{name}>", "exec"), namespace)
    check = assignments.check_cell_source(name)
    exec(compile(check.replace("### BEGIN HIDDEN TESTS", "").replace("### END HIDDEN TESTS", ""),
                 f"<check {name}>", "exec"), namespace)


# ----------------------------------------------------------------- without nbgrader


def test_the_notebooks_develop_the_expected_functions():
    names = {name for _, name, _ in teacher_functions()}
    assert names == {"imagenet_normalize_by_hand", "gram_matrix_by_hand", "content_loss_by_hand",
                     "style_loss_by_hand", "total_variation_loss_by_hand", "optimize_by_hand"}


@pytest.mark.parametrize(("notebook", "name", "cell"), teacher_functions(), ids=lambda v: str(v)[:40])
def test_teachers_function_passes_its_check(notebook, name, cell):
    """Each teaching cell's function equals the module's: its check, hidden inputs included, passes.

    For optimize_by_hand that is six steps with Adam and with L-BFGS, against `optimize`'s numbers.
    """
    run_check(cell, name)


@pytest.mark.parametrize(("name", "wrong", "message"), [
    ("gram_matrix_by_hand", "def gram_matrix_by_hand(f):\n    b, c, h, w = f.shape\n"
     "    x = f.reshape(b, c, h * w)\n    return x @ x.transpose(1, 2) / (h * w)",
     r"Every value is 3\.0 times the expected one\. Where to look: reshape to \(B, C, H\*W\)"),
    ("gram_matrix_by_hand", "def gram_matrix_by_hand(f):\n    x = f.reshape(f.shape[1], -1)\n"
     "    return x @ x.T / f.numel()", r"has shape \(3, 3\), expected \(2, 3, 3\)"),
    ("content_loss_by_hand", "def content_loss_by_hand(f, t):\n    return 0.5 * (f - t).pow(2).sum()",
     r"values differ.*Where to look: the mean \(not the sum"),
    ("imagenet_normalize_by_hand", "def imagenet_normalize_by_hand(x):\n    return [x]",
     r"returned list, not a tensor"),
])
def test_a_wrong_function_fails_its_check_with_a_hint(name, wrong, message):
    with pytest.raises(AssertionError, match=message):
        run_check(wrong, name)


def test_a_wrong_loop_fails_its_check_with_a_hint():
    """optimize_by_hand that clamps before recording the step: the losses agree, the best image does not."""
    [cell] = [cell for _, name, cell in teacher_functions() if name == "optimize_by_hand"]
    wrong = cell.replace("best_total, best_image = losses.total, before", "best_total, best_image = losses.total, "
                         "image.detach().clone()")
    assert wrong != cell
    with pytest.raises(AssertionError, match=r"optimize_by_hand with adam: the best image differs.*Where to look"):
        run_check(wrong, "optimize_by_hand")


def test_the_check_calls_no_module_function():
    """So a student's cell that replaces one (or torch.allclose) cannot change a verdict."""
    for _, name, _ in teacher_functions():
        if name != "optimize_by_hand":
            check = assignments.check_cell_source(name)
            assert "styletransfer_utils" not in check and "allclose" not in check and "assert_close" not in check


def test_every_written_exercise_has_an_answer():
    """classroom/answers.md answers each numbered exercise of each notebook, Going deeper included, once."""
    answers = assignments.read_answers()
    assert list(answers) == [path.stem for path in NOTEBOOKS]
    total = 0
    for path in NOTEBOOKS:
        converted = assignments.source_notebook(assignments.read_notebook(path), path.stem, answers[path.stem])
        cells = [cell for cell in converted["cells"] if (grade_id(cell) or "").startswith("answer_")]
        assert len(cells) == len(answers[path.stem]) >= 2, path.stem
        assert all(len(source(cell)) > 80 for cell in cells), f"{path.stem}: an answer of a few words"
        total += len(cells)
    assert total >= 55


def test_a_missing_answer_is_refused(tmp_path):
    text = assignments.ANSWERS.read_text(encoding="utf-8")
    broken = tmp_path / "answers.md"
    broken.write_text(re.sub(r"### Exercise 2\n.*?(?=### Exercise 3)", "", text, count=1, flags=re.S))
    with pytest.raises(ValueError, match=r"section 00_the_method_in_a_minute: .* no answer to \[2\]"):
        assignments.write_source(tmp_path / "course", answers=broken)
    assert not (tmp_path / "course").exists()


def test_an_untagged_by_hand_function_is_refused():
    """Its solution would otherwise reach the release version."""
    path = next(p for p in NOTEBOOKS if p.stem == "03_gram_matrices")
    notebook = assignments.read_notebook(path)
    for cell in notebook["cells"]:
        cell.get("metadata", {}).pop("tags", None)
    with pytest.raises(assignments.ExerciseTagError, match="gram_matrix_by_hand but is not tagged 'exercise'"):
        assignments.exercise_functions(notebook, path.stem)


def test_output_is_capped_but_errors_are_kept():
    cell = {"cell_type": "code", "metadata": {"nbgrader": {"grade": True, "solution": False}}, "outputs": [
        {"output_type": "stream", "name": "stdout", "text": "x" * 50_000},
        {"output_type": "execute_result", "data": {"text/plain": "1.0"}, "metadata": {}, "execution_count": 1},
        {"output_type": "error", "ename": "AssertionError", "evalue": "e" * 50_000, "traceback": ["t"]},
    ]}
    preprocessor = grading.LimitOutputCharacters(max_chars=1000)
    capped, _ = preprocessor.preprocess_cell(nbformat.from_dict(copy.deepcopy(cell)), {}, 0)
    assert [output["output_type"] for output in capped["outputs"]] == ["stream", "error"]
    assert len(json.dumps(capped)) < 3000
    assert "output cut" in capped["outputs"][0]["text"]


# ----------------------------------------------------------------- with nbgrader


@pytest.fixture(scope="module")
def course(tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("course")
    assert assignments.build_course(folder) == [path.stem for path in NOTEBOOKS]
    return folder


def release(course: Path, identifier: str) -> dict:
    return load(course / "release" / identifier / f"{identifier}.ipynb")


def test_release_holds_no_solution(course):
    answers = assignments.read_answers()
    for path in NOTEBOOKS:
        text = json.dumps(release(course, path.stem))
        assert "BEGIN SOLUTION" not in text and "BEGIN HIDDEN TESTS" not in text
        for answer in answers[path.stem].values():
            assert answer[:60] not in text
        notebook = release(course, path.stem)
        written = [cell for cell in notebook["cells"] if (grade_id(cell) or "").startswith("answer_")]
        assert [source(cell) for cell in written] == ["YOUR ANSWER HERE"] * len(answers[path.stem])
    for notebook_name, name, cell in teacher_functions():
        [blank] = [source(c) for c in release(course, notebook_name)["cells"] if grade_id(c) == name]
        body = cell.split('"""')[-1] if '"""' in cell else cell.split(":\n", 1)[1]
        assert f"def {name}(" in blank and STUB in blank
        for line in body.strip().splitlines():
            if line.strip():
                assert line.strip() not in blank, f"{name}: {line.strip()!r} in the release"


def test_release_opens_with_the_header_and_finds_its_files(course):
    notebook = release(course, "04_building_the_losses")
    header = source(notebook["cells"][0])
    for phrase in ("Functions to write", "`content_loss_by_hand`", "The checks", "inputs you do not see",
                   "Written answers", "Validate"):
        assert phrase in header
    text = json.dumps(notebook)
    assert "../assets/" not in text and "../docs/" not in text
    folder = course / "release" / "04_building_the_losses"
    assert (folder / "assets" / "astronaut.jpg").is_file() and (folder / "figures" / "reconstructions.jpg").is_file()


def body(function_lines: str) -> str:
    return "\n".join("    " + line for line in function_lines.splitlines())


TRICKS = {
    "wrong": "return image - 0.5",
    "allclose": "import torch, torch.testing\ntorch.allclose = lambda *a, **k: True\n"
                "torch.testing.assert_close = lambda *a, **k: None\nreturn image",
    "sysexit": "raise SystemExit(0)",
    "loop": "while True:\n    pass",
    "ossystem": "import os\nos.system('cat /proc/$PPID/cmdline > MARKER')\nreturn image",
    "flood": "print('x' * 20_000_000)\nreturn image",
    "result": "get_ipython().displayhook(1.0)\nreturn image",
}


def submit(course: Path, student: str, identifier: str, notebook: dict) -> None:
    folder = course / "submitted" / student / identifier
    folder.mkdir(parents=True)
    for name in ("assets", "figures"):
        shutil.copytree(course / "release" / identifier / name, folder / name)
    (folder / f"{identifier}.ipynb").write_text(json.dumps(notebook), encoding="utf-8")


def filled_in(notebook: dict, code: str) -> dict:
    notebook = copy.deepcopy(notebook)
    for cell in notebook["cells"]:
        if cell["cell_type"] == "code" and cell["metadata"].get("nbgrader", {}).get("solution"):
            cell["source"] = source(cell).replace(STUB, body(code).lstrip())
    return notebook


def scores(course: Path, identifier: str, student: str) -> dict[str, float]:
    from nbgrader.api import Gradebook

    with Gradebook(f"sqlite:///{course / 'gradebook.db'}") as gradebook:
        submission = gradebook.find_submission(identifier, student)
        return {grade.name: grade.score for notebook in submission.notebooks for grade in notebook.grades
                if grade.name.startswith("check_")}


def check_outputs(course: Path, identifier: str, student: str) -> list[dict]:
    notebook = load(course / "autograded" / student / identifier / f"{identifier}.ipynb")
    [cell] = [cell for cell in notebook["cells"] if (grade_id(cell) or "").startswith("check_")]
    return cell["outputs"]


@pytest.mark.slow
def test_autograding(course, tmp_path):
    """The teacher's version scores every check; a wrong answer and each trick score zero, the grader unharmed."""
    for identifier in CODED:
        submit(course, "teacher", identifier, load(course / "source" / identifier / f"{identifier}.ipynb"))
    first = "01_loading_images"
    marker = tmp_path / "ossystem.txt"
    for student, code in TRICKS.items():
        submit(course, student, first, filled_in(release(course, first), code.replace("MARKER", str(marker))))

    assert assignments.autograde(course, extra=["--Execute.timeout=20"]) == 0

    for identifier in CODED:
        assert set(scores(course, identifier, "teacher").values()) == {1.0}, identifier
        assert (course / "feedback" / "teacher" / identifier / f"{identifier}.html").is_file()
    for student in TRICKS:
        assert scores(course, first, student) == {"check_imagenet_normalize_by_hand": 0.0}, student
    [error] = [o for o in check_outputs(course, first, "wrong") if o["output_type"] == "error"]
    assert "18 of 18 values differ" in error["evalue"]
    assert "Where to look: subtract each channel's mean" in error["evalue"]
    assert any(o.get("ename") == "CellTimeoutError" for o in check_outputs(course, first, "loop"))
    assert "ipykernel" in marker.read_text(), "os.system ran outside a kernel"
    flooded = course / "autograded" / "flood" / first / f"{first}.ipynb"
    assert flooded.stat().st_size < 500_000
