"""Pictures of a run as it goes: an image every N steps, and an animated GIF of the whole optimisation.

`Snapshots` is a `stylize` callback (the loop knows nothing about files):

    snapshots = Snapshots(every=5, folder="frames")      # frames/step0005.png, ...
    result = stylize(photo, painting, callback=snapshots)
    snapshots.write_gif("run.gif")

Frames from the coarse scales of a coarse-to-fine run are enlarged to the
final size, so the GIF shows the picture as the optimiser saw it: blocky at
first, finer at each change of scale.
"""

from __future__ import annotations

import os
from pathlib import Path

from PIL import Image
from torch import Tensor

from styletransfer_tools.files import save_image, write_atomically
from styletransfer_utils import Losses, ParameterError, check_number, tensor_to_image


class Snapshots:
    """Keep the picture every ``every`` steps; with ``folder``, also write each one as ``step0040.png``.

    ``size`` is the longer side of the GIF's frames (default: the longer side
    of the last frame seen, that is the result's size).
    """

    def __init__(self, every: int, folder: str | os.PathLike | None = None, size: int | None = None) -> None:
        check_number("every", every, integer=True, at_least=1)
        self.every, self.size = every, size
        self.folder = None if folder is None else Path(folder)
        if self.folder is not None and not self.folder.is_dir():
            raise ParameterError(f"The folder {self.folder} for the snapshots does not exist; create it first.")
        self.frames: list[tuple[int, Image.Image]] = []
        self.written: list[Path] = []

    def __call__(self, step: int, image: Tensor, losses: Losses) -> None:
        if (step + 1) % self.every:
            return
        picture = tensor_to_image(image)
        self.frames.append((step, picture))
        if self.folder is not None:
            self.written.append(save_image(picture, self.folder / f"step{step + 1:04d}.png"))

    def write_gif(self, path: str | os.PathLike, seconds: float = 4.0) -> Path:
        """An animated GIF of the frames kept, ``seconds`` long in all (the last frame shown twice as long)."""
        if not self.frames:
            raise ParameterError("No snapshot was taken: the run had fewer steps than `every`.")
        last = self.frames[-1][1]
        longer = self.size or max(last.size)
        shape = (round(last.width * longer / max(last.size)), round(last.height * longer / max(last.size)))
        frames = [picture.resize(shape, Image.Resampling.NEAREST) for _, picture in self.frames]
        duration = max(20, round(1000 * seconds / (len(frames) + 1)))
        durations = [duration] * (len(frames) - 1) + [2 * duration]
        return write_atomically(path, lambda stream: frames[0].save(
            stream, format="GIF", save_all=True, append_images=frames[1:], duration=durations, loop=0))
