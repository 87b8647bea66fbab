"""How fast is `stylize`, compared with the seed notebook's loop, on this machine?

Prints, in one run, on the same random VGG19 weights and the same images:

1. the machine's measured peaks: GFLOP/s of a 3x3 convolution (256 -> 256
   channels, 64 x 64, channels-last) and of a large matrix product, in fp32
   and bf16;
2. seconds per optimisation step at 256 and 512 px for (a) a re-implementation
   of the seed's loop (below) and (b) `stylize`'s step, in fp32 and in the
   mixed-precision path, each with its achieved GFLOP/s and its ratio to the
   convolution peak and to (a);
3. end to end at 384 px: the Gatys objective reached by (a) after 2000 steps
   and by `stylize` within a 60-second budget, both measured by one neutral
   evaluator, with both wall times;
4. the peak memory (RSS) of a `stylize` run at 512 px.

Usage:  python benchmarks/benchmark_speed.py [--quick]
(``make benchmark`` runs the full version; ``--quick`` shrinks every part to
finish in about a minute.) Never a test: speed is reported, not asserted.

The seed's loop is the Udacity notebook's: the *whole* VGG19 feature stack is
run every step, Adam with lr 0.003 optimises the ImageNet-normalised image
(no clamping), content start, 2000 steps. For a fair race both loops optimise
the same objective: content at conv4_2, style at conv1_1 ... conv5_1 with the
seed's layer weights (1, 0.75, 0.2, 0.2, 0.2), α = 1, β = 1e6, and this
project's normalisation (Gram matrices / C·H·W, mean squared errors). The
evaluator computes that objective independently, in float32, at full size,
on the final 8-bit image each method would save.
"""

from __future__ import annotations

import argparse
import resource
import statistics
import subprocess
import sys
import threading
import time
from pathlib import Path

import torch
import torch.nn.functional as F

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
import styletransfer_utils as st  # noqa: E402

CONTENT = ROOT / "assets" / "astronaut.jpg"
STYLE = ROOT / "assets" / "stained_glass.png"
SEED_STYLE_WEIGHTS = {"conv1_1": 1.0, "conv2_1": 0.75, "conv3_1": 0.2, "conv4_1": 0.2, "conv5_1": 0.2}
ALPHA, BETA = 1.0, 1e6


# --------------------------------------------------------------------------- peaks


def best_seconds(function, repeats: int) -> float:
    """The fastest of ``repeats`` timed calls after one warm-up (the least disturbed)."""
    function()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        function()
        times.append(time.perf_counter() - start)
    return min(times)


def conv_peak(dtype: torch.dtype, repeats: int) -> float:
    """GFLOP/s of one 3x3 convolution, 256 -> 256 channels at 64 x 64, channels-last."""
    x = torch.randn(1, 256, 64, 64).to(dtype=dtype, memory_format=torch.channels_last)
    w = torch.randn(256, 256, 3, 3).to(dtype=dtype, memory_format=torch.channels_last)
    flops = 2 * 256 * 256 * 9 * 64 * 64
    with torch.no_grad():
        return flops / best_seconds(lambda: F.conv2d(x, w, padding=1), repeats) / 1e9


def matmul_peak(dtype: torch.dtype, repeats: int, n: int = 2048) -> float:
    a, b = torch.randn(n, n, dtype=dtype), torch.randn(n, n, dtype=dtype)
    return 2 * n**3 / best_seconds(lambda: a @ b, repeats) / 1e9


# --------------------------------------------------------------------------- FLOPs


def step_gflop(height: int, width: int, forward_layers: list[str], backward_layers: list[str]) -> float:
    """Convolution and Gram FLOPs of one step: forward through ``forward_layers``, backward
    to the image through ``backward_layers`` (input gradients only: the weights are frozen)."""
    flops = 0.0
    shapes = {row.name: row for row in st.vgg19_summary(height, width)}
    for name, in_channels, out_channels in st.VGG19_LAYERS:
        if name.startswith("conv"):
            conv = 2 * in_channels * out_channels * 9 * shapes[name].height * shapes[name].width
            flops += conv * ((name in forward_layers) + (name in backward_layers))
    for name in SEED_STYLE_WEIGHTS:  # Gram: forward F Fᵀ, backward one more product
        flops += 2 * 2 * shapes[name].channels ** 2 * shapes[name].height * shapes[name].width
    return flops / 1e9


