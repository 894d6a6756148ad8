"""The role × action table says what the issue says, cell by cell."""

from __future__ import annotations

import pytest

from server.models import Role
from server.permissions import ALL_ACTIONS, PERMISSIONS, READ_ACTIONS, is_allowed

EXPECTED_WRITES = {
    Role.admin: {"project.create", "project.update", "image.upload", "mask.write", "queue.use", "import.start",
                 "round.start", "pseudo_label.start", "job.cancel", "user.admin", "sam.use"},
    Role.lead: {"project.create", "project.update", "image.upload", "mask.write", "queue.use", "import.start",
                "round.start", "pseudo_label.start", "job.cancel", "sam.use"},
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
