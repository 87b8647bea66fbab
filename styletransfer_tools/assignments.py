"""The course as nbgrader assignments: one per notebook, handed out and graded by nbgrader.

The teacher's notebooks (``notebooks/``) develop some functions by hand, ``def NAME_by_hand``, in cells
tagged ``exercise``. This module turns each notebook into nbgrader's *source* version of an assignment:

- the body of each by-hand function becomes a solution region (``### BEGIN SOLUTION`` ... ``### END
  SOLUTION``), followed by an autograded check cell that compares the function with numbers the module
  gave on fixed inputs when the course was built (a hidden part uses other inputs);
- each written exercise gets a manually graded answer cell holding the teacher's answer from
  ``classroom/answers.md``;
- the notebook opens with a header saying what to fill in and how the checks work.

``nbgrader generate_assignment`` then writes the *release* version, with the solutions and answers
removed, and ``nbgrader autograde`` grades submissions by running them in a kernel::

    python -m styletransfer_tools.assignments                 # make student: course/source and course/release
    python -m styletransfer_tools.assignments autograde       # make autograde: course/submitted -> feedback

The check cells call no function of the module, so a student's cell that replaces one (or replaces
``torch.allclose``) cannot change a verdict; the grading limits (time per cell, output per cell) are in
``classroom/nbgrader_config.py`` (with `styletransfer_tools.grading`).
"""

from __future__ import annotations

import argparse
import ast
import copy
import json
import os
import re
import shutil
import subprocess
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

import styletransfer_utils as st
from styletransfer_tools.files import write_atomically

ROOT = Path(__file__).resolve().parents[1]
TEACHER_DIR = ROOT / "notebooks"
COURSE_DIR = ROOT / "course"
CONFIG = ROOT / "classroom" / "nbgrader_config.py"
ANSWERS = ROOT / "classroom" / "answers.md"
FIGURES = ROOT / "docs" / "figures"
NOTEBOOK_GLOB = "[0-9][0-9]_*.ipynb"
EXERCISE_TAG = "exercise"
SUFFIX = "_by_hand"
GRADING_SETTINGS = {"STYLETRANSFER_SIZE": "64", "STYLETRANSFER_STEPS": "4", "MPLBACKEND": "agg"}


class ExerciseTagError(ValueError):
    """A teacher's notebook whose ``exercise`` tags and ``*_by_hand`` functions disagree."""


# =============================================================================
# 1. Finding the exercises in a teacher's notebook
# =============================================================================


def cell_source(cell: dict[str, Any]) -> str:
    """A cell's text: nbformat stores it as a list of lines or as one string."""
    source = cell.get("source", "")
    return source if isinstance(source, str) else "".join(source)


def parse_cell(source: str) -> ast.Module:
    """The cell as Python, IPython's ``%magic`` and ``!shell`` lines blanked so that line numbers still match."""
    return ast.parse(re.sub(r"^[ \t]*[%!].*$", "", source, flags=re.M))


def by_hand_functions(tree: ast.Module) -> list[ast.FunctionDef]:
    """The top-level ``def NAME_by_hand`` of a cell: what a teaching cell develops and a student writes."""
    return [node for node in tree.body if isinstance(node, ast.FunctionDef) and node.name.endswith(SUFFIX)]


def read_notebook(path: Path) -> dict[str, Any]:
    """A notebook's JSON, or a `ValueError` that names the file (the command line prints it)."""
    try:
        notebook = json.loads(path.read_text(encoding="utf-8"))
    except OSError as error:
        raise ValueError(f"Cannot read {path}: {error.strerror or error}.") from None
    except json.JSONDecodeError as error:
        raise ValueError(f"{path} is not a notebook (not JSON: {error.msg}, line {error.lineno}).") from None
    if not isinstance(notebook, dict) or not isinstance(notebook.get("cells"), list):
        raise ValueError(f"{path} is not a notebook (no list of cells).")
    return notebook


