"""VGG19 and its weights: the layer table, and every way a checkpoint arrives or fails.

No test reaches the internet. ``file://`` URLs stand in for downloads (torch.hub
fetches them with the same code, hash check included), and the one "offline"
test points the default URL at a closed local port, which fails at once.
"""

from __future__ import annotations

import hashlib
import os
import pickle
import shlex
import shutil
import socket
from pathlib import Path

import pytest
import torch
from torch import nn

import styletransfer_utils as st
from conftest import torchvision_state_dict, write_checkpoint
from styletransfer_tools import checkpoints as tool_checkpoints
from styletransfer_tools import cli

NOT_VGG19 = "torchvision's vgg19 checkpoint"  # compared case-insensitively
CONV_INDICES = (0, 2, 5, 7, 10, 12, 14, 16, 19, 21, 23, 25, 28, 30, 32, 34)
CONV_NAMES = (
    "conv1_1", "conv1_2",
    "conv2_1", "conv2_2",
    "conv3_1", "conv3_2", "conv3_3", "conv3_4",
    "conv4_1", "conv4_2", "conv4_3", "conv4_4",
    "conv5_1", "conv5_2", "conv5_3", "conv5_4",
)  # fmt: skip
POOL_INDICES = (4, 9, 18, 27, 36)
# (in, out) channels of each convolution, from the shared reference
CONV_CHANNELS = ((3, 64), (64, 64), (64, 128), (128, 128), (128, 256)) + ((256, 256),) * 3 \
    + ((256, 512),) + ((512, 512),) * 7


def assert_weights_equal(model: torch.nn.Sequential, state: dict[str, torch.Tensor]) -> None:
    loaded = model.state_dict()
    for index, name in zip(CONV_INDICES, CONV_NAMES, strict=False):
        for part in ("weight", "bias"):
            assert torch.equal(loaded[f"{index}.{part}"], state[f"features.{index}.{part}"]), f"{name}.{part}"


def cache_files(hub_dir: Path) -> list[Path]:
    folder = hub_dir / "checkpoints"
    return sorted(folder.iterdir()) if folder.exists() else []


@pytest.fixture(scope="module")
def state0() -> dict[str, torch.Tensor]:
    """The weights that conftest's ``checkpoint_path`` holds."""
    return torchvision_state_dict(seed=0)


def save(path: Path, obj) -> Path:
    torch.save(obj, path)
    return path


# --------------------------------------------------------------------------
# 1. The layer table and the network
# --------------------------------------------------------------------------


def test_layer_names_match_torchvision_indices():
    """Paper names sit at torchvision's indices (the shared reference's table), so its checkpoint maps onto them."""
    names = st.VGG19_LAYER_NAMES
    assert len(names) == 37
    assert tuple(names[i] for i in CONV_INDICES) == CONV_NAMES
    assert tuple(names[i] for i in POOL_INDICES) == ("pool1", "pool2", "pool3", "pool4", "pool5")
    assert st.VGG19_CONV_LAYERS == CONV_NAMES
    assert st.VGG19_LAYER_INDEX["relu1_1"] == 1
    assert st.VGG19_LAYER_INDEX["relu4_2"] == 22
    for index in CONV_INDICES:  # each convolution's ReLU follows it
        assert names[index + 1] == "relu" + names[index][4:]


def test_the_model_is_torchvisions_vgg19_features():
    """load_vgg19 returns torchvision's own module: its 3x3 convs, 2x2 max-pools and in-place ReLUs."""
    import torchvision

    model = st.load_vgg19("random")
    reference = torchvision.models.vgg19().features
    assert [type(layer) for layer in model] == [type(layer) for layer in reference]
    assert {k: v.shape for k, v in model.state_dict().items()} == {
        k: v.shape for k, v in reference.state_dict().items()
    }
    convs = [model[i] for i in CONV_INDICES]
    assert tuple((c.in_channels, c.out_channels) for c in convs) == CONV_CHANNELS
    assert all(isinstance(model[i], nn.MaxPool2d) for i in POOL_INDICES)
    assert all(layer.inplace for layer in model if isinstance(layer, nn.ReLU))  # torchvision's, untouched


def test_random_weights_follow_torch_manual_seed():
    torch.manual_seed(3)
    first = st.load_vgg19("random").state_dict()
    torch.manual_seed(3)
    second = st.load_vgg19("random").state_dict()
    assert all(torch.equal(first[key], second[key]) for key in first)
    assert first["0.weight"].std() > 0


