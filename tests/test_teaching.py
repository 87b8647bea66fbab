"""The notebook times and learning goals that teachers read: one source, shown the same everywhere.

`benchmarks/time_notebooks.py --write` times every notebook and stores the figures in
notebooks/timings.json, per CPU kind ("Zen 5, native bf16", "Zen 2, AVX2 only (fp32)"); README.md's
notebook table (a time column per kind) and notebooks/TEACHING.md show them rounded to whole seconds, and
TEACHING.md's text quotes each notebook's slowest kind. TEACHING.md also copies each notebook's "You will
learn" cell and lists its autograded exercises. The first tests check the repository's files as they are
(they fail until every kind has timed every notebook, and whenever a notebook is added, renamed or re-timed
without regenerating); the others check the script's own parsing and rewriting on temporary files.

The parsers here are written independently of the script's, so that a bug in one is caught by the other.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import re
from pathlib import Path

import nbformat
import pytest

from conftest import load_benchmark
from styletransfer_tools import assignments

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOK_DIR = ROOT / "notebooks"
NOTEBOOKS = sorted(path.name for path in NOTEBOOK_DIR.glob("[0-9][0-9]_*.ipynb"))
TIMINGS = NOTEBOOK_DIR / "timings.json"
TEACHING = NOTEBOOK_DIR / "TEACHING.md"
README = ROOT / "README.md"
HOW = "run `python benchmarks/time_notebooks.py --weights PATH --write` on a quiet machine"
SYNC = "run `python benchmarks/time_notebooks.py --sync`"


time_notebooks = load_benchmark("time_notebooks")


# -----------------------------------------------------------------------------
# Independent readers of what a person sees
# -----------------------------------------------------------------------------


def whole_seconds(seconds: float) -> int:
    """As displayed: whole seconds, a half rounded up."""
    return int(seconds + 0.5)


def time_columns(header: str) -> dict[int, str]:
    """Column index (between the outer pipes) -> kind label, for the header cells "time on LABEL"."""
    cells = [cell.strip() for cell in header.strip().strip("|").split("|")]
    return {index: cell[len("time on "):] for index, cell in enumerate(cells) if cell.startswith("time on ")}


def readme_times(text: str) -> dict[str, dict[str, int]]:
    """Kind label -> notebook file -> seconds, from the README table whose rows link notebooks, one column per
    kind headed "time on LABEL"."""
    times: dict[str, dict[str, int]] = {}
    for block in re.findall(r"(?:^\|.*\n?)+", text, flags=re.M):
        header, *rows = block.strip("\n").split("\n")
        columns = time_columns(header)
        if not columns or not re.search(r"\(notebooks/\d\d_", block):
            continue
        assert not re.search(r"\|\s*CPU time\s*\|", header), "README's table still has a time column without a kind"
        for row in rows:
            link = re.search(r"\(notebooks/(\d\d_\w+\.ipynb)\)", row)
            if not link:
                continue
            cells = row.strip().strip("|").split("|")
            for index, label in columns.items():
                value = re.match(r"(\d+) s\b", cells[index].strip())
                assert value, f"README's {label!r} cell for {link[1]} is {cells[index].strip()!r}, not 'N s'"
                times.setdefault(label, {})[link[1]] = int(value[1])
    return times


def teaching_table_times(text: str) -> dict[str, dict[str, int]]:
    """Kind label -> notebook file -> seconds, from TEACHING.md's timing table."""
    block = re.search(r"<!-- BEGIN generated: timings -->\n(.*?)<!-- END generated: timings -->", text, re.S)
    assert block, "TEACHING.md has no generated timings block"
    header, _, *rows = [line for line in block[1].split("\n") if line.startswith("|")]
    columns = time_columns(header)
    assert columns, "TEACHING.md's table has no 'time on KIND' column"
    times: dict[str, dict[str, int]] = {label: {} for label in columns.values()}
    for row in rows:
        cells = [cell.strip() for cell in row.strip().strip("|").split("|")]
        link = re.fullmatch(r"\[[^]]*\]\((\d\d_\w+\.ipynb)\)", cells[1])
        for index, label in columns.items():
            value = re.fullmatch(r"(\d+) s", cells[index])
            if link and value:
                times[label][link[1]] = int(value[1])
    return times


