"""A synthetic scene for SAM tests and benchmarks: one bright disc on dark textured ground."""

from __future__ import annotations

import numpy as np


def disc_scene(
    height: int, width: int, centre: tuple[float, float], radius: float, seed: int = 0
) -> tuple[np.ndarray, np.ndarray]:
    """(H×W×3 uint8 image, H×W bool disc mask); centre is (x, y)."""
    rng = np.random.default_rng(seed)
    ground = 50 + 20 * rng.standard_normal((height, width))
    ground += 12 * np.sin(np.arange(width) / 9.0)[None, :]  # a gentle texture, like dune ripples
    ys, xs = np.mgrid[0:height, 0:width]
    disc = (xs - centre[0]) ** 2 + (ys - centre[1]) ** 2 <= radius**2
    image = np.stack([ground * 1.1, ground * 0.8, ground * 0.6], axis=-1)
    image[disc] = [235, 225, 205]
    return np.clip(image, 0, 255).astype(np.uint8), disc
