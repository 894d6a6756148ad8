"""Batch-level strong augmentations: AugIN (METHODS §2.5), CPS CutMix boxes (§3.1), the S5Mars
SAM-Mix object paste with its CutMix box (§2.6), ST++'s photometric perturbation of pseudo-labelled images, and a
paste of the rarest labelled class onto them.

Until SAM automatic masks are available, candidate objects for SAM-Mix are the connected components
of each labelled image's classes (`label_component_masks`); anything with the `CandidateMasks`
signature (ml.data) can replace it.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch
from scipy import ndimage

from ml.interfaces import IGNORE_INDEX

AUGIN_MEAN, AUGIN_STD, AUGIN_BOTH = 0, 1, 2


def augin(
    x: torch.Tensor,
    kind: int = AUGIN_STD,
    eps: float = 1e-6,
    generator: torch.Generator | None = None,
    partner: torch.Tensor | None = None,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Swap per-image, per-channel statistics with a random partner in the batch.

    kind 0: x' = (x − μ) + μ_π;  1 (AugIN-σ): x' = (x − μ)/σ · σ_π + μ;  2: x' = (x − μ)/σ · σ_π + μ_π.
    σ is the population std over H×W (+eps). Returns (x', π). Per-channel affine input normalisation
    commutes with it, so it may run on 0..255 inputs as well as on normalised ones.
    """
    b = x.shape[0]
    perm = partner if partner is not None else torch.randperm(b, generator=generator).to(x.device)
    mu = x.mean(dim=(2, 3), keepdim=True)
    # mean((x − μ)²) equals the original's mean(x²) − μ² but does not cancel catastrophically in float32.
    sigma = (x - mu).pow(2).mean(dim=(2, 3), keepdim=True).sqrt() + eps
    if kind == AUGIN_MEAN:
        return x - mu + mu[perm], perm
    if kind == AUGIN_STD:
        return (x - mu) / sigma * sigma[perm] + mu, perm
    if kind == AUGIN_BOTH:
        return (x - mu) / sigma * sigma[perm] + mu[perm], perm
    raise ValueError(f"AugIN kind must be 0, 1 or 2, got {kind}")


# ------------------------------------------------------------------------------- CPS CutMix boxes


def cutmix_boxes(
    batch: int,
    height: int,
    width: int,
    rng: np.random.Generator,
    n_boxes: int = 3,
    area_range: tuple[float, float] = (0.25, 0.5),
) -> list[list[tuple[int, int, int, int]]]:
    """Per sample, `n_boxes` boxes (y0, x0, y1, x1) inside the image, together covering a share
    p ~ U(area_range) of it before overlaps (p / n_boxes each), with a random aspect ratio (CPS's
    BoxMaskGenerator)."""
    boxes: list[list[tuple[int, int, int, int]]] = []
    for _ in range(batch):
        share = rng.uniform(*area_range)
        per_box = share / n_boxes
        sample: list[tuple[int, int, int, int]] = []
        for _ in range(n_boxes):
            # Height share in [per_box, 1] log-uniformly, width share so that the product is per_box.
            y_share = math.exp(rng.uniform(0, 1) * math.log(per_box))
            x_share = per_box / y_share
            bh = min(height, max(1, round(y_share * height)))
            bw = min(width, max(1, round(x_share * width)))
            y0 = int(rng.integers(0, height - bh + 1))
            x0 = int(rng.integers(0, width - bw + 1))
            sample.append((y0, x0, y0 + bh, x0 + bw))
        boxes.append(sample)
    return boxes


def boxes_to_mask(boxes: list[list[tuple[int, int, int, int]]], height: int, width: int) -> torch.Tensor:
    """B×H×W bool, True inside any of a sample's boxes."""
    mask = torch.zeros(len(boxes), height, width, dtype=torch.bool)
    for i, sample in enumerate(boxes):
        for y0, x0, y1, x1 in sample:
            mask[i, y0:y1, x0:x1] = True
    return mask


