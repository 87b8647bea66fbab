"""Issue 20's levers for "more picture per second": the default run with one thing changed. Figures, not tests.

Each lever is `stylize`'s default run (384 px, 80 steps, coarse to fine) with one change, on trained
features (the development stand-in ``../shared/tools/real_features.py``, as ``benchmark_quality.py``
says). It prints, per pair, the objective of the saved 8-bit picture (``benchmark_quality.objective_of``,
lower is better), the wall time and the objective's ratio to the defaults'. In fp32 the objective repeats
to the last digit on the same machine, so small differences are real, but they are one pair's: the
texture lands elsewhere with any change, and a lever that helps one pair can hurt another.

The levers (names for ``--levers``):

- ``defaults``;
- ``max-step-0.05``, ``-0.2``, ``-0.3``: `PixelLBFGS`'s bound on a pixel's move in one step;
- ``history-5``, ``history-20``: `LBFGS_HISTORY`, the curvature pairs kept;
- ``schedule-192-272-384``: three scales a factor √2 apart from half size (24 + 20 + 38: 82 steps, at
  about the defaults' cost), whose objectives are closer to the full-size one than 96, 192, 384's;
  ``schedule-96-192-288-384`` (10 + 16 + 20 + 34) and ``schedule-136-192-272-384`` (10 + 12 + 16 + 40):
  four scales, at about the same cost;
- ``coarse-line-search``: the coarse scales with PyTorch's L-BFGS and its ``strong_wolfe`` line search,
  within PyTorch's default budget of 1.25 evaluations per step asked (so at most a quarter more), clamped
  to [0, 1] only at the scale's end and without `PixelLBFGS`'s bound; the full size as usual;
- ``pyramid-preconditioner``: an L-BFGS whose initial inverse Hessian is γ·P instead of γ·I, with P = I +
  3 (A₂ + A₄ + A₈ + A₁₆), A_k averaging k × k blocks: longer steps for the broad shapes. Here only; it is
  `PixelLBFGS` in everything else (gain, bound, clamp, restart after an uphill step);
- ``colour-preconditioner``: the same with P = I + the photo's RGB covariance (trace 3) at every pixel,
  for "optimising in a decorrelated colour space";
- ``steps-60``, ``steps-48``: fewer steps (0.75 and 0.6 of the time, about).

Usage (about 30 minutes for every lever on the two default pairs, on 2 Zen 2 cores):
    python benchmarks/optimiser_levers.py --weights /tmp/standin.pth --label "VGG16 stand-in features" \\
        [--levers defaults,history-20] [--pairs astronaut.jpg+stained_glass.png,chelsea.jpg+swirls.png]
"""

from __future__ import annotations

import argparse
import contextlib
import math
import statistics
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from unittest import mock

import torch
import torch.nn.functional as F
from torch import Tensor
from torch.utils.flop_counter import FlopCounterMode

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))
import benchmark_quality as quality  # noqa: E402

import styletransfer_utils as st  # noqa: E402

PAIRS = "astronaut.jpg+stained_glass.png,chelsea.jpg+swirls.png"


class PreconditionedLBFGS(torch.optim.Optimizer):
    """`PixelLBFGS`'s rules (gain, pixel bound, clamp, restart after an uphill step) on L-BFGS's two-loop
    recursion written out, so that its initial inverse Hessian can be γ·``precondition`` (symmetric,
    positive definite) instead of γ·I. With the identity it takes `PixelLBFGS`'s steps to rounding."""

    def __init__(self, image: Tensor, precondition: Callable[[Tensor], Tensor], lr: float = 1.0) -> None:
        super().__init__([image], {"lr": lr})
        self.image, self.precondition = image, precondition

    def direction(self, gradient: Tensor, steps: list[Tensor], changes: list[Tensor]) -> Tensor:
        q, alphas = gradient.clone(), []
        for s, y in zip(reversed(steps), reversed(changes), strict=True):
            alphas.append((s * q).sum() / (s * y).sum())
            q -= alphas[-1] * y
        r = self.precondition(q)
        if steps:
            r *= (steps[-1] * changes[-1]).sum() / (changes[-1] * self.precondition(changes[-1])).sum()
        for s, y, alpha in zip(steps, changes, reversed(alphas), strict=True):
            r += s * (alpha - (y * r).sum() / (s * y).sum())
        return -r

    @torch.no_grad()
    def step(self, closure: Callable[[], Tensor]) -> Tensor:  # type: ignore[override]
        image, state = self.image, self.state[self.image]
        with torch.enable_grad():
            loss = closure()
        size = image.grad.abs().mean().item()
        state.setdefault("gain", 1 / size if 0 < size < math.inf else 1.0)
        gradient, value = image.grad * state["gain"], loss.item() * state["gain"]
        steps, changes = state.setdefault("steps", []), state.setdefault("changes", [])
        if "gradient" in state:
            s, y = image - state["image"], gradient - state["gradient"]
            if value > state["value"]:
                steps.clear(), changes.clear()
            elif (s * y).sum() > 1e-10:  # PyTorch's test, on the gain-scaled numbers as in PixelLBFGS
                steps.append(s), changes.append(y)
                del steps[:-st.LBFGS_HISTORY], changes[:-st.LBFGS_HISTORY]
        lr = self.param_groups[0]["lr"]
        start = image.clone()
        # PyTorch's step length (a first step of lr / ‖g‖₁), clamped, then bounded as PixelLBFGS bounds it
        image.add_(self.direction(gradient, steps, changes), alpha=lr * min(1, 1 / gradient.abs().sum().item())
                   if not steps else lr).clamp_(0, 1)
        taken = image - start
        largest, longest = taken.abs().max().item(), st.MAX_PIXEL_STEP * (lr if not steps else 1)
        if largest > 0 and (not steps or largest > longest):
            image.copy_(start + taken * (longest / largest)).clamp_(0, 1)
        state.update(image=start, gradient=gradient, value=value)
        return loss


