"""The studio of notebook 06: style transfer with controls that act *while* it runs.

``Studio(model).widget`` in any notebook (``display`` it, or leave it as a
cell's last expression). Every control is built from a field of
`styletransfer_utils.Settings`, so the studio starts from the same defaults as
`stylize` and the command line. What sets it apart:

* moving α, β, the TV weight or a layer's weight during a run changes the
  objective from the next step on (`StyleTransferLoss.set_weights`), without
  restarting and without losing the picture;
* Run, Stop and Continue (more steps from the last picture); the work runs in
  a background thread, so the notebook stays responsive;
* a live preview, a live loss plot, each style layer's share of the style
  term, steps per second and time left, redrawn at a steady rate that keeps
  the drawing's cost to a few per cent of the run (see `Studio.redraw_every`);
* thumbnails of the last runs with their settings, and Save (the image and its
  run record, written whole or not at all).
"""

from __future__ import annotations

import dataclasses
import html
import io
import math
import threading
import time
from pathlib import Path
from typing import Any

import torch
from PIL import Image
from torch import Tensor, nn

from styletransfer_tools.files import save_image, save_record
from styletransfer_utils import (
    ASSETS_DIR,
    DEFAULT_CONTENT,
    DEFAULT_STYLE,
    LOSS_TERMS,
    STYLE_LAYERS,
    ImageSource,
    Losses,
    LossHistory,
    ParameterError,
    Settings,
    StyleTransferError,
    StyleTransferLoss,
    StyleTransferResult,
    as_image,
    build_result,
    check_style_layer_weights,
    choose_precision,
    forget_optimizer_state,
    load_image,
    plan_scales,
    prepare_images,
    reraise_out_of_memory,
    resume_from,
    run_device,
    run_scale,
    scale_objective,
    starting_image,
    tensor_to_image,
    with_pooling,
)

MODEL_SETTINGS = ("weights", "device")  # fixed by the network the studio is given (shown in its heading)
LIVE_SETTINGS = ("content_weight", "style_weight", "tv_weight", "style_layer_weights")  # act during a run
MAIN_SETTINGS = ("size", "steps", "optimizer")  # shown beside the live ones; the rest under "More settings"
GIVEN = "(the image given)"  # what a text box shows for a setting that holds a PIL image
# The control of each numeric setting that has a slider: ("log", lowest power of 10, highest) or
# ("linear", lowest, highest, step). The others are text boxes or, with choices, dropdowns.
SLIDERS = {"size": ("linear", 32, 768, 16), "steps": ("linear", 1, 1000, 1), "content_weight": ("log", -3, 3),
           "style_weight": ("log", -3, 3), "tv_weight": ("log", -6, 2)}
LAYER_RANGE = (-2, 2)  # layer sliders: powers of ten; their left end stands for 0 (the layer is off)
# A slider's readout is at least 72 px wide in ipywidgets (--jp-widgets-inline-width-tiny); 7 characters fit.
READOUT_CHARS = 7
MAX_UPLOAD_BYTES = 25 * 2**20  # an upload's bytes stay in the kernel, on a server a class shares
BUNDLED = {path.name: path for path in sorted(ASSETS_DIR.glob("*")) if path.suffix.lower() in (".jpg", ".png")}


def log_readout_format(low: float) -> str:
    """The readout format of a log slider whose left end is 10**low: every value in READOUT_CHARS characters.

    The browser writes a readout with d3-format, that is with JavaScript's ``toPrecision``: ".3g" gives
    "0.00178" and "1.00e+3", but 1e-6 becomes "0.00000100", ten characters, which the readout cut off.
    Where the slider reaches below 1e-3 (the TV weight), it shows every value as a power of ten instead:
    "1.00e-6", "5.62e-7", "3.16e+1" (three significant digits, as ".3g").
    """
    return ".3g" if low >= -3 else ".2e"


def _png(image: Image.Image) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, format="PNG")
    return buffer.getvalue()


