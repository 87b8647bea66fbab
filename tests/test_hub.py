"""A class on a JupyterHub: classroom/jupyterhub_config.py serving three students on 127.0.0.1.

The browser test starts JupyterHub with a configuration file of its own, written into a temporary folder,
that loads classroom/jupyterhub_config.py (as TLJH loads it) and then adds only what a test needs instead
of a real installation's choices: free ports on 127.0.0.1, a shared random password
(SharedPasswordAuthenticator, which replaces DummyAuthenticator's deprecated password), and the simple
local spawner (every student's server runs as the test's own account, root in a CI container, in a home
folder under the temporary folder). configurable-http-proxy is the copy that `make setup` installs with
npm into .venv/node, which the classroom configuration finds. Three students log in, each in a browser
context of their own in Debian's Chromium; each lands in JupyterLab, opens notebook 00 (copied into their
home by the configuration's pre-spawn hook), runs all cells, and saves. The three runs go on together, as
in a class. The test then reads each student's saved notebook: every code cell ran, none raised, and the
kernel used the test's random weights and step count (conftest.py's settings, which the hub must pass on
to every student's kernels). Last, it stops the hub with SIGTERM and checks that the proxy, the students'
servers and their kernels stopped with it. Every wait has a timeout; everything is written into the
temporary folder.

The other tests here load the configuration file without starting anything: that it leaves the
installation's choices alone (TLJH loads it after its own), and that its hook never overwrites a
student's work.

The browser test needs Debian's Chromium, the playwright package, node and .venv/node's
configurable-http-proxy (`make setup`, which needs npm); without any of them it is skipped (in CI, with
CI=true, it fails instead).
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import json
import math
import os
import re
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from types import SimpleNamespace

import pytest
from test_browser import CHROMIUM, LAB, kernel_idle, wait_until_every_cell_ran  # JupyterLab 4's markup

ROOT = Path(__file__).resolve().parents[1]
CONFIG = ROOT / "classroom" / "jupyterhub_config.py"
PROXY = ROOT / ".venv" / "node" / "node_modules" / ".bin" / "configurable-http-proxy"
STUDENTS = ("ada", "grace", "alan")
NOTEBOOK = "notebooks/00_the_method_in_a_minute.ipynb"  # in a student's home, as the hook copies it
# Generous waits: three servers, three kernels and three JupyterLab pages share 2 cores. Nothing here
# measures speed.
WAIT_S = 240
WAIT_MS = WAIT_S * 1000
STOP_S = 60

def missing_requirement() -> str | None:
    """Why the class cannot be served here, or None."""
    if not CHROMIUM.exists():
        return f"{CHROMIUM} not found: install Debian's chromium (apt-get install chromium) to run the hub test"
    try:
        import playwright.sync_api  # noqa: F401
    except ImportError:
        return "the playwright package is missing: .venv/bin/pip install -r requirements.txt"
    if shutil.which("node") is None:
        return "node not found: configurable-http-proxy needs Node.js (apt-get install nodejs npm, then make setup)"
    if not PROXY.exists():
        return (f"{PROXY.relative_to(ROOT)} not found: `make setup` installs configurable-http-proxy with npm "
                "(it skips it when npm is missing); or run: npm install --prefix .venv/node "
                "configurable-http-proxy@5.3.0")
    return None


# ---------------------------------------------------------------- processes


def free_ports(count: int) -> list[int]:
    """Ports free on 127.0.0.1, all different (each socket stays bound until all are chosen)."""
    sockets = [socket.socket() for _ in range(count)]
    try:
        for sock in sockets:
            sock.bind(("127.0.0.1", 0))
        return [sock.getsockname()[1] for sock in sockets]
    finally:
        for sock in sockets:
            sock.close()


def descendants(pid: int) -> list[int]:
    """Every process below ``pid``: the proxy, the students' servers and their kernels (each in a session of
    its own, so a signal to the hub's process group misses them)."""
    children: dict[int, list[int]] = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            parent = int(stat.read_text().rsplit(")", 1)[1].split()[1])
        except (OSError, IndexError, ValueError):
            continue
        children.setdefault(parent, []).append(int(stat.parent.name))
    found, queue = [], [pid]
    while queue:
        for child in children.get(queue.pop(), []):
            found.append(child)
            queue.append(child)
    return found


def alive(pids: list[int]) -> list[int]:
    """Those of ``pids`` still running (a zombie, waiting to be reaped, has stopped)."""
    running = []
    for pid in pids:
        try:
            state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
        except (OSError, IndexError):
            continue
        if state != "Z":
            running.append(pid)
    return running


