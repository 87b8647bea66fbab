"""The notebooks as files: complete, stripped, linked, and in step with the module.

nbval runs them (``make test`` collects notebooks/ too); these tests check
what nbval cannot: that each notebook really has code to run, carries no
outputs, teaches in the agreed shape, and that every function a notebook
develops inline for teaching (``def NAME_by_hand``) agrees with the module's.
"""

from __future__ import annotations

import ast
import json
import re
import subprocess
import sys
from pathlib import Path

import pytest
import torch

import styletransfer_utils as st

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOKS = sorted((ROOT / "notebooks").glob("[0-9][0-9]_*.ipynb"))
SKIP_MARKS = ("NBVAL_SKIP", "NBVAL_IGNORE")


def load(path: Path) -> dict:
    return json.loads(path.read_text())


def code_cells(path: Path) -> list[str]:
    return ["".join(cell["source"]) for cell in load(path)["cells"] if cell["cell_type"] == "code"]


def test_there_are_six_notebooks_in_order():
    assert [p.name[:2] for p in NOTEBOOKS] == ["01", "02", "03", "04", "05", "06"]


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
    if number > 1:
        assert NOTEBOOKS[number - 2].name in markdown
    if number < len(NOTEBOOKS):
        assert NOTEBOOKS[number].name in markdown


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


def inline_definitions():
    """(notebook, function name, cell source) for every ``def NAME_by_hand`` in the notebooks."""
    found = []
    for path in NOTEBOOKS:
        for cell in code_cells(path):
            for node in ast.parse(re.sub(r"^[%!].*$", "", cell, flags=re.M)).body:
                if isinstance(node, ast.FunctionDef) and node.name.endswith("_by_hand"):
                    found.append((path.name, node.name, ast.get_source_segment(cell, node)))
    return found


def test_notebooks_develop_some_functions_inline():
    assert len(inline_definitions()) >= 3


SAMPLE_INPUTS = {
    "gram_matrix": lambda: (torch.randn(1, 8, 5, 7),),
    "content_loss": lambda: (torch.randn(1, 8, 5, 7), torch.randn(1, 8, 5, 7)),
    "total_variation_loss": lambda: (torch.rand(1, 3, 9, 11),),
    "imagenet_normalize": lambda: (torch.rand(1, 3, 4, 4),),
    "style_loss": lambda: (
        {"conv1_1": torch.randn(1, 4, 6, 6), "conv2_1": torch.randn(1, 6, 3, 3)},
        {"conv1_1": st.gram_matrix(torch.randn(1, 4, 6, 6)), "conv2_1": st.gram_matrix(torch.randn(1, 6, 3, 3))},
        {"conv1_1": 1.0, "conv2_1": 0.5},
    ),
}


@pytest.mark.parametrize(("notebook", "name", "source"), inline_definitions(), ids=lambda v: str(v)[:40])
def test_inline_definition_matches_the_module(notebook, name, source):
    module_name = name.removesuffix("_by_hand")
    if module_name == "optimize":
        return  # the loop has its own test below
    assert module_name in SAMPLE_INPUTS, f"add sample inputs for {module_name} to this test"
    # What a teaching cell may use: torch, and module functions taught in an earlier notebook.
    namespace = {"torch": torch, "F": torch.nn.functional, "math": __import__("math"), "gram_matrix": st.gram_matrix}
    exec(compile(source, f"<{notebook}:{name}>", "exec"), namespace)
    torch.manual_seed(0)
    arguments = SAMPLE_INPUTS[module_name]()
    expected = getattr(st, module_name)(*arguments)
    assert torch.allclose(namespace[name](*arguments), expected, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("optimizer", ["adam", "lbfgs"])
def test_notebook_05_loop_is_the_modules_loop(optimizer, model, content_image, style_image):
    """Notebook 05's hand-written loop and `optimize` give the same image from the same start, within 1e-6."""
    [source] = [src for nb, name, src in inline_definitions() if name == "optimize_by_hand"]
    namespace = {"torch": torch, "F": torch.nn.functional, "math": __import__("math")}
    exec(compile(source, "<05_optimising_with_adam:optimize_by_hand>", "exec"), namespace)
    content = st.image_to_tensor(content_image.resize((48, 36)))
    style = st.image_to_tensor(style_image.resize((48, 36)))
    objective = st.StyleTransferLoss(model, content, style, tv_weight=0.1)
    lr = st.DEFAULT_LR[optimizer]

    by_hand = content.clone().requires_grad_(True)
    optimizer_by_hand = st.new_optimizer(optimizer, by_hand, lr)
    best_by_hand, history = namespace["optimize_by_hand"](objective, by_hand, optimizer_by_hand, 6)
    module = content.clone().requires_grad_(True)
    run = st.optimize(objective, module, steps=6, optimizer=optimizer, lr=lr)

    assert (by_hand.detach() - module.detach()).abs().max().item() <= 1e-6
    assert (best_by_hand - run.best).abs().max().item() <= 1e-6
    assert [losses.total for losses in history] == pytest.approx(run.history.total, rel=1e-6)
    assert not torch.equal(module.detach(), content)  # the loop moved the pixels
