"""The ONNX pair on a synthetic scene (a bright disc on dark textured ground): clicks, negative clicks, boxes,
refinement, bad prompts, and automatic masks that find the disc."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from ml.sam.auto_masks import AutoMaskParams, automatic_masks, decode_rle
from ml.sam.candidates import AmgCandidateMasks
from ml.sam.decoder import OnnxSam
from ml.sam.encoder import preprocess
from ml.sam.interface import Embedding, Prompt, PromptError
from ml.sam.scenes import disc_scene
from tests.sam_support import iou, require_models


@pytest.fixture(scope="module")
def sam() -> OnnxSam:
    paths = require_models()
    return OnnxSam(paths.encoder, paths.decoder, threads=2)


@pytest.fixture(scope="module")
def scene(sam: OnnxSam) -> tuple[np.ndarray, np.ndarray, Embedding]:
    image, disc = disc_scene(300, 400, (150, 120), 50, seed=1)
    return image, disc, sam.encode(image)


@pytest.fixture(scope="module")
def two_discs(sam: OnnxSam) -> tuple[np.ndarray, np.ndarray, Embedding]:
    image, left = disc_scene(256, 256, (100, 128), 40, seed=2)
    _other, right = disc_scene(256, 256, (165, 128), 40)
    image[right] = [200, 190, 170]
    return left, right & ~left, sam.encode(image)


def test_preprocess_places_the_image_top_left_and_pads_with_zero() -> None:
    tensor, scale = preprocess(np.full((300, 400, 3), 200, np.uint8))
    assert tensor.shape == (1, 3, 1024, 1024) and tensor.dtype == np.float32 and scale == pytest.approx(2.56)
    assert tensor[0, 0, 767, 0] == pytest.approx((200 - 123.675) / 58.395, abs=1e-4)
    assert tensor[0, 0, 768, 0] == 0.0


def test_embedding_is_float16_with_the_geometry(scene: tuple) -> None:
    _image, _disc, embedding = scene
    assert embedding.data.shape == (1, 256, 64, 64) and embedding.data.dtype == np.float16
    assert embedding.original_size == (300, 400) and embedding.scale == pytest.approx(1024 / 400)


def test_a_click_inside_the_disc_selects_it(sam: OnnxSam, scene: tuple) -> None:
    _image, disc, embedding = scene
    prediction = sam.decode(embedding, Prompt(points=[(150, 120)], labels=[1]))
    assert prediction.mask.shape == (300, 400) and prediction.low_res_logits.shape == (256, 256)
    assert iou(prediction.mask, disc) > 0.8
    assert 0.0 < prediction.score < 1.5


def test_a_box_and_a_refinement_select_the_disc(sam: OnnxSam, scene: tuple) -> None:
    _image, disc, embedding = scene
    boxed = sam.decode(embedding, Prompt(box=(95, 65, 205, 175)))
    assert iou(boxed.mask, disc) > 0.8
    refined = sam.decode(embedding, Prompt([(150, 120)], [1], mask_input=boxed.low_res_logits))
    assert iou(refined.mask, disc) > 0.8


def test_a_negative_click_removes_a_region(sam: OnnxSam, two_discs: tuple) -> None:
    left, right, embedding = two_discs
    box = (50, 78, 215, 178)
    both = sam.decode(embedding, Prompt(box=box)).mask
    assert (both & right).sum() > 0.8 * right.sum() and (both & left).sum() > 0.8 * left.sum()
    without = sam.decode(embedding, Prompt(points=[(175, 128)], labels=[0], box=box)).mask
    assert not without[128, 175]
    assert (without & right).sum() < 0.5 * (both & right).sum()
    assert (without & left).sum() > 0.8 * left.sum()


@pytest.mark.parametrize(
    ("prompt", "message"),
    [
        (Prompt(), "empty prompt"),
        (Prompt([(401, 10)], [1]), "outside the 400×300 image"),
        (Prompt([(10, -1)], [1]), "outside"),
        (Prompt([(10, 10)], [1, 0]), "1 points but 2 labels"),
        (Prompt([(10, 10)], [2]), "label 2"),
        (Prompt(box=(50, 50, 40, 80)), "not a box inside"),
        (Prompt([(10, 10)], [1], mask_input=np.zeros((64, 64), np.float32)), "256×256"),
    ],
)
def test_bad_prompts_are_refused_with_the_reason(sam: OnnxSam, scene: tuple, prompt: Prompt, message: str) -> None:
    with pytest.raises(PromptError, match=message):
        sam.decode(scene[2], prompt)


def test_automatic_masks_find_the_disc_and_feed_sam_mix(sam: OnnxSam, scene: tuple, tmp_path: Path) -> None:
    image, disc, embedding = scene
    records = automatic_masks(sam, embedding, AutoMaskParams(points_per_side=8))
    assert records, "no automatic mask passed the filters"
    scores = [record["predicted_iou"] for record in records]
    assert scores == sorted(scores, reverse=True)
    assert set(records[0]) >= {"segmentation", "area", "bbox", "predicted_iou", "stability_score", "point_coords"}
    masks = [decode_rle(record["segmentation"]) for record in records]
    assert max(iou(mask, disc) for mask in masks) > 0.8
    # Stored as AMG JSON, read back as SAM-Mix candidates with the S5Mars selection.
    (tmp_path / "7.json").write_text(json.dumps(records))
    candidates = AmgCandidateMasks(tmp_path)("7", image, None)
    assert all(c.shape == disc.shape and c.dtype == bool for c in candidates)
    assert any(iou(c, disc) > 0.8 for c in candidates)
    assert AmgCandidateMasks(tmp_path)("missing", image, None) == []
