"""The SAM routes against the real app and database: embedding bytes, server-side decoding, 202 while an
embedding is missing (one job per image), queue prefetch, and bad prompts answered 422/404 with the reason.
Embeddings are put in the cache by the worker task's own function, in this process (no worker needed)."""

from __future__ import annotations

import base64

import numpy as np
import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select
from sqlalchemy.orm import Session

from ml.sam.models import MODEL_ID
from server.models import Job, Role
from server.settings import Settings
from server.store.images import add_image
from tests.factories import make_project, png_bytes
from tests.integration.sam_helpers import SIZE, png_mask, scene, upload
from tests.sam_support import iou, require_models
from worker.tasks.sam_embed import backend_for, embedding_of


@pytest.fixture
def disc_image(client: TestClient, session: Session, headers: dict, settings: Settings) -> tuple[int, int, np.ndarray]:
    """(project id, image id, disc mask) with the image's embedding cached."""
    require_models()
    project = make_project(session)
    image, disc = scene()
    image_id = upload(client, headers[Role.lead], project.id, image, "disc.png")
    embedding_of(settings, backend_for(settings), image_id)
    return project.id, image_id, disc


def _url(project_id: int, image_id: int, what: str) -> str:
    return f"/api/v1/projects/{project_id}/images/{image_id}/sam/{what}"


def test_embedding_bytes_round_trip_to_the_encoder(
    client: TestClient, headers: dict, settings: Settings, disc_image: tuple
) -> None:
    project_id, image_id, _disc = disc_image
    answer = client.get(_url(project_id, image_id, "embedding"), headers=headers[Role.annotator])
    assert answer.status_code == 200 and answer.headers["content-type"] == "application/octet-stream"
    assert answer.headers["x-sam-model"] == MODEL_ID and answer.headers["x-sam-dtype"] == "float16"
    assert answer.headers["x-sam-shape"] == "1,256,64,64"
    assert answer.headers["x-sam-original-size"] == f"{SIZE[0]},{SIZE[1]}"
    assert float(answer.headers["x-sam-scale"]) == pytest.approx(1024 / SIZE[1])
    received = np.frombuffer(answer.content, dtype="<f2").reshape(1, 256, 64, 64)
    expected = backend_for(settings).encode(scene()[0]).data
    assert np.allclose(received.astype(np.float32), expected.astype(np.float32), atol=2e-3)
    again = client.get(
        _url(project_id, image_id, "embedding"), headers={**headers[Role.lead], "If-None-Match": answer.headers["etag"]}
    )
    assert again.status_code == 304


def test_predict_a_click_inside_the_disc(client: TestClient, headers: dict, disc_image: tuple) -> None:
    project_id, image_id, disc = disc_image
    body = {"points": [[120, 100]], "labels": [1], "model": MODEL_ID}
    answer = client.post(_url(project_id, image_id, "predict"), json=body, headers=headers[Role.annotator])
    assert answer.status_code == 200, answer.text
    assert answer.headers["content-type"] == "image/png"
    mask = png_mask(answer.content)
    assert mask.shape == SIZE and iou(mask, disc) > 0.8
    assert 0.0 < float(answer.headers["x-sam-score"]) < 1.5
    low_res = client.post(
        _url(project_id, image_id, "predict") + "?output=low_res", json=body, headers=headers[Role.annotator]
    )
    assert low_res.status_code == 200 and len(low_res.content) == 256 * 256 * 2
    refined = client.post(
        _url(project_id, image_id, "predict"),
        json={"points": [[120, 100]], "labels": [1], "mask_input": base64.b64encode(low_res.content).decode()},
        headers=headers[Role.annotator],
    )
    assert refined.status_code == 200 and iou(png_mask(refined.content), disc) > 0.8


@pytest.mark.parametrize(
    ("body", "status", "message"),
    [
        ({"points": [[500, 10]], "labels": [1]}, 422, "outside the 320×240 image"),
        ({"points": [], "labels": []}, 422, "empty prompt"),
        ({"points": [[10, 10]], "labels": [1, 1]}, 422, "1 points but 2 labels"),
        ({"box": [50, 50, 20, 80]}, 422, "not a box inside"),
        ({"points": [[10, 10]], "labels": [1], "model": "sam-vit_h-other"}, 409, "is not served here"),
        ({"points": [[10, 10]], "labels": [1], "mask_input": "AAAA"}, 422, "must be 256×256 float16"),
    ],
)
def test_bad_prompts_are_named(
    client: TestClient, headers: dict, disc_image: tuple, body: dict, status: int, message: str
) -> None:
    project_id, image_id, _disc = disc_image
    answer = client.post(_url(project_id, image_id, "predict"), json=body, headers=headers[Role.lead])
    assert answer.status_code == status and message in answer.json()["detail"], answer.text


def test_unknown_image_and_other_model(client: TestClient, headers: dict, disc_image: tuple) -> None:
    project_id, image_id, _disc = disc_image
    body = {"points": [[10, 10]], "labels": [1]}
    missing = client.post(_url(project_id, 424242, "predict"), json=body, headers=headers[Role.lead])
    assert missing.status_code == 404 and "424242" in missing.json()["detail"]
    missing = client.get(_url(project_id, 424242, "embedding"), headers=headers[Role.lead])
    assert missing.status_code == 404
    other = client.get(_url(project_id, image_id, "embedding") + "?model=sam-vit_b-x", headers=headers[Role.lead])
    assert other.status_code == 409 and "sam-vit_b-x" in other.json()["detail"]
    denied = client.post(_url(project_id, image_id, "predict"), json=body, headers=headers[Role.client])
    assert denied.status_code == 403


def test_a_missing_embedding_answers_202_with_one_job(
    client: TestClient, headers: dict, session: Session, settings: Settings
) -> None:
    require_models()
    project = make_project(session)
    image_id = upload(client, headers[Role.lead], project.id, scene(seed=9)[0], "fresh.png")
    first = client.get(_url(project.id, image_id, "embedding"), headers=headers[Role.annotator])
    assert first.status_code == 202 and first.headers["retry-after"] == "1"
    job = first.json()["job"]
    assert job["kind"] == "sam_embed" and job["params"] == {"image_id": image_id, "model": MODEL_ID}
    body = {"points": [[10, 10]], "labels": [1]}
    second = client.post(_url(project.id, image_id, "predict"), json=body, headers=headers[Role.annotator])
    assert second.status_code == 202 and second.json()["job"]["id"] == job["id"]


def test_queue_next_embeds_the_head_of_the_queue_once(
    client: TestClient, headers: dict, session: Session, settings: Settings
) -> None:
    project = make_project(session)
    # Stored through the store, not the upload route, whose own embeddings of the queue's head (test_sam_ahead.py)
    # would leave queue/next nothing to start.
    ids = []
    for i in range(6):
        stored = add_image(session, project, f"q{i}.png", png_bytes(scene(seed=20 + i)[0]), author_id=None)
        assert stored.image_id is not None, stored
        ids.append(stored.image_id)
    session.commit()
    claimed = client.post(f"/api/v1/projects/{project.id}/queue/next", headers=headers[Role.annotator])
    assert claimed.status_code == 200 and claimed.json()["image"]["id"] == ids[0]
    client.post(f"/api/v1/projects/{project.id}/queue/next", headers=headers[Role.annotator])  # same claim again
    session.expire_all()
    jobs = session.scalars(select(Job).where(Job.kind == "sam_embed").order_by(Job.id)).all()
    assert [job.params["image_id"] for job in jobs] == ids[: 1 + settings.sam_prefetch]
