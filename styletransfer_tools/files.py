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


def check_destination(path: str | os.PathLike, name: str | None = None, *, image: bool = False) -> Path:
    """``path`` as a `Path`, if a file can be written there; else an `OutputError` that says why (a
    missing folder, a "folder" that is a file, a folder that is not writable, a path that is a folder, an
    image name without a known extension). Called before a run as well as before each write, so that
    no computed result is lost to a path that was wrong from the start. ``name``: the setting the path
    came from (the command line shows its flag)."""
    path = Path(path)
    folder = path.parent
    if path.is_dir():
        problem = f"it is a folder; give a file name such as {path / 'stylized.png'}"
    elif image and path.suffix.lower() not in Image.registered_extensions():
        problem = f"the image format cannot be told from {path.name!r}: end the name with .png or .jpg"
    elif folder.exists() and not folder.is_dir():
        problem = f"{folder} is a file, not a folder"
    elif not folder.exists():
        problem = f"the folder {folder} does not exist. Create it first, or choose another path"
    elif not os.access(folder, os.W_OK):
        problem = f"the folder {folder} is not writable. Choose another path"
    else:
        return path
    raise OutputError(f"cannot be written to {path}: {problem}.", name=name or "the result")


def save_image(image: Image.Image | Tensor, path: str | os.PathLike) -> Path:
    """Write an image (format from the extension) whole or not at all (see `write_atomically`)."""
    if isinstance(image, Tensor):
        image = tensor_to_image(image)
    path = check_destination(path, image=True)
    kind = Image.registered_extensions()[path.suffix.lower()]
    return write_atomically(path, lambda stream: image.save(stream, format=kind))


def save_figure(figure: Any, path: str | os.PathLike, dpi: int = 110) -> Path:
    """Write a matplotlib figure (format from the extension: .png, .jpg, .svg, .pdf ...) whole or not at all."""
    path = Path(path)
    kind = path.suffix.lower().removeprefix(".")
    if kind not in figure.canvas.get_supported_filetypes():
        raise OutputError(f"Cannot tell the format from {path.name!r}: end the file name with .png, .svg or .pdf.")
    check_destination(path)
    return write_atomically(path, lambda stream: figure.savefig(stream, format=kind, dpi=dpi, facecolor="white"))


def save_record(record: dict[str, Any], path: str | os.PathLike) -> Path:
    """Write a run record (`StyleTransferResult.record`) as indented JSON, atomically."""
    text = json.dumps(record, indent=1, ensure_ascii=False) + "\n"
    return write_atomically(path, lambda stream: stream.write(text.encode()))
