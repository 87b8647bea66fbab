"""The `styletransfer` command (also ``python styletransfer_utils.py`` and ``make run``).

Its flags are built from the fields of `styletransfer_utils.Settings`, so a
flag's name, default, choices and help cannot drift from the library's. An
error about one setting carries the setting's name (`StyleTransferError.name`);
`fail` puts the flag in its place, and maps the error's kind to an exit code.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import pickle
import sys
import warnings
from collections.abc import Sequence
from pathlib import Path

import torch
from PIL import Image
from torch import Tensor, nn

from styletransfer_tools.checkpoints import save_features_checkpoint, weights_fingerprint
from styletransfer_tools.files import check_destination, save_image, save_record, write_atomically
from styletransfer_tools.snapshots import Snapshots
from styletransfer_utils import (
    DEFAULT_CONTENT,
    DEFAULT_STYLE,
    STYLE_LAYERS,
    WEIGHTS_ENV,
    DeviceError,
    ImageError,
    Losses,
    OutputError,
    ParameterError,
    Settings,
    StyleTransferError,
    StyleTransferResult,
    WeightsError,
    as_image,
    check_masks,
    choose_device,
    choose_precision,
    load_vgg19,
    refused_code,
    stylize,
)

EXIT_OK = 0
EXIT_UNEXPECTED = 1
EXIT_USAGE = 2  # also what argparse uses for a malformed command line
EXIT_BAD_IMAGE = 3
EXIT_WEIGHTS = 4
EXIT_OUTPUT = 5
EXIT_DEVICE = 6
EXIT_DIVERGED = 7
EXIT_INTERRUPTED = 130  # the shell's convention for Ctrl-C
EXIT_CODES = {ParameterError: EXIT_USAGE, ImageError: EXIT_BAD_IMAGE, WeightsError: EXIT_WEIGHTS,
              OutputError: EXIT_OUTPUT, DeviceError: EXIT_DEVICE}
SETTINGS = [f.name for f in dataclasses.fields(Settings)]


def flag(name: str) -> str:
    """The command-line flag of a setting: style_weight -> --style-weight."""
    return "--" + name.replace("_", "-")


def parse_layer_weights(text: str) -> dict[str, float]:
    """'relu1_1=1,relu2_1=0.75' -> {'relu1_1': 1.0, 'relu2_1': 0.75}."""
    weights = {}
    for item in filter(None, (part.strip() for part in text.split(","))):
        name, sep, value = item.partition("=")
        try:
            weights[name.strip()] = float(value) if sep else 1.0
        except ValueError:
            raise argparse.ArgumentTypeError(f"bad layer weight {item!r}: write it as relu1_1=0.5") from None
    return weights


def parse_numbers(text: str) -> tuple[float, ...]:
    """'0.7,0.3' -> (0.7, 0.3)."""
    try:
        return tuple(float(part) for part in text.split(","))
    except ValueError:
        raise argparse.ArgumentTypeError(f"bad list of numbers {text!r}: write it as 0.7,0.3") from None


DESTINATIONS = ("output", "timelapse", "save_state", "record")  # the files a run writes
FLAGS = {name: flag(name) for name in (*SETTINGS, *DESTINATIONS, "resume")} | {"masks": "--mask"}
WEIGHTS_HINT = ("On the command line: --weights PATH (or the variable above), or --weights random for a quick "
                "test; `styletransfer features-only SOURCE DEST` writes the 80 MB features-only copy.")


def joined_negatives(argv: Sequence[str]) -> list[str]:
    """``--style-blend -1,2`` as ``--style-blend=-1,2``: argparse would take a value that starts with "-"
    (other than a plain -1 or -0.5) for an option, and refuse with "expected one argument". Joined, a
    negative number reaches the setting's own check, whose message says what is allowed."""
    numeric = {flag(f.name) for f in dataclasses.fields(Settings) if f.metadata["kind"] in (int, float, tuple)}
    joined: list[str] = []
    for item in argv:
        if joined and joined[-1] in numeric | {"--save-every"} and item[:1] == "-" and item[1:2] in set("0123456789."):
            joined[-1] = f"{joined[-1]}={item}"
        else:
            joined.append(item)
    return joined


