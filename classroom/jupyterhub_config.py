"""JupyterHub configuration for a class working through the style-transfer notebooks on one server.

It sets what this course needs, each in one place below: (1) the memory and CPU each student's server
may use, (2) the environment of every student's kernels (the offline VGG19 weights), (3) the course
material copied into each student's home the first time their server starts, and (4) JupyterLab as the
page students land on. It chooses no authenticator, spawner, proxy or address: those belong to the
installation. tests/test_hub.py serves a class of three with this very file, loaded by a file of the
test's own that then sets the test's authenticator, spawner and ports. classroom/README.md has the steps.

With The Littlest JupyterHub (TLJH), link this file into TLJH's folder of extra configuration, which TLJH
loads after its own settings (so the limits here replace `tljh-config set limits.*`), and reload:

    sudo ln -s /opt/styletransfer/classroom/jupyterhub_config.py /opt/tljh/config/jupyterhub_config.d/styletransfer.py
    sudo tljh-config reload hub

A link, not a copy: the default paths below are found from the file's real place in the checkout. TLJH
brings the rest: its authenticator, its systemd spawner (which enforces the limits), its proxy (Traefik)
and its idle culler.

With plain JupyterHub, start it with this file, as root, from a folder of its own (it writes its database
and cookie secret into the current folder), with the course's environment first on the PATH (the
students' servers inherit the PATH, and with it the course's Python):

    cd /srv/jupyterhub
    sudo env PATH=/opt/styletransfer/.venv/bin:$PATH jupyterhub -f /opt/styletransfer/classroom/jupyterhub_config.py

It then uses JupyterHub's defaults: students log in with their Unix accounts on the server (PAM), each
server runs as its student (LocalProcessSpawner), and the hub listens on port 8000 of every address,
without TLS: put it behind a TLS proxy, or set `c.JupyterHub.ssl_cert` and `ssl_key`. Write such lines
at the end of this file or in a file of your own that loads this one (`load_subconfig(PATH)`).
"""

from __future__ import annotations

import asyncio
import logging
import math
import os
import pwd
import shutil
import stat
import tempfile
from pathlib import Path

from jupyterhub.spawner import SimpleLocalProcessSpawner

c = get_config()  # noqa: F821 - JupyterHub defines get_config for the files it loads

# The checkout this file belongs to (resolved, as TLJH loads it through a link)
PROJECT = Path(__file__).resolve().parents[1]

# =============================================================================
# 1. What each student's server may use
# =============================================================================
# Measured by benchmarks/capacity.py (notebooks/TEACHING.md, "How many students a server holds": the table,
# the command, the machine): a student's JupyterLab server takes 118 MiB; the heaviest kernel of the main
# paths (notebook 07, section 2) peaks at 1205 MiB resident, and of whole notebooks 1548 MiB (07's optional
# High resolution). MEM_GUARANTEE covers the main-path peak with its server, 1323 MiB, rounded up; MEM_LIMIT
# the whole-notebook peak with its server and one more kernel left open (an idle kernel holds up to 786 MiB
# of its own), 2452 MiB, rounded up. One core each, and a class of two students per core on average
# (CPU_GUARANTEE): with one thread each, two runs on one core each take twice as long as one alone.
# JupyterHub reads "G" as GiB (1.4G = 1434 MiB). Change the figures here and in zero-to-jupyterhub.yaml,
# which repeats them for Kubernetes (tests/test_hub.py keeps the two equal).
MEM_LIMIT = "2.5G"
MEM_GUARANTEE = "1.4G"
CPU_LIMIT = 1.0
CPU_GUARANTEE = 0.5
#
# Who enforces them, honestly:
# - TLJH's systemd spawner enforces the two limits (systemd's MemoryMax and CPUQuota); it ignores the
#   guarantees.
# - Kubernetes (zero-to-jupyterhub.yaml) enforces the limits and reserves the guarantees on a node.
# - Plain JupyterHub's LocalProcessSpawner (and SimpleLocalProcessSpawner, which the test uses) enforces
#   none of them: it only tells the server (MEM_LIMIT, CPU_LIMIT... in its environment, which the
#   jupyter-resource-usage extension displays). There, one student can use the whole machine.
c.Spawner.mem_limit = MEM_LIMIT
c.Spawner.mem_guarantee = MEM_GUARANTEE
c.Spawner.cpu_limit = CPU_LIMIT
c.Spawner.cpu_guarantee = CPU_GUARANTEE
# As many torch threads as the CPU limit allows. torch starts one thread per core of the whole machine: it
# does not read the limit, which systemd and Kubernetes enforce as a share of time (a CFS quota), not as
# cores. Students' threads then outnumber the cores, wait for each other, and every run slows: measured on
# 2 cores, 2 students running notebook 00 at once took 149 s each with torch's threads, and 50 s with one
# thread each, against 37 to 41 s and 50 s for one student alone (notebooks/TEACHING.md, "How many students
# a server holds").
THREADS = max(1, math.floor(CPU_LIMIT))

