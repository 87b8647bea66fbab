"""Bad input, faults and interruptions: a clear message every time, nothing lost.

Each case of the README's troubleshooting table is a test here (the weights
cases live in test_weights.py, the parameter cases in test_stylize.py).
"""

from __future__ import annotations

import math
import os
import re
import signal
import struct
import subprocess
import sys
import textwrap
import time
import zlib
from fractions import Fraction
from pathlib import Path

import numpy as np
import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as hs
from PIL import Image

import styletransfer_utils as st
from conftest import gradient_image
from styletransfer_tools import cli, files

ROOT = Path(__file__).resolve().parents[1]


# --------------------------------------------------------------------------- images


def write(path: Path, data: bytes) -> Path:
    path.write_bytes(data)
    return path


def png_header_only(path: Path, width: int, height: int) -> Path:
    """A PNG whose header claims ``width`` x ``height`` pixels but holds no pixel data."""
    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IEND", b""))
    return path


@pytest.mark.parametrize(
    ("make", "message"),
    [
        (lambda d: d / "missing.jpg", "No file at"),
        (lambda d: d, "is a folder"),
        (lambda d: write(d / "empty.jpg", b""), "is empty"),
        (lambda d: write(d / "notes.jpg", b"these are my holiday notes"), "not an image"),
        (lambda d: png_header_only(d / "bomb.png", 100_000, 100_000), "decompression bomb|refused"),
        (lambda d: png_header_only(d / "big.png", 10_000, 6_000), "decompression bomb"),
    ],
    ids=["missing", "directory", "empty", "text-as-jpg", "bomb-100000x100000", "too-many-pixels"],
)
def test_unusable_images_get_clear_errors(tmp_path, make, message):
    with pytest.raises(st.ImageError, match=message):
        st.load_image(make(tmp_path))


def test_decompression_bomb_is_refused_before_decoding(tmp_path, monkeypatch):
    """The header alone decides: no pixel is decoded and no pixel buffer is allocated."""
    import tracemalloc

    from PIL import ImageFile

    decoded = []
    monkeypatch.setattr(ImageFile.ImageFile, "load", lambda self: decoded.append(self))
    path = png_header_only(tmp_path / "bomb.png", 100_000, 100_000)
    tracemalloc.start()
    with pytest.raises(st.ImageError, match="decompression bomb"):
        st.load_image(path)
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    assert decoded == []
    assert peak < 1_000_000  # 10^10 pixels would need 30 GB


