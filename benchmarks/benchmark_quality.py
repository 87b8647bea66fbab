"""Do the defaults converge, fast, on *trained* features, whatever their scale? Figures, not tests.

Random weights say nothing about how a stylization looks or converges, so this
benchmark needs a checkpoint with trained features. torchvision's ImageNet
VGG19 cannot be downloaded where this project is developed; there, use the
development stand-in ``../shared/tools/real_features.py`` (real, trained VGG16
features in VGG19's layout) and label the figures with ``--label``.

Prints, for the defaults of `stylize` (nothing here overrides them):

1. every bundled pair (4 photos x 3 styles) at 384 px: wall time, steps and
   the objective reached; all results go into one labelled figure;
2. on the default pair (``--convergence-pairs 2`` adds a second): the
   objective of the defaults against a long reference run (the defaults'
   result, then ``--reference-steps`` more L-BFGS evaluations at full size)
   and against the seed notebook's loop (Adam, lr 0.003 on the
   ImageNet-normalised image, 2000 full-size steps) on the same objective;
   and Adam against L-BFGS at the same number of steps;
3. with ``--rescaled PATH`` (the same features with every activation scaled,
   e.g. ``real_features.py --scale 224``): the mean pixel difference between
   the defaults' results on the two, beside the same difference for
   activations scaled by only 1.0001 (pure rounding noise: the optimisation
   amplifies it into a different placement of the texture), both also after
   16 x 16 averaging, which keeps the layout and colours and drops the texture;
4. peak memory (RSS) of a 512 px run from a full 548 MB checkpoint (the
   features plus a random classifier, as a user's file has), above what
   ``import torch, torchvision`` alone takes, in fresh processes: fp32, and
   bf16 where the CPU computes it natively;
5. the default 384 px run's wall time with the CPU limited to AVX2 (oneDNN and
   ATen told not to use AVX-512), to estimate a machine without AVX-512;
7. the cases the notebooks teach, at the notebooks' own sizes, with the
   default optimiser and no per-case setting: notebook 03's five textures
   from noise and notebook 04's five reconstructions from noise (the error
   at the start and at the best step, and their ratio: the goal is at least
   10), and notebook 06's Figure 3 grid (each cell's highest objective
   against its first: the goal is at most 2);
6. (only when asked: ``--parts 6``) high resolution: the defaults at
   ``--high-resolution`` px (1024) on the square default pair, in a fresh
   process: wall time, peak RSS above the imports and the objective, on this
   CPU, on it limited to AVX2 in fp32, and on the GPU where there is one (with
   its peak GPU memory); the pictures go to ``--out``.

Usage:
    python ../shared/tools/real_features.py /tmp/standin.pth
    python ../shared/tools/real_features.py /tmp/standin-224.pth --scale 224
    python benchmarks/benchmark_quality.py --weights /tmp/standin.pth --rescaled /tmp/standin-224.pth \\
        --label "VGG16 stand-in features" [--quick] [--out DIR]
(``make quality ARGS="..."``.) Every objective is evaluated the same way: the
full-size objective of `stylize`'s defaults on the 8-bit image that would be
saved.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from copy import deepcopy
from pathlib import Path

import torch
import torch.nn.functional as F

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
import styletransfer_utils as st  # noqa: E402

ASSETS = ROOT / "assets"
PHOTOS = ("astronaut.jpg", "chelsea.jpg", "coffee.jpg", "rocket.jpg")
STYLES = ("stained_glass.png", "swirls.png", "pointillism.png")
SIZE = 384


def pair_images(photo: str, style: str) -> tuple:
    return st.load_image(ASSETS / photo), st.load_image(ASSETS / style)


def objective_of(model, photo, style, image, size: int = SIZE) -> float:
    """The defaults' objective at full size, on the 8-bit picture that would be saved."""
    content = st.image_to_tensor(st.resize_longer_side(photo, size))
    target_style = st.image_to_tensor(st.resize_longer_side(style, size))
    loss = st.StyleTransferLoss(model, content, target_style)
    with torch.no_grad():
        return loss(st.image_to_tensor(image.resize((content.shape[-1], content.shape[-2]))))[1].total


