"""Who may do what: the role × action tables, as data, in one place. Routes name an action through
server.deps.require(action); tests walk these tables over every route.

Two tables. A route inside a project (its path names a project, or a job of one) is decided by the caller's
project role there (PROJECT_PERMISSIONS); a non-member gets 404, as if the project did not exist, and an admin
reaches every project. Any other route is decided by the account's role (PERMISSIONS). server.deps.Requirement
applies both, and is the only place that does."""

from __future__ import annotations

from server.models import ProjectRole, Role

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
        "member.read",  # a project's member list
        "review.read",  # review decisions, the review queue's figures
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
        "member.admin",  # add, change and remove a project's members
        "review.write",  # accept or reject a saved human label
    }
)
ALL_ACTIONS: frozenset[str] = READ_ACTIONS | WRITE_ACTIONS

PERMISSIONS: dict[Role, frozenset[str]] = {
    Role.admin: ALL_ACTIONS,
    Role.lead: ALL_ACTIONS - {"user.admin"},
    Role.annotator: READ_ACTIONS | {"mask.write", "queue.use", "sam.use"},
    Role.client: READ_ACTIONS,
}


# What a project role may do inside its project. Creating projects and managing accounts are not project actions.
PROJECT_ACTIONS: frozenset[str] = ALL_ACTIONS - {"project.create", "user.admin", "user.self"}
PROJECT_READ_ACTIONS: frozenset[str] = READ_ACTIONS & PROJECT_ACTIONS
PROJECT_PERMISSIONS: dict[ProjectRole, frozenset[str]] = {
    ProjectRole.lead: PROJECT_ACTIONS,
    ProjectRole.annotator: PROJECT_READ_ACTIONS | {"mask.write", "queue.use", "sam.use"},
    ProjectRole.reviewer: PROJECT_READ_ACTIONS | {"review.write"},
    ProjectRole.client: PROJECT_READ_ACTIONS,
}

# The project roles an account may hold: a read-only account stays read-only in every project.
ALLOWED_PROJECT_ROLES: dict[Role, frozenset[ProjectRole]] = {
    Role.admin: frozenset(ProjectRole),
    Role.lead: frozenset(ProjectRole),
    Role.annotator: frozenset(ProjectRole),
    Role.client: frozenset({ProjectRole.client}),
}


def is_allowed_in_project(role: ProjectRole, action: str) -> bool:
    if action not in ALL_ACTIONS:
        raise KeyError(f"unknown action {action!r}; add it to server/permissions.py")
    return action in PROJECT_PERMISSIONS[role]


def is_allowed(role: Role, action: str) -> bool:
    if action not in ALL_ACTIONS:
        raise KeyError(f"unknown action {action!r}; add it to server/permissions.py")
    return action in PERMISSIONS[role]