def pyramid(gradient: Tensor) -> Tensor:
    """I + 3 (A₂ + A₄ + A₈ + A₁₆): each A_k replaces every k × k block by its mean (symmetric, PSD)."""
    out, (height, width) = gradient.clone(), gradient.shape[-2:]
    for k in (2, 4, 8, 16):
        if min(height, width) >= k:
            blocks = F.avg_pool2d(gradient, k, ceil_mode=True)
            out += 3 * F.interpolate(blocks, scale_factor=k, mode="nearest")[..., :height, :width]
    return out


def colour_preconditioner(photo: Tensor) -> Callable[[Tensor], Tensor]:
    """I + the photo's RGB covariance (scaled to trace 3), applied at every pixel."""
    covariance = torch.cov(photo.reshape(3, -1))
    matrix = torch.eye(3) + 3 * covariance / covariance.trace()
    return lambda gradient: torch.einsum("ij,bjhw->bihw", matrix, gradient)


def preconditioned(make: Callable[[Tensor], Callable[[Tensor], Tensor]]):
    """A `new_optimizer` whose L-BFGS is `PreconditionedLBFGS` with ``make(image)``."""
    def new_optimizer(name: str, image: Tensor, lr: float) -> torch.optim.Optimizer:
        return PreconditionedLBFGS(image, make(image), lr) if name == "lbfgs" else torch.optim.Adam([image], lr=lr)
    return new_optimizer


def fixed_schedule(plan: list[tuple[float, int]]):
    """A `scale_schedule` that returns ``plan`` ((fraction of the longer side, steps), ...) for any image."""
    return lambda shape, steps, scales=None, min_side=16: [(round(max(shape) * share), n) for share, n in plan]


def coarse_line_search(full_size: int):
    """An `optimize` that runs the coarse scales with PyTorch's L-BFGS and its strong Wolfe line search."""
    optimize = st.optimize

    def run(objective, image, *, steps, **kwargs):
        if max(image.shape[-2:]) >= full_size:
            return optimize(objective, image, steps=steps, **kwargs)
        gain, values = [], []
        opt = torch.optim.LBFGS([image], max_iter=steps, line_search_fn="strong_wolfe",
                                history_size=st.LBFGS_HISTORY, tolerance_grad=0, tolerance_change=0)

        def closure() -> Tensor:
            opt.zero_grad()
            total, losses = objective(image)
            total.backward()
            values.append(losses.total)
            gain[:] = gain or [1 / image.grad.abs().mean().item()]  # scale-free, as in PixelLBFGS
            image.grad.mul_(gain[0])
            return total * gain[0]

        opt.step(closure)
        with torch.no_grad():
            image.clamp_(0, 1)
        history = kwargs["history"]
        for value in values:  # every evaluation counted as a step of the history, as the other levers' are
            history.append(st.Losses(terms={}, total=value), max(image.shape[-2:]))
        return st.OptimizationRun(image.detach().clone(), len(history) - 1, values[-1], None, history)
    return run


SCHEDULES = {  # (fraction of the longer side, steps) for each scale, coarse to fine
    "schedule-192-272-384": [(0.5, 24), (0.5**0.5, 20), (1, 38)],
    "schedule-96-192-288-384": [(0.25, 10), (0.5, 16), (0.75, 20), (1, 34)],
    "schedule-136-192-272-384": [(0.5**1.5, 10), (0.5, 12), (0.5**0.5, 16), (1, 40)],
}


