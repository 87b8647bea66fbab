"""How long each notebook takes per CPU kind, run top to bottom at its defaults in a fresh kernel. Figures, not tests.

    python benchmarks/time_notebooks.py [NOTEBOOK ...] [--weights PATH] [--weights-label TEXT] [--repeat N]
                                        [--avx2] [--write]
    python benchmarks/time_notebooks.py 00 03 06 --size 128 --steps 40   # a shrunk class, printed only
    python benchmarks/time_notebooks.py --sync

Each notebook (all of notebooks/NN_*.ipynb, or the ones named: "03", "03_gram_matrices" or a path) runs in
a new python3 kernel, as "Restart kernel and run all cells" would run it, in a temporary copy of
notebooks/ with assets/ beside it, so nothing is written into the repository. The kernel sees no
STYLETRANSFER_SIZE, STYLETRANSFER_STEPS or other STYLETRANSFER_* variable, so every notebook runs at its
own defaults (--size and --steps set the first two, as a teacher shrinks a class; such times are printed,
never written); --weights PATH reaches it as STYLETRANSFER_VGG19_WEIGHTS (without it, "imagenet" means
torch.hub's cached copy, or a download). The time is wall time from starting the kernel to the end of the
last cell. An untimed warm-up kernel loads the weights first, so that the first notebook does not pay for
cold disk caches, and reports the precision the notebooks' network runs in (bf16 or fp32).

Times are kept per CPU kind: the microarchitecture (from lscpu's vendor, CPU family and model: "Zen 5",
"Zen 2"; the model name and family where the table below does not know it) and the precision the
notebooks run in, which follows from native bf16. A kind has a short label, "Zen 5, native bf16" or
"Zen 2, AVX2 only (fp32)". --avx2 runs the kernels with oneDNN and ATen limited to AVX2
(ONEDNN_MAX_CPU_ISA=AVX2 ATEN_CPU_CAPABILITY=avx2; the same when those are set by hand) and with torch
told that the CPU has no native bf16, so that the notebooks run in fp32 as on a CPU without it: a stand-in
for such a CPU where none is at hand, whose label says so ("Zen 5 limited to AVX2 (fp32)").

It prints a table with the machine (its kind, CPU model, cores, torch version) and the weights, and each
notebook's time without its "Going deeper (optional)" cells (the main path, what a lesson waits for). With
--write it stores the figures in notebooks/timings.json, the one source of the notebook times shown
elsewhere, replacing this kind's figures for the notebooks timed and keeping every other kind's; then it
rewrites what is made from the file: the time columns of README.md's notebook table (one per kind, headed
"time on LABEL"; nothing else in README.md) and the generated parts of notebooks/TEACHING.md. --sync does
only the rewriting, timing nothing (after a notebook's "You will learn" cell changed, for example).
tests/test_teaching.py checks that all of them agree.

In TEACHING.md, ``<!-- time: 03 -->42 s<!-- /time -->`` shows notebook 03's time on the slowest kind that
measured it (what a lesson plan must allow for), ``<!-- time: 03 zen5-bf16 -->…<!-- /time -->`` its time on
one kind, and ``<!-- kind: slowest -->…<!-- /kind -->`` (or ``<!-- kind: zen5-bf16 -->``) names that kind.

The machine was shared while this script was written, so no figure here comes from it; time on a quiet
machine. Speed does not depend on the values of the weights, only on their being loaded.
"""

from __future__ import annotations

import argparse
import contextlib
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
GOING_DEEPER = "## Going deeper (optional)"  # tests/test_notebooks.py: the heading over the optional part
ABOUT = (
    "Seconds to run each notebook top to bottom at its defaults in a fresh kernel (kernel start included), "
    f"measured by `{COMMAND} --write`, per CPU kind: \"kinds\" maps a kind's key (microarchitecture and the "
    "precision the notebooks run in, e.g. zen5-bf16) to its label and its notebooks' figures, each with the "
    "machine it was measured on. A --write replaces only its own kind's figures. README.md's notebook table "
    "(a time column per kind) and notebooks/TEACHING.md show these figures, rounded to whole seconds; "
    "tests/test_teaching.py keeps them equal. Do not edit by hand."
)
AVX2_LIMIT = {"ONEDNN_MAX_CPU_ISA": "AVX2", "ATEN_CPU_CAPABILITY": "avx2"}  # as benchmarks/benchmark_quality.py
# oneDNN ISA limits below AVX512_CORE_BF16: on a CPU limited to one of these, bf16 would only be emulated
ISAS_WITHOUT_BF16 = {"SSE41", "AVX", "AVX2", "AVX2_VNNI", "AVX2_VNNI_2", "AVX512_CORE", "AVX512_CORE_VNNI"}
NO_NATIVE_BF16_STARTUP = '''\
# Written by benchmarks/time_notebooks.py for a run limited below AVX512_CORE_BF16: the CPU is to look like one
# without native bf16, so that styletransfer_utils.choose_precision picks fp32 as such a CPU would.
import torch.cpu

torch.cpu._is_avx512_bf16_supported = lambda: False
torch.cpu._is_amx_tile_supported = lambda: False
'''


