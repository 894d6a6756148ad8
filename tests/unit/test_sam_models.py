"""The pinned SAM files: their sha256 are checked, and a missing or altered file is named in the error."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from ml.sam.models import PINNED, ModelFilesError, fetch_models, model_paths, sha256_of
from tests.sam_support import require_models


def test_installed_files_have_their_pinned_sha256() -> None:
    paths = require_models()
    for path in (paths.encoder, paths.decoder):
        assert sha256_of(path) == PINNED[path.name][1]


def test_a_missing_or_altered_file_is_named(tmp_path: Path) -> None:
    paths = require_models()
    with pytest.raises(ModelFilesError, match=r"encoder\.onnx is missing"):
        model_paths(tmp_path)
    shutil.copy(paths.encoder, tmp_path / "encoder.onnx")
    (tmp_path / "sam.onnx").write_bytes(b"not a model")
    with pytest.raises(ModelFilesError, match=r"sam.onnx has sha256 [0-9a-f]{64}, expected 800b1500"):
        model_paths(tmp_path)


def test_fetch_does_nothing_when_files_are_in_place(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    paths = require_models()
    for path in (paths.encoder, paths.decoder):
        shutil.copy(path, tmp_path / path.name)
    monkeypatch.setattr(shutil, "which", lambda _name: pytest.fail("fetch_models looked for npm"))
    messages: list[str] = []
    assert fetch_models(tmp_path, messages.append) is False
    assert "nothing fetched" in messages[0]