def teaching_inline_times(text: str) -> list[tuple[str, str]]:
    """Every (notebook number, shown value) marked ``<!-- time: NN -->VALUE<!-- /time -->`` in TEACHING.md: the
    slowest kind's time."""
    return re.findall(r"<!-- time: (\d\d) -->(.*?)<!-- /time -->", text)


def teaching_inline_kind_times(text: str) -> list[tuple[str, str, str]]:
    """Every (notebook number, kind key, shown value) marked ``<!-- time: NN KEY -->VALUE<!-- /time -->``."""
    return re.findall(r"<!-- time: (\d\d) ([\w.-]+) -->(.*?)<!-- /time -->", text)


def teaching_kind_names(text: str) -> list[tuple[str, str]]:
    """Every (kind key or "slowest", shown label) marked ``<!-- kind: KEY -->LABEL<!-- /kind -->``."""
    return re.findall(r"<!-- kind: ([\w.-]+) -->(.*?)<!-- /kind -->", text)


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
    section = text.split("### A 50-minute lesson", 1)[1].split("\n### ", 1)[0]
    return [(int(start), int(end), row)
            for start, end, row in ((m[1], m[2], m[0]) for m in re.finditer(r"^\| (\d+)–(\d+) \|.*$", section, re.M))]


def timings() -> dict:
    assert TIMINGS.is_file(), f"there is no notebooks/timings.json: {HOW}"
    data = json.loads(TIMINGS.read_text(encoding="utf-8"))
    assert "kinds" in data and "notebooks" not in data, "timings.json should hold one entry per CPU kind"
    return data


def shown_by_kind(data: dict) -> dict[str, dict[str, int]]:
    """Kind label -> notebook -> whole seconds, from timings.json."""
    return {kind["label"]: {name: whole_seconds(entry["seconds"]) for name, entry in kind["notebooks"].items()}
            for kind in data["kinds"].values()}


def slowest_shown(data: dict) -> dict[str, tuple[int, set[str]]]:
    """Notebook -> (the slowest kind's whole seconds, every kind key that took that long)."""
    slowest: dict[str, tuple[int, set[str]]] = {}
    for key, kind in data["kinds"].items():
        for name, entry in kind["notebooks"].items():
            seconds = whole_seconds(entry["seconds"])
            if name not in slowest or seconds > slowest[name][0]:
                slowest[name] = (seconds, {key})
            elif seconds == slowest[name][0]:
                slowest[name][1].add(key)
    return slowest


# -----------------------------------------------------------------------------
# The repository's files
# -----------------------------------------------------------------------------


def test_timings_cover_every_notebook_on_every_kind():
    """Every kind has a measured time for every notebook, with what it was measured on; no notebook that is
    gone; each kind's key and label are the ones its machine records give."""
    data = timings()
    assert data["kinds"], f"timings.json has no kind: {HOW}"
    for key, kind in data["kinds"].items():
        entries = kind["notebooks"]
        assert sorted(entries) == NOTEBOOKS, (f"timings.json's {key} does not match notebooks/: {HOW} on that kind "
                                              "(or name the changed ones)")
        for name, entry in entries.items():
            assert entry["seconds"] > 0 and entry["runs"], name
            assert {"cpu", "cores", "avx512_bf16", "torch"} <= set(entry["machine"]), name
            assert entry["weights"] and entry["weights_label"], name
            dt.datetime.fromisoformat(entry["date"])
            assert time_notebooks.kind_of(entry["machine"]) == (key, kind["label"]), f"{key}: {name}"
    labels = [kind["label"] for kind in data["kinds"].values()]
    assert len(set(labels)) == len(labels), "two kinds with one label"


def test_readme_table_shows_the_measured_times():
    """README's time columns: one per kind, headed with its label, in timings.json's order; a row for every
    notebook, each time equal to timings.json's."""
    data = timings()
    shown = readme_times(README.read_text(encoding="utf-8"))
    assert list(shown) == [kind["label"] for kind in data["kinds"].values()], \
        f"README's time columns should be one per kind of timings.json: {SYNC}"
    for times in shown.values():
        assert sorted(times) == NOTEBOOKS, "README's notebook table should have a row for every notebook"
    assert shown == shown_by_kind(data), f"README's times differ from timings.json: {SYNC}"


