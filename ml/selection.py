"""Selection: pool scores → the next batch of images to label (METHODS §4.2).

A strategy is a name in `STRATEGIES`: `random` needs no model; every other name is a scorer from
`ml.scoring` whose highest-scoring images are taken. Both skip images already labelled and any
excluded id (e.g. claimed by an annotator), and both are deterministic: top-b breaks ties by id, and
random draws from the sorted candidate ids with a seeded generator, so the input order never matters.
"""

from __future__ import annotations

import math
from collections.abc import Collection, Iterable, Mapping
from dataclasses import dataclass

import numpy as np

from ml.scoring import get_scorer

DEFAULT_STRATEGY = "ueq"


@dataclass(frozen=True)
class Strategy:
    name: str
    scorer: str | None  # None: picks without a model
    description: str

    @property
    def needs_model(self) -> bool:
        return self.scorer is not None


STRATEGIES: dict[str, Strategy] = {
    "random": Strategy("random", None, "uniform sample of the unlabelled pool (seeded)"),
    "entropy": Strategy("entropy", "entropy", "highest mean normalised pixel entropy"),
    "least-confidence": Strategy(
        "least-confidence", "least-confidence", "highest mean 1 − max p (the papers' 'Uncertainty')"
    ),
    "margin": Strategy("margin", "margin", "smallest mean gap between the two best classes"),
    "bald": Strategy("bald", "bald", "highest MC-dropout mutual information (needs decoder dropout)"),
    "ueq": Strategy("ueq", "ueq", "reconstructed UEQ: ½ minmax(LC) + ½ minmax(entropy) over the pool"),
}


def get_strategy(name: str) -> Strategy:
    """A registered strategy, or a UEQ variant such as 'ueq+disagreement' or 'ueq-product'."""
    if name in STRATEGIES:
        return STRATEGIES[name]
    get_scorer(name)  # raises ValueError with the known names
    return Strategy(name, name, "UEQ variant (reconstructed)")


def _candidates(ids: Iterable[str], labeled: Collection[str], excluded: Collection[str]) -> list[str]:
    skip = set(labeled) | set(excluded)
    return sorted({i for i in ids if i not in skip})


def select_top(
    scores: Mapping[str, float],
    budget: int,
    *,
    labeled: Collection[str] = (),
    excluded: Collection[str] = (),
) -> list[str]:
    """The `budget` highest-scoring ids, ties broken by ascending id; NaN scores rank last."""
    if budget < 0:
        raise ValueError("budget must be ≥ 0")
    candidates = _candidates(scores, labeled, excluded)

    def key(i: str) -> tuple[float, str]:
        s = float(scores[i])
        return (math.inf if math.isnan(s) else -s, i)

    return sorted(candidates, key=key)[:budget]


def select_random(
    ids: Iterable[str],
    budget: int,
    *,
    seed: int,
    labeled: Collection[str] = (),
    excluded: Collection[str] = (),
) -> list[str]:
    """`budget` ids drawn uniformly without replacement, reproducible from `seed`."""
    if budget < 0:
        raise ValueError("budget must be ≥ 0")
    candidates = _candidates(ids, labeled, excluded)
    take = min(budget, len(candidates))
    picks = np.random.default_rng(seed).choice(len(candidates), size=take, replace=False)
    return [candidates[i] for i in picks]


def select(
    strategy: str,
    budget: int,
    *,
    pool_ids: Iterable[str],
    scores: Mapping[str, float] | None = None,
    seed: int = 0,
    labeled: Collection[str] = (),
    excluded: Collection[str] = (),
) -> list[str]:
    """The next batch for `strategy`: random draws from `pool_ids`; the others need `scores`."""
    spec = get_strategy(strategy)
    if not spec.needs_model:
        return select_random(pool_ids, budget, seed=seed, labeled=labeled, excluded=excluded)
    if scores is None:
        raise ValueError(f"strategy {strategy!r} needs scores")
    return select_top(scores, budget, labeled=labeled, excluded=excluded)