@pytest.mark.parametrize("extension", ["jpg", "png"])
def test_truncated_files(tmp_path, extension):
    whole = tmp_path / f"whole.{extension}"
    gradient_image(200, 150).save(whole)
    cut = tmp_path / f"cut.{extension}"
    cut.write_bytes(whole.read_bytes()[: whole.stat().st_size // 2])
    with pytest.raises(st.ImageError, match="damaged or truncated"):
        st.load_image(cut)


def test_tiny_image_is_enlarged_with_a_warning(model, tmp_path, style_image):
    """Choice, documented in the README: small inputs are upscaled to --size, with a warning."""
    path = tmp_path / "one.png"
    Image.new("RGB", (1, 1), (200, 40, 40)).save(path)
    with pytest.warns(UserWarning, match="only 1 x 1 pixels"):
        result = st.stylize(path, style_image, size=32, steps=1, model=model)
    assert result.best_image.size == (32, 32)


def test_too_elongated_image_says_what_is_needed(model, style_image):
    with pytest.raises(st.ImageError, match="at least 16"):
        st.stylize(gradient_image(1000, 20), style_image, size=128, steps=1, model=model)


@pytest.mark.parametrize("shape", [(600, 40), (40, 600)])
def test_very_wide_and_very_tall_images_work(model, style_image, shape):
    result = st.stylize(gradient_image(*shape), style_image, size=240, steps=1, model=model)
    assert max(result.best_image.size) == 240 and min(result.best_image.size) == 16


# --------------------------------------------------------------------------- properties


MODES = ["RGB", "L", "LA", "P", "RGBA", "CMYK", "1", "I;16", "I", "F"]


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    width=hs.integers(1, 70), height=hs.integers(1, 70), mode=hs.sampled_from(MODES),
    max_size=hs.none() | hs.integers(1, 80), seed=hs.integers(0, 2**16),
)
def test_loader_property(tmp_path, width, height, mode, max_size, seed):
    """Any size, any mode: an RGB image with the longer side capped, never a foreign exception."""
    values = np.random.default_rng(seed).integers(0, 255, (height, width, 4), dtype=np.uint8)
    image = Image.fromarray(values, "RGBA")
    if mode in ("I;16", "I", "F"):
        image = image.convert("L").convert(mode)
    else:
        image = image.convert(mode)
    path = tmp_path / f"p_{seed}.{'tif' if mode in ('CMYK', 'I', 'F') else 'png'}"
    image.save(path)
    loaded = st.load_image(path, max_size=max_size)
    assert loaded.mode == "RGB"
    if max_size is None or max(width, height) <= max_size:
        assert loaded.size == (width, height)
    else:
        assert max(loaded.size) == max_size


@settings(max_examples=30, deadline=None)
@given(
    channels=hs.integers(1, 16), height=hs.integers(1, 12), width=hs.integers(1, 12),
    scale=hs.floats(1e-3, 1e3), seed=hs.integers(0, 2**16),
)
def test_losses_property(channels, height, width, scale, seed):
    """Losses are finite, non-negative, zero at their target, on any shape and scale."""
    generator = torch.Generator().manual_seed(seed)
    features = torch.randn(1, channels, height, width, generator=generator) * scale
    other = torch.randn(1, channels, height, width, generator=generator) * scale
    gram = st.gram_matrix(features)
    assert gram.shape == (1, channels, channels) and torch.isfinite(gram).all()
    assert st.content_loss(features, features) == 0 and st.content_loss(features, other) >= 0
    assert st.style_loss({"conv1_1": features}, {"conv1_1": gram}, {"conv1_1": 1.0}) == 0
    image = torch.rand(1, 3, height, width, generator=generator)
    tv = st.total_variation_loss(image)
    assert torch.isfinite(tv) and tv >= 0


# --------------------------------------------------------------------------- runs


def test_out_of_memory_gives_advice(model, content_image, style_image, monkeypatch):
    def no_memory(self, image):
        raise torch.OutOfMemoryError("CUDA out of memory. Tried to allocate 2.00 GiB")

    monkeypatch.setattr(st.StyleTransferLoss, "__call__", no_memory)
    with pytest.raises(st.DeviceError, match=r"size 32 ran out of CPU memory. Try a smaller size, for example 16"):
        st.stylize(content_image, style_image, size=32, steps=2, model=model)


def test_unwritable_output_is_a_clear_error(tmp_path, content_image):
    with pytest.raises(st.OutputError, match="Could not write|is not writable"):
        files.save_image(content_image, Path("/proc/stylized.png"))
    blocker = tmp_path / "file"
    blocker.write_text("x")
    with pytest.raises(st.OutputError, match="file is a file, not a folder"):
        files.save_image(content_image, blocker / "out.png")


SLOW_CLI = textwrap.dedent(
    """
    import sys, time
    sys.path.insert(0, {root!r})
    import styletransfer_utils as st
    from styletransfer_tools import cli
    {patch}
    sys.exit(cli.main(sys.argv[1:]))
    """
)


def start_cli(args: list[str], patch: str = "") -> subprocess.Popen:
    code = SLOW_CLI.format(root=str(ROOT), patch=textwrap.dedent(patch))
    # A job started in the background by a non-interactive shell inherits SIGINT as "ignored", and Python
    # then never turns Ctrl-C into KeyboardInterrupt: give the child the default disposition, as a terminal would.
    return subprocess.Popen([sys.executable, "-c", code, *args], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True, preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))


@pytest.mark.slow
def test_ctrl_c_saves_the_best_image(tmp_path, checkpoint_path, content_image, style_image):
    """SIGINT in the middle of a run: exit code 130 and the best image so far is written."""
    content = files.save_image(content_image, tmp_path / "c.png")
    style = files.save_image(style_image, tmp_path / "s.png")
    output = tmp_path / "out.png"
    marker = tmp_path / "running"
    patch = f"""
    real = st.optimize
    def slow(*a, **k):
        user = k["callback"]
        def callback(step, image, losses):
            user(step, image, losses)
            open({str(marker)!r}, "w").close()
            time.sleep(0.2)
        k["callback"] = callback
        return real(*a, **k)
    st.optimize = slow
    """
    process = start_cli(["--content", str(content), "--style", str(style), "--output", str(output), "--size", "32",
                         "--steps", "500", "--weights", str(checkpoint_path)], patch)
    deadline = time.time() + 60
    while not marker.exists() and time.time() < deadline:
        time.sleep(0.05)
    time.sleep(0.5)
    process.send_signal(signal.SIGINT)
    stdout, stderr = process.communicate(timeout=60)
    assert process.returncode == cli.EXIT_INTERRUPTED, stderr
    assert "Stopped early: interrupted" in stderr and "Wrote the best image so far" in stdout
    assert Image.open(output).size == (32, 24)


