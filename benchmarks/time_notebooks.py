"""How long each notebook takes, run top to bottom at its defaults in a fresh kernel. Figures, not tests.

    python benchmarks/time_notebooks.py [NOTEBOOK ...] [--weights PATH] [--weights-label TEXT] [--repeat N] [--write]
    python benchmarks/time_notebooks.py --sync

Each notebook (all of notebooks/NN_*.ipynb, or the ones named: "03", "03_gram_matrices" or a path) runs in
a new python3 kernel, as "Restart kernel and run all cells" would run it, in a temporary copy of
notebooks/ with assets/ beside it, so nothing is written into the repository. The kernel sees no
STYLETRANSFER_SIZE, STYLETRANSFER_STEPS or other STYLETRANSFER_* variable, so every notebook runs at its
own defaults; --weights PATH reaches it as STYLETRANSFER_VGG19_WEIGHTS (without it, "imagenet" means
torch.hub's cached copy, or a download). The time is wall time from starting the kernel to the end of the
last cell. An untimed warm-up kernel loads the weights first, so that the first notebook does not pay for
cold disk caches.

It prints a table with the machine (CPU model and whether it has native bf16, cores, torch version) and
the weights. With --write it stores the figures in notebooks/timings.json, the one source of the
notebook times shown elsewhere, and rewrites what is made from it: the time cells of README.md's notebook
table (nothing else in README.md) and the generated parts of notebooks/TEACHING.md. --sync does only
the rewriting, timing nothing (after a notebook's "You will learn" cell changed, for example).
tests/test_teaching.py checks that all of them agree.

The machine was shared while this script was written, so no figure here comes from it; time on a quiet
machine. Speed does not depend on the values of the weights, only on their being loaded.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import math
import os
import platform
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))  # the checkout's modules, whichever folder this is run from

NOTEBOOK_DIR = ROOT / "notebooks"
NOTEBOOK_GLOB = "[0-9][0-9]_*.ipynb"
TIMINGS = NOTEBOOK_DIR / "timings.json"
TEACHING = NOTEBOOK_DIR / "TEACHING.md"
README = ROOT / "README.md"
WEIGHTS_ENV = "STYLETRANSFER_VGG19_WEIGHTS"  # styletransfer_utils.WEIGHTS_ENV, without importing torch here
COMMAND = "python benchmarks/time_notebooks.py"
ABOUT = (
    "Seconds to run each notebook top to bottom at its defaults in a fresh kernel (kernel start included), "
    f"measured by `{COMMAND} --write`. README.md's notebook table and notebooks/TEACHING.md show these "
    "figures, rounded to whole seconds; tests/test_teaching.py keeps them equal. Do not edit by hand."
)


# =============================================================================
# 1. The machine
# =============================================================================


def lscpu() -> dict[str, str]:
    """``lscpu``'s "Key: value" lines; empty where there is no lscpu (macOS, Windows)."""
    try:
        text = subprocess.run(["lscpu"], capture_output=True, text=True, check=True,
                              env={**os.environ, "LC_ALL": "C"}).stdout
    except (OSError, subprocess.CalledProcessError):
        return {}
    return {key.strip(): value.strip() for key, _, value in (line.partition(":") for line in text.splitlines())}


def machine() -> dict[str, Any]:
    """What the times depend on: the CPU, whether it computes bf16 natively, the cores, the versions."""
    import torch
    import torchvision

    info = lscpu()
    flags = set(info.get("Flags", "").split())
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    return {
        "cpu": info.get("Model name") or platform.processor() or platform.machine(),
        "cpu_family": info.get("CPU family", ""),
        "avx512_bf16": "avx512_bf16" in flags,
        "amx_bf16": "amx_bf16" in flags,
        "cores": cores,
        "torch_threads": torch.get_num_threads(),
        "gpu": torch.cuda.get_device_name(0) if torch.cuda.is_available() else None,
        "torch": torch.__version__,
        "torchvision": torchvision.__version__,
        "python": platform.python_version(),
        "os": platform.platform(),
    }


