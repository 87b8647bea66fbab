"""Notebook 06's studio in a real browser: JupyterLab in headless Chromium, driven by Playwright.

The nbval run of notebook 06 executes its cells but never presses a button. This test does what a
student does: it starts ``jupyter lab`` on a temporary copy of the notebooks, opens notebook 06 in
Debian's Chromium, runs all cells, moves the β slider, sets a long run, presses Run, watches the
preview and the loss readout change, presses Stop, and checks that the run ends. Screenshots go to
``test-output/browser/`` at the repository root.

It needs Debian's Chromium (``apt-get install chromium``) and the ``playwright`` package
(requirements.txt); without either it is skipped (in CI, with CI=true, it fails instead). Playwright's
own browser download is never used.
"""

from __future__ import annotations

import json
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

import pytest

ROOT = Path(__file__).resolve().parents[1]
CHROMIUM = Path("/usr/bin/chromium")
SCREENSHOTS = ROOT / "test-output" / "browser"
NOTEBOOK = "06_tuning_the_style_weights.ipynb"
# The notebook's own steps (its first run and the β sweep) stay short, as under nbval; the browser then
# asks the studio for a run long enough to be stopped halfway (RUN_STEPS, typed into the steps control).
KERNEL_STEPS = "4"
RUN_STEPS = "1000"  # the steps slider's maximum
BETA = "3"  # typed into the β slider's readout (the slider starts at 1)
# Readiness waits are generous (a 2-core machine that is busy elsewhere); nothing here measures speed.
WAIT_MS = 120_000
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync"]

# The studio's DOM contract (styletransfer_tools/studio.py): every element carries one of these CSS
# classes (ipywidgets' add_class). All the selectors the test relies on are here.
SEL = {
    "studio": ".st-studio",
    "preview": ".st-preview",  # an ipywidgets Image: an <img> whose src changes with every new PNG
    "loss_plot": ".st-loss-plot",
    "readout": ".st-readout",  # current step and losses; "done" or "stopped early" when a run ends
    "run": ".st-run",
    "stop": ".st-stop",
    "beta": ".st-style_weight",  # FloatLogSlider; its .widget-readout is editable (type, then Enter)
    "steps": ".st-steps",
    # beyond the contract above, but in studio.py: the last runs' thumbnails, captioned "content 1 · style 3 · tv 0 ..."
    # (the kernel's own account of the settings a run used)
    "history": ".st-history",
}
SLIDER_READOUT = ".widget-readout"
ENDED = re.compile(r"done|stopped early")
STOPPED = re.compile(r"stopped early")

# JupyterLab's own markup (4.x)
LAB = {
    "cell": ".jp-NotebookPanel:not(.lm-mod-hidden) .jp-Notebook .jp-Cell",
    "status_bar": "#jp-main-statusbar",
    "menu_run": "#jp-MainMenu .lm-MenuBar-itemLabel:text-is('Run')",
    "run_all": ".lm-Menu-item:has(.lm-Menu-itemLabel:text-is('Run All Cells'))",
    "menu_file": "#jp-MainMenu .lm-MenuBar-itemLabel:text-is('File')",
    "save": ".lm-Menu-item:has(.lm-Menu-itemLabel:text-is('Save Notebook'))",
    "error_output": ".jp-OutputArea-output[data-mime-type='application/vnd.jupyter.error']",
}
# the status bar names the kernel and its state: "No Kernel | Initializing", then "Python 3 (ipykernel) | Idle"
KERNEL_IDLE = re.compile(r"^(?!No Kernel).+ \| Idle$")


def missing_requirement() -> str | None:
    """Why the browser test cannot run here, or None."""
    if not CHROMIUM.exists():
        return f"{CHROMIUM} not found: install Debian's chromium (apt-get install chromium) to run the browser test"
    try:
        import playwright.sync_api  # noqa: F401
    except ImportError:
        return ("the playwright package is missing: .venv/bin/pip install -r requirements.txt "
                "(the test drives Debian's chromium: apt-get install chromium)")
    return None