def test_features_equal_torchvisions_forward_pass(checkpoint_path):
    """At every paper name, extract_features equals torchvision's own forward pass up to that index."""
    import torchvision

    reference = torchvision.models.vgg19().features.eval()
    reference.load_state_dict(st.load_vgg19(checkpoint_path).state_dict())
    image = torch.rand(1, 3, 40, 40)
    ours = st.extract_features(st.load_vgg19(checkpoint_path), image, st.VGG19_LAYER_NAMES)
    for name, index in st.VGG19_LAYER_INDEX.items():
        with torch.no_grad():
            expected = reference[: index + 1](st.imagenet_normalize(image))
        torch.testing.assert_close(ours[name], expected, msg=name)


# --------------------------------------------------------------------------
# 2-3. Loading from a local path
# --------------------------------------------------------------------------


def test_load_features_only_checkpoint_from_path(checkpoint_path, state0):
    """A features-only checkpoint loads unchanged, frozen and in eval mode."""
    model = st.load_vgg19(checkpoint_path, device="cpu")
    assert_weights_equal(model, state0)
    assert not model.training and not any(m.training for m in model.modules())
    assert not any(p.requires_grad for p in model.parameters())
    assert str(checkpoint_path) in model.weights_source


def test_load_full_checkpoint_ignores_classifier(tmp_path):
    """torchvision's full checkpoint (with classifier.*) loads; the classifier is dropped."""
    state = torchvision_state_dict(seed=3, classifier=True)
    path = save(tmp_path / "vgg19-full.pth", state)
    model = st.load_vgg19(path, device="cpu")
    assert_weights_equal(model, state)
    assert not any("classifier" in key for key in model.state_dict())


def test_classifier_is_never_read_into_memory(tmp_path, monkeypatch):
    """A path is memory-mapped, and the model holds only the features: the 548 MB classifier stays on disk."""
    calls = []
    real_load = torch.load
    monkeypatch.setattr(torch, "load", lambda *a, **k: calls.append(k) or real_load(*a, **k))
    path = save(tmp_path / "vgg19-full.pth", torchvision_state_dict(seed=3, classifier=True))
    model = st.load_vgg19(path, device="cpu")
    assert calls[0].get("mmap") is True
    assert sum(p.numel() for p in model.parameters()) == 20_024_384  # VGG19's 16 convolutions, no classifier


def test_features_only_command_makes_a_small_checkpoint_that_loads(tmp_path):
    """`features-only` copies the features out of a full checkpoint; the copy loads to the same weights."""
    state = torchvision_state_dict(seed=4, classifier=True)
    full = save(tmp_path / "vgg19-full.pth", state)
    small = tmp_path / "vgg19-features.pth"
    assert cli.main(["features-only", str(full), str(small)]) == 0
    saved = torch.load(small, weights_only=True)
    assert sorted(saved) == sorted(key for key in state if key.startswith("features."))
    assert_weights_equal(st.load_vgg19(small), state)
    assert [p.name for p in tmp_path.iterdir() if p.name.endswith(".partial")] == []


def test_features_only_command_refuses_a_wrong_file(tmp_path, capsys):
    bad = save(tmp_path / "other.pth", {"weight": torch.zeros(3)})
    destination = tmp_path / "out.pth"
    assert cli.main(["features-only", str(bad), str(destination)]) == cli.EXIT_WEIGHTS
    assert "not torchvision's VGG19" in capsys.readouterr().err
    assert not destination.exists()


def test_imagenet_top5_uses_the_weights_categories(tmp_path):
    """Five (category, probability) pairs, best first, named by VGG19_Weights' metadata."""
    from conftest import gradient_image

    path = save(tmp_path / "vgg19-full.pth", torchvision_state_dict(seed=5, classifier=True))
    top = tool_checkpoints.imagenet_top5(gradient_image(80, 60), weights=path)
    assert len(top) == 5
    categories = st.VGG19_WEIGHTS.meta["categories"]
    assert all(name in categories for name, _ in top)
    probabilities = [p for _, p in top]
    assert probabilities == sorted(probabilities, reverse=True) and 0 < sum(probabilities) <= 1 + 1e-6


def test_imagenet_top5_needs_the_classifier(checkpoint_path):
    from conftest import gradient_image

    with pytest.raises(st.WeightsError, match="no classifier"):
        tool_checkpoints.imagenet_top5(gradient_image(80, 60), weights=checkpoint_path)


# --------------------------------------------------------------------------
# 4-5. Downloads through torch.hub's cache (file:// URLs, no network)
# --------------------------------------------------------------------------


def test_download_from_url_is_cached_and_reused(tmp_path, hub_dir):
    """A URL is fetched once into torch.hub's cache; later loads use the cached copy."""
    state = torchvision_state_dict(seed=1)
    source = write_checkpoint(tmp_path, state)
    url = source.as_uri()

    first = st.load_vgg19(url, device="cpu")
    cached = hub_dir / "checkpoints" / source.name
    assert cached.is_file()
    assert "downloaded to" in first.weights_source
    assert_weights_equal(first, state)

    source.unlink()  # a second download would now fail
    second = st.load_vgg19(url, device="cpu")
    assert "cached at" in second.weights_source
    assert_weights_equal(second, state)


