"""Selection: pool scores → the next batch of images to label (METHODS §4.2).

A strategy is a name in `STRATEGIES`: `random` needs no model; every other name is a scorer from
`ml.scoring` whose highest-scoring images are taken, in the order of `ranking` (ml.al_round ranks a round's
scores with it). Both are deterministic: the ranking breaks ties by id, and random draws from the sorted
candidate ids with a seeded generator, so the input order never matters.
"""

from __future__ import annotations

import math
from collections.abc import Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass

import numpy as np

from ml.scoring import UEQ_BASES, UEQ_SUFFIXES, get_scorer

DEFAULT_STRATEGY = "ueq"
SPREAD_FACTOR = 10  # a spread batch of b is chosen among the top SPREAD_FACTOR·b by score


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


def strategy_names() -> list[str]:
    """Every name `get_strategy` takes: the registered strategies and each UEQ variant (a base, then distinct
    suffixes in any order), so that the API's document can list them."""
    from itertools import permutations

    variants = [
        "+".join((base, *suffixes))
        for base in UEQ_BASES
        for count in range(len(UEQ_SUFFIXES) + 1)
        for suffixes in permutations(UEQ_SUFFIXES, count)
    ]
    return list(dict.fromkeys([*STRATEGIES, *variants]))


def get_strategy(name: str) -> Strategy:
    """A registered strategy, or a UEQ variant such as 'ueq+disagreement' or 'ueq-product'."""
    if name in STRATEGIES:
        return STRATEGIES[name]
    get_scorer(name)  # raises ValueError with the known names
    return Strategy(name, name, "UEQ variant (reconstructed)")


def _candidates(ids: Iterable[str], labeled: Collection[str], excluded: Collection[str]) -> list[str]:
    skip = set(labeled) | set(excluded)
    return sorted({i for i in ids if i not in skip})


def id_key(sample_id: str) -> tuple[int, int | str]:
    """Sort key of ids: numeric ids in numeric order (before any other), others by string."""
    return (0, int(sample_id)) if sample_id.isdigit() else (1, sample_id)


def ranking(scores: Mapping[str, float]) -> list[tuple[str, float, int]]:
    """The one ranking rule of a round: (id, score, rank) with rank 1 = label first; highest score first, NaN
    last, ties by `id_key`, so the input order never matters."""

    def key(item: tuple[str, float]) -> tuple[float, tuple[int, int | str]]:
        value = float(item[1])
        return (math.inf if math.isnan(value) else -value, id_key(item[0]))

    ordered = sorted(scores.items(), key=key)
    return [(i, float(s), rank) for rank, (i, s) in enumerate(ordered, start=1)]


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


def spread_picks(ranked_ids: Sequence[str], features: np.ndarray, size: int, seed: int) -> list[str]:
    """`size` ids of `ranked_ids` (best first, `features` row-aligned with them) that are not all one kind of
    scene: k-means puts them in `size` clusters and each cluster gives its best-ranked id; returned in rank order.

    Why: a batch of the b highest-scoring images tends to repeat the scene the model finds hardest (UEQ's batches
    were soil-heavy, bench/results/label_efficiency/NOTES.md); clustering the top candidates and taking the best of
    each keeps the uncertainty and adds diversity, as in diverse mini-batch active learning (Zhdanov 2019)."""
    from ml.start import kmeans

    if size <= 0:
        return []
    if size >= len(ranked_ids):
        return list(ranked_ids)
    if len(features) != len(ranked_ids):
        raise ValueError(f"{len(features)} feature rows for {len(ranked_ids)} ids")
    _, assign = kmeans(np.asarray(features, np.float64), size, seed)
    best: dict[int, int] = {}
    for position, cluster in enumerate(assign.tolist()):
        best.setdefault(cluster, position)
    chosen = sorted(best.values())
    if len(chosen) < size:  # fewer non-empty clusters than picks: fill with the best-ranked others
        taken = set(chosen)
        chosen = sorted(chosen + [i for i in range(len(ranked_ids)) if i not in taken][: size - len(chosen)])
    return [ranked_ids[i] for i in chosen]
