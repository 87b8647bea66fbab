"""Utilities for the VGG19 weights that style transfer itself does not need.

* `save_features_checkpoint`: the 80 MB of feature layers out of torchvision's
  548 MB file, for classrooms that copy the weights onto every machine;
* `imagenet_top5`: a check that the weights are trained (notebook 02);
* `weights_fingerprint`: which weights made a picture, for run records.
"""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

import torch
from PIL import Image
from torchvision.models import vgg19

from styletransfer_tools.files import write_atomically
from styletransfer_utils import (
    VGG19_WEIGHTS,
    WeightsError,
    features_state_dict,
    read_checkpoint,
    to_rgb,
    vgg19_skeleton,
)


def save_features_checkpoint(source: str | os.PathLike, destination: str | os.PathLike) -> Path:
    """Write the ``features.*`` part of a VGG19 checkpoint; style transfer never uses the classifier.

    The source is checked like any checkpoint (`read_checkpoint`), and the
    destination is written whole or not at all.
    """
    checkpoint, _ = read_checkpoint(source)
    state = features_state_dict(checkpoint, vgg19_skeleton())
    return write_atomically(destination, lambda stream: torch.save(
        {f"features.{key}": tensor.contiguous() for key, tensor in state.items()}, stream))


def weights_fingerprint(model: torch.nn.Module) -> str:
    """SHA-256 of the network's weights, in layer order: which weights made a picture, for a run record.

    Computed from the tensors, not the file, so a full checkpoint and its
    features-only copy give the same fingerprint.
    """
    digest = hashlib.sha256()
    for name, tensor in model.state_dict().items():
        digest.update(name.encode())
        digest.update(tensor.detach().float().cpu().contiguous().numpy().tobytes())
    return digest.hexdigest()


def imagenet_top5(image: Image.Image, weights: str | os.PathLike = "imagenet") -> list[tuple[str, float]]:
    """The five ImageNet classes VGG19's classifier finds most likely in ``image``, with probabilities.

    Trained weights name what is in the photo; random ones give arbitrary
    classes. It needs the full checkpoint (a features-only file has no
    classifier) and uses the preprocessing that ships with the weights
    (resize 256, centre crop 224, normalise), as torchvision documents.
    """
    if weights is None or weights == "random":
        network = vgg19()  # torchvision's own random initialisation
    else:
        network = vgg19_skeleton(classifier=True)
        checkpoint, source = read_checkpoint(weights)
        if not any(str(key).startswith("classifier.") for key in checkpoint):
            raise WeightsError(
                f"{source} holds only VGG19's feature layers, no classifier, so it cannot name what is in a "
                "photo. Use the full vgg19-dcbb9e9d.pth for this check."
            )
        try:
            network.load_state_dict(checkpoint, assign=True)
        except RuntimeError as error:
            raise WeightsError(f"{source} is not torchvision's full VGG19 checkpoint: {error}") from None
    with torch.no_grad():
        batch = VGG19_WEIGHTS.transforms()(to_rgb(image)).unsqueeze(0)
        probabilities = network.eval()(batch).softmax(dim=1)[0]
    top = probabilities.topk(5)
    categories = VGG19_WEIGHTS.meta["categories"]
    return [(categories[i], p) for p, i in zip(top.values.tolist(), top.indices.tolist(), strict=True)]
