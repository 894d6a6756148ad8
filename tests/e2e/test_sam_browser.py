"""The browser SAM module (frontend/sam/sam-client.js) in Chromium against the live API: the decoder runs in a
Web Worker on onnxruntime-web served by the API, on embeddings the API serves. Synthetic scenes with
high-contrast discs: a click inside selects the disc, a negative click removes one, a refinement keeps it, and
the browser's mask agrees with the server's decoder on the same click."""

from __future__ import annotations

import base64
from collections.abc import Iterator
from typing import Any

import httpx
import numpy as np
import pytest
from sqlalchemy.orm import Session

from ml.sam.browser import DEFAULT_DECODER
from ml.sam.scenes import disc_scene
from server.models import Role
from server.settings import Settings
from tests.factories import make_project
from tests.integration.sam_helpers import CENTRE, SIZE, png_mask, scene, upload
from tests.sam_support import iou, require_models
from worker.tasks.sam_embed import backend_for, embedding_of

pytestmark = pytest.mark.browser

PAGE = "/app/sam/test-page.html"
# Runs in the page: start the client, open the image, decode each prompt; masks come back as base64.
DECODE_ALL = """
async ({ token, projectId, imageId, prompts }) => {
  const client = new window.samModule.SamClient({ token });
  const started = await client.start();
  const image = await client.openImage(projectId, imageId);
  const toBase64 = (bytes) => btoa(Array.from(bytes, (b) => String.fromCharCode(b)).join(''));
  const answers = [];
  let previous = null;
  for (const prompt of prompts) {
    const { refine, ...rest } = prompt;
    const answer = await client.decode({ ...rest, maskInput: refine ? previous : null });
    previous = answer.lowRes;
    answers.push({ mask: toBase64(answer.mask), width: answer.width, height: answer.height, score: answer.score });
  }
  let refused = null;
  try {
    await client.decode({ points: [[image.width + 5, 1]], labels: [1] });
  } catch (error) {
    refused = error.message;
  }
  client.close();
  return { started, image, answers, refused, defaultDecoder: window.samModule.DEFAULT_DECODER };
}
"""


@pytest.fixture
def api(live_server: str, headers: dict) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=live_server, headers=headers[Role.lead], timeout=60) as client:
        yield client


def _two_discs() -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    image, left = disc_scene(256, 256, (100, 128), 40, seed=2)
    _other, right = disc_scene(256, 256, (165, 128), 40)
    image[right] = [200, 190, 170]
    return image, left, right & ~left


def _with_embedding(api: httpx.Client, settings: Settings, project_id: int, image: np.ndarray, name: str) -> int:
    image_id = upload(api, {}, project_id, image, name)  # type: ignore[arg-type]
    embedding_of(settings, backend_for(settings), image_id)  # what a sam_embed job does, here in-process
    return image_id


def _decode_in_browser(chromium: Any, base: str, token: str, project_id: int, image_id: int, prompts: list) -> dict:
    page = chromium.new_page()
    failures: list[str] = []
    page.on("pageerror", lambda error: failures.append(str(error)))
    page.on("requestfailed", lambda request: failures.append(f"request failed: {request.url}"))
    try:
        page.goto(base + PAGE)
        page.wait_for_function("window.samModule !== undefined", timeout=30_000)
        result = page.evaluate(
            DECODE_ALL, {"token": token, "projectId": project_id, "imageId": image_id, "prompts": prompts}
        )
    finally:
        page.close()
    assert not failures, failures
    return result


def _mask(answer: dict) -> np.ndarray:
    flat = np.frombuffer(base64.b64decode(answer["mask"]), np.uint8)
    return flat.reshape(answer["height"], answer["width"]).astype(bool)


def test_a_click_inside_selects_the_disc_as_the_server_does(
    chromium: Any, live_server: str, api: httpx.Client, settings: Settings, session: Session, role_tokens: dict
) -> None:
    require_models()
    project = make_project(session)
    image, disc = scene()
    image_id = _with_embedding(api, settings, project.id, image, "disc.png")
    click = {"points": [list(CENTRE)], "labels": [1]}
    result = _decode_in_browser(
        chromium, live_server, role_tokens[Role.annotator], project.id, image_id, [click, {**click, "refine": True}]
    )
    assert result["started"]["isolated"] is True, "the page is not cross-origin isolated: no wasm threads"
    assert result["defaultDecoder"] == DEFAULT_DECODER  # the file fetch-models makes is the one the module loads
    assert result["image"]["width"] == SIZE[1] and result["image"]["height"] == SIZE[0]
    first, refined = (_mask(answer) for answer in result["answers"])
    assert first.shape == SIZE and iou(first, disc) > 0.8
    assert iou(refined, disc) > 0.8
    assert 0.0 < result["answers"][0]["score"] < 1.5
    assert "outside the 320×240 image" in result["refused"]
    # The same click decoded by the server: the browser's scaling, padding point and upsampling agree with it.
    served = api.post(f"/api/v1/projects/{project.id}/images/{image_id}/sam/predict", json=click)
    assert served.status_code == 200, served.text
    assert iou(first, png_mask(served.content)) > 0.95