def tags(cell: dict[str, Any]) -> list[str]:
    """A cell's tags (cell metadata ``tags``, which Jupyter's property inspector edits)."""
    return list(cell.get("metadata", {}).get("tags", []))


def exercise_functions(notebook: dict[str, Any], name: str) -> dict[int, list[ast.FunctionDef]]:
    """The by-hand functions of each cell tagged ``exercise``, by cell index.

    Refuses a tagged cell without a by-hand function (it would hide nothing) and a by-hand function in an
    untagged cell (its solution would reach the students).
    """
    found = {}
    for index, cell in enumerate(notebook["cells"]):
        tagged = EXERCISE_TAG in tags(cell)
        where = f"{name}, cell {index} (id {cell.get('id', '?')})"
        if cell["cell_type"] != "code":
            if tagged:
                raise ExerciseTagError(f"{where} is tagged {EXERCISE_TAG!r} but is a {cell['cell_type']} cell; "
                                       "only a code cell that defines a *_by_hand function can be an exercise.")
            continue
        try:
            functions = by_hand_functions(parse_cell(cell_source(cell)))
        except SyntaxError as error:
            raise ExerciseTagError(f"{where} is not valid Python (line {error.lineno}: {error.msg}).") from None
        if tagged and not functions:
            raise ExerciseTagError(f"{where} is tagged {EXERCISE_TAG!r} but defines no *_by_hand function at its top "
                                   "level: remove the tag, or define the function the student is to write there.")
        if functions and not tagged:
            names = ", ".join(function.name for function in functions)
            raise ExerciseTagError(f"{where} defines {names} but is not tagged {EXERCISE_TAG!r}, so the student "
                                   "version would show the solution: add the tag to the cell's metadata.")
        if functions:
            found[index] = functions
    return found


def exercise_spans(source: str, number: int, started: bool) -> tuple[list[tuple[int, int]], int, bool]:
    """Where a markdown cell's written exercises are: (start, end) character spans, and the counters after.

    The exercises are numbered from 1 in the list under ``## Exercises``, and Going deeper continues the
    numbering (``7. ...`` after six). So an item is a line starting with the next number, ``N. ``, at the
    left margin, once the ``## Exercises`` heading has been passed (``started``), with the indented or
    blank lines after it. Other numbered lists start again at 1, and are not exercises, nor is an item
    that continues one of them (a list's 7th point after its 6th).
    """
    spans, offset, start, other = [], 0, None, None
    for line in source.splitlines(keepends=True):
        item = re.match(r"(\d+)\. ", line)
        if not started and re.match(r"## Exercises\b", line):
            started = True
        elif item and int(item[1]) != number or item and other == number - 1:
            other = int(item[1])  # an item of another list
            if start is not None:
                spans.append((start, offset))
                start = None
        elif started and item:
            if start is not None:
                spans.append((start, offset))
            start, number = offset, number + 1
        elif start is not None and line.strip() and not line[0].isspace():
            spans.append((start, offset))
            start = None
        offset += len(line)
    if start is not None:
        spans.append((start, offset))
    return [(a, a + len(source[a:b].rstrip())) for a, b in spans], number, started


def count_written_exercises(notebook: dict[str, Any]) -> int:
    """How many written exercises a notebook has (numbered from 1 under ``## Exercises``, on in Going deeper)."""
    number, started = 1, False
    for cell in notebook["cells"]:
        if cell["cell_type"] == "markdown":
            _, number, started = exercise_spans(cell_source(cell), number, started)
    return number - 1


def coded_exercises(path: Path) -> list[str]:
    """The names of a notebook's by-hand functions: what students write and the checks grade."""
    functions = exercise_functions(read_notebook(path), path.stem)
    return [function.name for cell in functions.values() for function in cell]


