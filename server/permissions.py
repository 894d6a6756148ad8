"""Who may do what: the role × action table, as data, in one place. Routes name an action through
server.deps.require(action); tests walk this table over every route."""

from __future__ import annotations

from server.models import Role

# Every action a route can require. Reads are what a read-only REST client may do.
READ_ACTIONS: frozenset[str] = frozenset(
    {
        "project.read",
        "image.read",
        "mask.read",
        "job.read",
        "model.read",
        "label.export",
        "user.self",  # see one's own account
    }
)
WRITE_ACTIONS: frozenset[str] = frozenset(
    {
        "project.create",
        "project.update",
        "image.upload",
        "mask.write",
        "queue.use",
        "sam.use",  # SAM embeddings and server-side decoding: for people who label
        "import.start",
        "round.start",
        "pseudo_label.start",
        "job.cancel",
        "user.admin",
    }
)
ALL_ACTIONS: frozenset[str] = READ_ACTIONS | WRITE_ACTIONS

PERMISSIONS: dict[Role, frozenset[str]] = {
    Role.admin: ALL_ACTIONS,
    Role.lead: ALL_ACTIONS - {"user.admin"},
    Role.annotator: READ_ACTIONS | {"mask.write", "queue.use", "sam.use"},
    Role.client: READ_ACTIONS,
}


def is_allowed(role: Role, action: str) -> bool:
    if action not in ALL_ACTIONS:
        raise KeyError(f"unknown action {action!r}; add it to server/permissions.py")
    return action in PERMISSIONS[role]