def in_flags(error: StyleTransferError) -> str:
    """The error's message with the flag in place of the setting it is about (``error.name``):
    ``style_weight must be ...`` -> ``--style-weight must be ...``; a layer's weight keeps its layer
    (``style_layer_weights['relu1_1']`` -> ``--style-layer-weights['relu1_1']``)."""
    setting, bracket, rest = (error.name or "").partition("[")
    if setting not in FLAGS:
        return str(error)
    return f"{FLAGS[setting]}{bracket}{rest} {error.detail}"


def fail(error: StyleTransferError) -> int:
    hint = f"\n{WEIGHTS_HINT}" if isinstance(error, WeightsError) else ""
    print(f"error: {in_flags(error)}{hint}", file=sys.stderr)
    return next((code for kind, code in EXIT_CODES.items() if isinstance(error, kind)), EXIT_UNEXPECTED)


def build_parser() -> argparse.ArgumentParser:
    """The command line's options: the inputs and outputs, then one flag per field of `Settings`."""
    parser = argparse.ArgumentParser(
        prog="styletransfer",
        description="Neural style transfer (Gatys, Ecker & Bethge 2016): paint a photo in the style of another image.",
        epilog=(
            "exit codes: 0 done; 2 bad option; 3 bad input image; 4 VGG19 weights missing or invalid; "
            "5 output cannot be written; 6 device unavailable or out of memory; 7 loss diverged "
            "(best image saved); 130 interrupted (best image saved). "
            "`styletransfer features-only SOURCE DEST` writes an 80 MB features-only copy of the weights."
        ),
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    parser.add_argument("--content", default=str(DEFAULT_CONTENT), help="the photo to repaint")
    parser.add_argument("--style", nargs="+", default=[str(DEFAULT_STYLE)],
                        help="the image whose style to copy; several are blended (see --style-blend)")
    parser.add_argument("--mask", nargs="+", default=None, metavar="MASK",
                        help="one grey image per --style image, white where that style goes; where no mask is "
                        "white, the photo keeps its look")
    parser.add_argument("--output", default="stylized.png", help="where to write the result (.png or .jpg)")
    parser.add_argument("--record", default=None, metavar="PATH.json",
                        help="also write a JSON record of the run: settings, weights, timing, loss history")
    parser.add_argument("--from-record", default=None, metavar="PATH.json",
                        help="take the settings, content and style of a run record (flags given here still win)")
    parser.add_argument("--save-state", default=None, metavar="PATH.pt",
                        help="also write the last image and the optimiser's state, to go on later with --resume")
    parser.add_argument("--resume", default=None, metavar="PATH.pt",
                        help="go on from a --save-state file for --steps more steps (other weights allowed)")
    parser.add_argument("--save-every", type=int, default=None, metavar="N",
                        help="also write the picture every N steps, as OUTPUT-stepNNNN.png")
    parser.add_argument("--timelapse", default=None, metavar="PATH.gif",
                        help="also write an animated GIF of the run (a frame every --save-every steps, "
                        "else about 40 frames)")
    for field in dataclasses.fields(Settings):
        meta = field.metadata
        kind = {"style_layer_weights": parse_layer_weights, "style_blend": parse_numbers}.get(field.name, meta["kind"])
        # no argparse choices: `Settings` checks them, with its own explanations (fp16, for one)
        choices = meta["choices"] if meta["choices"] and len(meta["choices"]) <= 5 else None
        help_text = meta["help"] + (f" ({meta['unit']})" if meta["unit"] else "")
        if field.name == "style_layer_weights":
            help_text += f"; write it as {'=1,'.join(STYLE_LAYERS)}=1"
        if field.name == "style_blend":
            help_text += "; write it as 0.7,0.3"
        metavar = "{" + ",".join(choices) + "}" if choices else field.name.upper()
        parser.add_argument(flag(field.name), dest=field.name, type=kind, default=field.default,
                            help=help_text, metavar=metavar)
    parser.add_argument("--quiet", action="store_true", help="no progress bar")
    return parser


def settings_table() -> str:
    """The README's table of settings (a test keeps the README equal to it)."""
    rows = ["| setting | flag | default | range or choices | what it is |", "|---|---|---|---|---|"]
    for field in dataclasses.fields(Settings):
        meta = field.metadata
        if meta["choices"]:
            allowed = ", ".join(meta["choices"]) if len(meta["choices"]) <= 5 else "a VGG19 layer name"
        elif meta["at_least"] is not None:
            allowed = f"{'>' if meta['above'] else '≥'} {meta['at_least']}"
            allowed += " or None" if field.default is None else ""
        else:
            allowed = ""
        unit = f" ({meta['unit']})" if meta["unit"] else ""
        rows.append(f"| `{field.name}` | `{flag(field.name)}` | `{field.default}` | {allowed} | {meta['help']}{unit} |")
    return "\n".join(rows)


def run_with_progress(
    content: Image.Image, style: list[Image.Image], settings: Settings, model: nn.Module, quiet: bool,
    snapshots: Snapshots | None = None, resume: dict | None = None, masks: list[Image.Image] | None = None,
) -> StyleTransferResult:
    """`stylize` with a tqdm progress bar (and the snapshots, if any) as its callback."""
    from tqdm.auto import tqdm

    with tqdm(total=settings.steps, disable=quiet, unit="step", desc="stylizing") as bar:

        def progress(step: int, image: Tensor, losses: Losses) -> None:
            bar.update(1)
            bar.set_postfix(loss=f"{losses.total:.4g}", refresh=False)
            if snapshots is not None:
                snapshots(step, image, losses)

        return stylize(content, style, settings, model=model, callback=progress, resume=resume, masks=masks)


def read_state(path: str) -> dict:
    """A --save-state file: the last image and the optimiser's state (tensors and numbers only)."""
    try:
        return torch.load(path, map_location="cpu", weights_only=True)  # checked against the run by stylize
    except pickle.UnpicklingError as error:
        if "GLOBAL" in str(error):
            raise ParameterError(refused_code(path, "a file written by --save-state")) from None
        raise ParameterError(f"{path} is not a state written by --save-state ({error}).", name="resume") from None
    except Exception as error:  # noqa: BLE001 - any unreadable file gets the same message
        raise ParameterError(f"{path} is not a state written by --save-state ({error}).", name="resume") from None


RECORD_KEYS = {"settings": dict, "content": str, "style": (str, list), "masks": list}  # what a run needs


def read_record(path: str) -> dict:
    """A run record written by --record (or the studio's Save), checked like any input: each key the run
    uses must have the right type, and each message names the key. A byte-order mark (Notepad) is fine."""
    try:
        record = json.loads(Path(path).read_text(encoding="utf-8-sig"))
    except (OSError, ValueError, RecursionError) as error:
        raise ParameterError(f"--from-record {path} is not a readable run record ({error}).") from None
    if not isinstance(record, dict) or "settings" not in record:
        raise ParameterError(f"--from-record {path} is not a run record: it has no \"settings\".")
    for key, kind in RECORD_KEYS.items():
        value = record.get(key)
        if value is None and key != "settings":
            continue  # content, style and masks may be left out (the defaults, no masks)
        paths = value if isinstance(value, list) else [value]
        if not isinstance(value, kind) or (key != "settings" and not all(isinstance(one, str) for one in paths)):
            wanted = {"settings": "an object of settings", "masks": "a list of paths"}.get(key, "a path or a list")
            raise ParameterError(f"--from-record {path}: \"{key}\" must be {wanted}, got {value!r:.80}.")
    if record.get("style") == []:
        raise ParameterError(f"--from-record {path}: \"style\" is an empty list: give at least one style image.")
    unknown = set(record["settings"]) - set(SETTINGS)
    if unknown:
        raise ParameterError(f"--from-record {path}: unknown setting(s) {sorted(unknown)} in \"settings\".")
    init = record["settings"].get("init")
    if init not in (None, "content", "noise") and not Path(str(init)).exists():
        raise ParameterError(f"The record's run started from an image that is not a file here "
                             f"({init}); give --init PATH.")
    return record


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; returns the process exit code (see ``--help``)."""
    argv = joined_negatives(sys.argv[1:] if argv is None else argv)
    if argv[:1] == ["features-only"]:
        return features_only_main(argv[1:])
    parser = build_parser()
    early, _ = parser.parse_known_args(argv)
    if early.from_record:
        try:
            record = read_record(early.from_record)
        except StyleTransferError as error:
            return fail(error)
        parser.set_defaults(**{name: value for name, value in record["settings"].items() if name in SETTINGS},
                            content=record.get("content") or str(DEFAULT_CONTENT),
                            style=record.get("style") or [str(DEFAULT_STYLE)],
                            mask=record.get("masks"))
    args = parser.parse_args(argv)
    say = (lambda *a: None) if args.quiet else (lambda *a: print(*a, file=sys.stderr))
    try:
        # Everything a user can get wrong is checked before the (possibly long) weights download.
        settings = Settings(**{name: getattr(args, name) for name in SETTINGS})
        device = choose_device(settings.device)
        choose_precision(settings.precision, device)
        styles = [args.style] if isinstance(args.style, str) else args.style  # a record may hold one path
        content, style = as_image(args.content, "content"), [as_image(one, "style") for one in styles]
        masks = args.mask and [as_image(one, "mask", background="black") for one in args.mask]
        check_masks(masks, len(style), settings.style_blend)
        resume = read_state(args.resume) if args.resume else None
        for name in DESTINATIONS:  # before any work, so that no result is lost to a wrong path
            if getattr(args, name):
                check_destination(getattr(args, name), name, image=name == "output")
        every = args.save_every or (max(1, settings.steps // 40) if args.timelapse else None)
        folder = Path(args.output).parent
        snapshots = Snapshots(every, folder if args.save_every else None) if every else None
        say(f"Loading VGG19 on {device} ...")
        model = load_vgg19(settings.weights, device, seed=settings.seed or 0)  # seed: random weights repeat
        say(f"Weights: {model.weights_source}")
        if early.from_record and record.get("weights_sha256") not in (None, weights_fingerprint(model)):
            warnings.warn("These weights are not the ones the record's run used (their SHA-256 differs): "
                          "the picture will differ. Give the record's --weights to repeat it.", stacklevel=1)
        if settings.weights == "random":
            say("WARNING: random weights: the result will not look like style transfer. Use --weights imagenet.")
        result = run_with_progress(content, style, settings, model, args.quiet, snapshots, resume, masks)
    except StyleTransferError as error:
        return fail(error)
    except KeyboardInterrupt:
        print("Interrupted before the optimisation started; nothing was written.", file=sys.stderr)
        return EXIT_INTERRUPTED
    try:
        output = save_image(result.best_image, args.output)
        if snapshots is not None and args.save_every:  # step0040.png -> OUTPUT-step0040.png
            for path in snapshots.written:
                path.replace(path.with_name(f"{output.stem}-{path.name}"))
        if args.save_state:
            write_atomically(args.save_state, lambda stream: torch.save(result.resume_state, stream))
        if args.timelapse:
            snapshots.write_gif(args.timelapse)
        if args.record:
            record = {"content": str(args.content), "style": [str(one) for one in styles], "output": str(output),
                      "weights_sha256": weights_fingerprint(model)}
            if args.mask:
                record["masks"] = [str(one) for one in args.mask]
            save_record({**record, **result.record()}, args.record)
    except StyleTransferError as error:
        return fail(error)
    except KeyboardInterrupt:
        print(f"Interrupted while writing; {args.output} was left as it was.", file=sys.stderr)
        return EXIT_INTERRUPTED
    if result.stopped is None:
        print(f"Wrote {output} ({result.steps_run} steps, {result.seconds:.1f} s, best loss {result.best_loss:.4g})")
        return EXIT_OK
    print(f"Stopped early: {result.stopped}", file=sys.stderr)
    if result.best_size < result.size:
        print(f"The run stopped during a coarse scale: the saved picture was computed at {result.best_size} px "
              f"and enlarged to {result.size} px, so it looks soft.", file=sys.stderr)
    print(f"Wrote the best image so far (step {result.best_step}) to {output}")
    return EXIT_INTERRUPTED if result.stopped == "interrupted" else EXIT_DIVERGED


def features_only_main(argv: Sequence[str]) -> int:
    """``styletransfer features-only SOURCE DESTINATION``: see `save_features_checkpoint`."""
    parser = argparse.ArgumentParser(
        prog="styletransfer features-only",
        description="Copy the feature layers (about 80 MB) out of torchvision's 548 MB VGG19 checkpoint. "
        "Style transfer needs nothing else, so classrooms can copy the small file onto every machine and "
        f"point ${WEIGHTS_ENV} (or --weights) at it.",
    )
    parser.add_argument("source", help="'imagenet' (the cached or downloaded checkpoint), a path or a URL")
    parser.add_argument("destination", help="where to write the features-only checkpoint (.pth)")
    args = parser.parse_args(argv)
    try:
        written = save_features_checkpoint(args.source, args.destination)
    except StyleTransferError as error:
        return fail(error)
    print(f"Wrote {written} ({written.stat().st_size / 1e6:.0f} MB); use it with --weights {written}")
    return EXIT_OK


if __name__ == "__main__":
    warnings.simplefilter("default")
    sys.exit(main())