def test_teaching_shows_the_measured_times():
    """TEACHING.md's table has every kind's times; every time in its text is the slowest kind's for that
    notebook (or the kind it names); every kind it names is there."""
    data = timings()
    text = TEACHING.read_text(encoding="utf-8")
    table = teaching_table_times(text)
    assert list(table) == [kind["label"] for kind in data["kinds"].values()], SYNC
    assert table == shown_by_kind(data), f"TEACHING.md's table differs from timings.json: {SYNC}"
    slowest = {name[:2]: f"{seconds} s" for name, (seconds, _) in slowest_shown(data).items()}
    inline = teaching_inline_times(text)
    assert inline, "TEACHING.md shows no notebook time in its text"
    assert [value for _, value in inline] == [slowest.get(number) for number, _ in inline], SYNC
    for number, key, value in teaching_inline_kind_times(text):
        entries = {name[:2]: entry for name, entry in data["kinds"][key]["notebooks"].items()}
        assert value == f"{whole_seconds(entries[number]['seconds'])} s", SYNC
    for key, label in teaching_kind_names(text):
        keys = set().union(*(keys for _, keys in slowest_shown(data).values())) if key == "slowest" else {key}
        assert all(data["kinds"][k]["label"] in label for k in keys), SYNC


def test_teaching_is_as_generated():
    """What the script would write is what is there (the slowest cells, the machine lines, the goals)."""
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
        for function in assignments.coded_exercises(NOTEBOOK_DIR / name):
            assert f"`{function}`" in goals[name], f"{name}: {SYNC}"


def test_lesson_plan_adds_up():
    """The 50-minute plan: blocks from 0 to 50 without gaps, and each block's machine time (its last column:
    the slowest kind's, at the class settings the plans name) fits in it, with time to spare for the work."""
    text = TEACHING.read_text(encoding="utf-8")
    rows = lesson_rows(text)
    assert rows and rows[0][0] == 0 and rows[-1][1] == 50
    for (_, end), (start, _) in zip(((r[0], r[1]) for r in rows), ((r[0], r[1]) for r in rows[1:]), strict=False):
        assert start == end, "the lesson's blocks should follow each other"
    timed = 0
    for start, end, row in rows:
        machine = row.strip().strip("|").split("|")[-1]
        seconds = [int(value) for value in re.findall(r"(\d+) s\b", machine)]
        assert sum(seconds) <= (end - start) * 60 / 2, f"the machine needs {sum(seconds)} s in minutes {start}–{end}"
        timed += len(seconds)
    assert timed, "no measured time in the lesson plan"
    assert "STYLETRANSFER_SIZE=128 STYLETRANSFER_STEPS=40" in text.split("## Plans for a class", 1)[1]


# -----------------------------------------------------------------------------
# The script, on temporary files
# -----------------------------------------------------------------------------

ZEN5 = {"cpu": "AMD EPYC", "vendor": "AuthenticAMD", "cpu_family": "26", "cpu_model": "2", "avx2": True,
        "avx512f": True, "avx512_bf16": True, "amx_bf16": False, "isa_env": {}, "precision": "bf16", "cores": 2,
        "gpu": None, "torch": "0", "torch_threads": 2}
ZEN2 = {**ZEN5, "cpu_family": "23", "cpu_model": "49", "avx512f": False, "avx512_bf16": False, "precision": "fp32"}
ZEN5_AVX2 = {**ZEN5, "isa_env": {"ONEDNN_MAX_CPU_ISA": "AVX2", "ATEN_CPU_CAPABILITY": "avx2"}, "precision": "fp32"}


def fake_entries(names, base=100.5, machine=ZEN5, weights_label="test weights"):
    """Distinct times for ``names`` on ``machine``; x.5 seconds, to see halves rounded up."""
    return {name: {"seconds": base + index, "runs": [base + index], "date": "2025-01-01T00:00:00+00:00",
                   "weights": "/w.pth", "weights_label": weights_label, "machine": machine,
                   "longest_cells": [{"cell": 3, "section": f"2. Somewhere on {machine['cpu_family']}",
                                      "seconds": 7.25}]}
            for index, name in enumerate(names)}