# =============================================================================
# 1. The machine and its kind
# =============================================================================


def lscpu() -> dict[str, str]:
    """``lscpu``'s "Key: value" lines; empty where there is no lscpu (macOS, Windows)."""
    try:
        text = subprocess.run(["lscpu"], capture_output=True, text=True, check=True,
                              env={**os.environ, "LC_ALL": "C"}).stdout
    except (OSError, subprocess.CalledProcessError):
        return {}
    return {key.strip(): value.strip() for key, _, value in (line.partition(":") for line in text.splitlines())}


def isa_environment(env: Mapping[str, str]) -> dict[str, str]:
    """The variables in ``env`` that limit which instructions oneDNN and ATen use (empty: no limit)."""
    return {name: env[name] for name in AVX2_LIMIT if env.get(name)}


def machine(env: Mapping[str, str] | None = None) -> dict[str, Any]:
    """What the times depend on: the CPU, whether it computes bf16 natively, any limit on its instructions in the
    kernels' environment ``env`` (default: this one), the cores, the versions.

    "precision" is what the notebooks should run in here; main() replaces it with what the warm-up kernel
    reports.
    """
    import torch
    import torchvision

    env = os.environ if env is None else env
    info = lscpu()
    flags = set(info.get("Flags", "").split())
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    record = {
        "cpu": info.get("Model name") or platform.processor() or platform.machine(),
        "vendor": info.get("Vendor ID", ""),
        "cpu_family": info.get("CPU family", ""),
        "cpu_model": info.get("Model", ""),
        "avx2": "avx2" in flags,
        "avx512f": "avx512f" in flags,
        "avx512_bf16": "avx512_bf16" in flags,
        "amx_bf16": "amx_bf16" in flags,
        "isa_env": isa_environment(env),
        "precision": "",
        "cores": cores,
        "torch_threads": torch.get_num_threads(),
        "gpu": torch.cuda.get_device_name(0) if torch.cuda.is_available() else None,
        "torch": torch.__version__,
        "torchvision": torchvision.__version__,
        "python": platform.python_version(),
        "os": platform.platform(),
    }
    record["precision"] = expected_precision(record)
    return record


def isa_limit(info: Mapping[str, Any]) -> str | None:
    """"AVX2" for a run with ONEDNN_MAX_CPU_ISA=AVX2 and ATEN_CPU_CAPABILITY=avx2; the variables themselves
    for any other limit; None for none."""
    limits = info.get("isa_env") or {}
    if not limits:
        return None
    if {value.upper() for value in limits.values()} == {"AVX2"}:
        return "AVX2"
    return ", ".join(f"{name}={value}" for name, value in sorted(limits.items()))


def limited_below_bf16(limits: Mapping[str, str]) -> bool:
    """Whether oneDNN is limited to instructions without bf16 (ONEDNN_MAX_CPU_ISA=AVX2, for one)."""
    return limits.get("ONEDNN_MAX_CPU_ISA", "").upper() in ISAS_WITHOUT_BF16


def native_bf16(info: Mapping[str, Any]) -> bool:
    """Whether the CPU computes bf16 in hardware (AVX512-BF16 or AMX), as styletransfer_utils.choose_precision
    asks."""
    return bool(info.get("avx512_bf16") or info.get("amx_bf16"))


def expected_precision(info: Mapping[str, Any]) -> str:
    """The notebooks' precision on this machine: bf16 where it is native and not hidden by a limit, else fp32."""
    return "bf16" if native_bf16(info) and not limited_below_bf16(info.get("isa_env") or {}) else "fp32"


def precision_of(info: Mapping[str, Any]) -> str:
    """The precision recorded with a measurement; for records made before it was, what it must have been."""
    return info.get("precision") or expected_precision(info)


def as_number(text: Any) -> int | None:
    """lscpu's "26" or "0x1a" as a number; None where there is none."""
    try:
        return int(str(text), 0)
    except ValueError:
        return None


