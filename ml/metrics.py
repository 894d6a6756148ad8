"""Segmentation metrics: a dataset-level confusion matrix and the IoU figures derived from it.

The protocol follows METHODS §5: intersections and unions are summed over the whole split (not averaged
per image), pixels whose ground truth is the ignore index never count, and a class's IoU is
I_c / U_c. Classes absent from both prediction and ground truth have no IoU; by default the mIoU is the
mean over the classes present in the ground truth, or over an explicit list of class ids (the dev set
reports soil/sand/bedrock/rock).
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from typing import Any

import numpy as np

from ml.interfaces import IGNORE_INDEX, Predictor, ProgressFn, SampleSource, no_progress


def confusion_matrix(
    pred: np.ndarray, gt: np.ndarray, num_classes: int, ignore_index: int = IGNORE_INDEX
) -> np.ndarray:
    """C×C int64 counts, rows = ground truth, columns = prediction; gt == ignore_index is skipped.

    Ground-truth or predicted values outside 0..C-1 (other than the ignore index) are a caller error.
    """
    pred = np.asarray(pred)
    gt = np.asarray(gt)
    if pred.shape != gt.shape:
        raise ValueError(f"prediction shape {pred.shape} differs from ground-truth shape {gt.shape}")
    gt_flat = gt.reshape(-1).astype(np.int64)
    pred_flat = pred.reshape(-1).astype(np.int64)
    keep = gt_flat != ignore_index
    gt_flat = gt_flat[keep]
    pred_flat = pred_flat[keep]
    if gt_flat.size and (gt_flat.min() < 0 or gt_flat.max() >= num_classes):
        raise ValueError(f"ground truth has values outside 0..{num_classes - 1} and {ignore_index}")
    if pred_flat.size and (pred_flat.min() < 0 or pred_flat.max() >= num_classes):
        raise ValueError(f"prediction has values outside 0..{num_classes - 1}")
    counts = np.bincount(gt_flat * num_classes + pred_flat, minlength=num_classes * num_classes)
    return counts.reshape(num_classes, num_classes).astype(np.int64)


def iou_per_class(cm: np.ndarray) -> np.ndarray:
    """IoU for every class; NaN where the class is in neither prediction nor ground truth."""
    cm = np.asarray(cm, dtype=np.float64)
    inter = np.diag(cm)
    union = cm.sum(axis=0) + cm.sum(axis=1) - inter
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(union > 0, inter / np.where(union > 0, union, 1.0), np.nan)


def miou_from_confusion(cm: np.ndarray, class_ids: Sequence[int] | None = None) -> tuple[float, dict[int, float]]:
    """(mIoU, {class id: IoU}).

    The dict holds every class with a defined IoU (present in prediction or ground truth), plus every
    requested class id. The mean is over `class_ids` when given (a requested class with no pixels
    anywhere counts as 0, as in the S5Mars code) or else over the classes present in the ground truth.
    Returns NaN as the mIoU when there is nothing to average.
    """
    cm = np.asarray(cm)
    ious = iou_per_class(cm)
    if class_ids is None:
        chosen = [int(c) for c in np.flatnonzero(cm.sum(axis=1) > 0)]
    else:
        chosen = [int(c) for c in class_ids]
        for c in chosen:
            if not 0 <= c < cm.shape[0]:
                raise ValueError(f"class id {c} outside 0..{cm.shape[0] - 1}")
    per_class = {int(c): float(ious[c]) for c in np.flatnonzero(~np.isnan(ious))}
    for c in chosen:
        per_class.setdefault(c, 0.0)
    if not chosen:
        return float("nan"), per_class
    return float(np.mean([per_class[c] for c in chosen])), per_class


def pixel_accuracy(cm: np.ndarray) -> float:
    total = np.asarray(cm).sum()
    return float(np.trace(cm) / total) if total else float("nan")


def evaluate_predictor(
    predictor: Predictor,
    source: SampleSource,
    batch_size: int = 8,
    class_ids: Sequence[int] | None = None,
    progress: ProgressFn = no_progress,
    ignore_index: int = IGNORE_INDEX,
) -> dict[str, Any]:
    """Argmax predictions of `predictor` on every labelled image of `source`, scored dataset-level.

    Images of different sizes are batched separately (a batch is cut where the size changes). Images
    without a label are skipped and not counted.
    """
    num_classes = int(predictor.num_classes)
    cm = np.zeros((num_classes, num_classes), dtype=np.int64)
    ids = list(source.ids)
    started = time.perf_counter()
    done = 0
    images_scored = 0
    batch_imgs: list[np.ndarray] = []
    batch_labels: list[np.ndarray] = []

    def flush() -> None:
        nonlocal cm, images_scored
        if not batch_imgs:
            return
        probs = predictor.predict_proba(np.stack(batch_imgs))
        preds = np.asarray(probs).argmax(axis=1)
        cm += confusion_matrix(preds, np.stack(batch_labels), num_classes, ignore_index)
        images_scored += len(batch_imgs)
        batch_imgs.clear()
        batch_labels.clear()

    progress(0.0, f"evaluating {len(ids)} images")
    for sample_id in ids:
        label = source.load_label(sample_id)
        done += 1
        if label is None:
            continue
        image = source.load_image(sample_id)
        if batch_imgs and (image.shape != batch_imgs[0].shape or len(batch_imgs) >= batch_size):
            flush()
            progress(done / max(len(ids), 1), f"evaluated {images_scored}/{len(ids)}")
        batch_imgs.append(image)
        batch_labels.append(label)
    flush()
    miou, per_class = miou_from_confusion(cm, class_ids)
    seconds = time.perf_counter() - started
    progress(1.0, f"evaluated {images_scored} images, mIoU {miou:.4f}")
    return {
        "miou": miou,
        "per_class_iou": dict(sorted(per_class.items())),  # int keys; json.dump writes them as strings
        "confusion": cm.tolist(),
        "pixel_accuracy": pixel_accuracy(cm),
        "images": images_scored,
        "seconds": seconds,
    }
