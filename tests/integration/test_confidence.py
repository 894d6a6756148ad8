"""The model's confidence, through the real API, a real Celery worker and PostgreSQL: a pseudo-label run stores
each image's per-pixel confidence as an 8-bit PNG beside its model mask version (GET …/masks/{v}/confidence,
whose mean is the version's `confidence`); the image list, the image, queue/next and a round's ranked queue
carry the image's `model_confidence` (null where no model predicted it); a human version has no map (404)."""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
import pytest
from fastapi.testclient import TestClient
from PIL import Image as PILImage
from sqlalchemy.orm import Session

from server.demo import S5MARS_CLASSES
from server.models import Role, Round, RoundStatus, Score
from server.settings import Settings
from tests.factories import add_synthetic_scenes, make_project
from tests.integration.test_pseudo_label_claims import SIZE, _wait, untrained_model_version

pytestmark = pytest.mark.ml


def test_pseudo_labels_store_per_pixel_confidence_and_the_queue_shows_each_images(
    celery_worker, job_client: TestClient, job_settings: Settings, session: Session, headers, tmp_path: Path
) -> None:
    project = make_project(session, "confidence", S5MARS_CLASSES)
    truth = add_synthetic_scenes(session, project, pool=5, labeled=2, val=1, size=SIZE)
    ids = sorted(truth)
    labeled, unlabeled, val = ids[:2], ids[2:5], ids[5]
    model_id = untrained_model_version(session, project.id, tmp_path / "weights")
    lead, annotator = headers[Role.lead], headers[Role.annotator]
    base = f"/api/v1/projects/{project.id}"

    before = job_client.get(f"{base}/images", headers=annotator).json()["items"]
    assert [item["model_confidence"] for item in before] == [None] * 6  # no model has predicted anything yet

    job = job_client.post(f"{base}/pseudo-labels", json={"model_version_id": model_id, "threshold": 0}, headers=lead)
    assert job.status_code == 202, job.text
    assert _wait(job_settings, job.json()["id"], celery_worker).result["stored"] == 3

    listed = {
        item["id"]: item["model_confidence"] for item in job_client.get(f"{base}/images", headers=lead).json()["items"]
    }
    for image_id in unlabeled:
        history = job_client.get(f"{base}/images/{image_id}/masks", headers=annotator).json()
        (mask,) = history
        assert mask["source"] == "model" and mask["confidence"] is not None
        assert listed[image_id] == pytest.approx(mask["confidence"])
        assert job_client.get(f"{base}/images/{image_id}", headers=annotator).json()["model_confidence"] == (
            pytest.approx(mask["confidence"])
        )
        answer = job_client.get(f"{base}/images/{image_id}/masks/{mask['version']}/confidence", headers=annotator)
        assert answer.status_code == 200, answer.text
        assert answer.headers["content-type"] == "image/png"
        picture = PILImage.open(io.BytesIO(answer.content))
        assert picture.mode == "L" and picture.size == (SIZE, SIZE)
        levels = np.asarray(picture, dtype=np.float64)
        # round(p × 255) per pixel: the mean of the map is the version's mean confidence to within half a level.
        assert abs(levels.mean() / 255 - mask["confidence"]) <= 0.5 / 255 + 1e-6
        # An untrained network over 9 classes is unsure: no pixel near certainty, none below 1/9.
        assert levels.min() >= np.floor(255 / len(S5MARS_CLASSES)) and levels.max() < 255
        etag = answer.headers["etag"]
        again = job_client.get(
            f"{base}/images/{image_id}/masks/{mask['version']}/confidence",
            headers={**annotator, "If-None-Match": etag},
        )
        assert again.status_code == 304
    for image_id in [*labeled, val]:
        assert listed[image_id] is None  # human labels; no model prediction was stored for them

    # A human version has no confidence map; nor does a version that does not exist.
    human = job_client.get(f"{base}/images/{labeled[0]}/masks/1/confidence", headers=annotator)
    assert human.status_code == 404 and "confidence map" in human.json()["detail"]
    assert job_client.get(f"{base}/images/{labeled[0]}/masks/9/confidence", headers=annotator).status_code == 404

    # The queue hands out an image with the model's confidence in it.
    claimed = job_client.post(f"{base}/queue/next", headers=annotator).json()["image"]
    assert claimed["id"] in unlabeled and claimed["model_confidence"] == pytest.approx(listed[claimed["id"]])

    # The dashboard's ranked queue (a round's scores) carries it too.
    done = Round(
        project_id=project.id, index=1, method="supervised", strategy="random", budget=3, status=RoundStatus.done
    )
    session.add(done)
    session.flush()
    session.add_all(Score(round_id=done.id, image_id=i, score=1.0 / rank, rank=rank) for rank, i in enumerate(ids, 1))
    session.commit()
    scores = job_client.get(f"{base}/rounds/{done.id}/scores", headers=lead).json()["items"]
    ranked = {item["image_id"]: item["model_confidence"] for item in scores}
    assert ranked.keys() == listed.keys()
    for image_id, confidence in listed.items():
        assert ranked[image_id] == (None if confidence is None else pytest.approx(confidence))
