"""Dataset folders, sample sources, and the weak augmentation and batch streams used for training.

Three folder layouts are read (DESIGN.md "Data"):
- project: images/<id>.{jpg,png,tif}, labels/<id>.png (uint8 ids, 255 = ignore), splits/<name>.txt,
  classes.json;
- s5mars: the S5Mars release, label PNGs with raw ids 0 = NULL and 1..9 = sky … hole (grey or palette);
- plain: a folder of images and nothing else.

Batches are a pure function of (seed, step), so a resumed run draws exactly the batches it would have
drawn without the interruption.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import numpy as np
import torch
from PIL import Image

from ml.interfaces import IGNORE_INDEX, ClassInfo, SampleSource

IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".tif", ".tiff")
Layout = Literal["project", "s5mars", "plain"]

S5MARS_CLASSES: list[ClassInfo] = [
    ClassInfo(0, "sky", (107, 142, 35)),
    ClassInfo(1, "ridge", (128, 64, 128)),
    ClassInfo(2, "soil", (220, 20, 60)),
    ClassInfo(3, "sand", (152, 251, 152)),
    ClassInfo(4, "bedrock", (119, 11, 32)),
    ClassInfo(5, "rock", (20, 60, 60)),
    ClassInfo(6, "rover", (15, 51, 252)),
    ClassInfo(7, "trace", (22, 220, 60)),
    ClassInfo(8, "hole", (152, 21, 12)),
]

# S5Mars raw label value → train id (METHODS §1.2): 0 is NULL (unlabelled).
S5MARS_RAW_TO_TRAIN = np.array([IGNORE_INDEX, 0, 1, 2, 3, 4, 5, 6, 7, 8], dtype=np.uint8)


# ----------------------------------------------------------------------------------------- files


def read_image_file(path: Path) -> np.ndarray:
    """H×W×3 uint8 RGB whatever the file's mode (grey, palette, RGBA, 16-bit TIFF)."""
    with Image.open(path) as im:
        if im.mode in ("I;16", "I;16B", "I", "F"):
            arr = np.asarray(im, dtype=np.float64)
            span = max(float(arr.max() - arr.min()), 1e-9)
            arr = ((arr - arr.min()) / span * 255).astype(np.uint8)
            return np.repeat(arr[..., None], 3, axis=2)
        return np.asarray(im.convert("RGB"), dtype=np.uint8).copy()


def read_label_file(path: Path) -> np.ndarray:
    """H×W uint8 class ids as stored: palette PNGs give their indices, never a colour conversion."""
    with Image.open(path) as im:
        if im.mode not in ("L", "P", "I", "I;16"):
            raise ValueError(f"{path}: label PNG must be single-channel (grey or palette), got mode {im.mode}")
        arr = np.asarray(im)
    if arr.max(initial=0) > 255:
        raise ValueError(f"{path}: label values above 255")
    return arr.astype(np.uint8)


def read_classes(root: Path) -> list[ClassInfo]:
    """The class list of a dataset folder: classes.json when present, else the S5Mars classes."""
    path = Path(root) / "classes.json"
    if not path.exists():
        return list(S5MARS_CLASSES)
    data = json.loads(path.read_text())
    entries = data["classes"] if isinstance(data, dict) else data
    return [ClassInfo(int(c["id"]), str(c["name"]), tuple(int(v) for v in c["color"])) for c in entries]


def write_classes(root: Path, classes: Sequence[ClassInfo], ignore_index: int = IGNORE_INDEX) -> None:
    payload = {
        "ignore_index": ignore_index,
        "classes": [{"id": c.id, "name": c.name, "color": list(c.color)} for c in classes],
    }
    (Path(root) / "classes.json").write_text(json.dumps(payload, indent=1) + "\n")


def _images_by_id(folder: Path) -> dict[str, Path]:
    found: dict[str, Path] = {}
    for path in sorted(folder.iterdir()):
        if path.is_file() and path.suffix.lower() in IMAGE_SUFFIXES and not path.name.startswith("."):
            if path.stem in found:
                raise ValueError(f"two images share the id {path.stem!r} in {folder}")
            found[path.stem] = path
    return found


