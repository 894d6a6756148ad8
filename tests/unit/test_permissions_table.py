"""The role × action table says what the issue says, cell by cell."""

from __future__ import annotations

import pytest

from server.models import ProjectRole, Role
from server.permissions import (
    ALL_ACTIONS,
    ALLOWED_PROJECT_ROLES,
    PERMISSIONS,
    PROJECT_PERMISSIONS,
    READ_ACTIONS,
    is_allowed,
    is_allowed_in_project,
)

LEAD_WRITES = {
    "project.update",
    "image.upload",
    "mask.write",
    "queue.use",
    "import.start",
    "round.start",
    "pseudo_label.start",
    "job.cancel",
    "sam.use",
    "member.admin",
    "review.write",
}
EXPECTED_WRITES = {
    Role.admin: LEAD_WRITES | {"project.create", "user.admin"},
    Role.lead: LEAD_WRITES | {"project.create"},
    Role.annotator: {"mask.write", "queue.use", "sam.use"},
    Role.client: set(),
}  # fmt: skip


@pytest.mark.parametrize("role", list(Role))
@pytest.mark.parametrize("action", sorted(ALL_ACTIONS))
def test_cell(role: Role, action: str) -> None:
    expected = action in READ_ACTIONS or action in EXPECTED_WRITES[role]
    assert is_allowed(role, action) is expected


def test_every_role_has_a_row_and_reads_everything() -> None:
    assert set(PERMISSIONS) == set(Role)
    assert all(actions >= READ_ACTIONS for actions in PERMISSIONS.values())
    assert {"import.start", "round.start", "pseudo_label.start"} & PERMISSIONS[Role.annotator] == set()


def test_unknown_action_is_an_error_not_a_denial() -> None:
    with pytest.raises(KeyError, match="unknown action"):
        is_allowed(Role.admin, "project.delete")
    with pytest.raises(KeyError, match="unknown action"):
        is_allowed_in_project(ProjectRole.lead, "project.delete")


PROJECT_READS = READ_ACTIONS - {"user.self"}
EXPECTED_PROJECT = {
    ProjectRole.lead: PROJECT_READS | LEAD_WRITES,
    ProjectRole.annotator: PROJECT_READS | {"mask.write", "queue.use", "sam.use"},
    ProjectRole.reviewer: PROJECT_READS | {"review.write"},
    ProjectRole.client: PROJECT_READS,
}


@pytest.mark.parametrize("role", list(ProjectRole))
@pytest.mark.parametrize("action", sorted(ALL_ACTIONS))
def test_project_cell(role: ProjectRole, action: str) -> None:
    assert is_allowed_in_project(role, action) is (action in EXPECTED_PROJECT[role])


def test_account_creation_is_never_a_project_action_and_clients_stay_read_only() -> None:
    assert set(PROJECT_PERMISSIONS) == set(ProjectRole)
    assert all(not {"project.create", "user.admin"} & actions for actions in PROJECT_PERMISSIONS.values())
    assert ALLOWED_PROJECT_ROLES[Role.client] == {ProjectRole.client}
    assert ALLOWED_PROJECT_ROLES[Role.annotator] == set(ProjectRole)
