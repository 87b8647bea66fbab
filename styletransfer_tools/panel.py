"""The slider panel of notebook 06: one control per field of `Settings`, Run and Stop.

Every control is built from a field of `styletransfer_utils.Settings` (its
default, range or choices, and help), so the panel starts from the same
defaults as `stylize` and the command line. The run goes on in a background
thread, so the Stop button (and the rest of the notebook) stays responsive.
"""

from __future__ import annotations

import dataclasses
import io
import math
import threading
from typing import Any

from PIL import Image
from torch import Tensor, nn

from styletransfer_utils import (
    STYLE_LAYERS,
    ImageSource,
    Losses,
    ParameterError,
    Settings,
    StyleTransferResult,
    check_style_layer_weights,
    stylize,
    tensor_to_image,
)

# Fixed by the network the panel is given (shown in its heading, not as controls).
MODEL_SETTINGS = ("weights", "device")
# Shown at once; the other settings are under "More settings".
MAIN_SETTINGS = ("content_weight", "style_weight", "tv_weight", "style_layer_weights", "steps", "size")


GIVEN = "(the image given)"  # what the init box shows when the settings hold a PIL image


def control_for(field: dataclasses.Field, value: Any):
    """The ipywidget for one setting, from its metadata: dropdown, log or linear slider, or a text box.

    Every range stretches to hold the value it starts from, so the panel never
    changes a setting it was given. A log slider cannot show 0: for a weight
    that may be 0 (α, β, TV), its left end stands for exactly 0.
    """
    import ipywidgets as widgets

    meta = field.metadata
    zero_at_left = meta["slider"] and meta["slider"][0] == "log" and meta["at_least"] == 0
    tooltip = meta["help"] + (" The slider's left end is 0." if zero_at_left else "")
    common = {"description": field.name.replace("_", " "), "tooltip": tooltip,
              "style": {"description_width": "10em"}, "layout": widgets.Layout(width="28em")}
    if meta["choices"]:
        return widgets.Dropdown(options=meta["choices"], value=value, **common)
    if zero_at_left:
        _, low, high = meta["slider"]
        if value > 0:
            low, high = min(low, math.floor(math.log10(value)) - 1), max(high, math.ceil(math.log10(value)))
        return widgets.FloatLogSlider(value=max(value, 10.0**low), base=10, min=low, max=high, step=0.25,
                                      continuous_update=False, **common)
    if meta["slider"] and meta["kind"] is int:
        _, low, high, step = meta["slider"]
        return widgets.IntSlider(value=value, min=min(low, value), max=max(high, value), step=step,
                                 continuous_update=False, **common)
    if meta["kind"] in (int, float):  # optional numbers: empty means None ("the default" / "automatic")
        return widgets.Text(value="" if value is None else str(value), placeholder="automatic", **common)
    shown = value if isinstance(value, str) else GIVEN
    return widgets.Combobox(value=shown, options=["content", "noise"], ensure_option=False, **common)


def value_of(field: dataclasses.Field, control, given: Any) -> Any:
    """The setting a control shows, in the type of its field (``given``: the value it started from)."""
    meta, value = field.metadata, control.value
    if meta["slider"] and meta["slider"][0] == "log" and meta["at_least"] == 0 and value <= 10.0 ** control.min:
        return 0.0
    if value == GIVEN:
        return given
    if isinstance(value, str) and meta["kind"] in (int, float):
        if not value.strip():
            return None
        try:
            return meta["kind"](value)
        except ValueError:
            kind = "whole number" if meta["kind"] is int else "number"
            raise ParameterError(f"{field.name} must be a {kind}, or empty for automatic; got {value!r}.") from None
    return value


