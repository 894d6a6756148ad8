"""The first set of a project without labels (ml.start): k-means medoids and k-centre over features, and
`first_set`, the one entry the simulator and the service's first-set job call."""

from __future__ import annotations

import numpy as np
import pytest

from ml.data import InMemorySource
from ml.selection import select_random
from ml.start import _nearest, first_set, kcenter, kmeans_medoids


def _blobs(sizes: tuple[int, ...], seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Points in well-separated Gaussian blobs, with each point's blob."""
    rng = np.random.default_rng(seed)
    centres = np.eye(len(sizes), 8) * 10.0
    points = [centres[b] + rng.normal(0, 0.1, (n, 8)) for b, n in enumerate(sizes)]
    blob = np.concatenate([np.full(n, b) for b, n in enumerate(sizes)])
    return np.concatenate(points), blob


def test_kmeans_medoids_take_one_image_per_scene_largest_scene_first() -> None:
    features, blob = _blobs((30, 5, 12))
    picks = kmeans_medoids(features, 3, seed=0)
    assert sorted(blob[[i for i, _ in picks]].tolist()) == [0, 1, 2]
    # Ranked by the share of the pool in the pick's cluster: the 30-point scene first, the 5-point one last.
    assert [blob[i] for i, _ in picks] == [0, 2, 1]
    assert [round(s, 4) for _, s in picks] == [round(30 / 47, 4), round(12 / 47, 4), round(5 / 47, 4)]


def test_kmeans_medoids_are_distinct_and_reproducible() -> None:
    features, _ = _blobs((4, 4))
    picks = kmeans_medoids(features, 8, seed=3)  # as many clusters as points: every point once
    assert sorted(i for i, _ in picks) == list(range(8))
    assert kmeans_medoids(features, 5, seed=3) == kmeans_medoids(features, 5, seed=3)


def test_kcenter_covers_the_farthest_first_with_falling_scores() -> None:
    features, blob = _blobs((20, 1, 1))
    picks = kcenter(features, 3, seed=0)
    assert blob[picks[0][0]] == 0  # nearest the mean: the big scene
    assert sorted(blob[[i for i, _ in picks[1:]]].tolist()) == [1, 2]  # then the two outliers
    scores = [s for _, s in picks]
    assert scores == sorted(scores, reverse=True)


def _tiny_source(count: int) -> InMemorySource:
    rng = np.random.default_rng(0)
    images = {}
    for n in range(count):
        # Two kinds of scene: dark noise and bright stripes.
        stripes = np.tile((np.arange(48) % 8 < 4)[None, :, None] * 220, (48, 1, 3))
        image = rng.integers(0, 60, (48, 48, 3)) if n % 2 else stripes
        images[f"img{n:02d}"] = image.astype(np.uint8)
    return InMemorySource(images)


def test_first_set_random_is_select_random_in_draw_order() -> None:
    ids = [f"img{n:02d}" for n in range(10)]
    picks = first_set(_tiny_source(10), ids, 4, method="random", seed=5)
    assert [i for i, _ in picks] == select_random(ids, 4, seed=5)
    assert {s for _, s in picks} == {0.0}


@pytest.mark.parametrize("method", ["kmeans", "kcenter"])
def test_first_set_representative_picks_both_kinds_of_scene(method: str) -> None:
    source = _tiny_source(12)
    ids = list(source.ids)
    reported: list[float] = []
    picks = first_set(source, ids, 2, method=method, seed=0, progress=lambda f, _m: reported.append(f))
    chosen = [i for i, _ in picks]
    assert len(set(chosen)) == 2 and set(chosen) <= set(ids)
    assert {int(i[3:]) % 2 for i in chosen} == {0, 1}  # one striped, one dark
    assert reported and reported[-1] == 1.0
    assert first_set(source, ids, 2, method=method, seed=0) == picks


def test_first_set_refuses_an_unknown_method_and_a_negative_count() -> None:
    source = _tiny_source(2)
    with pytest.raises(ValueError, match="unknown start 'medoids'"):
        first_set(source, list(source.ids), 1, method="medoids")
    with pytest.raises(ValueError, match="count must be"):
        first_set(source, list(source.ids), -1, method="random")
    assert first_set(source, list(source.ids), 0, method="kmeans") == []


def test_nearest_centre_over_blocks_equals_all_at_once() -> None:
    rng = np.random.default_rng(1)
    points, centres = rng.normal(size=(301, 16)), rng.normal(size=(7, 16))
    whole = ((points[:, None, :] - centres[None]) ** 2).sum(axis=2).argmin(axis=1)
    for max_elements in (1, 16 * 7 * 10, 1 << 24):  # one point per block, 10 per block, all in one
        assert (_nearest(points, centres, max_elements) == whole).all()
