"""The studio of notebook 06, driven from Python without a browser (tests/test_browser.py uses a real one)."""

from __future__ import annotations

import io
import json
import math
import re
import threading
import time

import numpy as np
import pytest
from PIL import Image, ImageFile

import styletransfer_utils as st
from conftest import gradient_image

pytest.importorskip("ipywidgets")
from styletransfer_tools import studio as studio_module  # noqa: E402
from styletransfer_tools.studio import LIVE_SETTINGS, MODEL_SETTINGS, READOUT_CHARS, Studio  # noqa: E402


@pytest.fixture()
def studio(model, content_image, style_image, tmp_path):
    made = Studio(model, content_image, style_image, size=48, steps=3, save_folder=tmp_path / "saved")
    made.redraw_every, made.drawing_share = 0, math.inf  # redraw at every step: the tests count redraws
    return made


def wait_for(condition, seconds: float = 60) -> None:
    deadline = time.time() + seconds
    while not condition() and time.time() < deadline:
        time.sleep(0.01)
    assert condition()


def test_controls_set_the_stylize_settings(studio):
    studio.controls["content_weight"].value = 10.0
    studio.controls["style_weight"].value = 100.0
    studio.layer_weights["relu3_1"].value = studio.layer_weights["relu3_1"].min  # the left end: off
    studio.controls["steps"].value = 7
    studio.controls["optimizer"].value = "adam"
    studio.controls["lr"].value = "0.05"
    settings = studio.settings()
    assert settings.content_weight == pytest.approx(10.0) and settings.style_weight == pytest.approx(100.0)
    assert settings.style_layer_weights == {"relu1_1": 1.0, "relu2_1": 1.0, "relu3_1": 0.0, "relu4_1": 1.0,
                                            "relu5_1": 1.0}
    assert (settings.steps, settings.optimizer, settings.lr) == (7, "adam", 0.05)


def test_layer_sliders_are_logarithmic_and_reach_zero(studio):
    slider = studio.layer_weights["relu2_1"]
    assert type(slider).__name__ == "FloatLogSlider" and slider.value == 1.0
    slider.value = 10.0**slider.max
    assert studio.settings().style_layer_weights["relu2_1"] == pytest.approx(100.0)
    slider.value = 10.0**slider.min
    assert studio.settings().style_layer_weights["relu2_1"] == 0.0


def d3_format(value: float, spec: str) -> str:
    """A slider's readout as the browser writes it: ipywidgets formats it with d3-format, whose "g" and "e"
    are JavaScript's toPrecision and toExponential (fixed notation for exponents -6 ... precision - 1)."""
    precision, kind = re.fullmatch(r"\.(\d+)([eg])", spec).groups()
    precision = int(precision)
    mantissa, exponent = f"{value:.{precision - (kind == 'g')}e}".split("e")
    exponent = int(exponent)
    if kind == "g" and -6 <= exponent < precision:
        return f"{value:.{max(0, precision - 1 - exponent)}f}"
    return f"{mantissa}e{'+' if exponent >= 0 else '-'}{abs(exponent)}"


def test_d3_format_writes_what_the_browser_writes():
    """Checked against JavaScript (node): (1e-6).toPrecision(3) and so on."""
    assert [d3_format(v, ".3g") for v in (1e-6, 1.778e-6, 5.623e-7, 0.001778, 1.0, 562.3, 1000.0)] == [
        "0.00000100", "0.00000178", "5.62e-7", "0.00178", "1.00", "562", "1.00e+3"]
    assert [d3_format(v, ".2e") for v in (1e-6, 5.623e-7, 31.62, 100.0)] == ["1.00e-6", "5.62e-7", "3.16e+1", "1.00e+2"]


@pytest.mark.parametrize("weights", [{}, {"content_weight": 1e-5, "tv_weight": 1e-7, "style_weight": 3e4}])
def test_every_slider_readout_fits_and_reads_its_value(model, content_image, style_image, weights):
    """Every value a log slider can take reads in full (the TV weight's 1e-6 was "0.00000100", cut off in the
    browser) and is that value to three significant digits."""
    made = Studio(model, content_image, style_image, **weights)
    sliders = [c for c in made.controls.values() if type(c).__name__ == "FloatLogSlider"]
    assert {c.description for c in sliders} == {"content weight", "style weight", "tv weight"}
    for slider in [*sliders, *made.layer_weights.values()]:
        for k in range(round((slider.max - slider.min) / slider.step) + 1):
            value = 10.0 ** (slider.min + k * slider.step)
            shown = d3_format(value, slider.readout_format)
            assert len(shown) <= READOUT_CHARS, f"{slider.description} at {value:g} reads {shown!r}"
            assert float(shown) == pytest.approx(value, rel=0.005)
    tv = made.controls["tv_weight"]
    assert d3_format(tv.value, tv.readout_format) == ("1.00e-6" if not weights else "1.00e-7")