def fake_timings(names, base=100.5, machine=ZEN5, **more):
    """timings.json with ``names`` timed on ``machine``, and on every further kind given as ``key=(base,
    machine)``."""
    kinds = {}
    for key, (start, record) in {"first": (base, machine), **more}.items():
        real_key, label = time_notebooks.kind_of(record)
        assert key == "first" or key == real_key.replace("-", "_"), (key, real_key)
        kinds[real_key] = {"label": label, "notebooks": fake_entries(names, start, record)}
    return {"about": "x", "kinds": kinds}


def two_kinds(names):
    """Zen 5 from 100.5 s, Zen 2 from 250.5 s: Zen 2 the slowest on every notebook."""
    return fake_timings(names, zen2_fp32=(250.5, ZEN2))


def test_shown_rounds_halves_up():
    assert [time_notebooks.shown(s) for s in (0.4, 9.49, 57.5, 58.5, 74.0)] == ["0 s", "9 s", "58 s", "59 s", "74 s"]


def test_kinds_are_named_from_the_machine():
    intel = {**ZEN2, "cpu": "Intel(R) Xeon(R) Gold 6148 CPU @ 2.40GHz", "vendor": "GenuineIntel",
             "cpu_family": "6", "cpu_model": "85", "avx512f": True}
    cases = [
        (ZEN5, "zen5-bf16", "Zen 5, native bf16"),
        ({**ZEN5, "cpu_model": ""}, "zen5-bf16", "Zen 5, native bf16"),  # records from before cpu_model
        ({k: v for k, v in ZEN5.items() if k not in ("precision", "isa_env", "cpu_model", "vendor")},
         "zen5-bf16", "Zen 5, native bf16"),  # timings.json's first records: no precision, no limit, no vendor
        ({**ZEN5, "cpu_family": "25", "cpu_model": "17"}, "zen4-bf16", "Zen 4, native bf16"),
        ({**ZEN5, "cpu_family": "25", "cpu_model": "97"}, "zen4-bf16", "Zen 4, native bf16"),
        ({**ZEN5, "cpu_family": "25", "cpu_model": "0xa0"}, "zen4-bf16", "Zen 4, native bf16"),
        ({**ZEN2, "cpu_family": "25", "cpu_model": "1"}, "zen3-fp32", "Zen 3, AVX2 only (fp32)"),
        ({**ZEN2, "cpu_family": "25", "cpu_model": "33"}, "zen3-fp32", "Zen 3, AVX2 only (fp32)"),
        (ZEN2, "zen2-fp32", "Zen 2, AVX2 only (fp32)"),
        (ZEN5_AVX2, "zen5-avx2-fp32", "Zen 5 limited to AVX2 (fp32)"),
        ({**ZEN5_AVX2, "precision": ""}, "zen5-avx2-fp32", "Zen 5 limited to AVX2 (fp32)"),
        (intel, "intel-xeon-gold-6148-family-6-model-85-fp32",
         "Intel Xeon Gold 6148 (family 6, model 85), no native bf16 (fp32)"),
    ]
    for record, key, label in cases:
        assert time_notebooks.kind_of(record) == (key, label), record
    assert "limited to AVX2 (ATEN_CPU_CAPABILITY=avx2, ONEDNN_MAX_CPU_ISA=AVX2)" in \
        time_notebooks.describe_machine(ZEN5_AVX2)
    assert "CPU family 23, model 49" in time_notebooks.describe_machine(ZEN2)


