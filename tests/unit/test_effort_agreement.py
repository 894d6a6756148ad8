"""server.store.effort.pixel_agreement on small known mask pairs, and the effort form field's parsing."""

from __future__ import annotations

import numpy as np
import pytest
from fastapi.exceptions import RequestValidationError

from server.effort_schemas import MaskEffort, parse_effort
from server.store.effort import pixel_agreement

X = 255  # ignore


def test_agreement_counts_pixels_labelled_in_either_mask() -> None:
    base = np.array([[0, 0, 1, X], [2, 2, X, X]], np.uint8)
    saved = np.array([[0, 1, 1, 3], [2, X, X, X]], np.uint8)
    # Labelled in either: 6 pixels (all but the two ignored in both); the same in both: (0,0), (0,2), (1,0) = 3.
    assert pixel_agreement(base, saved, X) == pytest.approx(3 / 6)
    assert pixel_agreement(saved, base, X) == pytest.approx(3 / 6)  # symmetric


def test_identical_masks_agree_fully_and_disjoint_ones_not_at_all() -> None:
    mask = np.array([[0, 1], [X, 2]], np.uint8)
    assert pixel_agreement(mask, mask.copy(), X) == 1.0
    assert pixel_agreement(np.full((2, 2), X, np.uint8), np.full((2, 2), X, np.uint8), X) == 1.0  # both empty
    assert pixel_agreement(np.full((2, 2), X, np.uint8), np.zeros((2, 2), np.uint8), X) == 0.0  # labelled anew
    with pytest.raises(ValueError, match="differ in size"):
        pixel_agreement(mask, np.zeros((3, 3), np.uint8), X)


def test_effort_field_keeps_only_what_was_sent() -> None:
    assert parse_effort(None) is None and parse_effort("  ") is None and parse_effort("{}") is None
    assert parse_effort('{"active_seconds": 3, "fills": 0, "undos": null}') == {"active_seconds": 3.0, "fills": 0}
    assert MaskEffort(fills=2, undos=1).actions() == 3 and MaskEffort(active_seconds=4).actions() is None
    with pytest.raises(RequestValidationError) as raised:
        parse_effort('{"redos": -2}')
    assert [error["loc"] for error in raised.value.errors()] == [("body", "effort", "redos")]