def command_line(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")[:200]
    except OSError:
        return f"{pid} (gone)"


def kill(pids: list[int]) -> None:
    for pid in pids:
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass


def wait_until_stopped(pids: list[int], timeout: float) -> list[int]:
    deadline = time.monotonic() + timeout
    while alive(pids) and time.monotonic() < deadline:
        time.sleep(0.2)
    return alive(pids)


# ---------------------------------------------------------------- the hub


@dataclass
class Hub:
    url: str
    password: str
    process: subprocess.Popen
    homes: Path
    material: Path
    log: Path
    processes: list[int]  # the hub's descendants, as last seen

    def log_tail(self, chars: int = 6000) -> str:
        try:
            return self.log.read_text(errors="replace")[-chars:]
        except OSError:
            return "(no hub log)"

    def stop(self) -> tuple[int | None, list[int]]:
        """SIGTERM, as systemd stops a hub: it stops every student's server and the proxy itself. Returns
        the hub's exit code (None: it had to be killed) and the processes that outlived it by 20 s."""
        if self.process.poll() is None:
            self.processes = sorted(set(self.processes) | set(descendants(self.process.pid)))
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=STOP_S)
            except subprocess.TimeoutExpired:
                os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait(timeout=10)
                return None, wait_until_stopped(self.processes, 20)
        return self.process.returncode, wait_until_stopped(self.processes, 20)


def copy_course(folder: Path) -> None:
    """What the material folder holds for the test: a copy of notebooks/ and assets/ (which the notebooks
    read as ../assets/), and docs/figures/ (the pictures they show)."""
    shutil.copytree(ROOT / "notebooks", folder / "notebooks", ignore=shutil.ignore_patterns(".ipynb_checkpoints"))
    shutil.copytree(ROOT / "assets", folder / "assets")
    shutil.copytree(ROOT / "docs" / "figures", folder / "docs" / "figures")


def write_test_config(path: Path, homes: Path, password: str) -> str:
    """The test's configuration file: the classroom's, then the test's choices; returns the hub's URL.
    Readable by its owner alone, as it holds the password."""
    port, hub_port, proxy_api_port = free_ports(3)
    settings = {
        "JupyterHub.bind_url": f"http://127.0.0.1:{port}",
        "JupyterHub.hub_bind_url": f"http://127.0.0.1:{hub_port}",
        "ConfigurableHTTPProxy.api_url": f"http://127.0.0.1:{proxy_api_port}",
        "JupyterHub.authenticator_class": "shared-password",
        "SharedPasswordAuthenticator.user_password": password,
        "Authenticator.allowed_users": sorted(STUDENTS),  # the class list
        "JupyterHub.spawner_class": "simple",
        "SimpleLocalProcessSpawner.home_dir_template": f"{homes}/{{username}}",
    }
    lines = [f"load_subconfig({str(CONFIG)!r})"] + [f"c.{name} = {value!r}" for name, value in settings.items()]
    path.touch(mode=0o600)
    path.write_text("\n".join(lines) + "\n")
    return f"http://127.0.0.1:{port}"


def write_lab_settings(home: Path) -> None:
    """JupyterLab settings in a student's home, as test_browser.py sets them: no news or update checks, and
    every cell in the page (no virtual scrolling), so every prompt can be read."""
    settings = home / ".jupyter" / "lab" / "user-settings" / "@jupyterlab"
    for path, value in [
        (settings / "apputils-extension" / "notification.jupyterlab-settings",
         {"fetchNews": "false", "checkForUpdates": False}),
        (settings / "notebook-extension" / "tracker.jupyterlab-settings", {"windowingMode": "none"}),
    ]:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(value))


def answers(url: str) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=5) as response:
            return response.status == 200
    except (OSError, urllib.error.URLError):
        return False


@pytest.fixture(scope="module")
def hub() -> Iterator[Hub]:
    """JupyterHub on 127.0.0.1 with classroom/jupyterhub_config.py; all its state in a temporary folder."""
    folder = Path(tempfile.mkdtemp(prefix="styletransfer-hub-"))
    hub = None
    try:
        material, homes, state = folder / "material", folder / "homes", folder / "hub"
        copy_course(material)
        for name in STUDENTS:
            write_lab_settings(homes / name)  # a home with settings only: the hook adds the course
        state.mkdir()
        password = secrets.token_urlsafe(16)
        url = write_test_config(state / "jupyterhub_test_config.py", homes, password)
        # os.environ carries STYLETRANSFER_SIZE, _STEPS, _VGG19_WEIGHTS and MPLBACKEND from conftest.py,
        # which the configuration passes on to the students' servers
        assert os.environ.get("STYLETRANSFER_VGG19_WEIGHTS"), "conftest.py should have written a random checkpoint"
        path = f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}"  # jupyterhub-singleuser
        env = {**os.environ, "PATH": path, "STYLETRANSFER_HUB_MATERIAL": str(material)}
        command = [sys.executable, "-m", "jupyterhub", "-f", str(state / "jupyterhub_test_config.py")]
        log = folder / "hub.log"
        with log.open("wb") as out:  # the hub writes its database, cookie secret and proxy pid into state/
            process = subprocess.Popen(command, cwd=state, env=env, stdin=subprocess.DEVNULL, stdout=out,
                                       stderr=subprocess.STDOUT, start_new_session=True)
        hub = Hub(url, password, process, homes, material, log, [])
        deadline = time.monotonic() + WAIT_S
        while not answers(f"{hub.url}/hub/api"):  # through the proxy: both are up
            if process.poll() is not None:
                pytest.fail(f"jupyterhub exited with code {process.returncode}:\n{hub.log_tail()}")
            if time.monotonic() > deadline:
                pytest.fail(f"jupyterhub did not answer within {WAIT_S} s:\n{hub.log_tail()}")
            time.sleep(0.5)
        yield hub
    finally:
        if hub is not None:  # whatever the test left running
            hub.stop()
            kill(alive(hub.processes + descendants(hub.process.pid)))
        shutil.rmtree(folder, ignore_errors=True)