def read_answers(path: Path = ANSWERS) -> dict[str, dict[int, str]]:
    """``classroom/answers.md``: the teacher's answer to each written exercise, by notebook and number."""
    answers: dict[str, dict[int, str]] = {}
    notebook = number = None
    for line in path.read_text(encoding="utf-8").splitlines(keepends=True):
        if line.startswith("## "):
            notebook, number = line[3:].strip(), None
            answers[notebook] = {}
        elif line.startswith("### Exercise ") and notebook is not None:
            number = int(line.removeprefix("### Exercise ").strip())
            answers[notebook][number] = ""
        elif notebook is not None and number is not None:
            answers[notebook][number] += line
    return {name: {n: text.strip() for n, text in numbered.items()} for name, numbered in answers.items()}


# =============================================================================
# 2. The checks: fixed inputs, the module's answers to them, and a hint
# =============================================================================


@dataclass(frozen=True)
class Check:
    """How ``NAME_by_hand`` is checked: fixed inputs (as Python values), and where to look if it fails.

    ``inputs(seed)`` gives the arguments as nested lists and dicts of rounded numbers, which the check
    cell writes out literally; the module's ``NAME`` computes the expected result from the same values.
    """

    inputs: Callable[[int], tuple]
    hint: str


def _numbers(seed: int, shape: tuple[int, ...], low: float = -1.0, high: float = 1.0, digits: int = 2) -> list:
    """Seeded numbers in [low, high) with ``digits`` decimals, as nested lists: short enough to print."""
    generator = torch.Generator().manual_seed(seed)
    values = torch.rand(shape, generator=generator, dtype=torch.float64) * (high - low) + low
    return _rounded(values.tolist(), digits)


def _style_inputs(seed: int) -> tuple:
    features = {"relu1_1": _numbers(seed, (1, 3, 2, 3), 0, 2), "relu2_1": _numbers(seed + 1, (1, 4, 2, 2), 0, 2)}
    targets = {name: st.gram_matrix(torch.tensor(_numbers(seed + 2 + i, shape, 0, 2))).tolist()
               for i, (name, shape) in enumerate([("relu1_1", (1, 3, 2, 3)), ("relu2_1", (1, 4, 2, 2))])}
    targets = {name: _rounded(value, 4) for name, value in targets.items()}
    return features, targets, {"relu1_1": 1.0, "relu2_1": 0.5}


def _rounded(value: Any, digits: int) -> Any:
    return [_rounded(v, digits) for v in value] if isinstance(value, list) else round(value, digits)


CHECKS = {
    "imagenet_normalize": Check(
        lambda seed: (_numbers(seed, (1, 3, 2, 3), 0, 1),),
        "subtract each channel's mean and divide by its standard deviation (the six numbers in the text); "
        "view(1, 3, 1, 1) puts them on the channel axis."),
    "gram_matrix": Check(
        lambda seed: (_numbers(seed, (seed % 2 + 1, 3, 2, 3)),),
        "reshape to (B, C, H*W), multiply by its own transpose over the last two axes, divide by C*H*W; "
        "keep the batch axis B."),
    "content_loss": Check(
        lambda seed: (_numbers(seed, (1, 3, 2, 2)), _numbers(seed + 1, (1, 3, 2, 2))),
        "the mean (not the sum, not half the sum) of the squared differences."),
    "style_loss": Check(
        _style_inputs,
        "for each layer in layer_weights: the Gram matrix of the features (divided by C*H*W, as gram_matrix "
        "does), the mean squared difference from that layer's target, times the layer's weight; then the sum."),
    "total_variation_loss": Check(
        lambda seed: (_numbers(seed, (1, 3, 3, 4), 0, 1),),
        "the differences between each pixel and its right-hand neighbour and the one below, squared; the mean "
        "of each of the two, added."),
}
VISIBLE_SEED, HIDDEN_SEED = 1, 2
RTOL, ATOL = 1e-4, 1e-6  # float32 sums in another order differ by ~1e-7; a real mistake by far more

