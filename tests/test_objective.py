"""The scale-free objective: relative errors, so nothing depends on how large the activations are."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
import torch
from PIL import Image

import styletransfer_utils as st
from conftest import gradient_image, stripes_image, torchvision_state_dict, write_checkpoint


def scaled_state(state: dict[str, torch.Tensor], factor: float) -> dict[str, torch.Tensor]:
    """conv1_1's weights and every bias times ``factor``: every activation of the ReLU network scales by it."""
    scaled = {key: value.clone() for key, value in state.items()}
    scaled["features.0.weight"] *= factor
    for key in scaled:
        if key.endswith(".bias"):
            scaled[key] *= factor
    return scaled


@pytest.fixture(scope="module")
def scaled_models(tmp_path_factory):
    """The same random network at activation scales 1, 1/4 and 4 (biases made non-zero so they matter)."""
    torch.manual_seed(1)
    state = torchvision_state_dict(seed=7)
    for key in state:
        if key.endswith(".bias"):
            state[key] = torch.randn_like(state[key]) * 0.05
    folder = tmp_path_factory.mktemp("scaled")
    return {factor: st.load_vgg19(write_checkpoint(folder, scaled_state(state, factor), stem=f"vgg19-x{factor}"))
            for factor in (1.0, 0.25, 4.0)}


def test_the_checkpoints_really_scale_every_activation(scaled_models):
    image = st.image_to_tensor(gradient_image(48, 40))
    layers = [*st.STYLE_LAYERS, st.CONTENT_LAYER, "conv3_2"]
    with torch.no_grad():
        reference = st.extract_features(scaled_models[1.0], image, layers)
        for factor in (0.25, 4.0):
            scaled = st.extract_features(scaled_models[factor], image, layers)
            for name in layers:
                torch.testing.assert_close(scaled[name], factor * reference[name], rtol=1e-5, atol=1e-6)


def test_objective_terms_do_not_change_with_the_activation_scale(scaled_models):
    content, style = st.image_to_tensor(gradient_image(48, 40)), st.image_to_tensor(stripes_image(40, 48))
    image = (content + 0.2 * torch.rand_like(content)).clamp(0, 1)
    values = {}
    for factor, model in scaled_models.items():
        objective = st.StyleTransferLoss(model, content, style, tv_weight=0.5)
        with torch.no_grad():
            values[factor] = objective(image)[1]
    for factor in (0.25, 4.0):
        for part in ("content", "style", "tv", "total"):
            assert getattr(values[factor], part) == pytest.approx(getattr(values[1.0], part), rel=1e-4), part


@pytest.mark.parametrize("optimizer", ["lbfgs", "adam"])
def test_stylize_gives_the_same_picture_at_any_activation_scale(scaled_models, optimizer):
    """The CI form of the issue's check: activations x1/4 and x4 give the same result, pixel for pixel (±1/255)."""
    results = {
        factor: st.stylize(gradient_image(64, 48), stripes_image(40, 56), model=model, size=64, steps=12,
                           optimizer=optimizer, precision="fp32", scales=2)
        for factor, model in scaled_models.items()
    }
    reference = np.asarray(results[1.0].best_image, dtype=np.int16)
    assert results[1.0].steps_run == 12 and results[1.0].best_loss < results[1.0].history.total[0]
    for factor in (0.25, 4.0):
        difference = np.abs(np.asarray(results[factor].best_image, dtype=np.int16) - reference)
        assert difference.max() <= 1, (factor, difference.max())
        assert results[factor].best_loss == pytest.approx(results[1.0].best_loss, rel=1e-3)


def test_equal_layer_weights_give_comparable_shares(model, content_image, style_image):
    """Each style layer's term is a relative error: at the content photo each is of order one."""
    objective = st.StyleTransferLoss(model, st.image_to_tensor(content_image), st.image_to_tensor(style_image))
    with torch.no_grad():
        losses = objective(st.image_to_tensor(content_image))[1]
    assert list(losses.style_layers) == list(st.STYLE_LAYERS)
    assert sum(losses.style_layers.values()) == pytest.approx(losses.style, rel=1e-5)
    assert all(0.01 < term < 100 for term in losses.style_layers.values()), losses.style_layers


def test_a_black_style_image_gives_a_finite_objective_and_a_picture(tmp_path, content_image):
    """Black style + a first layer that cannot fire on it: every style target is all zeros.

    Those terms cannot be matched relatively; they are left out with a warning
    instead of dividing by zero, and the run still ends with a picture.
    """
    state = torchvision_state_dict(seed=2)
    state["features.0.weight"] = state["features.0.weight"].abs()  # black (normalised < 0) -> conv1_1 < 0
    model = st.load_vgg19(write_checkpoint(tmp_path, state))
    black = Image.new("RGB", (48, 48))
    with pytest.warns(UserWarning, match="all zeros"):
        result = st.stylize(content_image, black, model=model, size=48, steps=3, scales=1)
    assert all(np.isfinite(result.history.total)) and result.best_image.size == (48, 36)


@pytest.mark.parametrize("colour", [(0, 0, 0), (128, 128, 128), (255, 255, 255)])
def test_flat_style_images_work(model, content_image, colour):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # a layer may be all zeros for a flat picture
        result = st.stylize(content_image, Image.new("RGB", (40, 40), colour), model=model, size=48, steps=3)
    assert all(np.isfinite(result.history.total)) and result.best_image.size == (48, 36)


def test_best_size_says_when_a_run_stopped_at_a_coarse_scale(model, content_image, style_image):
    """Stopped during the first of three scales: the picture was computed at the coarse size and says so."""
    stop = __import__("threading").Event()

    def stop_after_two(step, image, losses):
        if step == 1:
            stop.set()

    result = st.stylize(content_image, style_image, model=model, size=96, steps=30, scales=3,
                        callback=stop_after_two, stop=stop)
    assert result.stopped == "stopped"
    assert result.size == 96 and result.best_size == 24
    assert result.best_image.size == (96, 72)
    finished = st.stylize(content_image, style_image, model=model, size=96, steps=6, scales=3)
    assert finished.best_size == finished.size == 96
