"""The benchmark's budget on the real dev set: 2,100 pool, 300 val, 1% = 21, 3% = 63, four classes."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from ml.simulate import query_sizes, resolve_count

DEV = Path(__file__).resolve().parents[2].parent / "shared" / "data" / "ai4mars-msl256-dev"

pytestmark = [
    pytest.mark.shared_data,
    pytest.mark.skipif(not DEV.is_dir(), reason=f"dev data folder absent: {DEV}"),
]


def test_dev_set_splits_give_the_benchmark_budget() -> None:
    from ml.data import open_dataset

    pool = open_dataset(DEV, "pool")
    val = open_dataset(DEV, "val")
    assert len(pool.ids) == 2100 and len(val.ids) == 300
    assert not set(pool.ids) & set(val.ids)
    initial, budget = resolve_count("1%", len(pool.ids)), resolve_count("3%", len(pool.ids))
    assert (initial, budget) == (21, 63)
    assert query_sizes(initial, budget, 2) == [21, 21]
    present = set()
    for sample_id in list(val.ids)[:60]:
        label = val.load_label(sample_id)
        assert label is not None
        present |= set(np.unique(label).tolist())
    assert present - {255} <= {2, 3, 4, 5}