LOOP_STEPS = 6
LOOP_SIZE = (48, 36)  # width, height: a second on a CPU, and large enough to reach relu5_1
LOOP_HINT = ("the order inside each step: in the closure zero_grad, evaluate, backward, remember the losses; "
             "after optimizer.step, record the losses of the step's first evaluation, keep the image the step "
             "started from if that loss is the lowest so far, then clamp the pixels to [0, 1].")


def tensors(value: Any) -> Any:
    """Nested lists as tensors, dicts of them as dicts of tensors, numbers as they are."""
    if isinstance(value, dict):
        return {key: tensors(item) for key, item in value.items()}
    return torch.tensor(value) if isinstance(value, list) else value


def as_code(value: Any) -> str:
    """A value as the check cell writes it: lists become ``torch.tensor(...)``, dicts stay dicts."""
    if isinstance(value, dict):
        return "{" + ", ".join(f"{key!r}: {as_code(item)}" for key, item in value.items()) + "}"
    return f"torch.tensor({value!r})" if isinstance(value, list) else repr(value)


def expected_values(name: str, seed: int) -> tuple[tuple, tuple[int, ...], list[float]]:
    """The inputs for ``seed``, and the shape and flattened values the module's ``name`` gives for them."""
    arguments = CHECKS[name].inputs(seed)
    with torch.no_grad():
        result = getattr(st, name)(*map(tensors, arguments))
    return arguments, tuple(result.shape), [float(f"{v:.8g}") for v in result.double().flatten().tolist()]


CHECK_FUNCTION = '''\
def _check(got, shape, expected, where):
    """Compare a result with the module's numbers using only Python's own arithmetic."""
    assert type(got) is torch.Tensor, f"{where}: the function returned {type(got).__name__}, not a tensor."
    assert tuple(got.shape) == shape, f"{where}: the result has shape {tuple(got.shape)}, expected {shape}."
    got = [float(v) for v in got.detach().double().flatten().tolist()]
    wrong = [i for i, (g, e) in enumerate(zip(got, expected)) if not abs(g - e) <= RTOL * abs(e) + ATOL]
    if wrong:
        i = wrong[0]
        ratios = {round(g / e, 4) for g, e in zip(got, expected) if abs(e) > 1e-3}
        factor = f" Every value is {ratios.pop()} times the expected one." if len(ratios) == 1 else ""
        raise AssertionError(f"{where}: {len(wrong)} of {len(expected)} values differ; value {i} is {got[i]:.6g}, "
                             f"expected {expected[i]:.6g}.{factor} Where to look: HINT")
'''


def check_cell_source(function: str) -> str:
    """The autograded check of ``NAME_by_hand``: visible inputs, then hidden ones that nbgrader removes."""
    name = function.removesuffix(SUFFIX)
    if name == "optimize":
        return loop_check_source()
    lines = [f"# Autograded check of {function}: its results on fixed inputs against the numbers that the module's",
             f"# {name} gave for them when the course was built. It calls no function of the module, so nothing",
             "# that your code replaces can change the verdict. Run it after your function's cell.",
             f"RTOL, ATOL = {RTOL}, {ATOL}",
             CHECK_FUNCTION.replace("HINT", CHECKS[name].hint).rstrip("\n"), ""]
    for seed, label in ((VISIBLE_SEED, "these inputs"), (HIDDEN_SEED, "the hidden inputs")):
        arguments, shape, expected = expected_values(name, seed)
        call = f"{function}({', '.join(as_code(argument) for argument in arguments)})"
        if seed == HIDDEN_SEED:
            lines.append("### BEGIN HIDDEN TESTS")
        lines.append(f"_check({call},\n       {shape!r}, {expected!r}, \"{function} on {label}\")")
        if seed == HIDDEN_SEED:
            lines.append("### END HIDDEN TESTS")
    lines.append(f'print("{function}: correct on these inputs.")')
    return "\n".join(lines)