# =============================================================================
# 2. The students' environment
# =============================================================================
# The VGG19 weights, provided offline: the 80 MB features-only copy, placed on the server and readable by
# every student (README.md, "Weights"; notebooks/TEACHING.md, "Preparing a classroom without internet"):
#     .venv/bin/styletransfer features-only imagenet vgg19-features.pth
# A hub started with STYLETRANSFER_VGG19_WEIGHTS set passes that file on instead (the test does).
WEIGHTS = os.environ.get("STYLETRANSFER_VGG19_WEIGHTS") or "/srv/styletransfer/vgg19-features.pth"
# The notebooks' image size and step count for the whole class, if not each notebook's own: on slow CPUs
# notebooks/TEACHING.md ("Plans for a class") suggests {"STYLETRANSFER_SIZE": "128", "STYLETRANSFER_STEPS": "40"}.
CLASS_SETTINGS: dict[str, str] = {}
# Variables passed on from the hub's own environment when set there, after CLASS_SETTINGS (the test sets
# them: a small size, few steps, matplotlib's agg backend)
PASSED_ON = ("STYLETRANSFER_SIZE", "STYLETRANSFER_STEPS", "MPLBACKEND")

c.Spawner.environment.update({
    "OMP_NUM_THREADS": str(THREADS),  # section 1
    "STYLETRANSFER_VGG19_WEIGHTS": WEIGHTS,
    **CLASS_SETTINGS,
    **{name: os.environ[name] for name in PASSED_ON if name in os.environ},
})
if not Path(WEIGHTS).is_file():
    logging.getLogger("JupyterHub").warning(
        "No weights at %s (STYLETRANSFER_VGG19_WEIGHTS): the students' notebooks will stop at load_vgg19. "
        "See classroom/README.md.", WEIGHTS)

# =============================================================================
# 3. The course material, copied into each student's home
# =============================================================================
# Each file and folder of MATERIAL that a student's home lacks is copied there when their server starts:
# everything on the first start, and what the teacher adds later (a new assignment) on the next one.
# Nothing already there is replaced, so students' work survives restarts; a student who deletes a folder
# gets a fresh copy of it at the next start. By default MATERIAL is course/release/, the release versions
# of the nbgrader assignments that `make student` builds: one folder per notebook, with its assets/ and
# figures/, each of which becomes a folder of the student's home. (To hand assignments out through
# nbgrader's exchange instead, delete the line `c.Spawner.pre_spawn_hook = prepare_student` below.)
# The test passes a folder holding a copy of notebooks/, assets/ and docs/figures/.
MATERIAL = Path(os.environ.get("STYLETRANSFER_HUB_MATERIAL") or PROJECT / "course" / "release")
if not MATERIAL.is_dir():
    logging.getLogger("JupyterHub").warning(
        "No course material at %s (STYLETRANSFER_HUB_MATERIAL): students' servers will not start "
        "until it exists. See classroom/README.md.", MATERIAL)


def student_home(spawner) -> tuple[Path, pwd.struct_passwd | None]:
    """The folder a student's server starts in, and the Unix account it runs as (None: the hub's own)."""
    if isinstance(spawner, SimpleLocalProcessSpawner):  # a folder per student, all run as the hub's account
        return Path(spawner.home_dir), None
    if type(spawner).__name__ == "UserCreatingSpawner":  # TLJH's: it creates the account after this hook runs
        from tljh.normalize import generate_system_username
        from tljh.user import ensure_user

        name = generate_system_username("jupyter-" + spawner.user.name)
        ensure_user(name)  # what its start() does anyway: useradd --create-home, once
    else:  # LocalProcessSpawner: the student's own Unix account
        name = spawner.user.name
    try:
        account = pwd.getpwnam(name)
    except KeyError:
        raise RuntimeError(f"No Unix account {name!r} on this server for student {spawner.user.name!r}") from None
    return Path(account.pw_dir), account