def test_an_older_file_is_read_as_one_kind_per_machine(tmp_path):
    """timings.json from before kinds (one "notebooks" map) is grouped by kind, every entry as it was."""
    entries = {**fake_entries(["01_a.ipynb", "02_b.ipynb"]), **fake_entries(["03_c.ipynb"], 9.0, ZEN2)}
    path = tmp_path / "timings.json"
    path.write_text(json.dumps({"about": "old", "notebooks": entries}))
    read = time_notebooks.read_timings(path)
    assert list(read["kinds"]) == ["zen5-bf16", "zen2-fp32"]
    assert read["kinds"]["zen5-bf16"] == {"label": "Zen 5, native bf16",
                                          "notebooks": {name: entries[name] for name in ("01_a.ipynb", "02_b.ipynb")}}
    assert read["kinds"]["zen2-fp32"]["notebooks"] == {"03_c.ipynb": entries["03_c.ipynb"]}
    assert time_notebooks.read_timings(tmp_path / "none.json")["kinds"] == {}


def test_merge_replaces_only_its_own_kind_and_drops_notebooks_that_are_gone(tmp_path):
    old = fake_timings(["01_a.ipynb", "02_b.ipynb", "03_gone.ipynb"], zen2_fp32=(250.5, ZEN2))
    present = ["01_a.ipynb", "02_b.ipynb"]
    merged = time_notebooks.merge(old, fake_entries(["02_b.ipynb"], 1.0, ZEN2), present)
    assert list(merged["kinds"]) == ["zen5-bf16", "zen2-fp32"]
    zen5, zen2 = merged["kinds"]["zen5-bf16"]["notebooks"], merged["kinds"]["zen2-fp32"]["notebooks"]
    assert zen5 == {name: old["kinds"]["zen5-bf16"]["notebooks"][name] for name in present}  # untouched
    assert list(zen2) == present and zen2["02_b.ipynb"]["seconds"] == 1.0
    assert zen2["01_a.ipynb"] == old["kinds"]["zen2-fp32"]["notebooks"]["01_a.ipynb"]  # this kind's others kept

    # a kind not there before comes last, with its label; the file written and read back is the same
    merged = time_notebooks.merge(merged, fake_entries(present, 5.0, ZEN5_AVX2), present)
    assert [kind["label"] for kind in merged["kinds"].values()] == [
        "Zen 5, native bf16", "Zen 2, AVX2 only (fp32)", "Zen 5 limited to AVX2 (fp32)"]
    assert merged["kinds"]["zen5-bf16"]["notebooks"] == zen5
    path = tmp_path / "timings.json"
    path.write_text(json.dumps(merged))
    assert time_notebooks.read_timings(path) == merged

    # a kind whose every notebook is gone goes too
    merged = time_notebooks.merge(old, {}, ["03_gone.ipynb", "04_new.ipynb"])
    assert {key: list(kind["notebooks"]) for key, kind in merged["kinds"].items()} == {
        "zen5-bf16": ["03_gone.ipynb"], "zen2-fp32": ["03_gone.ipynb"]}
    assert time_notebooks.merge(old, {}, ["04_new.ipynb"])["kinds"] == {}


def test_slowest_times_per_notebook():
    timings = fake_timings(["01_a.ipynb", "02_b.ipynb"], zen2_fp32=(250.5, ZEN2))
    timings["kinds"]["zen5-bf16"]["notebooks"]["02_b.ipynb"]["seconds"] = 900.0
    assert time_notebooks.slowest_times(timings) == {"01_a.ipynb": (250.5, "zen2-fp32"),
                                                     "02_b.ipynb": (900.0, "zen5-bf16")}
    assert time_notebooks.slowest_kinds(timings) == ["zen5-bf16", "zen2-fp32"]
    tie = fake_timings(["01_a.ipynb"], zen2_fp32=(100.5, ZEN2))
    assert time_notebooks.slowest_times(tie) == {"01_a.ipynb": (100.5, "zen5-bf16")}