def test_a_bad_text_value_is_a_clear_error(studio):
    studio.controls["lr"].value = "fast"
    with pytest.raises(st.ParameterError, match="lr must be a number, or empty"):
        studio.settings()
    studio.controls["lr"].value = "-1"
    with pytest.raises(st.ParameterError, match="lr must be greater than 0"):
        studio.settings()


def test_the_studio_keeps_the_settings_it_is_given(model, content_image, style_image):
    """Ranges stretch to hold the starting values: Run does what `stylize` would do with the same settings."""
    given = st.Settings(size=16, content_weight=0.0, style_weight=1e4, tv_weight=1e-7,
                        style_layer_weights={"relu1_1": 300.0}, init=content_image, seed=None)
    assert Studio(model, content_image, style_image, given).settings() == given


def test_run_updates_preview_plot_progress_shares_and_readout(studio):
    before = (studio.preview.value, studio.loss_plot.value, studio.readout.value)
    studio.run_button.click()
    assert studio.run_button.disabled and not studio.stop_button.disabled
    result = studio.wait(60)
    assert result is not None and result.steps_run == 3
    assert studio.preview.value != before[0] and bytes(studio.preview.value).startswith(b"\x89PNG")
    assert studio.loss_plot.value != before[1] and bytes(studio.loss_plot.value).startswith(b"\x89PNG")
    assert "done" in studio.readout.value and "steps/s" in studio.progress.value and studio.bar.value == 3
    assert "application/vnd.jupyter.widget-view+json" in studio._repr_mimebundle_()
    assert all(name in studio.shares.value for name in st.STYLE_LAYERS)
    assert studio.redraws == 3 and studio.first_preview_seconds is not None
    assert not studio.run_button.disabled and studio.stop_button.disabled and not studio.continue_button.disabled
    assert len(studio.history_strip.children) == 1 and "style 1" in studio.history_strip.children[0].children[1].value


def test_moving_a_slider_during_a_run_changes_the_objective_from_the_next_step(studio):
    """β × 1000 mid-run: the style term jumps by that factor, the run goes on without restarting."""
    studio.controls["steps"].value = 40
    studio.controls["scales"].value = "1"
    gate, resume = threading.Event(), threading.Event()
    real_step = studio._step

    def step(number, image, losses):  # hold the run after step 3 until the slider has moved
        real_step(number, image, losses)
        if number == 3:
            gate.set()
            resume.wait(30)
        if number == 4:
            studio.stop()

    studio._step = step
    studio.run()
    assert gate.wait(60)
    studio.controls["style_weight"].value = 1000.0  # what the browser does: the kernel thread sets the value
    resume.set()
    result = studio.wait(60)
    history = result.history
    assert result.steps_run == 5 and studio.changes == 1  # one more step ran, with the new weight
    assert history.style[4] > 100 * history.style[3]  # one step of the optimiser cannot do that: β did
    assert result.settings.style_weight == 1.0  # the record says what the run started with
    assert "changed 1 time" in studio.readout.value


def test_set_weights_matches_a_new_objective(model, content_image, style_image):
    content, style = st.image_to_tensor(content_image), st.image_to_tensor(style_image)
    objective = st.StyleTransferLoss(model, content, style)
    objective.set_weights(style_weight=5.0, tv_weight=0.1, style_layer_weights={"relu1_1": 0.0, "relu2_1": 2.0})
    fresh = st.StyleTransferLoss(model, content, style, style_weight=5.0, tv_weight=0.1,
                                 style_layer_weights={"relu1_1": 0.0, "relu2_1": 2.0})
    image = st.image_to_tensor(style_image.resize(content_image.size))
    assert objective(image)[1].total == pytest.approx(fresh(image)[1].total, rel=1e-6)
    with pytest.raises(st.ParameterError, match="make a new one"):
        fresh.set_weights(style_layer_weights={"relu5_1": 1.0})


def test_optimize_restarts_lbfgs_and_the_best_image_when_weights_change(model, content_image, style_image):
    content, style = st.image_to_tensor(content_image), st.image_to_tensor(style_image)
    objective = st.StyleTransferLoss(model, content, style)

    def callback(step, image, losses):
        if step == 2:
            objective.set_weights(style_weight=1e-6)  # the style term nearly vanishes: losses fall a lot

    run = st.optimize(objective, content.clone().requires_grad_(True), steps=5, callback=callback)
    assert run.best_step >= 3 and run.best_loss < min(run.history.total[:3])


def test_continue_goes_on_from_the_last_picture(studio):
    studio.run()
    first = studio.wait(60)
    studio.continue_button.click()
    second = studio.wait(60)
    assert second.history.total[0] == pytest.approx(first.history.total[-1], rel=0.2)  # not back at the photo
    assert len(studio.history_strip.children) == 2


