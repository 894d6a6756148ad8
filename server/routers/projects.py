"""Projects: create, list, read, update (name, description, classes)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, status

from server.deps import SessionDep, require
from server.errors import error_responses
from server.models import Project, ProjectRole, User
from server.schemas import PathId, ProjectCreate, ProjectPublic, ProjectUpdate
from server.store import projects as store
from server.store.members import add_member, member_role, roles_of, visible_project_ids

router = APIRouter(prefix="/projects", tags=["projects"])


def project_public(project: Project, my_role: ProjectRole | None) -> ProjectPublic:
    """The project as the caller sees it: with their project role there (what the web app's menus follow)."""
    public = ProjectPublic.model_validate(project)
    public.my_role = my_role
    return public


@router.post("", status_code=status.HTTP_201_CREATED, responses=error_responses(409))
def create_project(
    body: ProjectCreate, session: SessionDep, user: Annotated[User, Depends(require("project.create"))]
) -> ProjectPublic:
    """The creator becomes the project's lead member."""
    project = store.create_project(
        session,
        body.name,
        [c.model_dump(mode="json") for c in body.classes],
        description=body.description,
        ignore_index=body.ignore_index,
    )
    add_member(session, project, user, ProjectRole.lead, added_by=user.id)
    return project_public(project, ProjectRole.lead)


@router.get("")
def list_projects(session: SessionDep, user: Annotated[User, Depends(require("project.read"))]) -> list[ProjectPublic]:
    """The projects the caller is a member of (an admin: all)."""
    visible = visible_project_ids(session, user)
    roles = roles_of(session, user)
    return [
        project_public(p, roles.get(p.id)) for p in store.list_projects(session) if visible is None or p.id in visible
    ]


@router.get("/{project_id}")
def get_project(
    project_id: PathId, session: SessionDep, user: Annotated[User, Depends(require("project.read"))]
) -> ProjectPublic:
    return project_public(store.get_project(session, project_id), member_role(session, project_id, user.id))


@router.patch("/{project_id}", responses=error_responses(409))
def update_project(
    project_id: PathId,
    body: ProjectUpdate,
    session: SessionDep,
    user: Annotated[User, Depends(require("project.update"))],
) -> ProjectPublic:
    project = store.get_project(session, project_id)
    classes = None if body.classes is None else [c.model_dump(mode="json") for c in body.classes]
    project = store.update_project(
        session,
        project,
        name=body.name,
        description=body.description,
        classes=classes,
        review_percent=body.review_percent,
        consensus_percent=body.consensus_percent,
        consensus_threshold=body.consensus_threshold,
    )
    return project_public(project, member_role(session, project_id, user.id))
