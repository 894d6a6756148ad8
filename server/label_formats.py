"""What a stored mask (class-index PNG) turns into for REST clients: colour PNG, COCO RLE, S5Mars raw ids,
and the small rules around them (ETags, unique file names). Pure functions of arrays and bytes.

COCO category ids are the project's class id + 1: COCO tools treat category 0 as background or reject it,
and every entry also carries its `class_id`, so neither numbering has to be guessed.
"""

from __future__ import annotations

import hashlib
import io
import json
import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from PIL import Image as PILImage
from pycocotools import mask as coco_mask

from server.store.errors import Conflict

# The S5Mars release's classes in raw-id order 1..9 (0 is NULL): the same list as ml.data.S5MARS_CLASSES,
# written out here because importing ml.data would load torch into the API.
S5MARS_CLASS_NAMES: tuple[str, ...] = ("sky", "ridge", "soil", "sand", "bedrock", "rock", "rover", "trace", "hole")
S5MARS_NULL = 0

IMAGE_EXTENSIONS = {"PNG": "png", "JPEG": "jpg", "TIFF": "tif"}


def decode_mask(png: bytes) -> np.ndarray:
    """H×W uint8 class ids of a stored mask (always mode L, see server.store.masks.check_mask_png)."""
    with PILImage.open(io.BytesIO(png)) as picture:
        return np.asarray(picture, dtype=np.uint8)


def encode_png(pixels: np.ndarray) -> bytes:
    buffer = io.BytesIO()
    PILImage.fromarray(pixels).save(buffer, format="PNG")
    return buffer.getvalue()


def class_palette(classes: Sequence[dict[str, Any]]) -> np.ndarray:
    """256×3 lookup table: each class id to its colour; the ignore index and unused ids stay black."""
    palette = np.zeros((256, 3), np.uint8)
    for entry in classes:
        palette[int(entry["id"])] = [int(v) for v in entry["color"]]
    return palette


def color_png(ids: np.ndarray, classes: Sequence[dict[str, Any]]) -> bytes:
    return encode_png(class_palette(classes)[ids])


def s5mars_mismatch(classes: Sequence[dict[str, Any]]) -> str | None:
    """Why a project's classes cannot be written as S5Mars raw ids, or None when they can.

    The rule: exactly the nine S5Mars classes, ids 0..8 in the release's order, names equal ignoring case
    and surrounding spaces. Colours may differ; anything else would give raw ids that mean other classes."""
    names = [str(entry["name"]).strip().lower() for entry in sorted(classes, key=lambda e: int(e["id"]))]
    if tuple(names) == S5MARS_CLASS_NAMES:
        return None
    return (
        f"the s5mars format needs the 9 S5Mars classes in order ({', '.join(S5MARS_CLASS_NAMES)}); "
        f"this project has {len(names)}: {', '.join(names)}. Export it as format=project or format=coco"
    )


def check_s5mars_classes(classes: Sequence[dict[str, Any]]) -> None:
    problem = s5mars_mismatch(classes)
    if problem is not None:
        raise Conflict(problem)


def s5mars_lookup(ignore_index: int) -> np.ndarray:
    """256-entry table train id → raw id: k → k + 1 for the nine classes, the ignore index → 0 (NULL).
    The inverse of ml.data.S5MARS_RAW_TO_TRAIN, which the S5Mars import uses."""
    table = np.zeros(256, np.uint8)
    table[: len(S5MARS_CLASS_NAMES)] = np.arange(1, len(S5MARS_CLASS_NAMES) + 1, dtype=np.uint8)
    table[ignore_index] = S5MARS_NULL
    return table


def s5mars_raw_png(ids: np.ndarray, ignore_index: int) -> bytes:
    return encode_png(s5mars_lookup(ignore_index)[ids])


@dataclass(frozen=True)
class ClassRle:
    class_id: int
    category_id: int  # class_id + 1 (COCO convention, see the module docstring)
    name: str
    counts: str  # COCO compressed RLE, column-major
    size: tuple[int, int]  # (height, width)
    area: int
    bbox: tuple[float, float, float, float]  # x, y, width, height

    def segmentation(self) -> dict[str, Any]:
        return {"size": list(self.size), "counts": self.counts}


def class_rles(ids: np.ndarray, classes: Sequence[dict[str, Any]], ignore_index: int) -> list[ClassRle]:
    """One RLE per class present in the mask, in class-id order; the ignore index gets none."""
    names = {int(entry["id"]): str(entry["name"]) for entry in classes}
    present = [int(v) for v in np.unique(ids) if int(v) != ignore_index]
    if not present:
        return []
    # pycocotools wants H×W×N Fortran-ordered uint8: one plane per class, encoded in one call.
    planes = np.asfortranarray(np.stack([ids == class_id for class_id in present], axis=-1).astype(np.uint8))
    encoded = coco_mask.encode(planes)
    areas = coco_mask.area(encoded)
    boxes = coco_mask.toBbox(encoded)
    height, width = ids.shape
    return [
        ClassRle(
            class_id=class_id,
            category_id=class_id + 1,
            name=names.get(class_id, f"class {class_id}"),
            counts=rle["counts"].decode("ascii"),
            size=(height, width),
            area=int(area),
            bbox=(float(box[0]), float(box[1]), float(box[2]), float(box[3])),
        )
        for class_id, rle, area, box in zip(present, encoded, areas, boxes, strict=True)
    ]


def decode_rle(counts: str, size: Sequence[int]) -> np.ndarray:
    """H×W uint8 0/1 plane of one RLE (for clients' and tests' round trips)."""
    return coco_mask.decode({"size": [int(size[0]), int(size[1])], "counts": counts.encode("ascii")})


def label_etag(mask_sha256: str, label_format: str, *extra: object) -> str:
    """Strong ETag of one rendering of a mask: its sha256 and the format, plus whatever else shapes the bytes
    (the class colours for `color`; the version, provenance and class names for `rle`)."""
    if not extra:
        return f'"{mask_sha256}.{label_format}"'
    detail = hashlib.sha256(json.dumps(extra, sort_keys=True, default=str).encode()).hexdigest()[:16]
    return f'"{mask_sha256}.{label_format}.{detail}"'


def etag_matches(if_none_match: str | None, etag: str) -> bool:
    """If-None-Match uses the weak comparison (RFC 9110 §13.1.2): a list, W/ prefixes and * all count."""
    if not if_none_match:
        return False
    if if_none_match.strip() == "*":
        return True
    wanted = etag.removeprefix("W/")
    return any(tag.strip().removeprefix("W/") == wanted for tag in if_none_match.split(","))


_UNSAFE = re.compile(r"[^A-Za-z0-9._ ()+=@,-]+")


class NameAllocator:
    """Unique file-name stems for an export: the image's file-name stem, made safe for every file system;
    a later image whose stem is taken (ignoring case, as macOS and Windows do) gets `__<image id>` added.
    Fed every image of the project in import order, so a name does not depend on the export's filters."""

    def __init__(self) -> None:
        self._taken: set[str] = set()

    def allocate(self, file_name: str, image_id: int) -> str:
        base = file_name.replace("\\", "/").rsplit("/", 1)[-1]
        stem = base.rsplit(".", 1)[0] if "." in base.lstrip(".") else base
        stem = _UNSAFE.sub("_", stem).strip(" .")[:200] or f"image_{image_id}"
        candidate, extra = stem, 0
        while candidate.lower() in self._taken:
            extra += 1
            candidate = f"{stem}__{image_id}" if extra == 1 else f"{stem}__{image_id}_{extra}"
        self._taken.add(candidate.lower())
        return candidate