def test_readme_update_changes_only_the_time_columns():
    """Two kinds on README: a time column each, named; every other cell and line as it was; and back."""
    text = README.read_text(encoding="utf-8")
    listed = sorted(next(iter(readme_times(time_notebooks.update_readme_times(text, timings())[0]).values())))
    fake = two_kinds([*listed, "99_not_in_readme.ipynb"])
    updated, unlisted = time_notebooks.update_readme_times(text, fake)
    assert unlisted == ["99_not_in_readme.ipynb"]
    assert readme_times(updated) == {kind["label"]: {name: whole_seconds(kind["notebooks"][name]["seconds"])
                                                     for name in listed} for kind in fake["kinds"].values()}
    before, after = text.split("\n"), updated.split("\n")
    assert len(before) == len(after)
    changed = [(old, new) for old, new in zip(before, after, strict=True) if old != new]
    rows = [pair for pair in changed if re.match(r"\| \d\d \|", pair[0])]
    assert len(rows) == len(listed) and len(changed) - len(rows) in (0, 2)  # the header and separator, if new

    def without_times(line: str, count: int) -> list[str]:  # the cells, less the last ``count`` (the times)
        cells = [cell.strip() for cell in line.strip().strip("|").split("|")]
        return cells[:len(cells) - count]

    for old, new in changed:  # the file has a column per kind in timings.json; the fake, two
        assert without_times(old, len(timings()["kinds"])) == without_times(new, 2)
    again = time_notebooks.update_readme_times(updated, timings())[0]
    assert again == time_notebooks.update_readme_times(text, timings())[0]  # back to the file's kinds


def test_readme_update_fills_empty_cells_keeps_remarks_with_their_kind_and_says_not_measured():
    text = ("Intro\n\n| # | notebook | what | CPU time |\n|---|---|---|---|\n"
            "| 01 | [A](notebooks/01_a.ipynb) | x | |\n| 02 | [B](notebooks/02_b.ipynb) | y | 5 s (plus yours) |\n"
            "\n| other | table |\n|---|---|\n| [A](notebooks/01_a.ipynb) | 3 s |\n")
    timings = fake_timings(["01_a.ipynb", "02_b.ipynb"], base=9.5, zen2_fp32=(20.5, ZEN2))
    del timings["kinds"]["zen2-fp32"]["notebooks"]["01_a.ipynb"]
    updated, _ = time_notebooks.update_readme_times(text, timings)
    assert "| # | notebook | what | time on Zen 5, native bf16 | time on Zen 2, AVX2 only (fp32) |\n" in updated
    assert "|---|---|---|---|---|\n" in updated
    assert "| 01 | [A](notebooks/01_a.ipynb) | x | 10 s | not measured |" in updated
    assert "| 02 | [B](notebooks/02_b.ipynb) | y | 11 s (plus yours) | 22 s |" in updated  # the unnamed: first kind's
    assert "| [A](notebooks/01_a.ipynb) | 3 s |" in updated  # a table without a time column is left alone
    swapped = {"kinds": dict(reversed(list(timings["kinds"].items())))}
    again, _ = time_notebooks.update_readme_times(updated, swapped)
    assert "| 02 | [B](notebooks/02_b.ipynb) | y | 22 s | 11 s (plus yours) |" in again  # the remark follows its kind
    assert time_notebooks.update_readme_times(again, timings)[0] == updated


def test_teaching_update_round_trip():
    """Two kinds written by the script are what this file's readers find: the table, the slowest kind's times in
    the text, a named kind's, the kinds' names; totals and machines per kind."""
    text = TEACHING.read_text(encoding="utf-8")
    text += ("\nOn Zen 5, 00 takes <!-- time: 00 zen5-bf16 -->?<!-- /time -->; these times are "
             "<!-- kind: slowest -->?<!-- /kind -->'s, not <!-- kind: zen5-bf16 -->?<!-- /kind -->'s.\n")
    present = [name for name in NOTEBOOKS if f"goals {name}" in generated_blocks(text)]
    fake = two_kinds(present)
    updated, _ = time_notebooks.update_teaching(text, fake)
    assert teaching_table_times(updated) == {
        kind["label"]: {name: whole_seconds(kind["notebooks"][name]["seconds"]) for name in present}
        for kind in fake["kinds"].values()}
    slowest = {name[:2]: f"{whole_seconds(seconds)} s"
               for name, seconds in zip(present, (250.5 + index for index in range(len(present))), strict=True)}
    for number, value in teaching_inline_times(updated):
        if number in slowest:
            assert value == slowest[number]
    assert teaching_inline_kind_times(updated) == [("00", "zen5-bf16", "101 s")]
    names = teaching_kind_names(updated)
    assert names[-2:] == [("slowest", "Zen 2, AVX2 only (fp32)"), ("zen5-bf16", "Zen 5, native bf16")]
    assert {label for key, label in names if key == "slowest"} == {"Zen 2, AVX2 only (fp32)"}
    block = generated_blocks(updated)["timings"]
    total5, total2 = (sum(base + index for index in range(len(present))) for base in (100.5, 250.5))
    assert (f"together: {time_notebooks.shown(total5)} ({total5 / 60:.1f} minutes) on Zen 5, native bf16; "
            f"{time_notebooks.shown(total2)} ({total2 / 60:.1f} minutes) on Zen 2, AVX2 only (fp32)." in block)
    assert "CPU family 26, model 2" in block and "CPU family 23, model 49" in block and "test weights" in block
    assert "2. Somewhere on 23: 7 s" in block and "2. Somewhere on 26" not in block  # the slowest kind's cells
    assert "slowest kind's for that notebook: Zen 2, AVX2 only (fp32)." in block
    assert time_notebooks.update_teaching(updated, fake)[0] == updated  # a second run changes nothing


