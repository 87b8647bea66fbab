"""Sections 5 and 6 of the module: the loop and `stylize` in its named steps, on tiny images, random weights."""

from __future__ import annotations

import dataclasses
import threading

import numpy as np
import pytest
import torch

import styletransfer_utils as st
from styletransfer_tools import files


def run(model, content, style, **options):
    options = {"size": 64, "steps": 6, "model": model, "device": "cpu", **options}
    return st.stylize(content, style, **options)


def test_total_loss_goes_down(model, content_image, style_image):
    """A few Adam steps on a 64 px pair lower the total loss, and the result has the content's shape."""
    result = run(model, content_image, style_image, steps=8)
    assert result.history.total[-1] < 0.8 * result.history.total[0]
    assert result.image.size == result.best_image.size == (64, 48)
    assert result.steps_run == 8 and result.stopped is None
    assert result.best_loss == min(result.history.total)
    assert result.history.size == [64] * 8


def test_lbfgs_also_lowers_the_loss(model, content_image, style_image):
    result = run(model, content_image, style_image, optimizer="lbfgs", lr=1.0, steps=6)
    assert result.history.total[-1] < result.history.total[0]


def test_style_and_content_of_different_shapes(model, content_image, style_image):
    """Portrait style, landscape content: works, result takes the content's aspect ratio."""
    result = run(model, content_image.resize((90, 30)), style_image, size=80, steps=2)
    assert result.image.size == (80, 27)


def test_seed_makes_noise_runs_repeatable(model, content_image, style_image):
    first = run(model, content_image, style_image, init="noise", seed=3, steps=3)
    again = run(model, content_image, style_image, init="noise", seed=3, steps=3)
    other = run(model, content_image, style_image, init="noise", seed=4, steps=3)
    assert np.array_equal(np.asarray(first.image), np.asarray(again.image))
    assert not np.array_equal(np.asarray(first.image), np.asarray(other.image))


def test_init_from_an_image_file(model, content_image, style_image, tmp_path):
    """init=PATH starts from that picture: after one tiny step the image is close to it, not to the content."""
    start = files.save_image(style_image.resize((64, 48)), tmp_path / "start.png")
    result = run(model, content_image, style_image, init=str(start), steps=1, lr=1e-3)
    image = st.image_to_tensor(result.image)
    assert (image - st.image_to_tensor(st.load_image(start))).abs().mean() < 0.01
    assert (image - st.image_to_tensor(content_image)).abs().mean() > 0.1


def test_callback_sees_every_step(model, content_image, style_image):
    """callback(step, image, losses) is called once per step with a [0, 1] image tensor."""
    seen = []
    run(model, content_image, style_image, steps=4, callback=lambda s, img, losses: seen.append((s, img.shape, losses)))
    assert [s for s, _, _ in seen] == [0, 1, 2, 3]
    assert all(shape == (1, 3, 48, 64) and isinstance(x, st.Losses) for _, shape, x in seen)


def test_stop_event_ends_the_run_and_keeps_the_best(model, content_image, style_image):
    stop = threading.Event()

    def stop_after_three(step, image, losses):
        if step == 2:
            stop.set()

    result = run(model, content_image, style_image, steps=50, callback=stop_after_three, stop=stop)
    assert result.stopped == "stopped" and result.steps_run == 3
    assert result.best_image.size == (64, 48)


def test_ctrl_c_keeps_the_best_image(model, content_image, style_image):
    def interrupt(step, image, losses):
        if step == 3:
            raise KeyboardInterrupt

    result = run(model, content_image, style_image, steps=50, callback=interrupt)
    assert result.stopped == "interrupted" and result.steps_run == 4
    assert result.best_loss == min(result.history.total)


