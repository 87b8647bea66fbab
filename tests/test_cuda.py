"""The CUDA path, where a GPU is present; skipped elsewhere (CI has none).

Run on a GPU machine with ``python -m pytest tests/test_cuda.py``. The CPU is
the reference: the same objective must give the same numbers on both devices.
"""

from __future__ import annotations

import pytest
import torch

import styletransfer_utils as st

pytestmark = pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA device")


@pytest.fixture()
def gpu_model(model):
    """The session's random network, moved to the GPU for one test and back afterwards."""
    yield model.to("cuda")
    model.to("cpu")


def test_gram_gradient_on_cuda_matches_the_cpu():
    features = torch.randn(1, 64, 48, 40).to(memory_format=torch.channels_last)
    weights = torch.randn(1, 64, 64)
    grads = []
    for device in ("cpu", "cuda"):
        x = features.to(device).clone().requires_grad_(True)
        (st.gram_matrix(x) * weights.to(device)).sum().backward()
        grads.append(x.grad.cpu())
    torch.testing.assert_close(grads[1], grads[0], atol=1e-6, rtol=1e-4)


def test_the_objective_is_the_same_on_cuda_and_cpu(model, content_image, style_image, monkeypatch):
    """float32 on both devices: the first objective and its gradient agree to rounding."""
    monkeypatch.setattr(torch.backends.cudnn, "allow_tf32", False)  # cuDNN's default TF32 keeps 10 mantissa bits
    content, style = st.image_to_tensor(content_image), st.image_to_tensor(style_image)
    results = []
    try:
        for device in ("cpu", "cuda"):
            objective = st.StyleTransferLoss(model.to(device), content.to(device), style.to(device), tv_weight=0.1)
            image = content.to(device).flip(-1).requires_grad_(True)
            total, losses = objective(image)
            total.backward()
            results.append((losses.total, image.grad.cpu()))
    finally:
        model.to("cpu")
    assert results[1][0] == pytest.approx(results[0][0], rel=1e-4)
    torch.testing.assert_close(results[1][1], results[0][1], atol=1e-6, rtol=1e-3)


def test_stylize_on_cuda_uses_bf16_where_native_and_converges(gpu_model, content_image, style_image):
    result = st.stylize(content_image, style_image, model=gpu_model, size=64, steps=20)
    native = torch.cuda.get_device_capability()[0] >= 8
    assert result.device.startswith("cuda")
    assert result.precision == ("bfloat16" if native else "fp32")
    assert result.history.total[-1] < result.history.total[0]
    assert result.best_image.size == content_image.size


def test_masks_and_resume_on_cuda(gpu_model, content_image, style_image):
    """The controls that move tensors between devices: masks are made on the GPU, a resume state on the CPU."""
    half = content_image.convert("L").point(lambda value: 255 if value > 128 else 0)
    first = st.stylize(content_image, [style_image], model=gpu_model, size=64, steps=4, masks=[half])
    again = st.stylize(content_image, [style_image], model=gpu_model, size=64, steps=4, masks=[half], resume=first)
    assert first.resume_state["image"].device.type == "cpu"
    assert again.steps_run == 4 and again.best_loss <= first.history.total[0]
