"""The default optimiser (`PixelLBFGS`) converges on the cases the notebooks teach, at any objective scale.

These fail on a plain ``torch.optim.LBFGS(max_iter=1)``: its absolute thresholds learnt no curvature from
a relu1_1-only texture, and its steps overshot on one-scale runs with a large β (issue 20).
"""

from __future__ import annotations

from unittest import mock

import pytest
import torch
from PIL import Image

import styletransfer_utils as st
from conftest import gradient_image, load_benchmark, stripes_image
from styletransfer_tools import notebook


def texture_run(model, layers, steps=40):
    """Notebook 03's texture from noise: style only, one scale."""
    return st.stylize(Image.new("RGB", (72, 48)), stripes_image(40, 56), model=model, content_weight=0,
                      init="noise", scales=1, style_layer_weights={name: 1.0 for name in layers}, size=72,
                      steps=steps, precision="fp32")


def test_a_relu1_1_texture_from_noise_lowers_its_style_error_tenfold(model):
    run = texture_run(model, ["relu1_1"])
    assert run.best_loss < run.history.style[0] / 10


@pytest.mark.parametrize("beta", [100.0, 10.0])
@pytest.mark.parametrize("subset", [0, 4])
def test_a_figure3_run_at_one_scale_never_rises_above_twice_its_start(model, beta, subset):
    """Notebook 06's Figure 3 cells with the most style: one scale, from the photo."""
    layers = notebook.figure3_layer_subsets()[subset]
    run = st.stylize(gradient_image(72, 48), stripes_image(40, 56), model=model, style_weight=beta,
                     style_layer_weights=layers, size=72, steps=40, precision="fp32")
    assert set(run.history.size) == {72}
    assert max(run.history.total) <= 2 * run.history.total[0]
    assert run.best_loss < run.history.total[0] / 2


def lbfgs_path(objective, start, steps, factor=1.0):
    """The images PixelLBFGS visits on ``factor`` x ``objective``."""
    image = start.clone().requires_grad_(True)
    optimizer = st.new_optimizer("lbfgs", image, st.DEFAULT_LR["lbfgs"])
    path = []

    def closure():
        optimizer.zero_grad()
        total = factor * objective(image)[0]
        total.backward()
        return total

    for _ in range(steps):
        optimizer.step(closure)
        path.append(image.detach().clone())
    return path


@pytest.mark.parametrize("factor", [2.0**-30, 2.0**20])
def test_the_steps_do_not_depend_on_the_objectives_scale(model, content_image, style_image, factor):
    """A power of two scales every number exactly, so the path must be the same to the bit (any other
    factor rounds differently, and L-BFGS amplifies rounding: the same picture, the texture placed
    differently)."""
    content, style = st.image_to_tensor(content_image), st.image_to_tensor(style_image)
    objective = st.StyleTransferLoss(model, content, style)
    one, scaled = lbfgs_path(objective, content, 6), lbfgs_path(objective, content, 6, factor)
    assert all(torch.equal(a, b) for a, b in zip(one, scaled, strict=True))
    assert not torch.equal(one[-1], content)


def test_each_step_stays_in_range_and_moves_no_pixel_more_than_max_step(model, content_image, style_image):
    content, style = st.image_to_tensor(content_image), st.image_to_tensor(style_image)
    objective = st.StyleTransferLoss(model, content, style, style_weight=100.0)
    path = [content, *lbfgs_path(objective, content, 8)]
    moves = [(after - before).abs().max().item() for before, after in zip(path, path[1:], strict=False)]
    assert max(moves) <= st.MAX_PIXEL_STEP + 1e-6
    assert moves[0] == pytest.approx(st.MAX_PIXEL_STEP)  # the first step is a full one, not torch's tiny probe
    assert all(0 <= image.min() and image.max() <= 1 for image in path)


def test_the_levers_benchmarks_lbfgs_with_no_preconditioner_takes_pixellbfgs_steps(model, content_image, style_image):
    """benchmarks/optimiser_levers.py measures a preconditioner with its own L-BFGS; with the identity it must
    be `PixelLBFGS` (to rounding), or its figures would measure the rewrite as well as the preconditioner.
    Three pairs of history, so that the fifth step drops the oldest; rounding grows over more steps (random
    weights' max-pooling ties make the gradient jump), while a real difference showed from the second."""
    levers = load_benchmark("optimiser_levers")
    content, style = st.image_to_tensor(content_image), st.image_to_tensor(style_image)
    objective = st.StyleTransferLoss(model, content, style)
    with mock.patch.object(st, "LBFGS_HISTORY", 3):
        ours = lbfgs_path(objective, content, 5)
        with mock.patch.object(st, "new_optimizer", levers.preconditioned(lambda image: lambda gradient: gradient)):
            rewritten = lbfgs_path(objective, content, 5)
    for one, other in zip(ours, rewritten, strict=True):
        assert (one - other).abs().max() < 1e-4
    assert (rewritten[-1] - content).abs().max() > 0.1
