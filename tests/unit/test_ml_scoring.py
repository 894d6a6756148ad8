"""Scorers rank crafted probability maps the way their definitions say they must."""

from __future__ import annotations

import math

import numpy as np
import pytest

from ml.losses import enet_class_weights
from ml.scoring import (
    ScoreOptions,
    aggregate,
    get_scorer,
    minmax,
    pixel_bald,
    pixel_entropy,
    pixel_margin,
    score_arrays,
    score_pool_detailed,
)

C, H, W = 4, 3, 5


def _image(p: list[float]) -> np.ndarray:
    """One C×H×W map with the same distribution at every pixel."""
    return np.broadcast_to(np.asarray(p, dtype=np.float32)[:, None, None], (C, H, W)).copy()


CONFIDENT = _image([0.97, 0.01, 0.01, 0.01])
UNIFORM = _image([0.25, 0.25, 0.25, 0.25])
SPLIT = _image([0.5, 0.5, 0.0, 0.0])
SPREAD = _image([0.4, 0.2, 0.2, 0.2])
BATCH = np.stack([CONFIDENT, UNIFORM, SPLIT])  # ids 0, 1, 2


def test_entropy_values_and_ranking() -> None:
    s = score_arrays("entropy", [BATCH])
    assert s[1] == pytest.approx(1.0)
    assert s[2] == pytest.approx(math.log(2) / math.log(4), rel=1e-5)
    assert list(np.argsort(-s)) == [1, 2, 0]


def test_least_confidence_values_and_ranking() -> None:
    s = score_arrays("least-confidence", [BATCH])
    np.testing.assert_allclose(s, [0.03, 0.75, 0.5], rtol=1e-5)


def test_margin_prefers_two_way_ties_where_entropy_prefers_spread() -> None:
    batch = np.stack([SPLIT, SPREAD])
    margin = score_arrays("margin", [batch])
    entropy = score_arrays("entropy", [batch])
    np.testing.assert_allclose(margin, [1.0, 0.8], rtol=1e-5)
    assert margin[0] > margin[1]
    assert entropy[1] > entropy[0]
    # pixel_margin on a single pixel with unsorted classes
    assert pixel_margin(np.array([[[[0.1]], [[0.6]], [[0.3]]]]))[0, 0, 0] == pytest.approx(0.7)


def test_bald_high_when_passes_disagree_confidently() -> None:
    t = 10
    one_hot_a = _image([0.97, 0.01, 0.01, 0.01])
    one_hot_b = _image([0.01, 0.97, 0.01, 0.01])
    disagree = np.stack([one_hot_a if i % 2 else one_hot_b for i in range(t)])  # T×C×H×W
    agree_uniform = np.stack([UNIFORM] * t)
    agree_confident = np.stack([CONFIDENT] * t)
    mc = np.stack([disagree, agree_uniform, agree_confident], axis=1)  # T×N×C×H×W
    s = score_arrays("bald", [mc])
    assert s[1] == pytest.approx(0.0, abs=1e-6)  # uncertain, but every pass says the same
    assert s[2] == pytest.approx(0.0, abs=1e-6)
    # mean of the passes is ≈ (0.49, 0.49, 0.01, 0.01); each pass is confident → mutual info ≈ ln2/ln4 − small
    expected = pixel_entropy(disagree.mean(axis=0)[None])[0, 0, 0] - pixel_entropy(one_hot_a[None])[0, 0, 0]
    assert s[0] == pytest.approx(expected, rel=1e-5)
    assert s[0] > 0.3
    assert (pixel_bald(mc) >= 0).all()


def test_ueq_is_half_minmax_lc_plus_half_minmax_entropy() -> None:
    batch = np.stack([CONFIDENT, UNIFORM, SPLIT, SPREAD])
    lc = score_arrays("least-confidence", [batch])
    ent = score_arrays("entropy", [batch])
    ueq = score_arrays("ueq", [batch[:2], batch[2:]])  # two batches: min-max must span the pool
    expected = 0.5 * (lc - lc.min()) / (lc.max() - lc.min()) + 0.5 * (ent - ent.min()) / (ent.max() - ent.min())
    np.testing.assert_allclose(ueq, expected, rtol=1e-6)
    assert ueq[1] == pytest.approx(1.0) and ueq[0] == pytest.approx(0.0)
    weighted = score_arrays("ueq", [batch], ScoreOptions(alpha=1.0))
    np.testing.assert_allclose(weighted, minmax(lc), rtol=1e-6)


def test_ueq_pool_dependence_differs_from_per_batch() -> None:
    """Scoring each image alone would collapse min–max to 0: the pool step must see every image."""
    batch = np.stack([CONFIDENT, UNIFORM, SPLIT])
    alone = [score_arrays("ueq", [b[None]])[0] for b in batch]
    assert alone == [0.0, 0.0, 0.0]
    assert len(set(score_arrays("ueq", [batch]).round(6))) == 3


def test_ueq_product_variant() -> None:
    s = score_arrays("ueq-product", [BATCH])
    np.testing.assert_allclose(s[1], 0.75 * 1.0, rtol=1e-5)
    assert s[1] > s[2] > s[0]