@pytest.mark.slow
def test_killed_mid_write_leaves_previous_file(tmp_path, checkpoint_path, content_image, style_image):
    """SIGKILL while the PNG is being written: the output path still holds the complete previous file."""
    content = files.save_image(content_image, tmp_path / "c.png")
    style = files.save_image(style_image, tmp_path / "s.png")
    output = tmp_path / "out.png"
    files.save_image(style_image, output)
    before = output.read_bytes()
    patch = """
    from PIL import Image
    real_save = Image.Image.save
    def slow_save(self, fp, format=None, **params):
        fp.write(b"\\x89PNG half")
        fp.flush()
        time.sleep(60)
        return real_save(self, fp, format, **params)
    Image.Image.save = slow_save
    """
    process = start_cli(["--content", str(content), "--style", str(style), "--output", str(output), "--size", "32",
                         "--steps", "2", "--weights", str(checkpoint_path)], patch)
    deadline = time.time() + 60
    while not list(tmp_path.glob(".out.png.*.partial")) and time.time() < deadline:
        time.sleep(0.05)
    assert list(tmp_path.glob(".out.png.*.partial")), "the write never started"
    process.kill()
    process.wait(timeout=30)
    assert output.read_bytes() == before
    Image.open(output).verify()


@pytest.mark.slow
def test_cli_warns_on_enlarged_input(tmp_path, checkpoint_path, style_image):
    small = tmp_path / "small.png"
    Image.new("RGB", (8, 8), (10, 200, 10)).save(small)
    style = files.save_image(style_image, tmp_path / "s.png")
    result = subprocess.run(
        [sys.executable, str(ROOT / "styletransfer_utils.py"), "--content", str(small), "--style", str(style),
         "--output", str(tmp_path / "o.png"), "--size", "32", "--steps", "1", "--weights", str(checkpoint_path)],
        capture_output=True, text=True, timeout=120, env={**os.environ, "PYTHONWARNINGS": "default"},
    )
    assert result.returncode == 0, result.stderr
    assert "only 8 x 8 pixels" in result.stderr


def current_umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def test_saved_files_have_a_normal_mode(tmp_path, content_image):
    """The temporary file is owner-only; the result must be readable like any other file."""
    path = files.save_image(content_image, tmp_path / "shared.png")
    assert path.stat().st_mode & 0o777 == 0o666 & ~current_umask()


def test_unreadable_image_says_permission(tmp_path, monkeypatch, content_image):
    path = files.save_image(content_image, tmp_path / "locked.png")

    def refuse(*args, **kwargs):
        raise PermissionError(13, "Permission denied")

    monkeypatch.setattr(Image, "open", refuse)
    with pytest.raises(st.ImageError, match="permission denied"):
        st.load_image(path)


@pytest.mark.parametrize(
    ("flag", "target", "says"),
    [("--output", "nodir/out.png", "the folder {tmp}/nodir does not exist"),
     ("--output", "afile/out.png", "{tmp}/afile is a file, not a folder"),
     ("--output", "out.txt", "the image format cannot be told from 'out.txt'"),
     ("--output", "adir", "it is a folder"),
     ("--record", "nodir/run.json", "the folder {tmp}/nodir does not exist"),
     ("--save-state", "afile/state.pt", "{tmp}/afile is a file, not a folder"),
     ("--timelapse", "nodir/run.gif", "the folder {tmp}/nodir does not exist")],
)
def test_every_destination_is_checked_before_any_work(flag, target, says, tmp_path, capsys, monkeypatch):
    """A path the run could not write is refused at once, naming the flag, before the weights load: no
    computed result is lost to it."""
    (tmp_path / "afile").write_text("not a folder")
    (tmp_path / "adir").mkdir()
    monkeypatch.setattr(cli, "load_vgg19", lambda *a, **k: pytest.fail("the weights were loaded"))
    pictures = [files.save_image(gradient_image(40, 30), tmp_path / name) for name in ("c.png", "s.png")]
    arguments = ["--content", str(pictures[0]), "--style", str(pictures[1]), "--quiet", "--weights", "random"]
    if flag != "--output":
        arguments += ["--output", str(tmp_path / "fine.png")]
    assert cli.main([*arguments, flag, str(tmp_path / target)]) == cli.EXIT_OUTPUT
    error = capsys.readouterr().err
    assert f"error: {flag} cannot be written to {tmp_path / target}: " in error
    assert says.format(tmp=tmp_path) in error
    assert not (tmp_path / "fine.png").exists()


