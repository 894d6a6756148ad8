"""Projects: a class list and an ignore index that every mask of the project is checked against."""

from __future__ import annotations

from typing import Any

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from server.models import Image, MaskVersion, Project
from server.store.errors import Conflict, InvalidInput, NotFound


def get_project(session: Session, project_id: int) -> Project:
    project = session.get(Project, project_id)
    if project is None:
        raise NotFound("project", project_id)
    return project


def list_projects(session: Session) -> list[Project]:
    return list(session.scalars(select(Project).order_by(Project.id)))


def _flush_unique_name(session: Session, project: Project) -> None:
    try:
        with session.begin_nested():
            session.flush()
    except IntegrityError as error:
        raise Conflict(f"a project named {project.name!r} already exists") from error


def create_project(
    session: Session, name: str, classes: list[dict[str, Any]], *, description: str = "", ignore_index: int = 255
) -> Project:
    if session.scalar(select(Project.id).where(Project.name == name)) is not None:
        raise Conflict(f"a project named {name!r} already exists")
    project = Project(name=name, description=description, classes=classes, ignore_index=ignore_index)
    session.add(project)
    _flush_unique_name(session, project)
    return project


def class_ids_in_use(session: Session, project_id: int) -> set[int]:
    """Every class id some mask version of the project uses (any source, any version: history is kept)."""
    used: set[int] = set()
    rows = session.scalars(
        select(MaskVersion.class_ids)
        .join(Image, Image.id == MaskVersion.image_id)
        .where(Image.project_id == project_id)
    )
    for class_ids in rows:
        used.update(class_ids)
    return used


def update_project(
    session: Session,
    project: Project,
    *,
    name: str | None = None,
    description: str | None = None,
    classes: list[dict[str, Any]] | None = None,
    review_percent: int | None = None,
    consensus_percent: int | None = None,
    consensus_threshold: float | None = None,
) -> Project:
    if review_percent is not None:
        project.review_percent = review_percent
    if consensus_percent is not None:
        project.consensus_percent = consensus_percent
    if consensus_threshold is not None:
        project.consensus_threshold = consensus_threshold
    if classes is not None:
        ids = [c["id"] for c in classes]
        if ids != list(range(len(ids))) or project.ignore_index in ids or len({c["name"] for c in classes}) != len(ids):
            raise InvalidInput(
                f"classes must have ids 0..{len(ids) - 1} in order and unique names, and must not use the "
                f"ignore index {project.ignore_index}"
            )
        removed = {c["id"] for c in project.classes} - {c["id"] for c in classes}
        in_use = sorted(removed & class_ids_in_use(session, project.id)) if removed else []
        if in_use:
            raise Conflict(f"cannot remove class ids {in_use}: mask versions of project {project.id} use them")
        project.classes = classes
    if description is not None:
        project.description = description
    if name is not None and name != project.name:
        if session.scalar(select(Project.id).where(Project.name == name, Project.id != project.id)) is not None:
            raise Conflict(f"a project named {name!r} already exists")
        project.name = name
    _flush_unique_name(session, project)
    return project