def microarchitecture(info: Mapping[str, Any]) -> tuple[str, str]:
    """The CPU's design as a (label, key): ("Zen 5", "zen5"); the model name and family where it is not known.

    AMD's CPU family 26 is Zen 5; 25 is Zen 4 for models 0x10-0x1f, 0x60-0x7f and 0xa0-0xaf and Zen 3 otherwise
    (without a model: Zen 4 if it has AVX512-BF16, which Zen 3 lacks); 23 is Zen 2 from model 0x30 (49, 0x31,
    is "Rome") and Zen or Zen+ below it.
    """
    family, model = as_number(info.get("cpu_family", "")), as_number(info.get("cpu_model", ""))
    amd = info.get("vendor") == "AuthenticAMD" or "AMD" in str(info.get("cpu", "")).split()
    if amd and family == 26:
        return "Zen 5", "zen5"
    if amd and family == 25:
        zen4 = (any(low <= model <= high for low, high in ((0x10, 0x1F), (0x60, 0x7F), (0xA0, 0xAF)))
                if model is not None else bool(info.get("avx512_bf16")))
        return ("Zen 4", "zen4") if zen4 else ("Zen 3", "zen3")
    if amd and family == 23 and model is not None:
        return ("Zen 2", "zen2") if model >= 0x30 else ("Zen or Zen+", "zen1")
    name = " ".join(re.sub(r"\((?:R|TM)\)|\bCPU\b|@.*", " ", str(info.get("cpu") or "")).split()) or "unknown CPU"
    details = [f"{word} {value}" for word, value in (("family", info.get("cpu_family")),
                                                       ("model", info.get("cpu_model"))) if value]
    label = f"{name} ({', '.join(details)})" if details else name
    return label, re.sub(r"[^a-z0-9]+", "-", label.lower()).strip("-")


def kind_of(info: Mapping[str, Any]) -> tuple[str, str]:
    """A machine's CPU kind as (key, label): ("zen5-bf16", "Zen 5, native bf16"), ("zen2-fp32", "Zen 2, AVX2
    only (fp32)"), ("zen5-avx2-fp32", "Zen 5 limited to AVX2 (fp32)").

    Two machines of one kind run the notebooks at about the same speed per core; the cores themselves are in
    the machine's description, not in its kind.
    """
    arch, key = microarchitecture(info)
    precision = precision_of(info)
    limit = isa_limit(info)
    if limit is not None:
        slug = re.sub(r"[^a-z0-9]+", "-", limit.lower()).strip("-")
        return f"{key}-{slug}-{precision}", f"{arch} limited to {limit} ({precision})"
    if precision == "bf16":
        return f"{key}-bf16", f"{arch}, native bf16"
    if info.get("avx2") and not info.get("avx512f"):
        return f"{key}-{precision}", f"{arch}, AVX2 only ({precision})"
    return f"{key}-{precision}", f"{arch}, no native bf16 ({precision})"


def describe_machine(info: Mapping[str, Any]) -> str:
    """One line for a person: 'AMD EPYC (CPU family 26), native bf16 (avx512_bf16), 2 cores, torch 2.14.1'."""
    details = [f"{word} {info[name]}" for word, name in (("CPU family", "cpu_family"), ("model", "cpu_model"))
               if info.get(name)]
    family = f" ({', '.join(details)})" if details else ""
    bf16 = [name for name in ("avx512_bf16", "amx_bf16") if info.get(name)]
    native = f"native bf16 ({', '.join(bf16)})" if bf16 else "no native bf16 (float32)"
    limit = isa_limit(info)
    if limit is not None:
        variables = ", ".join(f"{name}={value}" for name, value in sorted(info["isa_env"].items()))
        native += f", limited to {limit} ({variables}) to run in {precision_of(info)}" if limit == "AVX2" \
            else f", limited by {variables}, in {precision_of(info)}"
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
    going_deeper: float = 0.0  # seconds of the code cells under "Going deeper (optional)", which a class may skip


def kernel_environment(weights: str | None) -> dict[str, str]:
    """The kernel's environment: this one without STYLETRANSFER_* (so: the notebooks' defaults), plus the weights.

    PYTHONPATH starts with the checkout, so the kernel imports this checkout's modules from the temporary
    copy even where the project is not installed in editable mode. ONEDNN_MAX_CPU_ISA and ATEN_CPU_CAPABILITY,
    where set, pass through (see `without_native_bf16`).
    """
    env = {key: value for key, value in os.environ.items() if not key.startswith("STYLETRANSFER_")}
    if weights is not None:
        env[WEIGHTS_ENV] = weights
    elif WEIGHTS_ENV in os.environ:
        env[WEIGHTS_ENV] = os.environ[WEIGHTS_ENV]
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")]))
    return env


