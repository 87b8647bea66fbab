"""The student edition of the notebooks, and the autograder that checks a student's work.

The teacher's notebooks (``notebooks/``) develop some functions by hand, ``def NAME_by_hand``, and
compare them with the module's ``NAME``. The student edition (``student/``, generated, never
committed) is the same notebooks with the bodies of those functions left blank. The autograder runs a
student's functions on sample inputs and compares them with `styletransfer_utils`: the very comparison
that tests/test_notebooks.py makes of the teacher's notebooks (it calls this module), so the sample
inputs and tolerances live in one place::

    python -m styletransfer_tools.student                   # notebooks/*.ipynb -> student/
    python -m styletransfer_tools.student check student/03_gram_matrices.ipynb

The cells that hold an exercise carry the tag ``exercise`` in the teacher's notebooks (cell metadata).
The generator blanks exactly those, and refuses a notebook whose tags and ``*_by_hand`` functions
disagree, so that no solution reaches the student edition for want of a tag.
"""

from __future__ import annotations

import argparse
import ast
import contextlib
import copy
import io
import json
import math
import re
import sys
import tokenize
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F

import styletransfer_utils as st
from styletransfer_tools.files import write_atomically

ROOT = Path(__file__).resolve().parents[1]
TEACHER_DIR = ROOT / "notebooks"
STUDENT_DIR = ROOT / "student"
NOTEBOOK_GLOB = "[0-9][0-9]_*.ipynb"
EXERCISE_TAG = "exercise"
SUFFIX = "_by_hand"
COMMAND = "python -m styletransfer_tools.student"


class ExerciseTagError(ValueError):
    """A teacher's notebook whose ``exercise`` tags and ``*_by_hand`` functions disagree."""


class ExerciseFailure(Exception):
    """A by-hand function that disagrees with the module; the message is the short reason shown to a student."""


# =============================================================================
# 1. Finding the by-hand functions
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


@dataclass(frozen=True)
class Definition:
    """One ``def NAME_by_hand`` found in a notebook.

    ``source`` is the function's own text; ``error`` says why the cell could not be read as Python (a
    student's half-written cell), and then ``source`` is the whole cell.
    """

    notebook: str
    cell: int
    name: str
    source: str
    error: str | None = None


def definitions_in_cell(notebook: str, index: int, source: str) -> list[Definition]:
    """The by-hand functions of one code cell; a cell that does not parse still names the ones it defines."""
    try:
        tree = parse_cell(source)
    except SyntaxError as error:
        names = re.findall(rf"^def\s+(\w+{SUFFIX})\s*\(", source, flags=re.M)
        reason = f"cell {index} is not valid Python (line {error.lineno}: {error.msg})"
        return [Definition(notebook, index, name, source, reason) for name in names]
    return [Definition(notebook, index, node.name, ast.get_source_segment(source, node) or "")
            for node in by_hand_functions(tree)]


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


def find_definitions(path: str | Path) -> list[Definition]:
    """Every top-level ``def NAME_by_hand`` in the code cells of a notebook, in order."""
    path = Path(path)
    notebook = read_notebook(path)
    return [definition
            for index, cell in enumerate(notebook["cells"]) if cell["cell_type"] == "code"
            for definition in definitions_in_cell(path.name, index, cell_source(cell))]


# =============================================================================
# 2. Blanking a function's body
# =============================================================================


def placeholder(name: str) -> list[str]:
    """The lines that replace a body: a marker a student can search for, and an error until it is filled."""
    return [f"# YOUR CODE HERE (exercise: {name}; see the markdown above)", f'raise NotImplementedError("{name}")']


def is_blank(function: ast.FunctionDef) -> bool:
    """Whether a body holds nothing but its docstring and ``raise NotImplementedError``, ``pass`` or ``...``.

    The autograder reports such a function as TODO rather than FAIL, and the generator does not overwrite
    a student's notebook unless every by-hand function in it is still blank.
    """
    def empty(statement: ast.stmt) -> bool:
        if isinstance(statement, ast.Pass):
            return True
        if isinstance(statement, ast.Expr) and isinstance(statement.value, ast.Constant):
            return True  # the docstring, or a bare ``...``
        if isinstance(statement, ast.Raise) and statement.exc is not None:
            raised = statement.exc.func if isinstance(statement.exc, ast.Call) else statement.exc
            return isinstance(raised, ast.Name) and raised.id == "NotImplementedError"
        return False

    return all(empty(statement) for statement in function.body)