def loop_run(optimizer: str) -> tuple[list[float], float, float]:
    """(the totals of each step, the best image's sum, the final image's sum) of the module's `optimize` on
    the check's sample: the bundled photo and painting at 48 x 36 px and a VGG19 with random weights seeded
    0 (both loops see the same objective, so untrained weights do). `LOOP_CHECK` runs the student's loop on
    the same sample in the kernel, which is why it repeats these lines rather than calling this function.
    """
    torch.manual_seed(0)
    model = st.load_vgg19("random", device="cpu")
    content, style = (st.image_to_tensor(st.load_image(path).resize(LOOP_SIZE))
                      for path in (st.DEFAULT_CONTENT, st.DEFAULT_STYLE))
    objective = st.StyleTransferLoss(model, content, style, tv_weight=0.1)
    image = content.clone().requires_grad_(True)
    run = st.optimize(objective, image, steps=LOOP_STEPS, optimizer=optimizer)
    return list(run.history.total), float(run.best.double().sum()), float(image.detach().double().sum())


LOOP_CHECK = '''\
# Autograded check of optimize_by_hand: six steps with Adam, then with L-BFGS, on the bundled photo and
# painting at 48 x 36 px and a VGG19 with random weights seeded 0 (the loop is the same with any weights).
# The expected losses and image sums are what the module's `optimize` gave when the course was built.
import styletransfer_utils as _st

def _check_loop(optimizer, totals, best_sum, image_sum):
    torch.manual_seed(0)
    model = _st.load_vgg19("random", device="cpu")
    content, style = (_st.image_to_tensor(_st.load_image(path).resize(SIZE))
                      for path in (_st.DEFAULT_CONTENT, _st.DEFAULT_STYLE))
    objective = _st.StyleTransferLoss(model, content, style, tv_weight=0.1)
    image = content.clone().requires_grad_(True)
    result = optimize_by_hand(objective, image, _st.new_optimizer(optimizer, image, _st.DEFAULT_LR[optimizer]), STEPS)
    where = f"optimize_by_hand with {optimizer}"
    assert type(result) is tuple and len(result) == 2, f"{where} should return (best image, list of Losses)."
    best, history = result
    got = [float(getattr(losses, "total", losses)) for losses in history]
    assert len(got) == len(totals), f"{where}: {len(got)} losses in the history, expected {len(totals)}."
    for step, (g, e) in enumerate(zip(got, totals)):
        assert abs(g - e) <= RTOL * abs(e), (f"{where}: the loss at step {step} is {g:.6g}, expected {e:.6g}. "
                                             "Where to look: HINT")
    for what, g, e in (("best image", float(best.double().sum()), best_sum),
                       ("image after the last step", float(image.detach().double().sum()), image_sum)):
        assert abs(g - e) <= RTOL * abs(e), (f"{where}: the {what} differs (its pixels sum to {g:.6g}, "
                                             f"expected {e:.6g}). Where to look: HINT")

'''


def loop_check_source() -> str:
    """The check cell of ``optimize_by_hand``: Adam visible, L-BFGS hidden."""
    lines = [LOOP_CHECK.replace("HINT", LOOP_HINT).replace("SIZE", repr(LOOP_SIZE)).replace("STEPS", str(LOOP_STEPS))
             .replace("RTOL", repr(RTOL)).rstrip("\n"), ""]
    for optimizer in ("adam", "lbfgs"):
        totals, best_sum, image_sum = loop_run(optimizer)
        if optimizer == "lbfgs":
            lines.append("### BEGIN HIDDEN TESTS")
        lines.append(f"_check_loop({optimizer!r}, {totals!r},\n            {best_sum!r}, {image_sum!r})")
        if optimizer == "lbfgs":
            lines.append("### END HIDDEN TESTS")
    lines.append('print("optimize_by_hand: the same losses and images as optimize.")')
    return "\n".join(lines)


