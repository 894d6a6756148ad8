"""Confusion matrix and mIoU against arrays small enough to count by hand."""

from __future__ import annotations

import math

import numpy as np
import pytest

from ml.metrics import confusion_matrix, evaluate_predictor, miou_from_confusion, pixel_accuracy

GT = np.array([[0, 0, 1, 1], [0, 2, 2, 255]], dtype=np.uint8)
PRED = np.array([[0, 1, 1, 1], [0, 2, 0, 1]], dtype=np.uint8)


def test_confusion_counts_rows_are_ground_truth_and_ignore_is_skipped() -> None:
    cm = confusion_matrix(PRED, GT, num_classes=3)
    expected = np.array([[2, 1, 0], [0, 2, 0], [1, 0, 1]])
    assert cm.dtype == np.int64
    np.testing.assert_array_equal(cm, expected)
    assert cm.sum() == 7  # 8 pixels, one ignored


def test_miou_hand_computed() -> None:
    cm = confusion_matrix(PRED, GT, num_classes=3)
    miou, per_class = miou_from_confusion(cm)
    # class 0: I=2, U=3+3-2=4 → 0.5; class 1: I=2, U=3+2-2=3 → 2/3; class 2: I=1, U=1+2-1=2 → 0.5
    assert per_class == pytest.approx({0: 0.5, 1: 2 / 3, 2: 0.5})
    assert miou == pytest.approx((0.5 + 2 / 3 + 0.5) / 3)
    assert pixel_accuracy(cm) == pytest.approx(5 / 7)


def test_absent_class_is_left_out_unless_requested() -> None:
    gt = np.array([[0, 0], [1, 1]])
    pred = np.array([[0, 0], [1, 0]])
    cm = confusion_matrix(pred, gt, num_classes=4)
    miou, per_class = miou_from_confusion(cm)
    # class 0: I=2 U=3; class 1: I=1 U=2; classes 2, 3 appear nowhere
    assert set(per_class) == {0, 1}
    assert miou == pytest.approx((2 / 3 + 1 / 2) / 2)
    miou_req, per_req = miou_from_confusion(cm, class_ids=[0, 1, 3])
    assert per_req[3] == 0.0
    assert miou_req == pytest.approx((2 / 3 + 1 / 2 + 0) / 3)
    miou_sub, _ = miou_from_confusion(cm, class_ids=[1])
    assert miou_sub == pytest.approx(0.5)


def test_predicted_only_class_gets_zero_iou_but_not_in_default_mean() -> None:
    gt = np.array([0, 0, 0, 0])
    pred = np.array([0, 0, 2, 2])
    cm = confusion_matrix(pred, gt, num_classes=3)
    miou, per_class = miou_from_confusion(cm)
    assert per_class[2] == 0.0
    assert miou == pytest.approx(0.5)


def test_all_ignored_gives_nan() -> None:
    cm = confusion_matrix(np.zeros(3), np.full(3, 255), num_classes=2)
    assert cm.sum() == 0
    assert math.isnan(miou_from_confusion(cm)[0])


def test_bad_inputs_raise() -> None:
    with pytest.raises(ValueError):
        confusion_matrix(np.zeros(3), np.zeros(4), num_classes=2)
    with pytest.raises(ValueError):
        confusion_matrix(np.zeros(3), np.array([0, 1, 5]), num_classes=2)


class _OnePixelPredictor:
    """Predicts from the red channel: class = red // 100 (crafted so the answer is known)."""

    num_classes = 3

    def predict_proba(self, images: np.ndarray) -> np.ndarray:
        cls = images[..., 0].astype(np.int64) // 100
        return np.moveaxis(np.eye(3, dtype=np.float32)[cls], -1, 1)

    def predict_proba_mc(self, images: np.ndarray, passes: int) -> np.ndarray:
        return np.stack([self.predict_proba(images)] * passes)

    def branch_probas(self, images: np.ndarray) -> list[np.ndarray]:
        return [self.predict_proba(images)]


class _Source:
    def __init__(self, items: dict[str, tuple[np.ndarray, np.ndarray | None]]) -> None:
        self._items = items

    @property
    def ids(self) -> list[str]:
        return list(self._items)

    def load_image(self, sample_id: str) -> np.ndarray:
        return self._items[sample_id][0]

    def load_label(self, sample_id: str) -> np.ndarray | None:
        return self._items[sample_id][1]


def _img(red: np.ndarray) -> np.ndarray:
    return np.stack([red, red, red], axis=-1).astype(np.uint8)


def test_evaluate_predictor_accumulates_over_batches_and_sizes() -> None:
    a = _img(np.array([[0, 0], [150, 250]]))  # predicts 0 0 / 1 2
    b = _img(np.array([[0, 150, 150]]))  # predicts 0 1 1, different size → its own batch
    c = _img(np.array([[250, 250], [250, 250]]))  # unlabeled → skipped
    source = _Source(
        {
            "a": (a, np.array([[0, 1], [1, 255]], dtype=np.uint8)),
            "b": (b, np.array([[0, 1, 2]], dtype=np.uint8)),
            "c": (c, None),
        }
    )
    calls: list[float] = []
    result = evaluate_predictor(_OnePixelPredictor(), source, batch_size=1, progress=lambda f, m: calls.append(f))
    expected = np.array([[2, 0, 0], [1, 2, 0], [0, 1, 0]])
    np.testing.assert_array_equal(np.array(result["confusion"]), expected)
    assert result["images"] == 2
    # class 0: I=2 U=3; class 1: I=2 U=4; class 2: I=0 U=1
    assert result["per_class_iou"] == pytest.approx({0: 2 / 3, 1: 0.5, 2: 0.0})
    assert result["miou"] == pytest.approx((2 / 3 + 0.5 + 0) / 3)
    assert result["pixel_accuracy"] == pytest.approx(4 / 6)
    assert calls[0] == 0.0 and calls[-1] == 1.0