def docstring_node(function: ast.FunctionDef) -> ast.Expr | None:
    """The statement holding the function's docstring, if it has one."""
    first = function.body[0]
    if isinstance(first, ast.Expr) and isinstance(first.value, ast.Constant) and isinstance(first.value.value, str):
        return first
    return None


def header_end(lines: list[str], function: ast.FunctionDef) -> tuple[int, int]:
    """(line, column) just after the colon that ends the ``def`` line, which may span several lines.

    The colon is the first ``:`` outside brackets after ``def``; annotations inside the brackets have
    colons of their own, hence the tokenizer rather than a search.
    """
    text = "".join(lines[function.lineno - 1:])
    depth = 0
    for token in tokenize.generate_tokens(io.StringIO(text).readline):
        if token.type == tokenize.OP and token.string in "([{":
            depth += 1
        elif token.type == tokenize.OP and token.string in ")]}":
            depth -= 1
        elif token.type == tokenize.OP and token.string == ":" and depth == 0:
            return function.lineno + token.end[0] - 1, token.end[1]
    raise ValueError(f"no colon after def {function.name}")  # cannot happen for source that parsed


def keep_until(function: ast.FunctionDef, lines: list[str]) -> tuple[int, int]:
    """(line, column, in characters) up to which a blanked function keeps its text: the docstring, or the header."""
    docstring = docstring_node(function)
    if docstring is None:
        return header_end(lines, function)
    line = lines[docstring.end_lineno - 1]
    return docstring.end_lineno, len(line.encode()[:docstring.end_col_offset].decode())  # ast counts UTF-8 bytes


def blank_function(source: str, function: ast.FunctionDef) -> str:
    """``source`` with the body of ``function`` (after its docstring) replaced by `placeholder`."""
    lines = source.splitlines(keepends=True)
    line, column = keep_until(function, lines)
    first = function.body[1] if docstring_node(function) and len(function.body) > 1 else function.body[0]
    own_line = first.lineno > header_end(lines, function)[0]
    indent = " " * (first.col_offset if own_line else function.col_offset + 4)
    kept = "".join(lines[:line - 1]) + lines[line - 1][:column].rstrip()
    body = "".join(f"\n{indent}{text}" for text in placeholder(function.name))
    rest = "".join(lines[function.end_lineno:])
    return kept + body + ("\n" + rest if rest else "\n" if source.endswith("\n") else "")


def blank_cell(source: str) -> tuple[str, list[str]]:
    """A cell's text with every top-level by-hand function blanked, and their names.

    The functions are blanked from the last to the first so that the line numbers of those above stay
    valid; everything else in the cell is kept as it is.
    """
    functions = by_hand_functions(parse_cell(source))
    for function in reversed(functions):
        source = blank_function(source, function)
    return source, [function.name for function in functions]


# =============================================================================
# 3. The student edition
# =============================================================================


def tags(cell: dict[str, Any]) -> list[str]:
    """A cell's tags (cell metadata ``tags``, which Jupyter's property inspector edits)."""
    return list(cell.get("metadata", {}).get("tags", []))


def check_tags(notebook: dict[str, Any], name: str) -> None:
    """Refuse a tagged cell without a by-hand function, and a by-hand function in an untagged cell.

    The first would blank nothing and is a mistake; the second would give away a solution.
    """
    for index, cell in enumerate(notebook["cells"]):
        tagged = EXERCISE_TAG in tags(cell)
        where = f"{name}, cell {index} (id {cell.get('id', '?')})"
        if cell["cell_type"] != "code":
            if tagged:
                raise ExerciseTagError(f"{where} is tagged {EXERCISE_TAG!r} but is a {cell['cell_type']} cell; "
                                       "only a code cell that defines a *_by_hand function can be an exercise.")
            continue
        try:
            defined = [function.name for function in by_hand_functions(parse_cell(cell_source(cell)))]
        except SyntaxError as error:
            raise ExerciseTagError(f"{where} is not valid Python (line {error.lineno}: {error.msg}).") from None
        if tagged and not defined:
            raise ExerciseTagError(f"{where} is tagged {EXERCISE_TAG!r} but defines no *_by_hand function at its top "
                                   "level: remove the tag, or define the function the student is to write there.")
        if defined and not tagged:
            raise ExerciseTagError(f"{where} defines {', '.join(defined)} but is not tagged {EXERCISE_TAG!r}, so the "
                                   "student edition would show the solution: add the tag to the cell's metadata.")