# =============================================================================
# 3. The source version of one notebook
# =============================================================================


def nbgrader_metadata(grade_id: str, *, solution: bool, grade: bool, points: int = 0) -> dict[str, Any]:
    """nbgrader's cell metadata (schema 3): a solution to hide, a graded cell, or both (a written answer)."""
    metadata = {"grade": grade, "grade_id": grade_id, "locked": grade and not solution, "schema_version": 3,
                "solution": solution, "task": False}
    if grade:
        metadata["points"] = points
    return metadata


def new_cell(kind: str, source: str, grade_id: str | None = None, **nbgrader: Any) -> dict[str, Any]:
    """A new markdown or code cell, with nbgrader metadata when ``grade_id`` is given."""
    cell: dict[str, Any] = {"cell_type": kind, "id": grade_id or "", "metadata": {}, "source": source}
    if grade_id:
        cell["metadata"]["nbgrader"] = nbgrader_metadata(grade_id, **nbgrader)
    if kind == "code":
        cell.update(outputs=[], execution_count=None)
    return cell


def mark_solution(source: str, functions: Sequence[ast.FunctionDef]) -> str:
    """``source`` with each function's body after its docstring between BEGIN and END SOLUTION lines."""
    lines = source.splitlines()
    for function in reversed(functions):  # from the last, so that line numbers above stay valid
        body = function.body
        first = body[1] if len(body) > 1 and isinstance(body[0], ast.Expr) and isinstance(
            getattr(body[0], "value", None), ast.Constant) and isinstance(body[0].value.value, str) else body[0]
        indent = " " * first.col_offset
        lines.insert(function.end_lineno, indent + "### END SOLUTION")
        lines.insert(first.lineno - 1, indent + "### BEGIN SOLUTION")
    return "\n".join(lines)


def header_cell(exercises: Sequence[str], written: int) -> dict[str, Any]:
    """The markdown cell that opens an assignment: what to fill in, what the checks use, how to run them."""
    parts = ["**Assignment.** This is a notebook of the course, handed out by nbgrader. Read it and run it "
             "top to bottom (*Run ▸ Run All Cells*)."]
    if exercises:
        names = ", ".join(f"`{name}`" for name in exercises)
        parts.append(
            f"**Functions to write**: {names}. In each one's cell, replace `# YOUR CODE HERE` and "
            "`raise NotImplementedError()` with the body, as the text before it describes; until you do, the "
            "cells that use it stop with `NotImplementedError`, as they should. You may use anything: torch, "
            "numpy, helper functions of your own.\n\n"
            "**The checks**: the cell after each function is an autograded check. It runs your function on "
            "small fixed inputs and compares the results with numbers the module gave for them when the course "
            "was built; if they differ, it stops with a message saying what differs and where to look. When "
            "you submit, the same check also runs on inputs you do not see, so make the function right, not "
            "just these numbers. Run a check cell again after each change to your function.")
    if written:
        parts.append(f"**Written answers**: each of the {written} exercises (under *Exercises*, and more under "
                     "*Going deeper*) has an answer cell below it, *YOUR ANSWER HERE*: write your answer there, "
                     "in place of that text. Your teacher reads and marks them.")
    parts.append("**Before you submit**: restart the kernel and run all cells, or press *Validate* in the "
                 "Assignments tab, which does the same and lists any check that fails.")
    return new_cell("markdown", "\n\n".join(parts))


def exercise_cell(function: str) -> dict[str, Any]:
    """The instruction placed before a function a student writes: the text above describes it."""
    return new_cell("markdown", f"**Exercise: write `{function}`.** The text above says what it computes. In the "
                                "cell below, replace `# YOUR CODE HERE` and `raise NotImplementedError()` with its "
                                "body; the cell after it checks your function.")


