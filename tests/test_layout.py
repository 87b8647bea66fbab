"""The layout the README's Layout section describes: import arrows point toward the core, the core reads
top to bottom (no name used above its definition), and no function in it is longer than a screen."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


@pytest.mark.slow
def test_importing_the_core_imports_no_tool():
    """Import arrows point toward the core: styletransfer_utils never imports styletransfer_tools."""
    code = "import styletransfer_utils, sys; print(sorted(m for m in sys.modules if m.startswith('styletransfer_t')))"
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, check=True)
    assert result.stdout.strip() == "[]"
    tree = ast.parse((ROOT / "styletransfer_utils.py").read_text())
    for node in tree.body:
        if isinstance(node, (ast.Import, ast.ImportFrom)):
            names = [alias.name for alias in node.names] + [getattr(node, "module", None) or ""]
            assert not any(name.startswith("styletransfer_tools") for name in names)


def test_every_tool_imports_the_core_and_no_front_end_imports_another():
    tools = ROOT / "styletransfer_tools"
    for path in tools.glob("*.py"):
        source = path.read_text()
        if path.name not in ("__init__.py", "__main__.py", "grading.py"):  # grading.py: an nbgrader plug-in
            assert "from styletransfer_utils import" in source or "import styletransfer_utils" in source, path.name
        if path.name in ("files.py", "notebook.py"):
            assert "from styletransfer_tools" not in source, path.name  # the lowest tools
        assert "styletransfer_tools.cli" not in source or path.name == "__main__.py", path.name


GOING_FURTHER = "# 7. Going further"
UNDER_THE_HOOD = "# 8. Under the hood"
FIRST_READING_BUDGET = 800  # non-blank lines of sections 1 to 6


def line_of(source: str, heading: str) -> int:
    return source[:source.index(heading)].count("\n") + 1


def test_the_core_has_no_forward_references():
    """The first reading (sections 1 to 6) uses only names defined above each use, or in the sections after
    it, which it may call down into: "Going further" (notebook 07) and "Under the hood". "Going further" may
    call into "Under the hood"; that section uses only names above its own use. So the file reads top to
    bottom, and what a first reading can skip waits at the end."""
    source = (ROOT / "styletransfer_utils.py").read_text()
    further_line, hood_line = line_of(source, GOING_FURTHER), line_of(source, UNDER_THE_HOOD)
    assert further_line < hood_line
    tree = ast.parse(source)
    definitions = [n for n in tree.body if isinstance(n, (ast.FunctionDef, ast.ClassDef))]
    top_level = {n.name for n in definitions}
    further = {n.name for n in definitions if further_line < n.lineno < hood_line}
    hood = {n.name for n in definitions if n.lineno > hood_line}
    assert {"GramMatrix", "read_checkpoint", "release_freed_memory", "choose_precision", "run_layer"} <= hood
    assert {"through_mask", "with_pooling", "match_colors", "keep_colors", "blend_weights"} <= further
    defined: set[str] = set()
    for node in tree.body:
        if isinstance(node, ast.If):  # the `if __name__ == "__main__"` block at the end
            continue
        used = {n.id for n in ast.walk(node) if isinstance(n, ast.Name)} & top_level
        own = {node.name} if isinstance(node, (ast.FunctionDef, ast.ClassDef)) else set()
        later = further | hood if node.lineno < further_line else hood if node.lineno < hood_line else set()
        name = getattr(node, "name", ast.unparse(node)[:40])
        assert not used - (defined | own | later), f"{name} uses {sorted(used - defined - own - later)} too early"
        if isinstance(node, (ast.FunctionDef, ast.ClassDef)):
            defined.add(node.name)


def test_the_first_reading_fits_its_budget():
    """What a first reading needs (images, features, the Gram matrix, the losses, the loop, the settings and
    `stylize`) stays at most 800 non-blank lines: anything else goes to "Going further" or "Under the hood"."""
    source = (ROOT / "styletransfer_utils.py").read_text()
    first_reading = source[:source.index(GOING_FURTHER)]
    lines = sum(1 for line in first_reading.splitlines() if line.strip())
    assert lines <= FIRST_READING_BUDGET, f"sections 1 to 6 have {lines} non-blank lines: move what a first " \
        "reading can skip below them"


FUNCTION_BUDGET = 60  # lines, signature and docstring included


def test_no_function_in_the_core_is_longer_than_its_budget():
    """A function a student reads should fit on a screen; `stylize` is made of named steps to stay short."""
    tree = ast.parse((ROOT / "styletransfer_utils.py").read_text())
    lengths = {node.name: node.end_lineno - node.lineno + 1 for node in ast.walk(tree)
               if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef))}
    assert {name: n for name, n in lengths.items() if n > FUNCTION_BUDGET} == {}
    stylize = next(node for node in tree.body if getattr(node, "name", "") == "stylize")
    body = stylize.end_lineno - stylize.body[1].lineno + 1  # after the docstring
    assert body <= 40, f"stylize's body has {body} lines: move a step into a function of its own"