def seed_loop(model, photo, style, steps: int, size: int = SIZE):
    """The seed notebook's optimiser on this project's objective: Adam, lr 0.003, on the normalised image."""
    content = st.image_to_tensor(st.resize_longer_side(photo, size))
    loss = st.StyleTransferLoss(model, content, st.image_to_tensor(st.resize_longer_side(style, size)))
    normalized = st.imagenet_normalize(content).requires_grad_(True)
    optimizer = torch.optim.Adam([normalized], lr=0.003)
    for _ in range(steps):
        optimizer.zero_grad()
        loss(st.imagenet_denormalize(normalized))[0].backward()
        optimizer.step()
    return st.tensor_to_image(st.imagenet_denormalize(normalized.detach()))


def save_figure(results: list[tuple[str, str, object]], label: str, path: Path) -> None:
    from matplotlib.figure import Figure

    figure = Figure(figsize=(3.2 * len(STYLES), 2.6 * len(PHOTOS)), layout="constrained")
    axes = figure.subplots(len(PHOTOS), len(STYLES), squeeze=False)
    for (photo, style, image), axis in zip(results, axes.flat, strict=True):
        axis.imshow(image)
        axis.set_axis_off()
        axis.set_title(f"{Path(photo).stem} + {Path(style).stem}", fontsize=8)
    figure.suptitle(f"stylize() defaults, {SIZE} px. Weights: {label}", fontsize=10)
    figure.savefig(path, dpi=90)


def fresh_process_rss(code: str, env: dict | None = None) -> dict:
    """Run ``code`` in a new interpreter; it prints one JSON line, which is returned."""
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True,
                          env={**os.environ, **(env or {})})
    return json.loads(done.stdout.strip().splitlines()[-1])


MEMORY_RUN = """
import json, sys
import torch, torchvision

def high_water_mark():  # VmHWM: this process's peak RSS (ru_maxrss would carry the parent's over exec)
    line = next(line for line in open("/proc/self/status") if line.startswith("VmHWM:"))
    return int(line.split()[1]) / 1024

base = high_water_mark()
sys.path.insert(0, {root!r})
import styletransfer_utils as st
result = st.stylize(st.DEFAULT_CONTENT, st.DEFAULT_STYLE, weights={weights!r}, size={size}, steps={steps},
                    precision={precision!r}, device={device!r})
if {picture!r}:
    result.best_image.save({picture!r})
gpu = torch.cuda.max_memory_allocated() / 2**20 if result.device.startswith("cuda") else None
print(json.dumps({{"base": base, "peak": high_water_mark(), "seconds": result.seconds, "steps": result.steps_run,
                  "best_loss": result.best_loss, "precision": result.precision, "device": result.device,
                  "gpu_peak": gpu}}))
"""


def memory_run(weights, size: int, steps: int, precision: str = "auto", device: str = "cpu",
               picture: str = "", env: dict | None = None) -> dict:
    """A `stylize` run of the default pair in a fresh process: its seconds, peak RSS and the imports' RSS."""
    code = MEMORY_RUN.format(root=str(ROOT), weights=str(weights), size=size, steps=steps, precision=precision,
                             device=device, picture=picture)
    return fresh_process_rss(code, env)


def scaled_copy(model, factor: float):
    """A copy of ``model`` whose every activation is ``factor`` times larger (conv1_1 and all biases scaled)."""
    copy = deepcopy(model)
    with torch.no_grad():
        copy[0].weight.mul_(factor)
        for layer in copy:
            if isinstance(layer, torch.nn.Conv2d):
                layer.bias.mul_(factor)
    return copy