def header_cell(name: str, exercises: Sequence[str]) -> dict[str, Any]:
    """The markdown cell that opens a student notebook: what it is, what to do, how to check it."""
    if exercises:
        todo = (f"Your exercises: {', '.join(f'`{e}`' for e in exercises)}. Each one's cell keeps the `def` line "
                "and its docstring, if any; replace the lines `# YOUR CODE HERE` and `raise NotImplementedError(...)` "
                "with your code. Until you do, the cells that compare your function with the module's stop with "
                "`NotImplementedError`: that is expected.\n\n"
                "**Check your work**: save the notebook, then run from the repository's folder\n\n"
                f"    .venv/bin/{COMMAND} check student/{name}\n\n"
                "or, in a cell of this notebook, `from styletransfer_tools.student import check_notebooks; "
                f"check_notebooks([\"{name}\"])`. It prints `PASS`, `FAIL` with a short reason, or `TODO` "
                "(not filled in) for each exercise.")
    else:
        todo = "This notebook has no function to write: read it and run it, and try its exercises at the end."
    text = ("**Student edition.** This is a copy of the course notebook, generated from the teacher's edition in "
            f"`notebooks/` (which holds the solutions) by `{COMMAND}`. Regenerating it does not overwrite a "
            f"notebook in which you have filled in an exercise.\n\n{todo}")
    return {"cell_type": "markdown", "id": "", "metadata": {}, "source": text.splitlines(keepends=True)}


def student_notebook(notebook: dict[str, Any], name: str) -> dict[str, Any]:
    """The student edition of one teacher's notebook: exercise bodies blanked, no outputs, a header cell."""
    check_tags(notebook, name)
    student = copy.deepcopy(notebook)
    exercises: list[str] = []
    for cell in student["cells"]:
        if cell["cell_type"] != "code":
            continue
        cell["outputs"], cell["execution_count"] = [], None
        if EXERCISE_TAG in tags(cell):
            source, names = blank_cell(cell_source(cell))
            cell["source"] = source.splitlines(keepends=True)
            exercises += names
    student["cells"].insert(0, header_cell(name, exercises))
    for index, cell in enumerate(student["cells"]):
        cell["id"] = str(index)  # as nbstripout numbers them, so that its --verify accepts the edition too
    return student


def notebook_text(notebook: dict[str, Any]) -> str:
    """JSON as the repository writes notebooks (and as Jupyter saves them): indent 1, UTF-8, final newline."""
    return json.dumps(notebook, indent=1, ensure_ascii=False) + "\n"


def has_work(path: Path) -> bool:
    """Whether a student notebook holds an exercise that is filled in (or half-written): not to be overwritten."""
    try:
        notebook = read_notebook(path)
    except ValueError:
        return True  # whatever it is, it is not ours to destroy
    for cell in notebook["cells"]:
        if cell.get("cell_type") == "code" and EXERCISE_TAG in tags(cell):
            try:
                if not all(is_blank(f) for f in by_hand_functions(parse_cell(cell_source(cell)))):
                    return True
            except SyntaxError:
                return True
    return False


def generate(source: Path = TEACHER_DIR, output: Path = STUDENT_DIR, *, force: bool = False) -> list[Path]:
    """Write the student edition of every notebook in ``source`` into ``output``; returns the files written.

    A notebook in ``output`` with a filled-in exercise is kept (named on stderr) unless ``force``: a
    student who regenerates the edition must not lose their work. Every teacher's notebook is checked
    before anything is written, so a tagging mistake leaves ``output`` as it was.
    """
    paths = sorted(Path(source).glob(NOTEBOOK_GLOB))
    if not paths:
        raise ValueError(f"No notebooks ({NOTEBOOK_GLOB}) in {source}.")
    editions = {path.name: notebook_text(student_notebook(read_notebook(path), path.name)) for path in paths}
    Path(output).mkdir(parents=True, exist_ok=True)
    written = []
    for name, text in editions.items():
        target = Path(output) / name
        if target.exists() and not force and has_work(target):
            print(f"kept {target}: it holds your work (pass --force to replace it)", file=sys.stderr)
            continue
        written.append(write_atomically(target, lambda stream, text=text: stream.write(text.encode())))
    return written