pytestmark = [pytest.mark.browser, pytest.mark.requires(missing_requirement())]


# ---------------------------------------------------------------- the JupyterLab server


@dataclass
class Lab:
    url: str
    token: str
    log: Path

    def log_tail(self, chars: int = 4000) -> str:
        try:
            return self.log.read_text(errors="replace")[-chars:]
        except OSError:
            return "(no server log)"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def write_json(path: Path, data: dict) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(data))


def private_jupyter_dirs(home: Path) -> dict[str, str]:
    """Config, data, runtime, settings and workspace folders of the server's own, so the user's are
    untouched; the Lab settings turn the news and update checks off and render every cell."""
    dirs = {name: home / name.lower() for name in ("JUPYTER_CONFIG_DIR", "JUPYTER_DATA_DIR", "JUPYTER_RUNTIME_DIR",
                                                    "JUPYTERLAB_SETTINGS_DIR", "JUPYTERLAB_WORKSPACES_DIR",
                                                    "IPYTHONDIR")}
    for folder in dirs.values():
        folder.mkdir(parents=True)
    settings = dirs["JUPYTERLAB_SETTINGS_DIR"]
    write_json(settings / "@jupyterlab/apputils-extension/notification.jupyterlab-settings",
               {"fetchNews": "false", "checkForUpdates": False})
    # every cell in the DOM (no virtual scrolling), so prompts and outputs can be read anywhere
    write_json(settings / "@jupyterlab/notebook-extension/tracker.jupyterlab-settings", {"windowingMode": "none"})
    write_json(dirs["JUPYTER_CONFIG_DIR"] / "labconfig/page_config.json",
               {"disabledExtensions": {"@jupyterlab/apputils-extension:announcements": True}})
    return {name: str(folder) for name, folder in dirs.items()}


def request(url: str, method: str = "GET", timeout: float = 5) -> int:
    with urllib.request.urlopen(urllib.request.Request(url, method=method, data=b"" if method == "POST" else None),
                                timeout=timeout) as response:
        return response.status


def children_of(pid: int) -> list[int]:
    """Direct children of a process (the kernels, which jupyter_client starts in their own sessions)."""
    found = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[1]) == pid:
            found.append(int(stat.parent.name))
    return found


def stop_server(server: subprocess.Popen, lab: Lab) -> None:
    """Shut the server and its kernels down: politely through the API, then by signal."""
    kernels = children_of(server.pid)
    if server.poll() is None:
        try:
            request(f"{lab.url}/api/shutdown?token={lab.token}", method="POST")
            server.wait(timeout=20)
        except (OSError, urllib.error.URLError, subprocess.TimeoutExpired):
            pass
    if server.poll() is None:
        os.killpg(server.pid, signal.SIGTERM)
        try:
            server.wait(timeout=10)
        except subprocess.TimeoutExpired:
            os.killpg(server.pid, signal.SIGKILL)
            server.wait(timeout=10)
    for pid in kernels:
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass


@pytest.fixture(scope="module")
def lab() -> Iterator[Lab]:
    """``jupyter lab`` on a temporary copy of notebooks/ and assets/, with the nbval environment."""
    home = Path(tempfile.mkdtemp(prefix="styletransfer-browser-"))
    server = None
    try:
        (home / "notebooks").mkdir()
        for notebook in (ROOT / "notebooks").glob("*.ipynb"):
            shutil.copy2(notebook, home / "notebooks")
        shutil.copytree(ROOT / "assets", home / "assets")  # the notebooks read ../assets/...
        # os.environ carries STYLETRANSFER_SIZE, _STEPS, _VGG19_WEIGHTS and MPLBACKEND from conftest.py
        env = {**os.environ, **private_jupyter_dirs(home), "STYLETRANSFER_STEPS": KERNEL_STEPS, "MPLBACKEND": "agg"}
        assert env.get("STYLETRANSFER_VGG19_WEIGHTS"), "conftest.py should have written a random checkpoint"
        token, port = secrets.token_hex(24), free_port()
        lab = Lab(f"http://127.0.0.1:{port}", token, home / "server.log")
        command = [
            sys.executable, "-m", "jupyterlab", "--no-browser",
            "--ServerApp.ip=127.0.0.1", f"--ServerApp.port={port}", "--ServerApp.port_retries=0",
            f"--IdentityProvider.token={token}", f"--ServerApp.root_dir={home / 'notebooks'}",
            "--ServerApp.terminals_enabled=False",
            "--LabApp.news_url=None", "--LabApp.check_for_updates_class=jupyterlab.NeverCheckForUpdate",
            "--LabApp.extension_manager=readonly",
        ] + (["--allow-root"] if os.geteuid() == 0 else [])  # CI containers run as root
        with lab.log.open("wb") as log:
            server = subprocess.Popen(command, cwd=home / "notebooks", env=env, stdin=subprocess.DEVNULL,
                                      stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
        deadline = time.monotonic() + WAIT_MS / 1000
        while True:
            if server.poll() is not None:
                pytest.fail(f"jupyter lab exited with code {server.returncode}:\n{lab.log_tail()}")
            try:
                if request(f"{lab.url}/api/status?token={token}") == 200:
                    break
            except (OSError, urllib.error.URLError):
                pass
            if time.monotonic() > deadline:
                pytest.fail(f"jupyter lab did not answer within {WAIT_MS // 1000} s:\n{lab.log_tail()}")
            time.sleep(0.5)
        yield lab
    finally:
        if server is not None:
            stop_server(server, lab)
        shutil.rmtree(home, ignore_errors=True)


# ---------------------------------------------------------------- the browser


@pytest.fixture
def page(browser, lab):
    context = browser.new_context(viewport={"width": 1400, "height": 1000})
    page = context.new_page()
    page.set_default_timeout(WAIT_MS)
    page.console_errors = []
    page.on("console", lambda message: message.type == "error" and page.console_errors.append(message.text))
    page.on("pageerror", lambda error: page.console_errors.append(str(error)))
    try:
        yield page
    finally:
        context.close()


def screenshot(page, name: str) -> None:
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SCREENSHOTS / name), full_page=False)


def wait_until_every_cell_ran(page, who: str = "", wait_ms: int = WAIT_MS) -> None:
    """Every code cell shows an execution count (not [*] or [ ]), then the kernel is idle; or a cell failed
    (Lab then drops the cells queued after it), which the caller reports. ``who`` starts the failure's
    message (tests/test_hub.py: the student's name)."""
    from playwright.sync_api import TimeoutError as PlaywrightTimeout

    prompts = page.locator(LAB["cell"] + ".jp-CodeCell .jp-InputArea-prompt")
    try:
        page.wait_for_function(
            """([cells, error]) => {
                const prompts = [...document.querySelectorAll(cells + '.jp-CodeCell .jp-InputArea-prompt')];
                return document.querySelector(error) !== null
                    || (prompts.length > 0 && prompts.every(p => /^\\[\\d+\\]:$/.test(p.textContent.trim())));
            }""",
            arg=[LAB["cell"], LAB["error_output"]], timeout=wait_ms, polling=250)
    except PlaywrightTimeout:
        pytest.fail(f"{who + ': ' if who else ''}Run All did not finish within {wait_ms // 1000} s; prompts: "
                    f"{prompts.all_inner_texts()}")
    kernel_idle(page).wait_for()


def kernel_idle(page):
    return page.locator(LAB["status_bar"]).get_by_text(KERNEL_IDLE)


def set_slider(slider, value: str) -> str:
    """Type a value into an ipywidgets slider's editable readout and press Enter; returns the readout."""
    readout = slider.locator(SLIDER_READOUT)
    readout.click()
    readout.fill(value)
    readout.press("Enter")
    return readout.inner_text()


