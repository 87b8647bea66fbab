"""Memory a run gives back: on a server a class shares, what one run freed must not stay counted during the next.

`optimize` hands glibc's freed blocks back to the system (`release_freed_memory`) after every step on a large
image, and `run_scale` (one scale of a run, in `stylize` and in the studio) before and after it at any size:
otherwise each run left its working memory in the arena of the thread that ran it (the studio runs in its own
thread), drawing figures left theirs, and notebook 06's runs piled up (benchmarks/capacity.py measures it).
These tests count the calls; what a call gives back is glibc's business. Results that nothing resumes keep
no optimiser state: the Figure-3 grid's twenty runs, and the studio's runs before its last (Continue goes on
from the last); within a run, a coarser scale's L-BFGS history is freed when the next scale starts.
"""

from __future__ import annotations

import pytest
import torch

import styletransfer_utils as st
from conftest import gradient_image, stripes_image
from styletransfer_tools import notebook


@pytest.fixture()
def trims(monkeypatch) -> list[int]:
    """Each call of malloc_trim, recorded instead of made."""
    calls: list[int] = []
    monkeypatch.setattr(st, "_malloc_trim", lambda pad: calls.append(pad) or 1)
    return calls


def small_objective(model) -> st.StyleTransferLoss:
    content = st.image_to_tensor(gradient_image(48, 32))
    return st.StyleTransferLoss(model, content, st.image_to_tensor(stripes_image(40, 56)))


def one_scale(model, steps: int = 3, **options) -> st.OptimizationRun:
    objective = small_objective(model)
    image = objective.content.clone().requires_grad_(True)
    return st.run_scale(objective, image, st.Settings(), steps, st.LossHistory(), **options)


def test_a_small_run_gives_memory_back_before_and_after_it_only(model, trims):
    run = one_scale(model)
    assert len(run.history) == 3
    assert len(trims) == 2  # not after each step of a small image: its pages would be faulted in again at once


def test_a_large_image_gives_memory_back_after_every_step_too(model, trims, monkeypatch):
    monkeypatch.setattr(st, "RELEASE_FROM_PIXELS", 1)  # every image counts as large
    one_scale(model)
    assert len(trims) == 1 + 3 + 1


def test_a_stopped_run_gives_its_memory_back_too(model, trims):
    class Stopped:
        def is_set(self) -> bool:
            return True

    run = one_scale(model, stop=Stopped())
    assert run.stopped == "stopped" and len(trims) == 2


def test_stylize_gives_memory_back_around_each_scale(model, trims):
    result = st.stylize(gradient_image(96, 64), stripes_image(40, 56), model=model, size=96, steps=4, scales=2,
                        precision="fp32")
    assert sorted(set(result.history.size)) == [48, 96]
    assert len(trims) == 2 * 2


def test_a_coarser_scales_optimiser_state_is_freed_when_the_next_scale_starts(model, monkeypatch):
    kept: list[list[bool]] = []  # at the start of each scale: which earlier scales still hold a state
    forget = st.forget_optimizer_state

    def recording(runs):
        forget(runs)
        kept.append([run.optimizer_state is not None for _, run in runs])

    monkeypatch.setattr(st, "forget_optimizer_state", recording)
    result = st.stylize(gradient_image(96, 64), stripes_image(40, 56), model=model, size=96, steps=6, scales=3,
                        optimizer="lbfgs", precision="fp32")
    assert kept == [[], [False], [False, False]]
    assert result.resume_state["state"]["state"]  # the last scale's L-BFGS history is kept, for resume


def test_nothing_is_trimmed_for_an_image_off_the_cpu(trims):
    image = torch.zeros(1, 3, 4, 4, device="meta")  # off the CPU, as a GPU image: not in glibc's memory
    st.release_freed_memory(image, between_runs=True)
    assert trims == []


def test_the_figure3_grid_keeps_no_optimiser_state(model):
    grid = notebook.figure3_grid(gradient_image(64, 48), stripes_image(40, 56), [10.0, 0.1], model=model, size=48,
                                 steps=2, progress=False, layer_subsets=notebook.figure3_layer_subsets()[:2])
    runs = [run for row in grid.results for run in row]
    assert len(runs) == 4 and all(run.resume_state is None for run in runs)
    assert all(len(run.history) == 2 and run.best_image.size == (48, 36) for run in runs)  # the rest is kept


def test_only_the_studios_last_run_keeps_its_optimiser_state(model, tmp_path):
    pytest.importorskip("ipywidgets")
    from styletransfer_tools.studio import Studio

    studio = Studio(model, gradient_image(64, 48), stripes_image(40, 56), size=48, steps=2,
                    save_folder=tmp_path / "saved")
    for _ in range(3):
        studio.run()
        studio.wait(60)
    assert [run.resume_state is None for run in studio.runs] == [True, True, False]
    assert all(len(run.history) == 2 for run in studio.runs)  # the rest of each result is kept
    studio.continue_button.click()  # Continue still goes on from the last run, picture and optimiser state
    assert studio.wait(60).history.total[0] == pytest.approx(studio.runs[-2].history.total[-1], rel=0.2)
    assert [run.resume_state is None for run in studio.runs] == [True, True, True, False]