def without_native_bf16(env: Mapping[str, str], folder: Path) -> dict[str, str]:
    """``env`` for kernels that run as on a CPU without native bf16, where ``env`` limits oneDNN below bf16.

    oneDNN limited to AVX2 cannot compute bf16 natively, but torch still reports the CPU's AVX512-BF16, so
    the notebooks would pick bf16 and run it emulated: no CPU without native bf16 runs that way. An IPython
    startup file in ``folder`` (the kernels' IPYTHONDIR) makes torch report no bf16, so the notebooks run in
    fp32, as such a CPU's do; the warm-up kernel checks it. Without such a limit, ``env`` is returned as it is.
    """
    if not limited_below_bf16(isa_environment(env)):
        return dict(env)
    startup = folder / "profile_default" / "startup"
    startup.mkdir(parents=True, exist_ok=True)
    (startup / "00-no-native-bf16.py").write_text(NO_NATIVE_BF16_STARTUP, encoding="utf-8")
    return {**env, "IPYTHONDIR": str(folder)}


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


def going_deeper_cells(notebook: Mapping[str, Any]) -> list[Mapping[str, Any]]:
    """The cells from the "Going deeper (optional)" heading on (none where a notebook has no such part)."""
    cells = notebook["cells"]
    start = next((index for index, cell in enumerate(cells) if cell["cell_type"] == "markdown"
                  and "".join(cell["source"]).startswith(GOING_DEEPER)), len(cells))
    return cells[start:]


def going_deeper_seconds(notebook: Mapping[str, Any]) -> float:
    """Seconds spent in the code cells after the "Going deeper (optional)" heading: what a lesson that reads
    only the main path (Run All Above Selected Cell, at that heading) does not wait for."""
    return sum(cell_seconds(cell) or 0.0 for cell in going_deeper_cells(notebook) if cell["cell_type"] == "code")


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
    return Measurement(seconds, longest_cells(notebook), written, going_deeper_seconds(notebook))


def warm_up(env: Mapping[str, str]) -> tuple[str, str]:
    """Load the weights once in a throwaway kernel, untimed; return where they came from and the precision
    ("bf16" or "fp32") that styletransfer_utils.choose_precision picks there for the CPU (or raise)."""
    import nbformat
    from nbclient import NotebookClient

    cell = nbformat.v4.new_code_cell(
        "import torch\nfrom styletransfer_utils import choose_precision, load_vgg19\n"
        "print(load_vgg19('imagenet', 'cpu').weights_source)\n"
        "print('bf16' if choose_precision('auto', torch.device('cpu')) == torch.bfloat16 else 'fp32')")
    notebook = nbformat.v4.new_notebook(cells=[cell])
    with tempfile.TemporaryDirectory(prefix="time-notebooks-") as scratch:
        NotebookClient(notebook, timeout=600, kernel_name="python3",
                       resources={"metadata": {"path": scratch}}).execute(env=dict(env))
    source, _, precision = "".join(output.get("text", "") for output in notebook.cells[0].outputs).strip() \
        .rpartition("\n")
    return source.strip(), precision.strip()


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


def with_kinds(timings: Mapping[str, Any]) -> dict[str, Any]:
    """``timings`` as {"about", "kinds": {key: {"label", "notebooks": {name: entry}}}}.

    A file from before there were kinds (one "notebooks" map) has its entries grouped by their machine's kind.
    """
    if "kinds" in timings:
        return {"about": timings.get("about", ABOUT), "kinds": dict(timings["kinds"])}
    grouped: dict[str, Any] = {}
    for name, entry in timings.get("notebooks", {}).items():
        key, label = kind_of(entry["machine"])
        grouped.setdefault(key, {"label": label, "notebooks": {}})["notebooks"][name] = entry
    return {"about": ABOUT, "kinds": grouped}


def kinds(timings: Mapping[str, Any]) -> dict[str, Any]:
    """The CPU kinds of ``timings``, in the file's order: key -> {"label", "notebooks"}."""
    return with_kinds(timings)["kinds"]


def read_timings(path: Path = TIMINGS) -> dict[str, Any]:
    """timings.json (an older one's entries grouped by kind), or an empty one where there is none yet."""
    if not path.is_file():
        return {"about": ABOUT, "kinds": {}}
    return with_kinds(json.loads(path.read_text(encoding="utf-8")))


def merge(timings: Mapping[str, Any], measured: Mapping[str, Mapping[str, Any]], present: Sequence[str]) -> dict:
    """``timings`` with the notebooks just ``measured`` replaced in their machine's kind, every other kind's
    figures kept, and notebooks no longer ``present`` dropped from every kind (a kind left without any, too).

    A kind measured for the first time comes after the others; its label is set from the machine.
    """
    merged = {key: {"label": kind["label"], "notebooks": dict(kind["notebooks"])}
              for key, kind in kinds(timings).items()}
    for name, entry in measured.items():
        key, label = kind_of(entry["machine"])
        kind = merged.setdefault(key, {"label": label, "notebooks": {}})
        kind["label"] = label
        kind["notebooks"][name] = entry
    kept = {}
    for key, kind in merged.items():
        notebooks = {name: kind["notebooks"][name] for name in present if name in kind["notebooks"]}
        if notebooks:
            kept[key] = {"label": kind["label"], "notebooks": notebooks}
    return {"about": ABOUT, "kinds": kept}