# ---------------------------------------------------------------- the students


def log_in(browser, hub: Hub, name: str):
    """A student's own browser context, logged in; the hub then starts their server (not waited for here)."""
    context = browser.new_context(viewport={"width": 1400, "height": 1000})
    page = context.new_page()
    page.set_default_timeout(WAIT_MS)
    page.goto(f"{hub.url}/hub/login")
    page.fill("#username_input", name)
    page.fill("#password_input", hub.password)
    page.click("#login_submit")
    return page


def open_and_run_all(page, hub: Hub, name: str) -> None:
    """Wait for JupyterLab (where the hub sends a student once the server is up), open notebook 00, Run All."""
    page.wait_for_url(re.compile(rf"/user/{name}/lab"), timeout=WAIT_MS)
    page.goto(f"{hub.url}/user/{name}/lab/tree/{NOTEBOOK}?reset")
    page.locator(LAB["cell"]).first.wait_for()
    kernel_idle(page).wait_for()
    page.locator(LAB["menu_run"]).click()
    page.locator(LAB["run_all"]).click()


def save(page) -> None:
    page.locator(LAB["menu_file"]).click()
    page.locator(LAB["save"]).click()


def saved_run(path: Path) -> dict | None:
    """The saved notebook, once every code cell in it has an execution count (the save has landed)."""
    try:
        notebook = json.loads(path.read_text())
    except (OSError, ValueError):
        return None
    code = [cell for cell in notebook["cells"] if cell["cell_type"] == "code"]
    return notebook if code and all(cell.get("execution_count") for cell in code) else None


def text_of(notebook: dict) -> str:
    """Every stream and text/plain output of the notebook, joined."""
    parts = []
    for cell in notebook["cells"]:
        for output in cell.get("outputs", []):
            text = output.get("text") or output.get("data", {}).get("text/plain", "")
            parts.append(text if isinstance(text, str) else "".join(text))
    return "\n".join(parts)


# ---------------------------------------------------------------- the tests


@pytest.mark.browser
@pytest.mark.requires(missing_requirement())
def test_a_class_of_three_runs_notebook_00(hub, browser):
    pages = {}
    try:
        for name in STUDENTS:  # three logins in a row: the hub starts the three servers together
            pages[name] = log_in(browser, hub, name)
        for name, page in pages.items():  # the three kernels then run together
            open_and_run_all(page, hub, name)
        for name, page in pages.items():
            wait_until_every_cell_ran(page, name, WAIT_MS)
            errors = page.locator(LAB["error_output"])
            assert errors.count() == 0, f"{name}: a cell raised:\n" + "\n".join(errors.all_inner_texts())
            save(page)

        weights = os.environ["STYLETRANSFER_VGG19_WEIGHTS"]
        for name in STUDENTS:
            home = hub.homes / name
            assert sorted(p.name for p in (home / "assets").iterdir()) == sorted(
                p.name for p in (hub.material / "assets").iterdir()), f"{name}: the hook did not copy assets/"
            path = home / NOTEBOOK
            deadline = time.monotonic() + 60
            while (notebook := saved_run(path)) is None and time.monotonic() < deadline:
                time.sleep(0.5)
            assert notebook is not None, f"{name}: {path} was not saved with every code cell run"
            errors = [output for cell in notebook["cells"] for output in cell.get("outputs", [])
                      if output.get("output_type") == "error"]
            assert not errors, f"{name}: {errors}"
            text = text_of(notebook)
            # the environment reached the kernel: the test's weights and step count (conftest.py)
            assert f"weights: checkpoint {weights} (from $STYLETRANSFER_VGG19_WEIGHTS)" in text, text
            assert f"{os.environ['STYLETRANSFER_STEPS']} steps in " in text, text
    except Exception:
        print(f"hub log:\n{hub.log_tail()}")
        raise
    finally:
        for page in pages.values():
            page.context.close()

    code, left = hub.stop()
    assert code is not None, f"the hub did not stop within {STOP_S} s of SIGTERM:\n{hub.log_tail()}"
    assert not left, f"still running after the hub stopped: {[command_line(pid) for pid in left]}"


