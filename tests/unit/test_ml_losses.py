"""Loss formulas against hand computations (METHODS §2.7, §3.2)."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from ml.losses import (
    cross_entropy,
    dice_loss,
    enet_class_weights,
    hard_consistency,
    ohem_cross_entropy,
    ohem_target,
    soft_consistency,
    supervised_loss,
)

torch.set_num_threads(1)


def test_enet_weights_match_the_s5mars_table() -> None:
    # Pixel shares of METHODS §1.2 and the normalised weights given in §3.2.
    shares = np.array([10.27, 15.21, 12.89, 5.60, 51.65, 3.00, 0.36, 0.83, 0.19])
    expected = [0.42, 0.31, 0.35, 0.67, 0.11, 1.01, 2.10, 1.76, 2.26]
    weights = enet_class_weights(shares * 1000)
    assert weights.mean() == pytest.approx(1.0)
    assert weights == pytest.approx(expected, abs=0.01)


def test_enet_weights_normalise_over_present_classes() -> None:
    counts = np.array([0, 300, 100, 0])
    weights = enet_class_weights(counts)
    raw = 1 / np.log(1.02 + np.array([0.75, 0.25]))
    assert weights[1:3] == pytest.approx(raw / raw.mean())
    assert weights[0] == weights[3] == pytest.approx(weights[1:3].max())


def test_ce_ignores_255() -> None:
    logits = torch.randn(1, 3, 2, 2)
    target = torch.tensor([[[0, 255], [2, 255]]])
    manual = -(F.log_softmax(logits, 1)[0, 0, 0, 0] + F.log_softmax(logits, 1)[0, 2, 1, 0]) / 2
    assert cross_entropy(logits, target) == pytest.approx(float(manual), rel=1e-5)
    assert float(cross_entropy(logits, torch.full_like(target, 255))) == 0.0


def test_ohem_keeps_pixels_at_or_below_the_threshold() -> None:
    # p_gt per pixel chosen directly: two classes, logit difference sets the probability.
    p_gt = torch.tensor([0.1, 0.5, 0.65, 0.7, 0.8, 0.95, 0.99, 0.3])
    logits = torch.stack([torch.log(p_gt), torch.log(1 - p_gt)]).view(1, 2, 1, 8)
    target = torch.zeros(1, 1, 8, dtype=torch.long)
    target[0, 0, 7] = 255  # ignored pixel stays ignored
    kept = ohem_target(logits, target, thresh=0.7, min_kept=3) != 255
    assert kept[0, 0].tolist() == [True, True, True, True, False, False, False, False]
    # min_kept above the count under the threshold raises τ to the min_kept-th smallest p_gt.
    kept = ohem_target(logits, target, thresh=0.7, min_kept=6) != 255
    assert kept[0, 0].tolist() == [True, True, True, True, True, True, False, False]
    # Fewer valid pixels than min_kept: plain CE over every valid pixel.
    assert torch.equal(ohem_target(logits, target, thresh=0.7, min_kept=100), target)
    loss = ohem_cross_entropy(logits, target, thresh=0.7, min_kept=3)
    assert float(loss) == pytest.approx(float(-torch.log(p_gt[:4]).mean()), rel=1e-5)


def test_weighted_ohem_weights_the_kept_pixels_by_class() -> None:
    # Two hard pixels (p_gt 0.1 of class 0, 0.3 of class 1) are kept, the easy ones dropped; 'wohem' weights the
    # kept ones by class as weighted CE does, 'ohem' does not.
    p_gt = torch.tensor([0.1, 0.3, 0.95, 0.99])
    logits = torch.stack([torch.log(p_gt), torch.log(1 - p_gt)]).view(1, 2, 1, 4)
    target = torch.tensor([[[0, 0, 0, 0]]])
    logits[0, :, 0, 1] = logits[0, :, 0, 1].flip(0)  # pixel 1 is class 1 with p_gt 0.3
    target[0, 0, 1] = 1
    weights = torch.tensor([1.0, 3.0])
    nll = -torch.log(p_gt[:2])
    plain = supervised_loss(logits, target, "ohem", weights, ohem_kept=1)
    weighted = supervised_loss(logits, target, "wohem", weights, ohem_kept=1)
    assert float(plain) == pytest.approx(float(nll.mean()), rel=1e-5)
    assert float(weighted) == pytest.approx(float((nll[0] + 3 * nll[1]) / 4), rel=1e-5)
    with pytest.raises(ValueError, match="wohem"):
        supervised_loss(logits, target, "focal", weights)


def test_dice_over_present_classes() -> None:
    target = torch.tensor([[[0, 0], [1, 255]]])
    perfect = F.one_hot(torch.tensor([[[0, 0], [1, 2]]]), 3).permute(0, 3, 1, 2).float() * 50
    assert float(dice_loss(perfect, target, eps=0.0)) == pytest.approx(0.0, abs=1e-6)
    uniform = torch.zeros(1, 3, 2, 2)
    # Class 0: intersection 2/3, sums 1 + 2; class 1: 1/3, 1 + 1; class 2 absent from the target.
    expected = 1 - ((2 * (2 / 3)) / 3 + (2 * (1 / 3)) / 2) / 2
    assert float(dice_loss(uniform, target, eps=0.0)) == pytest.approx(expected, rel=1e-5)


def test_hard_consistency_counts_ignored_pixels_in_the_mean() -> None:
    logits = torch.randn(1, 3, 2, 2)
    pseudo = torch.tensor([[[1, 255], [255, 255]]])
    expected = -F.log_softmax(logits, 1)[0, 1, 0, 0] / 4
    assert float(hard_consistency(logits, pseudo)) == pytest.approx(float(expected), rel=1e-5)


def test_soft_consistency_formula() -> None:
    logits = torch.randn(2, 4, 3, 3)
    teacher = torch.randn(2, 4, 3, 3).softmax(1)
    low = torch.rand(2, 3, 3) < 0.5
    manual = -(low.unsqueeze(1) * teacher * F.log_softmax(logits, 1)).sum() / (low.sum() + 1)
    assert float(soft_consistency(logits, teacher, low)) == pytest.approx(float(manual), rel=1e-5)
    assert math.isclose(float(soft_consistency(logits, teacher, torch.zeros_like(low))), 0.0, abs_tol=1e-7)
