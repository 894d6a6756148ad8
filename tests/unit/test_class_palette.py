"""The default class colours (server.demo.S5MARS_CLASSES) are told apart: every pair far enough apart in CIELAB
(CIE76 ΔE), and every class far from the dark rock and the red-brown soil that fill Mars images, so that the
overlay at half opacity stays readable. The old palette (three similar reds, a dark teal rock) fails it."""

from __future__ import annotations

import itertools

import numpy as np
import pytest

from server.demo import S5MARS_CLASSES

MIN_PAIR_DELTA_E = 30.0
MIN_BACKGROUND_DELTA_E = 40.0
MARS_BACKGROUNDS = {"dark rock": (55, 45, 40), "soil": (150, 100, 70), "dust": (190, 150, 110)}
OLD_PALETTE = [
    (107, 142, 35),
    (128, 64, 128),
    (220, 20, 60),
    (152, 251, 152),
    (119, 11, 32),
    (20, 60, 60),
    (15, 51, 252),
    (22, 220, 60),
    (152, 21, 12),
]


def lab(rgb: tuple[int, int, int] | list[int]) -> np.ndarray:
    """sRGB (D65) → CIELAB."""
    c = np.asarray(rgb, float) / 255
    c = np.where(c > 0.04045, ((c + 0.055) / 1.055) ** 2.4, c / 12.92)
    xyz = np.array([[0.4124, 0.3576, 0.1805], [0.2126, 0.7152, 0.0722], [0.0193, 0.1192, 0.9505]]) @ c
    xyz = xyz / np.array([0.95047, 1.0, 1.08883])
    f = np.where(xyz > 0.008856, np.cbrt(xyz), 7.787 * xyz + 16 / 116)
    return np.array([116 * f[1] - 16, 500 * (f[0] - f[1]), 200 * (f[1] - f[2])])


def delta_e(a, b) -> float:
    return float(np.linalg.norm(lab(a) - lab(b)))


def closest_pair(colors: list) -> float:
    return min(delta_e(a, b) for a, b in itertools.combinations(colors, 2))


def test_the_measure_is_cielab() -> None:
    assert delta_e((255, 255, 255), (0, 0, 0)) == pytest.approx(100.0, abs=0.1)
    assert delta_e((255, 0, 0), (255, 0, 0)) == 0.0
    assert closest_pair(OLD_PALETTE) < MIN_PAIR_DELTA_E  # bedrock and hole: the complaint this guards against


@pytest.mark.parametrize(("a", "b"), list(itertools.combinations(S5MARS_CLASSES, 2)), ids=lambda c: c["name"])
def test_every_pair_of_classes_is_told_apart(a: dict, b: dict) -> None:
    assert delta_e(a["color"], b["color"]) >= MIN_PAIR_DELTA_E, (a["name"], b["name"])


@pytest.mark.parametrize("entry", S5MARS_CLASSES, ids=lambda c: c["name"])
def test_every_class_stands_out_on_mars_ground(entry: dict) -> None:
    for background, color in MARS_BACKGROUNDS.items():
        assert delta_e(entry["color"], color) >= MIN_BACKGROUND_DELTA_E, (entry["name"], background)