# ----------------------------------------------------------------------------- rare-class paste


def paste_rare_class(
    image: torch.Tensor,
    target: torch.Tensor,
    source_image: torch.Tensor,
    source_label: torch.Tensor,
    class_weights: torch.Tensor,
    share: float,
    rng: np.random.Generator,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Paste human-labelled pixels of the rarest class onto a pseudo-labelled batch (a ClassMix restricted to the
    rare class and to human labels). The rarest class is the labelled set's, the one of largest `class_weights`
    (ml.losses.enet_class_weights; an absent class shares that weight but never appears in a label). Each of the B
    images of `image` / `target` (B×3×H×W / B×H×W, as large as the labelled crops) receives, with probability
    `share`, that class's pixels of one crop of `source_label` (B_l×H×W, 255 ignored) that holds it, image and
    label, where they are. A labelled batch without the class pastes nothing. A 0.9 threshold leaves a student
    almost no rock from its teacher; this gives it the labelled rock on other ground."""
    if share <= 0:
        return image, target
    present = [int(c) for c in torch.unique(source_label).tolist() if 0 <= c < class_weights.numel()]
    rare = max(present, key=lambda c: float(class_weights[c]), default=None)
    # Exact: enet_class_weights gives the rarest present class and the absent ones the very same value.
    if rare is None or float(class_weights[rare]) < float(class_weights.max()):
        return image, target
    masks = source_label == rare
    holders = [int(j) for j in torch.nonzero(masks.flatten(1).any(dim=1)).flatten().tolist()]
    image, target = image.clone(), target.clone()
    for i in range(image.shape[0]):
        if rng.random() >= share:
            continue
        j = holders[int(rng.integers(len(holders)))]
        m = masks[j]
        image[i] = torch.where(m, source_image[j], image[i])
        target[i] = torch.where(m, source_label[j], target[i])
    return image, target


# ---------------------------------------------------------------------- photometric (ST++)


def photometric(
    x: torch.Tensor,
    rng: np.random.Generator,
    jitter: float = 0.5,
    p_jitter: float = 0.8,
    p_blur: float = 0.5,
    sigma_range: tuple[float, float] = (0.1, 2.0),
) -> torch.Tensor:
    """ST++'s strong perturbation of a pseudo-labelled batch (B×3×H×W, 0..255), geometry untouched so the labels
    still fit: with probability `p_jitter` contrast then brightness factors from U(1 ± jitter) about the image's
    own mean (ST++'s colour jitter without hue and saturation: Navcam images are grey), and with probability
    `p_blur` a Gaussian blur of σ ~ U(sigma_range)."""
    from torchvision.transforms.functional import gaussian_blur

    out = []
    for image in x:
        if rng.random() < p_jitter:
            contrast, brightness = rng.uniform(1 - jitter, 1 + jitter, size=2)
            mean = image.mean()
            image = ((image - mean) * float(contrast) + mean) * float(brightness)
        if rng.random() < p_blur:
            sigma = float(rng.uniform(*sigma_range))
            kernel = 2 * math.ceil(3 * sigma) + 1
            image = gaussian_blur(image, [kernel, kernel], [sigma, sigma])
        out.append(image.clamp(0, 255))
    return torch.stack(out)


# ------------------------------------------------------------------------------ S5Mars SAM-Mix


def rand_bbox(height: int, width: int, lam: float, rng: np.random.Generator) -> tuple[int, int, int, int]:
    """S5Mars box: sides (H, W)·sqrt(1 − lam), centre drawn from [size/8, size), clipped (y0, x0, y1, x1).

    The original names H and W the other way round (harmless for its square crops); here they are
    named as they are.
    """
    cut = math.sqrt(1.0 - lam)
    cut_h, cut_w = int(height * cut), int(width * cut)
    cy = int(rng.integers(height // 8, height))
    cx = int(rng.integers(width // 8, width))
    y0, y1 = np.clip([cy - cut_h // 2, cy + cut_h // 2], 0, height)
    x0, x1 = np.clip([cx - cut_w // 2, cx + cut_w // 2], 0, width)
    return int(y0), int(x0), int(y1), int(x1)


@dataclass
class MixTargets:
    """What the student is trained towards on the strong unlabelled batch."""

    image: torch.Tensor  # B×3×H×W
    pseudo: torch.Tensor  # B×H×W int64 (255 = no target)
    conf: torch.Tensor  # B×H×W
    probs: torch.Tensor  # B×C×H×W teacher soft maps


def sam_mix(
    unlabeled: MixTargets,
    objects: MixTargets,
    object_masks: torch.Tensor,
    rng: np.random.Generator,
    min_paste_area: int = 100,
    beta: float = 4.0,
) -> MixTargets:
    """Paste object j's masked pixels onto sample i (j = π(i)) where the mask is big enough, then always
    a CutMix box from the original unlabelled sample j (lam ~ Beta(4,4), one per batch; METHODS §2.6)."""
    b, _, h, w = unlabeled.image.shape
    n_obj = objects.image.shape[0]
    perm = rng.permutation(b)
    lam = float(rng.beta(beta, beta))
    image, pseudo = unlabeled.image.clone(), unlabeled.pseudo.clone()
    conf, probs = unlabeled.conf.clone(), unlabeled.probs.clone()
    for i in range(b):
        j = int(perm[i])
        o = j % n_obj  # = j when the labelled and unlabelled batches are equally large, as in S5Mars
        m = object_masks[o]
        if int(m.sum()) >= min_paste_area:
            image[i] = torch.where(m, objects.image[o], image[i])
            pseudo[i] = torch.where(m, objects.pseudo[o], pseudo[i])
            conf[i] = torch.where(m, objects.conf[o], conf[i])
            probs[i] = torch.where(m, objects.probs[o], probs[i])
        y0, x0, y1, x1 = rand_bbox(h, w, lam, rng)
        box = (slice(y0, y1), slice(x0, x1))
        image[i][:, box[0], box[1]] = unlabeled.image[j][:, box[0], box[1]]
        pseudo[i][box] = unlabeled.pseudo[j][box]
        conf[i][box] = unlabeled.conf[j][box]
        probs[i][:, box[0], box[1]] = unlabeled.probs[j][:, box[0], box[1]]
    return MixTargets(image, pseudo, conf, probs)


def label_component_masks(
    label: np.ndarray | None,
    min_share: float = 1700 / 1200**2,
    max_share: float = 512**2 / 1200**2,
    max_count: int = 11,
    ignore_index: int = IGNORE_INDEX,
) -> list[np.ndarray]:
    """Connected components of each labelled class as candidate objects, largest first.

    The area bounds are the S5Mars SAM filter (1700 px ≤ area ≤ 512² on 1200² images) as shares of
    the image, and at most 11 are kept, as the S5Mars filter keeps the first 11 masks.
    """
    if label is None:
        return []
    total = label.size
    masks: list[tuple[int, np.ndarray]] = []
    for class_id in np.unique(label):
        if class_id == ignore_index:
            continue
        components, count = ndimage.label(label == class_id)
        if count == 0:
            continue
        areas = np.bincount(components.reshape(-1), minlength=count + 1)
        for comp in np.flatnonzero((areas >= min_share * total) & (areas <= max_share * total)):
            if comp == 0:
                continue
            masks.append((int(areas[comp]), components == comp))
    masks.sort(key=lambda item: -item[0])
    return [m for _, m in masks[:max_count]]


class LabelComponentMasks:
    """CandidateMasks from label components, computed once per labelled id."""

    def __init__(self) -> None:
        self._cache: dict[str, list[np.ndarray]] = {}

    def __call__(self, sample_id: str, image: np.ndarray, label: np.ndarray | None) -> list[np.ndarray]:
        if sample_id not in self._cache:
            self._cache[sample_id] = label_component_masks(label)
        return self._cache[sample_id]