def test_a_read_only_folder_is_refused_before_the_run(tmp_path, capsys):
    folder = tmp_path / "locked"
    folder.mkdir()
    folder.chmod(0o500)
    try:
        if os.access(folder, os.W_OK):
            pytest.skip("this user can write anywhere (root): a read-only folder cannot be made")
        with pytest.raises(st.OutputError, match="is not writable"):
            files.check_destination(folder / "out.png", "output", image=True)
    finally:
        folder.chmod(0o700)


@pytest.mark.parametrize("raw", ["abc", "", "1e9", "64.0", "0", "-5"])
def test_the_notebooks_variables_are_checked_naming_the_variable(raw, monkeypatch):
    """The one reader of the environment refuses what it cannot use, naming the variable and its range."""
    from styletransfer_tools import notebook

    monkeypatch.setenv("STYLETRANSFER_SIZE", raw)
    with pytest.raises(st.ParameterError, match=r"^STYLETRANSFER_SIZE must be .*at least 1") as raised:
        notebook.notebook_settings(size=256)
    assert raised.value.name == "STYLETRANSFER_SIZE"


def test_the_notebooks_variables_are_read(monkeypatch):
    from styletransfer_tools import notebook

    monkeypatch.setenv("STYLETRANSFER_SIZE", " 64 ")
    monkeypatch.delenv("STYLETRANSFER_STEPS", raising=False)
    assert vars(notebook.notebook_settings(size=256, steps=80)) == {"size": 64, "steps": 80}


def test_a_huge_step_count_is_planned_at_once_and_exactly():
    """Schedule arithmetic in exact fractions: 10**30 steps no longer overshoot and count down one by one."""
    schedule = st.scale_schedule((384, 256), 10**30)
    assert sum(steps for _, steps in schedule) == 10**30 and [size for size, _ in schedule] == [96, 192, 384]


def test_blend_weights_do_not_overflow():
    assert st.blend_weights([1e308, 1e308], 2) == [0.5, 0.5]
    assert st.blend_weights([3.0, 1.0], 2) == [0.75, 0.25]


def test_an_empty_style_list_is_named_as_such(model, content_image):
    with pytest.raises(st.ParameterError, match="style is an empty list"):
        st.stylize(content_image, [], model=model, size=32, steps=1)


@pytest.mark.parametrize(("scale", "says"), [(1000.0, r"style_scale is too large: .* Use at most [0-9.]+\."),
                                             (0.001, r"style_scale is too small: .* Use at least 0\.[0-9]+\.")])
def test_style_scale_is_bounded_before_any_work(scale, says, model, content_image, style_image, monkeypatch):
    """Too large would decode a style image beyond the pixel limit (it grew to 23 GB); too small left no
    pixels for the layers. Both are refused, naming the setting and the bound, before any objective."""
    monkeypatch.setattr(st, "StyleTransferLoss", lambda *a, **k: pytest.fail("an objective was made"))
    with pytest.raises(st.ParameterError, match=says):
        st.stylize(content_image, style_image, model=model, size=2048, steps=1, style_scale=scale)


def test_an_elongated_style_plans_its_scales_from_its_true_shape():
    """A 2000 x 247 style at 1000 px: the plan once rounded its shorter side twice (124 px, then 16 at the
    coarsest 125 px) where the style check rounds once (15), and asked for style_scale 1.04 or more."""
    images = st.prepare_images(Image.new("RGB", (1000, 1000)), Image.new("RGB", (2000, 247)), st.Settings(size=1000))
    assert st.plan_scales(images, st.Settings(size=1000)) == [(250, 11), (500, 22), (1000, 47)]


