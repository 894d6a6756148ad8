"""The embedding cache: a hit returns the bytes stored; the least recently used entries go past the bound."""

from __future__ import annotations

import os
import time
from pathlib import Path

import numpy as np

from ml.sam.cache import EmbeddingCache
from ml.sam.interface import Embedding

ENTRY = 256 * 64 * 64 * 2


def _embedding(seed: int) -> Embedding:
    data = np.random.default_rng(seed).standard_normal((1, 256, 64, 64)).astype(np.float16)
    return Embedding("m", data, (300, 400), 2.56)


def test_a_hit_returns_what_was_stored(tmp_path: Path) -> None:
    cache = EmbeddingCache(tmp_path, 10 * ENTRY)
    stored = _embedding(0)
    assert cache.get("m", "a" * 64) is None
    cache.put("a" * 64, stored)
    hit = cache.get("m", "a" * 64)
    assert hit is not None and len(hit.raw) == ENTRY
    back = hit.embedding()
    assert np.array_equal(back.data, stored.data) and back.original_size == (300, 400) and back.scale == 2.56
    assert cache.get("other-model", "a" * 64) is None


def test_least_recently_used_entries_are_evicted(tmp_path: Path) -> None:
    cache = EmbeddingCache(tmp_path, int(2.5 * ENTRY))
    for index, sha in enumerate(["a" * 64, "b" * 64]):
        cache.put(sha, _embedding(index))
        # mtime is the recency; spread it so the order does not hang on the file system's clock resolution.
        past = time.time() - 100 + index
        base = tmp_path / "m" / sha[:2] / sha
        for suffix in (".f16", ".json"):
            os.utime(base.with_suffix(suffix), (past, past))
    assert cache.get("m", "a" * 64) is not None  # "a" is now the most recently used
    cache.put("c" * 64, _embedding(2))
    assert cache.contains("m", "a" * 64) and cache.contains("m", "c" * 64)
    assert not cache.contains("m", "b" * 64)
    assert cache.total_bytes() <= cache.max_bytes
