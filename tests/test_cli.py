"""Section 8: the command line, end to end on tiny images with a random checkpoint."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from PIL import Image

import styletransfer_utils as st

ROOT = Path(__file__).resolve().parents[1]


def cli(*args: str, env: dict | None = None, timeout: float = 120) -> subprocess.CompletedProcess:
    """Run ``python styletransfer_utils.py ARGS`` as a user would."""
    return subprocess.run(
        [sys.executable, str(ROOT / "styletransfer_utils.py"), *args],
        capture_output=True, text=True, timeout=timeout, env={**os.environ, **(env or {})},
    )


@pytest.fixture()
def pair(tmp_path, content_image, style_image):
    return (
        str(st.save_image(content_image, tmp_path / "content.png")),
        str(st.save_image(style_image, tmp_path / "style.jpg")),
    )


def test_help_lists_every_option_and_exit_code():
    result = cli("--help")
    assert result.returncode == 0
    for option in ("--content", "--style", "--output", "--size", "--steps", "--content-weight", "--style-weight",
                   "--style-layer-weights", "--tv-weight", "--lr", "--optimizer", "--init", "--seed", "--device",
                   "--weights", "--precision", "--content-layer", "--scales"):
        assert option in result.stdout
    assert "130 interrupted" in result.stdout


def test_end_to_end_with_a_checkpoint(pair, checkpoint_path, tmp_path):
    """The command writes the image, reports the path, and names the weights it used."""
    output = tmp_path / "result.png"
    result = cli("--content", pair[0], "--style", pair[1], "--output", str(output), "--size", "48",
                 "--steps", "3", "--weights", str(checkpoint_path))
    assert result.returncode == 0, result.stderr
    assert f"Wrote {output}" in result.stdout
    assert str(checkpoint_path) in result.stderr  # "Weights: checkpoint ..."
    assert Image.open(output).size == (48, 36)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["content.png", "result.png", "style.jpg"]


def test_random_weights_are_announced(pair, tmp_path):
    result = cli("--content", pair[0], "--style", pair[1], "--output", str(tmp_path / "r.png"),
                 "--size", "32", "--steps", "1", "--weights", "random")
    assert result.returncode == 0, result.stderr
    assert "random" in result.stderr.lower() and "--weights imagenet" in result.stderr


def test_defaults_use_the_bundled_images(checkpoint_path, tmp_path):
    """With no --content/--style the bundled photo and style image are used."""
    output = tmp_path / "default.png"
    result = cli("--output", str(output), "--size", "32", "--steps", "1", env={st.WEIGHTS_ENV: str(checkpoint_path)})
    assert result.returncode == 0, result.stderr
    assert st.DEFAULT_CONTENT.exists() and st.DEFAULT_STYLE.exists()
    assert "STYLETRANSFER_VGG19_WEIGHTS" in result.stderr


def test_offline_without_weights_says_how_to_get_them(pair, tmp_path):
    """Where the checkpoint cannot be downloaded: exit code 4 and the three ways to provide it."""
    env = {st.WEIGHTS_ENV: "http://127.0.0.1:9/vgg19-dcbb9e9d.pth", "TORCH_HOME": str(tmp_path / "torch")}
    result = cli("--content", pair[0], "--style", pair[1], "--output", str(tmp_path / "x.png"), env=env, timeout=60)
    assert result.returncode == st.EXIT_WEIGHTS
    assert "Could not download" in result.stderr and "--weights random" in result.stderr
    assert "vgg19-dcbb9e9d.pth" in result.stderr
    assert not (tmp_path / "x.png").exists()


def test_exit_codes_for_bad_input(pair, checkpoint_path, tmp_path):
    common = ("--size", "32", "--steps", "1", "--weights", str(checkpoint_path))
    missing = cli("--content", str(tmp_path / "nope.jpg"), "--style", pair[1], *common)
    assert missing.returncode == st.EXIT_BAD_IMAGE and "No file at" in missing.stderr
    no_folder = cli("--content", pair[0], "--style", pair[1], "--output", str(tmp_path / "no" / "x.png"), *common)
    assert no_folder.returncode == st.EXIT_OUTPUT and "does not exist" in no_folder.stderr
    bad_steps = cli("--content", pair[0], "--style", pair[1], "--steps", "0", "--weights", str(checkpoint_path))
    assert bad_steps.returncode == st.EXIT_USAGE and "steps" in bad_steps.stderr
    bad_layer = cli("--content", pair[0], "--style", pair[1], "--style-layer-weights", "conv9_9=1", *common)
    assert bad_layer.returncode == st.EXIT_USAGE and "Valid names" in bad_layer.stderr


def test_main_in_process_with_layer_weights(pair, checkpoint_path, tmp_path, capsys):
    """main() can be called from Python and parses per-layer weights."""
    output = tmp_path / "p.jpg"
    code = st.main(["--content", pair[0], "--style", pair[1], "--output", str(output), "--size", "32",
                    "--steps", "2", "--weights", str(checkpoint_path), "--quiet",
                    "--style-layer-weights", "conv1_1=1,conv2_1=0.5", "--optimizer", "lbfgs", "--lr", "1"])
    assert code == 0 and output.exists()


def test_options_are_checked_before_any_download(pair, tmp_path):
    """A bad option fails at once with exit 2, not after (or instead of) fetching 548 MB of weights."""
    env = {st.WEIGHTS_ENV: "http://127.0.0.1:9/vgg19-dcbb9e9d.pth", "TORCH_HOME": str(tmp_path / "torch")}
    result = cli("--content", pair[0], "--style", pair[1], "--steps", "0", env=env)
    assert result.returncode == st.EXIT_USAGE and "steps" in result.stderr and "Loading" not in result.stderr
    missing = cli("--content", str(tmp_path / "none.jpg"), "--style", pair[1], env=env)
    assert missing.returncode == st.EXIT_BAD_IMAGE and "Loading" not in missing.stderr