@pytest.mark.parametrize(("arguments", "says"),
                         [(["--style-blend", "-1,2"], "--style-blend must be at least 0, got -1.0"),
                          (["--style-weight", "-1e5"], "--style-weight must be at least 0")])
def test_negative_numbers_reach_the_settings_own_check(arguments, says, capsys):
    """argparse would refuse '-1,2' as an unknown option ("expected one argument")."""
    assert cli.main([*arguments, "--weights", "random", "--quiet"]) == cli.EXIT_USAGE
    assert f"error: {says}" in capsys.readouterr().err


def test_a_transparent_mask_means_no_style_there(model, content_image, style_image):
    """A mask drawn on a transparent layer: transparent counts as black (no style), not as white."""
    mask = Image.new("RGBA", (40, 30), (0, 0, 0, 0))
    mask.paste((255, 255, 255, 255), (0, 0, 20, 30))
    grey = np.asarray(st.as_image(mask, "mask", background="black").convert("L"))
    assert grey[:, :20].min() == 255 and grey[:, 20:].max() == 0
    images = st.prepare_images(content_image, style_image, st.Settings(size=32), masks=[mask])
    assert np.asarray(images.masks[0])[:, 20:].max() == 0


def test_an_all_black_mask_warns_that_its_style_applies_nowhere(model, content_image, style_image):
    black = Image.new("L", (40, 30), 0)
    with pytest.warns(UserWarning, match="Mask 1 is black everywhere, so style 1 applies nowhere"):
        st.stylize(content_image, style_image, model=model, size=32, steps=1, masks=[black])


def test_masks_must_be_a_list(model, content_image, style_image):
    with pytest.raises(st.ParameterError, match="masks must be a list of images"):
        st.stylize(content_image, style_image, model=model, size=32, steps=1, masks="mask.png")


@pytest.mark.parametrize(
    ("text", "says"),
    [('{"style": ["s.png"]}', 'is not a run record: it has no "settings"'),
     ('{"settings": [1, 2]}', '"settings" must be an object of settings'),
     ('{"settings": null}', '"settings" must be an object of settings'),
     ('{"settings": {}, "style": 5}', '"style" must be a path or a list'),
     ('{"settings": {}, "masks": "mask.png"}', '"masks" must be a list of paths'),
     ('{"settings": {"sise": 3}}', "unknown setting(s) ['sise']"),
     ('{"settings": {}, "style": []}', '"style" is an empty list'),
     ("[" * 100_000 + "]" * 100_000, "is not a readable run record"),
     ("[1, 2]", 'is not a run record')],
)
def test_a_damaged_record_is_refused_naming_the_key(text, says, tmp_path, capsys):
    record = tmp_path / "run.json"
    record.write_text(text)
    assert cli.main(["--from-record", str(record), "--weights", "random", "--quiet"]) == cli.EXIT_USAGE
    error = capsys.readouterr().err
    assert says in error and "Traceback" not in error


def test_a_record_saved_with_a_byte_order_mark_is_read(tmp_path):
    record = tmp_path / "run.json"
    record.write_text('\ufeff{"settings": {"size": 48}}', encoding="utf-8")
    assert cli.read_record(str(record))["settings"] == {"size": 48}


def resume_state(model, content_image, style_image, **changes):
    return st.stylize(content_image, style_image, model=model, size=32, steps=2, **changes).resume_state


@pytest.mark.parametrize(
    ("damage", "says"),
    [(lambda state: {}, "resume is not a state a run left"),
     (lambda state: {**state, "image": 5}, "resume holds no picture"),
     (lambda state: {**state, "image": (state["image"] * 255).byte()}, "got a torch.uint8 tensor of shape"),
     (lambda state: {**state, "image": state["image"] * 3}, "values outside [0, 1]"),
     (lambda state: {**state, "optimizer": "sgd"}, "resume names the optimizer 'sgd'"),
     (lambda state: {**state, "state": 5}, "damaged optimiser state")],
)
def test_a_damaged_resume_state_is_refused(damage, says, model, content_image, style_image):
    state = resume_state(model, content_image, style_image)
    with pytest.raises(st.ParameterError, match=re.escape(says)):
        st.stylize(content_image, style_image, model=model, size=32, steps=1, resume=damage(state))


def test_a_state_made_for_another_photo_is_refused(model, content_image, style_image):
    state = resume_state(model, content_image, style_image)
    other = content_image.transpose(Image.Transpose.ROTATE_90)  # 48 x 64 where the state's picture is 64 x 48
    with pytest.raises(st.ParameterError, match="was made for a picture of 32 x 24 px, not of this photo's shape"):
        st.stylize(other, style_image, model=model, size=32, steps=1, resume=state)


