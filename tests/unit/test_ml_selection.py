"""Selection skips labelled and excluded ids, breaks ties by id and is reproducible."""

from __future__ import annotations

import math

import pytest

from ml.selection import DEFAULT_STRATEGY, STRATEGIES, get_strategy, select, select_random, select_top

SCORES = {"e": 0.9, "a": 0.5, "c": 0.5, "b": 0.5, "d": 0.1, "f": 0.95, "g": math.nan}


def test_top_by_score_with_id_tie_break() -> None:
    assert select_top(SCORES, 4) == ["f", "e", "a", "b"]
    assert select_top(SCORES, 7)[-1] == "g"  # NaN last


def test_top_skips_labeled_and_excluded() -> None:
    assert select_top(SCORES, 3, labeled={"f"}, excluded=["e", "a"]) == ["b", "c", "d"]
    assert select_top(SCORES, 10, labeled=set(SCORES)) == []


def test_top_is_independent_of_input_order() -> None:
    reversed_scores = dict(reversed(list(SCORES.items())))
    assert select_top(reversed_scores, 5) == select_top(SCORES, 5)


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


def test_select_dispatches_and_needs_scores() -> None:
    assert select("entropy", 2, pool_ids=SCORES, scores=SCORES) == ["f", "e"]
    assert select("random", 2, pool_ids=["x", "y", "z"], seed=1) == select_random(["x", "y", "z"], 2, seed=1)
    with pytest.raises(ValueError, match="needs scores"):
        select("ueq", 2, pool_ids=SCORES)
    with pytest.raises(ValueError):
        select_top(SCORES, -1)


def test_registry() -> None:
    assert DEFAULT_STRATEGY == "ueq"
    assert set(STRATEGIES) == {"random", "entropy", "least-confidence", "margin", "bald", "ueq"}
    assert not STRATEGIES["random"].needs_model and STRATEGIES["bald"].needs_model
    assert get_strategy("ueq+disagreement").scorer == "ueq+disagreement"
    with pytest.raises(ValueError):
        get_strategy("coreset")
