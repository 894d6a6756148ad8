"""What an import folder holds, per layout: one ImportItem per image, with its label and split.

The layouts are those of ml.data (DESIGN.md "Data"); the import reads the original file bytes (their
sha256 identifies an image), so it lists files here instead of decoding through a SampleSource.
"""

from __future__ import annotations

import io
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image

from ml.data import IMAGE_SUFFIXES, S5MARS_RAW_TO_TRAIN, detect_layout, read_label_file
from server.imports import inside_root
from server.models import Split

SPLIT_FILES = {"pool": Split.pool, "train": Split.pool, "val": Split.val, "test": Split.test}


@dataclass(frozen=True)
class ImportItem:
    file_name: str
    image_path: Path
    label_path: Path | None
    split: Split
    label_reader: Callable[[Path], bytes] | None = None  # None: the label file's bytes as they are


@dataclass
class ImportPlan:
    layout: str
    items: list[ImportItem]
    skipped: list[tuple[str, str]]  # (file, reason) found while listing


def s5mars_label_png(path: Path) -> bytes:
    """S5Mars raw ids (0 = NULL, 1..9 = sky … hole) → train ids (255, 0..8) as a grey PNG."""
    raw = read_label_file(path)
    if raw.max(initial=0) > 9:
        raise ValueError(f"raw S5Mars label values must be 0..9, found {int(raw.max())}")
    buffer = io.BytesIO()
    Image.fromarray(S5MARS_RAW_TO_TRAIN[raw].astype(np.uint8), mode="L").save(buffer, format="PNG")
    return buffer.getvalue()


def _is_image(path: Path) -> bool:
    return path.suffix.lower() in IMAGE_SUFFIXES and not path.name.startswith(".")


def _split_of(root: Path) -> dict[str, Split]:
    """id → split from splits/<name>.txt; val and test win over pool where an id is listed twice."""
    assigned: dict[str, Split] = {}
    folder = root / "splits"
    if not folder.is_dir():
        return assigned
    for name in ("pool", "train", "val", "test"):
        path = folder / f"{name}.txt"
        if path.is_file():
            for line in path.read_text().splitlines():
                if line.strip():
                    assigned[line.strip()] = SPLIT_FILES[name]
    return assigned


def plan_import(root: Path, import_root: Path, layout: str, default_split: Split) -> ImportPlan:
    """Every image of `root` in `layout` ('auto' detects it), files leading outside import_root refused."""
    chosen = detect_layout(root) if layout == "auto" else layout
    skipped: list[tuple[str, str]] = []
    items: list[ImportItem] = []

    def allowed(path: Path, shown: str) -> bool:
        if inside_root(import_root, path):
            return True
        skipped.append((shown, "a symlink leading outside the import root"))
        return False

    if chosen == "plain":
        for path in sorted(p for p in root.rglob("*") if p.is_file() and _is_image(p)):
            shown = path.relative_to(root).as_posix()
            if not any(part.startswith(".") for part in path.relative_to(root).parts) and allowed(path, shown):
                items.append(ImportItem(shown, path, None, default_split))
        return ImportPlan(chosen, items, skipped)

    images_dir, labels_dir = root / "images", root / "labels"
    if not images_dir.is_dir():
        raise ValueError(f"layout {chosen!r} needs an images/ folder in {root.name!r}")
    splits = _split_of(root) if chosen == "project" else {}
    reader = s5mars_label_png if chosen == "s5mars" else None
    for path in sorted(p for p in images_dir.iterdir() if p.is_file() and _is_image(p)):
        if not allowed(path, path.name):
            continue
        label: Path | None = labels_dir / f"{path.stem}.png"
        if not label.is_file() or not allowed(label, f"labels/{label.name}"):
            label = None
        items.append(ImportItem(path.name, path, label, splits.get(path.stem, default_split), reader))
    return ImportPlan(chosen, items, skipped)
