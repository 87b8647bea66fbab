"""The slider panel of notebook 06, driven from Python without a browser."""

from __future__ import annotations

import time

import pytest

import styletransfer_utils as st

pytest.importorskip("ipywidgets")


@pytest.fixture()
def panel(model, content_image, style_image):
    return st.StylePanel(content_image, style_image, model, size=48, steps=3, preview_every=1)


def test_the_panel_starts_from_stylizes_defaults(model, content_image, style_image):
    """Same α, β and TV as `stylize` (the TV slider's left end, 1e-6, stands for TV 0: a log slider has no 0)."""
    panel = st.StylePanel(content_image, style_image, model)
    default = st.stylize_defaults()
    assert panel.content_weight.value == default["content_weight"]
    assert panel.style_weight.value == default["style_weight"]
    assert default["tv_weight"] == 0 and panel.tv_weight.value == pytest.approx(1e-6)
    assert panel.settings()["tv_weight"] == 0.0  # the left end means exactly no TV
    assert all(slider.value == 1.0 for slider in panel.layer_weights.values())


def test_sliders_set_the_stylize_settings(panel):
    panel.content_weight.value = 10.0
    panel.style_weight.value = 100.0
    panel.layer_weights["relu3_1"].value = 0.0
    panel.steps.value = 7
    settings = panel.settings()
    assert settings["content_weight"] == pytest.approx(10.0) and settings["style_weight"] == pytest.approx(100.0)
    assert settings["style_layer_weights"]["relu3_1"] == 0.0 and settings["steps"] == 7
    assert set(settings["style_layer_weights"]) == set(st.STYLE_LAYERS)


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
    panel.style_weight.value = 1e3
    panel.run_button.click()
    second = panel.wait(60).history.total
    assert second[0] > first[0]


def test_stop_ends_the_run_and_keeps_the_best_image(panel):
    panel.steps.value = 500
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
    panel.size.value = 32
    panel.layer_weights["relu1_1"].value = 0.0
    panel.content = "no/such/photo.jpg"
    panel.run_button.click()
    with pytest.raises(st.ImageError):
        panel.wait(60)
    assert "error" in panel.readout.value and not panel.run_button.disabled