def full_checkpoint(features_path: str, folder: Path) -> Path:
    """The features plus a random classifier of the real shapes: a file of torchvision's full 548 MB."""
    state = dict(torch.load(features_path, weights_only=True, mmap=True))
    generator = torch.Generator().manual_seed(0)
    for index, shape in ((0, (4096, 25088)), (3, (4096, 4096)), (6, (1000, 4096))):
        state[f"classifier.{index}.weight"] = torch.randn(*shape, generator=generator) * 0.01
        state[f"classifier.{index}.bias"] = torch.zeros(shape[0])
    path = folder / "vgg19-full.pth"
    torch.save(state, path)
    return path


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--weights", default=os.environ.get(st.WEIGHTS_ENV),
                        help="checkpoint with trained features (default: $STYLETRANSFER_VGG19_WEIGHTS)")
    parser.add_argument("--rescaled", help="the same features with every activation scaled (part 3)")
    parser.add_argument("--label", default=None, help="what the weights are, for figures (default: where they "
                        "were loaded from)")
    parser.add_argument("--reference-steps", type=int, default=600)
    parser.add_argument("--seed-steps", type=int, default=2000)
    parser.add_argument("--convergence-pairs", type=int, choices=(1, 2), default=1, help="pairs in part 2")
    parser.add_argument("--parts", default="123457", help="which parts to run, e.g. 345 (6: high resolution)")
    parser.add_argument("--high-resolution", type=int, default=1024, metavar="PX", help="size of part 6")
    parser.add_argument("--quick", action="store_true", help="fewer pairs and steps (a few minutes)")
    parser.add_argument("--out", default=str(ROOT / "benchmarks" / "results"), help="folder for the figure")
    args = parser.parse_args()
    if not args.weights:
        parser.error("give --weights PATH (trained features: see the docstring)")
    if args.quick:
        args.reference_steps, args.seed_steps = min(args.reference_steps, 150), min(args.seed_steps, 300)
    model = st.load_vgg19(args.weights)
    args.label = args.label or model.weights_source  # never a name the weights have not earned
    defaults = st.Settings()
    print(f"weights: {args.label} ({model.weights_source})")
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads, CPU capability "
          f"{torch.backends.cpu.get_cpu_capability()}, "
          f"native bf16: {st.choose_precision('auto', torch.device('cpu')) is not None}")
    print(f"defaults: {defaults}")

    if "1" in args.parts:
        part_all_pairs(args, model)
    if "2" in args.parts:
        part_convergence(args, model)
    if "3" in args.parts and args.rescaled:
        part_rescaled(args, model)
    if "4" in args.parts:
        part_memory(args)
    if "5" in args.parts:
        part_avx2(args, defaults)
    if "6" in args.parts:
        part_high_resolution(args, defaults)
    if "7" in args.parts:
        part_taught_cases(args, model)
    print(f"\n(peak RSS of this process: {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024:.0f} MiB)")


def part_all_pairs(args, model) -> None:
    print(f"\n1. Every bundled pair at the defaults, {SIZE} px")
    results = []
    pairs = [(photo, style) for photo in PHOTOS for style in STYLES]
    for photo, style in pairs[:3] if args.quick else pairs:
        content_image, style_image = pair_images(photo, style)
        result = st.stylize(content_image, style_image, model=model)
        objective = objective_of(model, content_image, style_image, result.best_image)
        results.append((photo, style, result.best_image))
        print(f"   {Path(photo).stem:10} + {Path(style).stem:14} {result.seconds:6.1f} s  {result.steps_run} steps  "
              f"{result.precision}  objective {objective:.4f}", flush=True)
    if not args.quick:
        out = Path(args.out)
        out.mkdir(parents=True, exist_ok=True)
        save_figure(results, args.label, out / "defaults_all_pairs.png")
        print(f"   figure: {out / 'defaults_all_pairs.png'}")



def part_convergence(args, model) -> None:
    print(f"\n2. Convergence at {SIZE} px (objective, lower is better)")
    convergence_pairs = (("astronaut.jpg", "stained_glass.png"), ("chelsea.jpg", "swirls.png"))
    for photo, style in convergence_pairs[: 1 if args.quick else args.convergence_pairs]:
        content_image, style_image = pair_images(photo, style)
        ours = st.stylize(content_image, style_image, model=model)
        reference = st.stylize(content_image, style_image, model=model, init=ours.best_image, scales=1,
                               steps=args.reference_steps)
        adam = st.stylize(content_image, style_image, model=model, optimizer="adam")
        start = time.perf_counter()
        seed = seed_loop(model, content_image, style_image, args.seed_steps)
        seed_seconds = time.perf_counter() - start
        value = {name: objective_of(model, content_image, style_image, image) for name, image in
                 (("ours", ours.best_image), ("reference", reference.best_image), ("adam", adam.best_image),
                  ("seed", seed))}
        print(f"   {Path(photo).stem} + {Path(style).stem}:")
        print(f"     defaults ({ours.steps_run} steps, {ours.seconds:.1f} s)      {value['ours']:.4f}  "
              f"= {value['ours'] / value['reference']:.3f} x the reference")
        print(f"     reference (+{args.reference_steps} full-size L-BFGS steps, {reference.seconds:.0f} s more)"
              f"  {value['reference']:.4f}")
        print(f"     same schedule with Adam, lr {st.DEFAULT_LR['adam']} ({adam.seconds:.1f} s)  {value['adam']:.4f}")
        print(f"     seed loop ({args.seed_steps} full-size Adam steps, lr 0.003, {seed_seconds:.0f} s)  "
              f"{value['seed']:.4f}", flush=True)