def new_src(preview, old: str) -> str:
    """Wait for the preview to show another picture (a new PNG gets a new blob: URL); returns it."""
    from playwright.sync_api import expect

    expect(preview).not_to_have_attribute("src", old, timeout=WAIT_MS)
    return preview.get_attribute("src") or ""


# ---------------------------------------------------------------- the test


def test_studio_runs_and_stops_in_jupyterlab(page, lab):
    from playwright.sync_api import expect

    expect.set_options(timeout=WAIT_MS)  # Playwright's default for expect() is 5 s
    for old in [*SCREENSHOTS.glob("*.png"), SCREENSHOTS / "jupyter-server.log"]:  # only this run's files
        old.unlink(missing_ok=True)
    try:
        page.goto(f"{lab.url}/lab/tree/{NOTEBOOK}?reset&token={lab.token}")
        page.locator(LAB["cell"]).first.wait_for()
        kernel_idle(page).wait_for()
        screenshot(page, "01-loaded.png")

        # Run > Run All Cells, then wait for the last cell and an idle kernel
        page.locator(LAB["menu_run"]).click()
        page.locator(LAB["run_all"]).click()
        wait_until_every_cell_ran(page)
        errors = page.locator(LAB["error_output"])
        assert errors.count() == 0, "a cell raised:\n" + "\n".join(errors.all_inner_texts())

        studio = page.locator(SEL["studio"])
        expect(studio).to_have_count(1)
        studio.scroll_into_view_if_needed()
        preview, readout = studio.locator(SEL["preview"]), studio.locator(SEL["readout"])
        loss_plot = studio.locator(SEL["loss_plot"])
        run, stop = studio.locator(SEL["run"]), studio.locator(SEL["stop"])
        expect(run).to_be_enabled()  # the notebook's own run has ended
        studio.evaluate("element => element.scrollIntoView({block: 'start'})")  # the whole studio in the pictures
        screenshot(page, "02-studio.png")

        # β: 1 -> 3, and a run long enough to be stopped halfway
        beta = studio.locator(SEL["beta"])
        before = beta.locator(SLIDER_READOUT).inner_text()
        shown = set_slider(beta, BETA)
        assert shown != before and float(shown) == pytest.approx(float(BETA), rel=0.01), (before, shown)
        assert set_slider(studio.locator(SEL["steps"]), RUN_STEPS) == RUN_STEPS

        history = studio.locator(SEL["history"])
        src, text_before = preview.get_attribute("src") or "", readout.inner_text()
        plot_before, runs_at_beta = loss_plot.get_attribute("src"), history.inner_text().count(f"style {BETA} ")
        run.click()
        expect(stop).to_be_enabled()
        texts = set()
        for _ in range(2):  # two new pictures, and the readout's text with each
            src = new_src(preview, src)
            texts.add(readout.inner_text())
        assert text_before not in texts and len(texts) == 2, f"the readout did not update: {text_before!r}, {texts}"
        assert not ENDED.search(readout.inner_text()), "the run ended before Stop: raise RUN_STEPS"
        expect(run).to_be_disabled()
        screenshot(page, "03-running.png")

        stop.click()
        expect(run).to_be_enabled()
        expect(readout).to_contain_text(STOPPED)
        expect(stop).to_be_disabled()
        expect(loss_plot).not_to_have_attribute("src", plot_before or "")
        # the kernel's record of the run that just ended shows the β typed into the slider
        expect(history).to_contain_text(f"style {BETA} ")
        assert history.inner_text().count(f"style {BETA} ") == runs_at_beta + 1, history.inner_text()
        screenshot(page, "04-stopped.png")
    except Exception:
        screenshot(page, "failure.png")
        shutil.copy(lab.log, SCREENSHOTS / "jupyter-server.log")
        print(f"browser console errors: {page.console_errors[-20:]}\nserver log:\n{lab.log_tail()}")
        raise
