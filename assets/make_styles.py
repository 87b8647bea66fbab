"""Generate the synthetic style images used by the style-transfer examples.

Why this script exists
----------------------
Famous paintings make great style images, but many reproductions carry
unclear licences. Instead, this repo ships a few *procedurally generated*
"paintings" whose licence is simply the project's own, and anyone can
rebuild them from this file:

* ``stained_glass.png`` -- Voronoi cells in saturated jewel colours,
  separated by dark lead lines.
* ``swirls.png`` -- thousands of short curved brush strokes that follow a
  swirling vector field (a loosely van-Gogh-like texture).
* ``pointillism.png`` -- small overlapping dots of jittered colour laid over
  a smooth sunset-like colour field.

How to run it
-------------
From the repository root::

    python assets/make_styles.py

The images are written next to this file. Every random choice comes from a
fixed seed, so re-running the script reproduces identical files (for the
same numpy and Pillow versions). Only numpy and Pillow are needed.
"""

from __future__ import annotations

import colorsys
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw, ImageFilter

SIZE = 512  # side length of every output image, in pixels
OUT_DIR = Path(__file__).resolve().parent


# ---------------------------------------------------------------------------
# Small helpers
# ---------------------------------------------------------------------------
def hsv_to_rgb255(h: float, s: float, v: float) -> tuple[int, int, int]:
    """Convert an HSV colour (each component in [0, 1]) to 8-bit RGB."""
    r, g, b = colorsys.hsv_to_rgb(h % 1.0, min(max(s, 0.0), 1.0), min(max(v, 0.0), 1.0))
    return round(r * 255), round(g * 255), round(b * 255)


def pixel_grid(size: int) -> tuple[np.ndarray, np.ndarray]:
    """Return the (x, y) float coordinates of every pixel centre, shape (size, size)."""
    coords = np.arange(size, dtype=np.float64) + 0.5
    xs, ys = np.meshgrid(coords, coords)
    return xs, ys


def to_image(rgb: np.ndarray) -> Image.Image:
    """Clip a float RGB array in [0, 255] to uint8 and wrap it as a Pillow image."""
    return Image.fromarray(np.clip(np.rint(rgb), 0, 255).astype(np.uint8), mode="RGB")