def control_for(field: dataclasses.Field, value: Any):
    """The ipywidget for one setting, from its metadata: dropdown, log or linear slider, or a text box.

    Every range stretches to hold the value it starts from, so the studio never
    changes a setting it was given. A log slider cannot show 0: for a weight
    that may be 0 (α, β, TV), its left end stands for exactly 0.
    """
    import ipywidgets as widgets

    meta, slider = field.metadata, SLIDERS.get(field.name)
    zero_at_left = slider is not None and slider[0] == "log" and meta["at_least"] == 0
    tooltip = meta["help"] + (" The slider's left end is 0." if zero_at_left else "")
    common = {"description": field.name.replace("_", " "), "tooltip": tooltip,
              "style": {"description_width": "9em"}, "layout": widgets.Layout(width="27em")}
    if meta["choices"]:
        control = widgets.Dropdown(options=meta["choices"], value=value, **common)
    elif zero_at_left:
        _, low, high = slider
        if value > 0:
            low, high = min(low, math.floor(math.log10(value)) - 1), max(high, math.ceil(math.log10(value)))
        control = widgets.FloatLogSlider(value=max(value, 10.0**low), base=10, min=low, max=high, step=0.25,
                                         readout_format=log_readout_format(low), continuous_update=False, **common)
    elif slider is not None and meta["kind"] is int:
        _, low, high, step = slider
        control = widgets.IntSlider(value=value, min=min(low, value), max=max(high, value), step=step,
                                    continuous_update=False, **common)
    elif meta["kind"] in (int, float, tuple):  # optional numbers: empty means None ("the default" / "automatic")
        shown = "" if value is None else ",".join(map(str, value)) if isinstance(value, tuple) else str(value)
        control = widgets.Text(value=shown, placeholder="automatic", **common)
    else:
        shown = value if isinstance(value, str) else GIVEN
        control = widgets.Combobox(value=shown, options=["content", "noise"], ensure_option=False, **common)
    control.add_class(f"st-{field.name}")
    return control


def value_of(field: dataclasses.Field, control, given: Any) -> Any:
    """The setting a control shows, in the type of its field (``given``: the value it started from)."""
    meta, value = field.metadata, control.value
    slider = SLIDERS.get(field.name)
    if slider is not None and slider[0] == "log" and meta["at_least"] == 0 and value <= 10.0 ** control.min:
        return 0.0
    if value == GIVEN:
        return given
    if isinstance(value, str) and meta["kind"] in (int, float, tuple):
        if not value.strip():
            return None
        try:
            if meta["kind"] is tuple:
                return tuple(float(part) for part in value.split(","))
            return meta["kind"](value)
        except ValueError:
            kind = {int: "whole number", float: "number", tuple: "list of numbers like 0.7,0.3"}[meta["kind"]]
            raise ParameterError(f"{field.name} must be a {kind}, or empty for automatic; got {value!r}.") from None
    return value


class ImagePicker:
    """A dropdown of the bundled images, plus an upload button for one's own (content or style).
    ``messages``: the widget where the picker tells the user about an upload (the studio's readout)."""

    def __init__(self, role: str, start: ImageSource, messages) -> None:
        import ipywidgets as widgets

        self.role, self.images, self.messages = role, dict(BUNDLED), messages
        if isinstance(start, Image.Image):
            self.images[GIVEN] = start
            chosen = GIVEN
        else:
            chosen = Path(start).name if Path(start).name in BUNDLED else str(start)
            self.images.setdefault(chosen, Path(start))
        self.dropdown = widgets.Dropdown(options=list(self.images), value=chosen, description=role,
                                         style={"description_width": "9em"}, layout=widgets.Layout(width="27em"))
        self.upload = widgets.FileUpload(accept="image/*", multiple=False, description="your own",
                                         layout=widgets.Layout(width="8em"))
        self.upload.observe(self._uploaded, "value")
        self.widget = widgets.HBox([self.dropdown, self.upload])
        self.widget.add_class(f"st-{role}")

    def _uploaded(self, change: dict) -> None:
        """An upload is opened as a file is, by `load_image`: the same checks, the EXIF orientation, the pixel
        limit read from the header before anything is decoded (a class shares the server's memory). One it
        refuses leaves the choice as it was and says why in the readout: an error raised here, in a widget's
        callback, would reach no one."""
        for item in change["new"]:
            if len(item["content"]) > MAX_UPLOAD_BYTES:
                self._refuse(f"{item['name']} is {len(item['content']) / 2**20:.1f} MiB, more than the "
                             f"{MAX_UPLOAD_BYTES / 2**20:.0f} MiB an upload may be on a server a class shares. "
                             "Save a smaller copy (a JPEG), or give its path in code.")
                continue
            try:
                image = load_image(io.BytesIO(item["content"]), name=item["name"])
            except StyleTransferError as error:
                self._refuse(str(error))
                continue
            name = f"upload: {item['name']}"
            self.images[name] = image
            self.dropdown.options = list(self.images)
            self.dropdown.value = name
            self.messages.value = (f"The {self.role} image is now {html.escape(item['name'])}, "
                                   f"{image.width} x {image.height} px.")

    def _refuse(self, reason: str) -> None:
        """Say in the readout why an upload was not taken; the choice stays as it was."""
        self.messages.value = f"<b>upload refused</b> (the {self.role} image is unchanged): {html.escape(reason)}"

    def image(self) -> Image.Image:
        return as_image(self.images[self.dropdown.value], self.role)


