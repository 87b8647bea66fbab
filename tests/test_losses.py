"""Sections 3 and 4 of the module: features, Gram matrices and the three losses."""

from __future__ import annotations

import pytest
import torch

import styletransfer_utils as st


def test_extract_features_names_and_shapes(model, content_image):
    """Each requested layer comes back under its paper name with the right channels and size."""
    image = st.image_to_tensor(content_image)  # 48 x 64
    features = st.extract_features(model, image, ["conv1_1", "relu2_1", "conv4_2", "pool3"])
    assert list(features) == ["conv1_1", "relu2_1", "conv4_2", "pool3"]
    assert features["conv1_1"].shape == (1, 64, 48, 64)
    assert features["relu2_1"].shape == (1, 128, 24, 32)
    assert features["pool3"].shape == (1, 256, 6, 8)
    assert features["conv4_2"].shape == (1, 512, 6, 8)


@pytest.mark.parametrize("layers", [["conv3_1", "relu3_1"], ["conv4_2", "relu4_2"], ["conv4_2"]])
def test_conv_is_before_relu(model, content_image, layers):
    """convX_Y is the convolution's output (has negatives); reluX_Y is the same after the ReLU.

    torchvision's ReLUs are in-place: without care, a kept convX_Y would be overwritten by its ReLU.
    """
    image = st.image_to_tensor(content_image)
    features = st.extract_features(model, image, layers)
    conv = layers[0]
    assert features[conv].min() < 0
    index = st.VGG19_LAYER_INDEX[conv]
    with torch.no_grad():
        expected = model[:index](st.imagenet_normalize(image))
        expected = model[index](expected)
    torch.testing.assert_close(features[conv], expected)
    if len(layers) == 2:
        assert torch.equal(features[layers[1]], features[conv].clamp(min=0))
        assert not torch.equal(features[layers[1]], features[conv])


def test_normalisation_happens_inside(model, content_image):
    """extract_features takes [0, 1] pixels: the first conv sees the ImageNet-normalised image."""
    image = st.image_to_tensor(content_image)
    expected = model[0](st.imagenet_normalize(image))
    # atol: channels-last and the standard layout use different convolution kernels, which round differently;
    # without the normalisation the values would differ by more than 1
    assert torch.allclose(st.extract_features(model, image, ["conv1_1"])["conv1_1"], expected, atol=1e-5)


def test_forward_stops_at_deepest_layer(model, content_image, monkeypatch):
    """Layers after the deepest requested one are never run."""
    ran = []
    hooks = [
        layer.register_forward_hook(lambda m, i, o, n=name: ran.append(n))
        for name, layer in zip(st.VGG19_LAYER_NAMES, model, strict=True)
    ]
    try:
        st.extract_features(model, st.image_to_tensor(content_image), ["conv2_1"])
    finally:
        for hook in hooks:
            hook.remove()
    assert ran[-1] == "conv2_1" and "conv5_4" not in ran


def test_unknown_layer_lists_valid_names(model, content_image):
    with pytest.raises(st.ParameterError, match="conv4_2") as error:
        st.extract_features(model, st.image_to_tensor(content_image), ["conv6_1"])
    assert "conv6_1" in str(error.value)


def test_too_small_for_deep_layer(model):
    """A 1x1 image cannot reach conv5_1: the error says how many pixels are needed."""
    with pytest.raises(st.ImageError, match="at least 16 pixels"):
        st.extract_features(model, torch.rand(1, 3, 8, 40), st.STYLE_LAYERS)
    assert st.min_image_side(["conv1_1"]) == 1 and st.min_image_side(["conv5_1"]) == 16


def test_gram_matrix_properties():
    """Symmetric, positive semi-definite, normalised by C·H·W, blind to where features are."""
    features = torch.randn(1, 8, 5, 7)
    gram = st.gram_matrix(features)
    assert gram.shape == (1, 8, 8)
    assert torch.allclose(gram, gram.transpose(1, 2))
    assert torch.linalg.eigvalsh(gram[0]).min() > -1e-6
    flat = features.reshape(8, 35)
    assert torch.allclose(gram[0], flat @ flat.T / (8 * 35), atol=1e-6)
    shuffled = flat[:, torch.randperm(35)].reshape(1, 8, 5, 7)
    assert torch.allclose(st.gram_matrix(shuffled), gram, atol=1e-6)