def detect_layout(root: Path) -> Layout:
    """'project', 's5mars' or 'plain'.

    A folder with images/ is a project when it has classes.json or splits/; without them it is the
    S5Mars release when its label PNGs hold raw values 0..9 only (a project label marks unlabelled
    pixels 255). A folder without images/ is a plain folder of images.
    """
    root = Path(root)
    if not root.is_dir():
        raise FileNotFoundError(f"dataset folder {root} does not exist")
    if (root / "images").is_dir():
        if (root / "classes.json").exists() or (root / "splits").is_dir():
            return "project"
        if (root / "labels").is_dir() and _labels_look_raw_s5mars(root / "labels"):
            return "s5mars"
        return "project"
    return "plain"


def _labels_look_raw_s5mars(label_dir: Path, sample: int = 8) -> bool:
    """S5Mars raw labels only hold 0..9; a project label with 255 (or any id > 9) is not one."""
    paths = sorted(label_dir.glob("*.png"))[:sample]
    return bool(paths) and all(read_label_file(p).max(initial=0) <= 9 for p in paths)


def read_split(root: Path, split: str) -> list[str]:
    path = Path(root) / "splits" / f"{split}.txt"
    if not path.exists():
        raise FileNotFoundError(f"split {split!r} not found: {path}")
    return [line.strip() for line in path.read_text().splitlines() if line.strip()]


# --------------------------------------------------------------------------------------- sources


class FolderSource:
    """Images (and labels) of a dataset folder; `label_map` turns stored values into train ids."""

    def __init__(
        self,
        image_paths: dict[str, Path],
        label_paths: dict[str, Path] | None = None,
        label_map: np.ndarray | None = None,
    ) -> None:
        self._images = image_paths
        self._labels = label_paths or {}
        self._label_map = label_map
        self._ids = list(image_paths)

    @property
    def ids(self) -> Sequence[str]:
        return self._ids

    def load_image(self, sample_id: str) -> np.ndarray:
        return read_image_file(self._images[sample_id])

    def load_label(self, sample_id: str) -> np.ndarray | None:
        path = self._labels.get(sample_id)
        if path is None:
            return None
        raw = read_label_file(path)
        if self._label_map is None:
            return raw
        if raw.max(initial=0) >= len(self._label_map):
            raise ValueError(f"{path}: raw label values {sorted(set(np.unique(raw)))} exceed 0..9")
        return self._label_map[raw]


class SubsetSource:
    """The given ids of another source, in the given order."""

    def __init__(self, source: SampleSource, ids: Sequence[str]) -> None:
        known = set(source.ids)
        missing = [i for i in ids if i not in known]
        if missing:
            raise KeyError(f"{len(missing)} ids not in the source, e.g. {missing[:3]}")
        self._source = source
        self._ids = list(ids)

    @property
    def ids(self) -> Sequence[str]:
        return self._ids

    def load_image(self, sample_id: str) -> np.ndarray:
        return self._source.load_image(sample_id)

    def load_label(self, sample_id: str) -> np.ndarray | None:
        return self._source.load_label(sample_id)


class InMemorySource:
    """Arrays held in dictionaries (tests, the simulator, images fetched from the database)."""

    def __init__(self, images: dict[str, np.ndarray], labels: dict[str, np.ndarray] | None = None) -> None:
        self._images = images
        self._labels = labels or {}
        self._ids = list(images)

    @property
    def ids(self) -> Sequence[str]:
        return self._ids

    def load_image(self, sample_id: str) -> np.ndarray:
        return self._images[sample_id]

    def load_label(self, sample_id: str) -> np.ndarray | None:
        return self._labels.get(sample_id)