class Studio:
    """Controls for every setting that act during a run, Run / Stop / Continue / Save, live views (notebook 06).

    ``studio.widget`` is what a notebook displays; ``studio.settings()`` the
    `Settings` the controls describe; ``run()``, ``stop()``, ``resume()`` and
    ``wait()`` do from code what the buttons do. ``runs`` holds every run's result; only the last keeps its
    ``resume_state`` (what Continue needs), so that a student pressing Run again and again does not fill
    the memory of a server the class shares with optimiser states.
    """

    redraw_every = 0.5  # seconds between redraws at least ...
    drawing_share = 0.05  # ... and more if drawing would otherwise take more than this share of the run's time

    def __init__(self, model: nn.Module, content: ImageSource = DEFAULT_CONTENT, style: ImageSource = DEFAULT_STYLE,
                 settings: Settings | None = None, *, save_folder: str | Path = "~/styletransfer-studio",
                 **changes: Any) -> None:
        import ipywidgets as widgets

        self.model = model
        self.base = (settings or Settings()).replace(**changes)
        self.result: StyleTransferResult | None = None
        self.error: Exception | None = None
        self.thread: threading.Thread | None = None
        self.objective: StyleTransferLoss | None = None
        self.runs: list[StyleTransferResult] = []
        self._stop = threading.Event()
        self.live_history, self.planned_steps, self.changes = LossHistory(), self.base.steps, 0
        self.started, self.first_preview_seconds = 0.0, None
        self._drawn_at, self._drawing_cost, self.redraws = 0.0, 0.0, 0
        self.fields = {f.name: f for f in dataclasses.fields(Settings) if f.name not in MODEL_SETTINGS}
        layer_field = self.fields.pop("style_layer_weights")
        self.controls = {name: control_for(f, getattr(self.base, name)) for name, f in self.fields.items()}
        start = check_style_layer_weights(self.base.style_layer_weights)
        low, high = LAYER_RANGE[0], max(LAYER_RANGE[1], *(math.ceil(math.log10(w)) for w in start.values() if w))
        self.layer_weights = {}
        for name in dict.fromkeys([*STYLE_LAYERS, *start]):
            slider = widgets.FloatLogSlider(
                value=max(start.get(name, 0.0), 10.0**low), base=10, min=low, max=high, step=0.25,
                readout_format=log_readout_format(low), description=f"w {name}", continuous_update=False,
                tooltip=layer_field.metadata["help"] + " The slider's left end is 0 (the layer is off).",
                style={"description_width": "9em"}, layout=widgets.Layout(width="27em"))
            slider.add_class(f"st-layer-{name}")
            self.layer_weights[name] = slider
        for control in [*(self.controls[name] for name in LIVE_SETTINGS if name in self.controls),
                        *self.layer_weights.values()]:
            control.observe(self._weights_changed, "value")
        self.save_folder = widgets.Text(value=str(save_folder), description="save to",
                                        style={"description_width": "9em"}, layout=widgets.Layout(width="27em"))

        def button(description: str, style: str, icon: str, action, disabled: bool = False):
            made = widgets.Button(description=description, button_style=style, icon=icon, disabled=disabled)
            made.on_click(lambda _: action())
            made.add_class(f"st-{description.lower()}")
            return made

        self.run_button = button("Run", "success", "play", self.run)
        self.stop_button = button("Stop", "danger", "stop", self.stop, disabled=True)
        self.continue_button = button("Continue", "info", "forward", self.resume, disabled=True)
        self.save_button = button("Save", "", "save", self.save, disabled=True)

        def view(kind, css: str, **kwargs):
            made = kind(**kwargs)
            made.add_class(css)
            return made

        self.preview = view(widgets.Image, "st-preview", format="png", layout=widgets.Layout(width="384px"))
        self.loss_plot = view(widgets.Image, "st-loss-plot", format="png", layout=widgets.Layout(width="384px"))
        self.readout = view(widgets.HTML, "st-readout", value="Set the controls, then press Run.")
        self.progress = view(widgets.HTML, "st-progress", value="")
        self.bar = view(widgets.IntProgress, "st-bar", value=0, min=0, max=self.base.steps,
                        layout=widgets.Layout(width="384px"))
        self.shares = view(widgets.HTML, "st-shares", value="")
        self.history_strip = view(widgets.HBox, "st-history", children=[])
        self.content = ImagePicker("content", content, self.readout)
        self.style = ImagePicker("style", style, self.readout)
        heading = widgets.HTML(f"<b>Weights</b>: {getattr(model, 'weights_source', 'given by the caller')}. "
                               "α, β, TV and the layer weights act during a run.")
        live = [self.controls[name] for name in LIVE_SETTINGS if name in self.controls]
        more = widgets.Accordion([widgets.VBox([c for n, c in self.controls.items()
                                                if n not in (*LIVE_SETTINGS, *MAIN_SETTINGS)] + [self.save_folder])],
                                 titles=("More settings",), selected_index=None)
        controls = widgets.VBox([heading, self.content.widget, self.style.widget, *live,
                                 *self.layer_weights.values(), *(self.controls[n] for n in MAIN_SETTINGS), more,
                                 widgets.HBox([self.run_button, self.stop_button, self.continue_button,
                                               self.save_button])])
        views = widgets.VBox([self.preview, self.bar, self.progress, self.readout, self.loss_plot, self.shares])
        self.widget = widgets.VBox([widgets.HBox([controls, views]), widgets.HTML("<b>Last runs</b>"),
                                    self.history_strip])
        self.widget.add_class("st-studio")
        self._show_picture(self.content.image())

    def _repr_mimebundle_(self, **kwargs):
        """Show the studio's widget when the studio is a cell's last expression: ``Studio(model)``."""
        return self.widget._repr_mimebundle_(**kwargs)

    # ------------------------------------------------------------------ settings

    def settings(self) -> Settings:
        """The `Settings` the controls describe right now (checked: a bad value raises `ParameterError`)."""
        values = {name: value_of(self.fields[name], control, getattr(self.base, name))
                  for name, control in self.controls.items()}
        return self.base.replace(**values, style_layer_weights=self._layer_weights())

    def _layer_weights(self) -> dict[str, float] | None:
        start = check_style_layer_weights(self.base.style_layer_weights)
        layers = {}
        for name, slider in self.layer_weights.items():
            weight = 0.0 if slider.value <= 10.0**slider.min else slider.value
            if weight or name in start:  # a layer at 0 that the starting settings did not name: not used
                layers[name] = weight
        return None if layers == check_style_layer_weights(None) else layers

    def _apply_weights(self, objective: StyleTransferLoss) -> bool:
        """Give ``objective`` the weights the controls show now; False (and a note) if they are not valid."""
        try:
            settings = self.settings()
            objective.set_weights(content_weight=settings.content_weight, style_weight=settings.style_weight,
                                  tv_weight=settings.tv_weight,
                                  style_layer_weights=check_style_layer_weights(settings.style_layer_weights))
            return True
        except ParameterError as error:
            self.readout.value = f"<b>not applied</b>: {error}"
            return False

    def _weights_changed(self, change: dict) -> None:
        """A live slider moved: during a run, the objective takes the new weights from its next step on."""
        objective = self.objective
        if objective is not None and self.thread is not None and self.thread.is_alive():
            self.changes += self._apply_weights(objective)

    def _stylize(self, content: Image.Image, style: Image.Image, settings: Settings,
                 resume: StyleTransferResult | None) -> StyleTransferResult:
        """`stylize`, called step by step (its named steps) so that the studio holds each scale's objective:
        the sliders change its weights. Each scale's objective is made from the settings the run started
        with, so it is given the sliders' weights of the moment first."""
        started, device = time.perf_counter(), run_device(self.model, settings)
        autocast_dtype = choose_precision(settings.precision, device)
        images = prepare_images(content, style, settings)
        schedule, image, state = plan_scales(images, settings), None, None
        if resume is not None:
            schedule, image, state = resume_from(resume, images, settings, device)
        model, history, runs = with_pooling(self.model, settings.pooling), LossHistory(), []
        try:
            for size, steps in schedule:
                if runs and runs[-1][1].stopped is not None:
                    break
                forget_optimizer_state(runs)
                self.objective = scale_objective(model, images, settings, size, autocast_dtype)
                self._apply_weights(self.objective)
                image = starting_image(image, self.objective, settings)
                runs.append((size, run_scale(self.objective, image, settings, steps, history, callback=self._step,
                                             stop=self._stop, optimizer_state=state if not runs else None)))
        except (torch.OutOfMemoryError, MemoryError, RuntimeError) as error:
            reraise_out_of_memory(error, settings, device)
        return build_result(images, image, runs, history, settings, model, device, autocast_dtype, started)

    # ------------------------------------------------------------------ runs

    def run(self, resume: StyleTransferResult | None = None) -> None:
        """Start a run in a background thread (the Run button); ``resume``: go on from where that run ended."""
        if self.thread is not None and self.thread.is_alive():
            return
        try:
            settings = self.settings()
            content, style = self.content.image(), self.style.image()
        except Exception as error:  # noqa: BLE001 - shown in the readout, and kept for wait()
            self.error, self.result = error, None
            self.readout.value = f"<b>error</b>: {error}"
            return
        self._stop.clear()
        self.result, self.error, self.objective, self.changes = None, None, None, 0
        self.live_history, self.planned_steps = LossHistory(), settings.steps
        self.started, self.first_preview_seconds = time.perf_counter(), None
        for button, disabled in ((self.run_button, True), (self.continue_button, True), (self.save_button, True),
                                 (self.stop_button, False)):
            button.disabled = disabled
        self.readout.value = "Starting ..."
        self.thread = threading.Thread(target=self._run, args=(content, style, settings, resume), daemon=True)
        self.thread.start()

    def resume(self) -> None:
        """Run ``steps`` more steps from where the last run ended (picture and optimiser state), with the
        controls' settings (the Continue button)."""
        if self.runs:
            self.run(resume=self.runs[-1])

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

    def save(self) -> tuple[Path, Path]:
        """Write the last run's best image and its run record into the "save to" folder (the Save button)."""
        if not self.runs:
            raise ParameterError("Nothing to save yet: press Run first.")
        folder = Path(self.save_folder.value).expanduser()
        folder.mkdir(parents=True, exist_ok=True)
        stem = f"studio-{time.strftime('%Y%m%d-%H%M%S')}"
        result = self.runs[-1]
        image = save_image(result.best_image, folder / f"{stem}.png")
        record = save_record({"content": self.content.dropdown.value, "style": self.style.dropdown.value,
                              "output": str(image), **result.record()}, folder / f"{stem}.json")
        self.readout.value = f"Saved {image} and {record.name}"
        return image, record

    def _run(self, content: Image.Image, style: Image.Image, settings: Settings,
             resume: StyleTransferResult | None) -> None:
        try:
            self.result = self._stylize(content, style, settings, resume)
            self._show_picture(self.result.best_image)
            self._draw_plot()
            stopped = self.result.stopped
            ending = "done" if not stopped else "stopped early" + ("" if stopped == "stopped" else f" ({stopped})")
            self.progress.value = (f"{self.result.steps_run} steps in {self.result.seconds:.1f} s "
                                   f"({self.result.steps_run / max(self.result.seconds, 1e-9):.1f} steps/s)")
            if self.result.steps_run == 0:
                self.readout.value = f"<b>{ending}</b> before the first step; nothing changed."
                return
            if self.runs:  # Continue goes on from the last run only; an earlier one's optimiser state would stay
                self.runs[-1] = dataclasses.replace(self.runs[-1], resume_state=None)  # in memory, run after run
            self.runs.append(self.result)
            self._add_thumbnail(self.result)
            changed = f"; the weights changed {self.changes} time(s) during the run" if self.changes else ""
            self.readout.value = (
                f"<b>{ending}</b>: {self.result.steps_run} steps in {self.result.seconds:.1f} s; best total loss "
                f"{self.result.best_loss:.4g} at step {self.result.best_step}{changed} (the preview shows the best "
                "image)")
        except Exception as error:  # noqa: BLE001 - a thread's error would vanish; keep it for wait()
            self.error = error
            self.readout.value = f"<b>error</b>: {error}"
        finally:
            self.objective = None
            self.run_button.disabled, self.stop_button.disabled = False, True
            self.continue_button.disabled = self.save_button.disabled = not self.runs

    # ------------------------------------------------------------------ live views

    def _step(self, step: int, image: Tensor, losses: Losses) -> None:
        """The run's callback: record the losses; redraw when enough time has passed (see `redraw_every`)."""
        self.live_history.append(losses, max(image.shape[-2:]))
        now = time.perf_counter()
        total = self.planned_steps
        done = len(self.live_history)
        rate = done / max(now - self.started, 1e-9)
        self.bar.max, self.bar.value = total, min(done, total)
        self.progress.value = (f"step {done}/{total} · {rate:.1f} steps/s · about "
                               f"{max(0, total - done) / max(rate, 1e-9):.0f} s left")
        terms = " + ".join(f"{term} {value:.4g}" for term, value in losses.terms.items())
        self.readout.value = f"step {done}: total {losses.total:.4g} = {terms}"
        if step == 0 or now - self._drawn_at >= max(self.redraw_every, self._drawing_cost / self.drawing_share):
            began = time.perf_counter()
            self._show_picture(tensor_to_image(image))
            self._draw_plot()
            self._show_shares(losses)
            self._drawing_cost = time.perf_counter() - began
            self._drawn_at = time.perf_counter()
            self.redraws += 1
            if self.first_preview_seconds is None:
                self.first_preview_seconds = self._drawn_at - self.started

    def _show_picture(self, image: Image.Image) -> None:
        self.preview.value = _png(image)

    def _draw_plot(self) -> None:
        """The loss curves of the run so far; one figure, kept and redrawn (making a new one costs twice as much)."""
        from matplotlib.backends.backend_agg import FigureCanvasAgg
        from matplotlib.figure import Figure

        if not hasattr(self, "_plot"):
            figure = Figure(figsize=(4.8, 2.4), dpi=80, layout="constrained")
            axis = figure.add_subplot()
            lines = {name: axis.plot([], [], label=name, lw=2 if name == "total" else 1)[0]
                     for name in ("total", *LOSS_TERMS)}
            axis.set_yscale("log")
            axis.set_xlabel("step", fontsize=8)
            axis.tick_params(labelsize=7)
            self._plot = (FigureCanvasAgg(figure), axis, lines)
        canvas, axis, lines = self._plot
        for name, line in lines.items():
            values = self.live_history.total if name == "total" else self.live_history.terms[name]
            shown = [v if v > 0 else float("nan") for v in values]  # a log scale has no 0
            line.set_data(range(len(values)), shown)
            line.set_visible(any(values))
        axis.relim(visible_only=True)
        axis.autoscale_view()
        shown = [line for line in lines.values() if line.get_visible()]
        if shown:
            axis.legend(handles=shown, fontsize=7)
        buffer = io.BytesIO()
        canvas.print_png(buffer)
        self.loss_plot.value = buffer.getvalue()

    def _show_shares(self, losses: Losses) -> None:
        """Each style layer's share of the style term, as a bar: which layers the optimiser is working on."""
        if not losses.style:
            self.shares.value = "style term: 0"
            return
        bar = "<div style='background:#4c72b0;height:0.8em;width:{:.0f}px'></div>"
        rows = "".join(f"<tr><td>{name}</td><td>{bar.format(120 * part / losses.style)}</td>"
                       f"<td>{part / losses.style:.0%}</td></tr>" for name, part in losses.style_layers.items())
        self.shares.value = f"<b>share of the style term</b><table>{rows}</table>"

    def _add_thumbnail(self, result: StyleTransferResult) -> None:
        import ipywidgets as widgets

        s = result.settings
        thumbnail = result.best_image.copy()
        thumbnail.thumbnail((128, 128))
        weights = " · ".join(f"{term} {getattr(s, name):g}" for term, name in LOSS_TERMS.items())
        caption = (f"{weights}<br>{s.steps} steps · "
                   f"{s.size} px · {s.optimizer}<br>loss {result.best_loss:.3g} · {result.seconds:.0f} s")
        card = widgets.VBox([widgets.Image(value=_png(thumbnail), format="png"),
                             widgets.HTML(f"<small>{caption}</small>")])
        self.history_strip.children = (card, *self.history_strip.children)[:6]
