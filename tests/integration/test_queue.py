"""The annotation queue: ranking, claims, release, skip; and no image ever handed to two annotators at
once, checked with real threads and their own sessions on PostgreSQL and on SQLite."""

from __future__ import annotations

import threading
from collections import Counter
from datetime import timedelta
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from sqlalchemy.orm import Session

from server.db import get_sessionmaker, session_scope
from server.models import Image, ImageStatus, MaskSource, Project, Role, Round, RoundStatus, Score, Split, utcnow
from server.schema import upgrade_to_head
from server.store.images import add_image
from server.store.limits import UploadLimits
from server.store.masks import add_mask_version
from server.store.projects import create_project
from server.store.queue import claim_next_image
from server.store.users import create_user
from tests.factories import DEFAULT_CLASSES, image_bytes, join_projects, make_project, mask_png

LIMITS = UploadLimits(max_upload_bytes=10_000_000, max_image_pixels=10_000_000)


def add_images(
    session: Session, project: Project, count: int, *, split: Split = Split.pool, seed0: int = 0
) -> list[int]:
    ids = []
    for seed in range(seed0, seed0 + count):
        result = add_image(session, project, f"{seed}.png", image_bytes(8, 8, seed=seed), split=split, limits=LIMITS)
        assert result.status == "stored" and result.image_id is not None
        ids.append(result.image_id)
    session.commit()
    return ids


def next_url(project: Project) -> str:
    return f"/api/v1/projects/{project.id}/queue/next"


def take(client: TestClient, project: Project, headers: dict) -> int | None:
    answer = client.post(next_url(project), headers=headers)
    assert answer.status_code == 200, answer.text
    image = answer.json()["image"]
    return None if image is None else image["id"]


def test_import_order_claims_renewal_and_empty_queue(client: TestClient, headers: dict, session: Session) -> None:
    project = make_project(session)
    ids = add_images(session, project, 3)
    add_images(session, project, 1, split=Split.val, seed0=10)
    answer = client.post(next_url(project), headers=headers[Role.annotator]).json()
    assert answer["image"]["id"] == ids[0] and answer["rank"] is None and answer["claim_expires_at"]
    assert answer["image"]["claimed_by"] is not None
    assert take(client, project, headers[Role.annotator]) == ids[0]  # a live claim comes back
    assert take(client, project, headers[Role.lead]) == ids[1]
    assert take(client, project, headers[Role.admin]) == ids[2]
    assert take(client, project, headers[Role.lead]) == ids[1]
    # a fourth annotator finds nothing: the val image is never queued
    fourth, token = create_user(session, "fourth", Role.annotator)
    join_projects(session, fourth)
    session.commit()
    empty = client.post(next_url(project), headers={"Authorization": f"Bearer {token}"})
    assert empty.status_code == 200 and empty.json() == {
        "image": None,
        "review": None,
        "claim_expires_at": None,
        "rank": None,
        "score": None,
        "consensus_second": False,
    }


def test_ranking_from_the_latest_done_round(client: TestClient, headers: dict, session: Session) -> None:
    project = make_project(session)
    ids = add_images(session, project, 5)
    done = Round(project_id=project.id, index=1, method="cps-mars", strategy="ueq", budget=2, status=RoundStatus.done)
    running = Round(project_id=project.id, index=2, method="cps-mars", strategy="ueq", budget=2)
    session.add_all([done, running])
    session.flush()
    # the done round ranks ids[3] first, then ids[1]; ids[4] came after it (no score); the running one is ignored
    for image_id, rank in ((ids[3], 1), (ids[1], 2), (ids[0], 3), (ids[2], 4)):
        session.add(Score(round_id=done.id, image_id=image_id, score=1.0 / rank, rank=rank))
    session.add(Score(round_id=running.id, image_id=ids[4], score=9.0, rank=1))
    session.commit()
    first = client.post(next_url(project), headers=headers[Role.annotator]).json()
    assert (first["image"]["id"], first["rank"], first["score"]) == (ids[3], 1, pytest.approx(1.0))
    order = [take(client, project, headers[role]) for role in (Role.lead, Role.admin)]
    assert order == [ids[1], ids[0]]