class StylePanel:
    """Controls for every setting, Run and Stop, a preview and a loss readout (notebook 06).

    ``panel.widget`` is what the notebook displays; ``panel.settings()`` is the
    `Settings` the controls describe; ``panel.start()`` / ``panel.wait()`` run
    from code what the buttons run.
    """

    def __init__(self, content: ImageSource, style: ImageSource, model: nn.Module,
                 settings: Settings | None = None, *, preview_every: int = 5, **changes: Any) -> None:
        import ipywidgets as widgets

        self.content, self.style, self.model = content, style, model
        self.base = (settings or Settings()).replace(**changes)
        self.preview_every = preview_every
        self.result: StyleTransferResult | None = None
        self.error: Exception | None = None
        self.thread: threading.Thread | None = None
        self._stop = threading.Event()
        self.fields = {f.name: f for f in dataclasses.fields(Settings) if f.name not in MODEL_SETTINGS}
        layer_field = self.fields.pop("style_layer_weights")
        self.controls = {name: control_for(f, getattr(self.base, name)) for name, f in self.fields.items()}
        _, low, high, step = layer_field.metadata["slider"]
        start = check_style_layer_weights(self.base.style_layer_weights)
        self.layer_weights = {
            name: widgets.FloatSlider(value=start.get(name, 0.0), min=low, max=max(high, *start.values()), step=step,
                                      description=f"w {name}", continuous_update=False,
                                      style={"description_width": "10em"}, layout=widgets.Layout(width="28em"))
            for name in dict.fromkeys([*STYLE_LAYERS, *start])
        }
        self.run_button = widgets.Button(description="Run", button_style="success", icon="play")
        self.stop_button = widgets.Button(description="Stop", button_style="danger", icon="stop", disabled=True)
        self.preview = widgets.Image(format="png", layout=widgets.Layout(max_width="420px"))
        self.readout = widgets.HTML("Set the controls, then press Run.")
        self.run_button.on_click(lambda _: self.start())
        self.stop_button.on_click(lambda _: self.stop())
        main = [self.controls[name] for name in MAIN_SETTINGS if name in self.controls]
        more = widgets.Accordion([widgets.VBox([c for n, c in self.controls.items() if n not in MAIN_SETTINGS])],
                                 titles=("More settings",), selected_index=None)
        heading = widgets.HTML(f"<b>Weights</b>: {getattr(model, 'weights_source', 'given by the caller')}")
        controls = widgets.VBox([heading, *main[:3], *self.layer_weights.values(), *main[3:], more,
                                 widgets.HBox([self.run_button, self.stop_button])])
        self.widget = widgets.HBox([controls, widgets.VBox([self.preview, self.readout])])

    def settings(self) -> Settings:
        """The `Settings` the controls describe right now (checked: a bad value raises `ParameterError`)."""
        values = {name: value_of(self.fields[name], control, getattr(self.base, name))
                  for name, control in self.controls.items()}
        start = check_style_layer_weights(self.base.style_layer_weights)
        # a layer at 0 that the starting settings did not name is simply not used: leave it out
        layers = {name: slider.value for name, slider in self.layer_weights.items() if slider.value or name in start}
        equal = layers == check_style_layer_weights(None)
        return self.base.replace(**values, style_layer_weights=None if equal else layers)

    def start(self) -> None:
        """Start a run in a background thread (what the Run button does)."""
        if self.thread is not None and self.thread.is_alive():
            return
        self._stop.clear()
        self.result, self.error = None, None
        self.run_button.disabled, self.stop_button.disabled = True, False
        self.readout.value = "Starting ..."
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def stop(self) -> None:
        """Ask the run to end after the current step; it keeps its best image (the Stop button)."""
        self._stop.set()

    def wait(self, timeout: float | None = None) -> StyleTransferResult | None:
        """Block until the current run ends (for scripts and tests); returns its result,
        or raises the error that ended it (the readout shows it too)."""
        if self.thread is not None:
            self.thread.join(timeout)
        if self.error is not None:
            raise self.error
        return self.result

    def _run(self) -> None:
        try:
            settings = self.settings()
            self.result = stylize(self.content, self.style, settings, model=self.model, callback=self._show,
                                  stop=self._stop)
            self._show_image(self.result.best_image)
            ending = f"stopped early ({self.result.stopped})" if self.result.stopped else "done"
            if self.result.steps_run == 0:
                self.readout.value = f"<b>{ending}</b> before the first step; nothing changed."
                return
            self.readout.value = (
                f"<b>{ending}</b>: {self.result.steps_run} steps in {self.result.seconds:.1f} s; "
                f"best total loss {self.result.best_loss:.4g} at step {self.result.best_step} "
                "(the preview shows the best image)"
            )
        except Exception as error:  # noqa: BLE001 - a thread's error would vanish; keep it for wait()
            self.error = error
            self.readout.value = f"<b>error</b>: {error}"
        finally:
            self.run_button.disabled, self.stop_button.disabled = False, True

    def _show(self, step: int, image: Tensor, losses: Losses) -> None:
        if step % self.preview_every == 0:
            self._show_image(tensor_to_image(image))
        self.readout.value = (
            f"step {step + 1}/{self.controls['steps'].value}: total {losses.total:.4g} = content "
            f"{losses.content:.4g} + style {losses.style:.4g} + TV {losses.tv:.4g}"
        )

    def _show_image(self, image: Image.Image) -> None:
        buffer = io.BytesIO()
        image.save(buffer, format="PNG")
        self.preview.value = buffer.getvalue()
