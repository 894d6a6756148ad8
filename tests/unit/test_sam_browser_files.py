"""The browser's SAM files: the vendored onnxruntime-web (pinned sha256, a missing file named, nothing fetched
when in place) and the decoders fetch-models derives from sam.onnx (recorded in a manifest, checked)."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from ml.sam.browser import BROWSER_DECODERS, MANIFEST, MIN_MEAN_IOU, browser_decoder_problems, make_browser_decoders
from ml.sam.models import REPO_MODEL_DIR
from server.settings import Settings
from server.web_runtime import PINNED, fetch_web_runtime, runtime_dir, runtime_problems
from tests.sam_support import require_models

FRONTEND = Settings().resolved_frontend_dir


def _require_runtime() -> None:
    problems = runtime_problems(FRONTEND)
    if problems:
        pytest.fail("; ".join(problems) + " (run `marslabel fetch-models`)", pytrace=False)


def test_the_vendored_runtime_is_in_place_and_a_missing_file_is_named(tmp_path: Path) -> None:
    _require_runtime()
    assert runtime_problems(tmp_path) == [f"{runtime_dir(tmp_path) / name} is missing" for name in PINNED]
    shutil.copytree(runtime_dir(FRONTEND), runtime_dir(tmp_path))
    (runtime_dir(tmp_path) / "ort-wasm-simd-threaded.wasm").write_bytes(b"\0asm")
    (problem,) = runtime_problems(tmp_path)
    assert "ort-wasm-simd-threaded.wasm has sha256" in problem and PINNED["ort-wasm-simd-threaded.wasm"][1] in problem


def test_fetching_the_runtime_does_nothing_when_it_is_in_place(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    _require_runtime()
    shutil.copytree(runtime_dir(FRONTEND), runtime_dir(tmp_path))
    monkeypatch.setattr(shutil, "which", lambda _name: pytest.fail("fetch_web_runtime looked for npm"))
    messages: list[str] = []
    assert fetch_web_runtime(tmp_path, messages.append) is False
    assert "nothing fetched" in messages[0]


def test_derived_decoders_match_their_manifest_and_agree_with_float32() -> None:
    require_models()
    assert browser_decoder_problems(REPO_MODEL_DIR) == []
    manifest = json.loads((REPO_MODEL_DIR / MANIFEST).read_text())
    for name in BROWSER_DECODERS:
        assert manifest["files"][name]["mean_iou"] >= MIN_MEAN_IOU, name


def test_a_stale_or_altered_derived_decoder_is_named(tmp_path: Path) -> None:
    paths = require_models()
    for path in (paths.encoder, paths.decoder):
        shutil.copy(path, tmp_path / path.name)
    assert browser_decoder_problems(tmp_path) == [f"{tmp_path / MANIFEST} is missing or names another source decoder"]
    for name in (MANIFEST, *BROWSER_DECODERS):
        shutil.copy(REPO_MODEL_DIR / name, tmp_path / name)
    assert browser_decoder_problems(tmp_path) == []
    (tmp_path / BROWSER_DECODERS[0]).write_bytes(b"altered")
    assert browser_decoder_problems(tmp_path) == [
        f"{tmp_path / BROWSER_DECODERS[0]} does not match its sha256 in {MANIFEST}"
    ]
    (tmp_path / BROWSER_DECODERS[0]).write_bytes((REPO_MODEL_DIR / BROWSER_DECODERS[0]).read_bytes())
    messages: list[str] = []
    assert make_browser_decoders(tmp_path, messages.append) is False  # restored: nothing rebuilt
    assert "nothing built" in messages[0]
