"""The slider panel of notebook 06, driven from Python without a browser."""

from __future__ import annotations

import time

import pytest

import styletransfer_utils as st
from styletransfer_tools import panel as panel_module

pytest.importorskip("ipywidgets")


@pytest.fixture()
def panel(model, content_image, style_image):
    return panel_module.StylePanel(content_image, style_image, model, size=48, steps=3, preview_every=1)


def test_sliders_set_the_stylize_settings(panel):
    panel.controls["content_weight"].value = 10.0
    panel.controls["style_weight"].value = 100.0
    panel.layer_weights["relu3_1"].value = 0.0
    panel.controls["steps"].value = 7
    panel.controls["optimizer"].value = "adam"
    panel.controls["lr"].value = "0.05"
    settings = panel.settings()
    assert settings.content_weight == pytest.approx(10.0) and settings.style_weight == pytest.approx(100.0)
    assert settings.style_layer_weights == {"relu1_1": 1.0, "relu2_1": 1.0, "relu3_1": 0.0, "relu4_1": 1.0,
                                            "relu5_1": 1.0}
    assert (settings.steps, settings.optimizer, settings.lr) == (7, "adam", 0.05)


def test_a_bad_text_value_is_a_clear_error(panel):
    panel.controls["lr"].value = "fast"
    with pytest.raises(st.ParameterError, match="lr must be a number, or empty"):
        panel.settings()
    panel.controls["lr"].value = "-1"
    with pytest.raises(st.ParameterError, match="lr must be greater than 0"):
        panel.settings()


def test_run_updates_preview_and_readout(panel):
    """Clicking Run runs in the background; the preview image and the loss readout change."""
    before = (panel.preview.value, panel.readout.value)
    panel.run_button.click()
    assert panel.run_button.disabled and not panel.stop_button.disabled
    result = panel.wait(60)
    assert result is not None and result.steps_run == 3
    assert panel.preview.value != before[0] and bytes(panel.preview.value).startswith(b"\x89PNG")
    assert panel.readout.value != before[1] and "done" in panel.readout.value
    assert not panel.run_button.disabled and panel.stop_button.disabled


def test_different_settings_give_a_different_result(panel):
    panel.run_button.click()
    first = panel.wait(60).history.total
    panel.controls["style_weight"].value = 1e3
    panel.run_button.click()
    second = panel.wait(60).history.total
    assert second[0] > first[0]


def test_stop_ends_the_run_and_keeps_the_best_image(panel):
    panel.controls["steps"].value = 500
    panel.run_button.click()
    deadline = time.time() + 60
    while "step" not in panel.readout.value and time.time() < deadline:
        time.sleep(0.02)
    panel.stop_button.click()
    result = panel.wait(60)
    assert result.stopped == "stopped" and 0 < result.steps_run < 500
    assert result.best_image.size == (48, 36)
    assert "stopped early" in panel.readout.value


def test_errors_show_in_the_readout_and_reach_wait(panel):
    panel.controls["size"].value = 32
    panel.layer_weights["relu1_1"].value = 0.0
    panel.content = "no/such/photo.jpg"
    panel.run_button.click()
    with pytest.raises(st.ImageError):
        panel.wait(60)
    assert "error" in panel.readout.value and not panel.run_button.disabled


def test_the_panel_keeps_the_settings_it_is_given(model, content_image, style_image):
    """Ranges stretch to hold the starting values: Run does what `stylize` would do with the same settings."""
    given = st.Settings(size=16, content_weight=0.0, style_weight=1e4, tv_weight=1e-7,
                        style_layer_weights={"relu1_1": 3.0}, init=content_image, seed=None)
    panel = panel_module.StylePanel(content_image, style_image, model, given)
    assert panel.settings() == given
