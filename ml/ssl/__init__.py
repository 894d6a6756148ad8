"""Semi-supervised training: one entry point, `train`, dispatching on TrainConfig.method."""

from __future__ import annotations

from pathlib import Path

from ml.allocator import held_memory
from ml.interfaces import ProgressFn, SampleSource, TrainConfig, TrainResult, no_progress
from ml.ssl.cps_mars import CpsMars
from ml.ssl.engine import Trainer
from ml.ssl.method import Method
from ml.ssl.s5mars import S5Mars
from ml.ssl.self_training import SelfTraining
from ml.ssl.supervised import Supervised

METHODS: dict[str, type[Method]] = {m.name: m for m in (Supervised, CpsMars, S5Mars, SelfTraining)}


def train(
    config: TrainConfig,
    labeled: SampleSource,
    unlabeled: SampleSource | None,
    val: SampleSource | None,
    *,
    checkpoint_path: Path,
    progress: ProgressFn = no_progress,
    resume: bool = True,
    init_from: Path | None = None,
) -> TrainResult:
    """Train `config.method` on the labelled set (plus the unlabelled pool for SSL methods).

    `progress(fraction, message)` is called about twice a second; raising ml.interfaces.Cancelled
    from it stops the run after saving a partial checkpoint. With resume=True a partial checkpoint at
    `checkpoint_path` is continued from its step and a finished one is returned as it is. The
    unlabelled pool may contain labelled images: their labels (from `labeled`) override pseudo-labels.
    `init_from`: a finished checkpoint of the same method whose networks a fresh run starts from (warm start).
    """
    method = METHODS.get(config.method)
    if method is None:
        raise ValueError(f"unknown method {config.method!r}; choose one of {sorted(METHODS)}")
    trainer = Trainer(method, config, labeled, unlabeled, val, Path(checkpoint_path), progress, resume, init_from)
    with held_memory():
        return trainer.run()


__all__ = ["METHODS", "train"]
