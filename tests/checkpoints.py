"""Random VGG19 checkpoints in torchvision's format, for tests and notebook runs.

Real ImageNet weights cannot be downloaded where the tests run, so the tests
write checkpoints with torchvision's key names and shapes and random values,
and push them through the real loading code.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

import torch

import styletransfer_utils as st


def torchvision_state_dict(seed: int = 0, *, classifier: bool = False) -> dict[str, torch.Tensor]:
    """A random VGG19 state dict keyed exactly like torchvision's ``vgg19``."""
    torch.manual_seed(seed)
    features = st.load_vgg19("random")
    state = {f"features.{key}": tensor.clone() for key, tensor in features.state_dict().items()}
    if classifier:
        # Right shapes, almost no bytes: an expanded one-element tensor is saved as one value.
        for index, shape in ((0, (4096, 25088)), (3, (4096, 4096)), (6, (1000, 4096))):
            state[f"classifier.{index}.weight"] = torch.zeros(1).expand(*shape)
            state[f"classifier.{index}.bias"] = torch.zeros(1).expand(shape[0])
    return state


def write_checkpoint(folder: Path, state: dict, stem: str = "vgg19") -> Path:
    """Save ``state`` as ``{stem}-{first 8 hex of its SHA-256}.pth``, torch.hub's naming."""
    temporary = folder / f"{stem}.tmp"
    torch.save(state, temporary)
    digest = hashlib.sha256(temporary.read_bytes()).hexdigest()[:8]
    path = folder / f"{stem}-{digest}.pth"
    temporary.rename(path)
    return path