def load_config(monkeypatch, material: Path):
    from traitlets.config.loader import PyFileConfigLoader

    monkeypatch.setenv("STYLETRANSFER_HUB_MATERIAL", str(material))
    return PyFileConfigLoader(str(CONFIG)).load_config()


def test_config_leaves_the_installation_alone(monkeypatch, tmp_path):
    """TLJH loads the file after its own settings; replacing its authenticator, spawner, proxy or address
    would break the hub. Limits, environment, hook and JupyterLab are what the file is for."""
    config = load_config(monkeypatch, tmp_path)
    assert set(config) <= {"Spawner", "ConfigurableHTTPProxy"}, sorted(config)
    spawner = config.Spawner
    assert {"mem_limit", "mem_guarantee", "cpu_limit", "cpu_guarantee", "pre_spawn_hook"} <= set(spawner)
    assert spawner.default_url == "/lab"
    environment = spawner.environment.get_value({})
    assert environment["STYLETRANSFER_VGG19_WEIGHTS"] == os.environ["STYLETRANSFER_VGG19_WEIGHTS"]
    # torch's threads fit the CPU limit (torch counts the machine's cores, not the limit)
    assert environment["OMP_NUM_THREADS"] == str(max(1, math.floor(spawner.cpu_limit)))


def test_kubernetes_values_match_the_hub_config(monkeypatch, tmp_path):
    """zero-to-jupyterhub.yaml repeats the limits, threads, weights path and default page: the same values."""
    import yaml

    monkeypatch.delenv("STYLETRANSFER_VGG19_WEIGHTS")  # the file's own default path, not conftest.py's
    spawner = load_config(monkeypatch, tmp_path).Spawner
    values = yaml.safe_load((ROOT / "classroom" / "zero-to-jupyterhub.yaml").read_text())["singleuser"]
    assert (values["memory"]["limit"], values["memory"]["guarantee"]) == (spawner.mem_limit, spawner.mem_guarantee)
    assert (values["cpu"]["limit"], values["cpu"]["guarantee"]) == (spawner.cpu_limit, spawner.cpu_guarantee)
    environment = spawner.environment.get_value({})
    for name in ("STYLETRANSFER_VGG19_WEIGHTS", "OMP_NUM_THREADS"):
        assert values["extraEnv"][name] == environment[name], name
    assert values["defaultUrl"] == spawner.default_url


def run_hook(hook, spawner) -> None:
    """The hook, as the hub awaits it; in a thread of its own, as Playwright's sync API may hold this one's loop."""
    with concurrent.futures.ThreadPoolExecutor(1) as pool:
        pool.submit(asyncio.run, hook(spawner)).result(timeout=60)


def test_hook_copies_the_course_and_never_overwrites_work(monkeypatch, tmp_path):
    from jupyterhub.spawner import SimpleLocalProcessSpawner

    material = tmp_path / "material"
    (material / "notebooks").mkdir(parents=True)
    (material / "notebooks" / "00.ipynb").write_text("teacher's")
    (material / "notebooks" / "00.ipynb").chmod(0o444)  # a read-only release: the student's copy is writable
    (material / "README.md").write_text("course")
    hook = load_config(monkeypatch, material).Spawner.pre_spawn_hook
    spawner = SimpleLocalProcessSpawner(user=SimpleNamespace(name="ada"),
                                        home_dir_template=str(tmp_path / "homes" / "{username}"))
    home = Path(spawner.home_dir)

    run_hook(hook, spawner)  # first start: everything
    assert (home / "notebooks" / "00.ipynb").read_text() == "teacher's"
    (home / "notebooks" / "00.ipynb").write_text("student's work")
    (home / "README.md").unlink()
    (material / "notebooks" / "01.ipynb").write_text("new")
    (material / "assignment2").mkdir()
    (material / "assignment2" / "a.ipynb").write_text("released later")

    run_hook(hook, spawner)  # a later start: what is missing, nothing else
    assert (home / "notebooks" / "00.ipynb").read_text() == "student's work"
    assert not (home / "notebooks" / "01.ipynb").exists()  # inside a folder the student has: theirs
    assert (home / "README.md").read_text() == "course"
    assert (home / "assignment2" / "a.ipynb").read_text() == "released later"
    assert sorted(p.name for p in home.iterdir()) == ["README.md", "assignment2", "notebooks"]  # no staging left
    assert ("--ServerApp.allow_root=True" in spawner.args) == (os.geteuid() == 0)
