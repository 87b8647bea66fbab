"""The controls beyond the paper's basics: pooling, snapshots and a timelapse, run records that run again."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from PIL import Image

import styletransfer_utils as st
from styletransfer_tools import checkpoints, files
from styletransfer_tools.snapshots import Snapshots

ROOT = Path(__file__).resolve().parents[1]


def cli(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, str(ROOT / "styletransfer_utils.py"), *args], capture_output=True,
                          text=True, timeout=120, env=os.environ)


def test_average_pooling_swaps_only_the_poolings(model, content_image):
    avg = st.with_pooling(model, "avg")
    assert [type(layer).__name__ for layer in avg].count("AvgPool2d") == 5 and "MaxPool2d" not in str(avg)
    assert all(a is b for a, b in zip(avg, model, strict=True) if isinstance(a, torch.nn.Conv2d))
    image = st.image_to_tensor(content_image)
    with torch.no_grad():
        first = st.extract_features(avg, image, ["relu1_2"])["relu1_2"]
        second_block = avg[5](F.avg_pool2d(first, 2))  # conv2_1 after an average pooling, by hand
        assert torch.allclose(st.extract_features(avg, image, ["conv2_1"])["conv2_1"], second_block, atol=1e-5)
        assert not torch.allclose(st.extract_features(model, image, ["conv2_1"])["conv2_1"], second_block)
    with pytest.raises(st.ParameterError, match="pooling must be one of max, avg"):
        st.with_pooling(model, "min")


def test_pooling_changes_the_run(model, content_image, style_image):
    runs = {p: st.stylize(content_image, style_image, model=model, size=48, steps=3, pooling=p) for p in st.POOLINGS}
    assert runs["max"].history.style != runs["avg"].history.style
    assert runs["avg"].settings.pooling == "avg" and runs["avg"].record()["settings"]["pooling"] == "avg"


def test_snapshots_keep_every_nth_picture_and_make_a_gif(model, content_image, style_image, tmp_path):
    snapshots = Snapshots(every=2, folder=tmp_path)
    st.stylize(content_image, style_image, model=model, size=64, steps=6, callback=snapshots)
    assert [step for step, _ in snapshots.frames] == [1, 3, 5]
    assert sorted(p.name for p in tmp_path.glob("step*.png")) == ["step0002.png", "step0004.png", "step0006.png"]
    gif = Image.open(snapshots.write_gif(tmp_path / "run.gif"))
    assert gif.n_frames == 3 and gif.size == (64, 48)
    with pytest.raises(st.ParameterError, match="every must be at least 1"):
        Snapshots(every=0)


@pytest.mark.slow
def test_command_line_save_every_timelapse_and_record(pair_paths, checkpoint_path, tmp_path):
    output, record, gif = tmp_path / "out.png", tmp_path / "run.json", tmp_path / "run.gif"
    result = cli("--content", pair_paths[0], "--style", pair_paths[1], "--output", str(output), "--size", "48",
                 "--steps", "4", "--weights", str(checkpoint_path), "--save-every", "2", "--timelapse", str(gif),
                 "--record", str(record), "--pooling", "avg")
    assert result.returncode == 0, result.stderr
    assert sorted(p.name for p in tmp_path.glob("out-step*.png")) == ["out-step0002.png", "out-step0004.png"]
    assert Image.open(gif).n_frames == 2
    facts = json.loads(record.read_text())
    assert facts["settings"]["pooling"] == "avg"
    assert facts["weights_sha256"] == checkpoints.weights_fingerprint(st.load_vgg19(checkpoint_path))


@pytest.mark.slow
def test_a_run_from_its_record_gives_the_same_picture(pair_paths, checkpoint_path, tmp_path):
    first, again, record = tmp_path / "first.png", tmp_path / "again.png", tmp_path / "run.json"
    made = cli("--content", pair_paths[0], "--style", pair_paths[1], "--output", str(first), "--size", "40",
               "--steps", "3", "--style-weight", "3", "--optimizer", "adam", "--weights", str(checkpoint_path),
               "--record", str(record))
    assert made.returncode == 0, made.stderr
    rerun = cli("--from-record", str(record), "--output", str(again))
    assert rerun.returncode == 0, rerun.stderr
    assert json.loads(record.read_text())["settings"]["style_weight"] == 3.0
    assert np.array_equal(np.asarray(Image.open(first)), np.asarray(Image.open(again)))
    broken = tmp_path / "broken.json"
    broken.write_text("{}")
    refused = cli("--from-record", str(broken))
    assert refused.returncode == 2 and "is not a run record: it has no \"settings\"" in refused.stderr


def test_the_fingerprint_names_the_weights_not_the_file(tmp_path, checkpoint_path):
    full = st.load_vgg19(checkpoint_path)
    small = checkpoints.save_features_checkpoint(checkpoint_path, tmp_path / "features.pth")
    assert checkpoints.weights_fingerprint(st.load_vgg19(small)) == checkpoints.weights_fingerprint(full)
    assert checkpoints.weights_fingerprint(st.load_vgg19("random")) != checkpoints.weights_fingerprint(full)


@pytest.fixture()
def pair_paths(tmp_path, content_image, style_image):
    folder = tmp_path / "in"
    folder.mkdir()
    return str(files.save_image(content_image, folder / "c.png")), str(files.save_image(style_image, folder / "s.png"))


def chroma(picture: Image.Image) -> np.ndarray:
    return np.asarray(picture.convert("YCbCr"), dtype=np.int16)[..., 1:]


@pytest.mark.parametrize("color", ["content", "luminance"])
def test_keeping_the_photos_colours_leaves_its_chroma_unchanged(model, content_image, style_image, color):
    """Luminance-only transfer and the post-hoc swap both give the photo's chroma back, within rounding."""
    result = st.stylize(content_image, style_image, model=model, size=64, steps=3, color=color, style_weight=100)
    photo = st.resize_longer_side(content_image, 64)
    picture = np.asarray(result.best_image)
    unclipped = ((picture > 0) & (picture < 255)).all(axis=2)  # where RGB clipped nothing, chroma survives exactly
    assert unclipped.mean() > 0.5
    assert np.abs(chroma(result.best_image) - chroma(photo))[unclipped].max() <= 2
    plain = st.stylize(content_image, style_image, model=model, size=64, steps=3, style_weight=100)
    assert np.abs(chroma(plain.best_image) - chroma(photo)).max() > 2  # without it the colours do move