def part_rescaled(args, model) -> None:
    print("\n3. The same features, every activation scaled: how much does the picture change?")
    content_image, style_image = pair_images("rocket.jpg", "pointillism.png")
    runs = {name: st.image_to_tensor(st.stylize(content_image, style_image, model=network).best_image)
            for name, network in (("reference", model), ("rescaled", st.load_vgg19(args.rescaled)),
                                  ("x1.0001", scaled_copy(model, 1.0001)))}
    for name, label in (("rescaled", args.rescaled), ("x1.0001", "activations x 1.0001 (rounding noise)")):
        difference = (runs["reference"] - runs[name]).abs().mean().item()
        averaged = (F.avg_pool2d(runs["reference"], 16) - F.avg_pool2d(runs[name], 16)).abs().mean().item()
        print(f"   rocket + pointillism vs {label}: mean |difference| {difference:.4f}, "
              f"after 16 x 16 averaging {averaged:.4f} (pixel values 0-1)")


def part_memory(args) -> None:
    print("\n4. Peak memory of a 512 px run from a full 548 MB checkpoint, above `import torch, torchvision`")
    with tempfile.TemporaryDirectory() as folder:
        full = full_checkpoint(args.weights, Path(folder))
        precisions = ["fp32"] + (["bf16"] if st.choose_precision("auto", torch.device("cpu")) is not None else [])
        for precision in precisions:
            figures = memory_run(full, 512, 20 if args.quick else 60, precision)
            print(f"   {precision}: {figures['peak'] - figures['base']:.0f} MiB above the "
                  f"{figures['base']:.0f} MiB of the imports ({figures['steps']} steps, {figures['seconds']:.0f} s)")


AVX2 = {"ONEDNN_MAX_CPU_ISA": "AVX2", "ATEN_CPU_CAPABILITY": "avx2"}  # oneDNN and ATen told not to use AVX-512


def part_avx2(args, defaults) -> None:
    print(f"\n5. The default {SIZE} px run with the CPU limited to AVX2 (ONEDNN_MAX_CPU_ISA=AVX2, "
          "ATEN_CPU_CAPABILITY=avx2; fp32, as a CPU without native bf16 runs)")
    for environment, precision in (({}, "auto"), (AVX2, "fp32")):
        figures = memory_run(args.weights, SIZE, defaults.steps, precision, env=environment)
        print(f"   {'AVX2 only' if environment else 'this CPU  '}: {figures['seconds']:.1f} s "
              f"({figures['steps']} steps)")


HIGH_RESOLUTION_GOAL = (240, 1536)  # seconds and MiB above the imports, for a 1024 px result on a CPU


def part_high_resolution(args, defaults) -> None:
    size = args.high_resolution
    print(f"\n6. High resolution: the defaults at {size} px ({defaults.steps} steps, coarse to fine: "
          f"{st.scale_schedule((size, size), defaults.steps)}), square astronaut + stained glass, fresh process; "
          f"goal for 1024 px on a CPU: under {HIGH_RESOLUTION_GOAL[0]} s and {HIGH_RESOLUTION_GOAL[1]} MiB above "
          "the imports")
    runs = [("this CPU", {}, "auto", "cpu")]
    if not args.quick:
        runs.append(("this CPU limited to AVX2, fp32", AVX2, "fp32", "cpu"))
    if torch.cuda.is_available():
        runs.insert(0, (torch.cuda.get_device_name(), {}, "auto", "cuda"))
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    for label, environment, precision, device in runs:
        picture = str(out / f"high_resolution_{size}_{device}.png") if not environment else ""
        figures = memory_run(args.weights, size, defaults.steps, precision, device, picture, environment)
        gpu = f", {figures['gpu_peak']:.0f} MiB of GPU memory at most" if figures["gpu_peak"] is not None else ""
        print(f"   {label} ({figures['device']}, {figures['precision']}): {figures['seconds']:.1f} s, "
              f"{figures['peak'] - figures['base']:.0f} MiB above the {figures['base']:.0f} MiB of the imports"
              f"{gpu}; best objective {figures['best_loss']:.4f}" + (f"; picture {picture}" if picture else ""),
              flush=True)