class CachedSource:
    """Keeps decoded images and labels in memory after the first read, up to `max_bytes` in all;
    beyond that, samples are read from the source every time (so a large pool cannot exhaust memory)."""

    def __init__(self, source: SampleSource, max_bytes: int = 2 * 1024**3) -> None:
        self._source = source
        self._max_bytes = max_bytes
        self._bytes = 0
        self._images: dict[str, np.ndarray] = {}
        self._labels: dict[str, np.ndarray | None] = {}

    @property
    def ids(self) -> Sequence[str]:
        return self._source.ids

    def _room_for(self, array: np.ndarray | None) -> bool:
        size = 0 if array is None else array.nbytes
        if self._bytes + size > self._max_bytes:
            return False
        self._bytes += size
        return True

    def load_image(self, sample_id: str) -> np.ndarray:
        cached = self._images.get(sample_id)
        if cached is not None:
            return cached
        image = self._source.load_image(sample_id)
        if self._room_for(image):
            self._images[sample_id] = image
        return image

    def load_label(self, sample_id: str) -> np.ndarray | None:
        if sample_id in self._labels:
            return self._labels[sample_id]
        label = self._source.load_label(sample_id)
        if self._room_for(label):
            self._labels[sample_id] = label
        return label


def open_dataset(root: Path, split: str | None = None) -> SampleSource:
    """A SampleSource over a dataset folder of any of the three layouts, optionally one split of it."""
    root = Path(root)
    layout = detect_layout(root)
    if layout == "plain":
        source: FolderSource = FolderSource(_images_by_id(root))
    else:
        images = _images_by_id(root / "images")
        label_dir = root / "labels"
        labels = {p.stem: p for p in sorted(label_dir.glob("*.png")) if p.stem in images} if label_dir.is_dir() else {}
        source = FolderSource(images, labels, S5MARS_RAW_TO_TRAIN if layout == "s5mars" else None)
    if split is None:
        return source
    if not (root / "splits").is_dir():
        raise FileNotFoundError(f"{root} has no splits/ folder, so split {split!r} cannot be read")
    return SubsetSource(source, read_split(root, split))


def label_pixel_counts(source: SampleSource, num_classes: int) -> np.ndarray:
    """Pixel count per class over the labels of a source (255 and out-of-range values skipped)."""
    counts = np.zeros(num_classes, dtype=np.int64)
    for sample_id in source.ids:
        label = source.load_label(sample_id)
        if label is not None:
            counts += np.bincount(label.reshape(-1), minlength=256)[:num_classes]
    return counts


# ---------------------------------------------------------------------------------- augmentation


@dataclass
class WeakView:
    """One augmented sample: image H×W×3 uint8, label (255 where unknown), valid = not padding."""

    image: np.ndarray
    label: np.ndarray
    valid: np.ndarray
    mask: np.ndarray | None = None  # an extra binary mask transformed with the same geometry


