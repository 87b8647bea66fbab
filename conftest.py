"""Settings for running the notebooks under nbval (``make test``).

The notebooks read their image size and step count through
``styletransfer_tools.notebook.notebook_settings``; here the tests shrink both, and
supply a random checkpoint in torchvision's format through
STYLETRANSFER_VGG19_WEIGHTS (CI cannot download the real weights). The nbval
kernels inherit these variables; unit tests that depend on them set or
clear them themselves. Nothing here edits a notebook.
"""

from __future__ import annotations

import os
import shutil
import sys
import tempfile
from pathlib import Path

NOTEBOOK_SETTINGS = {
    "STYLETRANSFER_SIZE": "64",
    "STYLETRANSFER_STEPS": "4",
    "MPLBACKEND": "agg",
}


def pytest_configure(config):
    sys.path.insert(0, str(Path(__file__).parent / "tests"))
    from checkpoints import torchvision_state_dict, write_checkpoint

    folder = Path(tempfile.mkdtemp(prefix="styletransfer-nb-"))
    config._notebook_weights_folder = folder
    os.environ.update(NOTEBOOK_SETTINGS)
    # the full layout, classifier included (almost no bytes), so notebook 02 can name the classes
    state = torchvision_state_dict(seed=0, classifier=True)
    os.environ["STYLETRANSFER_VGG19_WEIGHTS"] = str(write_checkpoint(folder, state))


def pytest_collection_modifyitems(config, items):
    """Every cell nbval runs is marked ``notebook``, so that ``make check`` can leave the notebooks out."""
    import pytest

    for item in items:
        if item.path.suffix == ".ipynb":
            item.add_marker(pytest.mark.notebook)


def pytest_unconfigure(config):
    folder = getattr(config, "_notebook_weights_folder", None)
    if folder is not None:
        shutil.rmtree(folder, ignore_errors=True)