def layers_up_to(last: str) -> list[str]:
    return list(st.VGG19_LAYER_NAMES[: st.VGG19_LAYER_NAMES.index(last) + 1])


# --------------------------------------------------------------------------- the seed's loop


def seed_features(model: torch.nn.Module, normalized: torch.Tensor, layers: list[str]) -> dict:
    """The seed's get_features: every layer of the stack runs, whatever is needed."""
    found, x = {}, normalized
    for name, layer in model.named_children():
        x = layer(x)
        if name in layers:
            found[name] = x
    return found


def seed_loop(model, content: torch.Tensor, style: torch.Tensor, steps: int, on_step=None) -> torch.Tensor:
    """The seed notebook's optimisation, on the shared objective (see the module docstring)."""
    layers = ["conv4_2", *SEED_STYLE_WEIGHTS]
    content_n, style_n = st.imagenet_normalize(content), st.imagenet_normalize(style)
    with torch.no_grad():
        content_target = seed_features(model, content_n, layers)["conv4_2"]
        style_grams = {n: st.gram_matrix(f) for n, f in seed_features(model, style_n, layers).items()}
    target = content_n.clone().requires_grad_(True)
    optimizer = torch.optim.Adam([target], lr=0.003)
    for step in range(steps):
        features = seed_features(model, target, layers)
        loss = ALPHA * F.mse_loss(features["conv4_2"], content_target)
        for name, weight in SEED_STYLE_WEIGHTS.items():
            loss = loss + BETA * weight * F.mse_loss(st.gram_matrix(features[name]), style_grams[name])
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        if on_step is not None:
            on_step(step)
    return st.imagenet_denormalize(target.detach()).clamp(0, 1)


# --------------------------------------------------------------------------- the neutral evaluator


def gatys_objective(model, image, content, style) -> float:
    """α·content + β·Σ w_l·style_l in float32, written here independently of the module's loop."""
    def features(x):
        return seed_features(model, st.imagenet_normalize(x), ["conv4_2", *SEED_STYLE_WEIGHTS])

    with torch.no_grad():
        mine, theirs_c, theirs_s = features(image), features(content), features(style)
        total = ALPHA * F.mse_loss(mine["conv4_2"], theirs_c["conv4_2"])
        for name, weight in SEED_STYLE_WEIGHTS.items():
            total += BETA * weight * F.mse_loss(st.gram_matrix(mine[name]), st.gram_matrix(theirs_s[name]))
    return float(total)


def as_saved(image: torch.Tensor) -> torch.Tensor:
    """Round to the 8-bit image that would be written to disk."""
    return st.image_to_tensor(st.tensor_to_image(image))


# --------------------------------------------------------------------------- runs


def images(size: int) -> tuple[torch.Tensor, torch.Tensor]:
    content = st.resize_longer_side(st.load_image(CONTENT), size)
    style = st.resize_longer_side(st.load_image(STYLE), size)
    return st.image_to_tensor(content), st.image_to_tensor(style)


def seconds_per_step(timestamps: list[float]) -> float:
    """Median time between consecutive steps, skipping the first (warm-up) step."""
    gaps = [b - a for a, b in zip(timestamps[1:], timestamps[2:], strict=False)]
    return statistics.median(gaps)


def time_seed_step(model, size: int, steps: int) -> float:
    content, style = images(size)
    stamps: list[float] = []
    seed_loop(model, content, style, steps, on_step=lambda s: stamps.append(time.perf_counter()))
    return seconds_per_step(stamps)