def slowest_times(timings: Mapping[str, Any]) -> dict[str, tuple[float, str]]:
    """The slowest kind's time per notebook: notebook -> (seconds, kind key), the most seconds any kind took
    (the first such kind on a tie). What a lesson plan must allow for, and what TEACHING.md's text shows."""
    slowest: dict[str, tuple[float, str]] = {}
    for key, kind in kinds(timings).items():
        for name, entry in kind["notebooks"].items():
            if name not in slowest or entry["seconds"] > slowest[name][0]:
                slowest[name] = (entry["seconds"], key)
    return dict(sorted(slowest.items()))


def slowest_kinds(timings: Mapping[str, Any]) -> list[str]:
    """The kinds that give some notebook its slowest time, in the file's order."""
    used = {key for _, key in slowest_times(timings).values()}
    return [key for key in kinds(timings) if key in used]


def write_text(path: Path, text: str) -> None:
    """Write a whole file through a temporary file and a rename, so that a failure leaves the old one."""
    from styletransfer_tools.files import write_atomically

    write_atomically(path, lambda stream: stream.write(text.encode("utf-8")))


# =============================================================================
# 4. README's time columns and TEACHING.md's generated parts
# =============================================================================

ROW_NOTEBOOK = re.compile(r"\(notebooks/(\d\d_\w+\.ipynb)\)")
BLOCK = re.compile(r"(<!-- BEGIN generated: (?P<name>[^>]+?) -->\n)(?P<body>.*?)(<!-- END generated: (?P=name) -->)",
                   flags=re.S)
INLINE_TIME = re.compile(
    r"(<!-- time: (?P<number>\d\d)(?: (?P<kind>[\w.-]+))? -->)(?P<value>[^<]*)(<!-- /time -->)")
INLINE_KIND = re.compile(r"(<!-- kind: (?P<kind>[\w.-]+) -->)(?P<value>[^<]*)(<!-- /kind -->)")
TIME_HEADER = re.compile(r"(?:CPU )?time(?: on (?P<label>.+))?", flags=re.I)  # "CPU time", "time on Zen 5, ..."
SEPARATOR_CELL = re.compile(r"\s*:?-+:?\s*")
NOT_MEASURED = "not measured"


def time_header(label: str) -> str:
    """A time column's header, naming its kind: "time on Zen 5, native bf16"."""
    return f"time on {label}"


def split_row(line: str) -> list[str]:
    """A markdown table row's parts between unescaped pipes, the outer (empty) ones included."""
    return re.split(r"(?<!\\)\|", line)


def time_cell(value: str, old: str) -> str:
    """A time cell showing ``value``, with the remark that followed the old cell's "N s" ("(plus yours)")."""
    old = old.strip()
    number = re.match(rf"(?:\d+(?:\.\d+)?\s*s\b|{NOT_MEASURED}\b)", old)
    remark = old[number.end() if number else 0:].strip()
    return f" {value}{' ' + remark if remark else ''} "


def update_readme_table(lines: list[str], kinds_: Mapping[str, Any]) -> set[str]:
    """Rewrite one markdown table (``lines``, header first) in place if it is the notebook table; return the
    notebooks whose rows got a time."""
    header = split_row(lines[0])
    columns = [index for index, cell in enumerate(header) if TIME_HEADER.fullmatch(cell.strip())]
    if not columns or not any(ROW_NOTEBOOK.search(line) for line in lines[1:]):
        return set()
    by_label = {kind["label"]: key for key, kind in kinds_.items()}
    column_of: dict[str, int] = {}
    unnamed = []
    for index in columns:
        label = TIME_HEADER.fullmatch(header[index].strip())["label"]
        if label is None:
            unnamed.append(index)
        elif label in by_label:
            column_of.setdefault(by_label[label], index)
    for index, key in zip(unnamed, [key for key in kinds_ if key not in column_of], strict=False):
        column_of[key] = index

    def rebuilt(cells: list[str], new: list[str]) -> str:
        cells = [*cells[:-1], *[" "] * (len(header) - len(cells)), cells[-1]] if len(cells) < len(header) else cells
        return "|".join([*cells[:columns[0]], *new, *(c for i, c in enumerate(cells) if i > columns[0]
                                                         and i not in columns)])

    seen: set[str] = set()
    for number, line in enumerate(lines):
        cells = split_row(line)
        old = {key: cells[index] if index < len(cells) else " " for key, index in column_of.items()}
        if number == 0:
            new = [f" {time_header(kind['label'])} " for kind in kinds_.values()]
        elif all(SEPARATOR_CELL.fullmatch(cell) for cell in cells[1:-1]):
            new = [old.get(key, cells[columns[0]]) for key in kinds_]
        elif match := ROW_NOTEBOOK.search(line):
            new = []
            for key, kind in kinds_.items():
                entry = kind["notebooks"].get(match[1])
                new.append(time_cell(shown(entry["seconds"]) if entry else NOT_MEASURED, old.get(key, "")))
                seen.update([match[1]] if entry else [])
        else:
            new = [old.get(key, " ") for key in kinds_]
        lines[number] = rebuilt(cells, new)
    return seen


