"""SAM-Mix candidates from stored automatic masks: an ml.data.CandidateMasks over a folder of AMG JSON files
named `<sample_id>.json`, with the S5Mars selection of METHODS.md §2.6 (blurred boundary, size bounds,
predicted IoU ≥ 0.97, at most the first 11, stopping at the first small or uncertain one)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
from PIL import Image, ImageFilter

from ml.sam.auto_masks import decode_rle

# S5Mars' pixel bounds on 1200×1200 images, as shares, so other image sizes keep the same proportions.
MIN_SHARE = 1700 / 1200**2
MAX_SHARE = 512**2 / 1200**2


def select_candidates(
    records: list[dict], shape: tuple[int, int], min_iou: float = 0.97, max_index: int = 10, blur_radius: float = 5
) -> list[np.ndarray]:
    height, width = shape
    total = height * width
    chosen = []
    for index, record in enumerate(records):  # stored order: predicted IoU descending
        mask = decode_rle(record["segmentation"])
        picture = Image.fromarray(mask.astype(np.uint8) * 255)
        if mask.shape != (height, width):
            picture = picture.resize((width, height), Image.Resampling.NEAREST)
        smooth = np.asarray(picture.filter(ImageFilter.GaussianBlur(blur_radius))) > 128
        area = int(smooth.sum())
        if area > MAX_SHARE * total:
            continue
        # 'break', not 'continue', as in the S5Mars code: the rest is sorted lower.
        if area < MIN_SHARE * total or record["predicted_iou"] < min_iou or index > max_index:
            break
        chosen.append(smooth)
    return chosen


class AmgCandidateMasks:
    """CandidateMasks: (sample id, image, label) → the selected masks of `<folder>/<sample id>.json`; [] when the
    image has none stored. Decoded once per id."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self._cache: dict[str, list[np.ndarray]] = {}

    def __call__(self, sample_id: str, image: np.ndarray, label: np.ndarray | None) -> list[np.ndarray]:
        if sample_id not in self._cache:
            path = self.folder / f"{sample_id}.json"
            records = json.loads(path.read_text()) if path.is_file() else []
            self._cache[sample_id] = select_candidates(records, image.shape[:2])
        return self._cache[sample_id]
