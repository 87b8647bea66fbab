"""The notebook times and learning goals that teachers read: one source, shown the same everywhere.

`benchmarks/time_notebooks.py --write` times every notebook and stores the figures in
notebooks/timings.json; the time column of README.md's notebook table and notebooks/TEACHING.md show
them rounded to whole seconds. TEACHING.md also copies each notebook's "You will learn" cell and lists
its autograded exercises. The first tests check the repository's files as they are (they fail until
the notebooks have been timed, and whenever a notebook is added, renamed or re-timed without
regenerating); the others check the script's own parsing and rewriting on temporary files.

The parsers here are written independently of the script's, so that a bug in one is caught by the other.
"""

from __future__ import annotations

import datetime as dt
import importlib.util
import json
import os
import re
import sys
from pathlib import Path

import nbformat

from styletransfer_tools import student

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOK_DIR = ROOT / "notebooks"
NOTEBOOKS = sorted(path.name for path in NOTEBOOK_DIR.glob("[0-9][0-9]_*.ipynb"))
TIMINGS = NOTEBOOK_DIR / "timings.json"
TEACHING = NOTEBOOK_DIR / "TEACHING.md"
README = ROOT / "README.md"
HOW = "run `python benchmarks/time_notebooks.py --weights PATH --write` on a quiet machine"
SYNC = "run `python benchmarks/time_notebooks.py --sync`"