def test_gram_matrix_does_not_depend_on_image_size():
    """Tiling the same texture twice as wide leaves the Gram matrix unchanged (needed for styles of any size)."""
    features = torch.randn(1, 4, 6, 6)
    assert torch.allclose(st.gram_matrix(torch.cat([features, features], dim=-1)), st.gram_matrix(features), atol=1e-6)


def test_gram_matrix_is_float32_for_bfloat16_input():
    assert st.gram_matrix(torch.randn(1, 4, 3, 3).bfloat16()).dtype == torch.float32


@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16])
@pytest.mark.parametrize("layout", [torch.contiguous_format, torch.channels_last])
def test_gram_matrix_gradient_is_autograds(dtype, layout, monkeypatch):
    """GramMatrix's written-out gradient (the paper's equation 6) equals what autograd derives from
    F Fᵀ / (C·H·W), for either layout and precision, also when the positions are taken in several slices."""
    monkeypatch.setattr(st.GramMatrix, "SLICE", 8 * 7)  # 8 channels: 7 positions per slice, 9 slices of 9 x 7
    features = torch.randn(2, 8, 9, 7).to(dtype=dtype, memory_format=layout)
    weights = torch.randn(2, 8, 8)  # a loss that is not symmetric in G, to test both halves of the formula
    ours = features.detach().requires_grad_(True)
    (st.gram_matrix(ours) * weights).sum().backward()
    by_hand = features.detach().float().requires_grad_(True)
    flat = by_hand.flatten(2)
    ((flat @ flat.transpose(1, 2) / (8 * 9 * 7)) * weights).sum().backward()
    assert ours.grad.dtype == dtype and ours.grad.shape == features.shape
    tolerance = 1e-6 if dtype == torch.float32 else 1e-2  # bf16: the gradient is rounded to the features' dtype
    torch.testing.assert_close(ours.grad.float(), by_hand.grad, atol=tolerance, rtol=tolerance)
    torch.testing.assert_close(st.gram_matrix(features), (flat @ flat.transpose(1, 2) / (8 * 9 * 7)).detach(),
                               atol=1e-6, rtol=1e-5)


def test_gram_matrix_stays_float32_inside_autocast():
    """Inside autocast, forward and backward still sum in float32: as exact as float32 outside it."""
    features = torch.randn(1, 16, 40, 40).bfloat16()
    weights = torch.randn(1, 16, 16)
    exact = features.double().requires_grad_(True)
    flat = exact.flatten(2)
    ((flat @ flat.transpose(1, 2) / (16 * 40 * 40)) * weights.double()).sum().backward()
    ours = features.clone().requires_grad_(True)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        gram = st.gram_matrix(ours)
        (gram * weights).sum().backward()
    assert gram.dtype == torch.float32
    torch.testing.assert_close(gram.double(), (flat @ flat.transpose(1, 2) / (16 * 40 * 40)).detach(),
                               rtol=1e-6, atol=1e-7)  # bf16 products or sums would be off by about 1e-3
    torch.testing.assert_close(ours.grad.double(), exact.grad, rtol=1e-2, atol=1e-5)  # rounded to bf16 at the end


def test_extract_features_keeps_the_callers_autocast(model, content_image):
    """Wrapped in torch.autocast by the caller (as notebooks 05 and 08 do to time bf16), the layers run in it."""
    image = st.image_to_tensor(content_image)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        features = st.extract_features(model, image, ["relu2_1"])
    assert features["relu2_1"].dtype == torch.bfloat16
    assert st.extract_features(model, image, ["relu2_1"])["relu2_1"].dtype == torch.float32


