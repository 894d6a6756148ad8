"""The dashboard's team figures: per annotator (labels saved, acceptance rate, agreement with reviewers'
corrections and with the other annotator of a consensus pair, median time null until effort is recorded) and the
review panel (pending, accepted, rejected, pairs, disagreements), for every project role; non-members get 404."""

from __future__ import annotations

import pytest
from fastapi.testclient import TestClient
from sqlalchemy.orm import Session

from server.models import ProjectRole, Role
from server.store.members import add_member
from server.store.users import create_user
from tests.factories import make_project, png_bytes
from tests.integration.test_consensus import known_masks
from tests.integration.test_masks import save, stored_image

API = "/api/v1"
PAIR_MIOU = (16 / 24 + 8 / 16) / 2  # the agreement of the two known masks


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def test_team_figures_per_annotator_and_the_review_panel(client: TestClient, session: Session, headers: dict) -> None:
    project = make_project(session)
    images = [stored_image(session, project, seed=s) for s in range(3)]
    ann1, t1 = create_user(session, "ann1", Role.annotator)
    ann2, t2 = create_user(session, "ann2", Role.annotator)
    rev, trev = create_user(session, "rev", Role.annotator)
    add_member(session, project, ann1, ProjectRole.annotator)
    add_member(session, project, ann2, ProjectRole.annotator)
    add_member(session, project, rev, ProjectRole.reviewer)
    session.commit()
    first, second, reviewer, lead = bearer(t1), bearer(t2), bearer(trev), headers[Role.lead]
    base = f"{API}/projects/{project.id}"
    a, b = known_masks()

    assert client.patch(base, json={"consensus_percent": 100}, headers=lead).status_code == 200
    assert save(client, images[0], png_bytes(a), first).status_code == 201
    assert save(client, images[0], png_bytes(b), second, base=1).status_code == 201  # a pair, below 0.8
    assert client.patch(base, json={"consensus_percent": 0}, headers=lead).status_code == 200
    assert save(client, images[1], png_bytes(a), first).status_code == 201
    accepted = {"mask_version": 1, "decision": "accepted"}
    assert client.post(f"{base}/images/{images[1].id}/reviews", json=accepted, headers=reviewer).status_code == 201
    assert save(client, images[1], png_bytes(b), lead, base=1).status_code == 201  # the lead's correction
    assert save(client, images[2], png_bytes(a), second).status_code == 201
    rejected = {"mask_version": 1, "decision": "rejected", "comment": "sand"}
    assert client.post(f"{base}/images/{images[2].id}/reviews", json=rejected, headers=reviewer).status_code == 201

    answer = client.get(f"{base}/team", headers=lead)
    assert answer.status_code == 200, answer.text
    figures = answer.json()
    assert figures["review"] == {
        "pending": 2,  # image 0 (ann2's second label) and image 1 (the lead's correction)
        "accepted": 1,
        "rejected": 1,
        "consensus_pairs": 1,
        "disagreements": 1,
        "mean_consensus_miou": pytest.approx(PAIR_MIOU),
    }
    people = {f["user_name"]: f for f in figures["annotators"]}
    assert set(people) == {"ann1", "ann2", "annotator-user", "lead-user"}  # the reviewer and the client do not label
    one, two = people["ann1"], people["ann2"]
    assert (one["labels_saved"], one["images_labelled"], one["accepted"], one["rejected"]) == (2, 2, 1, 0)
    assert one["acceptance_rate"] == 1.0
    assert one["agreement_with_annotators"] == pytest.approx(PAIR_MIOU) and one["consensus_pairs"] == 1
    assert one["agreement_with_reviewers"] == pytest.approx(PAIR_MIOU) and one["corrections"] == 1
    assert (two["labels_saved"], two["accepted"], two["rejected"], two["acceptance_rate"]) == (2, 0, 1, 0.0)
    assert two["agreement_with_annotators"] == pytest.approx(PAIR_MIOU)
    assert two["agreement_with_reviewers"] is None and two["corrections"] == 0
    assert people["lead-user"]["project_role"] == "lead" and people["lead-user"]["labels_saved"] == 1
    assert people["annotator-user"]["labels_saved"] == 0 and people["annotator-user"]["acceptance_rate"] is None
    assert all(f["median_seconds_per_image"] is None for f in figures["annotators"])  # no effort recorded yet


def test_team_figures_by_role_and_bad_ids(client: TestClient, session: Session, headers: dict) -> None:
    project = make_project(session)
    other = make_project(session, "elsewhere", members=False)
    for role in Role:
        answer = client.get(f"{API}/projects/{project.id}/team", headers=headers[role])
        assert answer.status_code == 200, (role, answer.text)
        assert answer.json()["review"]["pending"] == 0
    outsider = client.get(f"{API}/projects/{other.id}/team", headers=headers[Role.lead])
    assert outsider.status_code == 404 and f"project {other.id} not found" in outsider.json()["detail"]
    assert client.get(f"{API}/projects/0/team", headers=headers[Role.admin]).status_code == 404  # not an id
    assert client.get(f"{API}/projects/99999999999/team", headers=headers[Role.admin]).status_code == 404
    assert client.get(f"{API}/projects/123456/team", headers=headers[Role.admin]).status_code == 404
    assert client.get(f"{API}/projects/{project.id}/team").status_code == 401
