"""Losses: supervised (CE, class-weighted CE, soft Dice, OHEM CE) and the S5Mars consistency terms.

All take logits B×C×H×W and integer targets B×H×W with 255 = ignore (METHODS §2.7, §3.2).
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F

from ml.interfaces import IGNORE_INDEX


def cross_entropy(
    logits: torch.Tensor,
    target: torch.Tensor,
    weight: torch.Tensor | None = None,
    ignore_index: int = IGNORE_INDEX,
) -> torch.Tensor:
    """Mean CE over the labelled pixels (weighted mean when class weights are given); 0 if none."""
    if not bool((target != ignore_index).any()):
        return logits.sum() * 0.0
    return F.cross_entropy(logits.float(), target, weight=weight, ignore_index=ignore_index)


def enet_class_weights(pixel_counts: np.ndarray, c: float = 1.02) -> np.ndarray:
    """ENet weights w_c = 1 / ln(c + f_c), f_c the class's share of labelled pixels, mean 1.

    The mean is taken over the classes present. An absent class never appears as a target, so its
    weight only matters through the normalisation; it gets the largest present weight instead of
    1/ln(1.02) ≈ 50, which would otherwise shrink every present weight.
    """
    counts = np.asarray(pixel_counts, dtype=np.float64)
    total = counts.sum()
    if total <= 0:
        return np.ones_like(counts)
    freq = counts / total
    present = counts > 0
    weights = 1.0 / np.log(c + freq)
    weights /= weights[present].mean()
    weights[~present] = weights[present].max()
    return weights


def dice_loss(
    logits: torch.Tensor, target: torch.Tensor, ignore_index: int = IGNORE_INDEX, eps: float = 1.0
) -> torch.Tensor:
    """1 − soft Dice, averaged over the classes present in the target; ignored pixels do not count."""
    num_classes = logits.shape[1]
    valid = target != ignore_index
    if not bool(valid.any()):
        return logits.sum() * 0.0
    probs = logits.float().softmax(dim=1) * valid.unsqueeze(1)
    one_hot = F.one_hot(torch.where(valid, target, 0), num_classes).permute(0, 3, 1, 2).float()
    one_hot = one_hot * valid.unsqueeze(1)
    intersection = (probs * one_hot).sum(dim=(0, 2, 3))
    cardinality = probs.sum(dim=(0, 2, 3)) + one_hot.sum(dim=(0, 2, 3))
    dice = (2 * intersection + eps) / (cardinality + eps)
    present = one_hot.sum(dim=(0, 2, 3)) > 0
    return (1 - dice[present]).mean()


def ohem_min_kept(batch_pixels: int, reference_kept: int = 100_000, reference_pixels: int = 8 * 512 * 512) -> int:
    """S5Mars keeps ≥100k of 8·512² pixels (METHODS §7.2); keep the same share at other batch sizes."""
    return max(1, round(reference_kept * batch_pixels / reference_pixels))


def ohem_cross_entropy(
    logits: torch.Tensor,
    target: torch.Tensor,
    thresh: float = 0.7,
    min_kept: int = 100_000,
    weight: torch.Tensor | None = None,
    ignore_index: int = IGNORE_INDEX,
) -> torch.Tensor:
    """Online hard example mining CE (S5Mars `OhemCrossEntropy2dTensor`, METHODS §2.7).

    Over the labelled pixels, p_gt is the softmax probability of the true class; with
    τ = max(thresh, the min_kept-th smallest p_gt) only pixels with p_gt ≤ τ count. With fewer
    labelled pixels than min_kept it is plain CE.
    """
    return cross_entropy(logits, ohem_target(logits, target, thresh, min_kept, ignore_index), weight, ignore_index)


def ohem_target(
    logits: torch.Tensor, target: torch.Tensor, thresh: float, min_kept: int, ignore_index: int = IGNORE_INDEX
) -> torch.Tensor:
    """The target with every pixel OHEM drops set to ignore_index."""
    valid = target != ignore_index
    num_valid = int(valid.sum())
    if num_valid == 0 or num_valid < min_kept:
        return target
    with torch.no_grad():
        probs = logits.detach().float().softmax(dim=1)
        p_gt = probs.gather(1, torch.where(valid, target, 0).unsqueeze(1)).squeeze(1)
        p_valid = p_gt[valid]
        threshold = thresh
        if min_kept > 0:
            kth = float(torch.kthvalue(p_valid, min(num_valid, min_kept)).values)
            threshold = max(thresh, kth)
        keep = valid & (p_gt <= threshold)
    return torch.where(keep, target, torch.full_like(target, ignore_index))


def hard_consistency(logits: torch.Tensor, pseudo: torch.Tensor, ignore_index: int = IGNORE_INDEX) -> torch.Tensor:
    """CE to hard pseudo-labels, averaged over ALL pixels (ignored ones add 0 but count; METHODS §7.3)."""
    per_pixel = F.cross_entropy(logits.float(), pseudo, ignore_index=ignore_index, reduction="none")
    return per_pixel.mean()


def soft_consistency(logits: torch.Tensor, teacher_probs: torch.Tensor, low_confidence: torch.Tensor) -> torch.Tensor:
    """CE to the teacher's soft distribution on low-confidence pixels, / (their count + 1) (METHODS §2.7)."""
    log_probs = F.log_softmax(logits.float(), dim=1)
    weight = low_confidence.float().unsqueeze(1)
    return -(weight * teacher_probs.float() * log_probs).sum() / (weight.sum() + 1.0)


def supervised_loss(
    logits: torch.Tensor,
    target: torch.Tensor,
    kind: str,
    class_weights: torch.Tensor | None,
    dice_weight: float = 1.0,
    ohem_thresh: float = 0.7,
    ohem_kept: int | None = None,
    ignore_index: int = IGNORE_INDEX,
) -> torch.Tensor:
    """The supervised criteria by name: 'ce', 'wce', 'wce+dice' (CPS-Mars default), 'ohem' (S5Mars default) and
    'wohem': OHEM whose kept pixels are weighted by class, because plain OHEM keeps the hardest pixels of the common
    classes and never learnt rock in our S5Mars runs (bench/results/label_efficiency/NOTES.md)."""
    if kind == "ce":
        return cross_entropy(logits, target, None, ignore_index)
    if kind == "wce":
        return cross_entropy(logits, target, class_weights, ignore_index)
    if kind == "wce+dice":
        return cross_entropy(logits, target, class_weights, ignore_index) + dice_weight * dice_loss(
            logits, target, ignore_index
        )
    if kind in ("ohem", "wohem"):
        kept = ohem_kept if ohem_kept is not None else ohem_min_kept(target.numel())
        weight = class_weights if kind == "wohem" else None
        return ohem_cross_entropy(logits, target, ohem_thresh, kept, weight, ignore_index)
    raise ValueError(f"unknown supervised loss {kind!r}; choose ce, wce, wce+dice, ohem or wohem")