def time_stylize_step(model, size: int, steps: int, precision: str) -> float:
    content, style = images(size)
    stamps: list[float] = []
    st.stylize(st.tensor_to_image(content), st.tensor_to_image(style), model=model, size=size, steps=steps,
               scales=1, precision=precision, content_layer="conv4_2", style_layer_weights=SEED_STYLE_WEIGHTS,
               callback=lambda step, image, losses: stamps.append(time.perf_counter()))
    return seconds_per_step(stamps)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="small sizes and few steps (about a minute)")
    args = parser.parse_args()
    quick = args.quick
    torch.manual_seed(0)
    model = st.load_vgg19(None, device="cpu")  # the same random weights for every run
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads, "
          f"CPU capability {torch.backends.cpu.get_cpu_capability()}, "
          f"native bf16: {st._bf16_supported(torch.device('cpu'))}")

    print("\n1. Measured peaks (GFLOP/s)")
    repeats = 3 if quick else 10
    peaks = {dtype: conv_peak(dtype, repeats) for dtype in (torch.float32, torch.bfloat16)}
    for dtype in (torch.float32, torch.bfloat16):
        name = str(dtype).removeprefix("torch.")
        print(f"   3x3 conv 256->256 @64x64 {name:9s}: {peaks[dtype]:7.1f}   "
              f"matmul 2048^3 {name:9s}: {matmul_peak(dtype, repeats):7.1f}")

    print("\n2. Seconds per step (median), achieved GFLOP/s, % of the fp32 conv peak, speed-up over the seed loop")
    sizes = (128, 256) if quick else (256, 512)
    steps = 4 if quick else 8
    deepest = st.VGG19_LAYER_NAMES[-1]
    for size in sizes:
        content, _ = images(size)
        height, width = content.shape[-2:]
        seed_gflop = step_gflop(height, width, layers_up_to(deepest), layers_up_to("conv5_1"))
        ours_gflop = step_gflop(height, width, layers_up_to("conv5_1"), layers_up_to("conv5_1"))
        seed = time_seed_step(model, size, steps)
        print(f"   {size} px ({width}x{height}):")
        print(f"     (a) seed loop, fp32      {seed:6.3f} s/step  {seed_gflop / seed:6.1f} GFLOP/s  "
              f"{100 * seed_gflop / seed / peaks[torch.float32]:5.1f} %")
        for precision, peak in (("fp32", peaks[torch.float32]), ("bf16", peaks[torch.bfloat16])):
            ours = time_stylize_step(model, size, steps, precision)
            print(f"     (b) stylize step, {precision}  {ours:6.3f} s/step  {ours_gflop / ours:6.1f} GFLOP/s  "
                  f"{100 * ours_gflop / ours / peaks[torch.float32]:5.1f} % (of its own {precision} peak: "
                  f"{100 * ours_gflop / ours / peak:5.1f} %)  x{seed / ours:4.2f} vs (a)")

    size, seed_steps, budget = (128, 200, 10.0) if quick else (384, 2000, 60.0)
    print(f"\n3. End to end at {size} px: the objective (lower is better) by the neutral evaluator")
    content, style = images(size)
    start = time.perf_counter()
    seed_image = seed_loop(model, content, style, seed_steps)
    seed_seconds = time.perf_counter() - start
    stop = threading.Event()
    timer = threading.Timer(budget, stop.set)
    timer.start()
    result = st.stylize(st.tensor_to_image(content), st.tensor_to_image(style), model=model, size=size,
                        content_layer="conv4_2", style_layer_weights=SEED_STYLE_WEIGHTS, stop=stop)
    timer.cancel()
    start_objective = gatys_objective(model, content, content, style)
    seed_objective = gatys_objective(model, as_saved(seed_image), content, style)
    ours_objective = gatys_objective(model, as_saved(st.image_to_tensor(result.best_image)), content, style)
    print(f"   start (the content image):        {start_objective:10.4g}")
    print(f"   (a) seed loop, {seed_steps} steps:      {seed_objective:10.4g}  in {seed_seconds:7.1f} s")
    print(f"   (b) stylize defaults ({result.steps_run} steps, {result.precision}): {ours_objective:10.4g}  "
          f"in {result.seconds:7.1f} s (budget {budget:.0f} s{', stopped by it' if result.stopped else ''})")
    print(f"   (b) reaches {seed_objective / ours_objective:.2f}x lower objective, "
          f"{seed_seconds / result.seconds:.1f}x faster")

    rss_size = 128 if quick else 512
    print(f"\n4. Peak memory (RSS) of a whole stylize run at {rss_size} px, in a fresh process")
    print(f"   {peak_rss_of_a_run(rss_size):.0f} MiB (random weights; the ImageNet checkpoint adds its "
          "548 MB while it is being read)")


def peak_rss_of_a_run(size: int) -> float:
    """Run stylize in a child process, so the number is not the benchmark's own peak."""
    code = (
        "import sys, torch; sys.path.insert(0, sys.argv[1]); import styletransfer_utils as st; "
        "torch.manual_seed(0); "
        f"st.stylize(sys.argv[2], sys.argv[3], weights=None, size={size}, steps=6, scales=1)"
    )
    subprocess.run([sys.executable, "-c", code, str(ROOT), str(CONTENT), str(STYLE)], check=True)
    return resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024


if __name__ == "__main__":
    main()
