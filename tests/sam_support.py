"""Shared by the SAM tests: the checked model files (a failure, never a skip, when they are missing) and the
synthetic scenes."""

from __future__ import annotations

import pytest

from ml.sam.models import REPO_MODEL_DIR, ModelFilesError, ModelPaths, model_paths


def require_models() -> ModelPaths:
    try:
        return model_paths(REPO_MODEL_DIR)
    except ModelFilesError as error:
        pytest.fail(
            f"{error} (scripts/test runs it through scripts/setup); SAM tests fail rather than skip.", pytrace=False
        )


def iou(a, b) -> float:  # type: ignore[no-untyped-def]
    return float((a & b).sum() / max((a | b).sum(), 1))
