"""A first set for a project without labels: API → Redis → a real worker choosing representative pool images
with ml.start.first_set → the queue serving them first → labels → the first query round. And its refusals."""

from __future__ import annotations

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from server.models import (
    Image,
    ImageStatus,
    Job,
    JobStatus,
    ModelVersion,
    Project,
    Role,
    Round,
    RoundStatus,
    Score,
)
from server.models import Split as ImageSplit
from server.round_schemas import FIRST_SET, RoundCreate
from server.settings import Settings
from server.store.rounds import auto_round_due
from tests.factories import png_bytes
from tests.integration.test_rounds import ONE_IMAGE, _start, _wait_round, make_synthetic_project


def _first_set(client: TestClient, headers: dict[str, str], project_id: int, **body: object):
    return client.post(f"/api/v1/projects/{project_id}/first-set", json=body, headers=headers)


@pytest.mark.ml
@pytest.mark.parametrize("method", ["kmeans", "kcenter", "random"])
def test_first_set_ranks_the_queue_of_a_project_without_labels(
    method: str, celery_worker, job_client: TestClient, job_settings: Settings, session: Session, headers
) -> None:
    project_id, truth = make_synthetic_project(session, pool=8, labeled=0, val=0, name=f"first-{method}")
    lead, annotator = headers[Role.lead], headers[Role.annotator]
    base = f"/api/v1/projects/{project_id}"
    # Without labels a query round is refused, and says where to start instead.
    refused = _start(job_client, lead, project_id, **ONE_IMAGE)
    assert refused.status_code == 409 and "first-set" in refused.json()["detail"], refused.text

    # kcenter is the default: its request names no method.
    chosen = {} if method == "kcenter" else {"method": method}
    response = _first_set(job_client, lead, project_id, **chosen, budget=3, seed=1)
    assert response.status_code == 202, response.text
    body = response.json()
    assert (body["method"], body["strategy"], body["budget"], body["index"]) == (FIRST_SET, method, 3, 1)
    assert body["job"]["kind"] == "first_set" and body["labeled_count"] == 0
    job = _wait_round(job_settings, body["job_id"], celery_worker)
    assert job.result["picked"] == 3 and job.result["pool"] == 8 and job.result["method"] == method

    done = job_client.get(f"{base}/rounds/{body['id']}", headers=annotator).json()
    assert done["status"] == "done" and done["finished_at"] is not None and done["model_version"] is None
    scores = job_client.get(f"{base}/rounds/{body['id']}/scores", headers=lead).json()
    assert scores["total"] == 3 and [item["rank"] for item in scores["items"]] == [1, 2, 3]
    assert [item["image_id"] for item in scores["items"]] == job.result["image_ids"]
    values = [item["score"] for item in scores["items"]]
    if method == "random":
        assert values == [0.0, 0.0, 0.0]
    else:  # kmeans: the cluster's share of the pool; kcenter: the distance covered; both best first
        assert values == sorted(values, reverse=True) and values[0] > 0
        assert method != "kmeans" or sum(values) == pytest.approx(1.0)
    metrics = job_client.get(f"{base}/metrics", headers=lead).json()
    assert metrics["curve"] == [] and [r["method"] for r in metrics["rounds"]] == [FIRST_SET]

    # The queue serves the picks first, in rank order; the annotator labels them.
    for item in scores["items"]:
        claim = job_client.post(f"{base}/queue/next", headers=annotator).json()
        assert (claim["image"]["id"], claim["rank"]) == (item["image_id"], item["rank"])
        saved = job_client.post(
            f"{base}/images/{item['image_id']}/masks",
            files={"mask": ("m.png", png_bytes(truth[item["image_id"]]), "image/png")},
            headers=annotator,
        )
        assert saved.status_code == 201, saved.text
    # Then import order again, among the images left.
    after = job_client.post(f"{base}/queue/next", headers=annotator).json()
    left = session.scalars(
        select(Image.id)
        .where(Image.project_id == project_id, Image.status == ImageStatus.unlabeled, Image.split == ImageSplit.pool)
        .order_by(Image.import_order, Image.id)
    ).first()
    assert after["image"]["id"] == left and after["rank"] is None

    # With its labels, the first query round trains and ranks the rest.
    second = _start(job_client, lead, project_id, **ONE_IMAGE)
    assert second.status_code == 202, second.text
    assert second.json()["index"] == 2 and second.json()["labeled_count"] == 3
    _wait_round(job_settings, second.json()["job_id"], celery_worker)


def test_first_set_errors_are_clear(job_client: TestClient, session: Session, headers) -> None:
    project_id, _ = make_synthetic_project(session, pool=3, labeled=0, val=0, name="first-errors")
    lead = headers[Role.lead]
    for body, words in [
        ({"method": "coreset"}, "method"),
        ({"budget": "3 %x"}, "neither a count"),
        ({"budget": 0}, "must be a count of 1"),
        ({"seed": -1}, "seed"),
        ({"strategy": "ueq"}, "strategy"),
    ]:
        answer = _first_set(job_client, lead, project_id, **body)
        assert answer.status_code == 422 and words in answer.text, (body, answer.text)
    assert _first_set(job_client, headers[Role.annotator], project_id).status_code == 403
    assert _first_set(job_client, lead, 999_999).status_code == 404

    # Every pool image labelled: nothing to choose from.
    full_id, _ = make_synthetic_project(session, pool=2, labeled=2, val=0, name="first-full")
    full = _first_set(job_client, lead, full_id)
    assert full.status_code == 409 and "no unlabelled pool image" in full.json()["detail"]
    assert session.scalar(select(func.count()).select_from(Round)) == 0

    # One round at a time: a queued query round refuses a first set, naming itself.
    job = Job(kind="round", project_id=project_id, status=JobStatus.queued, params={})
    session.add(job)
    session.flush()
    active = Round(
        project_id=project_id, index=1, method="supervised", strategy="random", budget=1, job_id=job.id, params={}
    )
    session.add(active)
    session.commit()
    busy = _first_set(job_client, lead, project_id)
    assert busy.status_code == 409 and busy.json()["round_id"] == active.id and busy.json()["job_id"] == job.id
    assert session.scalar(select(func.count()).select_from(Round).where(Round.project_id == project_id)) == 1


def test_auto_round_after_a_first_set_uses_the_defaults_not_its_settings(session: Session) -> None:
    project_id, _ = make_synthetic_project(session, pool=4, labeled=2, val=0, name="first-auto")
    row = Round(
        project_id=project_id,
        index=1,
        method=FIRST_SET,
        strategy="kmeans",
        budget=2,
        status=RoundStatus.done,
        params={"method": "kmeans", "budget": 2, "seed": 0},
    )
    session.add(row)
    session.flush()
    project = session.get(Project, project_id)
    assert project is not None
    project.auto_round_after = 1
    # The labels were saved before the first set began: none since, so nothing is due yet.
    assert auto_round_due(session, project) is None
    row.created_at = row.created_at.replace(year=2000)
    session.flush()
    assert auto_round_due(session, project) == RoundCreate()
    assert session.scalar(select(func.count()).select_from(ModelVersion)) == 0
    assert session.scalar(select(func.count()).select_from(Score)) == 0
    session.rollback()
