"""What the studio's live views cost, and how soon the first preview appears. Figures, not tests.

    python benchmarks/benchmark_studio.py --weights PATH [--size 384] [--steps 80] [--pairs 3]

Runs the bundled pair with `stylize`'s defaults, alternately (A B A B ...):
  A  `stylize` with a callback that does nothing;
  B  the same run started by the studio's Run (`Studio.run`), which redraws
     the preview, the loss plot and the layer shares at its steady rate.
Prints each run's seconds, the medians, B / A (the overhead; the goal is at
most 1.10), the studio's redraw count, and the time from Run to the first
preview. Without a browser the widgets send their updates nowhere, so this
measures the drawing and encoding done in the kernel, which is what slows the
run; a browser adds its own rendering, in another process.
"""

from __future__ import annotations

import argparse
import platform
import statistics
import sys
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
import styletransfer_utils as st  # noqa: E402
from styletransfer_tools.studio import Studio  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--weights", required=True, help="a VGG19 checkpoint (trained features for real figures)")
    parser.add_argument("--size", type=int, default=st.Settings().size)
    parser.add_argument("--steps", type=int, default=st.Settings().steps)
    parser.add_argument("--pairs", type=int, default=3)
    args = parser.parse_args()
    model = st.load_vgg19(args.weights)
    content, style = st.load_image(st.DEFAULT_CONTENT), st.load_image(st.DEFAULT_STYLE)
    print(f"{platform.processor() or platform.machine()}, torch {torch.__version__}, {torch.get_num_threads()} "
          f"threads, weights: {model.weights_source}; {args.size} px, {args.steps} steps, defaults otherwise")
    plain, studio_runs, first, redraws = [], [], [], []
    st.stylize(content, style, model=model, size=64, steps=2)  # warm-up
    for pair in range(args.pairs):
        a = st.stylize(content, style, model=model, size=args.size, steps=args.steps, callback=lambda *_: None)
        studio = Studio(model, content, style, size=args.size, steps=args.steps)
        studio.run()
        b = studio.wait()
        plain.append(a.seconds)
        studio_runs.append(b.seconds)
        first.append(studio.first_preview_seconds)
        redraws.append(studio.redraws)
        print(f"pair {pair + 1}: plain {a.seconds:6.2f} s   studio {b.seconds:6.2f} s   "
              f"({studio.redraws} redraws, first preview after {studio.first_preview_seconds:.2f} s)")
    ratio = statistics.median(studio_runs) / statistics.median(plain)
    print(f"median: plain {statistics.median(plain):.2f} s, studio {statistics.median(studio_runs):.2f} s, "
          f"studio / plain = {ratio:.3f} (goal <= 1.10); first preview after {statistics.median(first):.2f} s "
          f"(median); {statistics.median(redraws):.0f} redraws per run")


if __name__ == "__main__":
    main()