def update_readme_times(text: str, timings: Mapping[str, Any]) -> tuple[str, list[str]]:
    """README's text with the notebook table's time columns set from ``timings``; and the notebooks with no row.

    The notebook table is the one whose header has a time column ("CPU time", or "time on LABEL" as this writes
    it) and whose rows link notebooks/NN_*.ipynb. Its time columns become one per kind, in timings.json's
    order, headed "time on LABEL", where the first of them was. A kind's cells keep the remarks after the "N s"
    of the column headed with its label ("52 s (plus your slider runs)"); a column headed with no kind ("CPU
    time") counts as the first kind's that has none. A notebook a kind has not timed shows "not measured".
    Every other byte of README stays as it is. With no kind at all, nothing changes.
    """
    kinds_ = kinds(timings)
    if not kinds_:
        return text, []
    lines = text.split("\n")
    seen: set[str] = set()
    start = 0
    while start < len(lines):
        end = start
        while end < len(lines) and lines[end].startswith("|"):
            end += 1
        if end == start:
            start += 1
            continue
        table = lines[start:end]
        seen |= update_readme_table(table, kinds_)
        lines[start:end] = table
        start = end
    measured = sorted({name for kind in kinds_.values() for name in kind["notebooks"]})
    return "\n".join(lines), [name for name in measured if name not in seen]


def you_will_learn(path: Path) -> str:
    """The bullets under a notebook's "## You will learn" heading, as written there (markdown)."""
    notebook = json.loads(path.read_text(encoding="utf-8"))
    for cell in notebook["cells"]:
        source = cell["source"] if isinstance(cell["source"], str) else "".join(cell["source"])
        if cell["cell_type"] == "markdown" and (match := re.search(r"^## You will learn\s*\n(.*?)(?=^#|\Z)",
                                                                   source, flags=re.M | re.S)):
            return match[1].strip()
    return ""


def exercises(path: Path) -> tuple[list[str], int]:
    """The ``def NAME_by_hand`` functions that the assignments grade, and how many written exercises there are."""
    from styletransfer_tools.assignments import coded_exercises, count_written_exercises, read_notebook

    return coded_exercises(path), count_written_exercises(read_notebook(path))


def timings_block(timings: Mapping[str, Any], names: Sequence[str], folder: Path = NOTEBOOK_DIR) -> str:
    """The table of TEACHING.md: each notebook's time on each kind and its slowest cells (on the kind slowest
    for it), then the totals per kind, what each kind was measured on, and which kind the text's times are."""
    kinds_ = kinds(timings)
    slowest = slowest_times(timings)
    many = len(kinds_) > 1
    times = [time_header(kind["label"]) for kind in kinds_.values()] or ["time at its defaults"]
    lines = [f"| # | notebook | {' | '.join(times)} | where most of it goes{', on the slowest kind' if many else ''} |",
             "|---" * (len(times) + 3) + "|"]
    for name in names:
        title = notebook_title(folder / name)
        cells = [shown(kind["notebooks"][name]["seconds"]) if name in kind["notebooks"] else "not measured yet"
                 for kind in kinds_.values()] or ["not measured yet"]
        slowest_cells = (kinds_[slowest[name][1]]["notebooks"][name]["longest_cells"] if name in slowest else [])
        where = "; ".join(f"{cell['section'] or 'top'}: {shown(cell['seconds'])}" for cell in slowest_cells)
        lines.append(f"| {name[:2]} | [{title}]({name}) | {' | '.join(cells)} | {where + ' ' if where else ''}|")
    lines.append("")
    totals = []
    for kind in kinds_.values():
        measured = [kind["notebooks"][name]["seconds"] for name in names if name in kind["notebooks"]]
        total = sum(measured)
        so_far = "" if len(measured) == len(names) else f" for the {len(measured)} timed so far"
        if measured:
            totals.append(f"{shown(total)} ({total / 60:.1f} minutes){so_far} on {kind['label']}")
    if not totals:
        lines.append(f"No notebook has been timed yet: run `{COMMAND} --weights PATH --write`.")
        return "\n".join(lines) + "\n"
    lines += [f"All {len(names)} notebooks together: {'; '.join(totals)}.", "", "Measured on:", ""]
    for key, kind in kinds_.items():
        setups: dict[str, list[str]] = {}
        for name in names:
            if name in kind["notebooks"]:
                entry = kind["notebooks"][name]
                setup = f"{describe_machine(entry['machine'])}; weights: {entry['weights_label']}; {entry['date'][:10]}"
                setups.setdefault(setup, []).append(name[:2])
        described = "; ".join(setup + ("" if len(setups) == 1 else f" ({', '.join(numbers)})")
                              for setup, numbers in setups.items())
        lines.append(f"- **{kind['label']}** (`{key}`): {described}.")
    if many:
        labels = " and ".join(kinds_[key]["label"] for key in slowest_kinds(timings))
        lines += ["", f"Each time quoted in the text below, the lesson plans' included, is the slowest kind's for "
                      f"that notebook: {labels}."]
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
    names, written = exercises(path)
    graded = (f"Functions to write, autograded: {', '.join(f'`{n}`' for n in names)}. " if names
              else "No function to write. ")
    return (f"{you_will_learn(path)}\n\n{graded}Written exercises: {written}, marked by hand, with answers in "
            "`classroom/answers.md`.\n")