def test_teaching_update_reports_what_it_cannot_fill(tmp_path):
    notebook = {"cells": [{"cell_type": "markdown", "metadata": {}, "source": "# 01 · A\n\n## You will learn\n- x\n"}],
                "metadata": {}, "nbformat": 4, "nbformat_minor": 5}
    for name in ("01_a.ipynb", "02_b.ipynb"):
        (tmp_path / name).write_text(json.dumps(notebook))
    text = ("<!-- BEGIN generated: goals 01_a.ipynb -->\nold\n<!-- END generated: goals 01_a.ipynb -->\n"
            "<!-- BEGIN generated: goals 09_gone.ipynb -->\n<!-- END generated: goals 09_gone.ipynb -->\n"
            "01 takes <!-- time: 01 -->? s<!-- /time -->, on Zen 9 <!-- time: 01 zen9-bf16 -->?<!-- /time -->, "
            "on <!-- kind: zen9-bf16 -->?<!-- /kind -->.\n")
    updated, problems = time_notebooks.update_teaching(text, {"kinds": {}}, tmp_path)
    assert "\n- x\n\nNo function to write. Written exercises: 0" in updated and "old" not in updated
    assert any("09_gone" in problem for problem in problems)
    assert any("02_b.ipynb" in problem for problem in problems)
    assert any("notebook 01" in problem for problem in problems)
    assert any("zen9-bf16" in problem and "time" in problem for problem in problems)
    assert any("names the kind 'zen9-bf16'" in problem for problem in problems)


def test_sync_rewrites_both_files(tmp_path):
    readme = tmp_path / "README.md"
    readme.write_text("| # | notebook | CPU time |\n|---|---|---|\n| 01 | [A](notebooks/01_a.ipynb) | 3 s |\n")
    teaching = tmp_path / "notebooks" / "TEACHING.md"
    teaching.parent.mkdir()
    teaching.write_text("It takes <!-- time: 01 -->? s<!-- /time -->.\n"
                        "<!-- BEGIN generated: timings -->\n<!-- END generated: timings -->\n")
    notebook = {"cells": [{"cell_type": "markdown", "metadata": {}, "source": "# 01 · A\n"}],
                "metadata": {}, "nbformat": 4, "nbformat_minor": 5}
    (teaching.parent / "01_a.ipynb").write_text(json.dumps(notebook))
    messages = time_notebooks.sync(fake_timings(["01_a.ipynb"], base=41.6, zen2_fp32=(97.4, ZEN2)), readme, teaching)
    assert "| time on Zen 5, native bf16 | time on Zen 2, AVX2 only (fp32) |" in readme.read_text()
    assert "| 42 s | 97 s |" in readme.read_text()
    assert "<!-- time: 01 -->97 s<!-- /time -->" in teaching.read_text()
    assert teaching_table_times(teaching.read_text()) == {"Zen 5, native bf16": {"01_a.ipynb": 42},
                                                          "Zen 2, AVX2 only (fp32)": {"01_a.ipynb": 97}}
    assert any("no section" in message for message in messages)  # 01 has no goals block there
    assert time_notebooks.sync(fake_timings(["01_a.ipynb"], base=41.6, zen2_fp32=(97.4, ZEN2)), readme,
                               teaching) == ["warning: TEACHING.md has no section with <!-- BEGIN generated: goals "
                                             "01_a.ipynb --> (write one)"]  # nothing left to write