def test_expired_claims_release_and_skip(client: TestClient, headers: dict, session: Session) -> None:
    project = make_project(session)
    ids = add_images(session, project, 3)
    annotator, lead = headers[Role.annotator], headers[Role.lead]
    assert take(client, project, annotator) == ids[0]
    image = session.get(Image, ids[0])
    assert image is not None
    image.claim_expires_at = utcnow() - timedelta(seconds=1)
    session.commit()
    assert take(client, project, lead) == ids[0]  # an expired claim is anyone's

    base = f"/api/v1/projects/{project.id}/queue"
    not_mine = client.post(f"{base}/release", json={"image_id": ids[0]}, headers=annotator)
    assert not_mine.status_code == 409 and not_mine.json()["detail"] == f"image {ids[0]} is not claimed by you"
    assert client.post(f"{base}/release", json={"image_id": ids[0]}, headers=lead).status_code == 204
    assert take(client, project, annotator) == ids[0]

    assert client.post(f"{base}/skip", json={"image_id": ids[0]}, headers=annotator).status_code == 204
    assert take(client, project, annotator) == ids[1]  # a skipped image is not handed to the same caller
    assert take(client, project, lead) == ids[0]  # but to others it is
    missing = client.post(f"{base}/skip", json={"image_id": 9999}, headers=annotator)
    assert missing.status_code == 404 and "image 9999" in missing.json()["detail"]
    assert client.post(f"{base}/skip", json={"image": 1}, headers=annotator).status_code == 422


def test_labeled_images_leave_the_queue(client: TestClient, headers: dict, session: Session) -> None:
    project = make_project(session)
    ids = add_images(session, project, 2)
    image = session.get(Image, ids[0])
    assert image is not None
    add_mask_version(session, image, mask_png(8, 8), source=MaskSource.human, base_version=None, limits=LIMITS)
    session.commit()
    assert take(client, project, headers[Role.annotator]) == ids[1]


def race_annotators(
    url: str, project_id: int, user_ids: list[int], claims: list[tuple[int, int]]
) -> list[BaseException]:
    """Each thread is one annotator: next, label it (which ends the claim), next again, until the pool is empty."""
    start = threading.Barrier(len(user_ids))
    errors: list[BaseException] = []
    lock = threading.Lock()

    def annotate(user_id: int) -> None:
        try:
            start.wait()
            while True:
                with session_scope(url) as session:
                    claim = claim_next_image(session, project_id, user_id, claim_seconds=600)
                    if claim is None:
                        return
                    image_id = claim.image.id
                with lock:
                    claims.append((user_id, image_id))
                with session_scope(url) as session:
                    image = session.get(Image, image_id)
                    assert image is not None and image.claimed_by == user_id
                    add_mask_version(
                        session,
                        image,
                        mask_png(8, 8),
                        source=MaskSource.human,
                        base_version=None,
                        author_id=user_id,
                        limits=LIMITS,
                    )
        except BaseException as error:  # reported to the test, not lost in the thread
            errors.append(error)

    threads = [threading.Thread(target=annotate, args=(user_id,)) for user_id in user_ids]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=300)
    return errors


def check_no_double_hand_out(url: str, annotators: int, images: int) -> None:
    with session_scope(url) as session:
        project = create_project(session, "race", DEFAULT_CLASSES)
        project_id = project.id
        user_ids = [create_user(session, f"annotator-{n}", Role.annotator)[0].id for n in range(annotators)]
    with session_scope(url) as session:
        add_images(session, session.get(Project, project_id), images)  # type: ignore[arg-type]
    claims: list[tuple[int, int]] = []
    errors = race_annotators(url, project_id, user_ids, claims)
    assert errors == []
    handed = Counter(image_id for _user, image_id in claims)
    assert len(claims) == images and set(handed.values()) == {1}, handed.most_common(3)
    assert len({user for user, _image in claims}) > 1  # the annotators really worked side by side
    with get_sessionmaker(url)() as session:
        statuses = {image.status for image in session.query(Image).filter(Image.project_id == project_id)}
    assert statuses == {ImageStatus.labeled}


def test_ten_annotators_never_share_an_image_on_postgresql(db_url: str) -> None:
    check_no_double_hand_out(db_url, annotators=10, images=80)


def test_annotators_never_share_an_image_on_sqlite(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'queue.sqlite3'}"
    upgrade_to_head(url)
    check_no_double_hand_out(url, annotators=6, images=40)
