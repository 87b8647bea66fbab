"""The command line (styletransfer_tools/cli.py), end to end on tiny images with a random checkpoint."""

from __future__ import annotations

import dataclasses
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from PIL import Image

import styletransfer_utils as st
from styletransfer_tools import cli as cli_module
from styletransfer_tools import files

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
        str(files.save_image(content_image, tmp_path / "content.png")),
        str(files.save_image(style_image, tmp_path / "style.jpg")),
    )


@pytest.mark.slow
def test_help_lists_every_option_and_exit_code():
    result = cli("--help")
    assert result.returncode == 0
    for option in ("--content", "--style", "--output", "--size", "--steps", "--content-weight", "--style-weight",
                   "--style-layer-weights", "--tv-weight", "--lr", "--optimizer", "--init", "--seed", "--device",
                   "--weights", "--precision", "--content-layer", "--scales"):
        assert option in result.stdout
    assert "130 interrupted" in result.stdout


@pytest.mark.slow
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


@pytest.mark.slow
def test_random_weights_are_announced(pair, tmp_path):
    result = cli("--content", pair[0], "--style", pair[1], "--output", str(tmp_path / "r.png"),
                 "--size", "32", "--steps", "1", "--weights", "random")
    assert result.returncode == 0, result.stderr
    assert "random" in result.stderr.lower() and "--weights imagenet" in result.stderr


@pytest.mark.slow
def test_defaults_use_the_bundled_images(checkpoint_path, tmp_path):
    """With no --content/--style the run reads the bundled photo and style image (its record says so),
    and the result has the bundled photo's shape."""
    output, record = tmp_path / "default.png", tmp_path / "run.json"
    result = cli("--output", str(output), "--record", str(record), "--size", "32", "--steps", "1",
                 env={st.WEIGHTS_ENV: str(checkpoint_path)})
    assert result.returncode == 0, result.stderr
    facts = json.loads(record.read_text())
    assert facts["content"] == str(st.DEFAULT_CONTENT) and facts["style"] == [str(st.DEFAULT_STYLE)]
    assert Image.open(output).size == st.resize_longer_side(Image.open(st.DEFAULT_CONTENT), 32).size
    assert "STYLETRANSFER_VGG19_WEIGHTS" in result.stderr and "STYLETRANSFER_VGG19_WEIGHTS" in facts["weights_source"]


@pytest.mark.slow
def test_offline_without_weights_says_how_to_get_them(pair, tmp_path):
    """Where the checkpoint cannot be downloaded: exit code 4 and the three ways to provide it."""
    env = {st.WEIGHTS_ENV: "http://127.0.0.1:9/vgg19-dcbb9e9d.pth", "TORCH_HOME": str(tmp_path / "torch")}
    result = cli("--content", pair[0], "--style", pair[1], "--output", str(tmp_path / "x.png"), env=env, timeout=60)
    assert result.returncode == cli_module.EXIT_WEIGHTS
    assert "Could not download" in result.stderr and "--weights random" in result.stderr
    assert "vgg19-dcbb9e9d.pth" in result.stderr
    assert not (tmp_path / "x.png").exists()


@pytest.mark.slow
def test_exit_codes_for_bad_input(pair, checkpoint_path, tmp_path):
    common = ("--size", "32", "--steps", "1", "--weights", str(checkpoint_path))
    missing = cli("--content", str(tmp_path / "nope.jpg"), "--style", pair[1], *common)
    assert missing.returncode == cli_module.EXIT_BAD_IMAGE and "No file at" in missing.stderr
    no_folder = cli("--content", pair[0], "--style", pair[1], "--output", str(tmp_path / "no" / "x.png"), *common)
    assert no_folder.returncode == cli_module.EXIT_OUTPUT and "does not exist" in no_folder.stderr
    bad_steps = cli("--content", pair[0], "--style", pair[1], "--steps", "0", "--weights", str(checkpoint_path))
    assert bad_steps.returncode == cli_module.EXIT_USAGE and "steps" in bad_steps.stderr
    bad_layer = cli("--content", pair[0], "--style", pair[1], "--style-layer-weights", "conv9_9=1", *common)
    assert bad_layer.returncode == cli_module.EXIT_USAGE and "Valid names" in bad_layer.stderr