@pytest.mark.slow
def test_avx2_limit_makes_the_kernel_run_in_fp32(tmp_path, checkpoint_path):
    """--avx2: the kernel gets the two variables, and torch there reports no native bf16, so the notebooks'
    precision is fp32 (the warm-up reports it), as on a CPU without it; without a limit nothing is added."""
    plain = time_notebooks.kernel_environment(str(checkpoint_path))
    assert time_notebooks.without_native_bf16(plain, tmp_path / "unused") == plain
    assert not (tmp_path / "unused").exists()
    env = time_notebooks.without_native_bf16({**plain, **time_notebooks.AVX2_LIMIT}, tmp_path / "ipython")
    assert env["IPYTHONDIR"] == str(tmp_path / "ipython")
    assert time_notebooks.isa_limit({"isa_env": time_notebooks.isa_environment(env)}) == "AVX2"
    source, precision = time_notebooks.warm_up(env)
    assert checkpoint_path.name in source and precision == "fp32"
    folder = tmp_path / "notebooks"
    folder.mkdir()
    cells = ["import os, torch.cpu",
             "assert os.environ['ONEDNN_MAX_CPU_ISA'] == 'AVX2' and os.environ['ATEN_CPU_CAPABILITY'] == 'avx2'",
             "assert not torch.cpu._is_avx512_bf16_supported() and not torch.cpu._is_amx_tile_supported()",
             "assert torch.cpu._is_avx512_bf16_supported.__name__ == '<lambda>'"]
    path = folder / "98_probe.ipynb"
    nbformat.write(nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(source) for source in cells]), path)
    assert time_notebooks.time_notebook(path, env).seconds > 0


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


def test_a_shrunk_class_is_timed_but_never_written(capsys):
    """--size/--steps time the notebooks as a teacher shrinks them; timings.json keeps the defaults' times."""
    with pytest.raises(SystemExit) as exit_info:
        time_notebooks.main(["00", "--size", "64", "--write"])
    assert exit_info.value.code == 2
    assert "cannot be combined with --write" in capsys.readouterr().err


def test_going_deeper_seconds_counts_only_the_optional_part():
    def code(seconds):
        return {"cell_type": "code", "source": "", "metadata": {"execution": {
            "iopub.execute_input": "2026-12-03T10:00:00.000000Z",
            "shell.execute_reply": f"2026-12-03T10:00:{seconds:02d}.000000Z"}}}

    heading = {"cell_type": "markdown", "source": time_notebooks.GOING_DEEPER + "\n\nWhat it adds.", "metadata": {}}
    notebook = {"cells": [code(5), heading, code(2), code(3)]}
    assert time_notebooks.going_deeper_seconds(notebook) == pytest.approx(5.0)
    assert time_notebooks.going_deeper_seconds({"cells": [code(4)]}) == 0


def test_the_going_deeper_block_lists_each_notebooks_optional_parts(tmp_path):
    cells = [{"cell_type": "markdown", "source": "# 07 · A title\n\n### Not optional", "metadata": {}},
             {"cell_type": "markdown", "source": time_notebooks.GOING_DEEPER + "\n\n### First part", "metadata": {}},
             {"cell_type": "code", "source": "### a comment, not a heading", "metadata": {}},
             {"cell_type": "markdown", "source": "### Second part\n\ntext", "metadata": {}}]
    path = tmp_path / "07_a.ipynb"
    path.write_text(json.dumps({"cells": cells}))
    bare = tmp_path / "08_b.ipynb"
    bare.write_text(json.dumps({"cells": [{"cell_type": "markdown", "source": "# 08 · B", "metadata": {}}]}))
    assert time_notebooks.going_deeper_block([path, bare]) == (
        "- **07 · A title**: First part; Second part.\n- **08 · B**: nothing (no *Going deeper* part).\n")
