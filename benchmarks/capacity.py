"""How many students fit on one server: each notebook's memory, and a run's time as students share the cores.
Figures, not tests.

    python benchmarks/capacity.py [NOTEBOOK ...] [--weights PATH] [--size N] [--steps N] [--students 1,2,4]
                                  [--only memory|load] [--cells] [--env NAME=VALUE ...] [--json PATH]
    python benchmarks/capacity.py 00 06 --weights STANDIN.pth --only memory --cells   # where 06's peak is
    python benchmarks/capacity.py --weights STANDIN.pth --size 64 --steps 2 --students 1,2   # a quick check

1. Memory. Each notebook (all of notebooks/NN_*.ipynb, or those named: "06", "06_tuning_the_style_weights" or a
   path) runs top to bottom in a fresh python3 kernel, as a student's "Restart Kernel and Run All Cells" would,
   in a temporary copy of notebooks/ with assets/ beside it (nothing is written into the repository), at its
   own defaults: the kernels see no STYLETRANSFER_* variable except the weights (--weights, as
   STYLETRANSFER_VGG19_WEIGHTS) and, for a quick check, --size and --steps (STYLETRANSFER_SIZE and
   STYLETRANSFER_STEPS, which `notebook_settings` reads). The kernel process is sampled every --interval
   seconds (0.1) from /proc:
     peak RSS    the kernel's own high-water mark (VmHWM in /proc/PID/status): the most pages it had in memory at
                 once (exact, also per cell: it is read and started again after each cell)
     anon        its anonymous memory (RssAnon) at the sampled peak: tensors, Python objects, the allocator's free
                 lists; nobody else can share it, so it is what EACH student adds
     file        its file-backed pages (RssFile) at the same moment: mostly the shared libraries of torch, CUDA,
                 numpy ... (read-only code and data). A server keeps one copy of them for every kernel that uses
                 the same installation, so a class pays for them once
     USS         Private_Clean + Private_Dirty (/proc/PID/smaps_rollup): the pages no other process maps right
                 now. A kernel alone on a machine has the library pages to itself, so its USS counts them too:
                 USS is what ending this one kernel would give back, not what one more student costs
     PSS         Pss (smaps_rollup): each page divided by the processes that map it; the PSS of all processes
                 adds up to the memory in use
   "imports only" is a kernel that only runs ``import torch, torchvision, styletransfer_utils``, "empty kernel"
   one that runs nothing (ipykernel itself), "JupyterLab server" a student's server without a kernel, once
   it has served JupyterLab's page (on a hub, jupyterhub-singleuser is that server). A class of N students
   needs about: file (once) + N x (anon + the server's anon). --cells adds each code cell's peak, to see
   which cell makes a notebook's peak.

2. Time under load. N students (--students, default 1,2,4) start notebook 00 (--load-notebook) at the same
   moment, each in their own kernel, own worker process and own temporary folder; per N it prints the median
   and the longest wall time (kernel start to last cell) and the slowdown against N=1. Each kernel keeps
   torch's default threading (as many threads as cores, as a student's would, unless --env sets
   OMP_NUM_THREADS), so N kernels share the cores N ways and, with more threads than cores, also compete
   for them. Run it on a quiet machine. Each kernel's peak RSS and anon are printed too,
   its peak PSS, and the largest sum of all the kernels' PSS at one moment (read every second): the memory the
   whole class's kernels took together, their shared library pages counted once.

--env NAME=VALUE (repeatable) passes a variable to the kernels (MALLOC_ARENA_MAX=2, OMP_NUM_THREADS=1, ...) to
try what a server could set. --json PATH writes every figure (default: a file in the temporary folder, never
in the repository). An untimed warm-up kernel loads the weights first, so that no notebook pays for cold disk
caches. Linux only (/proc).
"""

from __future__ import annotations

import argparse
import contextlib
import datetime as dt
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "benchmarks"))
from time_notebooks import (  # noqa: E402  (the same notebook selection, kernel environment and CPU kinds)
    NOTEBOOK_DIR,
    WEIGHTS_ENV,
    describe_machine,
    expected_precision,
    isa_environment,
    kernel_environment,
    kind_of,
    lscpu,
    resolve,
    section_of_each_cell,
)