# ---------------------------------------------------------------------------
# Style 1: stained glass
# ---------------------------------------------------------------------------
def nearest_two_seeds(
    seeds: np.ndarray, xs: np.ndarray, ys: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """For every pixel find the nearest seed index and the two smallest distances.

    Returns ``(index, d1, d2)`` where ``d1 <= d2`` are the distances to the
    closest and second-closest seed. ``d2 - d1`` is small near cell borders,
    which is exactly where the lead lines go.
    """
    d1 = np.full(xs.shape, np.inf)
    d2 = np.full(xs.shape, np.inf)
    index = np.zeros(xs.shape, dtype=np.int64)
    for i, (sx, sy) in enumerate(seeds):
        d = np.hypot(xs - sx, ys - sy)
        closer = d < d1
        d2 = np.where(closer, d1, np.minimum(d2, d))
        d1 = np.where(closer, d, d1)
        index = np.where(closer, i, index)
    return index, d1, d2


def make_stained_glass(size: int = SIZE, seed: int = 1) -> Image.Image:
    """Render a stained-glass window: saturated Voronoi panes and dark lead lines.

    Seeds are placed on jittered concentric rings so the window has a loose
    rose-window structure; each pane gets a jewel-tone colour, a soft glow
    towards its centre and a little mottling, like hand-made glass.
    """
    rng = np.random.default_rng(seed)
    centre = size / 2

    # Seeds: a few per ring, more on the outer rings, plus random jitter.
    seeds = [(centre, centre)]
    for ring, count in enumerate([6, 12, 18, 26, 34, 44], start=1):
        radius = ring * size / 11
        angles = np.linspace(0, 2 * np.pi, count, endpoint=False) + rng.uniform(
            0, np.pi
        )
        for a in angles:
            jitter = rng.normal(0, size / 60, 2)
            candidate = (
                centre + radius * np.cos(a) + jitter[0],
                centre + radius * np.sin(a) + jitter[1],
            )
            # Skip seeds that would crowd a neighbour into a thin sliver of glass.
            if (
                min(np.hypot(candidate[0] - sx, candidate[1] - sy) for sx, sy in seeds)
                > size / 28
            ):
                seeds.append(candidate)
    seeds_arr = np.array(seeds)

    # Jewel-tone palette: ruby, amber, gold, emerald, sapphire, violet, turquoise.
    palette_hues = np.array([0.98, 0.07, 0.13, 0.36, 0.60, 0.75, 0.50])
    hues = palette_hues[rng.integers(0, len(palette_hues), len(seeds_arr))]
    hues = hues + rng.normal(0, 0.015, len(seeds_arr))
    values = rng.uniform(0.65, 1.0, len(seeds_arr))
    colours = np.array(
        [hsv_to_rgb255(h, rng.uniform(0.75, 1.0), v) for h, v in zip(hues, values, strict=False)],
        dtype=np.float64,
    )

    xs, ys = pixel_grid(size)
    index, d1, d2 = nearest_two_seeds(seeds_arr, xs, ys)
    rgb = colours[index]

    # Glow: panes are brighter in the middle and darker towards their edges.
    glow = np.clip(1.15 - 0.012 * d1, 0.55, 1.15)
    # Mottle: low-frequency blotches, like uneven hand-made glass.
    noise = rng.normal(0, 1, (size // 8, size // 8))
    blotches = np.asarray(
        Image.fromarray(((noise + 3) * 40).clip(0, 255).astype(np.uint8)).resize(
            (size, size), Image.Resampling.BICUBIC
        ),
        dtype=np.float64,
    )
    mottle = 1.0 + 0.10 * (blotches - blotches.mean()) / (blotches.std() + 1e-9)
    rgb = rgb * (glow * mottle)[..., None]

    # Lead lines: dark where the two nearest seeds are almost equally far away.
    lead_width = 3.5
    border = d2 - d1
    lead = np.clip((border - lead_width) / 1.5, 0.0, 1.0)  # 0 on the line, 1 inside
    lead_colour = np.array([22.0, 20.0, 24.0])
    rgb = rgb * lead[..., None] + lead_colour * (1 - lead[..., None])

    # Window frame: a dark circular border with a thin bright rim.
    r = np.hypot(xs - centre, ys - centre)
    frame = np.clip((size * 0.49 - r) / 2.0, 0.0, 1.0)
    rgb = rgb * frame[..., None] + lead_colour * (1 - frame[..., None])
    return to_image(rgb)


# ---------------------------------------------------------------------------
# Style 2: swirling brush strokes
# ---------------------------------------------------------------------------
def swirl_field(
    x: float, y: float, vortices: np.ndarray, size: int
) -> tuple[float, float]:
    """Unit direction of a swirling flow at point (x, y).

    The flow is a gentle rightward drift plus a sum of vortices. Each vortex
    row is ``(cx, cy, strength, radius)``; its contribution circles around
    ``(cx, cy)`` and fades out beyond ``radius``.
    """
    vx, vy = 1.0, 0.25 * np.sin(2 * np.pi * x / size * 1.5)
    for cx, cy, strength, radius in vortices:
        dx, dy = x - cx, y - cy
        dist2 = dx * dx + dy * dy
        falloff = strength * np.exp(-dist2 / (radius * radius))
        vx += -dy / radius * falloff * 4
        vy += dx / radius * falloff * 4
    norm = np.hypot(vx, vy) + 1e-9
    return vx / norm, vy / norm


def trace_stroke(
    x: float, y: float, length: int, step: float, vortices: np.ndarray, size: int
) -> list[tuple[float, float]]:
    """Follow the swirl field from (x, y) for ``length`` steps; return the polyline."""
    points = [(x, y)]
    for _ in range(length):
        dx, dy = swirl_field(x, y, vortices, size)
        x, y = x + step * dx, y + step * dy
        points.append((x, y))
    return points


def swirl_colour(
    x: float, y: float, size: int, rng: np.random.Generator
) -> tuple[int, int, int]:
    """Pick a stroke colour for a stroke starting at (x, y).

    Sky strokes are blues with scattered golden highlights; strokes below the
    wavy horizon are dark greens for the hills.
    """
    hills = 0.78 + 0.06 * np.sin(2 * np.pi * x / size * 1.3 + 0.8)
    if y / size > hills:  # dark rolling hills
        return hsv_to_rgb255(0.30 + rng.normal(0, 0.04), 0.7, rng.uniform(0.15, 0.45))
    if rng.random() < 0.22:  # bright highlights scattered in the sky
        return hsv_to_rgb255(
            0.13 + rng.normal(0, 0.02), rng.uniform(0.6, 0.9), rng.uniform(0.85, 1.0)
        )
    return hsv_to_rgb255(
        0.60 + rng.normal(0, 0.03), rng.uniform(0.55, 0.95), rng.uniform(0.35, 0.95)
    )


def draw_glowing_disc(
    draw: ImageDraw.ImageDraw,
    cx: float,
    cy: float,
    radius: float,
    rng: np.random.Generator,
) -> None:
    """Paint a bright moon/star as concentric rings of short yellow dabs."""
    for ring in np.linspace(radius, 0.1 * radius, 7):
        count = max(8, int(ring * 0.8))
        for a in np.linspace(0, 2 * np.pi, count, endpoint=False) + rng.uniform(0, 1):
            x, y = cx + ring * np.cos(a), cy + ring * np.sin(a)
            tx, ty = -np.sin(a), np.cos(a)  # tangent: dabs run around the disc
            length = rng.uniform(6, 12)
            colour = hsv_to_rgb255(
                0.12 + rng.normal(0, 0.02), 0.4 + 0.5 * ring / radius, 1.0
            )
            draw.line(
                [
                    (x - tx * length, y - ty * length),
                    (x + tx * length, y + ty * length),
                ],
                fill=colour,
                width=6,
            )


def make_swirls(size: int = SIZE, seed: int = 2) -> Image.Image:
    """Render a swirling night sky made entirely of short curved brush strokes.

    The picture is painted at twice the final resolution and then scaled
    down, which anti-aliases the stroke edges.
    """
    rng = np.random.default_rng(seed)
    scale = 2
    big = size * scale
    canvas = Image.new("RGB", (big, big), (20, 35, 90))
    draw = ImageDraw.Draw(canvas)

    # (cx, cy, strength, radius) in big-canvas pixels.
    vortices = np.array(
        [
            [0.30 * big, 0.32 * big, 1.0, 0.16 * big],
            [0.62 * big, 0.45 * big, -0.9, 0.14 * big],
            [0.82 * big, 0.20 * big, 0.8, 0.10 * big],
            [0.15 * big, 0.62 * big, -0.7, 0.12 * big],
        ]
    )

    # Many layers of strokes: long wide ones first, short thin ones on top.
    for n_strokes, (len_lo, len_hi), width in [
        (2500, (10, 18), 14),
        (5000, (6, 12), 9),
        (5000, (4, 8), 6),
    ]:
        for _ in range(n_strokes):
            # Start a little left of the canvas: the flow drifts rightwards.
            x, y = rng.uniform(-0.15 * big, big), rng.uniform(0, big)
            points = trace_stroke(
                x, y, int(rng.integers(len_lo, len_hi)), 5.0, vortices, big
            )
            colour = swirl_colour(x, y, big, rng)
            draw.line(points, fill=colour, width=width, joint="curve")
            # A thin lighter streak on top imitates paint ridges catching the light.
            highlight = tuple(min(255, int(c * 1.25 + 20)) for c in colour)
            draw.line(points[1:-1], fill=highlight, width=max(2, width // 4))

    # Two glowing "moons" painted with radial dabs.
    draw_glowing_disc(draw, 0.82 * big, 0.20 * big, 0.07 * big, rng)
    draw_glowing_disc(draw, 0.30 * big, 0.32 * big, 0.04 * big, rng)

    # Averaging each block of scale x scale pixels (BOX) smooths the stroke edges.
    return canvas.resize((size, size), Image.Resampling.BOX)


# ---------------------------------------------------------------------------
# Style 3: pointillism
# ---------------------------------------------------------------------------
def sunset_field(x: np.ndarray, y: np.ndarray, size: int) -> np.ndarray:
    """Smooth background colour (HSV hue, value) for a sunset over water.

    Returns an array of shape ``(..., 2)`` holding hue and value in [0, 1].
    """
    t = y / size
    horizon = 0.55
    # Sky: blue at the top, through violet and magenta, to orange at the horizon.
    sky_hue = 0.62 + 0.45 * np.clip(t / horizon, 0, 1) ** 1.3
    # Water: deep blue-violet, with an orange column where the sun is reflected.
    reflection = np.exp(-(((x - size * 0.5) / (size * 0.10)) ** 2))
    water_hue = 0.70 + 0.37 * reflection
    hue = np.where(t < horizon, sky_hue, water_hue)
    # A golden sun sitting on the horizon.
    sun = np.exp(
        -(
            ((x - size * 0.5) ** 2 + (y - size * (horizon - 0.05)) ** 2)
            / (size * 0.07) ** 2
        )
    )
    hue = np.where(t < horizon, hue + (1.13 - hue) * sun, hue)
    value = np.where(
        t < horizon, 0.75 + 0.25 * sun, 0.45 + 0.35 * reflection + 0.1 * np.sin(y / 6.0)
    )
    return np.stack([hue, np.clip(value, 0, 1)], axis=-1)


def make_pointillism(size: int = SIZE, seed: int = 3) -> Image.Image:
    """Render a Seurat-like sunset out of many small dots of jittered colour.

    Each dot takes its hue from a smooth sunset field, then gets a random
    nudge; some dots use the complementary hue, as pointillists did to make
    colours vibrate.
    """
    rng = np.random.default_rng(seed)
    canvas = Image.new("RGB", (size, size), (245, 238, 220))  # off-white "canvas"
    draw = ImageDraw.Draw(canvas)

    n_dots = 20000
    xy = rng.uniform(0, size, (n_dots, 2))
    field = sunset_field(xy[:, 0], xy[:, 1], size)
    radii = rng.uniform(2.2, 4.2, n_dots)
    complementary = rng.random(n_dots) < 0.07
    for (x, y), (hue, value), r, comp in zip(xy, field, radii, complementary, strict=False):
        h = hue + 0.5 if comp else hue + rng.normal(0, 0.04)
        colour = hsv_to_rgb255(
            h, rng.uniform(0.6, 1.0), value * rng.uniform(0.75, 1.05)
        )
        draw.ellipse([x - r, y - r, x + r, y + r], fill=colour)

    return canvas.filter(ImageFilter.SMOOTH)


# ---------------------------------------------------------------------------
# Entry point
# ---------------------------------------------------------------------------
STYLES = {
    "stained_glass.png": make_stained_glass,
    "swirls.png": make_swirls,
    "pointillism.png": make_pointillism,
}


def main(out_dir: Path = OUT_DIR) -> None:
    """Generate every style image and save it as PNG in ``out_dir``."""
    for name, make in STYLES.items():
        path = out_dir / name
        make().save(path, optimize=True)
        print(f"wrote {path} ({path.stat().st_size / 1024:.0f} KiB)")


if __name__ == "__main__":
    main()
