"""The static web app under /app: served without a token, with the cross-origin isolation headers that
onnxruntime-web's threads need, the media types browsers insist on for wasm and module scripts, the vendored
runtime (never a CDN) and only the browser decoder files of the model folder."""

from __future__ import annotations

import re

from fastapi.testclient import TestClient

from ml.sam.browser import BROWSER_DECODERS
from ml.sam.models import REPO_MODEL_DIR
from server.web_runtime import PINNED
from tests.sam_support import require_models

ISOLATION = {
    "cross-origin-opener-policy": "same-origin",
    "cross-origin-embedder-policy": "require-corp",
    "cross-origin-resource-policy": "same-origin",
}


def _isolated(answer) -> bool:  # type: ignore[no-untyped-def]
    return all(answer.headers.get(name) == value for name, value in ISOLATION.items())


def test_module_and_runtime_are_served_without_a_token_with_their_media_types(client: TestClient) -> None:
    for path, media_type in [
        ("/app/sam/sam-client.js", "text/javascript"),
        ("/app/sam/decoder-worker.js", "text/javascript"),
        ("/app/sam/test-page.html", "text/html"),
        ("/app/vendor/onnxruntime-web/ort.wasm.min.mjs", "text/javascript"),
        ("/app/vendor/onnxruntime-web/ort-wasm-simd-threaded.mjs", "text/javascript"),
        ("/app/vendor/onnxruntime-web/ort-wasm-simd-threaded.wasm", "application/wasm"),
    ]:
        answer = client.get(path)
        assert answer.status_code == 200, (path, answer.text[:200])
        assert answer.headers["content-type"].split(";")[0] == media_type, path
        assert _isolated(answer), path
    assert set(PINNED) <= {"ort.wasm.min.mjs", "ort-wasm-simd-threaded.mjs", "ort-wasm-simd-threaded.wasm"}


def test_the_api_keeps_its_prefix_tokens_and_isolation(client: TestClient) -> None:
    answer = client.get("/api/v1/projects")
    assert answer.status_code == 401 and _isolated(answer)


def test_nothing_in_the_module_points_at_another_host(client: TestClient) -> None:
    for path in ("/app/sam/sam-client.js", "/app/sam/decoder-worker.js", "/app/sam/mask.js"):
        assert not re.search(r"https?://", client.get(path).text), f"{path} names a host"


def test_only_the_browser_decoders_are_served_from_the_model_folder(client: TestClient) -> None:
    require_models()
    for name in ("sam.onnx", *BROWSER_DECODERS):
        answer = client.get(f"/app/models/{name}")
        assert answer.status_code == 200, (name, answer.text[:200])
        assert answer.content == (REPO_MODEL_DIR / name).read_bytes(), name
        assert _isolated(answer)
    refused = client.get("/app/models/encoder.onnx")
    assert refused.status_code == 404 and "not served" in refused.json()["detail"]
    assert client.get("/app/models/..%2Fpyproject.toml").status_code == 404