def describe_machine(info: Mapping[str, Any]) -> str:
    """One line for a person: 'AMD EPYC (CPU family 26), native bf16 (avx512_bf16), 2 cores, torch 2.14.1'."""
    family = f" (CPU family {info['cpu_family']})" if info.get("cpu_family") else ""
    bf16 = [name for name in ("avx512_bf16", "amx_bf16") if info.get(name)]
    native = f"native bf16 ({', '.join(bf16)})" if bf16 else "no native bf16 (float32)"
    gpu = f", GPU {info['gpu']}" if info.get("gpu") else ", no GPU"
    return f"{info['cpu']}{family}, {native}, {info['cores']} cores{gpu}, torch {info['torch']}"


# =============================================================================
# 2. Running one notebook
# =============================================================================


@dataclass
class Measurement:
    """One notebook's run: its wall time, its slowest cells, and any file it left in its folder."""

    seconds: float
    longest_cells: list[dict[str, Any]] = field(default_factory=list)
    written: list[str] = field(default_factory=list)


def kernel_environment(weights: str | None) -> dict[str, str]:
    """The kernel's environment: this one without STYLETRANSFER_* (so: the notebooks' defaults), plus the weights.

    PYTHONPATH starts with the checkout, so the kernel imports this checkout's modules from the temporary
    copy even where the project is not installed in editable mode.
    """
    env = {key: value for key, value in os.environ.items() if not key.startswith("STYLETRANSFER_")}
    if weights is not None:
        env[WEIGHTS_ENV] = weights
    elif WEIGHTS_ENV in os.environ:
        env[WEIGHTS_ENV] = os.environ[WEIGHTS_ENV]
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")]))
    return env


def files_in(folder: Path) -> dict[str, tuple[int, int]]:
    """Every file under ``folder``, with its size and modification time: to notice what a run wrote."""
    return {str(path.relative_to(folder)): (path.stat().st_size, path.stat().st_mtime_ns)
            for path in folder.rglob("*") if path.is_file()}


def section_of_each_cell(cells: Sequence[Mapping[str, Any]]) -> list[str]:
    """For each cell, the last ``##``/``###`` heading at or above it: where a student would say they are."""
    sections, current = [], ""
    for cell in cells:
        if cell["cell_type"] == "markdown":
            source = cell["source"] if isinstance(cell["source"], str) else "".join(cell["source"])
            headings = re.findall(r"^#{2,3} +(.+?)\s*$", source, flags=re.M)
            current = headings[-1] if headings else current
        sections.append(current)
    return sections


def cell_seconds(cell: Mapping[str, Any]) -> float | None:
    """How long a code cell ran, from the timestamps nbclient records in its metadata."""
    stamps = cell.get("metadata", {}).get("execution", {})
    try:
        start = dt.datetime.fromisoformat(stamps["iopub.execute_input"])
        end = dt.datetime.fromisoformat(stamps["shell.execute_reply"])
    except (KeyError, ValueError):
        return None
    return (end - start).total_seconds()


def longest_cells(notebook: Mapping[str, Any], count: int = 2) -> list[dict[str, Any]]:
    """The ``count`` slowest code cells, with their index and section: where a notebook spends its time."""
    sections = section_of_each_cell(notebook["cells"])
    timed = [(seconds, index) for index, cell in enumerate(notebook["cells"])
             if cell["cell_type"] == "code" and (seconds := cell_seconds(cell)) is not None]
    return [{"cell": index, "section": sections[index], "seconds": round(seconds, 2)}
            for seconds, index in sorted(timed, reverse=True)[:count]]