def going_deeper_block(paths: Sequence[Path]) -> str:
    """What each notebook keeps under "Going deeper (optional)": its ``###`` sub-headings, one line per
    notebook, so that the lesson plans can say what they skip without a list that drifts."""
    lines = []
    for path in paths:
        notebook = json.loads(path.read_text(encoding="utf-8"))
        headings = [line[4:].strip() for cell in going_deeper_cells(notebook) if cell["cell_type"] == "markdown"
                    for line in "".join(cell["source"]).splitlines() if line.startswith("### ")]
        listed = "; ".join(headings) if headings else "nothing (no *Going deeper* part)"
        lines.append(f"- **{path.name[:2]} · {notebook_title(path)}**: {listed}.")
    return "\n".join(lines) + "\n"


def update_teaching(text: str, timings: Mapping[str, Any], folder: Path = NOTEBOOK_DIR) -> tuple[str, list[str]]:
    """TEACHING.md with its generated blocks and inline times rewritten; and what it lacks (for a warning).

    Blocks are ``<!-- BEGIN generated: timings -->``, ``<!-- BEGIN generated: going-deeper -->`` and
    ``<!-- BEGIN generated: goals NN_name.ipynb -->``,
    each closed by its END line. An inline ``<!-- time: 03 -->58 s<!-- /time -->`` shows notebook 03's time
    on the slowest kind that timed it (`slowest_times`), ``<!-- time: 03 KEY -->`` its time on the kind KEY;
    ``<!-- kind: slowest -->…<!-- /kind -->`` names the kinds those slowest times come from, ``<!-- kind: KEY
    -->`` one kind.
    """
    names = notebook_names(folder)
    kinds_ = kinds(timings)
    slowest = slowest_times(timings)
    missing: list[str] = []

    def block(match: re.Match) -> str:
        name = match["name"]
        if name == "timings":
            body = timings_block(timings, names, folder)
        elif name == "going-deeper":
            body = going_deeper_block([folder / name for name in names])
        elif name.startswith("goals ") and (folder / name.removeprefix("goals ")).is_file():
            body = goals_block(folder / name.removeprefix("goals "))
        else:
            missing.append(f"has a block {name!r}, but there is no such notebook")
            return match[0]
        return match[1] + body + match[4]

    def inline(match: re.Match) -> str:
        number, key = match["number"], match["kind"]
        name = next((name for name in names if name.startswith(number)), None)
        if key is not None and key not in kinds_:
            missing.append(f"shows a time on {key!r}, a kind {TIMINGS.name} does not have "
                           f"(it has {', '.join(kinds_) or 'none'})")
            return match[0]
        if key is not None and name in kinds_[key]["notebooks"]:
            return match[1] + shown(kinds_[key]["notebooks"][name]["seconds"]) + match[5]
        if key is None and name in slowest:
            return match[1] + shown(slowest[name][0]) + match[5]
        missing.append(f"shows a time for notebook {number}{' on ' + key if key else ''}, which {TIMINGS.name} "
                       "does not have")
        return match[0]

    def kind_name(match: re.Match) -> str:
        key = match["kind"]
        keys = slowest_kinds(timings) if key == "slowest" else [key] if key in kinds_ else []
        if not keys:
            missing.append(f"names the kind {key!r}, which {TIMINGS.name} does not have")
            return match[0]
        return match[1] + " and ".join(kinds_[key]["label"] for key in keys) + match[4]

    text = INLINE_KIND.sub(kind_name, INLINE_TIME.sub(inline, BLOCK.sub(block, text)))
    present = {match["name"] for match in BLOCK.finditer(text)}
    missing += [f"has no section with <!-- BEGIN generated: goals {name} --> (write one)" for name in names
                if f"goals {name}" not in present]
    return text, list(dict.fromkeys(missing))