@contextlib.contextmanager
def lever(name: str, photo: Tensor) -> Iterator[dict]:
    """Apply one lever for the ``with`` block; yields the changes to `stylize`'s settings."""
    patches: list = []
    changes: dict = {}
    if name.startswith("max-step-"):
        bound = float(name.removeprefix("max-step-"))
        patches.append(mock.patch.object(st, "new_optimizer",
                                         lambda _, image, lr: st.PixelLBFGS(image, lr, max_step=bound)))
    elif name.startswith("history-"):
        patches.append(mock.patch.object(st, "LBFGS_HISTORY", int(name.removeprefix("history-"))))
    elif name.startswith("steps-"):
        changes["steps"] = int(name.removeprefix("steps-"))
    elif name in SCHEDULES:
        patches.append(mock.patch.object(st, "scale_schedule", fixed_schedule(SCHEDULES[name])))
    elif name == "coarse-line-search":
        patches.append(mock.patch.object(st, "optimize", coarse_line_search(quality.SIZE)))
    elif name == "pyramid-preconditioner":
        patches.append(mock.patch.object(st, "new_optimizer", preconditioned(lambda image: pyramid)))
    elif name == "colour-preconditioner":
        patches.append(mock.patch.object(st, "new_optimizer",
                                         preconditioned(lambda image: colour_preconditioner(photo))))
    elif name != "defaults":
        raise SystemExit(f"unknown lever {name!r}: see this script's docstring")
    with contextlib.ExitStack() as stack:
        for patch in patches:
            stack.enter_context(patch)
        yield changes


def per_step(model, photo, style) -> None:
    """Where a full-size step's time goes: its FLOPs (forward and backward to the image) against what these
    cores reach on a large fp32 matrix product."""
    content = st.image_to_tensor(st.resize_longer_side(photo, quality.SIZE))
    objective = st.StyleTransferLoss(model, content, st.image_to_tensor(st.resize_longer_side(style, quality.SIZE)))
    image = content.clone().requires_grad_(True)
    with FlopCounterMode(display=False) as counter:
        objective(image)[0].backward()
    seconds = median_seconds(lambda: objective(image)[0].backward())
    a, b = torch.randn(4096, 4096), torch.randn(4096, 4096)
    product = 2 * 4096**3 / median_seconds(lambda: a @ b) / 1e9
    flops = counter.get_total_flops() / 1e9
    print(f"one full-size evaluation: {flops:.0f} GFLOP in {seconds:.2f} s (median of 5) = {flops / seconds:.0f} "
          f"GFLOP/s; a 4096 x 4096 fp32 matrix product here: {product:.0f} GFLOP/s")


def median_seconds(work: Callable[[], object], times: int = 5) -> float:
    seconds = []
    for _ in range(times):
        start = time.perf_counter()
        work()
        seconds.append(time.perf_counter() - start)
    return statistics.median(seconds)


def per_scale(history: st.LossHistory) -> str:
    """Each scale's first and last objective (each on its own scale's objective), and how many steps the
    next scale took to get below where the scale before it ended."""
    spans, previous_end = [], None
    for size in dict.fromkeys(history.size):
        values = [total for total, at in zip(history.total, history.size, strict=True) if at == size]
        span = f"{size} px {values[0]:.3f} -> {values[-1]:.3f} in {len(values)} steps"
        below = next((i for i, value in enumerate(values) if previous_end is not None and value <= previous_end), None)
        spans.append(span + (f" (below {previous_end:.3f} after {below})" if below is not None else ""))
        previous_end = values[-1]
    return "; ".join(spans)


LEVERS = ("defaults,max-step-0.05,max-step-0.2,max-step-0.3,history-5,history-20,schedule-192-272-384,"
          "schedule-96-192-288-384,schedule-136-192-272-384,coarse-line-search,pyramid-preconditioner,"
          "colour-preconditioner,steps-60,steps-48")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--weights", required=True, help="a checkpoint with trained features")
    parser.add_argument("--label", required=True, help="what the weights are, printed with every figure")
    parser.add_argument("--levers", default=LEVERS, help="comma-separated, from the docstring's list")
    parser.add_argument("--pairs", default=PAIRS, help="photo+style,... from assets/")
    args = parser.parse_args()
    model = st.load_vgg19(args.weights)
    per_step(model, *quality.pair_images("astronaut.jpg", "stained_glass.png"))
    print(f"Levers on the default {quality.SIZE} px run, {args.label}; objective (lower is better), wall time, "
          "ratio to the defaults'")
    for pair in args.pairs.split(","):
        photo_name, style_name = pair.split("+")
        photo, style = quality.pair_images(photo_name, style_name)
        print(f"\n{Path(photo_name).stem} + {Path(style_name).stem}", flush=True)
        base, content = math.nan, st.image_to_tensor(st.resize_longer_side(photo, quality.SIZE))
        for name in args.levers.split(","):
            with lever(name, content) as changes:
                result = st.stylize(photo, style, model=model, precision="fp32", **changes)
            objective = quality.objective_of(model, photo, style, result.best_image)
            base = objective if name == "defaults" else base
            print(f"   {name:26} {objective:.4f}  {result.seconds:6.1f} s  {objective / base:.3f} x the defaults'",
                  flush=True)
            if name == "defaults":
                print(f"      its scales: {per_scale(result.history)}", flush=True)


if __name__ == "__main__":
    main()