def time_notebook(path: Path, env: Mapping[str, str], timeout: int = 1800) -> Measurement:
    """Run ``path`` top to bottom in a fresh kernel, in a temporary copy of its folder with ../assets beside it.

    Raises nbclient's CellExecutionError if a cell fails. The copy is compared before and after, so that a
    notebook that writes into its own folder (which a read-only classroom copy would refuse) is reported.
    """
    import nbformat
    from nbclient import NotebookClient

    with tempfile.TemporaryDirectory(prefix="time-notebooks-") as scratch:
        folder = Path(scratch) / "notebooks"
        shutil.copytree(path.parent, folder, ignore=shutil.ignore_patterns(".ipynb_checkpoints", "__pycache__"))
        if (ROOT / "assets").is_dir():
            shutil.copytree(ROOT / "assets", Path(scratch) / "assets")
        before = files_in(folder)
        notebook = nbformat.read(folder / path.name, as_version=4)
        client = NotebookClient(notebook, timeout=timeout, kernel_name="python3",
                                resources={"metadata": {"path": str(folder)}})
        start = time.perf_counter()
        client.execute(env=dict(env))
        seconds = time.perf_counter() - start
        after = files_in(folder)
    written = sorted(name for name, stamp in after.items() if before.get(name) != stamp)
    return Measurement(seconds, longest_cells(notebook), written)


def warm_up(env: Mapping[str, str]) -> str:
    """Load the weights once in a throwaway kernel, untimed; return where they came from (or raise)."""
    import nbformat
    from nbclient import NotebookClient

    cell = nbformat.v4.new_code_cell(
        "from styletransfer_utils import load_vgg19\nprint(load_vgg19('imagenet', 'cpu').weights_source)")
    notebook = nbformat.v4.new_notebook(cells=[cell])
    with tempfile.TemporaryDirectory(prefix="time-notebooks-") as scratch:
        NotebookClient(notebook, timeout=600, kernel_name="python3",
                       resources={"metadata": {"path": scratch}}).execute(env=dict(env))
    return "".join(output.get("text", "") for output in notebook.cells[0].outputs).strip()


# =============================================================================
# 3. timings.json
# =============================================================================


def notebook_names(folder: Path = NOTEBOOK_DIR) -> list[str]:
    """The series, in order: notebooks/NN_*.ipynb."""
    return sorted(path.name for path in folder.glob(NOTEBOOK_GLOB))


def resolve(names: Sequence[str], folder: Path = NOTEBOOK_DIR) -> list[Path]:
    """Notebooks named as "03", "03_gram_matrices", "03_gram_matrices.ipynb" or a path; all when none is."""
    available = [folder / name for name in notebook_names(folder)]
    if not names:
        return available
    chosen = []
    for name in names:
        stem = Path(name).name.removesuffix(".ipynb")
        matches = [path for path in available if path.stem == stem or path.name[:2] == stem]
        if len(matches) != 1:
            raise SystemExit(f"No notebook {name!r} in {folder}; there are {', '.join(p.name for p in available)}")
        chosen.append(matches[0])
    return chosen


def shown(seconds: float) -> str:
    """A time as README and TEACHING.md show it: whole seconds, halves rounded up ("57.5" -> "58 s")."""
    return f"{math.floor(seconds + 0.5)} s"


def read_timings(path: Path = TIMINGS) -> dict[str, Any]:
    """timings.json, or an empty one where there is none yet."""
    if not path.is_file():
        return {"about": ABOUT, "notebooks": {}}
    return json.loads(path.read_text(encoding="utf-8"))


def merge(timings: Mapping[str, Any], measured: Mapping[str, Mapping[str, Any]], present: Sequence[str]) -> dict:
    """``timings`` with the notebooks just ``measured`` replaced, and entries of notebooks no longer present dropped."""
    entries = {**timings.get("notebooks", {}), **measured}
    return {"about": ABOUT, "notebooks": {name: entries[name] for name in present if name in entries}}