@pytest.mark.slow
def test_the_objective_keeps_no_float32_copies_and_no_pooling_indices(model, content_image, style_image):
    """What the backward pass needs is kept in the network's precision: no float32 copy of a style layer
    (GramMatrix) and no max-pooling indices (recomputed): 728 MiB at 1024 x 1024 px."""
    content = st.image_to_tensor(content_image.resize((256, 256)))
    objective = st.StyleTransferLoss(model, content, st.image_to_tensor(style_image), autocast_dtype=torch.bfloat16)
    image = content.clone().requires_grad_(True)
    kept = []
    with torch.autograd.graph.saved_tensors_hooks(lambda t: kept.append((t.dtype, t.numel())) or t, lambda t: t):
        total, _ = objective(image)
    total.backward()
    assert image.grad is not None and image.grad.abs().sum() > 0
    assert not [numel for dtype, numel in kept if dtype == torch.int64], "max-pooling indices were kept"
    # at 256 px relu1_1 ... relu3_1 are larger than any Gram matrix (512 x 512) or the content layer relu4_2
    large = st.extract_features(model, content, ["relu3_1"])["relu3_1"].numel()
    assert large > max(512 * 512, st.extract_features(model, content, [st.CONTENT_LAYER])[st.CONTENT_LAYER].numel())
    assert not [numel for dtype, numel in kept if dtype == torch.float32 and numel >= large], "float32 copies kept"
    assert [numel for dtype, numel in kept if dtype == torch.bfloat16 and numel >= large]  # the layers themselves


def test_terms_are_computed_as_their_layers_are_reached(model, content_image, style_image, monkeypatch):
    """Each style term is made right after its layer, before the network goes deeper: autograd then
    computes its gradient only when the backward pass is back at that layer."""
    content, style = st.image_to_tensor(content_image), st.image_to_tensor(style_image)
    objective = st.StyleTransferLoss(model, content, style)
    order, gram = [], st.GramMatrix.apply
    monkeypatch.setattr(st.GramMatrix, "apply", lambda f: order.append(("gram", f.shape[1])) or gram(f))
    hooks = [model[st.VGG19_LAYER_INDEX[name]].register_forward_hook(
        lambda module, inputs, output, name=name: order.append(("layer", name))) for name in ("conv2_1", "conv5_1")]
    try:
        objective(content.clone().requires_grad_(True))
    finally:
        for hook in hooks:
            hook.remove()
    grams_512 = [i for i, event in enumerate(order) if event == ("gram", 512)]  # relu4_1's, then relu5_1's
    assert order.index(("gram", 64)) < order.index(("layer", "conv2_1"))  # relu1_1's Gram before block 2
    assert grams_512[0] < order.index(("layer", "conv5_1")) < grams_512[1]


def test_iter_features_yields_in_network_order(model, content_image):
    image = st.image_to_tensor(content_image)
    pairs = list(st.iter_features(model, image, ["relu3_1", "conv1_1", "relu2_1"]))
    assert [name for name, _ in pairs] == ["conv1_1", "relu2_1", "relu3_1"]
    features = st.extract_features(model, image, ["relu3_1", "conv1_1", "relu2_1"])
    assert list(features) == ["relu3_1", "conv1_1", "relu2_1"]
    assert all(torch.equal(features[name], value) for name, value in pairs)


def test_content_loss_zero_only_at_target():
    target = torch.randn(1, 8, 4, 4)
    assert st.content_loss(target.clone(), target) == 0
    assert st.content_loss(target + 0.1, target) == pytest.approx(0.01, rel=1e-4)


def test_style_loss_zero_only_for_same_statistics():
    features = {"conv1_1": torch.randn(1, 4, 6, 6), "conv2_1": torch.randn(1, 6, 3, 3)}
    targets = {name: st.gram_matrix(f) for name, f in features.items()}
    assert st.style_loss(features, targets) == 0
    other = {name: f * 2 for name, f in features.items()}
    assert st.style_loss(other, targets) > 0