def test_histogram_matching_gives_the_style_the_photos_colour_statistics():
    content_image = st.load_image(st.DEFAULT_CONTENT, max_size=96)
    style_image = st.load_image(st.DEFAULT_STYLE, max_size=96)
    matched = np.asarray(st.match_colors(style_image, content_image), dtype=np.float64).reshape(-1, 3)
    photo = np.asarray(content_image, dtype=np.float64).reshape(-1, 3)
    assert np.abs(matched.mean(0) - photo.mean(0)).max() < 8  # not exact: values beyond 0-255 are clipped
    before = np.asarray(style_image, dtype=np.float64).reshape(-1, 3)
    # clipping to 0-255 keeps it from being exact; it must still be far closer to the photo's than before
    assert np.abs(np.cov(matched.T) - np.cov(photo.T)).max() < 0.5 * np.abs(np.cov(before.T) - np.cov(photo.T)).max()
    grey = st.match_colors(style_image, content_image, luminance_only=True)
    assert np.ptp(np.asarray(grey, dtype=np.int16), axis=2).max() == 0  # grey: R = G = B


def test_several_styles_blend_their_gram_matrices(model, content_image, style_image):
    content, style = st.image_to_tensor(content_image), st.image_to_tensor(style_image)
    other = st.image_to_tensor(style_image.transpose(Image.Transpose.FLIP_LEFT_RIGHT).convert("L").convert("RGB"))
    blended = st.StyleTransferLoss(model, content, [style, other], style_blend=[3, 1])
    alone = [st.StyleTransferLoss(model, content, one) for one in (style, other)]
    for name in st.STYLE_LAYERS:
        expected = 0.75 * alone[0].style_targets[name] + 0.25 * alone[1].style_targets[name]
        assert torch.allclose(blended.style_targets[name], expected, rtol=1e-5, atol=1e-7)
    with pytest.raises(st.ParameterError, match="style_blend has 1 weight"):
        st.stylize(content_image, [style_image, style_image], model=model, style_blend=(1.0,))


