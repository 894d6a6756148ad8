"""Consensus: a project's share of images goes to two different annotators through the queue (never the same person
twice), the agreement of their two labels is computed when the second is saved and stored as a pair (mIoU over the
pixels both labelled, and per class), a pair below the threshold goes to review with both labels whatever the
review draw; the settings and routes refuse bad input in words and store nothing."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from server.db import session_scope
from server.models import ConsensusPair, Image, MaskSource, Project, ProjectRole, Role
from server.schema import upgrade_to_head
from server.store.consensus import in_share, mask_agreement, record_pair_if_second
from server.store.masks import add_mask_version
from server.store.members import add_member
from server.store.projects import create_project
from server.store.queue import claim_next_image, upcoming_images
from server.store.users import create_user
from tests.factories import DEFAULT_CLASSES, make_project, mask_png, png_bytes
from tests.integration.test_masks import save, stored_image
from tests.integration.test_queue import add_images

API = "/api/v1"
H, W = 24, 32


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def pair_count(session: Session) -> int:
    session.expire_all()
    return session.scalar(select(func.count()).select_from(ConsensusPair)) or 0


def known_masks() -> tuple[np.ndarray, np.ndarray]:
    """A: columns 0-15 soil (0), 16-31 bedrock (1), row 0 unlabelled. B: columns 0-23 soil, 24-31 bedrock, row 23
    unlabelled. Over the 22 rows both labelled: soil IoU 16/24, bedrock IoU 8/16, sand and big rock unused."""
    a = np.zeros((H, W), np.uint8)
    a[:, 16:] = 1
    a[0, :] = 255
    b = np.zeros((H, W), np.uint8)
    b[:, 24:] = 1
    b[H - 1, :] = 255
    return a, b


def team(session: Session, project: Project, *names: str) -> list[dict[str, str]]:
    """Annotator members of `project` (annotator accounts), their headers in order."""
    out = []
    for name in names:
        user, token = create_user(session, name, Role.annotator)
        add_member(session, project, user, ProjectRole.annotator)
        out.append(bearer(token))
    session.commit()
    return out


def set_consensus(client: TestClient, project: Project, headers: dict, **body: object):  # type: ignore[no-untyped-def]
    return client.patch(f"{API}/projects/{project.id}", json=body, headers=headers)


def next_image_id(client: TestClient, project: Project, headers: dict) -> int | None:
    answer = client.post(f"{API}/projects/{project.id}/queue/next", headers=headers)
    assert answer.status_code == 200, answer.text
    image = answer.json()["image"]
    return None if image is None else image["id"]


def test_the_agreement_function_on_known_masks() -> None:
    a, b = known_masks()
    agreement = mask_agreement(a, b, [0, 1, 2, 3], 255)
    assert agreement.class_iou == {0: pytest.approx(16 / 24), 1: pytest.approx(8 / 16), 2: None, 3: None}
    assert agreement.miou == pytest.approx((16 / 24 + 8 / 16) / 2)
    assert agreement.compared_fraction == pytest.approx(22 / 24)
    # Only pixels both labelled count: what one left unlabelled does not lower the agreement.
    c = a.copy()
    c[:, 20:] = 255
    assert mask_agreement(a, c, [0, 1], 255).miou == pytest.approx(1.0)
    assert mask_agreement(a, np.full_like(a, 255), [0, 1], 255).miou is None


def test_a_consensus_pair_computes_the_agreement_of_two_known_masks_and_goes_to_review(
    client: TestClient, session: Session, headers: dict
) -> None:
    project = make_project(session)
    image = stored_image(session, project)
    first, second, third = team(session, project, "ann1", "ann2", "ann3")
    lead = headers[Role.lead]
    changed = set_consensus(client, project, lead, consensus_percent=100, consensus_threshold=0.8, review_percent=0)
    assert changed.status_code == 200, changed.text
    assert (changed.json()["consensus_percent"], changed.json()["consensus_threshold"]) == (100, 0.8)
    a, b = known_masks()

    took = client.post(f"{API}/projects/{project.id}/queue/next", headers=first).json()
    assert took["image"]["id"] == image.id and took["consensus_second"] is False
    assert save(client, image, png_bytes(a), first).status_code == 201
    assert pair_count(session) == 0
    # Never the same person twice: the first annotator is not handed it again; another annotator is.
    assert next_image_id(client, project, first) is None
    handed = client.post(f"{API}/projects/{project.id}/queue/next", headers=second).json()
    assert handed["image"]["id"] == image.id and handed["consensus_second"] is True
    assert handed["image"]["latest_mask_version"] == 1
    assert next_image_id(client, project, third) is None  # claimed by the second annotator
    saved = save(client, image, png_bytes(b), second, base=1)
    assert saved.status_code == 201, saved.text
    assert pair_count(session) == 1
    assert next_image_id(client, project, third) is None  # the pair is complete: no third label

    pair = client.get(f"{API}/projects/{project.id}/images/{image.id}/consensus", headers=lead)
    assert pair.status_code == 200, pair.text
    body = pair.json()
    assert (body["first"]["author_name"], body["first"]["mask_version"]) == ("ann1", 1)
    assert (body["second"]["author_name"], body["second"]["mask_version"]) == ("ann2", 2)
    assert body["miou"] == pytest.approx((16 / 24 + 8 / 16) / 2)
    assert [(c["name"], c["iou"]) for c in body["classes"]] == [
        ("soil", pytest.approx(16 / 24)),
        ("bedrock", pytest.approx(0.5)),
        ("sand", None),
        ("big rock", None),
    ]
    assert body["compared_fraction"] == pytest.approx(22 / 24)
    assert body["disagreement"] is True and body["threshold"] == 0.8

    listing = client.get(f"{API}/projects/{project.id}/consensus", headers=lead).json()
    assert (listing["total"], listing["pairs"], listing["disagreements"]) == (1, 1, 1)
    assert listing["mean_miou"] == pytest.approx(body["miou"])
    assert client.get(f"{API}/projects/{project.id}/consensus?disagreement=false", headers=lead).json()["total"] == 0

    # Below the threshold: in the review queue although review_percent is 0, with both labels side by side.
    queue = client.get(f"{API}/projects/{project.id}/reviews/queue", headers=headers[Role.lead]).json()
    assert queue["total"] == 1 and queue["review_percent"] == 0
    item = queue["items"][0]
    assert item["mask_version"] == 2 and item["consensus"]["first"]["mask_version"] == 1
    assert item["consensus"]["miou"] == pytest.approx(body["miou"])


def test_an_agreeing_pair_is_not_sent_to_review_and_images_outside_the_share_are_labelled_once(
    client: TestClient, session: Session, headers: dict
) -> None:
    project = make_project(session)
    images = [stored_image(session, project, seed=s) for s in range(6)]
    first, second = team(session, project, "ann1", "ann2")
    set_consensus(client, project, headers[Role.lead], consensus_percent=50, consensus_threshold=0.5, review_percent=0)
    in_the_share = {i.id for i in images if in_share(i.id, 50)}
    a, b = known_masks()  # agreement 0.583 >= 0.5
    for _ in images:
        image_id = next_image_id(client, project, first)
        assert image_id is not None
        assert save(client, session.get(Image, image_id), png_bytes(a), first).status_code == 201  # type: ignore[arg-type]
    assert next_image_id(client, project, first) is None
    second_got = []
    while (image_id := next_image_id(client, project, second)) is not None:
        second_got.append(image_id)
        assert save(client, session.get(Image, image_id), png_bytes(b), second, base=1).status_code == 201  # type: ignore[arg-type]
    assert set(second_got) == in_the_share
    page = client.get(f"{API}/projects/{project.id}/consensus", headers=headers[Role.lead]).json()
    assert page["pairs"] == len(in_the_share) and page["disagreements"] == 0
    assert client.get(f"{API}/projects/{project.id}/reviews/queue", headers=headers[Role.lead]).json()["total"] == 0


def test_consensus_routes_by_role_and_bad_input_stores_nothing(
    client: TestClient, session: Session, headers: dict
) -> None:
    project = make_project(session)
    other = make_project(session, "elsewhere", members=False)
    image = stored_image(session, project)
    base = f"{API}/projects/{project.id}"
    # Every project role reads the pairs; a non-member gets the 404 of a missing project.
    for role in Role:
        assert client.get(f"{base}/consensus", headers=headers[role]).status_code == 200, role
    outsider = client.get(f"{API}/projects/{other.id}/consensus", headers=headers[Role.annotator])
    assert outsider.status_code == 404 and f"project {other.id} not found" in outsider.json()["detail"]
    missing = client.get(f"{base}/images/{image.id}/consensus", headers=headers[Role.client])
    assert missing.status_code == 404 and f"image {image.id}" in missing.json()["detail"]
    assert client.get(f"{base}/images/999999/consensus", headers=headers[Role.lead]).status_code == 404
    # Only a lead changes the settings.
    denied = set_consensus(client, project, headers[Role.annotator], consensus_percent=50)
    assert denied.status_code == 403 and "project.update" in denied.json()["detail"]

    def settings() -> tuple[int, float]:
        session.expire_all()
        stored = session.get(Project, project.id)
        assert stored is not None
        return stored.consensus_percent, stored.consensus_threshold

    before = settings()
    for body, field in [
        ({"consensus_percent": 101}, "consensus_percent"),
        ({"consensus_percent": -1}, "consensus_percent"),
        ({"consensus_percent": "half"}, "consensus_percent"),
        ({"consensus_threshold": 1.5}, "consensus_threshold"),
        ({"consensus_threshold": -0.1}, "consensus_threshold"),
        ({"consensus_percent": 30, "consensus_threshold": 2}, "consensus_threshold"),
    ]:
        answer = set_consensus(client, project, headers[Role.lead], **body)
        assert answer.status_code == 422, (body, answer.text)
        assert field in answer.text, answer.text
        assert settings() == before
    for query in ["disagreement=maybe", "limit=0", "limit=501", "offset=-1"]:
        assert client.get(f"{base}/consensus?{query}", headers=headers[Role.lead]).status_code == 422, query
    assert client.get(f"{base}/images/0/consensus", headers=headers[Role.lead]).status_code == 404  # not an id
    assert pair_count(session) == 0


def second_label_hand_out(url: str) -> None:
    """Through the store: three images in a 100 % share, labelled by A; B gets each once as the second annotator
    (the pair is made on B's save), A never gets them back, and C gets nothing once the pairs exist."""

    with session_scope(url) as session:
        project = create_project(session, "pairs", DEFAULT_CLASSES)
        project.consensus_percent = 100
        a, b, c = (create_user(session, name, Role.annotator)[0].id for name in ("a", "b", "c"))
        project_id = project.id
    with session_scope(url) as session:
        images = add_images(session, session.get(Project, project_id), 3)  # type: ignore[arg-type]

    def label(user_id: int) -> int | None:
        with session_scope(url) as session:
            claim = claim_next_image(session, project_id, user_id, 600)
            if claim is None:
                return None
            base = 1 if claim.image.status.value == "labeled" else None
            saved = add_mask_version(
                session, claim.image, mask_png(8, 8), source=MaskSource.human, base_version=base, author_id=user_id
            )
            record_pair_if_second(session, claim.image, saved)
            return claim.image.id

    assert [label(a) for _ in images] == images
    assert label(a) is None
    with session_scope(url) as session:
        assert [i.id for i in upcoming_images(session, project_id, b, 10)] == images
        assert upcoming_images(session, project_id, a, 10) == []
    assert [label(b) for _ in images] == images
    assert label(b) is None and label(c) is None
    with session_scope(url) as session:
        pairs = session.scalars(select(ConsensusPair).order_by(ConsensusPair.image_id)).all()
        assert [(p.image_id, p.first_author_id, p.second_author_id, p.miou) for p in pairs] == [
            (i, a, b, 1.0) for i in images
        ]


def test_the_second_label_hand_out_on_postgresql(db_url: str) -> None:
    second_label_hand_out(db_url)


def test_the_second_label_hand_out_on_sqlite(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'pairs.sqlite3'}"
    upgrade_to_head(url)
    second_label_hand_out(url)
