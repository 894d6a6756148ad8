"""Review: the queue of saved human labels, accept / reject with a comment (append-only, one decision per
version), the rejected image back at the top of its author's queue, the manifest, export and round training
set restricted to accepted labels; every refusal a 4xx naming the problem, with nothing stored."""

from __future__ import annotations

import io
import json
import zipfile

import numpy as np
from fastapi.testclient import TestClient
from PIL import Image as PILImage
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from server.models import Image, MaskSource, ProjectRole, Review, Role
from server.store.masks import add_mask_version
from server.store.members import add_member
from server.store.users import create_user
from tests.factories import make_project, mask_png
from tests.integration.test_masks import save, stored_image
from worker.project_data import project_split

API = "/api/v1"


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def review_count(session: Session) -> int:
    session.expire_all()
    return session.scalar(select(func.count()).select_from(Review)) or 0


def reviews_url(image: Image) -> str:
    return f"{API}/projects/{image.project_id}/images/{image.id}/reviews"


def decide(client: TestClient, image: Image, version: int, decision: str, headers: dict, comment: str = ""):  # type: ignore[no-untyped-def]
    body = {"mask_version": version, "decision": decision, "comment": comment}
    return client.post(reviews_url(image), json=body, headers=headers)


def test_round_trip_reject_fix_accept_and_accepted_only_export(client: TestClient, session: Session) -> None:
    project = make_project(session, members=False)
    image = stored_image(session, project)
    ann, ann_token = create_user(session, "ann", Role.annotator)
    rev, rev_token = create_user(session, "rita", Role.annotator)
    add_member(session, project, ann, ProjectRole.annotator)
    add_member(session, project, rev, ProjectRole.reviewer)
    session.commit()
    annotator, reviewer = bearer(ann_token), bearer(rev_token)
    queue_url = f"{API}/projects/{project.id}/reviews/queue"

    assert client.post(f"{API}/projects/{project.id}/queue/next", headers=annotator).json()["image"]["id"] == image.id
    assert save(client, image, mask_png(values=(0, 255)), annotator).status_code == 201
    pending = client.get(queue_url, headers=reviewer).json()
    assert (pending["total"], pending["accepted"], pending["rejected"]) == (1, 0, 0)
    item = pending["items"][0]
    assert (item["image"]["id"], item["mask_version"], item["author_name"]) == (image.id, 1, "ann")
    # An annotator may not decide; a reviewer may.
    assert decide(client, image, 1, "accepted", annotator).status_code == 403

    rejected = decide(client, image, 1, "rejected", reviewer, comment="the rock on the left is bedrock")
    assert rejected.status_code == 201, rejected.text
    assert rejected.json()["reviewer_name"] == "rita" and rejected.json()["decision"] == "rejected"
    assert client.get(queue_url, headers=reviewer).json()["total"] == 0

    # Back at the top of the annotator's queue, with the comment; the fix is a new version, reviewed again.
    back = client.post(f"{API}/projects/{project.id}/queue/next", headers=annotator).json()
    assert back["image"]["id"] == image.id and back["image"]["latest_mask_version"] == 1
    assert back["review"]["comment"] == "the rock on the left is bedrock" and back["review"]["mask_version"] == 1
    assert save(client, image, mask_png(values=(1, 255)), annotator, base=1).status_code == 201
    assert client.post(f"{API}/projects/{project.id}/queue/next", headers=annotator).json()["image"] is None
    assert client.get(queue_url, headers=reviewer).json()["items"][0]["mask_version"] == 2
    assert decide(client, image, 2, "accepted", reviewer).status_code == 201
    history = client.get(reviews_url(image), headers=annotator).json()
    assert [(r["mask_version"], r["decision"]) for r in history] == [(1, "rejected"), (2, "accepted")]

    # A newer, unreviewed version: the accepted-only manifest and export still hold exactly version 2.
    assert save(client, image, mask_png(values=(2, 255)), annotator, base=2).status_code == 201
    manifest = client.get(f"{API}/projects/{project.id}/labels", params={"accepted_only": True}, headers=reviewer)
    assert [(i["image_id"], i["mask_version"]) for i in manifest.json()["items"]] == [(image.id, 2)]
    everything = client.get(f"{API}/projects/{project.id}/labels", headers=reviewer).json()["items"]
    assert [i["mask_version"] for i in everything] == [3]
    export = client.get(f"{API}/projects/{project.id}/export", params={"accepted_only": True}, headers=reviewer)
    assert export.status_code == 200, export.text
    archive = zipfile.ZipFile(io.BytesIO(export.content))
    labels = [n for n in archive.namelist() if n.startswith("labels/")]
    assert len(labels) == 1
    assert set(np.unique(np.asarray(PILImage.open(io.BytesIO(archive.read(labels[0])))))) == {1, 255}
    assert json.loads(archive.read("manifest.json"))["filters"]["accepted_only"] is True