def write_text(path: Path, text: str) -> None:
    """Write a whole file through a temporary file and a rename, so that a failure leaves the old one."""
    from styletransfer_tools.files import write_atomically

    write_atomically(path, lambda stream: stream.write(text.encode("utf-8")))


# =============================================================================
# 4. README's time cells and TEACHING.md's generated parts
# =============================================================================

ROW_NOTEBOOK = re.compile(r"\(notebooks/(\d\d_\w+\.ipynb)\)")
BLOCK = re.compile(r"(<!-- BEGIN generated: (?P<name>[^>]+?) -->\n)(?P<body>.*?)(<!-- END generated: (?P=name) -->)",
                   flags=re.S)
INLINE_TIME = re.compile(r"(<!-- time: (?P<number>\d\d) -->)(?P<value>[^<]*)(<!-- /time -->)")


def split_row(line: str) -> list[str]:
    """A markdown table row's parts between unescaped pipes, the outer (empty) ones included."""
    return re.split(r"(?<!\\)\|", line)


def update_readme_times(text: str, timings: Mapping[str, Any]) -> tuple[str, list[str]]:
    """README's text with each notebook row's time cell set from ``timings``; and the notebooks with no row.

    The notebook table is the one whose header has a column named "... time" and whose rows link
    notebooks/NN_*.ipynb. Only the leading "N s" of a time cell changes ("52 s (plus your slider runs)"
    keeps its remark); every other byte of README stays as it is.
    """
    lines = text.split("\n")
    seen: set[str] = set()
    column: int | None = None
    for number, line in enumerate(lines):
        if not line.startswith("|"):
            column = None  # outside a table
            continue
        cells = split_row(line)
        if number == 0 or not lines[number - 1].startswith("|"):  # a table's header
            times = [index for index, cell in enumerate(cells) if cell.strip().lower().endswith("time")]
            column = times[0] if times else None
            continue
        match = ROW_NOTEBOOK.search(line)
        if column is None or column >= len(cells) or not match or match[1] not in timings["notebooks"]:
            continue
        value = shown(timings["notebooks"][match[1]]["seconds"])
        old = re.match(r"\d+(?:\.\d+)?\s*s\b", cells[column].strip())
        remark = cells[column].strip()[old.end() if old else 0:].strip()
        cells[column] = f" {value}{' ' + remark if remark else ''} "
        lines[number] = "|".join(cells)
        seen.add(match[1])
    return "\n".join(lines), [name for name in timings["notebooks"] if name not in seen]


def you_will_learn(path: Path) -> str:
    """The bullets under a notebook's "## You will learn" heading, as written there (markdown)."""
    notebook = json.loads(path.read_text(encoding="utf-8"))
    for cell in notebook["cells"]:
        source = cell["source"] if isinstance(cell["source"], str) else "".join(cell["source"])
        if cell["cell_type"] == "markdown" and (match := re.search(r"^## You will learn\s*\n(.*?)(?=^#|\Z)",
                                                                   source, flags=re.M | re.S)):
            return match[1].strip()
    return ""


def exercises(path: Path) -> list[str]:
    """The ``def NAME_by_hand`` exercises that the student edition blanks and the autograder checks."""
    from styletransfer_tools.student import find_definitions

    return [definition.name for definition in find_definitions(path)]


