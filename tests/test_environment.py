"""The set-up files agree with each other and with the README."""

from __future__ import annotations

import importlib.util
import re
from pathlib import Path

import pytest

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


def conda_pip_section() -> dict[str, str]:
    """The exact pins under environment.yml's ``pip:`` (packages installed from PyPI there too)."""
    pins = {}
    for line in (ROOT / "environment.yml").read_text().splitlines():
        match = re.match(r"^\s{6}- ([A-Za-z0-9_.-]+)==([0-9.]+)\s*(#.*)?$", line)
        if match:
            pins[match.group(1).lower()] = match.group(2)
    return pins


def test_conda_and_pip_name_the_same_packages():
    assert not set(conda_dependencies()) & set(conda_pip_section())
    assert sorted([*conda_dependencies(), *conda_pip_section()]) == sorted(pip_requirements())


def test_conda_pip_section_pins_match_pip_exactly():
    pip = pip_requirements()
    for name, version in conda_pip_section().items():
        assert pip[name] == version, (name, version, pip[name])


def test_conda_pins_match_pip_versions():
    """Each conda minor-version pin is the prefix of the exact pip pin."""
    pip = pip_requirements()
    for name, version in conda_dependencies().items():
        assert pip[name].startswith(version + "."), (name, version, pip[name])


def runtime_requirements() -> list[str]:
    """The names in requirements.txt's "Run time" section (what the module itself imports)."""
    text = (ROOT / "requirements.txt").read_text()
    section = text.split("# Run time", 1)[1].split("\n# ", 1)[0]
    return [line.split("==")[0].strip().lower() for line in section.splitlines() if "==" in line]


def test_pyproject_needs_the_same_runtime_packages_at_versions_the_pins_satisfy():
    """pip install . and requirements.txt move together: same run-time packages, pins above the floors."""
    text = (ROOT / "pyproject.toml").read_text()
    block = text.split("dependencies = [", 1)[1].split("]", 1)[0]
    floors = dict(re.findall(r'"([A-Za-z0-9_.-]+)>=([0-9.]+)"', block))
    assert sorted(name.lower() for name in floors) == sorted(runtime_requirements())
    pins = pip_requirements()
    for name, floor in floors.items():
        as_tuple = lambda version: tuple(int(part) for part in version.split("."))  # noqa: E731
        assert as_tuple(pins[name.lower()]) >= as_tuple(floor), (name, pins[name.lower()], floor)


def test_torch_and_torchvision_are_a_matching_pair():
    """torchvision is built against one torch release: 0.N pairs with torch 2.(N-15)."""
    pins = pip_requirements()
    assert int(pins["torchvision"].split(".")[1]) - 15 == int(pins["torch"].split(".")[1])


def test_ci_runs_the_readme_test_command():
    readme = (ROOT / "README.md").read_text()
    assert "make test" in readme
    assert "make test" in (ROOT / ".ci" / "run").read_text()


class Marked:
    """A test item as pytest_runtest_setup sees it, with one `requires` mark."""

    def __init__(self, why: str | None) -> None:
        self.mark = pytest.mark.requires(why).mark

    def get_closest_marker(self, name: str):
        return self.mark if name == "requires" else None


def test_a_missing_requirement_skips_here_and_fails_in_ci(monkeypatch):
    """The browser and hub tests must run in CI: there, a missing Chromium or npm is a failure, not a skip."""
    spec = importlib.util.spec_from_file_location("tests_conftest", ROOT / "tests" / "conftest.py")
    tests_conftest = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(tests_conftest)
    monkeypatch.delenv("CI", raising=False)
    tests_conftest.pytest_runtest_setup(Marked(None))  # nothing missing: the test runs
    with pytest.raises(pytest.skip.Exception, match="no chromium"):
        tests_conftest.pytest_runtest_setup(Marked("no chromium"))
    monkeypatch.setenv("CI", "true")
    tests_conftest.pytest_runtest_setup(Marked(None))
    with pytest.raises(pytest.fail.Exception, match="CI must run this test: no chromium"):
        tests_conftest.pytest_runtest_setup(Marked("no chromium"))
