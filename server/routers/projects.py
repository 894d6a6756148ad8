"""Projects: create, list, read, update (name, description, classes)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, status

from server.deps import SessionDep, require
from server.errors import error_responses
from server.models import ProjectRole, User
from server.schemas import PathId, ProjectCreate, ProjectPublic, ProjectUpdate
from server.store import projects as store
from server.store.members import add_member, visible_project_ids

router = APIRouter(prefix="/projects", tags=["projects"])


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
    return ProjectPublic.model_validate(project)


@router.get("")
def list_projects(session: SessionDep, user: Annotated[User, Depends(require("project.read"))]) -> list[ProjectPublic]:
    """The projects the caller is a member of (an admin: all)."""
    visible = visible_project_ids(session, user)
    return [ProjectPublic.model_validate(p) for p in store.list_projects(session) if visible is None or p.id in visible]


@router.get("/{project_id}")
def get_project(
    project_id: PathId, session: SessionDep, _user: Annotated[User, Depends(require("project.read"))]
) -> ProjectPublic:
    return ProjectPublic.model_validate(store.get_project(session, project_id))


@router.patch("/{project_id}", responses=error_responses(409))
def update_project(
    project_id: PathId,
    body: ProjectUpdate,
    session: SessionDep,
    _user: Annotated[User, Depends(require("project.update"))],
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
    )
    return ProjectPublic.model_validate(project)