def weak_augment(
    image: np.ndarray,
    label: np.ndarray | None,
    rng: np.random.Generator,
    crop_size: int,
    scale_range: tuple[float, float],
    pad_value: tuple[int, int, int] = (127, 127, 127),
    mask: np.ndarray | None = None,
    flip: bool = True,
    focus: tuple[int, int] | None = None,
) -> WeakView:
    """Random rescale (one factor for both sides), horizontal flip, random crop with padding.

    The image is resized bilinearly, label and mask with nearest neighbour; padding fills the image
    with `pad_value` (the network's mean colour, 0 after normalisation) and the label with 255. `focus`: a (row,
    column) of the original image that the crop must contain (class-balanced crops of a rare class).
    """
    h, w = image.shape[:2]
    if label is None:
        label = np.full((h, w), IGNORE_INDEX, dtype=np.uint8)
    if label.shape != (h, w):
        raise ValueError(f"label shape {label.shape} differs from image shape {(h, w)}")
    scale = float(rng.uniform(*scale_range)) if scale_range[0] != scale_range[1] else float(scale_range[0])
    nh, nw = max(1, round(h * scale)), max(1, round(w * scale))
    if (nh, nw) != (h, w):
        image = np.asarray(Image.fromarray(image).resize((nw, nh), Image.Resampling.BILINEAR))
        label = np.asarray(Image.fromarray(label).resize((nw, nh), Image.Resampling.NEAREST))
        if mask is not None:
            mask = np.asarray(Image.fromarray(mask.astype(np.uint8)).resize((nw, nh), Image.Resampling.NEAREST))
    flipped = flip and rng.random() < 0.5
    if flipped:
        image, label = image[:, ::-1], label[:, ::-1]
        mask = mask[:, ::-1] if mask is not None else None

    out_image = np.empty((crop_size, crop_size, 3), dtype=np.uint8)
    out_image[:] = np.asarray(pad_value, dtype=np.uint8)
    out_label = np.full((crop_size, crop_size), IGNORE_INDEX, dtype=np.uint8)
    out_valid = np.zeros((crop_size, crop_size), dtype=bool)
    out_mask = np.zeros((crop_size, crop_size), dtype=bool) if mask is not None else None
    # Where the resized image is larger, pick a random window; where smaller, place it at a random offset.
    y_src = int(rng.integers(0, nh - crop_size + 1)) if nh > crop_size else 0
    x_src = int(rng.integers(0, nw - crop_size + 1)) if nw > crop_size else 0
    if focus is not None:
        fy = min(nh - 1, int(focus[0] * nh / h))
        fx = min(nw - 1, int(focus[1] * nw / w))
        fx = nw - 1 - fx if flipped else fx
        if nh > crop_size:
            y_src = int(rng.integers(max(0, fy - crop_size + 1), min(nh - crop_size, fy) + 1))
        if nw > crop_size:
            x_src = int(rng.integers(max(0, fx - crop_size + 1), min(nw - crop_size, fx) + 1))
    y_dst = int(rng.integers(0, crop_size - nh + 1)) if nh < crop_size else 0
    x_dst = int(rng.integers(0, crop_size - nw + 1)) if nw < crop_size else 0
    ch, cw = min(nh, crop_size), min(nw, crop_size)
    dst = (slice(y_dst, y_dst + ch), slice(x_dst, x_dst + cw))
    src = (slice(y_src, y_src + ch), slice(x_src, x_src + cw))
    out_image[dst] = image[src]
    out_label[dst] = label[src]
    out_valid[dst] = True
    if out_mask is not None and mask is not None:
        out_mask[dst] = mask[src] > 0
    return WeakView(out_image, out_label, out_valid, out_mask)


# ----------------------------------------------------------------------------------- batch streams

# Candidate object masks for SAM-Mix, per labelled sample: (id, image, label) → list of H×W bool masks.
CandidateMasks = Callable[[str, np.ndarray, np.ndarray | None], list[np.ndarray]]


@dataclass
class Batch:
    """A collated batch: image B×3×H×W float 0..255, label B×H×W int64, valid B×H×W bool."""

    ids: list[str]
    image: torch.Tensor
    label: torch.Tensor
    valid: torch.Tensor
    mask: torch.Tensor | None = None  # B×H×W bool, SAM-Mix object masks

    def to(self, device: torch.device) -> Batch:
        return Batch(
            self.ids,
            self.image.to(device, non_blocking=True),
            self.label.to(device, non_blocking=True),
            self.valid.to(device, non_blocking=True),
            self.mask.to(device, non_blocking=True) if self.mask is not None else None,
        )


def collate(ids: list[str], views: Sequence[WeakView]) -> Batch:
    image = torch.from_numpy(np.stack([v.image for v in views])).permute(0, 3, 1, 2).float()
    label = torch.from_numpy(np.stack([v.label for v in views]).astype(np.int64))
    valid = torch.from_numpy(np.stack([v.valid for v in views]))
    masks = [v.mask for v in views]
    mask = torch.from_numpy(np.stack(masks)) if all(m is not None for m in masks) else None
    return Batch(ids, image, label, valid, mask)