MiB = 2**20
LOAD_NOTEBOOK = "00"  # the first notebook a class runs
IMPORTS = "import torch, torchvision, styletransfer_utils"
# What the import kernel reports about itself (so this process never imports torch: it would share the
# library pages with the kernel and halve its PSS)
ABOUT_KERNEL = """\
import json, os, torch, torchvision, styletransfer_utils
print(json.dumps({"torch": torch.__version__, "torchvision": torchvision.__version__,
                  "cuda_build": torch.version.cuda, "threads": torch.get_num_threads(),
                  "precision": "bf16" if styletransfer_utils.choose_precision("auto", torch.device("cpu"))
                  == torch.bfloat16 else "fp32"}))
"""
WARM_UP = "from styletransfer_utils import load_vgg19\nprint(load_vgg19('imagenet', 'cpu').weights_source)"


# =============================================================================
# 1. Reading a process's memory from /proc
# =============================================================================


def proc_fields(path: Path) -> dict[str, int]:
    """The "Name:   123 kB" lines of /proc/PID/status or smaps_rollup, in bytes (others are skipped)."""
    values = {}
    for line in path.read_text().splitlines():
        name, _, rest = line.partition(":")
        parts = rest.split()
        if len(parts) == 2 and parts[1] == "kB" and parts[0].isdigit():
            values[name.strip()] = int(parts[0]) * 1024
    return values


@dataclass
class Reading:
    """One look at a process: what it holds in memory now, and its high-water mark so far."""

    rss: int = 0
    hwm: int = 0  # VmHWM: the most RSS the process had since it started (or since `restart_high_water_mark`)
    anon: int = 0
    file: int = 0
    uss: int = 0
    pss: int = 0


def read_memory(pid: int, rollup: bool = True) -> Reading | None:
    """``pid``'s memory now; None once it has gone."""
    try:
        status = proc_fields(Path(f"/proc/{pid}/status"))
        smaps = proc_fields(Path(f"/proc/{pid}/smaps_rollup")) if rollup else {}
    except (FileNotFoundError, ProcessLookupError, PermissionError):
        return None
    return Reading(rss=status.get("VmRSS", 0), hwm=status.get("VmHWM", 0), anon=status.get("RssAnon", 0),
                   file=status.get("RssFile", 0) + status.get("RssShmem", 0),
                   uss=smaps.get("Private_Clean", 0) + smaps.get("Private_Dirty", 0), pss=smaps.get("Pss", 0))


@dataclass
class Peaks:
    """The largest value of each measure over a stretch of time (not all at the same moment), and the file-backed
    memory at the moment of the largest anonymous memory."""

    rss: int = 0  # the largest sample; a whole run's is then raised to the high-water mark (VmHWM)
    anon: int = 0
    file_at_anon_peak: int = 0
    uss: int = 0
    pss: int = 0
    samples: int = 0

    def add(self, reading: Reading) -> None:
        self.rss = max(self.rss, reading.rss)
        if reading.anon >= self.anon:
            self.anon, self.file_at_anon_peak = reading.anon, reading.file
        self.uss, self.pss = max(self.uss, reading.uss), max(self.pss, reading.pss)
        self.samples += 1


class Sampler:
    """Samples a process every ``interval`` seconds in a thread: the peaks of the whole run, and of the stretch
    since the last `mark` (one cell). Peak RSS is exact: the kernel counts it (VmHWM), and `mark` reads it and
    starts it again (``5`` written to /proc/PID/clear_refs), so each cell has its own. The other measures are as
    large as the samples saw. Reading smaps_rollup costs about 10 ms of CPU for a kernel with torch loaded (it
    walks the page tables) and briefly holds the kernel's memory-map lock; without ``rollup`` only
    /proc/PID/status is read (RSS, anon, file), which costs nearly nothing."""

    def __init__(self, pid: int, interval: float = 0.1, rollup: bool = True) -> None:
        self.pid, self.interval, self.rollup = pid, interval, rollup
        self.total, self.window = Peaks(), Peaks()
        self.last = Reading()
        self._lock, self._done = threading.Lock(), threading.Event()
        self._thread = threading.Thread(target=self._loop, daemon=True)

    def __enter__(self) -> Sampler:
        self.sample()
        self._thread.start()
        return self

    def __exit__(self, *exc: Any) -> None:
        self._done.set()
        self._thread.join()

    def _loop(self) -> None:
        while not self._done.wait(self.interval):
            self.sample()

    def sample(self) -> Reading | None:
        reading = read_memory(self.pid, self.rollup)
        if reading is not None:
            with self._lock:
                self.total.add(reading)
                self.window.add(reading)
                self.last = reading
        return reading

    def mark(self) -> Peaks:
        """Take a sample, and return the peaks since the last mark (a new stretch begins); the peak RSS is the
        kernel's high-water mark since then, where it could be started again."""
        with self._lock:
            reading = read_memory(self.pid, self.rollup)
            if reading is not None:
                self.total.add(reading)
                self.window.add(reading)
                self.last = reading
                self.total.rss = max(self.total.rss, reading.hwm)
            window, self.window = self.window, Peaks()
            if reading is not None and restart_high_water_mark(self.pid):
                window.rss = max(window.rss, reading.hwm)
            self.window.add(self.last)
        return window