def test_ueq_disagreement_adds_gamma_times_disagreeing_fraction() -> None:
    # two branches agree on image 0, disagree on half the pixels of image 1; same mean probabilities
    b1 = np.stack([SPLIT, SPLIT])
    b2 = np.stack([SPLIT, SPLIT])
    b1[1, :, :, :2] = _image([0.6, 0.4, 0, 0])[:, :, :2]
    b2[1, :, :, :2] = _image([0.4, 0.6, 0, 0])[:, :, :2]
    plain = score_arrays("ueq", [np.mean([b1, b2], axis=0)])
    with_d = score_arrays("ueq+disagreement", [[b1, b2]], ScoreOptions(gamma=2.0))
    fraction = 2 / W  # 2 of the 5 columns disagree
    np.testing.assert_allclose(with_d - plain, [0.0, 2.0 * fraction], atol=1e-6)
    assert get_scorer("ueq+disagreement").needs == "branches"


def test_rare_class_weights_favour_uncertainty_on_rare_predictions() -> None:
    # image 0: uncertain pixels predicted as class 0 (common); image 1: same, predicted as class 3 (rare)
    a = _image([0.4, 0.2, 0.2, 0.2])
    b = _image([0.2, 0.2, 0.2, 0.4])
    conf = CONFIDENT
    img0 = conf.copy()
    img0[:, 0] = a[:, 0]
    img1 = conf.copy()
    img1[:, 0] = b[:, 0]
    batch = np.stack([img0, img1, UNIFORM])
    plain = score_arrays("ueq", [batch])
    assert plain[0] == pytest.approx(plain[1])
    weights = tuple(enet_class_weights([1000, 500, 500, 1]))
    rare = score_arrays("ueq+rare-class", [batch], ScoreOptions(class_weights=weights))
    assert rare[1] > rare[0]
    with pytest.raises(ValueError, match="class_weights"):
        score_arrays("ueq+rare-class", [batch])


def test_topk_aggregation_prefers_a_small_very_uncertain_patch() -> None:
    patch = np.zeros((1, 10, 10))
    patch[0, :1, :] = 1.0  # 10% of pixels at 1
    mild = np.full((1, 10, 10), 0.3)
    scores = np.concatenate([patch, mild])
    mean = aggregate(scores)
    top = aggregate(scores, top_k_percent=10)
    np.testing.assert_allclose(mean, [0.1, 0.3])
    np.testing.assert_allclose(top, [1.0, 0.3])
    np.testing.assert_allclose(aggregate(scores, top_k_percent=20), [0.5, 0.3])
    with pytest.raises(ValueError):
        aggregate(scores, top_k_percent=0)


def test_topk_with_excluded_pixels_counts_only_kept_ones() -> None:
    scores = np.array([[[1.0, 1.0, 0.2, 0.4]]])
    weights = np.array([[[0.0, 0.0, 1.0, 1.0]]])
    assert aggregate(scores, weights, top_k_percent=50)[0] == pytest.approx(0.4)
    assert aggregate(scores, weights)[0] == pytest.approx(0.3)
    assert aggregate(scores, np.zeros_like(weights))[0] == 0.0


def test_exclude_class_drops_pixels_predicted_as_that_class() -> None:
    img = CONFIDENT.copy()
    img[:, 0] = _image([0.3, 0.4, 0.3, 0.0])[:, 0]  # row 0 uncertain, predicted class 1 ("sky")
    plain = score_arrays("entropy", [img[None]])
    excluded = score_arrays("entropy", [img[None]], ScoreOptions(exclude_class=1))
    assert plain[0] > excluded[0]
    np.testing.assert_allclose(excluded, score_arrays("entropy", [CONFIDENT[None]]), rtol=1e-6)


def test_unknown_strategy_is_rejected() -> None:
    for bad in ("entropyy", "ueq+foo", "ueq+rare-class+rare-class", "random"):
        with pytest.raises(ValueError):
            get_scorer(bad)


class _ColourPredictor:
    """Probabilities from the red channel: red 0 → confident, red 255 → uniform; a dropout-free model."""

    num_classes = C

    def predict_proba(self, images: np.ndarray) -> np.ndarray:
        t = images[..., 0].astype(np.float32)[:, None] / 255.0  # N×1×H×W
        return (1 - t) * CONFIDENT[None, :, :1, :1] + t * UNIFORM[None, :, :1, :1]

    def predict_proba_mc(self, images: np.ndarray, passes: int) -> np.ndarray:
        return np.stack([self.predict_proba(images)] * passes)

    def branch_probas(self, images: np.ndarray) -> list[np.ndarray]:
        return [self.predict_proba(images)] * 2


class _Source:
    def __init__(self, reds: dict[str, int]) -> None:
        self._reds = reds

    @property
    def ids(self) -> list[str]:
        return list(self._reds)

    def load_image(self, sample_id: str) -> np.ndarray:
        return np.full((8, 8, 3), self._reds[sample_id], dtype=np.uint8)

    def load_label(self, sample_id: str) -> None:
        return None


def test_score_pool_batches_and_reports_rate() -> None:
    source = _Source({"a": 0, "b": 255, "c": 128, "d": 64, "e": 200})
    messages: list[str] = []
    result = score_pool_detailed(
        _ColourPredictor(), source, "ueq", batch_size=2, progress=lambda f, m: messages.append(m), image_size=4
    )
    ranked = sorted(result.scores, key=lambda k: -result.scores[k])
    assert ranked == ["b", "e", "c", "d", "a"]
    assert result.scores["b"] == pytest.approx(1.0) and result.scores["a"] == pytest.approx(0.0)
    assert set(result.statistics["a"]) >= {"least_confidence", "entropy"}
    assert result.images_per_second > 0
    assert "img/s" in messages[-1]
    bald = score_pool_detailed(_ColourPredictor(), source, "bald", ids=["a", "b"])
    assert bald.scores == pytest.approx({"a": 0.0, "b": 0.0}, abs=1e-6)  # identical passes → no BALD
