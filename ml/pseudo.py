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
    images: int  # written by this call (images already in the folder are not counted)
    kept_fraction: float  # share of pixels at or above the threshold, over the images written
    seconds: float


def write_pseudo_labels(
    predictor: Predictor,
    source: SampleSource,
    ids: Sequence[str],
    folder: Path,
    threshold: float,
    batch_size: int = 8,
    progress: ProgressFn = no_progress,
) -> PseudoLabelStats:
    """Predict `ids` and write each pseudo-label as `<folder>/<id>.png`. Resumable: an image whose PNG exists is
    skipped (a PNG appears whole, by rename)."""
    import time

    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    todo = [i for i in ids if not (folder / f"{i}.png").exists()]
    started = time.perf_counter()
    kept = total = 0
    for start in range(0, len(todo), batch_size):
        chunk = todo[start : start + batch_size]
        images = [source.load_image(i) for i in chunk]
        shapes = {im.shape for im in images}
        probs = (
            list(predictor.predict_proba(np.stack(images)))
            if len(shapes) == 1
            else [predictor.predict_proba(im[None])[0] for im in images]
        )
        for sample_id, p in zip(chunk, probs, strict=True):
            label, _ = pseudo_label(p, threshold)
            kept += int((label != IGNORE_INDEX).sum())
            total += label.size
            tmp = folder / f"{sample_id}.png.tmp"
            Image.fromarray(label, mode="L").save(tmp, format="PNG")
            tmp.replace(folder / f"{sample_id}.png")
        progress(
            min(1.0, (start + len(chunk)) / max(len(todo), 1)), f"pseudo-labelled {start + len(chunk)}/{len(todo)}"
        )
    return PseudoLabelStats(len(todo), kept / total if total else 0.0, time.perf_counter() - started)


class PseudoLabelSource:
    """The pool's images with labels from a pseudo-label folder; an image with a human label gets that instead.

    Only this type may feed a method that trains on pool labels (ml.ssl.engine checks), so a simulation's
    oracle labels can never leak into training through the pool.
    """

    def __init__(self, images: SampleSource, folder: Path, human: SampleSource) -> None:
        self._images = images
        self._folder = Path(folder)
        self._human = human
        self._human_ids = set(human.ids)

    @property
    def ids(self) -> Sequence[str]:
        return self._images.ids

    def load_image(self, sample_id: str) -> np.ndarray:
        return self._images.load_image(sample_id)

    def load_label(self, sample_id: str) -> np.ndarray | None:
        if sample_id in self._human_ids:
            return self._human.load_label(sample_id)
        path = self._folder / f"{sample_id}.png"
        if not path.exists():
            return None
        return np.asarray(Image.open(path), dtype=np.uint8)