def timings_block(timings: Mapping[str, Any], names: Sequence[str], folder: Path = NOTEBOOK_DIR) -> str:
    """The table of TEACHING.md: each notebook's time and slowest cells, then how they were measured."""
    entries = timings.get("notebooks", {})
    lines = ["| # | notebook | time at its defaults | where most of it goes |", "|---|---|---|---|"]
    for name in names:
        title = notebook_title(folder / name)
        entry = entries.get(name)
        if entry is None:
            lines.append(f"| {name[:2]} | [{title}]({name}) | not measured yet | |")
            continue
        cells = "; ".join(f"{cell['section'] or 'top'}: {shown(cell['seconds'])}" for cell in entry["longest_cells"])
        lines.append(f"| {name[:2]} | [{title}]({name}) | {shown(entry['seconds'])} | {cells} |")
    measured = [entries[name] for name in names if name in entries]
    total = sum(entry["seconds"] for entry in measured)
    lines.append("")
    if not measured:
        lines.append(f"No notebook has been timed yet: run `{COMMAND} --weights PATH --write`.")
    elif len(measured) == len(names):
        lines.append(f"All {len(names)} notebooks together: {shown(total)} ({total / 60:.1f} minutes).")
    else:
        lines.append(f"The {len(measured)} notebooks timed so far together: {shown(total)} ({total / 60:.1f} minutes).")
    setups: dict[str, list[str]] = {}
    for name in names:
        if name in entries:
            entry = entries[name]
            setup = (f"{describe_machine(entry['machine'])}; weights: {entry['weights_label']}; "
                     f"{entry['date'][:10]}")
            setups.setdefault(setup, []).append(name[:2])
    for setup, numbers in setups.items():
        which = "" if len(setups) == 1 else f" ({', '.join(numbers)})"
        lines.append(f"Measured{which} on {setup}.")
    return "\n".join(lines) + "\n"


def notebook_title(path: Path) -> str:
    """"Gram matrices" from the title cell "# 03 · Gram matrices"."""
    notebook = json.loads(path.read_text(encoding="utf-8"))
    first = notebook["cells"][0]["source"]
    first = first if isinstance(first, str) else "".join(first)
    match = re.search(r"^# \d\d · (.+?)\s*$", first, flags=re.M)
    return match[1] if match else path.stem


def goals_block(path: Path) -> str:
    """A notebook's learning goals, copied from its "You will learn" cell, and its autograded exercises."""
    names = exercises(path)
    graded = (f"Autograded exercises (blanked in the student edition): {', '.join(f'`{n}`' for n in names)}."
              if names else "No autograded exercise; the written exercises at its end have no answer key.")
    return f"{you_will_learn(path)}\n\n{graded}\n"


def update_teaching(text: str, timings: Mapping[str, Any], folder: Path = NOTEBOOK_DIR) -> tuple[str, list[str]]:
    """TEACHING.md with its generated blocks and inline times rewritten; and what it lacks (for a warning).

    Blocks are ``<!-- BEGIN generated: timings -->`` and ``<!-- BEGIN generated: goals NN_name.ipynb -->``,
    each closed by its END line; an inline ``<!-- time: 03 -->58 s<!-- /time -->`` shows one notebook's time.
    """
    names = notebook_names(folder)
    entries = timings.get("notebooks", {})
    missing: list[str] = []

    def block(match: re.Match) -> str:
        name = match["name"]
        if name == "timings":
            body = timings_block(timings, names, folder)
        elif name.startswith("goals ") and (folder / name.removeprefix("goals ")).is_file():
            body = goals_block(folder / name.removeprefix("goals "))
        else:
            missing.append(f"has a block {name!r}, but there is no such notebook")
            return match[0]
        return match[1] + body + match[4]

    def inline(match: re.Match) -> str:
        number = match["number"]
        name = next((name for name in names if name.startswith(number)), None)
        if name is None or name not in entries:
            missing.append(f"shows a time for notebook {number}, which {TIMINGS.name} does not have")
            return match[0]
        return match[1] + shown(entries[name]["seconds"]) + match[4]

    text = INLINE_TIME.sub(inline, BLOCK.sub(block, text))
    present = {match["name"] for match in BLOCK.finditer(text)}
    missing += [f"has no section with <!-- BEGIN generated: goals {name} --> (write one)" for name in names
                if f"goals {name}" not in present]
    return text, list(dict.fromkeys(missing))


