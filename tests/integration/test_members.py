"""Project membership: the member routes, the project list scoped to the caller, the CLI, the demo's members,
and the migration that keeps existing users in existing projects."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from alembic import command
from fastapi.testclient import TestClient
from sqlalchemy import create_engine, pool, select, text
from sqlalchemy.orm import Session

from server.app import API_PREFIX
from server.db import session_scope
from server.demo import DEMO_LEAD, DEMO_NAME, demo_lead_token, make_demo
from server.models import Project, ProjectMember, ProjectRole, Role
from server.schema import alembic_config, upgrade_to_head
from server.store.users import create_user
from tests.factories import make_project, project_payload

REPO = Path(__file__).resolve().parents[2]


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def members_of(session: Session, project_id: int) -> dict[str, ProjectRole]:
    session.expire_all()
    rows = session.execute(
        text("SELECT u.name, m.role FROM project_members m JOIN users u ON u.id = m.user_id WHERE m.project_id = :p"),
        {"p": project_id},
    )
    return {name: ProjectRole(role) for name, role in rows}


def test_the_creator_leads_and_adds_members_who_then_see_the_project(client: TestClient, session: Session) -> None:
    _lead, lead_token = create_user(session, "lena", Role.lead)
    _ann, ann_token = create_user(session, "arno", Role.annotator)
    session.commit()
    project = client.post(f"{API_PREFIX}/projects", json=project_payload("a"), headers=bearer(lead_token)).json()
    base = f"{API_PREFIX}/projects/{project['id']}"
    assert client.get(f"{API_PREFIX}/projects", headers=bearer(ann_token)).json() == []
    assert client.get(base, headers=bearer(ann_token)).status_code == 404

    added = client.post(f"{base}/members", json={"user": "arno", "role": "annotator"}, headers=bearer(lead_token))
    assert added.status_code == 201, added.text
    assert added.json()["user_name"] == "arno" and added.json()["role"] == "annotator"
    assert [p["name"] for p in client.get(f"{API_PREFIX}/projects", headers=bearer(ann_token)).json()] == ["a"]
    listed = client.get(f"{base}/members", headers=bearer(ann_token)).json()
    assert [(m["user_name"], m["role"]) for m in listed] == [("arno", "annotator"), ("lena", "lead")]

    # An annotator may not manage members; the lead may change a role and remove a member.
    denied = client.post(f"{base}/members", json={"user": "lena", "role": "client"}, headers=bearer(ann_token))
    assert denied.status_code == 403 and "member.admin" in denied.json()["detail"]
    arno_id = added.json()["user_id"]
    changed = client.patch(f"{base}/members/{arno_id}", json={"role": "reviewer"}, headers=bearer(lead_token))
    assert changed.status_code == 200 and changed.json()["role"] == "reviewer"
    assert client.delete(f"{base}/members/{arno_id}", headers=bearer(lead_token)).status_code == 204
    assert client.get(base, headers=bearer(ann_token)).status_code == 404
    assert members_of(session, project["id"]) == {"lena": ProjectRole.lead}


def test_the_project_list_shows_only_the_callers_projects_and_admins_all(
    client: TestClient, session: Session, headers: dict
) -> None:
    make_project(session, "mine")  # every role user is a member
    make_project(session, "theirs", members=False)
    names = {
        role: [p["name"] for p in client.get(f"{API_PREFIX}/projects", headers=headers[role]).json()] for role in Role
    }
    assert names == {
        Role.admin: ["mine", "theirs"],
        Role.lead: ["mine"],
        Role.annotator: ["mine"],
        Role.client: ["mine"],
    }


def test_bad_member_input_is_4xx_naming_the_problem_and_stores_nothing(
    client: TestClient, session: Session, headers: dict
) -> None:
    project = make_project(session)
    base = f"{API_PREFIX}/projects/{project.id}/members"
    create_user(session, "reader", Role.client)
    session.commit()
    before = members_of(session, project.id)
    lead = headers[Role.lead]

    unknown = client.post(base, json={"user": "nobody", "role": "annotator"}, headers=lead)
    assert (unknown.status_code, unknown.json()["detail"]) == (404, "user named 'nobody' not found")
    duplicate = client.post(base, json={"user": "annotator-user", "role": "reviewer"}, headers=lead)
    assert duplicate.status_code == 409
    assert "'annotator-user' is already a member of project" in duplicate.json()["detail"]
    client_as_lead = client.post(base, json={"user": "reader", "role": "lead"}, headers=lead)
    assert client_as_lead.status_code == 409
    assert client_as_lead.json()["detail"] == "user 'reader' has a client account and may only be a project client"
    bad_role = client.post(base, json={"user": "reader", "role": "owner"}, headers=lead)
    assert bad_role.status_code == 422 and bad_role.json()["errors"][0]["loc"] == ["body", "role"]
    not_member = client.delete(f"{base}/999", headers=lead)
    assert (not_member.status_code, not_member.json()["detail"]) == (
        404,
        f"member 999 not found in project {project.id}",
    )
    assert client.patch(f"{base}/999", json={"role": "client"}, headers=lead).status_code == 404
    assert members_of(session, project.id) == before


def test_a_non_member_cannot_claim_or_label_in_another_project(client: TestClient, session: Session) -> None:
    mine = make_project(session, "a", members=False)
    other = make_project(session, "b", members=False)
    user, token = create_user(session, "ann", Role.annotator)
    session.add(ProjectMember(project_id=mine.id, user_id=user.id, role=ProjectRole.annotator))
    session.commit()
    assert client.post(f"{API_PREFIX}/projects/{mine.id}/queue/next", headers=bearer(token)).status_code == 200
    refused = client.post(f"{API_PREFIX}/projects/{other.id}/queue/next", headers=bearer(token))
    assert (refused.status_code, refused.json()["detail"]) == (404, f"project {other.id} not found")


def run_cli(db_url: str, *args: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("MARSLABEL_")}
    env["MARSLABEL_DATABASE_URL"] = db_url
    return subprocess.run(
        [sys.executable, "-m", "server.cli", *args], cwd=REPO, env=env, capture_output=True, text=True, timeout=120
    )


def test_cli_adds_and_removes_members(db_url: str, session: Session) -> None:
    project = make_project(session, "gale", members=False)
    create_user(session, "cleo", Role.annotator)
    session.commit()
    added = run_cli(db_url, "add-member", "gale", "cleo", "--role", "reviewer")
    assert added.returncode == 0, added.stderr
    assert "added 'cleo' to project 'gale'" in added.stdout
    assert members_of(session, project.id) == {"cleo": ProjectRole.reviewer}
    again = run_cli(db_url, "add-member", str(project.id), "cleo", "--role", "annotator")
    assert again.returncode == 1 and "already a member" in again.stderr
    unknown = run_cli(db_url, "add-member", "nowhere", "cleo", "--role", "annotator")
    assert unknown.returncode == 1 and "no project named or numbered 'nowhere'" in unknown.stderr
    removed = run_cli(db_url, "remove-member", "gale", "cleo")
    assert removed.returncode == 0, removed.stderr
    assert members_of(session, project.id) == {}
    not_member = run_cli(db_url, "remove-member", "gale", "cleo")
    assert not_member.returncode == 1 and "not found in project" in not_member.stderr


def test_the_demo_lead_is_a_member_of_the_demo(db_url: str, tmp_path: Path) -> None:
    make_demo(db_url, scenes=2)
    demo_lead_token(db_url, tmp_path)
    with session_scope(db_url) as session:
        project = session.scalar(select(Project).where(Project.name == DEMO_NAME))
        assert project is not None
        assert members_of(session, project.id) == {DEMO_LEAD: ProjectRole.lead}
    make_demo(db_url, scenes=2)  # idempotent: no duplicate membership


def test_upgrade_keeps_existing_users_in_existing_projects(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'old.sqlite3'}"
    command.upgrade(alembic_config(url), "0003")
    engine = create_engine(url, poolclass=pool.NullPool)
    with engine.begin() as connection:
        connection.execute(
            text(
                "INSERT INTO users (id, name, role, created_at) VALUES (1, 'root', 'admin', CURRENT_TIMESTAMP), "
                "(2, 'lea', 'lead', CURRENT_TIMESTAMP), (3, 'ann', 'annotator', CURRENT_TIMESTAMP), "
                "(4, 'cli', 'client', CURRENT_TIMESTAMP)"
            )
        )
        connection.execute(
            text(
                "INSERT INTO projects (id, name, description, classes, ignore_index, created_at, updated_at, "
                "pseudo_label_threshold) VALUES (1, 'p1', '', '[]', 255, CURRENT_TIMESTAMP, CURRENT_TIMESTAMP, 0), "
                "(2, 'p2', '', '[]', 255, CURRENT_TIMESTAMP, CURRENT_TIMESTAMP, 0)"
            )
        )
    upgrade_to_head(url)
    with engine.connect() as connection:
        rows = {tuple(r) for r in connection.execute(text("SELECT project_id, user_id, role FROM project_members"))}
    engine.dispose()
    roles = {2: "lead", 3: "annotator", 4: "client"}
    assert rows == {(p, u, r) for p in (1, 2) for u, r in roles.items()}


def test_the_project_answer_carries_the_callers_project_role(client: TestClient, session: Session) -> None:
    """An annotator account leading a project is told so (the web app's menus follow it); admins who are not
    members get null; the list, the project and its update answer alike."""
    _ann, ann_token = create_user(session, "anna", Role.annotator)
    _admin, admin_token = create_user(session, "root", Role.admin)
    _lead, lead_token = create_user(session, "lea", Role.lead)
    session.commit()
    project = client.post(f"{API_PREFIX}/projects", json=project_payload("p"), headers=bearer(lead_token)).json()
    assert project["my_role"] == "lead"
    base = f"{API_PREFIX}/projects/{project['id']}"
    client.post(f"{base}/members", json={"user": "anna", "role": "lead"}, headers=bearer(lead_token))
    assert client.get(base, headers=bearer(ann_token)).json()["my_role"] == "lead"
    assert [p["my_role"] for p in client.get(f"{API_PREFIX}/projects", headers=bearer(ann_token)).json()] == ["lead"]
    renamed = client.patch(base, json={"name": "q"}, headers=bearer(ann_token))
    assert renamed.status_code == 200 and renamed.json()["my_role"] == "lead"
    assert client.get(base, headers=bearer(admin_token)).json()["my_role"] is None
    client.post(f"{base}/members", json={"user": "anna", "role": "reviewer"}, headers=bearer(lead_token))
    client.patch(f"{base}/members/{_ann.id}", json={"role": "reviewer"}, headers=bearer(lead_token))
    assert client.get(base, headers=bearer(ann_token)).json()["my_role"] == "reviewer"