def test_style_scale_resizes_the_style_image(model, content_image, style_image):
    settings = st.Settings(size=64, steps=2, scales=1, style_scale=0.5, precision="fp32")
    objective = st.scale_objective(model, st.prepare_images(content_image, style_image, settings), settings, 64)
    half = st.image_to_tensor(st.resize_longer_side(style_image, 32))
    expected = st.StyleTransferLoss(model, st.image_to_tensor(st.resize_longer_side(content_image, 64)), half)
    assert torch.allclose(objective.style_targets["relu1_1"], expected.style_targets["relu1_1"], rtol=1e-5, atol=1e-8)


@pytest.mark.slow
def test_command_line_blends_two_styles(pair_paths, checkpoint_path, tmp_path, style_image):
    second = files.save_image(style_image.rotate(90, expand=True), tmp_path / "second.png")
    record = tmp_path / "run.json"
    result = cli("--content", pair_paths[0], "--style", pair_paths[1], str(second), "--style-blend", "0.7,0.3",
                 "--output", str(tmp_path / "o.png"), "--size", "32", "--steps", "2", "--weights",
                 str(checkpoint_path), "--record", str(record))
    assert result.returncode == 0, result.stderr
    facts = json.loads(record.read_text())
    assert facts["style"] == [pair_paths[1], str(second)] and facts["settings"]["style_blend"] == [0.7, 0.3]
    wrong = cli("--content", pair_paths[0], "--style", pair_paths[1], "--style-blend", "1,1", "--weights", "random")
    assert wrong.returncode == 2 and "--style-blend has 2 weight(s) for 1 style image(s)" in wrong.stderr


@pytest.mark.parametrize("optimizer", ["lbfgs", "adam"])
def test_resuming_goes_on_exactly_where_the_run_stopped(model, content_image, style_image, optimizer):
    """3 steps, then 3 more from the image and optimiser state left, equal 6 steps in one go."""
    common = {"model": model, "size": 48, "scales": 1, "optimizer": optimizer, "precision": "fp32"}
    whole = st.stylize(content_image, style_image, steps=6, **common)
    first = st.stylize(content_image, style_image, steps=3, **common)
    second = st.stylize(content_image, style_image, steps=3, resume=first, **common)
    assert torch.allclose(second.resume_state["image"], whole.resume_state["image"], atol=1e-6)
    assert second.history.total == pytest.approx(whole.history.total[3:], rel=1e-5)
    fresh = st.stylize(content_image, style_image, steps=3, init=first.image, **common)  # no optimiser state
    assert not torch.allclose(fresh.resume_state["image"], whole.resume_state["image"], atol=1e-4)


def test_resuming_with_changed_weights(model, content_image, style_image):
    first = st.stylize(content_image, style_image, model=model, size=48, scales=1, steps=3)
    second = st.stylize(content_image, style_image, model=model, size=48, steps=2, resume=first, style_weight=10)
    assert second.steps_run == 2 and second.settings.style_weight == 10
    assert second.history.style[0] == pytest.approx(10 * first.history.style[-1], rel=0.5)


@pytest.mark.slow
def test_command_line_save_state_and_resume(pair_paths, checkpoint_path, tmp_path):
    common = ["--content", pair_paths[0], "--style", pair_paths[1], "--size", "40", "--scales", "1",
              "--precision", "fp32", "--weights", str(checkpoint_path)]
    whole = cli(*common, "--steps", "4", "--output", str(tmp_path / "whole.png"))
    first = cli(*common, "--steps", "2", "--output", str(tmp_path / "first.png"),
                "--save-state", str(tmp_path / "s.pt"))
    second = cli(*common, "--steps", "2", "--output", str(tmp_path / "second.png"), "--resume", str(tmp_path / "s.pt"))
    assert whole.returncode == first.returncode == second.returncode == 0, second.stderr
    difference = np.abs(np.asarray(Image.open(tmp_path / "whole.png"), dtype=np.int16)
                        - np.asarray(Image.open(tmp_path / "second.png"), dtype=np.int16))
    assert difference.max() <= 1
    (tmp_path / "bad.pt").write_text("nope")
    refused = cli(*common, "--resume", str(tmp_path / "bad.pt"))
    assert refused.returncode == 2 and "is not a state written by --save-state" in refused.stderr


