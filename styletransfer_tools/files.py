"""Writing files whole or not at all: images, checkpoints, run records.

An interrupted or failed write must never leave a half-written file where the
user asked for a result, nor destroy what was there before.
"""

from __future__ import annotations

import contextlib
import json
import os
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

from PIL import Image
from torch import Tensor

from styletransfer_utils import OutputError, tensor_to_image


def write_atomically(path: str | os.PathLike, write: Callable[[Any], None]) -> Path:
    """Call ``write(stream)`` on a temporary file beside ``path``, then rename it over ``path`` in one step.

    An interrupted or failed write never leaves a half-written file behind:
    ``path`` holds either the complete new file or what it held before.
    """
    path = Path(path)
    try:
        handle, temporary = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".partial", dir=path.parent)
    except OSError as error:
        raise OutputError(f"Could not write {path}: {error.strerror or error}. Choose another path.") from None
    try:
        with os.fdopen(handle, "wb") as stream:
            write(stream)
            stream.flush()
            os.fsync(stream.fileno())
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(temporary, 0o666 & ~umask)  # mkstemp makes it owner-only; give it a normal file's mode
        os.replace(temporary, path)
    except BaseException as error:
        with contextlib.suppress(OSError):
            os.unlink(temporary)
        if isinstance(error, OSError):
            raise OutputError(f"Could not write {path}: {error.strerror or error}. Choose another path.") from None
        raise
    return path


def save_image(image: Image.Image | Tensor, path: str | os.PathLike) -> Path:
    """Write an image (format from the extension) whole or not at all (see `write_atomically`)."""
    if isinstance(image, Tensor):
        image = tensor_to_image(image)
    path = Path(path)
    formats = Image.registered_extensions()
    if path.suffix.lower() not in formats:
        raise OutputError(f"Cannot tell the image format from {path.name!r}: end the file name with .png or .jpg.")
    if not path.parent.is_dir():
        raise OutputError(f"The folder {path.parent} does not exist. Create it first or choose another path.")
    if path.is_dir():
        raise OutputError(f"{path} is a folder. Give a file name such as {path / 'stylized.png'}.")
    return write_atomically(path, lambda stream: image.save(stream, format=formats[path.suffix.lower()]))


def save_figure(figure: Any, path: str | os.PathLike, dpi: int = 110) -> Path:
    """Write a matplotlib figure (format from the extension: .png, .jpg, .svg, .pdf ...) whole or not at all."""
    path = Path(path)
    kind = path.suffix.lower().removeprefix(".")
    if kind not in figure.canvas.get_supported_filetypes():
        raise OutputError(f"Cannot tell the format from {path.name!r}: end the file name with .png, .svg or .pdf.")
    if not path.parent.is_dir():
        raise OutputError(f"The folder {path.parent} does not exist. Create it first or choose another path.")
    return write_atomically(path, lambda stream: figure.savefig(stream, format=kind, dpi=dpi, facecolor="white"))


def save_record(record: dict[str, Any], path: str | os.PathLike) -> Path:
    """Write a run record (`StyleTransferResult.record`) as indented JSON, atomically."""
    text = json.dumps(record, indent=1, ensure_ascii=False) + "\n"
    return write_atomically(path, lambda stream: stream.write(text.encode()))