def load_script():
    spec = importlib.util.spec_from_file_location("time_notebooks", ROOT / "benchmarks" / "time_notebooks.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules.setdefault("time_notebooks", module)
    spec.loader.exec_module(module)
    return module


time_notebooks = load_script()


# -----------------------------------------------------------------------------
# Independent readers of what a person sees
# -----------------------------------------------------------------------------


def whole_seconds(seconds: float) -> int:
    """As displayed: whole seconds, a half rounded up."""
    return int(seconds + 0.5)


def readme_times(text: str) -> dict[str, int]:
    """Notebook file -> seconds, from the rows of README's table that link a notebook and have a time column."""
    times: dict[str, int] = {}
    blocks = re.findall(r"(?:^\|.*\n?)+", text, flags=re.M)
    for block in blocks:
        header, *rows = block.strip("\n").split("\n")
        columns = [cell.strip().lower() for cell in header.strip("|").split("|")]
        if not any(column.endswith("time") for column in columns):
            continue
        column = next(index for index, name in enumerate(columns) if name.endswith("time"))
        for row in rows:
            link = re.search(r"\(notebooks/(\d\d_\w+\.ipynb)\)", row)
            if link:
                cell = row.strip("|").split("|")[column].strip()
                value = re.match(r"(\d+) s\b", cell)
                assert value, f"README's time cell for {link[1]} is {cell!r}, not 'N s'"
                times[link[1]] = int(value[1])
    return times


def teaching_table_times(text: str) -> dict[str, int]:
    """Notebook file -> seconds, from TEACHING.md's timing table."""
    block = re.search(r"<!-- BEGIN generated: timings -->\n(.*?)<!-- END generated: timings -->", text, re.S)
    assert block, "TEACHING.md has no generated timings block"
    times = {}
    for link, seconds in re.findall(r"^\| \d\d \| \[[^]]*\]\((\d\d_\w+\.ipynb)\) \| (\d+) s \|", block[1], re.M):
        times[link] = int(seconds)
    return times


def teaching_inline_times(text: str) -> list[tuple[str, str]]:
    """Every (notebook number, shown value) marked ``<!-- time: NN -->VALUE<!-- /time -->`` in TEACHING.md."""
    return re.findall(r"<!-- time: (\d\d) -->(.*?)<!-- /time -->", text)


def generated_blocks(text: str) -> dict[str, str]:
    return dict(re.findall(r"<!-- BEGIN generated: (.+?) -->\n(.*?)<!-- END generated: \1 -->", text, re.S))


def you_will_learn(path: Path) -> str:
    cells = json.loads(path.read_text(encoding="utf-8"))["cells"]
    for cell in cells:
        text = "".join(cell["source"])
        if cell["cell_type"] == "markdown" and "## You will learn" in text:
            after = text.split("## You will learn", 1)[1]
            return re.split(r"^#", after, flags=re.M)[0].strip()
    raise AssertionError(f"{path.name} has no 'You will learn' section")


def lesson_rows(text: str) -> list[tuple[int, int, str]]:
    """(first minute, last minute, row) of the lesson plan's table: rows that start with 'a–b'."""
    section = text.split("## A 50-minute lesson", 1)[1]
    return [(int(start), int(end), row)
            for start, end, row in ((m[1], m[2], m[0]) for m in re.finditer(r"^\| (\d+)–(\d+) \|.*$", section, re.M))]


def timings() -> dict:
    assert TIMINGS.is_file(), f"there is no notebooks/timings.json: {HOW}"
    return json.loads(TIMINGS.read_text(encoding="utf-8"))


# -----------------------------------------------------------------------------
# The repository's files
# -----------------------------------------------------------------------------


def test_timings_cover_every_notebook():
    """Every notebook has a measured time, with what it was measured on; no notebook that is gone."""
    entries = timings()["notebooks"]
    assert sorted(entries) == NOTEBOOKS, f"timings.json does not match notebooks/: {HOW} (or name the changed ones)"
    for name, entry in entries.items():
        assert entry["seconds"] > 0 and entry["runs"], name
        assert {"cpu", "cores", "avx512_bf16", "torch"} <= set(entry["machine"]), name
        assert entry["weights"] and entry["weights_label"], name
        dt.datetime.fromisoformat(entry["date"])


def test_readme_table_shows_the_measured_times():
    """README's time column: a row for every notebook, each time equal to timings.json's."""
    shown = readme_times(README.read_text(encoding="utf-8"))
    assert sorted(shown) == NOTEBOOKS, "README's notebook table should have a row for every notebook"
    measured = {name: whole_seconds(entry["seconds"]) for name, entry in timings()["notebooks"].items()}
    assert shown == measured, f"README's times differ from timings.json: {SYNC}"


def test_teaching_shows_the_measured_times():
    """TEACHING.md's table and every time in its text equal timings.json's."""
    text = TEACHING.read_text(encoding="utf-8")
    measured = {name: whole_seconds(entry["seconds"]) for name, entry in timings()["notebooks"].items()}
    assert teaching_table_times(text) == measured, f"TEACHING.md's table differs from timings.json: {SYNC}"
    by_number = {name[:2]: f"{seconds} s" for name, seconds in measured.items()}
    inline = teaching_inline_times(text)
    assert inline, "TEACHING.md shows no notebook time in its text"
    assert [value for _, value in inline] == [by_number.get(number) for number, _ in inline], SYNC


def test_teaching_is_as_generated():
    """What the script would write is what is there (the slowest cells, the machine line, the goals)."""
    text = TEACHING.read_text(encoding="utf-8")
    regenerated, problems = time_notebooks.update_teaching(text, timings())
    assert not problems
    assert regenerated == text, SYNC


def test_teaching_has_every_notebooks_goals():
    """Each notebook's learning goals in TEACHING.md are its own "You will learn", and its exercises are listed."""
    blocks = generated_blocks(TEACHING.read_text(encoding="utf-8"))
    goals = {name.removeprefix("goals "): body for name, body in blocks.items() if name.startswith("goals ")}
    assert sorted(goals) == NOTEBOOKS, "TEACHING.md needs a goals section for each notebook, and none for others"
    for name in NOTEBOOKS:
        assert goals[name].startswith(you_will_learn(NOTEBOOK_DIR / name) + "\n"), f"{name}: {SYNC}"
        for definition in student.find_definitions(NOTEBOOK_DIR / name):
            assert f"`{definition.name}`" in goals[name], f"{name}: {SYNC}"


def test_lesson_plan_adds_up():
    """The 50-minute plan: blocks from 0 to 50 without gaps, and each block's machine time fits in it."""
    rows = lesson_rows(TEACHING.read_text(encoding="utf-8"))
    assert rows and rows[0][0] == 0 and rows[-1][1] == 50
    for (_, end), (start, _) in zip(((r[0], r[1]) for r in rows), ((r[0], r[1]) for r in rows[1:]), strict=False):
        assert start == end, "the lesson's blocks should follow each other"
    timed = 0
    for start, end, row in rows:
        seconds = [int(value[:-2]) for _, value in teaching_inline_times(row) if re.fullmatch(r"\d+ s", value)]
        assert sum(seconds) <= (end - start) * 60, f"the machine needs {sum(seconds)} s in minutes {start}–{end}"
        timed += len(seconds)
    if TIMINGS.is_file():
        assert timed, "no measured time in the lesson plan"


# -----------------------------------------------------------------------------
# The script, on temporary files
# -----------------------------------------------------------------------------


def fake_timings(names, base=100.5):
    """Distinct times for ``names``; x.5 seconds, to see halves rounded up."""
    machine = {"cpu": "Test CPU", "cpu_family": "", "avx512_bf16": False, "amx_bf16": False, "cores": 2,
               "gpu": None, "torch": "0", "torch_threads": 2}
    return {"notebooks": {name: {"seconds": base + index, "runs": [base + index], "date": "2025-01-01T00:00:00+00:00",
                                 "weights": "/w.pth", "weights_label": "test weights", "machine": machine,
                                 "longest_cells": [{"cell": 3, "section": "2. Somewhere", "seconds": 7.25}]}
                          for index, name in enumerate(names)}}


def test_shown_rounds_halves_up():
    assert [time_notebooks.shown(s) for s in (0.4, 9.49, 57.5, 58.5, 74.0)] == ["0 s", "9 s", "58 s", "59 s", "74 s"]


def test_readme_update_changes_only_the_time_cells():
    text = README.read_text(encoding="utf-8")
    listed = sorted(readme_times(text))
    fake = fake_timings([*listed, "99_not_in_readme.ipynb"])
    updated, unlisted = time_notebooks.update_readme_times(text, fake)
    assert unlisted == ["99_not_in_readme.ipynb"]
    assert readme_times(updated) == {name: whole_seconds(fake["notebooks"][name]["seconds"]) for name in listed}
    before, after = text.split("\n"), updated.split("\n")
    assert len(before) == len(after)
    changed = [(old, new) for old, new in zip(before, after, strict=True) if old != new]
    assert len(changed) == len(listed)
    for old, new in changed:  # the same row but for the leading "N s" of one cell; remarks after it stay
        assert re.sub(r"\| \d+ s\b", "| T", old) == re.sub(r"\| \d+ s\b", "| T", new)


def test_readme_update_fills_an_empty_time_cell_and_keeps_a_remark():
    text = ("Intro\n\n| # | notebook | what | CPU time |\n|---|---|---|---|\n"
            "| 01 | [A](notebooks/01_a.ipynb) | x | |\n| 02 | [B](notebooks/02_b.ipynb) | y | 5 s (plus yours) |\n"
            "\n| other | table |\n|---|---|\n| [A](notebooks/01_a.ipynb) | 3 s |\n")
    updated, _ = time_notebooks.update_readme_times(text, fake_timings(["01_a.ipynb", "02_b.ipynb"], base=9.5))
    assert "| 01 | [A](notebooks/01_a.ipynb) | x | 10 s |" in updated
    assert "| 02 | [B](notebooks/02_b.ipynb) | y | 11 s (plus yours) |" in updated
    assert "| [A](notebooks/01_a.ipynb) | 3 s |" in updated  # a table without a time column is left alone


def test_teaching_update_round_trip():
    """Fake times written by the script are what this file's readers find, in the table and in the text."""
    text = TEACHING.read_text(encoding="utf-8")
    present = [name for name in NOTEBOOKS if f"goals {name}" in generated_blocks(text)]
    fake = fake_timings(present)
    updated, _ = time_notebooks.update_teaching(text, fake)
    expected = {name: whole_seconds(fake["notebooks"][name]["seconds"]) for name in present}
    assert teaching_table_times(updated) == expected
    numbers = {name[:2]: f"{seconds} s" for name, seconds in expected.items()}
    for number, value in teaching_inline_times(updated):
        if number in numbers:
            assert value == numbers[number]
    assert "2. Somewhere: 7 s" in updated and "Test CPU" in updated and "test weights" in updated
    assert time_notebooks.update_teaching(updated, fake)[0] == updated  # a second run changes nothing


def test_teaching_update_reports_what_it_cannot_fill(tmp_path):
    notebook = {"cells": [{"cell_type": "markdown", "metadata": {}, "source": "# 01 · A\n\n## You will learn\n- x\n"}],
                "metadata": {}, "nbformat": 4, "nbformat_minor": 5}
    for name in ("01_a.ipynb", "02_b.ipynb"):
        (tmp_path / name).write_text(json.dumps(notebook))
    text = ("<!-- BEGIN generated: goals 01_a.ipynb -->\nold\n<!-- END generated: goals 01_a.ipynb -->\n"
            "<!-- BEGIN generated: goals 09_gone.ipynb -->\n<!-- END generated: goals 09_gone.ipynb -->\n"
            "01 takes <!-- time: 01 -->? s<!-- /time -->.\n")
    updated, problems = time_notebooks.update_teaching(text, {"notebooks": {}}, tmp_path)
    assert "\n- x\n\nNo autograded exercise" in updated and "old" not in updated
    assert any("09_gone" in problem for problem in problems)
    assert any("02_b.ipynb" in problem for problem in problems)
    assert any("notebook 01" in problem for problem in problems)


def test_merge_replaces_the_measured_and_drops_notebooks_that_are_gone():
    old = fake_timings(["01_a.ipynb", "02_b.ipynb", "03_gone.ipynb"])
    new = fake_timings(["02_b.ipynb"], base=1.0)["notebooks"]
    merged = time_notebooks.merge(old, new, ["01_a.ipynb", "02_b.ipynb"])
    assert list(merged["notebooks"]) == ["01_a.ipynb", "02_b.ipynb"]
    assert merged["notebooks"]["02_b.ipynb"]["seconds"] == 1.0
    assert merged["notebooks"]["01_a.ipynb"] == old["notebooks"]["01_a.ipynb"]


def test_sync_rewrites_both_files(tmp_path):
    readme = tmp_path / "README.md"
    readme.write_text("| # | notebook | CPU time |\n|---|---|---|\n| 01 | [A](notebooks/01_a.ipynb) | 3 s |\n")
    teaching = tmp_path / "notebooks" / "TEACHING.md"
    teaching.parent.mkdir()
    teaching.write_text("It takes <!-- time: 01 -->? s<!-- /time -->.\n")
    notebook = {"cells": [{"cell_type": "markdown", "metadata": {}, "source": "# 01 · A\n"}],
                "metadata": {}, "nbformat": 4, "nbformat_minor": 5}
    (teaching.parent / "01_a.ipynb").write_text(json.dumps(notebook))
    messages = time_notebooks.sync(fake_timings(["01_a.ipynb"], base=41.6), readme, teaching)
    assert "| 42 s |" in readme.read_text() and "<!-- time: 01 -->42 s<!-- /time -->" in teaching.read_text()
    assert any("no section" in message for message in messages)  # 01 has no goals block there


def test_time_notebook_runs_a_fresh_kernel_at_defaults_in_a_copy(tmp_path):
    """The kernel sees none of the tests' STYLETRANSFER_SIZE/STEPS, gets the weights, and runs in a copy.

    conftest.py sets STYLETRANSFER_SIZE for the whole test session, so its absence in the kernel is the check.
    """
    folder = tmp_path / "notebooks"
    folder.mkdir()
    cells = [
        "import os\nfrom pathlib import Path",
        "assert 'STYLETRANSFER_SIZE' not in os.environ and 'STYLETRANSFER_STEPS' not in os.environ",
        "assert os.environ['STYLETRANSFER_VGG19_WEIGHTS'] == '/some/weights.pth'",
        f"assert Path.cwd() != Path({str(folder)!r}) and Path('../assets/astronaut.jpg').is_file()",
        "Path('left_behind.txt').write_text('x')",
    ]
    path = folder / "99_probe.ipynb"
    nbformat.write(nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(source) for source in cells]), path)
    assert "STYLETRANSFER_SIZE" in os.environ  # set by conftest.py
    measurement = time_notebooks.time_notebook(path, time_notebooks.kernel_environment("/some/weights.pth"))
    assert measurement.seconds > 0
    assert measurement.written == ["left_behind.txt"]
    assert sorted(p.name for p in folder.iterdir()) == ["99_probe.ipynb"]  # nothing written beside the original
    assert len(measurement.longest_cells) == 2 and all(c["seconds"] >= 0 for c in measurement.longest_cells)