def test_diverging_loss_stops_with_a_reason(model, content_image, style_image, monkeypatch):
    """A NaN loss (fp16 overflow, say) stops the run, says why, and keeps the best finite image."""
    evaluate = st.StyleTransferLoss.__call__
    calls = []

    def nan_from_third_call(self, image):
        calls.append(1)
        total, losses = evaluate(self, image)
        if len(calls) >= 3:
            return total * float("nan"), st.Losses({**losses.terms, "style": float("nan")}, float("nan"))
        return total, losses

    monkeypatch.setattr(st.StyleTransferLoss, "__call__", nan_from_third_call)
    result = run(model, content_image, style_image, steps=5)
    assert result.stopped is not None and "nan at step 2" in result.stopped and "lr" in result.stopped
    assert result.steps_run == 2 and result.best_step == 1
    assert np.isfinite(result.best_loss)


def test_huge_learning_rate_cannot_escape_the_pixel_range(model, content_image, style_image):
    """Pixels are clamped to [0, 1] after every step, so even lr=1e30 leaves a valid image and best loss."""
    result = run(model, content_image, style_image, optimizer="lbfgs", lr=1e30, steps=4)
    assert result.stopped is None and np.isfinite(result.best_loss)
    assert result.best_loss == min(result.history.total)


def test_best_image_is_the_lowest_loss_image(model, content_image, style_image):
    """Re-evaluating the returned best image gives the best loss recorded (fp32, one scale)."""
    result = run(model, content_image, style_image, steps=5, precision="fp32", lr=0.005)
    content = st.image_to_tensor(content_image)
    style = st.image_to_tensor(st.resize_longer_side(style_image, 64))
    _, losses = st.StyleTransferLoss(model, content, style)(st.image_to_tensor(result.best_image))
    assert losses.total == pytest.approx(result.best_loss, rel=0.02)
    assert result.best_step == result.history.total.index(result.best_loss)


def test_precision_choice():
    """auto: bf16 only where the CPU has native bf16; fp16 is refused on the CPU; unknown names refused."""
    cpu = torch.device("cpu")
    native = torch.cpu._is_avx512_bf16_supported() or torch.cpu._is_amx_tile_supported()
    assert st.choose_precision("auto", cpu) == (torch.bfloat16 if native else None)
    assert st.choose_precision("fp32", cpu) is None
    with pytest.raises(st.ParameterError, match="GPUs"):
        st.choose_precision("fp16", cpu)
    with pytest.raises(st.ParameterError, match="precision"):
        st.choose_precision("fp8", cpu)


@pytest.mark.parametrize(
    ("option", "value", "message"),
    [
        ("steps", 0, "steps"),
        ("steps", -3, "steps"),
        ("size", 0, "size"),
        ("lr", -0.1, "lr"),
        ("style_weight", -1.0, "style_weight"),
        ("content_weight", float("nan"), "content_weight"),
        ("optimizer", "sgd", "adam"),
        ("content_layer", "conv9_1", "content_layer must be one of"),
        ("style_layer_weights", {"relu6_1": 1.0}, "Valid names"),
        ("init", "gaussian", "init"),
    ],
)
def test_bad_parameters_are_refused_clearly(model, content_image, style_image, option, value, message):
    with pytest.raises(st.ParameterError, match=message):
        run(model, content_image, style_image, **{option: value})


def test_too_small_size_says_what_is_needed(model, content_image, style_image):
    with pytest.raises(st.ImageError, match="at least 16"):
        run(model, content_image.resize((200, 10)), style_image, size=64)


def test_unavailable_devices_are_refused(model, content_image, style_image):
    if not torch.cuda.is_available():
        with pytest.raises(st.DeviceError, match="CUDA"):
            st.choose_device("cuda")
    with pytest.raises(st.DeviceError, match="device cannot be 'gpu7'"):
        st.choose_device("gpu7")
    assert st.choose_device("cpu") == torch.device("cpu")


@pytest.mark.parametrize(
    ("shape", "steps", "scales", "expected"),
    [
        ((384, 256), 80, None, [(96, 11), (192, 22), (384, 47)]),
        ((64, 48), 300, None, [(64, 300)]),
        ((256, 256), 300, 2, [(128, 100), (256, 200)]),
        ((640, 480), 301, 3, [(160, 43), (320, 86), (640, 172)]),
        ((512, 512), 10, 1, [(512, 10)]),
        ((512, 512), 1, 3, [(512, 1)]),
    ],
)
def test_scale_schedule(shape, steps, scales, expected):
    """Coarse-to-fine: halving sizes ending at full size, half the steps per coarser scale, all steps used."""
    assert st.scale_schedule(shape, steps, scales) == expected


