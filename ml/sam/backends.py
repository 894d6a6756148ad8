"""Which SAM backend a process uses: the official checkpoint when one is set (GPU workers), else the pinned
ONNX pair. Built once per process and model directory."""

from __future__ import annotations

import threading
from functools import lru_cache
from pathlib import Path

from ml.sam.interface import SamBackend
from ml.sam.models import MODEL_ID, model_paths

_lock = threading.Lock()


@lru_cache(maxsize=4)
def _onnx(model_dir: Path, threads: int) -> SamBackend:
    from ml.sam.decoder import OnnxSam

    paths = model_paths(model_dir)
    return OnnxSam(paths.encoder, paths.decoder, threads, MODEL_ID)


@lru_cache(maxsize=2)
def _official(checkpoint: Path, model_type: str) -> SamBackend:
    from ml.sam.official import SegmentAnythingSam

    return SegmentAnythingSam(checkpoint, model_type)


def sam_backend(model_dir: Path, threads: int, checkpoint: Path | None = None, model_type: str = "vit_h") -> SamBackend:
    with _lock:  # two request threads must not both build a session
        if checkpoint is not None:
            return _official(checkpoint, model_type)
        return _onnx(model_dir.resolve(), threads)


def configured_model_id(checkpoint: Path | None, model_type: str) -> str:
    """The id embeddings of the configured backend carry, without building it."""
    return f"sam-{model_type}-{checkpoint.stem}" if checkpoint is not None else MODEL_ID