# =============================================================================
# 4. Comparing a by-hand function with the module's
# =============================================================================


@dataclass(frozen=True)
class Exercise:
    """How to check ``NAME_by_hand``: sample inputs for ``NAME``, and which module functions it may use.

    ``may_use`` are module functions taught in an earlier notebook (style_loss_by_hand may call
    gram_matrix); a function is never given the one it is to rewrite.
    """

    sample_inputs: Callable[[], tuple]
    may_use: tuple[str, ...] = ()


def _style_loss_inputs() -> tuple:
    features = {"conv1_1": torch.randn(1, 4, 6, 6), "conv2_1": torch.randn(1, 6, 3, 3)}
    targets = {"conv1_1": st.gram_matrix(torch.randn(1, 4, 6, 6)), "conv2_1": st.gram_matrix(torch.randn(1, 6, 3, 3))}
    return features, targets, {"conv1_1": 1.0, "conv2_1": 0.5}


EXERCISES = {
    "imagenet_normalize": Exercise(lambda: (torch.rand(1, 3, 4, 4),)),
    "gram_matrix": Exercise(lambda: (torch.randn(1, 8, 5, 7),)),
    "content_loss": Exercise(lambda: (torch.randn(1, 8, 5, 7), torch.randn(1, 8, 5, 7))),
    "style_loss": Exercise(_style_loss_inputs, may_use=("gram_matrix",)),
    "total_variation_loss": Exercise(lambda: (torch.rand(1, 3, 9, 11),)),
}
RTOL, ATOL = 1e-5, 1e-6  # float32 sums in another order; a real mistake is off by far more
LOOP_OPTIMIZERS = ("adam", "lbfgs")
LOOP_STEPS = 6
LOOP_SIZE = (48, 36)  # width, height: small enough for seconds on a CPU, large enough to reach relu5_1
LOOP_TOLERANCE = 1e-6


@contextlib.contextmanager
def seeded(seed: int = 0) -> Iterator[None]:
    """Fixed random numbers inside, the caller's random state untouched outside."""
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        yield


@contextlib.contextmanager
def one_thread() -> Iterator[None]:
    """torch on one thread inside: on tensors this small, more threads only wait for each other.

    Measured on the 2-core machine while another process kept it busy: the loop check took 15 s with
    torch's default two threads and 0.5 s with one.
    """
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(threads)


def load_function(name: str, source: str, may_use: Sequence[str] = ()) -> Callable:
    """Run a by-hand function's text with only what a teaching cell may use: torch, F, math and ``may_use``.

    Anything else the cell relied on (a variable of the notebook, a module function it should have
    written itself) is missing here, and the check fails with a NameError that names it.
    """
    namespace: dict[str, Any] = {"torch": torch, "F": F, "math": math}
    namespace.update({used: getattr(st, used) for used in may_use})
    try:
        exec(compile(source, f"<{name}>", "exec"), namespace)
    except SyntaxError as error:
        raise ExerciseFailure(f"not valid Python (line {error.lineno}: {error.msg})") from None
    if not callable(namespace.get(name)):
        raise ExerciseFailure(f"the cell defines no function {name}")
    return namespace[name]


def compare_tensors(what: str, got: Any, expected: torch.Tensor, rtol: float = RTOL, atol: float = ATOL) -> None:
    """Raise `ExerciseFailure` saying how ``got`` differs from ``expected``, if it does."""
    if not isinstance(got, torch.Tensor):
        raise ExerciseFailure(f"{what} is {type(got).__name__}, not a tensor")
    if got.shape != expected.shape:
        raise ExerciseFailure(f"{what} has shape {tuple(got.shape)}, expected {tuple(expected.shape)}")
    if not torch.allclose(got.float(), expected.float(), rtol=rtol, atol=atol):
        difference = (got.float() - expected.float()).abs().max().item()
        raise ExerciseFailure(f"{what} differs from the module's by up to {difference:.3g}")


