"""The first images of a project without labels: representative ones instead of random ones.

Pool images are embedded with the ImageNet-pretrained encoder (global average of its deepest features, at a
small side) and a set is chosen over those features: `kmeans` (the image nearest each of k centroids, k-means++
start: typical images of every kind of scene) or `kcenter` (greedy k-centre: the pool's farthest-apart images).
Deterministic for a seed. The papers' protocol, a random start, stays the baseline (ml.selection.select_random).
`first_set` is the one entry used by the simulator and by the service's first-set job: it also orders the picks,
so that an annotator who labels only a few of them has labelled the most useful ones.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from ml.interfaces import ProgressFn, SampleSource, no_progress

START_METHODS = ("random", "kmeans", "kcenter")


def encoder_features(
    source: SampleSource,
    ids: Sequence[str],
    *,
    encoder: str = "lite0",
    side: int = 128,
    batch_size: int = 32,
    progress: ProgressFn = no_progress,
) -> np.ndarray:
    """N×D L2-normalised features of `ids` from the pretrained encoder's deepest stage."""
    import torch
    from PIL import Image

    from ml.network import build_model

    net = build_model(encoder, num_classes=2, pretrained=True).eval()
    out: list[np.ndarray] = []
    with torch.inference_mode():
        for start in range(0, len(ids), batch_size):
            chunk = [
                np.asarray(Image.fromarray(source.load_image(i)).resize((side, side), Image.Resampling.BILINEAR))
                for i in ids[start : start + batch_size]
            ]
            x = torch.from_numpy(np.stack(chunk)).permute(0, 3, 1, 2).float()
            deepest = net.model.encoder((x - net.mean) / net.std)[-1]
            out.append(deepest.mean(dim=(2, 3)).numpy())
            progress(min(1.0, (start + len(chunk)) / len(ids)), f"embedded {start + len(chunk)}/{len(ids)}")
    features = np.concatenate(out).astype(np.float64)
    return features / np.maximum(np.linalg.norm(features, axis=1, keepdims=True), 1e-12)


def kcenter(features: np.ndarray, k: int, seed: int) -> list[tuple[int, float]]:
    """Greedy k-centre: start at the point nearest the mean, then add the farthest from those chosen. Each pick
    comes with its distance to the nearest earlier pick (the first: the largest distance from it), so the
    scores fall in pick order. Deterministic; `seed` is accepted for a uniform signature."""
    del seed
    n = len(features)
    first = int(np.argmin(np.linalg.norm(features - features.mean(axis=0), axis=1)))
    dist = np.linalg.norm(features - features[first], axis=1)
    chosen = [(first, float(dist.max()))]
    while len(chosen) < min(k, n):
        nxt = int(np.argmax(dist))
        chosen.append((nxt, float(dist[nxt])))
        dist = np.minimum(dist, np.linalg.norm(features - features[nxt], axis=1))
    return chosen


def kmeans(features: np.ndarray, k: int, seed: int, iterations: int = 50) -> tuple[np.ndarray, np.ndarray]:
    """k-means with a seeded k-means++ start and Lloyd iterations: (k×D centroids, each point's cluster)."""
    rng = np.random.default_rng(seed)
    n = len(features)
    k = min(k, n)
    centres = [features[int(rng.integers(n))]]
    d2 = ((features - centres[0]) ** 2).sum(axis=1)
    for _ in range(1, k):
        probs = d2 / d2.sum() if d2.sum() > 0 else np.full(n, 1.0 / n)
        centres.append(features[int(rng.choice(n, p=probs))])
        d2 = np.minimum(d2, ((features - centres[-1]) ** 2).sum(axis=1))
    c = np.stack(centres)
    assign = _nearest(features, c)
    for _ in range(iterations):
        moved = np.stack([features[assign == j].mean(axis=0) if (assign == j).any() else c[j] for j in range(k)])
        if np.allclose(moved, c):
            break
        c = moved
        assign = _nearest(features, c)
    return c, assign


def _nearest(features: np.ndarray, centres: np.ndarray, max_elements: int = 1 << 24) -> np.ndarray:
    """Each point's nearest centre, by squared distance, over blocks of points: a pool of 100,000 images and 1,000
    centres would otherwise hold N×k×D values at once. Block by block, each distance is the same sum as over all."""
    rows = max(1, max_elements // max(1, centres.size))
    return np.concatenate(
        [
            ((features[start : start + rows, None, :] - centres[None]) ** 2).sum(axis=2).argmin(axis=1)
            for start in range(0, len(features), rows)
        ]
    )


def kmeans_medoids(features: np.ndarray, k: int, seed: int, iterations: int = 50) -> list[tuple[int, float]]:
    """k-means, then for each centroid the nearest not-yet-chosen point, with the share of the points in that
    centroid's cluster; largest cluster first (the most common kind of scene is labelled first)."""
    c, assign = kmeans(features, k, seed, iterations)
    chosen: list[int] = []
    shares: list[float] = []
    for j in range(len(c)):
        order = np.argsort(((features - c[j]) ** 2).sum(axis=1))
        chosen.append(next(int(i) for i in order if int(i) not in chosen))
        shares.append(float((assign == j).mean()))
    ranked = sorted(range(len(chosen)), key=lambda j: (-shares[j], j))
    return [(chosen[j], shares[j]) for j in ranked]


def first_set(
    source: SampleSource,
    ids: Sequence[str],
    count: int,
    *,
    method: str = "kmeans",
    seed: int = 0,
    encoder: str = "lite0",
    progress: ProgressFn = no_progress,
) -> list[tuple[str, float]]:
    """`count` ids of `ids` to label first, best first, each with its score: `kmeans` the share of the pool its
    cluster holds, `kcenter` the feature distance it covers, `random` 0 (drawn with ml.selection.select_random,
    in draw order)."""
    if method not in START_METHODS:
        raise ValueError(f"unknown start {method!r}; choose one of {START_METHODS}")
    if count < 0:
        raise ValueError("count must be ≥ 0")
    ids = list(ids)
    if method == "random":
        from ml.selection import select_random

        return [(i, 0.0) for i in select_random(ids, count, seed=seed)]
    if count == 0 or not ids:
        return []
    features = encoder_features(source, ids, encoder=encoder, progress=progress)
    picks = kmeans_medoids(features, count, seed) if method == "kmeans" else kcenter(features, count, seed)
    return [(ids[i], score) for i, score in picks]
