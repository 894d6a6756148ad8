"""Confidence-sparsified pseudo-labels: the S5Mars rule of labelling only what the model is sure of.

`pseudo_label` turns one image's probabilities into a label map (255 below the threshold); the service's
`pseudo_label` job stores such maps as mask versions, and self-training (ml.ssl.self_training) learns from
them through a `PseudoLabelSource`: the pool's images with the teacher's labels, human labels winning.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image

from ml.interfaces import IGNORE_INDEX, Predictor, ProgressFn, SampleSource, no_progress


def pseudo_label(probs: np.ndarray, threshold: float) -> tuple[np.ndarray, float]:
    """C×H×W probabilities → (H×W uint8 class ids with 255 where the top probability < threshold, mean top
    probability over the image)."""
    top = probs.max(axis=0)
    label = probs.argmax(axis=0).astype(np.uint8)
    if threshold > 0:
        label[top < threshold] = IGNORE_INDEX
    return label, float(top.mean())


@dataclass
class PseudoLabelStats:
    images: int  # predicted by this call (images already in the folder are not counted)
    seconds: float


def _pred_path(folder: Path, sample_id: str) -> Path:
    return folder / f"{sample_id}.png"


def write_predictions(
    predictor: Predictor,
    source: SampleSource,
    ids: Sequence[str],
    folder: Path,
    batch_size: int = 8,
    progress: ProgressFn = no_progress,
) -> PseudoLabelStats:
    """Predict `ids` and write each as `<folder>/<id>.png`, a two-channel PNG: the argmax class and its
    probability (×255). Thresholds are applied when the labels are read (`PseudoLabelSource`), so that global and
    per-class thresholds can be chosen from the whole pool's confidences. Resumable: a PNG appears whole, by
    rename, and an image whose PNG exists is skipped."""
    import time

    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    todo = [i for i in ids if not _pred_path(folder, i).exists()]
    started = time.perf_counter()
    for start in range(0, len(todo), batch_size):
        chunk = todo[start : start + batch_size]
        images = [source.load_image(i) for i in chunk]
        probs = (
            list(predictor.predict_proba(np.stack(images)))
            if len({im.shape for im in images}) == 1
            else [predictor.predict_proba(im[None])[0] for im in images]
        )
        for sample_id, p in zip(chunk, probs, strict=True):
            label = p.argmax(axis=0).astype(np.uint8)
            confidence = np.round(p.max(axis=0) * 255).astype(np.uint8)
            tmp = folder / f"{sample_id}.png.tmp"
            Image.fromarray(np.stack([label, confidence], axis=-1), mode="LA").save(tmp, format="PNG")
            tmp.replace(_pred_path(folder, sample_id))
        done = start + len(chunk)
        progress(min(1.0, done / max(len(todo), 1)), f"predicted {done}/{len(todo)}")
    return PseudoLabelStats(len(todo), time.perf_counter() - started)


def read_prediction(folder: Path, sample_id: str) -> tuple[np.ndarray, np.ndarray] | None:
    """(H×W class ids, H×W confidence 0..1) of a stored prediction, None where there is none."""
    path = _pred_path(Path(folder), sample_id)
    if not path.exists():
        return None
    data = np.asarray(Image.open(path))
    return data[..., 0], data[..., 1].astype(np.float32) / 255.0


def class_thresholds(
    folder: Path, ids: Sequence[str], num_classes: int, threshold: float, class_keep: float | None
) -> np.ndarray:
    """Per-class confidence thresholds: `threshold` for every class, lowered for a class whose predictions are
    rarely that confident so that at least the `class_keep` share of its most confident predicted pixels is kept
    (class-balanced self-training, Zou et al. 2018): a rare class the teacher is never sure of still gets labels."""
    thresholds = np.full(num_classes, float(threshold))
    if class_keep is None:
        return thresholds
    histogram = np.zeros((num_classes, 256), dtype=np.int64)
    for sample_id in ids:
        found = read_prediction(folder, sample_id)
        if found is None:
            continue
        label, confidence = found
        q = np.round(confidence * 255).astype(np.int64)
        keep = label < num_classes
        np.add.at(histogram, (label[keep].astype(np.int64), q[keep]), 1)
    for c in range(num_classes):
        total = histogram[c].sum()
        if total == 0:
            continue
        # The confidence above which `class_keep` of the class's pixels lie (counted from the top).
        from_top = np.cumsum(histogram[c][::-1])
        level = 255 - int(np.searchsorted(from_top, class_keep * total))
        thresholds[c] = min(float(threshold), level / 255.0)
    return thresholds


class PseudoLabelSource:
    """The pool's images with labels from a prediction folder (`write_predictions`), each pixel kept where its
    confidence reaches its class's threshold (255 elsewhere); an image with a human label gets that instead.

    Only this type may feed a method that trains on pool labels (ml.ssl.engine checks), so a simulation's
    oracle labels can never leak into training through the pool.
    """

    def __init__(self, images: SampleSource, folder: Path, human: SampleSource, thresholds: np.ndarray) -> None:
        self._images = images
        self._folder = Path(folder)
        self._human = human
        self._human_ids = set(human.ids)
        self._thresholds = np.asarray(thresholds, dtype=np.float32)

    @property
    def ids(self) -> Sequence[str]:
        return self._images.ids

    def load_image(self, sample_id: str) -> np.ndarray:
        return self._images.load_image(sample_id)

    def load_label(self, sample_id: str) -> np.ndarray | None:
        if sample_id in self._human_ids:
            return self._human.load_label(sample_id)
        found = read_prediction(self._folder, sample_id)
        if found is None:
            return None
        label, confidence = found
        needed = self._thresholds[np.minimum(label, len(self._thresholds) - 1)]
        return np.where(confidence + 1e-6 >= needed, label, IGNORE_INDEX).astype(np.uint8)

    def kept_fraction(self, sample_ids: Sequence[str]) -> float:
        """Share of the pixels of `sample_ids` (non-human) that carry a pseudo-label."""
        kept = total = 0
        for sample_id in sample_ids:
            label = self.load_label(sample_id)
            if label is not None:
                kept += int((label != IGNORE_INDEX).sum())
                total += label.size
        return kept / total if total else 0.0