def compare_function(name: str, source: str) -> None:
    """``NAME_by_hand`` against ``styletransfer_utils.NAME`` on seeded sample inputs; raises `ExerciseFailure`."""
    module_name = name.removesuffix(SUFFIX)
    if module_name not in EXERCISES:
        raise ExerciseFailure(f"no sample inputs for {module_name}: add them to EXERCISES in {Path(__file__).name}")
    exercise = EXERCISES[module_name]
    function = load_function(name, source, exercise.may_use)
    with seeded(0), one_thread():
        arguments = exercise.sample_inputs()
        expected = getattr(st, module_name)(*arguments)
        compare_tensors("the result", function(*arguments), expected)


@dataclass(frozen=True)
class LoopSample:
    """What optimize_by_hand is run on: a seeded random VGG19 and the bundled photo and painting, 48 x 36 px."""

    model: torch.nn.Module
    content: torch.Tensor
    style: torch.Tensor


@cache
def loop_sample() -> LoopSample:
    """Built once per process: untrained weights suffice, as both loops see the same objective."""
    with seeded(0):
        model = st.load_vgg19("random", device="cpu")
    content, style = (st.image_to_tensor(st.load_image(path).resize(LOOP_SIZE))
                      for path in (st.DEFAULT_CONTENT, st.DEFAULT_STYLE))
    return LoopSample(model, content, style)


def compare_optimize(source: str, optimizer: str, sample: LoopSample | None = None) -> None:
    """optimize_by_hand against `optimize`: from the same start, the same images and losses within 1e-6.

    Raises `ExerciseFailure` with the first difference found.
    """
    sample = sample or loop_sample()
    loop = load_function("optimize_by_hand", source)
    with one_thread():
        compare_loops(loop, optimizer, sample)


def compare_loops(loop: Callable, optimizer: str, sample: LoopSample) -> None:
    """The body of `compare_optimize`: run both loops, then compare what they return."""
    objective = st.StyleTransferLoss(sample.model, sample.content, sample.style, tv_weight=0.1)
    lr = st.DEFAULT_LR[optimizer]
    by_hand = sample.content.clone().requires_grad_(True)
    returned = loop(objective, by_hand, st.new_optimizer(optimizer, by_hand, lr), LOOP_STEPS)
    module = sample.content.clone().requires_grad_(True)
    run = st.optimize(objective, module, steps=LOOP_STEPS, optimizer=optimizer, lr=lr)
    if torch.equal(module.detach(), sample.content):
        raise RuntimeError("optimize did not move the pixels: this sample cannot tell a loop that does nothing")

    if not (isinstance(returned, tuple) and len(returned) == 2):
        raise ExerciseFailure(f"with {optimizer}: it should return (best image, list of Losses)")
    best, history = returned
    compare_tensors(f"with {optimizer}, the image after {LOOP_STEPS} steps", by_hand.detach(), module.detach(),
                    rtol=0, atol=LOOP_TOLERANCE)
    compare_tensors(f"with {optimizer}, the best image", best, run.best, rtol=0, atol=LOOP_TOLERANCE)
    totals = [getattr(losses, "total", losses) for losses in history]
    if len(totals) != len(run.history.total):
        raise ExerciseFailure(f"with {optimizer}: {len(totals)} losses in the history, expected {LOOP_STEPS}")
    for step, (mine, theirs) in enumerate(zip(totals, run.history.total, strict=True)):
        if not math.isclose(float(mine), theirs, rel_tol=LOOP_TOLERANCE):
            raise ExerciseFailure(f"with {optimizer}: the loss at step {step} is {float(mine):.6g}, "
                                  f"optimize's is {theirs:.6g}")


# =============================================================================
# 5. The autograder
# =============================================================================


@dataclass(frozen=True)
class Verdict:
    """The result of one exercise: PASS, FAIL with a short reason, or TODO (not filled in)."""

    name: str
    status: str
    reason: str = ""

    def line(self) -> str:
        """The line the autograder prints, which starts with the status so that it can be grepped."""
        if self.status == "TODO":
            return f"TODO {self.name} (not filled in)"
        return f"{self.status} {self.name}" + (f": {self.reason}" if self.reason else "")


def short(error: BaseException) -> str:
    """An exception in one line, as a student would search for it."""
    message = str(error).strip().splitlines()[0] if str(error).strip() else ""
    message = message if len(message) <= 120 else message[:117] + "..."
    return f"raised {type(error).__name__}" + (f": {message}" if message else "")