def test_download_with_wrong_hash_is_refused_and_not_kept(tmp_path, hub_dir, checkpoint_path):
    """A file whose content does not match the hash in its name is refused and not cached."""
    wrong = tmp_path / "vgg19-00000000.pth"
    shutil.copyfile(checkpoint_path, wrong)
    with pytest.raises(st.WeightsError, match="hash"):
        st.load_vgg19(wrong.as_uri(), device="cpu")
    assert cache_files(hub_dir) == []


# --------------------------------------------------------------------------
# 6. weights="imagenet": environment variable, cache, and offline advice
# --------------------------------------------------------------------------


def test_imagenet_from_env_path(monkeypatch, checkpoint_path, state0):
    """$STYLETRANSFER_VGG19_WEIGHTS may point at a local copy for offline classrooms."""
    monkeypatch.setenv(st.WEIGHTS_ENV, str(checkpoint_path))
    model = st.load_vgg19("imagenet", device="cpu")
    assert_weights_equal(model, state0)
    assert st.WEIGHTS_ENV in model.weights_source


def test_imagenet_from_env_url(monkeypatch, hub_dir, checkpoint_path, state0):
    """$STYLETRANSFER_VGG19_WEIGHTS may also be a URL (here file://), fetched through the cache."""
    monkeypatch.setenv(st.WEIGHTS_ENV, checkpoint_path.as_uri())
    model = st.load_vgg19("imagenet", device="cpu")
    assert_weights_equal(model, state0)
    assert st.WEIGHTS_ENV in model.weights_source
    assert (hub_dir / "checkpoints" / checkpoint_path.name).is_file()


def test_imagenet_offline_fails_fast_with_advice(monkeypatch, hub_dir, no_weights_env):
    """Without network or cache: one connection attempt, bounded by a timeout, then a WeightsError
    saying how to get the weights (no network is used: the connection is refused here)."""
    attempts = []

    def refuse(address, *args, **kwargs):
        attempts.append((address, socket.getdefaulttimeout()))
        raise ConnectionRefusedError(111, "Connection refused")

    monkeypatch.setattr(socket, "create_connection", refuse)
    with pytest.raises(st.WeightsError) as raised:
        st.load_vgg19("imagenet", device="cpu")
    assert attempts == [(("download.pytorch.org", 443), 15)]
    message = str(raised.value)
    assert "Could not download https://download.pytorch.org/models/vgg19-dcbb9e9d.pth" in message
    assert st.WEIGHTS_ENV in message
    assert 'set the weights to "random"' in message
    assert str(hub_dir / "checkpoints") in message
    assert cache_files(hub_dir) == []


def test_imagenet_uses_file_already_in_cache(monkeypatch, hub_dir, no_weights_env):
    """vgg19-dcbb9e9d.pth copied into torch.hub's cache is used as is, with no network."""
    state = torchvision_state_dict(seed=2)
    (hub_dir / "checkpoints").mkdir(parents=True)
    save(hub_dir / "checkpoints" / "vgg19-dcbb9e9d.pth", state)

    def no_download(*args, **kwargs):
        raise AssertionError("tried to download although the file is cached")

    monkeypatch.setattr(torch.hub, "download_url_to_file", no_download)
    model = st.load_vgg19("imagenet", device="cpu")
    assert_weights_equal(model, state)
    assert "cached at" in model.weights_source


# --------------------------------------------------------------------------
# 7. Paths that are not files
# --------------------------------------------------------------------------


def test_missing_path_explains_what_to_do(tmp_path):
    """A path with no file behind it names the path and says how to get the weights."""
    missing = tmp_path / "nowhere" / "vgg19.pth"
    with pytest.raises(st.WeightsError) as raised:
        st.load_vgg19(missing, device="cpu")
    message = str(raised.value)
    assert str(missing) in message
    assert 'set the weights to "random"' in message and st.WEIGHTS_ENV in message


def test_directory_is_not_a_weights_file(tmp_path):
    """A folder given as weights is refused with a WeightsError."""
    with pytest.raises(st.WeightsError):
        st.load_vgg19(tmp_path, device="cpu")


# --------------------------------------------------------------------------
# 8. Checkpoints that are not torchvision's VGG19
# --------------------------------------------------------------------------


def _wrong_keys():
    return {"foo": torch.zeros(3)}


def _wrong_shape():
    state = torchvision_state_dict(seed=0)
    state["features.5.weight"] = torch.zeros(128, 64, 5, 5)
    return state


def _vgg16_like():
    state = torchvision_state_dict(seed=0)
    del state["features.16.weight"], state["features.16.bias"]
    return state


def _batch_norm_keys():
    state = torchvision_state_dict(seed=0)
    state["features.1.running_mean"] = torch.zeros(64)
    return state