def test_main_in_process_with_layer_weights(pair, checkpoint_path, tmp_path, monkeypatch):
    """main() can be called from Python; the per-layer weights, optimiser and lr reach `stylize`,
    and change the run."""
    calls = []
    real_stylize = cli_module.stylize

    def recording_stylize(content, style, settings, **kwargs):
        result = real_stylize(content, style, settings, **kwargs)
        calls.append(result)
        return result

    monkeypatch.setattr(cli_module, "stylize", recording_stylize)
    common = ["--content", pair[0], "--style", pair[1], "--size", "32", "--steps", "2", "--quiet",
              "--weights", str(checkpoint_path), "--optimizer", "adam", "--lr", "0.05"]
    assert cli_module.main([*common, "--output", str(tmp_path / "p.jpg"),
                            "--style-layer-weights", "conv1_1=1,conv2_1=0.5"]) == 0
    assert cli_module.main([*common, "--output", str(tmp_path / "q.jpg")]) == 0
    layered, default = calls
    assert layered.settings.style_layer_weights == {"conv1_1": 1.0, "conv2_1": 0.5}
    assert (layered.settings.optimizer, layered.settings.lr) == ("adam", 0.05)
    assert default.settings.style_layer_weights is None
    assert layered.history.style != default.history.style
    assert Image.open(tmp_path / "p.jpg").size == (32, 24)


@pytest.mark.slow
def test_errors_are_translated_into_flags(pair, tmp_path):
    """The library names Python parameters; the command line names its flags."""
    negative = cli("--content", pair[0], "--style", pair[1], "--style-weight", "-1", "--weights", "random")
    assert negative.returncode == cli_module.EXIT_USAGE
    assert "--style-weight must be at least 0" in negative.stderr and "style_weight" not in negative.stderr
    missing = cli("--content", pair[0], "--style", pair[1], "--weights", str(tmp_path / "none.pth"))
    assert missing.returncode == cli_module.EXIT_WEIGHTS
    assert "--weights random" in missing.stderr and 'weights="' not in missing.stderr


@pytest.mark.slow
def test_record_holds_every_setting(pair, checkpoint_path, tmp_path):
    """--record writes every field of Settings, the weights used and the loss history of each step."""
    record = tmp_path / "run.json"
    result = cli("--content", pair[0], "--style", pair[1], "--output", str(tmp_path / "r.png"), "--size", "32",
                 "--steps", "3", "--style-weight", "2", "--weights", str(checkpoint_path), "--record", str(record))
    assert result.returncode == 0, result.stderr
    facts = json.loads(record.read_text())
    assert set(facts["settings"]) == {f.name for f in dataclasses.fields(st.Settings)}
    assert facts["settings"]["style_weight"] == 2.0 and facts["steps_run"] == 3
    assert len(facts["history"]["total"]) == 3 and str(checkpoint_path) in facts["weights_source"]
    assert st.Settings(**facts["settings"]).style_weight == 2.0  # a record's settings make a run again


@pytest.mark.slow
def test_options_are_checked_before_any_download(pair, tmp_path):
    """A bad option fails at once with exit 2, not after (or instead of) fetching 548 MB of weights."""
    env = {st.WEIGHTS_ENV: "http://127.0.0.1:9/vgg19-dcbb9e9d.pth", "TORCH_HOME": str(tmp_path / "torch")}
    result = cli("--content", pair[0], "--style", pair[1], "--steps", "0", env=env)
    assert result.returncode == cli_module.EXIT_USAGE and "steps" in result.stderr and "Loading" not in result.stderr
    missing = cli("--content", str(tmp_path / "none.jpg"), "--style", pair[1], env=env)
    assert missing.returncode == cli_module.EXIT_BAD_IMAGE and "Loading" not in missing.stderr
