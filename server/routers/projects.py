"""Projects: create, list, read, update (name, description, classes)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, status

from server.deps import SessionDep, require
from server.errors import error_responses
from server.models import User
from server.schemas import PathId, ProjectCreate, ProjectPublic, ProjectUpdate
from server.store import projects as store

router = APIRouter(prefix="/projects", tags=["projects"])


@router.post("", status_code=status.HTTP_201_CREATED, responses=error_responses(409))
def create_project(
    body: ProjectCreate, session: SessionDep, _user: Annotated[User, Depends(require("project.create"))]
) -> ProjectPublic:
    project = store.create_project(
        session,
        body.name,
        [c.model_dump(mode="json") for c in body.classes],
        description=body.description,
        ignore_index=body.ignore_index,
    )
    return ProjectPublic.model_validate(project)


@router.get("")
def list_projects(session: SessionDep, _user: Annotated[User, Depends(require("project.read"))]) -> list[ProjectPublic]:
    return [ProjectPublic.model_validate(p) for p in store.list_projects(session)]


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
    project = store.update_project(session, project, name=body.name, description=body.description, classes=classes)
    return ProjectPublic.model_validate(project)