def copy_material(source: Path, home: Path, account: pwd.struct_passwd | None) -> list[str]:
    """Copy each entry of ``source`` that ``home`` lacks, owned by ``account``; returns the names copied.

    Each entry is copied into a hidden folder of the hub's own first, then renamed into place, so a copy
    cut short never passes for a complete one.
    """
    if not source.is_dir():
        raise RuntimeError(f"The course material folder {source} does not exist: tell your teacher")
    if not home.exists():  # a home the spawner would create itself, later
        home.mkdir(parents=True)
        if account is not None:
            os.chown(home, account.pw_uid, account.pw_gid)
    copied = []
    for entry in sorted(source.iterdir()):
        target = home / entry.name
        if target.exists() or target.is_symlink():
            continue
        staging = Path(tempfile.mkdtemp(prefix=".styletransfer-copy-", dir=home))
        try:
            copy = staging / entry.name
            if entry.is_dir():
                shutil.copytree(entry, copy)
            else:
                shutil.copy2(entry, copy)
            for path in [copy, *copy.rglob("*")]:
                if path.is_symlink():
                    continue
                path.chmod(path.stat().st_mode | stat.S_IWUSR)  # the student edits and saves
                if account is not None:
                    os.chown(path, account.pw_uid, account.pw_gid, follow_symlinks=False)
            copy.rename(target)
        finally:
            shutil.rmtree(staging, ignore_errors=True)
        copied.append(entry.name)
    return copied


async def prepare_student(spawner) -> None:
    """Before each server starts: the course material into the student's home (see MATERIAL)."""
    home, account = await asyncio.to_thread(student_home, spawner)
    copied = await asyncio.to_thread(copy_material, MATERIAL, home, account)
    if copied:
        spawner.log.info("Copied %s from %s into %s", ", ".join(copied), MATERIAL, home)
    if isinstance(spawner, SimpleLocalProcessSpawner) and os.geteuid() == 0:
        # this spawner runs every server as the hub's own account; Jupyter refuses root unless told
        flag = "--ServerApp.allow_root=True"
        spawner.args = [*spawner.args, flag] if flag not in spawner.args else spawner.args


c.Spawner.pre_spawn_hook = prepare_student

# =============================================================================
# 4. What students see, and a class arriving at once
# =============================================================================
c.Spawner.default_url = "/lab"  # JupyterLab, as TLJH's `tljh-config set user_environment.default_app jupyterlab`
# A class logging in together starts its servers together; the defaults (60 s to start, 30 s to answer) are
# short for that on a small server.
c.Spawner.start_timeout = 180
c.Spawner.http_timeout = 120

# Plain JupyterHub's proxy: configurable-http-proxy, which `make setup` installs with npm into .venv/node.
# Without that copy JupyterHub looks for `configurable-http-proxy` on PATH (npm install -g). TLJH and
# Kubernetes bring their own proxy and never read this.
PROXY = PROJECT / ".venv" / "node" / "node_modules" / ".bin" / "configurable-http-proxy"
if PROXY.exists():
    c.ConfigurableHTTPProxy.command = [str(PROXY)]

# Idle servers hold their memory until stopped. TLJH culls them already (after 10 min without activity:
# `sudo tljh-config set services.cull.timeout 3600` for a lesson's hour); so does Zero to JupyterHub (1 h,
# `cull.timeout`). On plain JupyterHub, culling needs the jupyterhub-idle-culler package, which this course
# does not install; with it, for example:
#     c.JupyterHub.load_roles = [{"name": "idle-culler", "scopes": ["list:users", "read:users:activity", "servers"],
#                                 "services": ["idle-culler"]}]
#     c.JupyterHub.services = [{"name": "idle-culler",
#                               "command": [sys.executable, "-m", "jupyterhub_idle_culler", "--timeout=3600"]}]
# Without it, a server can stop itself once idle: c.Spawner.args = ["--ServerApp.shutdown_no_activity_timeout=3600"].