def check_source(name: str, source: str) -> Verdict:
    """The verdict on one by-hand function's text."""
    try:
        function = by_hand_functions(parse_cell(source))
    except SyntaxError as error:
        return Verdict(name, "FAIL", f"not valid Python (line {error.lineno}: {error.msg})")
    if function and is_blank(function[0]):
        return Verdict(name, "TODO")
    try:
        if name == "optimize" + SUFFIX:
            for optimizer in LOOP_OPTIMIZERS:
                compare_optimize(source, optimizer)
        else:
            compare_function(name, source)
    except ExerciseFailure as failure:
        return Verdict(name, "FAIL", str(failure))
    except NotImplementedError:
        return Verdict(name, "TODO")
    except Exception as error:  # the student's code may raise anything; say what, and go on to the next
        return Verdict(name, "FAIL", short(error))
    return Verdict(name, "PASS")


def check_definition(definition: Definition) -> Verdict:
    """The verdict on one by-hand function found in a notebook."""
    if definition.error:
        return Verdict(definition.name, "FAIL", definition.error)
    return check_source(definition.name, definition.source)


def check_notebooks(paths: Sequence[str | Path], out: Any = None) -> int:
    """Check every by-hand function in ``paths``, printing one line each; the exit code: 0 if all pass.

    A notebook that defines a function twice (an exercise asks to rewrite one) gets a line for each,
    marked with its cell number.
    """
    out = out or sys.stdout
    verdicts = []
    for path in paths:
        definitions = find_definitions(path)
        print(f"{path}:" if definitions else f"{path}: no *_by_hand exercises", file=out)
        names = [definition.name for definition in definitions]
        for definition in definitions:
            verdict = check_definition(definition)
            if names.count(definition.name) > 1:
                verdict = Verdict(f"{definition.name} [cell {definition.cell}]", verdict.status, verdict.reason)
            print(verdict.line(), file=out)
            verdicts.append(verdict)
    counts = {status: sum(v.status == status for v in verdicts) for status in ("PASS", "FAIL", "TODO")}
    print(", ".join(f"{count} {status}" for status, count in counts.items()), file=out)
    return 0 if counts["PASS"] == len(verdicts) else 1


# =============================================================================
# 6. The command line
# =============================================================================


def check_main(argv: Sequence[str]) -> int:
    """``check PATH.ipynb [PATH ...]``: the autograder."""
    parser = argparse.ArgumentParser(
        prog=f"{COMMAND} check",
        description="Check the *_by_hand functions of filled-in notebooks against styletransfer_utils. Prints "
                    "'PASS NAME', 'FAIL NAME: reason' or 'TODO NAME (not filled in)' for each; exit code 0 "
                    "only if all pass. Save the notebook first: what is checked is the file.")
    parser.add_argument("paths", nargs="+", type=Path, metavar="PATH.ipynb")
    args = parser.parse_args(argv)
    missing = [str(path) for path in args.paths if not path.is_file()]
    if missing:
        parser.error(f"no such notebook: {', '.join(missing)}")
    try:
        return check_notebooks(args.paths)
    except ValueError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2


def generate_main(argv: Sequence[str]) -> int:
    """Write the student edition (the default command)."""
    parser = argparse.ArgumentParser(
        prog=COMMAND,
        description="Write the student edition of the notebooks: the bodies of the *_by_hand functions in the "
                    f"cells tagged {EXERCISE_TAG!r} are blanked. '{COMMAND} check PATH.ipynb ...' checks a "
                    "filled-in notebook.")
    parser.add_argument("--source", type=Path, default=TEACHER_DIR,
                        help="the teacher's notebooks (default: %(default)s)")
    parser.add_argument("--output", type=Path, default=STUDENT_DIR, help="where to write (default: %(default)s)")
    parser.add_argument("--force", action="store_true", help="replace notebooks with filled-in exercises too")
    args = parser.parse_args(argv)
    try:
        written = generate(args.source, args.output, force=args.force)
    except (ValueError, st.OutputError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    print(f"wrote {len(written)} student notebook(s) to {args.output}")
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m styletransfer_tools.student [check PATH ...]``; returns the exit code."""
    argv = sys.argv[1:] if argv is None else list(argv)
    if argv[:1] == ["check"]:
        return check_main(argv[1:])
    return generate_main(argv)


if __name__ == "__main__":
    sys.exit(main())