def halves(width: int, height: int) -> tuple[Image.Image, Image.Image]:
    """Two masks: white on the left half, and white on the right half."""
    left = Image.new("L", (width, height), 0)
    left.paste(255, (0, 0, width // 2, height))
    return left, Image.eval(left, lambda v: 255 - v)


def test_a_masks_gram_matrix_is_the_gram_matrix_of_its_region():
    """Through a mask that is white on the left half, the Gram matrix is the left half's alone."""
    features = torch.randn(1, 8, 6, 10)
    mask = torch.zeros(1, 1, 6, 10)
    mask[..., :5] = 1
    seen, share = st.through_mask(features, mask)
    assert share == pytest.approx(0.5)
    assert torch.allclose(st.gram_matrix(seen), st.gram_matrix(features[..., :5]), atol=1e-6)


def test_a_white_mask_changes_nothing(model, content_image, style_image):
    plain = st.stylize(content_image, style_image, model=model, size=64, steps=3, precision="fp32")
    white = st.stylize(content_image, style_image, model=model, size=64, steps=3, precision="fp32",
                       masks=[Image.new("L", (7, 5), 255)])
    assert white.history.total == pytest.approx(plain.history.total, rel=1e-4)


def test_a_region_without_style_stays_close_to_the_content(model, content_image, style_image):
    """Style only on the left half: the right quarter moves far less from the photo than without a mask."""
    left, _ = halves(*content_image.size)
    photo = np.asarray(content_image.resize((96, 72)), dtype=float)

    def change(result: st.StyleTransferResult) -> tuple[float, float]:
        moved = np.abs(np.asarray(result.best_image, dtype=float) - photo)
        return moved[:, :24].mean(), moved[:, 72:].mean()

    common = {"model": model, "size": 96, "steps": 12, "scales": 1}
    masked_left, masked_right = change(st.stylize(content_image, style_image, masks=[left], **common))
    plain_left, plain_right = change(st.stylize(content_image, style_image, **common))
    assert masked_right < 0.25 * plain_right and masked_right < 0.25 * masked_left


def test_two_masks_give_each_region_its_own_style(model, content_image, style_image):
    """Each region is compared with its own style image, and both regions get gradients."""
    left, right = halves(96, 72)
    content = st.image_to_tensor(content_image.resize((96, 72)))
    flat = Image.new("RGB", style_image.size, (200, 40, 40))
    styles = [st.image_to_tensor(one.resize((96, 72))) for one in (style_image, flat)]
    masks = [st.mask_tensor(one, content) for one in (left, right)]
    objective = st.StyleTransferLoss(model, content, styles, masks=masks, content_weight=0)
    swapped = st.StyleTransferLoss(model, content, styles, masks=masks[::-1], content_weight=0)
    image = content.clone().requires_grad_(True)
    total, losses = objective(image)
    assert losses.style != pytest.approx(swapped(content)[1].style, rel=1e-3)
    total.backward()
    assert image.grad[..., :40].abs().sum() > 0 and image.grad[..., 56:].abs().sum() > 0


@pytest.mark.slow
def test_masks_are_checked(model, content_image, style_image, pair_paths, tmp_path):
    left, _ = halves(*content_image.size)
    with pytest.raises(st.ParameterError, match="masks has 2 mask"):
        st.stylize(content_image, style_image, model=model, size=32, steps=1, masks=[left, left])
    with pytest.raises(st.ParameterError, match="use one or the other"):
        st.stylize(content_image, [style_image, style_image], model=model, size=32, steps=1, masks=[left, left],
                   style_blend=(1, 2))
    refused = cli("--content", pair_paths[0], "--style", pair_paths[1], "--mask", pair_paths[0], pair_paths[0],
                  "--weights", "random")
    assert refused.returncode == 2 and "--mask has 2 mask(s) for 1 style image(s)" in refused.stderr


@pytest.mark.slow
def test_command_line_masks_and_their_record(pair_paths, checkpoint_path, tmp_path, content_image):
    mask = files.save_image(halves(*content_image.size)[0], tmp_path / "left.png")
    first, again, record = tmp_path / "first.png", tmp_path / "again.png", tmp_path / "run.json"
    made = cli("--content", pair_paths[0], "--style", pair_paths[1], "--mask", str(mask), "--output", str(first),
               "--size", "40", "--steps", "3", "--weights", str(checkpoint_path), "--record", str(record))
    assert made.returncode == 0, made.stderr
    assert json.loads(record.read_text())["masks"] == [str(mask)]
    rerun = cli("--from-record", str(record), "--output", str(again))
    assert rerun.returncode == 0, rerun.stderr
    assert np.array_equal(np.asarray(Image.open(first)), np.asarray(Image.open(again)))