def restart_high_water_mark(pid: int) -> bool:
    """Start ``pid``'s VmHWM again from its present RSS (Linux 4.0 and newer); False where that is not allowed."""
    try:
        Path(f"/proc/{pid}/clear_refs").write_text("5")
    except OSError:
        return False
    return True


def kernel_pid(client: Any) -> int:
    """The pid of the kernel that nbclient started: a child of this process."""
    process = getattr(getattr(client.km, "provisioner", None), "process", None)
    if process is not None:
        return process.pid
    mine = children(os.getpid())
    kernels = [pid for pid in mine if b"ipykernel" in Path(f"/proc/{pid}/cmdline").read_bytes()]
    if len(kernels) != 1:
        raise RuntimeError(f"cannot tell which child process is the kernel: {kernels or mine}")
    return kernels[0]


def read_parent(pid: int) -> int | None:
    try:
        return int(Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()[1])
    except (OSError, IndexError, ValueError):
        return None


# =============================================================================
# 2. Running a notebook in a kernel that is watched
# =============================================================================


@dataclass
class CellFigures:
    """One code cell: its section, seconds, and the peaks while it ran (and the RSS and anon after it)."""

    index: int
    section: str
    seconds: float
    peak_rss: int
    peak_anon: int
    rss_after: int
    anon_after: int


@dataclass
class Run:
    """One notebook run in a fresh kernel: wall time (kernel start included) and the kernel's memory."""

    name: str
    seconds: float
    peaks: Peaks
    cells: list[CellFigures] = field(default_factory=list)
    output: str = ""  # what the cells printed (the import kernel's report)


def copy_series(scratch: Path) -> Path:
    """notebooks/ and assets/ copied side by side into ``scratch``, so that ``../assets/`` paths resolve."""
    folder = scratch / "notebooks"
    shutil.copytree(NOTEBOOK_DIR, folder, ignore=shutil.ignore_patterns(".ipynb_checkpoints", "__pycache__"))
    if (ROOT / "assets").is_dir():
        shutil.copytree(ROOT / "assets", scratch / "assets")
    return folder


def run_watched(notebook: Any, name: str, folder: Path, env: Mapping[str, str], interval: float = 0.1,
                timeout: int = 1800, rollup: bool = True) -> Run:
    """Execute ``notebook`` (an nbformat notebook) cell by cell in a new kernel whose working folder is
    ``folder``, sampling the kernel's memory; raises nbclient's CellExecutionError if a cell fails. The
    kernel's own log (its warning about unencrypted TCP, for one) is printed only if something fails."""
    from nbclient import NotebookClient

    client = NotebookClient(notebook, timeout=timeout, kernel_name="python3",
                            resources={"metadata": {"path": str(folder)}})
    sections = section_of_each_cell(notebook.cells)
    cells, output = [], []
    client.reset_execution_trackers()
    start = time.perf_counter()
    with tempfile.TemporaryFile("w+") as log, failure_shows(log), client.setup_kernel(env=dict(env), stderr=log):
        with Sampler(kernel_pid(client), interval, rollup) as sampler:
            sampler.mark()
            for index, cell in enumerate(notebook.cells):
                if cell.cell_type != "code":
                    continue
                began = time.perf_counter()
                client.execute_cell(cell, index)
                seconds = time.perf_counter() - began
                window, after = sampler.mark(), sampler.last
                cells.append(CellFigures(index, sections[index], seconds, max(window.rss, after.rss), window.anon,
                                         after.rss, after.anon))
                output += [out.get("text", "") for out in cell.outputs if out.get("output_type") == "stream"]
            seconds = time.perf_counter() - start
            sampler.mark()
            peaks = sampler.total
    return Run(name, seconds, peaks, cells, "".join(output))


