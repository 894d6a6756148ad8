"""Float16 SAM embeddings on disk, per model and image content (sha256), bounded in total size.

Each entry is two files: `<sha>.f16` (the raw float16 bytes, sent as they are by the API) and `<sha>.json`
(shape, dtype, scale, original size). Least recently used entries go first when the bound is passed: a hit
touches the files' mtime, which survives `relatime` mounts where atime does not. Several processes may share
the folder: writes are atomic renames and eviction tolerates files that another process removed.
"""

from __future__ import annotations

import json
import os
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from ml.sam.interface import Embedding


@dataclass(frozen=True)
class CachedEmbedding:
    raw: bytes
    meta: dict[str, Any]

    def embedding(self) -> Embedding:
        data = np.frombuffer(self.raw, dtype=np.float16).reshape(self.meta["shape"])
        return Embedding(self.meta["model"], data, tuple(self.meta["original_size"]), float(self.meta["scale"]))


def _safe(name: str) -> str:
    if not name or any(c in name for c in "/\\\0") or name.startswith("."):
        raise ValueError(f"not a usable cache name: {name!r}")
    return name


class EmbeddingCache:
    def __init__(self, root: Path, max_bytes: int) -> None:
        self.root = root
        self.max_bytes = max_bytes

    def _base(self, model: str, sha256: str) -> Path:
        return self.root / _safe(model) / _safe(sha256)[:2] / sha256

    def get(self, model: str, sha256: str) -> CachedEmbedding | None:
        base = self._base(model, sha256)
        try:
            meta = json.loads(base.with_suffix(".json").read_text())
            raw = base.with_suffix(".f16").read_bytes()
            for suffix in (".f16", ".json"):
                os.utime(base.with_suffix(suffix))
        except (OSError, ValueError):
            return None
        return CachedEmbedding(raw, meta)

    def contains(self, model: str, sha256: str) -> bool:
        base = self._base(model, sha256)
        return base.with_suffix(".json").is_file() and base.with_suffix(".f16").is_file()

    def put(self, sha256: str, embedding: Embedding) -> CachedEmbedding:
        data = np.ascontiguousarray(embedding.data, dtype=np.float16)
        meta = {
            "model": embedding.model,
            "shape": list(data.shape),
            "dtype": "float16",
            "original_size": list(embedding.original_size),
            "scale": embedding.scale,
        }
        base = self._base(embedding.model, sha256)
        base.parent.mkdir(parents=True, exist_ok=True)
        raw = data.tobytes()
        # Bytes first, then the JSON: an entry counts as present only once its JSON exists.
        self._write(base.with_suffix(".f16"), raw)
        self._write(base.with_suffix(".json"), json.dumps(meta).encode())
        self.evict()
        return CachedEmbedding(raw, meta)

    @staticmethod
    def _write(path: Path, content: bytes) -> None:
        handle, temp = tempfile.mkstemp(dir=path.parent, prefix=".partial-")
        with os.fdopen(handle, "wb") as out:
            out.write(content)
        os.replace(temp, path)

    def _entries(self) -> list[tuple[float, int, Path]]:
        """(last use, bytes, base path) of every complete entry."""
        entries = []
        for meta in self.root.glob("*/*/*.json"):
            base = meta.with_suffix("")
            try:
                stat_raw, stat_meta = base.with_suffix(".f16").stat(), meta.stat()
            except OSError:
                continue
            entries.append((max(stat_raw.st_mtime, stat_meta.st_mtime), stat_raw.st_size + stat_meta.st_size, base))
        return entries

    def total_bytes(self) -> int:
        return sum(size for _used, size, _base in self._entries())

    def evict(self) -> list[Path]:
        """Remove least recently used entries until the total is within max_bytes; returns what went."""
        entries = sorted(self._entries())
        total = sum(size for _used, size, _base in entries)
        removed = []
        for _used, size, base in entries:
            if total <= self.max_bytes:
                break
            for suffix in (".json", ".f16"):
                base.with_suffix(suffix).unlink(missing_ok=True)
            total -= size
            removed.append(base)
        return removed
