"""Limits on what a student's code can cost the grader: used by classroom/nbgrader_config.py.

nbgrader runs each submission in a Jupyter kernel, a process of its own, and keeps the outputs of every
cell in the graded notebook and the feedback. Its ``LimitOutput`` counts lines, and one ``print`` of
20 MB is a single line; `LimitOutputCharacters` counts characters too. Kept apart from
`styletransfer_tools.assignments` so that every nbgrader command does not import torch.
"""

from __future__ import annotations

import json
from typing import Any

from nbgrader.preprocessors import LimitOutput
from traitlets import Integer


class LimitOutputCharacters(LimitOutput):
    """nbgrader's LimitOutput (lines per cell), at most ``max_chars`` characters of output per cell, and no
    results in a check cell that could read as partial credit.

    It runs after the kernel and before nbgrader scores the cells (``SaveAutoGrades``), in LimitOutput's
    place in ``Autograde.autograde_preprocessors``.
    """

    max_chars = Integer(20_000, help="most characters of output kept per cell (-1: no limit)").tag(config=True)

    def preprocess_cell(self, cell: Any, resources: Any, index: int) -> tuple[Any, Any]:
        cell, resources = super().preprocess_cell(cell, resources, index)
        if self.max_chars >= 0:
            cap_outputs(cell, self.max_chars)
        if is_check_cell(cell):
            drop_results(cell)
        return cell, resources


def is_check_cell(cell: Any) -> bool:
    """An autograded check: a graded code cell that is not the student's own."""
    metadata = cell.get("metadata", {}).get("nbgrader", {})
    return cell.get("cell_type") == "code" and metadata.get("grade", False) and not metadata.get("solution", False)


def drop_results(cell: Any) -> None:
    """Remove ``execute_result`` outputs from a check cell.

    nbgrader reads a number shown as a check cell's result as partial credit, and looks no further than
    the first such output; this course's checks end with ``print``, so a result there can only come from
    a student's code (IPython's display hook called from inside a function) and would outrank the error
    that follows it.
    """
    cell["outputs"] = [output for output in cell.get("outputs", []) if output.get("output_type") != "execute_result"]


def cap_outputs(cell: Any, max_chars: int) -> None:
    """Keep at most ``max_chars`` characters of a code cell's outputs (text, or the JSON of rich output).

    A stream output that crosses the limit is cut, with a line saying so, and later ones are dropped. An
    error output is always kept, only shortened: nbgrader scores a cell by whether it has one, so
    dropping it would turn a failed check into points.
    """
    if cell.get("cell_type") != "code":
        return
    kept, used = [], 0
    for output in cell.get("outputs", []):
        if output.get("output_type") == "error":
            output["evalue"] = shorten(str(output.get("evalue", "")), max_chars)
            output["traceback"] = [shorten(line, max_chars) for line in output.get("traceback", [])]
            kept.append(output)
            continue
        if used >= max_chars:
            continue
        text = output.get("text") if output.get("output_type") == "stream" else None
        size = len(text) if isinstance(text, str) else len(json.dumps(output.get("data", {})))
        if used + size > max_chars:
            if isinstance(text, str):
                output["text"] = shorten(text, max_chars - used)
                kept.append(output)
            used = max_chars
            continue
        kept.append(output)
        used += size
    cell["outputs"] = kept


def shorten(text: str, max_chars: int) -> str:
    """``text`` cut to ``max_chars`` characters, with a line saying so when it was longer."""
    if max_chars < 0 or len(text) <= max_chars:
        return text
    return text[:max_chars] + f"\n... output cut: {len(text) - max_chars} more characters ...\n"