@contextlib.contextmanager
def failure_shows(log: Any):
    """On an exception, print the end of the kernel's log ``log`` (a file) before it goes on."""
    try:
        yield
    except BaseException:
        log.seek(0)
        print("".join(log.readlines()[-30:]), file=sys.stderr)
        raise


def run_notebook(path: Path, env: Mapping[str, str], interval: float = 0.1, timeout: int = 1800,
                 rollup: bool = True) -> Run:
    """``path`` top to bottom in a fresh kernel, in a temporary copy of the series."""
    import nbformat

    with tempfile.TemporaryDirectory(prefix="capacity-") as scratch:
        folder = copy_series(Path(scratch))
        notebook = nbformat.read(folder / path.name, as_version=4)
        return run_watched(notebook, path.name, folder, env, interval, timeout, rollup)


def run_code(name: str, sources: Sequence[str], env: Mapping[str, str], interval: float = 0.1) -> Run:
    """A notebook made of ``sources`` (one cell each), run in a fresh kernel in an empty temporary folder."""
    import nbformat

    notebook = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(source) for source in sources])
    with tempfile.TemporaryDirectory(prefix="capacity-") as scratch:
        return run_watched(notebook, name, Path(scratch), env, interval, timeout=600)


def run_server(env: Mapping[str, str], interval: float = 0.1, settle: float = 3.0) -> Run:
    """A student's JupyterLab server without a kernel: started in an empty temporary folder on 127.0.0.1,
    asked for JupyterLab's page once (which loads its extensions), then watched for ``settle`` seconds. On a
    hub, each student's server is this one (jupyterhub-singleuser) with the hub's extension added."""
    import secrets
    import socket
    import urllib.error
    import urllib.request

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    token = secrets.token_hex(16)
    with tempfile.TemporaryDirectory(prefix="capacity-") as scratch:
        command = [sys.executable, "-m", "jupyterlab", "--no-browser", "--ip=127.0.0.1", f"--port={port}",
                   f"--IdentityProvider.token={token}", f"--ServerApp.root_dir={scratch}",
                   "--ServerApp.port_retries=0", *(["--allow-root"] if os.geteuid() == 0 else [])]
        start = time.perf_counter()
        server = subprocess.Popen(command, env={**os.environ, **env, "JUPYTER_RUNTIME_DIR": scratch},
                                  stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        try:
            with Sampler(server.pid, interval) as sampler:
                deadline = time.monotonic() + 120
                while True:
                    try:
                        with urllib.request.urlopen(f"http://127.0.0.1:{port}/lab?token={token}", timeout=5) as page:
                            page.read()
                        break
                    except urllib.error.HTTPError as error:  # it answered, but not with the page
                        raise RuntimeError(f"JupyterLab answered {error.code} on port {port}: {command}") from None
                    except OSError:
                        if server.poll() is not None or time.monotonic() > deadline:
                            raise RuntimeError(f"JupyterLab did not answer on port {port}: {command}") from None
                        time.sleep(0.5)
                time.sleep(settle)
                sampler.mark()
                return Run("JupyterLab server (no kernel)", time.perf_counter() - start, sampler.total)
        finally:
            server.terminate()
            try:
                server.wait(30)
            except subprocess.TimeoutExpired:
                server.kill()
                server.wait()


# =============================================================================
# 3. Several students at once
# =============================================================================


def worker(path: Path, result: Path, interval: float, timeout: int) -> int:
    """One student (a process of its own, started by `students_at_once`): ``path`` in a fresh kernel, whose
    environment is this process's; the figures go to ``result`` as JSON. The kernel's status is sampled, not
    its smaps_rollup (`students_at_once` reads that, less often, for all the kernels together)."""
    run = run_notebook(path, dict(os.environ), interval, timeout, rollup=False)
    result.write_text(json.dumps({"seconds": run.seconds, "peaks": asdict(run.peaks)}), encoding="utf-8")
    return 0


@dataclass
class Load:
    """N students running one notebook at the same moment."""

    students: int
    seconds: list[float]
    peak_rss: list[int]  # each kernel's
    peak_anon: list[int]
    peak_pss: list[int]  # each kernel's largest PSS, from samples every PSS_INTERVAL seconds
    peak_pss_sum: int  # the largest sum of the kernels' PSS at one moment: the whole class's memory

    @property
    def median(self) -> float:
        return statistics.median(self.seconds)


PSS_INTERVAL = 1.0  # seconds between reads of every kernel's smaps_rollup under load (each costs ~10 ms of CPU)


def students_at_once(path: Path, students: int, env: Mapping[str, str], interval: float, timeout: int) -> Load:
    """Start ``students`` workers at once, each running ``path`` in its own kernel and temporary folder, and read
    the kernels' PSS together every PSS_INTERVAL seconds."""
    with tempfile.TemporaryDirectory(prefix="capacity-load-") as scratch:
        results = [Path(scratch) / f"student-{number}.json" for number in range(students)]
        workers = [subprocess.Popen([sys.executable, __file__, "--worker", str(path), "--result", str(result),
                                     "--interval", str(interval), "--timeout", str(timeout)], env=dict(env))
                   for result in results]
        kernels: dict[int, int] = {}  # worker pid -> its kernel's pid
        pss, total = [0] * students, 0
        while any(process.poll() is None for process in workers):
            now = 0
            for number, process in enumerate(workers):
                kernel = kernels.get(process.pid) or next(iter(children(process.pid)), None)
                reading = read_memory(kernel) if kernel is not None else None
                if reading is not None:
                    kernels[process.pid] = kernel
                    pss[number] = max(pss[number], reading.pss)
                    now += reading.pss
            total = max(total, now)
            time.sleep(PSS_INTERVAL)
        failed = [process.returncode for process in workers if process.returncode]
        if failed:
            raise SystemExit(f"{len(failed)} of {students} students' runs failed (exit codes {failed})")
        figures = [json.loads(result.read_text(encoding="utf-8")) for result in results]
    return Load(students, [one["seconds"] for one in figures], [one["peaks"]["rss"] for one in figures],
                [one["peaks"]["anon"] for one in figures], pss, total)


def children(pid: int) -> list[int]:
    """The processes whose parent is ``pid``."""
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit() and read_parent(int(entry.name)) == pid:
            found.append(int(entry.name))
    return found


# =============================================================================
# 4. The command
# =============================================================================


def mib(value: int) -> str:
    return f"{value / MiB:.0f}"


def memory_row(label: str, run: Run) -> str:
    p = run.peaks
    return (f"{label:<40} {mib(p.rss):>8} {mib(p.anon):>7} {mib(p.file_at_anon_peak):>7} {mib(p.uss):>7} "
            f"{mib(p.pss):>7} {run.seconds:8.1f}")


def cells_table(run: Run) -> list[str]:
    """Each code cell's peaks, the cell that made the notebook's peak marked with *."""
    highest = max(run.cells, key=lambda cell: cell.peak_rss, default=None)
    lines = [f"  {run.name}: per code cell (MiB)",
             f"  {'cell':>5} {'seconds':>8} {'peak RSS':>9} {'anon':>6} {'RSS after':>10} {'anon after':>11}  section"]
    for cell in run.cells:
        star = "*" if cell is highest else " "
        lines.append(f" {star}{cell.index:>5} {cell.seconds:8.1f} {mib(cell.peak_rss):>9} {mib(cell.peak_anon):>6} "
                     f"{mib(cell.rss_after):>10} {mib(cell.anon_after):>11}  {cell.section[:60]}")
    return lines


def machine_info(env: Mapping[str, str], kernel: Mapping[str, Any]) -> dict[str, Any]:
    """The CPU (lscpu), cores, and what the import kernel reported (torch, its threads, the precision)."""
    info = lscpu()
    flags = set(info.get("Flags", "").split())
    record = {
        "cpu": info.get("Model name", ""), "vendor": info.get("Vendor ID", ""),
        "cpu_family": info.get("CPU family", ""), "cpu_model": info.get("Model", ""),
        "avx2": "avx2" in flags, "avx512f": "avx512f" in flags, "avx512_bf16": "avx512_bf16" in flags,
        "amx_bf16": "amx_bf16" in flags, "isa_env": isa_environment(env),
        "cores": len(os.sched_getaffinity(0)), "gpu": None,
        "memory": proc_fields(Path("/proc/meminfo"))["MemTotal"],
        "torch": kernel.get("torch", "?"), "torchvision": kernel.get("torchvision", "?"),
        "cuda_build": kernel.get("cuda_build"), "torch_threads": kernel.get("threads"),
    }
    record["precision"] = kernel.get("precision") or expected_precision(record)
    return record


def parse_students(text: str) -> list[int]:
    try:
        counts = [int(part) for part in text.split(",") if part.strip()]
    except ValueError:
        counts = []
    if not counts or min(counts) < 1:
        raise argparse.ArgumentTypeError(f"give numbers of students of at least 1, like 1,2,4; got {text!r}")
    return counts


def parse_env(text: str) -> tuple[str, str]:
    name, equals, value = text.partition("=")
    if not equals or not name:
        raise argparse.ArgumentTypeError(f"give NAME=VALUE, like MALLOC_ARENA_MAX=2; got {text!r}")
    return name, value


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter, epilog=__doc__)
    parser.add_argument("notebooks", nargs="*", help="notebooks for the memory part (default: all)")
    parser.add_argument("--weights", help=f"a VGG19 checkpoint's path or URL, passed as ${WEIGHTS_ENV}")
    parser.add_argument("--size", type=int, help="STYLETRANSFER_SIZE for the kernels (a quick check; default: "
                        "unset, each notebook's own)")
    parser.add_argument("--steps", type=int, help="STYLETRANSFER_STEPS for the kernels, likewise")
    parser.add_argument("--students", type=parse_students, default=[1, 2, 4],
                        help="how many students at once, for the time under load (default 1,2,4)")
    parser.add_argument("--load-notebook", default=LOAD_NOTEBOOK, help="the notebook they run (default 00)")
    parser.add_argument("--only", choices=("memory", "load"), help="run one part only")
    parser.add_argument("--cells", action="store_true", help="also print each code cell's peak memory")
    parser.add_argument("--env", type=parse_env, action="append", default=[], metavar="NAME=VALUE",
                        help="a variable for the kernels (repeatable), e.g. MALLOC_ARENA_MAX=2")
    parser.add_argument("--interval", type=float, default=0.1, help="seconds between samples (default 0.1)")
    parser.add_argument("--timeout", type=int, default=1800, help="seconds one cell may take")
    parser.add_argument("--json", type=Path, help="where to write the figures (default: a new file in the "
                        "temporary folder)")
    parser.add_argument("--worker", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--result", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.worker is not None:
        return worker(args.worker, args.result, args.interval, args.timeout)
    if not Path("/proc/self/smaps_rollup").exists():
        parser.error("this needs Linux's /proc (smaps_rollup, Linux 4.14 or newer)")

    env = kernel_environment(args.weights)
    shrunk = {name: str(value) for name, value in (("STYLETRANSFER_SIZE", args.size),
                                                    ("STYLETRANSFER_STEPS", args.steps)) if value is not None}
    env.update(shrunk)
    env.update(dict(args.env))
    paths = resolve(args.notebooks) if args.only != "load" else []
    load_path = resolve([args.load_notebook])[0] if args.only != "memory" else None

    warm = run_code("warm-up", [WARM_UP], env, args.interval)  # loads the weights: disk caches are warm after it
    empty = run_code("empty kernel (ipykernel alone)", ["pass"], env, args.interval)
    imports = run_code("imports only (see below)", [ABOUT_KERNEL], env, args.interval)
    kernel = json.loads(imports.output.strip().splitlines()[-1])
    info = machine_info(env, kernel)
    key, kind = kind_of(info)
    weights = env.get(WEIGHTS_ENV, "imagenet (torch.hub's cache)")
    settings = " ".join(f"{name}={value}" for name, value in {**shrunk, **dict(args.env)}.items())
    print(f"kind: {kind} ({key}); lscpu: {info['cpu']} (vendor {info['vendor']}, family {info['cpu_family']}, "
          f"model {info['cpu_model']})")
    print(f"{describe_machine(info)}, {info['memory'] / 2**30:.0f} GiB; torch {info['torch']} "
          f"({'CUDA ' + info['cuda_build'] + ' build' if info['cuda_build'] else 'CPU-only build'}, "
          f"{info['torch_threads']} threads per kernel), torchvision {info['torchvision']}")
    print(f"weights: {weights} ({warm.output.strip()})")
    print(f"kernels' settings: {settings or 'none (every notebook at its defaults)'}")
    record: dict[str, Any] = {"date": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"), "machine": info,
                              "kind": key, "weights": weights, "settings": {**shrunk, **dict(args.env)},
                              "command": " ".join([Path(sys.argv[0]).name, *(argv or sys.argv[1:])])}

    if args.only != "load":
        print(f"\n1. Memory of one kernel (MiB; peak RSS is exact, the others the largest of samples every "
              f"{args.interval:g} s)")
        print(f"{'':<40} {'peak RSS':>8} {'anon':>7} {'file':>7} {'USS':>7} {'PSS':>7} {'seconds':>8}")
        print(memory_row(empty.name, empty))
        print(memory_row(imports.name, imports))
        server = run_server(env, args.interval)
        print(memory_row(server.name, server))
        record["empty_kernel"], record["import_kernel"] = asdict(empty), asdict(imports)
        record["server"] = asdict(server)
        record["notebooks"] = {}
        runs = []
        for path in paths:
            run = run_notebook(path, env, args.interval, args.timeout)
            runs.append(run)
            record["notebooks"][path.name] = asdict(run)
            print(memory_row(path.name, run), flush=True)
        largest = max(runs, key=lambda run: run.peaks.anon, default=None)
        shared = max((run.peaks.file_at_anon_peak for run in runs), default=0)
        print(f"imports only: a kernel that runs `{IMPORTS}`.\nanon: each student's own memory; file: library "
              "pages (and the memory-mapped weights), shared by all the kernels of one installation.\nseconds: "
              "from the kernel's start to its last cell, sampled all along (each smaps_rollup read costs the machine "
              "~10 ms); benchmarks/time_notebooks.py gives the times without that.")
        if runs:
            print(f"A class of N running {largest.name} at once needs at most about {mib(shared)} + N x "
                  f"({mib(largest.peaks.anon)} + {mib(server.peaks.anon)}) MiB, the second figure each "
                  "student's JupyterLab server.")
        if args.cells:
            for run in runs:
                print()
                print("\n".join(cells_table(run)))

    if load_path is not None:
        threads = "set by OMP_NUM_THREADS" if "OMP_NUM_THREADS" in dict(args.env) else "torch's default"
        print(f"\n2. Time under load: {load_path.name}, N students starting together, each in its own kernel "
              f"with {info['torch_threads']} torch threads ({threads}) on {info['cores']} cores")
        print(f"{'students':>8} {'median s':>9} {'max s':>7} {'slowdown':>9} {'peak RSS':>9} {'anon':>6} "
              f"{'PSS':>6} {'all kernels PSS':>16}   (MiB, per kernel; PSS sampled every {PSS_INTERVAL:g} s)")
        loads, base = [], None
        for count in args.students:
            load = students_at_once(load_path, count, env, args.interval, args.timeout)
            loads.append(load)
            base = load.median if base is None and count == 1 else base
            slowdown = f"{load.median / base:.2f}x" if base else "-"
            print(f"{count:>8} {load.median:9.1f} {max(load.seconds):7.1f} {slowdown:>9} {mib(max(load.peak_rss)):>9} "
                  f"{mib(max(load.peak_anon)):>6} {mib(max(load.peak_pss)):>6} {mib(load.peak_pss_sum):>16}",
                  flush=True)
        if base is None:
            print("(no slowdown: --students has no 1 to compare with)")
        record["load"] = {"notebook": load_path.name, "runs": [asdict(load) for load in loads]}

    target = args.json or Path(tempfile.gettempdir()) / f"capacity-{dt.datetime.now():%Y%m%d-%H%M%S}.json"
    target.write_text(json.dumps(record, indent=1) + "\n", encoding="utf-8")
    print(f"\nfigures written to {target}")
    return 0


if __name__ == "__main__":
    with contextlib.suppress(KeyboardInterrupt):
        sys.exit(main())
