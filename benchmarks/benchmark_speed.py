"""How fast is `stylize`, compared with the seed notebook's loop, on this machine?

Prints, in one run, on the same random VGG19 weights and the same images:

1. the machine's measured peaks: GFLOP/s of a 3x3 convolution (256 -> 256
   channels, 64 x 64, channels-last) and of a large matrix product, in fp32
   and bf16;
2. seconds per optimisation step at 256 and 512 px for (a) a re-implementation
   of the seed's loop (below) and (b) `stylize`'s step, in fp32 and in the
   mixed-precision path, each with its achieved GFLOP/s and its ratio to the
   convolution peak and to (a);
Convergence, end-to-end times and memory are measured on trained features by
``benchmark_quality.py``: the speed of a step does not depend on the weights'
values, so this script uses random ones.

Usage:  python benchmarks/benchmark_speed.py [--quick]
(``make benchmark`` runs the full version; ``--quick`` shrinks every part to
finish in about a minute.) Never a test: speed is reported, not asserted.

The seed's loop is the Udacity notebook's: the *whole* VGG19 feature stack is
run every step and Adam optimises the ImageNet-normalised image. Both loops
evaluate the same objective, `stylize`'s default one.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

import torch
import torch.nn.functional as F

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
import styletransfer_utils as st  # noqa: E402

CONTENT = ROOT / "assets" / "astronaut.jpg"
STYLE = ROOT / "assets" / "stained_glass.png"


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
    channels = 3
    for name in st.VGG19_CONV_LAYERS:
        conv = 2 * channels * shapes[name].channels * 9 * shapes[name].height * shapes[name].width
        flops += conv * ((name in forward_layers) + (name in backward_layers))
        channels = shapes[name].channels
    for name in st.STYLE_LAYERS:  # Gram: forward F Fᵀ, backward one more product
        flops += 2 * 2 * shapes[name].channels ** 2 * shapes[name].height * shapes[name].width
    return flops / 1e9


def layers_up_to(last: str) -> list[str]:
    return list(st.VGG19_LAYER_NAMES[: st.VGG19_LAYER_NAMES.index(last) + 1])


# --------------------------------------------------------------------------- the seed's loop


def seed_loop(model, content: torch.Tensor, style: torch.Tensor, steps: int, on_step=None) -> torch.Tensor:
    """The seed notebook's loop: all 37 layers every step, Adam (lr 0.003) on the normalised image."""
    objective = st.StyleTransferLoss(model, content, style)
    normalized = st.imagenet_normalize(content).requires_grad_(True)
    optimizer = torch.optim.Adam([normalized], lr=0.003)
    last = st.VGG19_LAYER_NAMES[-1]
    for step in range(steps):
        features = st.extract_features(model, st.imagenet_denormalize(normalized), [*objective.layers, last])
        loss = (objective.content_weight * st.content_loss(features[st.CONTENT_LAYER], objective.content_target)
                / objective.content_energy
                + objective.style_weight * st.style_loss(features, objective.style_targets, objective.style_scales))
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        if on_step is not None:
            on_step(step)
    return st.imagenet_denormalize(normalized.detach()).clamp(0, 1)


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
               scales=1, precision=precision, callback=lambda step, image, losses: stamps.append(time.perf_counter()))
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
          f"native bf16: {st.choose_precision('auto', torch.device('cpu')) is not None}")

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


if __name__ == "__main__":
    main()
