"""Shared fixtures: tiny images and random checkpoints in torchvision's format."""

from __future__ import annotations

import importlib.util
import os
import sys
from pathlib import Path
from types import ModuleType

import pytest
import torch
from PIL import Image

import styletransfer_utils as st
from checkpoints import torchvision_state_dict, write_checkpoint

__all__ = ["torchvision_state_dict", "write_checkpoint"]


@pytest.fixture(scope="session")
def checkpoint_path(tmp_path_factory) -> Path:
    """A features-only random checkpoint with a torch.hub-style hash in its name."""
    return write_checkpoint(tmp_path_factory.mktemp("weights"), torchvision_state_dict(seed=0))


@pytest.fixture(scope="session")
def model(checkpoint_path) -> torch.nn.Sequential:
    return st.load_vgg19(checkpoint_path, device="cpu")


@pytest.fixture()
def hub_dir(tmp_path, monkeypatch) -> Path:
    """An empty torch.hub cache for this test only."""
    directory = tmp_path / "hub"
    monkeypatch.setattr(torch.hub, "_hub_dir", str(directory))
    return directory


@pytest.fixture()
def no_weights_env(monkeypatch):
    monkeypatch.delenv(st.WEIGHTS_ENV, raising=False)


def load_benchmark(name: str) -> ModuleType:
    """``benchmarks/<name>.py`` as a module (the benchmarks are scripts, not a package)."""
    path = Path(__file__).resolve().parents[1] / "benchmarks" / f"{name}.py"
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    sys.modules.setdefault(name, module)
    spec.loader.exec_module(module)
    return module


def gradient_image(width: int, height: int) -> Image.Image:
    """A smooth colourful RGB test picture (no two neighbouring pixels equal)."""
    x = torch.linspace(0, 1, width).view(1, width).expand(height, width)
    y = torch.linspace(0, 1, height).view(height, 1).expand(height, width)
    rgb = torch.stack([x, y, (x + y) / 2], dim=-1).mul(255).byte().numpy()
    return Image.fromarray(rgb)


def stripes_image(width: int, height: int, period: int = 6) -> Image.Image:
    """A high-contrast striped picture, a 'style' with obvious texture."""
    image = Image.new("RGB", (width, height), (250, 220, 30))
    pixels = image.load()
    for x in range(width):
        for y in range(height):
            if (x + y) // period % 2:
                pixels[x, y] = (20, 40, 200)
    return image


@pytest.fixture()
def content_image() -> Image.Image:
    return gradient_image(64, 48)


@pytest.fixture()
def style_image() -> Image.Image:
    return stripes_image(40, 56)


def pytest_runtest_setup(item: pytest.Item) -> None:
    """``@pytest.mark.requires(why)``: ``why`` says what this machine lacks for the test (None: nothing).
    Such a test is skipped on a developer's machine, and fails in CI (CI=true), which must run it: .ci/run
    installs Chromium and Node.js, so a skip there would hide a broken set-up."""
    marker = item.get_closest_marker("requires")
    why = marker.args[0] if marker is not None and marker.args else None
    if why is not None:
        if os.environ.get("CI") == "true":
            pytest.fail(f"CI must run this test: {why}", pytrace=False)
        pytest.skip(why)


@pytest.fixture(scope="module")
def browser():
    """Debian's Chromium under Playwright, for tests/test_browser.py and tests/test_hub.py (never a browser
    Playwright downloads); each test is skipped (or fails in CI) before asking for it when Chromium is missing."""
    from playwright.sync_api import sync_playwright
    from test_browser import CHROMIUM, CHROMIUM_ARGS

    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=str(CHROMIUM), headless=True, args=CHROMIUM_ARGS)
        try:
            yield chromium
        finally:
            chromium.close()
