"""Selection: the one ranking rule (highest first, NaN last, ties by id), the seeded random draw, spread batches."""

from __future__ import annotations

import math

import numpy as np
import pytest

from ml.selection import DEFAULT_STRATEGY, STRATEGIES, get_strategy, ranking, select_random, spread_picks

SCORES = {"e": 0.9, "a": 0.5, "c": 0.5, "b": 0.5, "d": 0.1, "f": 0.95, "g": math.nan}


def _order(scores: dict[str, float]) -> list[str]:
    return [i for i, _, _ in ranking(scores)]


def test_ranking_by_score_with_id_tie_break_and_nan_last() -> None:
    assert _order(SCORES) == ["f", "e", "a", "b", "c", "d", "g"]
    assert [r for _, _, r in ranking(SCORES)] == [1, 2, 3, 4, 5, 6, 7]


def test_ranking_orders_numeric_ids_numerically() -> None:
    ranked = ranking({"10": 0.5, "9": 0.5, "2": math.nan, "1": 0.9})
    assert [(i, r) for i, _, r in ranked] == [("1", 1), ("9", 2), ("10", 3), ("2", 4)]


def test_ranking_is_independent_of_input_order() -> None:
    assert ranking(dict(reversed(list(SCORES.items())))) == ranking(SCORES)


def test_random_is_seeded_order_free_and_skips() -> None:
    pool = [f"img{i:03d}" for i in range(100)]
    first = select_random(pool, 10, seed=3, labeled=pool[:5], excluded={"img050"})
    again = select_random(list(reversed(pool)), 10, seed=3, labeled=pool[:5], excluded={"img050"})
    other = select_random(pool, 10, seed=4, labeled=pool[:5], excluded={"img050"})
    assert first == again
    assert first != other
    assert len(set(first)) == 10
    assert not set(first) & (set(pool[:5]) | {"img050"})
    assert len(select_random(pool[:3], 10, seed=0)) == 3


def test_registry() -> None:
    assert DEFAULT_STRATEGY == "ueq"
    assert set(STRATEGIES) == {"random", "entropy", "least-confidence", "margin", "bald", "ueq"}
    assert not STRATEGIES["random"].needs_model and STRATEGIES["bald"].needs_model
    assert get_strategy("ueq+disagreement").scorer == "ueq+disagreement"
    with pytest.raises(ValueError):
        get_strategy("coreset")


def test_spread_picks_takes_the_best_of_each_kind_of_scene() -> None:
    # The 6 best-ranked ids are one tight kind of scene, the next 4 another: the top-2 batch would be two of the
    # first kind; the spread batch is the best of each kind, in rank order.
    rng = np.random.default_rng(0)
    ids = [f"img{i}" for i in range(10)]
    features = np.concatenate([rng.normal(0, 0.01, (6, 4)) + 1, rng.normal(0, 0.01, (4, 4)) - 1])
    assert spread_picks(ids, features, 2, seed=0) == ["img0", "img6"]
    assert spread_picks(ids, features, 2, seed=1) == ["img0", "img6"]  # the seed moves centroids, not the answer
    # More clusters than kinds: still `size` distinct ids, best-ranked first.
    picks = spread_picks(ids, features, 4, seed=0)
    assert len(set(picks)) == 4 and picks[0] == "img0" and "img6" in picks
    assert spread_picks(ids, features, 0, seed=0) == []
    assert spread_picks(ids[:3], features[:3], 5, seed=0) == ids[:3]
    with pytest.raises(ValueError, match="feature rows"):
        spread_picks(ids, features[:5], 2, seed=0)
