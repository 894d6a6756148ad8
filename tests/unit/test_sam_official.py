"""The segment_anything backend with an official checkpoint: runs only where one exists (a GPU worker's
MARSLABEL_TEST_SAM_CHECKPOINT, with MARSLABEL_TEST_SAM_TYPE vit_b/vit_l/vit_h); skipped elsewhere."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest

from ml.sam.interface import Prompt
from ml.sam.scenes import disc_scene
from tests.sam_support import iou

CHECKPOINT = os.environ.get("MARSLABEL_TEST_SAM_CHECKPOINT")


@pytest.mark.skipif(
    not CHECKPOINT, reason="no official SAM checkpoint here: set MARSLABEL_TEST_SAM_CHECKPOINT to run this test"
)
def test_official_backend_selects_the_disc() -> None:
    from ml.sam.official import SegmentAnythingSam

    sam = SegmentAnythingSam(Path(CHECKPOINT or ""), os.environ.get("MARSLABEL_TEST_SAM_TYPE", "vit_b"))
    image, disc = disc_scene(300, 400, (150, 120), 50, seed=1)
    embedding = sam.encode(image)
    assert embedding.data.shape == (1, 256, 64, 64) and embedding.data.dtype == np.float16
    prediction = sam.decode(embedding, Prompt(points=[(150, 120)], labels=[1]))
    assert prediction.mask.shape == (300, 400) and iou(prediction.mask, disc) > 0.8