def split_exercises(cell: dict[str, Any], spans: Sequence[tuple[int, int]], first: int,
                    answers: dict[int, str]) -> list[dict[str, Any]]:
    """A markdown cell as its text between exercises, each exercise in a cell of its own followed by its answer cell."""
    source, cells, position = cell_source(cell), [], 0
    for number, (start, end) in enumerate(spans, start=first):
        if source[position:start].strip():
            cells.append(dict(copy.deepcopy(cell), source=source[position:start].rstrip()))
        cells.append(new_cell("markdown", source[start:end]))
        cells.append(new_cell("markdown", answers[number], f"answer_{number}", solution=True, grade=True, points=1))
        position = end
    if source[position:].strip():
        cells.append(new_cell("markdown", source[position:].strip()))
    return cells


def check_answers(name: str, count: int, answers: dict[int, str]) -> None:
    """Refuse a notebook whose exercises and ``classroom/answers.md`` section disagree."""
    missing = sorted(set(range(1, count + 1)) - {n for n, text in answers.items() if text})
    extra = sorted(set(answers) - set(range(1, count + 1)))
    if missing or extra:
        raise ValueError(f"{ANSWERS.name}, section {name}: the notebook has {count} written exercises; "
                         + (f"no answer to {missing}" if missing else f"answers to exercises it lacks: {extra}"))


def source_notebook(notebook: dict[str, Any], name: str, answers: dict[int, str]) -> dict[str, Any]:
    """The nbgrader source version of one teacher's notebook."""
    functions = exercise_functions(notebook, name)
    source = copy.deepcopy(notebook)
    cells: list[dict[str, Any]] = []
    exercises, number, started = [], 1, False
    for index, cell in enumerate(source["cells"]):
        if cell["cell_type"] == "code":
            cell["outputs"], cell["execution_count"] = [], None
            if index in functions:
                names = [function.name for function in functions[index]]
                exercises += names
                cell["source"] = mark_solution(cell_source(cell), functions[index])
                cell["metadata"]["nbgrader"] = nbgrader_metadata(names[0], solution=True, grade=False)
                cells += [exercise_cell(", ".join(names)), cell]
                cells += [new_cell("code", check_cell_source(function), f"check_{function}", solution=False,
                                   grade=True, points=1) for function in names]
                continue
        elif cell["cell_type"] == "markdown":
            spans, following, started = exercise_spans(cell_source(cell), number, started)
            if spans:
                check_answers(name, following - 1, {n: answers.get(n, "") for n in range(1, following)})
                cells += split_exercises(cell, spans, number, answers)
                number = following
                continue
        cells.append(cell)
    check_answers(name, number - 1, answers)
    source["cells"] = [header_cell(exercises, number - 1), *cells]
    for index, cell in enumerate(source["cells"]):
        cell["id"] = cell["id"] or f"cell-{index}"
        cell["source"] = relocate(cell_source(cell))
    return source


def relocate(text: str) -> str:
    """Paths as they resolve in an assignment's folder, which holds ``assets/`` and ``figures/`` itself."""
    return text.replace("../assets/", "assets/").replace("../docs/figures/", "figures/")


# =============================================================================
# 4. The course folder, and nbgrader's commands on it
# =============================================================================


def assignment_id(path: Path) -> str:
    """An assignment is named as its notebook: ``03_gram_matrices``."""
    return path.stem


