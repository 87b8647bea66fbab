"""The paper's Figure 3 recomputed (notebook 06, `make figures`): the right runs, labelled."""

from __future__ import annotations

import pytest

import styletransfer_utils as st
from conftest import gradient_image, stripes_image
from styletransfer_tools import notebook

BETAS = [10.0, 0.1]


@pytest.fixture(scope="module")
def grid_and_objectives(model):
    """A tiny grid, and the style layers of the objective each of its runs optimised (in call order)."""
    seen: list[tuple[float, list[str]]] = []

    made_by = st.scale_objective

    def watched(*args, **kwargs):  # stylize's step that makes each scale's objective, watched
        objective = made_by(*args, **kwargs)
        seen.append((objective.style_weight, list(objective.style_scales)))
        return objective

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(st, "scale_objective", watched)
        grid = notebook.figure3_grid(gradient_image(64, 48), stripes_image(40, 56), BETAS, model=model, size=48,
                                     steps=1, progress=False)
    return grid, seen


def test_the_rows_are_growing_sets_of_style_layers_with_equal_weights():
    subsets = notebook.figure3_layer_subsets()
    assert [list(subset) for subset in subsets] == [list(st.STYLE_LAYERS[:k]) for k in range(1, 6)]
    for subset in subsets:
        assert all(weight == pytest.approx(5 / len(subset)) for weight in subset.values())
        assert sum(subset.values()) == pytest.approx(5)  # the default's total weight, in every row


def test_one_run_per_cell_with_that_cells_layers_and_beta(grid_and_objectives):
    grid, seen = grid_and_objectives
    assert len(grid.results) == 5 and all(len(row) == len(BETAS) for row in grid.results)
    cells = [(subset, beta) for subset in grid.layer_subsets for beta in BETAS]
    assert len(seen) == len(cells)  # 48 px is one scale: one objective per run
    for (subset, beta), (objective_beta, objective_layers) in zip(cells, seen, strict=True):
        assert objective_beta == beta and objective_layers == list(subset)
    for subset, row in zip(grid.layer_subsets, grid.results, strict=True):
        for beta, run in zip(BETAS, row, strict=True):
            assert dict(run.settings.style_layer_weights) == subset and run.settings.style_weight == beta
            assert (run.settings.size, run.steps_run) == (48, 1)
            assert run.best_image.size == (48, 36)


def test_errors_divide_the_weighted_terms_by_alpha_and_beta(grid_and_objectives):
    grid, _ = grid_and_objectives
    (content_error, style_error) = grid.errors()[0][1]
    run = grid.results[0][1]
    assert content_error == pytest.approx(run.history.content[run.best_step])
    assert style_error == pytest.approx(run.history.style[run.best_step] / BETAS[1])


def test_the_figure_labels_rows_columns_and_weights(grid_and_objectives):
    grid, _ = grid_and_objectives
    figure = notebook.show_figure3_grid(grid, label="test label")
    axes = [figure.axes[i : i + len(BETAS)] for i in range(0, len(figure.axes), len(BETAS))]
    assert len(axes) == 5
    assert [axis.get_title() for axis in axes[0]] == ["β = 10", "β = 0.1"]
    labels = [row[0].get_ylabel().splitlines()[0] for row in axes]
    assert labels == ["relu1_1", "relu1_1 + relu2_1", "relu1_1 … relu3_1", "relu1_1 … relu4_1", "relu1_1 … relu5_1"]
    assert axes[1][0].get_ylabel().splitlines()[1] == "w_l = 2.5"
    title = figure.get_suptitle()
    assert "test label" in title and grid.weights_source not in title and "48 px" in title
    assert grid.weights_source in notebook.show_figure3_grid(grid).get_suptitle()