def test_a_negative_click_removes_a_disc(
    chromium: Any, live_server: str, api: httpx.Client, settings: Settings, session: Session, role_tokens: dict
) -> None:
    require_models()
    project = make_project(session)
    image, left, right = _two_discs()
    image_id = _with_embedding(api, settings, project.id, image, "two-discs.png")
    box = [50, 78, 215, 178]
    prompts = [{"box": box}, {"box": box, "points": [[175, 128]], "labels": [0]}]
    result = _decode_in_browser(chromium, live_server, role_tokens[Role.annotator], project.id, image_id, prompts)
    both, without = (_mask(answer) for answer in result["answers"])
    assert (both & right).sum() > 0.8 * right.sum() and (both & left).sum() > 0.8 * left.sum()
    assert not without[128, 175]
    assert (without & right).sum() < 0.5 * (both & right).sum()
    assert (without & left).sum() > 0.8 * left.sum()


START_WITH = """
async ({ token, runtimeUrl, decoderUrl }) => {
  const client = new window.samModule.SamClient({ token, runtimeUrl, decoderUrl });
  try {
    await client.start();
    return null;
  } catch (error) {
    return error.message;
  } finally {
    client.close();
  }
}
"""


def test_a_decoder_that_cannot_start_names_the_missing_file(chromium: Any, live_server: str, role_tokens: dict) -> None:
    page = chromium.new_page()
    try:
        page.goto(live_server + PAGE)
        page.wait_for_function("window.samModule !== undefined", timeout=30_000)
        token = role_tokens[Role.annotator]
        no_runtime = page.evaluate(
            START_WITH, {"token": token, "runtimeUrl": "/app/vendor/nowhere/", "decoderUrl": None}
        )
        no_decoder = page.evaluate(START_WITH, {"token": token, "runtimeUrl": None, "decoderUrl": "/app/models/x.onnx"})
    finally:
        page.close()
    assert no_runtime is not None and "/app/vendor/nowhere/ort-wasm-simd-threaded.wasm" in no_runtime, no_runtime
    assert "run marslabel fetch-models" in no_runtime
    assert no_decoder is not None and "/app/models/x.onnx" in no_decoder, no_decoder


# Runs in the page: the embedding is asked for while the decoder session is still starting, not after it.
OPEN_WHILE_STARTING = """
async ({ token, projectId, imageId, click }) => {
  const asked = [];
  const plainFetch = window.fetch;
  window.fetch = (url, ...rest) => {
    if (String(url).includes('/sam/embedding')) asked.push(performance.now());
    return plainFetch(url, ...rest);
  };
  const client = new window.samModule.SamClient({ token });
  let startedAt = null;
  client.start().then(() => { startedAt = performance.now(); });
  const image = await client.openImage(projectId, imageId);
  const answer = await client.decode({ points: [click], labels: [1] });
  client.close();
  return { askedAt: asked[0], startedAt, width: image.width, maskWidth: answer.width };
}
"""


def test_the_embedding_is_fetched_while_the_decoder_starts(
    chromium: Any, live_server: str, api: httpx.Client, settings: Settings, session: Session, role_tokens: dict
) -> None:
    require_models()
    project = make_project(session)
    image, _disc = scene()
    image_id = _with_embedding(api, settings, project.id, image, "disc.png")
    page = chromium.new_page()
    try:
        page.goto(live_server + PAGE)
        page.wait_for_function("window.samModule !== undefined", timeout=30_000)
        result = page.evaluate(
            OPEN_WHILE_STARTING,
            {"token": role_tokens[Role.annotator], "projectId": project.id, "imageId": image_id, "click": list(CENTRE)},
        )
    finally:
        page.close()
    assert result["askedAt"] is not None and result["startedAt"] is not None, result
    assert result["askedAt"] < result["startedAt"], result  # the decoder's start (with warm-up) took longer
    assert result["width"] == result["maskWidth"] == SIZE[1]
