"""The set-up files agree with each other and with the README."""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
CONDA_NAMES = {"pytorch": "torch"}  # conda-forge name -> pip name


def pip_requirements() -> dict[str, str]:
    pins = {}
    for line in (ROOT / "requirements.txt").read_text().splitlines():
        line = line.split("#")[0].strip()
        if line:
            name, _, version = line.partition("==")
            pins[name.strip().lower()] = version.strip()
    return pins


def conda_dependencies() -> dict[str, str]:
    pins = {}
    for line in (ROOT / "environment.yml").read_text().splitlines():
        match = re.match(r"^\s{2}- ([A-Za-z0-9_.-]+)=([0-9.]+)\s*(#.*)?$", line)
        if match and match.group(1) != "python":
            pins[CONDA_NAMES.get(match.group(1), match.group(1)).lower()] = match.group(2)
    return pins


def test_conda_and_pip_name_the_same_packages():
    assert sorted(conda_dependencies()) == sorted(pip_requirements())


def test_conda_pins_match_pip_versions():
    """Each conda minor-version pin is the prefix of the exact pip pin."""
    pip = pip_requirements()
    for name, version in conda_dependencies().items():
        assert pip[name].startswith(version + "."), (name, version, pip[name])


def test_no_torchvision():
    """torchvision cannot be imported with the CPU torch here; the project builds VGG19 itself."""
    assert "torchvision" not in pip_requirements()
    assert "torchvision" not in (ROOT / "pyproject.toml").read_text()


def test_ci_runs_the_readme_test_command():
    readme = (ROOT / "README.md").read_text()
    assert "make test" in readme
    assert "make test" in (ROOT / ".ci" / "run").read_text()