def _not_a_dict():
    return list(torchvision_state_dict(seed=0).values())


def _integer_keys():
    return {0: torch.zeros(3)}


@pytest.mark.parametrize(
    "make",
    [_wrong_keys, _wrong_shape, _vgg16_like, _batch_norm_keys, _not_a_dict, _integer_keys],
    ids=["wrong-keys", "wrong-shape", "vgg16-like", "batch-norm-keys", "list-of-tensors", "integer-keys"],
)
def test_other_checkpoints_are_refused(tmp_path, make):
    """Any other network's weights are refused, saying this is not torchvision's VGG19 file."""
    path = save(tmp_path / "other.pth", make())
    with pytest.raises(st.WeightsError) as raised:
        st.load_vgg19(path, device="cpu")
    assert NOT_VGG19 in str(raised.value).lower()


# --------------------------------------------------------------------------
# 9. Damaged files
# --------------------------------------------------------------------------


def test_truncated_checkpoint(tmp_path, checkpoint_path):
    """Half a checkpoint (an interrupted copy) is reported as unreadable / truncated."""
    data = checkpoint_path.read_bytes()
    path = tmp_path / "vgg19-half.pth"
    path.write_bytes(data[: len(data) // 2])
    with pytest.raises(st.WeightsError) as raised:
        st.load_vgg19(path, device="cpu")
    message = str(raised.value)
    assert "not a readable" in message and "truncated" in message


def test_text_file_named_pth(tmp_path):
    """A text file renamed .pth is reported as unreadable, not as dangerous code."""
    path = tmp_path / "vgg19.pth"
    path.write_text("<html>404 Not Found</html>\n")
    with pytest.raises(st.WeightsError) as raised:
        st.load_vgg19(path, device="cpu")
    message = str(raised.value)
    assert "not a readable" in message and "Refused" not in message


def test_text_file_from_url(tmp_path, hub_dir):
    """A non-checkpoint fetched from a URL (hash matching) is a WeightsError too, not a crash."""
    text = b"<html>404 Not Found</html>\n"
    served = tmp_path / f"vgg19-{hashlib.sha256(text).hexdigest()[:8]}.pth"
    served.write_bytes(text)
    with pytest.raises(st.WeightsError, match="not a readable"):
        st.load_vgg19(served.as_uri(), device="cpu")


# --------------------------------------------------------------------------
# 10-11. Checkpoints never run code: weights_only=True everywhere
# --------------------------------------------------------------------------


class RunsCode:
    """Unpickling this calls os.system, which creates the marker file."""

    def __init__(self, marker: Path):
        self.marker = marker

    def __reduce__(self):
        return (os.system, (f"touch {shlex.quote(str(self.marker))}",))


class PlainObject:
    """An instance of a class: harmless here, but only code can rebuild it."""


@pytest.mark.parametrize("payload", ["os.system", "class-instance"])
@pytest.mark.parametrize("via", ["path", "url"])
def test_checkpoint_with_code_is_refused(tmp_path, hub_dir, payload, via):
    """A checkpoint carrying Python objects is refused and its code never runs."""
    marker = tmp_path / "code-ran"
    obj = RunsCode(marker) if payload == "os.system" else PlainObject()
    state = {"features.0.weight": obj}
    folder = tmp_path / "src"
    folder.mkdir()
    path = write_checkpoint(folder, state)
    with pytest.raises(st.WeightsError, match="Refused"):
        st.load_vgg19(path if via == "path" else path.as_uri(), device="cpu")
    assert not marker.exists(), "loading the checkpoint ran its code"


def test_plain_pickle_with_code_is_refused(tmp_path):
    """The same with a plain pickle file (torch's legacy, non-zip format)."""
    marker = tmp_path / "code-ran"
    path = tmp_path / "vgg19.pth"
    with path.open("wb") as file:
        pickle.dump({"features.0.weight": RunsCode(marker)}, file, protocol=2)
    with pytest.raises(st.WeightsError, match="Refused"):
        st.load_vgg19(path, device="cpu")
    assert not marker.exists(), "loading the checkpoint ran its code"


def test_every_load_uses_weights_only(monkeypatch, tmp_path, hub_dir, checkpoint_path):
    """torch.load always gets weights_only=True, for paths and for URLs."""
    calls = []
    real_load = torch.load

    def recording_load(*args, **kwargs):
        calls.append(kwargs)
        return real_load(*args, **kwargs)

    monkeypatch.setattr(torch, "load", recording_load)
    st.load_vgg19(checkpoint_path, device="cpu")
    assert len(calls) == 1
    st.load_vgg19(checkpoint_path.as_uri(), device="cpu")
    assert len(calls) == 2
    assert all(kwargs.get("weights_only") is True for kwargs in calls), calls
