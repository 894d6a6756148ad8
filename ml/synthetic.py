"""Procedurally generated Mars-like scenes with pixel labels, for tests and demos.

A scene is sky over a band of distant ridges over ground; the ground is split into soil, sand and
bedrock by smooth noise fields, and rocks (shaded ellipses, larger near the camera) lie on it. Every
class has its own colour, noise texture and shading so that a network must learn texture and
context, not a colour lookup. Class ids are the S5Mars train ids (0 sky … 5 rock); class
boundaries are left unlabelled (255), like the sparse S5Mars labels. Everything is vectorised numpy
and depends only on the seed.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image
from scipy import ndimage

from ml.interfaces import IGNORE_INDEX

SKY, RIDGE, SOIL, SAND, BEDROCK, ROCK = 0, 1, 2, 3, 4, 5
SYNTHETIC_CLASS_IDS = (SKY, RIDGE, SOIL, SAND, BEDROCK, ROCK)

# Base RGB colours (Mastcam-like butterscotch sky, reddish-brown ground) and texture strength.
_BASE_COLOUR = {
    SKY: (196, 160, 120),
    RIDGE: (150, 105, 75),
    SOIL: (160, 100, 60),
    SAND: (200, 150, 95),
    BEDROCK: (120, 80, 60),
    ROCK: (80, 60, 50),
}
_TEXTURE = {SKY: 4.0, RIDGE: 10.0, SOIL: 18.0, SAND: 8.0, BEDROCK: 26.0, ROCK: 22.0}


def _value_noise(rng: np.random.Generator, size: int, cells: int) -> np.ndarray:
    """Smooth noise in about [-1, 1]: a (cells+1)² random grid interpolated cubically to size²."""
    grid = rng.standard_normal((cells + 4, cells + 4))
    coords = np.linspace(1.5, cells + 1.5, size)
    yy, xx = np.meshgrid(coords, coords, indexing="ij")
    return ndimage.map_coordinates(grid, [yy, xx], order=3, mode="nearest") / 1.5


def _fractal_noise(rng: np.random.Generator, size: int, base_cells: int, octaves: int) -> np.ndarray:
    total = np.zeros((size, size))
    amplitude, cells = 1.0, base_cells
    for _ in range(octaves):
        total += amplitude * _value_noise(rng, size, min(cells, size))
        amplitude *= 0.5
        cells *= 2
    return total


def _profile(rng: np.random.Generator, size: int, knots: int) -> np.ndarray:
    """A smooth 1-D curve over the image width, in about [-1, 1]."""
    x_knots = np.linspace(0, size - 1, knots)
    return np.interp(np.arange(size), x_knots, rng.uniform(-1, 1, knots))


def _ground_layout(rng: np.random.Generator, size: int, ground: np.ndarray) -> np.ndarray:
    """Soil / sand / bedrock by quantiles of two noise fields, so all three are always present."""
    label = np.full((size, size), SOIL, dtype=np.uint8)
    bedrock_field = _fractal_noise(rng, size, 3, 3)
    sand_field = _fractal_noise(rng, size, 2, 3)
    bedrock_share = rng.uniform(0.25, 0.45)
    sand_share = rng.uniform(0.2, 0.35)
    bedrock = ground & (bedrock_field >= np.quantile(bedrock_field[ground], 1 - bedrock_share))
    rest = ground & ~bedrock
    sand = rest & (sand_field >= np.quantile(sand_field[rest], 1 - sand_share))
    label[bedrock] = BEDROCK
    label[sand] = SAND
    return label


def _rocks(
    rng: np.random.Generator, size: int, horizon: np.ndarray, yy: np.ndarray, xx: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """(rock mask, shading in [-1, 1]) for a handful of ellipses, all evaluated at once."""
    count = int(rng.integers(6, 14))
    horizon_min = float(horizon.min())
    cy = rng.uniform(horizon_min + 0.1 * (size - horizon_min), size - 1, count)
    cx = rng.uniform(0, size - 1, count)
    # Perspective: rocks near the bottom of the image are closer, so larger.
    depth = (cy - horizon_min) / max(size - horizon_min, 1.0)
    ry = size * (0.015 + 0.05 * depth) * rng.uniform(0.7, 1.3, count)
    rx = ry * rng.uniform(1.2, 2.0, count)
    dy = (yy[None] - cy[:, None, None]) / ry[:, None, None]
    dx = (xx[None] - cx[:, None, None]) / rx[:, None, None]
    radius2 = dy**2 + dx**2
    inside = radius2 <= 1.0
    mask = inside.any(axis=0)
    # Shade as a dome lit from the upper left: the surface normal of the nearest rock.
    nearest = np.argmin(np.where(inside, radius2, np.inf), axis=0)
    ndy = np.take_along_axis(dy, nearest[None], axis=0)[0]
    ndx = np.take_along_axis(dx, nearest[None], axis=0)[0]
    shade = np.clip(-(0.6 * ndy + 0.5 * ndx), -1, 1)
    return mask, shade


def generate_scene(seed: int, size: int = 256) -> tuple[np.ndarray, np.ndarray]:
    """One scene: (size×size×3 uint8 RGB image, size×size uint8 label with ids 0..5 and 255)."""
    rng = np.random.default_rng([seed, 0x5EED])
    yy, xx = np.meshgrid(np.arange(size, dtype=np.float64), np.arange(size, dtype=np.float64), indexing="ij")

    horizon = size * (rng.uniform(0.22, 0.38) + 0.05 * _profile(rng, size, 6))
    ridge_top = horizon - size * (rng.uniform(0.05, 0.12) + 0.04 * (_profile(rng, size, 9) + 1))
    label = _ground_layout(rng, size, yy >= horizon[None, :])
    label[yy < horizon[None, :]] = RIDGE
    label[yy < ridge_top[None, :]] = SKY
    rock_mask, rock_shade = _rocks(rng, size, horizon, yy, xx)
    rock_mask &= yy >= horizon[None, :] + 2
    label[rock_mask] = ROCK

    # Per-class colour with a little per-scene variation, textured by class-specific noise.
    lookup = np.array([_BASE_COLOUR[c] for c in SYNTHETIC_CLASS_IDS], dtype=np.float64)
    lookup *= rng.uniform(0.88, 1.12, (len(SYNTHETIC_CLASS_IDS), 1))
    strength = np.array([_TEXTURE[c] for c in SYNTHETIC_CLASS_IDS])
    image = lookup[label]
    coarse = _fractal_noise(rng, size, 6, 3)
    fine = rng.standard_normal((size, size))
    grain = ndimage.gaussian_filter(rng.standard_normal((size, size)), 1.2) * 3.0
    texture = np.where(label == SAND, np.sin(yy * 0.9 + 4 * coarse) * 0.8 + 0.3 * fine, coarse + 0.35 * fine + grain)
    image += (strength[label] * texture)[..., None] * np.array([1.0, 0.85, 0.7])
    # Shading: sky brightens towards the horizon, ground darkens towards the bottom, rocks are domes.
    image[label == SKY] *= (0.85 + 0.25 * (yy / size))[label == SKY][:, None]
    image *= (1.05 - 0.2 * np.clip((yy - horizon[None, :]) / size, 0, 1))[..., None]
    image[rock_mask] *= (1.0 + 0.35 * rock_shade[rock_mask])[:, None]
    image = np.clip(image, 0, 255).astype(np.uint8)

    # Sparse labelling: annotators leave class boundaries out.
    boundary = ndimage.maximum_filter(label, size=3) != ndimage.minimum_filter(label, size=3)
    label = np.where(boundary, IGNORE_INDEX, label).astype(np.uint8)
    return image, label


def write_synthetic_dataset(root: Path, count: int, size: int = 256, seed: int = 0, val_fraction: float = 0.2) -> None:
    """Write `count` scenes in the project layout: images/, labels/, splits/{pool,val}.txt, classes.json."""
    from ml.data import S5MARS_CLASSES, write_classes

    root = Path(root)
    (root / "images").mkdir(parents=True, exist_ok=True)
    (root / "labels").mkdir(parents=True, exist_ok=True)
    (root / "splits").mkdir(parents=True, exist_ok=True)
    ids = [f"scene_{seed}_{i:05d}" for i in range(count)]
    for i, sample_id in enumerate(ids):
        image, label = generate_scene(seed * 1_000_003 + i, size)
        Image.fromarray(image).save(root / "images" / f"{sample_id}.png")
        Image.fromarray(label).save(root / "labels" / f"{sample_id}.png")
    order = np.random.default_rng([seed, 0x5B17]).permutation(count)
    n_val = round(count * val_fraction)
    val = sorted(ids[i] for i in order[:n_val])
    pool = sorted(ids[i] for i in order[n_val:])
    (root / "splits" / "pool.txt").write_text("".join(f"{i}\n" for i in pool))
    (root / "splits" / "val.txt").write_text("".join(f"{i}\n" for i in val))
    write_classes(root, S5MARS_CLASSES)