def test_stop_ends_the_run_and_keeps_the_best_image(studio):
    studio.controls["steps"].value = 500
    studio.run_button.click()
    wait_for(lambda: "step" in studio.readout.value)
    studio.stop_button.click()
    result = studio.wait(60)
    assert result.stopped == "stopped" and 0 < result.steps_run < 500
    assert result.best_image.size == (48, 36)
    assert "stopped early" in studio.readout.value


def test_save_writes_the_image_and_its_record(studio, tmp_path):
    studio.run()
    studio.wait(60)
    image, record = studio.save()
    assert image.parent == tmp_path / "saved" and image.suffix == ".png"
    facts = json.loads(record.read_text())
    assert facts["settings"]["steps"] == 3 and facts["output"] == str(image)


def test_errors_show_in_the_readout_and_reach_wait(studio):
    studio.content.images["broken"] = "no/such/photo.jpg"
    studio.content.dropdown.options = list(studio.content.images)
    studio.content.dropdown.value = "broken"
    studio.run_button.click()
    with pytest.raises(st.ImageError):
        studio.wait(60)
    assert "error" in studio.readout.value and not studio.run_button.disabled


def upload(picker, name: str, data: bytes) -> None:
    """What the browser does when a file is chosen: it sets the FileUpload's value, as a kernel message."""
    picker.upload.set_state({"value": [{"name": name, "type": "image/png", "size": len(data),
                                        "content": memoryview(data), "last_modified": 0}]})


def encoded(image: Image.Image, format: str, **options) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, format=format, **options)
    return buffer.getvalue()


def test_an_upload_that_is_not_an_image_is_refused_in_the_readout(studio):
    """A text file named .png: the readout says why, naming the file; nothing is raised out of the widget's
    callback, and the content stays what it was."""
    before = studio.content.dropdown.value
    upload(studio.content, "notes.png", b"these are my holiday notes")
    assert "upload refused" in studio.readout.value
    assert "notes.png is not an image that Pillow can read" in studio.readout.value
    assert studio.content.dropdown.value == before and "upload: notes.png" not in studio.content.images


def test_an_upload_comes_out_upright_as_its_file_does(studio, tmp_path):
    """A phone photo stored sideways with EXIF orientation 6 is uploaded upright: what load_image gives."""
    exif = Image.Exif()
    exif[0x0112] = 6
    data = encoded(gradient_image(60, 30), "JPEG", exif=exif, quality=95)
    (tmp_path / "phone.jpg").write_bytes(data)
    upload(studio.style, "phone.jpg", data)
    assert studio.style.dropdown.value == "upload: phone.jpg"
    uploaded = studio.style.image()
    assert uploaded.size == (30, 60)
    assert np.array_equal(np.asarray(uploaded), np.asarray(st.load_image(tmp_path / "phone.jpg")))
    assert "phone.jpg, 30 x 60 px" in studio.readout.value


def test_an_upload_with_too_many_pixels_is_refused_before_decoding(studio, monkeypatch):
    """The header alone decides, as for a file (the limit is lowered so that a small PNG is over it)."""
    monkeypatch.setattr(st, "MAX_IMAGE_PIXELS", 1000)
    decoded, load = [], ImageFile.ImageFile.load
    monkeypatch.setattr(ImageFile.ImageFile, "load", lambda self: decoded.append(self) or load(self))
    before = studio.style.dropdown.value
    upload(studio.style, "huge.png", encoded(gradient_image(40, 30), "PNG"))
    assert decoded == []
    assert "huge.png claims to be 40 x 30 pixels" in studio.readout.value
    assert "decompression bomb" in studio.readout.value and studio.style.dropdown.value == before


def test_bundled_images_are_offered(studio):
    assert "astronaut.jpg" in studio.style.dropdown.options and "stained_glass.png" in studio.style.dropdown.options


def test_live_and_model_settings_are_fields():
    names = {f.name for f in st.dataclasses.fields(st.Settings)}
    assert set(LIVE_SETTINGS) <= names and set(MODEL_SETTINGS) <= names


def test_an_upload_larger_than_the_limit_is_refused_before_it_is_opened(studio, monkeypatch):
    """A shared server keeps each upload's bytes in a kernel: past MAX_UPLOAD_BYTES it is refused, named, unopened."""
    monkeypatch.setattr(studio_module, "MAX_UPLOAD_BYTES", 100)
    monkeypatch.setattr(studio_module, "load_image", lambda *a, **k: pytest.fail("the upload was opened"))
    before = studio.style.dropdown.value
    upload(studio.style, "huge.jpg", bytes(2000))
    assert "huge.jpg is 0.0 MiB, more than the 0 MiB an upload may be" in studio.readout.value
    assert studio.style.dropdown.value == before
