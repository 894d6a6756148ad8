"""Strong augmentations: AugIN, CPS CutMix boxes, S5Mars box and SAM-Mix paste, candidate masks, rare-class paste."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from ml.ssl.strong_aug import (
    MixTargets,
    augin,
    boxes_to_mask,
    cutmix_boxes,
    label_component_masks,
    paste_rare_class,
    rand_bbox,
    sam_mix,
)

torch.set_num_threads(1)


def _stats(x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    return x.mean(dim=(2, 3)), x.std(dim=(2, 3), unbiased=False)


def test_augin_sigma_takes_partner_std_and_keeps_own_mean() -> None:
    torch.manual_seed(0)
    x = torch.randn(4, 3, 16, 16) * torch.tensor([1.0, 5.0, 20.0]).view(1, 3, 1, 1) + 100
    partner = torch.tensor([2, 0, 3, 1])
    out, perm = augin(x, kind=1, partner=partner)
    assert torch.equal(perm, partner)
    mean_in, std_in = _stats(x)
    mean_out, std_out = _stats(out)
    assert torch.allclose(mean_out, mean_in, atol=1e-3)
    assert torch.allclose(std_out, std_in[partner], rtol=1e-4)


def test_augin_mean_and_both_variants() -> None:
    x = torch.rand(3, 3, 8, 8) * 50
    partner = torch.tensor([1, 2, 0])
    mean_in, std_in = _stats(x)
    out, _ = augin(x, kind=0, partner=partner)
    assert torch.allclose(_stats(out)[0], mean_in[partner], atol=1e-4)
    assert torch.allclose(_stats(out)[1], std_in, rtol=1e-4)
    out, _ = augin(x, kind=2, partner=partner)
    assert torch.allclose(_stats(out)[0], mean_in[partner], atol=1e-4)
    assert torch.allclose(_stats(out)[1], std_in[partner], rtol=1e-4)
    # A constant image (σ = 0) stays finite thanks to eps.
    flat, _ = augin(torch.ones(2, 3, 4, 4), kind=1)
    assert torch.isfinite(flat).all()


def test_cutmix_boxes_three_boxes_inside_with_the_cps_area() -> None:
    rng = np.random.default_rng(0)
    boxes = cutmix_boxes(50, 64, 96, rng)
    for sample in boxes:
        assert len(sample) == 3
        areas = []
        for y0, x0, y1, x1 in sample:
            assert 0 <= y0 < y1 <= 64 and 0 <= x0 < x1 <= 96
            areas.append((y1 - y0) * (x1 - x0) / (64 * 96))
        # Each box holds a third of p ~ U(0.25, 0.5), up to rounding of its sides.
        assert 0.25 / 3 * 0.8 <= areas[0] <= 0.5 / 3 * 1.25
        assert max(areas) / min(areas) < 1.3  # the three boxes share one area
    mask = boxes_to_mask(boxes, 64, 96)
    coverage = mask.float().mean(dim=(1, 2))
    assert (coverage <= 0.5 * 1.25).all() and (coverage > 0.25 / 3 * 0.8).all()


def test_rand_bbox_side_and_bounds() -> None:
    rng = np.random.default_rng(1)
    for lam in (0.3, 0.5, 0.8):
        for _ in range(20):
            y0, x0, y1, x1 = rand_bbox(64, 64, lam, rng)
            assert 0 <= y0 <= y1 <= 64 and 0 <= x0 <= x1 <= 64
            side = int(64 * np.sqrt(1 - lam))
            assert y1 - y0 <= side and x1 - x0 <= side


def _targets(value: float, label: int, b: int = 2, c: int = 3, h: int = 16, w: int = 16) -> MixTargets:
    probs = torch.zeros(b, c, h, w)
    probs[:, label] = 1.0
    return MixTargets(
        torch.full((b, 3, h, w), value), torch.full((b, h, w), label), torch.full((b, h, w), value / 100), probs
    )


def test_sam_mix_pastes_only_inside_the_mask_then_a_box_from_the_pool() -> None:
    unlabeled = _targets(10.0, 0)
    unlabeled.image[1] = 20.0  # tell the two pool images apart
    objects = _targets(50.0, 2)
    masks = torch.zeros(2, 16, 16, dtype=torch.bool)
    masks[:, 2:8, 3:9] = True
    saw_paste = saw_box = False
    for seed in range(12):
        out = sam_mix(unlabeled, objects, masks, np.random.default_rng(seed), min_paste_area=10)
        for i in range(2):
            pasted = out.image[i, 0] == 50.0
            boxed = out.image[i, 0] == unlabeled.image[1 - i, 0, 0, 0]  # a CutMix box from the other image
            untouched = out.image[i, 0] == unlabeled.image[i, 0, 0, 0]
            assert not (pasted & ~masks[i]).any()  # nothing pasted outside the object mask
            # Inside the mask: the object, unless a box from the other image covers it afterwards.
            if boxed.any():
                assert torch.equal(pasted | boxed, masks[i] | boxed)
                assert torch.equal(untouched, ~(masks[i] | boxed))
            assert torch.equal(out.pseudo[i] == 2, pasted)
            assert torch.equal(out.probs[i, 2] == 1.0, pasted)
            saw_paste |= bool(pasted.any())
            saw_box |= bool(boxed.any())
    assert saw_paste and saw_box


def test_sam_mix_skips_small_objects_and_boxes_come_from_the_partner() -> None:
    unlabeled = _targets(10.0, 0)
    unlabeled.image[1] = 20.0
    unlabeled.pseudo[1] = 1
    masks = torch.zeros(2, 16, 16, dtype=torch.bool)
    masks[:, 0, 0] = True  # one pixel: below the paste threshold
    out = sam_mix(unlabeled, _targets(50.0, 2), masks, np.random.default_rng(3), min_paste_area=10, beta=4.0)
    assert not (out.image == 50.0).any()
    for i in range(2):
        from_partner = out.image[i, 0] != unlabeled.image[i, 0]
        # Wherever the image came from the other pool image, so did its pseudo-label.
        assert torch.equal(from_partner, out.pseudo[i] != unlabeled.pseudo[i])


def test_label_component_masks_filter_by_area() -> None:
    label = np.full((100, 100), 255, np.uint8)
    label[10:30, 10:30] = 5  # 400 px
    label[50:52, 50:52] = 5  # 4 px: too small
    label[60:90, 0:100] = 2  # 3000 px
    masks = label_component_masks(label, min_share=0.01, max_share=0.35)
    assert [int(m.sum()) for m in masks] == [3000, 400]
    assert label_component_masks(None) == []


@pytest.mark.parametrize("kind", [3, -1])
def test_augin_rejects_unknown_kind(kind: int) -> None:
    with pytest.raises(ValueError):
        augin(torch.rand(2, 3, 4, 4), kind=kind)


def _rare_paste_inputs() -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    """Two pool crops of pseudo-labels 2 / 255; three labelled crops, of which only crop 1 holds class 5 (the set's
    rarest: the largest weight, shared with the absent class 0), crop 2 holds the less rare class 3."""
    image = torch.full((2, 3, 8, 8), 10.0)
    target = torch.full((2, 8, 8), 2, dtype=torch.int64)
    target[:, 0, :] = 255
    source_image = torch.arange(3 * 3 * 8 * 8, dtype=torch.float32).view(3, 3, 8, 8) + 100
    source_label = torch.full((3, 8, 8), 4, dtype=torch.int64)
    source_label[1, 2:4, 5:8] = 5
    source_label[1, 7, :] = 255
    source_label[2, 0:4, 0:4] = 3
    weights = torch.tensor([3.0, 1.0, 0.5, 2.0, 0.4, 3.0])
    return image, target, source_image, source_label, weights


def test_rare_paste_moves_the_rarest_class_pixels_and_nothing_else() -> None:
    image, target, source_image, source_label, weights = _rare_paste_inputs()
    out_image, out_target = paste_rare_class(image, target, source_image, source_label, weights, 1.0,
                                             np.random.default_rng(0))  # fmt: skip
    rock = source_label[1] == 5
    for i in range(2):
        assert torch.equal(out_target[i][rock], source_label[1][rock])
        assert torch.equal(out_image[i][:, rock], source_image[1][:, rock])
        assert torch.equal(out_target[i][~rock], target[i][~rock])  # class 3, 4 and ignored pixels stay
        assert torch.equal(out_image[i][:, ~rock], image[i][:, ~rock])
    assert torch.equal(target[0], torch.where(torch.arange(8).view(8, 1) == 0, 255, 2).expand(8, 8))  # inputs kept


def test_rare_paste_needs_the_sets_rarest_class_in_the_labelled_batch() -> None:
    image, target, source_image, source_label, weights = _rare_paste_inputs()
    rng = np.random.default_rng(0)
    # Without crop 1 the batch's rarest class is 3, not the set's rarest: nothing is pasted.
    out_image, out_target = paste_rare_class(image, target, source_image[[0, 2]], source_label[[0, 2]], weights, 1.0,
                                             rng)  # fmt: skip
    assert torch.equal(out_image, image) and torch.equal(out_target, target)
    # Share 0: nothing, and the generator is not drawn from, so a run without the option is the run before it.
    paste_rare_class(image, target, source_image, source_label, weights, 0.0, rng)
    assert rng.random() == np.random.default_rng(0).random()


def test_rare_paste_share_is_the_chance_of_each_pool_crop() -> None:
    image, target, source_image, source_label, weights = _rare_paste_inputs()
    image, target = image.repeat(200, 1, 1, 1), target.repeat(200, 1, 1)
    _, out = paste_rare_class(image, target, source_image, source_label, weights, 0.3, np.random.default_rng(1))
    pasted = (out == 5).flatten(1).any(dim=1).float().mean().item()
    assert 0.2 < pasted < 0.4