class WeakAugDataset(torch.utils.data.Dataset):
    """Map-style dataset over a SampleSource: position → weakly augmented sample.

    A position is an index into the endless cycled stream of samples; the sample id comes from a
    per-epoch permutation and the augmentation from a generator seeded by (seed, stream, position),
    so any position can be drawn again identically. `label_source` supplies labels (the unlabelled
    stream uses it to look up ground truth for images that are also labelled, never the pool's own).
    """

    def __init__(
        self,
        source: SampleSource,
        crop_size: int,
        scale_range: tuple[float, float],
        seed: int,
        stream: int,
        pad_value: tuple[int, int, int] = (127, 127, 127),
        label_source: SampleSource | None = None,
        candidate_masks: CandidateMasks | None = None,
        rare_crop: float = 0.0,
        class_weights: np.ndarray | None = None,
    ) -> None:
        self.source = source
        self.ids = list(source.ids)
        if not self.ids:
            raise ValueError("cannot draw training batches from an empty source")
        self.crop_size = crop_size
        self.scale_range = scale_range
        self.seed = seed
        self.stream = stream
        self.pad_value = pad_value
        self.label_source = label_source
        self._label_ids = set(label_source.ids) if label_source is not None else None
        self.candidate_masks = candidate_masks
        # Class-balanced crops: with probability `rare_crop` a crop is centred near a pixel of the image's
        # rarest labelled class (the largest of `class_weights`), so a class under 1% of the pixels is seen.
        self.rare_crop = float(rare_crop)
        self.class_weights = class_weights
        self._perm_cache: tuple[int, np.ndarray] | None = None

    def __len__(self) -> int:
        return len(self.ids)

    def sample_id(self, position: int) -> str:
        epoch, offset = divmod(position, len(self.ids))
        if self._perm_cache is None or self._perm_cache[0] != epoch:
            perm = np.random.default_rng([self.seed, self.stream, epoch, 0xE90C]).permutation(len(self.ids))
            self._perm_cache = (epoch, perm)
        return self.ids[int(self._perm_cache[1][offset])]

    def _label(self, sample_id: str) -> np.ndarray | None:
        if self._label_ids is None:
            return self.source.load_label(sample_id)
        if sample_id in self._label_ids and self.label_source is not None:
            return self.label_source.load_label(sample_id)
        return None

    def __getitem__(self, position: int) -> tuple[str, WeakView]:
        sample_id = self.sample_id(position)
        rng = np.random.default_rng([self.seed, self.stream, position, 0xA06])
        image = self.source.load_image(sample_id)
        label = self._label(sample_id)
        mask = None
        if self.candidate_masks is not None:
            candidates = self.candidate_masks(sample_id, image, label)
            mask = (
                candidates[int(rng.integers(len(candidates)))] if candidates else np.zeros(image.shape[:2], dtype=bool)
            )
        focus = self._rare_focus(label, rng) if self.rare_crop > 0 else None
        view = weak_augment(image, label, rng, self.crop_size, self.scale_range, self.pad_value, mask, focus=focus)
        return sample_id, view

    def _rare_focus(self, label: np.ndarray | None, rng: np.random.Generator) -> tuple[int, int] | None:
        if label is None or self.class_weights is None or rng.random() >= self.rare_crop:
            return None
        present = [int(c) for c in np.unique(label) if c != IGNORE_INDEX and c < len(self.class_weights)]
        if not present:
            return None
        rarest = max(present, key=lambda c: self.class_weights[c])  # type: ignore[index]
        ys, xs = np.nonzero(label == rarest)
        k = int(rng.integers(len(ys)))
        return int(ys[k]), int(xs[k])

    def batch(self, step: int, batch_size: int) -> Batch:
        """The batch of a training step: positions step·B … step·B + B − 1 of the cycled stream."""
        items = [self[step * batch_size + k] for k in range(batch_size)]
        return collate([i for i, _ in items], [v for _, v in items])

    def batches(self, start_step: int, batch_size: int) -> Iterator[Batch]:
        """The infinite cycled stream from `start_step` on (METHODS §7.1: no equal-length assumption)."""
        step = start_step
        while True:
            yield self.batch(step, batch_size)
            step += 1