def test_scale_schedule_refuses_too_small_coarse_scale():
    with pytest.raises(st.ImageError, match="fewer scales"):
        st.scale_schedule((512, 40), 10, 3)


def test_coarse_to_fine_run(model, content_image, style_image):
    """Two scales: the history records both sizes; the result has the full size."""
    result = run(model, content_image, style_image, size=96, steps=6, scales=2)
    assert result.history.size == [48] * 2 + [96] * 4
    assert result.best_image.size == (96, 72) and result.best_step >= 2


def test_stop_during_coarse_scale_still_gives_full_size(model, content_image, style_image):
    stop = threading.Event()
    result = run(model, content_image, style_image, size=96, steps=10, scales=2,
                 callback=lambda step, image, losses: step == 1 and stop.set(), stop=stop)
    assert result.stopped == "stopped" and result.steps_run == 2
    assert result.best_image.size == (96, 72)


def test_all_weights_zero_is_refused(model, content_image, style_image):
    with pytest.raises(st.ParameterError, match="nothing to optimise"):
        run(model, content_image, style_image, content_weight=0, style_weight=0)


@pytest.mark.parametrize("longer", [64, 384, 768, 2000])
@pytest.mark.parametrize("steps", [1, 2, 3, 4, 5, 7, 10, 250])
@pytest.mark.parametrize("scales", [None, 1, 2, 3, 4, 6])
def test_every_scale_gets_steps(longer, steps, scales):
    """Whatever the size, steps and scales: every scale runs, the steps add up, the last scale is full size."""
    schedule = st.scale_schedule((longer, longer // 2), steps, scales, min_side=1)
    assert schedule[-1][0] == longer
    assert all(count >= 1 for _, count in schedule)
    assert sum(count for _, count in schedule) == steps
    assert [size for size, _ in schedule] == sorted({size for size, _ in schedule})


def test_elongated_style_image_limits_the_scales(model, content_image, style_image):
    """A very wide style image must not be shrunk below what conv5_1 needs at the coarse scale."""
    result = run(model, content_image, style_image.resize((400, 40)), size=192, steps=4)
    assert result.stopped is None and result.history.size == [192] * 4  # at 96 px it would be 10 px high


@pytest.mark.parametrize("value", [10.0, float("inf"), float("nan"), "3"])
def test_steps_must_be_a_whole_finite_number(model, content_image, style_image, value):
    with pytest.raises(st.ParameterError, match="steps"):
        run(model, content_image, style_image, steps=value)


def test_stylize_is_its_named_steps(model, content_image, style_image):
    """The steps notebook 05 names, called by hand in stylize's order, give stylize's picture to the bit."""
    settings = st.Settings(size=64, steps=6, device="cpu", precision="fp32")
    result = st.stylize(content_image, style_image, settings, model=model)
    images = st.prepare_images(content_image, style_image, settings)
    network, history, runs, image = st.with_pooling(model, settings.pooling), st.LossHistory(), [], None
    for size, steps in st.plan_scales(images, settings):
        objective = st.scale_objective(network, images, settings, size)
        image = st.starting_image(image, objective, settings)
        runs.append((size, st.run_scale(objective, image, settings, steps, history)))
    by_hand = st.build_result(images, image, runs, history, settings, network, torch.device("cpu"), None, 0.0)
    assert np.array_equal(np.asarray(by_hand.best_image), np.asarray(result.best_image))
    assert by_hand.history.total == result.history.total and by_hand.best_size == result.best_size


def test_a_result_that_kept_no_state_resumes_as_an_ordinary_run(model, content_image, style_image):
    first = run(model, content_image, style_image, steps=3)
    again = run(model, content_image, style_image, steps=3, resume=dataclasses.replace(first, resume_state=None))
    assert again.history.total == first.history.total
