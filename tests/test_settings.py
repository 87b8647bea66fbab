"""One settings object: every field of `Settings` reaches `stylize`, the command line, the studio,
the run record and the README with the same default."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest

import styletransfer_utils as st
from styletransfer_tools import cli

ROOT = Path(__file__).resolve().parents[1]
FIELDS = dataclasses.fields(st.Settings)
# A value other than the default for each field, as Python and as the command line writes it.
SAMPLES = {
    "size": (200, "200"), "steps": (7, "7"), "content_weight": (0.5, "0.5"), "style_weight": (10.0, "10"),
    "style_layer_weights": ({"relu1_1": 0.5, "relu3_1": 2.0}, "relu1_1=0.5,relu3_1=2"),
    "tv_weight": (0.01, "0.01"), "content_layer": ("relu3_2", "relu3_2"), "optimizer": ("adam", "adam"),
    "lr": (0.05, "0.05"), "init": ("noise", "noise"), "seed": (3, "3"), "scales": (2, "2"),
    "style_blend": ((0.7, 0.3), "0.7,0.3"), "style_scale": (0.5, "0.5"),
    "pooling": ("avg", "avg"), "color": ("luminance", "luminance"),
    "precision": ("fp32", "fp32"), "device": ("cpu", "cpu"), "weights": ("random", "random"),
}


def effective(name, value):
    """What a value means: None layer weights are the paper's five layers, 1 each."""
    return st.check_style_layer_weights(value) if name == "style_layer_weights" else value


def test_every_field_has_a_sample_and_metadata():
    assert set(SAMPLES) == {f.name for f in FIELDS}
    for f in FIELDS:
        assert f.metadata["help"] and f.metadata["kind"] in (int, float, str, dict, tuple), f.name
        assert st.Settings(**{f.name: SAMPLES[f.name][0]}) != st.Settings(), f.name


@pytest.mark.parametrize("field", FIELDS, ids=lambda f: f.name)
def test_field_reaches_the_command_line(field):
    """Same default; the flag is in --help with the field's help text; a value given as a flag arrives."""
    parser = cli.build_parser()
    assert getattr(parser.parse_args([]), field.name) == field.default
    assert cli.flag(field.name) in parser.format_help()
    value, text = SAMPLES[field.name]
    assert getattr(parser.parse_args([cli.flag(field.name), text]), field.name) == value


@pytest.mark.parametrize("field", FIELDS, ids=lambda f: f.name)
def test_field_reaches_the_studio(field, model, content_image, style_image):
    """Every setting not fixed by the network is a control that starts at the default and sets the value."""
    pytest.importorskip("ipywidgets")
    from styletransfer_tools.studio import MODEL_SETTINGS, Studio

    panel = Studio(model, content_image, style_image)
    assert effective(field.name, getattr(panel.settings(), field.name)) == effective(field.name, field.default)
    value = SAMPLES[field.name][0]
    if field.name in MODEL_SETTINGS:
        assert field.name not in panel.controls  # shown in the heading: the panel's network fixes it
        return
    if field.name == "style_layer_weights":
        for name, slider in panel.layer_weights.items():
            slider.value = value.get(name, 10.0**slider.min)  # the left end is 0
        assert getattr(panel.settings(), field.name) == {n: value.get(n, 0.0) for n in st.STYLE_LAYERS}
        return
    control = panel.controls[field.name]
    control.value = str(value) if isinstance(control.value, str) else value
    assert getattr(panel.settings(), field.name) == pytest.approx(value) if isinstance(value, float) else value


def test_the_studio_tv_control_can_be_exactly_zero(model, content_image, style_image):
    pytest.importorskip("ipywidgets")
    from styletransfer_tools.studio import Studio

    panel = Studio(model, content_image, style_image, tv_weight=0.01)
    assert panel.settings().tv_weight == pytest.approx(0.01)
    panel.controls["tv_weight"].value = 10.0 ** panel.controls["tv_weight"].min  # the left end
    assert panel.settings().tv_weight == 0.0


def test_record_holds_every_field():
    record = st.Settings(style_weight=3.0).record()
    assert list(record) == [f.name for f in FIELDS] and record["style_weight"] == 3.0
    assert st.Settings(**record) == st.Settings(style_weight=3.0)


def test_readme_table_is_generated_from_the_settings():
    """Regenerate with: python -c 'from styletransfer_tools.cli import settings_table; print(settings_table())'"""
    assert cli.settings_table() in (ROOT / "README.md").read_text()


@pytest.mark.parametrize(
    ("changes", "message"),
    [({"style_weight": -1}, "style_weight must be at least 0"), ({"steps": 2.5}, "steps must be a whole number"),
     ({"size": 0}, "size must be at least 1"), ({"lr": 0}, "lr must be greater than 0"),
     ({"optimizer": "sgd"}, "optimizer must be one of lbfgs, adam"),
     ({"precision": "fp16"}, "precision cannot be fp16"),
     ({"content_layer": "conv9_1"}, "content_layer must be one of"), ({"stlye_weight": 1}, "Unknown setting"),
     ({"style_layer_weights": {"relu1_1": -1}}, "style_layer_weights\\['relu1_1'\\] must be at least 0"),
     ({"content_weight": 0, "style_weight": 0}, "nothing to optimise")],
)
def test_stylize_refuses_bad_settings_naming_the_parameter(changes, message):
    with pytest.raises(st.ParameterError, match=message):
        st.stylize("never/read.jpg", "never/read.jpg", **changes)


def test_settings_are_replaced_not_mutated():
    base = st.Settings(size=100)
    changed = base.replace(steps=5)
    assert (base.steps, changed.steps, changed.size) == (80, 5, 100)
    with pytest.raises(dataclasses.FrozenInstanceError):
        base.size = 3


def test_the_command_line_puts_the_flag_in_place_of_the_setting_an_error_names():
    """By the error's ``name``, never by reading its text: a path that looks like a setting stays as it is."""
    assert cli.in_flags(st.ParameterError("must be at least 0, got -1.", name="style_weight")) == (
        "--style-weight must be at least 0, got -1.")
    assert cli.in_flags(st.ImageError("No file at runs/size=384/style_weight.png.")) == (
        "No file at runs/size=384/style_weight.png.")
    assert cli.in_flags(st.ParameterError("must be at least 0, got -1.", name="style_layer_weights['relu1_1']")) == (
        "--style-layer-weights['relu1_1'] must be at least 0, got -1.")
    with pytest.raises(st.ParameterError) as raised:
        st.Settings(tv_weight=-1)
    assert raised.value.name == "tv_weight" and cli.in_flags(raised.value).startswith("--tv-weight must be at least 0")
    assert str(raised.value).startswith("tv_weight must be at least 0")


def test_optional_settings_accept_none():
    assert st.Settings(seed=None, device=None, lr=None, scales=None).seed is None
    with pytest.raises(st.ParameterError, match="size must be a number"):
        st.Settings(size=None)


def test_a_record_of_a_run_stopped_before_its_first_step_is_strict_json(model, content_image, style_image):
    import json
    import threading

    stop = threading.Event()
    stop.set()
    result = st.stylize(content_image, style_image, model=model, size=32, steps=3, stop=stop)
    assert result.steps_run == 0
    text = json.dumps(result.record(), allow_nan=False)  # raises on Infinity or NaN
    assert json.loads(text)["best_loss"] is None