def sync(timings: Mapping[str, Any], readme: Path = README, teaching: Path = TEACHING) -> list[str]:
    """Rewrite README's time columns and TEACHING.md's generated parts from ``timings``; return what to tell.

    Files whose text would not change are not written.
    """
    messages = []
    old = readme.read_text(encoding="utf-8")
    text, unlisted = update_readme_times(old, timings)
    if text != old:
        write_text(readme, text)
        messages.append(f"updated the time columns of {readme}")
    messages += [f"warning: README.md's notebook table has no row for {name}: add one (its time cells are then "
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
    parser.add_argument("--avx2", action="store_true", help="limit the kernels to AVX2 (ONEDNN_MAX_CPU_ISA=AVX2 "
                        "ATEN_CPU_CAPABILITY=avx2) and fp32, as a CPU without native bf16; recorded as its own kind")
    parser.add_argument("--size", type=int, help="STYLETRANSFER_SIZE for the kernels, as a class would shrink "
                        "them (TEACHING.md); printed only: timings.json holds the defaults' times")
    parser.add_argument("--steps", type=int, help="STYLETRANSFER_STEPS for the kernels, likewise")
    parser.add_argument("--write", action="store_true", help="store this kind's figures in notebooks/timings.json "
                        "(other kinds' are kept) and update README.md and notebooks/TEACHING.md from it")
    parser.add_argument("--sync", action="store_true", help="time nothing: only update README.md and "
                        "notebooks/TEACHING.md from notebooks/timings.json")
    args = parser.parse_args(argv)

    if args.sync:
        print("\n".join(sync(read_timings())) or "nothing to update")
        return 0

    paths = resolve(args.notebooks)
    env = kernel_environment(args.weights)
    shrunk = {name: str(value) for name, value in (("STYLETRANSFER_SIZE", args.size),
                                                    ("STYLETRANSFER_STEPS", args.steps)) if value is not None}
    if shrunk and args.write:
        parser.error("--size and --steps time a shrunk class; notebooks/timings.json holds the defaults' times, "
                     "so they cannot be combined with --write")
    env.update(shrunk)
    if shrunk:
        print("shrunk: " + " ".join(f"{name}={value}" for name, value in shrunk.items()))
    if args.avx2:
        env.update(AVX2_LIMIT)
    weights = env.get(WEIGHTS_ENV, "imagenet (torch.hub's cache)")
    label = args.weights_label or (Path(weights).name if WEIGHTS_ENV in env
                                   else "torchvision's ImageNet VGG19 (IMAGENET1K_V1)")
    with contextlib.ExitStack() as stack:
        env = without_native_bf16(env, Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="ipython-"))))
        info = machine(env)
        source, precision = warm_up(env)
        if precision != info["precision"]:
            print(f"warning: the notebooks run in {precision} here, not {info['precision']} as the CPU's flags "
                  "suggest; recorded as measured", file=sys.stderr)
        info["precision"] = precision
        key, kind_label = kind_of(info)
        print(f"kind: {kind_label} ({key})")
        print(f"{describe_machine(info)} ({info['torch_threads']} torch threads), torchvision "
              f"{info['torchvision']}, Python {info['python']}")
        print(f"weights: {source}")
        print(f"{'notebook':<40} {'seconds':>8} {'main path':>10}   slowest cell")
        measured = {}
        for path in paths:
            runs = [time_notebook(path, env, args.timeout) for _ in range(args.repeat)]
            seconds = statistics.median(run.seconds for run in runs)
            slowest = runs[-1].longest_cells[0] if runs[-1].longest_cells else None
            note = f"{slowest['seconds']:.1f} s in {slowest['section'] or 'the set-up'}" if slowest else ""
            main_path = seconds - statistics.median(run.going_deeper for run in runs)
            print(f"{path.name:<40} {seconds:8.1f} {main_path:10.1f}   {note}", flush=True)
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
        others = [kind["label"] for other, kind in timings["kinds"].items() if other != key]
        print(f"Wrote {TIMINGS.relative_to(ROOT)}: {len(measured)} notebooks on {kind_label}"
              + (f"; kept {', '.join(others)}" if others else ""))
        untimed = [name for name in notebook_names() if name not in timings["kinds"][key]["notebooks"]]
        if untimed:
            print(f"note: {kind_label} has no time yet for {', '.join(untimed)}; tests/test_teaching.py expects "
                  "every kind to have every notebook's", file=sys.stderr)
        print("\n".join(sync(timings)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