def test_refusals_name_the_problem_and_store_nothing(client: TestClient, session: Session, headers: dict) -> None:
    project = make_project(session)
    image = stored_image(session, project)
    reviewer = headers[Role.lead]  # a lead may review too

    none_yet = decide(client, image, 1, "accepted", reviewer)
    assert (none_yet.status_code, none_yet.json()["detail"]) == (409, f"image {image.id} has no human label to review")
    add_mask_version(session, image, mask_png(values=(0,)), source=MaskSource.model, base_version=None)
    session.commit()
    model_only = decide(client, image, 1, "accepted", reviewer)
    assert model_only.status_code == 409 and "no human label" in model_only.json()["detail"]

    assert save(client, image, mask_png(values=(0, 255)), headers[Role.annotator], base=1).status_code == 201
    assert save(client, image, mask_png(values=(1, 255)), headers[Role.annotator], base=2).status_code == 201
    not_human = decide(client, image, 1, "accepted", reviewer)
    assert (not_human.status_code, not_human.json()["detail"]) == (
        409,
        f"version 1 of image {image.id} is a model mask, not a human label",
    )
    missing = decide(client, image, 9, "accepted", reviewer)
    assert (missing.status_code, missing.json()["detail"]) == (404, f"mask version 9 not found in image {image.id}")
    stale = decide(client, image, 2, "accepted", reviewer)
    assert stale.status_code == 409 and stale.json()["detail"].startswith("stale review: version 2")
    no_comment = decide(client, image, 3, "rejected", reviewer, comment="  ")
    assert (no_comment.status_code, no_comment.json()["detail"]) == (
        422,
        "a rejection needs a comment saying what to fix",
    )
    bad = decide(client, image, 3, "maybe", reviewer)
    assert bad.status_code == 422 and bad.json()["errors"][0]["loc"] == ["body", "decision"]
    assert review_count(session) == 0

    assert decide(client, image, 3, "accepted", reviewer).status_code == 201
    twice = decide(client, image, 3, "accepted", reviewer)
    assert twice.status_code == 409 and f"version 3 of image {image.id} was already accepted" in twice.json()["detail"]
    reject_after = decide(client, image, 3, "rejected", reviewer, comment="no")
    assert reject_after.status_code == 409
    assert review_count(session) == 1


def test_a_sampled_share_goes_to_review(client: TestClient, session: Session, headers: dict) -> None:
    project = make_project(session)
    images = [stored_image(session, project, seed=k) for k in range(20)]
    for image in images:
        assert save(client, image, mask_png(values=(0, 255)), headers[Role.annotator]).status_code == 201
    queue_url = f"{API}/projects/{project.id}/reviews/queue"
    assert client.get(queue_url, headers=headers[Role.lead]).json()["total"] == 20
    patched = client.patch(f"{API}/projects/{project.id}", json={"review_percent": 30}, headers=headers[Role.lead])
    assert patched.status_code == 200 and patched.json()["review_percent"] == 30
    drawn = client.get(queue_url, params={"limit": 500}, headers=headers[Role.lead]).json()
    assert 0 < drawn["total"] < 20 and drawn["review_percent"] == 30
    again = client.get(queue_url, params={"limit": 500}, headers=headers[Role.lead]).json()
    assert [i["image"]["id"] for i in again["items"]] == [i["image"]["id"] for i in drawn["items"]]  # a fixed draw
    assert (
        client.patch(
            f"{API}/projects/{project.id}", json={"review_percent": 101}, headers=headers[Role.lead]
        ).status_code
        == 422
    )
    assert (
        client.patch(f"{API}/projects/{project.id}", json={"review_percent": 0}, headers=headers[Role.lead]).status_code
        == 200
    )
    assert client.get(queue_url, headers=headers[Role.lead]).json()["total"] == 0


def test_a_round_can_train_on_accepted_labels_only(
    client: TestClient, session: Session, headers: dict, db_url: str
) -> None:
    project = make_project(session)
    images = [stored_image(session, project, seed=k) for k in range(4)]
    for image in images:
        assert save(client, image, mask_png(values=(0, 255)), headers[Role.annotator]).status_code == 201
    assert decide(client, images[0], 1, "accepted", headers[Role.lead]).status_code == 201
    assert decide(client, images[1], 1, "rejected", headers[Role.lead], comment="redo").status_code == 201
    # images[2]: accepted, then a newer version saved: its current label is not accepted any more.
    assert decide(client, images[2], 1, "accepted", headers[Role.lead]).status_code == 201
    assert save(client, images[2], mask_png(values=(1, 255)), headers[Role.annotator], base=1).status_code == 201

    every = project_split(db_url, project.id, seed=0)
    assert sorted(every.labeled + every.val) == sorted(i.id for i in images)
    accepted = project_split(db_url, project.id, seed=0, accepted_only=True)
    assert accepted.labeled + accepted.val == [images[0].id]
    assert images[1].id not in accepted.unlabeled  # a labelled image is never scored as unlabelled
    # The round request carries the option to the round job.
    body = {"method": "supervised", "strategy": "random", "budget": 1, "accepted_only": True, "steps": 1}
    from server.round_schemas import RoundCreate

    assert RoundCreate.model_validate(body).accepted_only is True
