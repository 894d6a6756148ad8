"""Project membership: who belongs to a project and with which project role. No commit inside."""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from server.models import Project, ProjectMember, ProjectRole, Role, User
from server.permissions import ALLOWED_PROJECT_ROLES
from server.store.errors import Conflict, NotFound


def member_role(session: Session, project_id: int, user_id: int) -> ProjectRole | None:
    return session.scalar(
        select(ProjectMember.role).where(ProjectMember.project_id == project_id, ProjectMember.user_id == user_id)
    )


def visible_project_ids(session: Session, user: User) -> set[int] | None:
    """The projects `user` reaches; None = every project (admins)."""
    if user.role is Role.admin:
        return None
    return set(session.scalars(select(ProjectMember.project_id).where(ProjectMember.user_id == user.id)))


def roles_of(session: Session, user: User) -> dict[int, ProjectRole]:
    """The user's project role in each project they are a member of."""
    rows = session.execute(select(ProjectMember.project_id, ProjectMember.role).where(ProjectMember.user_id == user.id))
    return {project_id: role for project_id, role in rows}


def list_members(session: Session, project_id: int) -> list[tuple[ProjectMember, User]]:
    rows = session.execute(
        select(ProjectMember, User)
        .join(User, User.id == ProjectMember.user_id)
        .where(ProjectMember.project_id == project_id)
        .order_by(User.name)
    )
    return [(member, user) for member, user in rows]


def find_user(session: Session, name_or_id: str | int) -> User:
    """A user by name (or by id when given an int); NotFound naming what was asked for when none."""
    if isinstance(name_or_id, int):
        user = session.get(User, name_or_id)
        if user is None:
            raise NotFound("user with id", name_or_id)
        return user
    user = session.scalar(select(User).where(User.name == name_or_id.strip()))
    if user is None:
        raise NotFound("user named", repr(name_or_id))
    return user


def _check_role_fits(user: User, role: ProjectRole) -> None:
    if role not in ALLOWED_PROJECT_ROLES[user.role]:
        allowed = ", ".join(sorted(r.value for r in ALLOWED_PROJECT_ROLES[user.role]))
        raise Conflict(f"user {user.name!r} has a {user.role.value} account and may only be a project {allowed}")


def add_member(
    session: Session, project: Project, user: User, role: ProjectRole, *, added_by: int | None = None
) -> ProjectMember:
    _check_role_fits(user, role)
    existing = member_role(session, project.id, user.id)
    if existing is not None:
        raise Conflict(
            f"user {user.name!r} is already a member of project {project.id} (role {existing.value}); "
            "change the role instead"
        )
    member = ProjectMember(project_id=project.id, user_id=user.id, role=role, added_by=added_by)
    try:
        with session.begin_nested():
            session.add(member)
            session.flush()
    except IntegrityError as error:  # added at the same moment by someone else
        raise Conflict(f"user {user.name!r} is already a member of project {project.id}") from error
    return member


def get_member(session: Session, project_id: int, user_id: int) -> ProjectMember:
    member = session.get(ProjectMember, (project_id, user_id))
    if member is None:
        raise NotFound("member", user_id, within=f"project {project_id}")
    return member


def change_member_role(session: Session, member: ProjectMember, role: ProjectRole) -> ProjectMember:
    user = session.get(User, member.user_id)
    assert user is not None  # the foreign key cascades deletes
    _check_role_fits(user, role)
    member.role = role
    session.flush()
    return member


def remove_member(session: Session, project_id: int, user_id: int) -> None:
    session.delete(get_member(session, project_id, user_id))
    session.flush()