def sync(timings: Mapping[str, Any], readme: Path = README, teaching: Path = TEACHING) -> list[str]:
    """Rewrite README's time cells and TEACHING.md's generated parts from ``timings``; return what to tell.

    Files whose text would not change are not written.
    """
    messages = []
    old = readme.read_text(encoding="utf-8")
    text, unlisted = update_readme_times(old, timings)
    if text != old:
        write_text(readme, text)
        messages.append(f"updated the time cells of {readme}")
    messages += [f"warning: README.md's notebook table has no row for {name}: add one (its time cell is then "
                 "filled in)" for name in unlisted]
    if not teaching.is_file():
        return [*messages, f"warning: there is no {teaching}"]
    old = teaching.read_text(encoding="utf-8")
    text, missing = update_teaching(old, timings, teaching.parent)
    if text != old:
        write_text(teaching, text)
        messages.append(f"updated {teaching}")
    return messages + [f"warning: {teaching.name} {what}" for what in missing]


# =============================================================================
# 5. The command
# =============================================================================


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter, epilog=__doc__)
    parser.add_argument("notebooks", nargs="*", help="which notebooks (default: all of notebooks/NN_*.ipynb)")
    parser.add_argument("--weights", help=f"a VGG19 checkpoint's path or URL, passed as ${WEIGHTS_ENV}")
    parser.add_argument("--weights-label", help="how TEACHING.md names the weights (default: the file's name)")
    parser.add_argument("--repeat", type=int, default=1, help="runs of each notebook; the median is kept")
    parser.add_argument("--timeout", type=int, default=1800, help="seconds one cell may take")
    parser.add_argument("--write", action="store_true", help="store in notebooks/timings.json and update README.md "
                        "and notebooks/TEACHING.md from it")
    parser.add_argument("--sync", action="store_true", help="time nothing: only update README.md and "
                        "notebooks/TEACHING.md from notebooks/timings.json")
    args = parser.parse_args(argv)

    if args.sync:
        print("\n".join(sync(read_timings())) or "nothing to update")
        return 0

    paths = resolve(args.notebooks)
    env = kernel_environment(args.weights)
    weights = env.get(WEIGHTS_ENV, "imagenet (torch.hub's cache)")
    label = args.weights_label or (Path(weights).name if WEIGHTS_ENV in env
                                   else "torchvision's ImageNet VGG19 (IMAGENET1K_V1)")
    info = machine()
    print(f"{describe_machine(info)} ({info['torch_threads']} torch threads), torchvision {info['torchvision']}, "
          f"Python {info['python']}")
    print(f"weights: {warm_up(env)}")
    print(f"{'notebook':<40} {'seconds':>8}   slowest cell")
    measured = {}
    for path in paths:
        runs = [time_notebook(path, env, args.timeout) for _ in range(args.repeat)]
        seconds = statistics.median(run.seconds for run in runs)
        slowest = runs[-1].longest_cells[0] if runs[-1].longest_cells else None
        note = f"{slowest['seconds']:.1f} s in {slowest['section'] or 'the set-up'}" if slowest else ""
        print(f"{path.name:<40} {seconds:8.1f}   {note}", flush=True)
        for run in runs:
            if run.written:
                print(f"  warning: it wrote into its folder: {', '.join(run.written)}", file=sys.stderr)
        measured[path.name] = {
            "seconds": round(seconds, 2),
            "runs": [round(run.seconds, 2) for run in runs],
            "longest_cells": runs[-1].longest_cells,
            "date": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
            "weights": weights,
            "weights_label": label,
            "machine": info,
        }
    total = sum(entry["seconds"] for entry in measured.values())
    print(f"{'total':<40} {total:8.1f}")
    if args.write:
        timings = merge(read_timings(), measured, notebook_names())
        write_text(TIMINGS, json.dumps(timings, indent=1, ensure_ascii=False) + "\n")
        print(f"Wrote {TIMINGS.relative_to(ROOT)}")
        print("\n".join(sync(timings)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