def test_a_state_made_from_another_photo_of_the_same_shape_is_refused(model, content_image, style_image):
    state = resume_state(model, content_image, style_image)
    other = content_image.transpose(Image.Transpose.ROTATE_180)  # the same shape, other grey levels
    with pytest.raises(st.ParameterError, match="was made from another photo of the same shape"):
        st.stylize(other, style_image, model=model, size=32, steps=1, resume=state)
    older = {key: value for key, value in state.items() if key != "photo"}  # a state saved before fingerprints
    assert st.stylize(content_image, style_image, model=model, size=32, steps=1, resume=older).steps_run == 1


@pytest.mark.parametrize("photo", ["not a tensor", torch.zeros(4, 4), torch.full((16, 16), math.nan)])
def test_a_damaged_photo_fingerprint_is_refused(photo, model, content_image, style_image):
    state = {**resume_state(model, content_image, style_image), "photo": photo}
    with pytest.raises(st.ParameterError, match="damaged fingerprint|another photo of the same shape"):
        st.stylize(content_image, style_image, model=model, size=32, steps=1, resume=state)


def test_a_dropped_optimiser_state_is_said_aloud(model, content_image, style_image):
    state = resume_state(model, content_image, style_image)
    with pytest.warns(UserWarning, match="does not fit this run"):
        result = st.stylize(content_image, style_image, model=model, size=48, steps=1, resume=state)
    assert result.image.size == (48, 36)


def test_a_state_that_carries_code_is_refused_like_a_checkpoint(tmp_path, capsys):
    path = tmp_path / "state.pt"
    torch.save({"image": Fraction(1, 2), "optimizer": "lbfgs", "state": None}, path)
    assert cli.main(["--resume", str(path), "--weights", "random", "--quiet"]) == cli.EXIT_USAGE
    assert f"error: Refused to load {path}: it contains Python objects or code" in capsys.readouterr().err


def test_random_weights_repeat_from_their_seed():
    first, again, other = (st.load_vgg19("random", "cpu", seed=seed) for seed in (3, 3, 4))
    assert all(torch.equal(a, b) for a, b in zip(first.state_dict().values(), again.state_dict().values(), strict=True))
    assert not torch.equal(first[0].weight, other[0].weight)


@pytest.mark.slow
def test_a_record_of_a_random_weights_run_repeats_and_other_weights_are_named(tmp_path):
    """The random weights are drawn from the run's seed, so a record replays to the same picture; weights
    whose fingerprint differs from the record's get a warning."""
    pictures = [files.save_image(gradient_image(40, 30), tmp_path / name) for name in ("c.png", "s.png")]
    common = ["--size", "32", "--steps", "2", "--weights", "random", "--quiet"]
    record = tmp_path / "run.json"
    assert cli.main(["--content", str(pictures[0]), "--style", str(pictures[1]), *common,
                     "--output", str(tmp_path / "first.png"), "--record", str(record)]) == 0
    torch.manual_seed(12345)  # torch's global seed must not matter
    assert cli.main(["--from-record", str(record), "--output", str(tmp_path / "again.png"), "--quiet"]) == 0
    first, again = (np.asarray(Image.open(tmp_path / name)) for name in ("first.png", "again.png"))
    assert np.array_equal(first, again)
    with pytest.warns(UserWarning, match="These weights are not the ones the record's run used"):
        cli.main(["--from-record", str(record), "--seed", "5", "--output", str(tmp_path / "other.png"), "--quiet"])


def test_a_record_without_content_or_style_uses_the_bundled_pair(tmp_path):
    record = tmp_path / "run.json"
    record.write_text('{"settings": {"size": 32, "steps": 1, "weights": "random"}}')
    assert cli.main(["--from-record", str(record), "--output", str(tmp_path / "out.png"), "--quiet"]) == 0
    assert Image.open(tmp_path / "out.png").size == (32, 32)


@pytest.mark.parametrize("name", ["weights", "init", "content_layer"])
def test_a_text_setting_given_a_number_or_a_list_is_refused(name):
    with pytest.raises(st.ParameterError, match=f"^{name} must be"):
        st.Settings(**{name: [5] if name == "content_layer" else 5})