def nbgrader(course: Path, *arguments: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    """Run ``nbgrader`` in ``course``, with this Python's ``bin`` first on PATH.

    nbgrader calls the ``alembic`` executable when it creates a gradebook; without the virtual
    environment's ``bin`` on PATH that fails with a traceback.
    """
    bin_dir = str(Path(sys.executable).parent)
    environment = {**os.environ, **(env or {}), "PATH": bin_dir + os.pathsep + os.environ.get("PATH", "")}
    return subprocess.run([sys.executable, "-m", "nbgrader", *arguments], cwd=course, env=environment,
                          capture_output=True, text=True)


def write_source(course: Path, notebooks: Path = TEACHER_DIR, answers: Path = ANSWERS) -> list[str]:
    """Write ``course/source/ID/ID.ipynb`` (with ``assets/`` and ``figures/``) for each notebook; the IDs.

    Every notebook is converted before anything is written, so a tagging mistake or a missing answer
    leaves the course folder as it was.
    """
    paths = sorted(Path(notebooks).glob(NOTEBOOK_GLOB))
    if not paths:
        raise ValueError(f"No notebooks ({NOTEBOOK_GLOB}) in {notebooks}.")
    all_answers = read_answers(answers)
    converted = {assignment_id(path): source_notebook(read_notebook(path), path.stem, all_answers.get(path.stem, {}))
                 for path in paths}
    course.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(CONFIG, course / CONFIG.name)
    for identifier, notebook in converted.items():
        folder = course / "source" / identifier
        folder.mkdir(parents=True, exist_ok=True)
        for name, origin in (("assets", st.ASSETS_DIR), ("figures", FIGURES)):
            shutil.copytree(origin, folder / name, dirs_exist_ok=True, ignore=shutil.ignore_patterns("*.py", "*.md"))
        text = json.dumps(notebook, indent=1, ensure_ascii=False) + "\n"
        write_atomically(folder / f"{identifier}.ipynb", lambda stream, text=text: stream.write(text.encode()))
    return list(converted)


def build_course(course: Path = COURSE_DIR, notebooks: Path = TEACHER_DIR, answers: Path = ANSWERS) -> list[str]:
    """``make student``: the source version of every assignment, then nbgrader's release version of each."""
    identifiers = write_source(course, notebooks, answers)
    result = nbgrader(course, "generate_assignment", "*", "--force", "--create")
    if result.returncode != 0:
        raise RuntimeError(f"nbgrader generate_assignment failed:\n{result.stdout}{result.stderr}")
    return identifiers


def autograde(course: Path = COURSE_DIR, assignment: str = "*", extra: Sequence[str] = ()) -> int:
    """``make autograde``: nbgrader autograde, then feedback, for every submission of ``assignment``.

    Submissions (``course/submitted/STUDENT/ID/``, where ``nbgrader collect`` puts them) run in a kernel
    at a small size and few steps (`GRADING_SETTINGS`): the checks do not depend on them, and the
    notebooks' other cells then take seconds. Returns nbgrader's exit code.
    """
    env = {**GRADING_SETTINGS, **{k: v for k, v in os.environ.items() if k in GRADING_SETTINGS}}
    for step in (["autograde", assignment, "--create", *extra], ["generate_feedback", assignment, "--force"]):
        result = nbgrader(course, *step, env=env)
        print(result.stdout + result.stderr, end="")
        if result.returncode != 0:
            return result.returncode
    return 0


# =============================================================================
# 5. The command line
# =============================================================================


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m styletransfer_tools.assignments [autograde [ID]]``; returns the exit code."""
    parser = argparse.ArgumentParser(
        prog="python -m styletransfer_tools.assignments",
        description="Build the course's nbgrader assignments (source and release versions) in COURSE, or "
                    "autograde the submissions collected there.")
    parser.add_argument("command", nargs="?", choices=("build", "autograde"), default="build")
    parser.add_argument("assignment", nargs="?", default="*", help="for autograde: an assignment ID (default: all)")
    parser.add_argument("--course", type=Path, default=COURSE_DIR, help="the course folder (default: %(default)s)")
    args = parser.parse_args(argv)
    try:
        if args.command == "autograde":
            return autograde(args.course, args.assignment)
        identifiers = build_course(args.course)
    except (ValueError, RuntimeError, st.OutputError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    print(f"wrote {len(identifiers)} assignments: sources in {args.course / 'source'}, "
          f"release versions in {args.course / 'release'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