def test_style_loss_layer_weights():
    """Per-layer weights scale each layer's term; a zero weight switches a layer off."""
    features = {"conv1_1": torch.randn(1, 4, 6, 6), "conv2_1": torch.randn(1, 6, 3, 3)}
    targets = {name: st.gram_matrix(torch.randn_like(f)) for name, f in features.items()}
    first = st.style_loss(features, targets, {"conv1_1": 1.0})
    second = st.style_loss(features, targets, {"conv2_1": 1.0})
    both = st.style_loss(features, targets, {"conv1_1": 2.0, "conv2_1": 0.5})
    assert torch.allclose(both, 2 * first + 0.5 * second)
    assert torch.allclose(st.style_loss(features, targets, {"conv1_1": 1.0, "conv2_1": 0.0}), first)


def test_total_variation():
    """Zero for a flat image, positive for noise, and equal to the mean squared neighbour difference."""
    assert st.total_variation_loss(torch.full((1, 3, 8, 8), 0.3)) == 0
    ramp = torch.arange(4.0).view(1, 1, 1, 4).expand(1, 1, 2, 4)
    assert st.total_variation_loss(ramp) == pytest.approx(1.0)
    noise = torch.rand(1, 3, 8, 8)
    assert st.total_variation_loss(noise) > st.total_variation_loss(noise * 0.1) > 0


def test_gradients_reach_the_image_only(model, content_image, style_image):
    """Backward fills the image's gradient; the frozen network gets none."""
    content = st.image_to_tensor(content_image)
    style = st.image_to_tensor(style_image)
    objective = st.StyleTransferLoss(model, content, style, tv_weight=1.0)
    image = torch.rand_like(content, requires_grad=True)
    total, losses = objective(image)
    total.backward()
    assert image.grad is not None and image.grad.abs().sum() > 0
    assert all(p.grad is None and not p.requires_grad for p in model.parameters())
    assert losses.total == pytest.approx(losses.content + losses.style + losses.tv, rel=1e-5)
    assert min(losses.content, losses.style, losses.tv) > 0


def test_objective_zero_at_targets(model, content_image):
    """With the content image as its own style, the content image has zero content and style loss."""
    content = st.image_to_tensor(content_image)
    _, losses = st.StyleTransferLoss(model, content, content.clone())(content)
    assert losses.content == 0 and losses.style == pytest.approx(0, abs=1e-9)


def test_bf16_losses_close_to_fp32(model, content_image, style_image):
    """The mixed-precision path (bf16 network, fp32 Gram and losses) stays within 5% of fp32."""
    content = st.image_to_tensor(content_image)
    style = st.image_to_tensor(style_image)
    image = torch.rand_like(content)
    _, exact = st.StyleTransferLoss(model, content, style)(image)
    _, mixed = st.StyleTransferLoss(model, content, style, autocast_dtype=torch.bfloat16)(image)
    assert mixed.content == pytest.approx(exact.content, rel=0.05)
    assert mixed.style == pytest.approx(exact.style, rel=0.05)


def test_style_layer_weight_validation():
    with pytest.raises(st.ParameterError, match="Valid names"):
        st.check_style_layer_weights({"conv9_9": 1.0})
    with pytest.raises(st.ParameterError, match="must be at least 0"):
        st.check_style_layer_weights({"conv1_1": -1.0})


def test_zero_weights_cost_nothing(model, content_image, style_image, monkeypatch):
    """A zero-weighted term is not computed: with α = 0 and only conv1_1 the forward pass stops at conv1_1."""
    content = st.image_to_tensor(content_image)
    style = st.image_to_tensor(style_image)
    objective = st.StyleTransferLoss(model, content, style, content_weight=0.0,
                                     style_layer_weights={"conv1_1": 1.0, "conv5_1": 0.0})
    assert objective.layers == ["conv1_1"]
    total, losses = objective(torch.rand_like(content))
    assert losses.content == 0 and losses.style > 0
    style_only = st.StyleTransferLoss(model, content, style, style_weight=0.0)
    assert style_only.layers == [st.CONTENT_LAYER] and style_only(content)[1].total == 0