TAUGHT_GOALS = (10, 2)  # error falls at least tenfold from noise; no Figure 3 cell above twice its first objective


def save_row(pictures: list, titles: list[str], caption: str, path: Path) -> None:
    """One labelled row of pictures, written to ``path`` (and its name printed)."""
    from styletransfer_tools import notebook
    from styletransfer_tools.files import save_figure

    figure = notebook.show_images(pictures, titles, height=2.5)
    figure.suptitle(caption, fontsize=9)
    print(f"     pictures: {save_figure(figure, path)}")


def part_taught_cases(args, model) -> None:
    """Notebooks 03, 04 and 06 as they run them (their pairs, sizes and steps), with `stylize`'s optimiser."""
    from PIL import Image

    from styletransfer_tools import notebook
    from styletransfer_tools.files import save_figure

    quick = 2 if args.quick else 1  # --quick: half the size and half the steps
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    textures = []
    print(f"\n7. The taught cases with the default optimiser ({st.Settings().optimizer}); goals: every error falls "
          f"at least {TAUGHT_GOALS[0]}-fold, no Figure 3 cell rises above {TAUGHT_GOALS[1]} x its first objective")
    photo, painting = pair_images("astronaut.jpg", "stained_glass.png")
    size, steps = 256 // quick, 120 // quick
    print(f"   notebook 03, textures from noise ({size} px, {steps} steps, one scale), style error:")
    for depth in range(1, len(st.STYLE_LAYERS) + 1):
        layers = st.STYLE_LAYERS[:depth]
        run = st.stylize(Image.new("RGB", (450, 300)), st.resize_longer_side(painting, size), model=model,
                         content_weight=0, init="noise", scales=1, style_layer_weights=dict.fromkeys(layers, 1.0),
                         size=size, steps=steps)
        textures.append(run.best_image)
        print(f"     up to {layers[-1]}: {run.history.style[0]:.3g} -> {run.best_loss:.3g}  "
              f"(x{run.history.style[0] / run.best_loss:,.0f} lower, {run.seconds:.1f} s)", flush=True)
    save_row(textures, [f"up to {name}" for name in st.STYLE_LAYERS],
             f"notebook 03's textures, {size} px, {steps} steps. Weights: {args.label}", out / "taught_textures.png")
    size, steps = 192 // quick, 150 // quick
    print(f"   notebook 04, reconstructions from noise ({size} px, {steps} steps, one scale), content error:")
    layers, reconstructions = ("relu1_2", "relu2_2", "relu3_2", "relu4_2", "relu5_2"), []
    for layer in layers:
        run = st.stylize(photo, painting, model=model, style_weight=0, init="noise", content_layer=layer, scales=1,
                         size=size, steps=steps)
        reconstructions.append(run.best_image)
        print(f"     {layer}: {run.history.content[0]:.3g} -> {run.best_loss:.3g}  "
              f"(x{run.history.content[0] / run.best_loss:,.0f} lower, {run.seconds:.1f} s)", flush=True)
    save_row(reconstructions, list(layers), f"notebook 04's reconstructions, {size} px, {steps} steps. "
             f"Weights: {args.label}", out / "taught_reconstructions.png")
    cat, swirls = pair_images("chelsea.jpg", "swirls.png")
    betas = [100, 10, 1, 0.1]
    grid = notebook.figure3_grid(cat, swirls, betas, model=model, size=128 // quick, steps=st.Settings().steps,
                                 progress=False)
    cell = grid.results[0][0].settings
    print(f"   notebook 06, Figure 3 (chelsea + swirls, {cell.size} px, {cell.steps} steps), "
          "highest objective / first | best / first:")
    print(f"     {'style layers':18}" + "".join(f"{f'β = {beta:g}':>16}" for beta in betas))
    for subset, row in zip(grid.layer_subsets, grid.results, strict=True):
        cells = [f"{max(r.history.total) / r.history.total[0]:.2f} | {r.best_loss / r.history.total[0]:.3f}"
                 for r in row]
        print(f"     {notebook.layers_label(subset):18}" + "".join(f"{cell:>16}" for cell in cells), flush=True)
    figure = notebook.show_figure3_grid(grid, label=args.label)
    print(f"     pictures: {save_figure(figure, out / 'taught_figure3.png')}")


if __name__ == "__main__":
    main()
