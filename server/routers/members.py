"""Project members: list, add (by user name), change a member's project role, remove."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, status

from server.deps import SessionDep, require
from server.errors import error_responses
from server.models import ProjectMember, User
from server.schemas import PathId
from server.store import members as store
from server.store.projects import get_project
from server.team_schemas import MemberCreate, MemberPublic, MemberUpdate

ROLE_CONFLICT = "a role the user's account may not hold (a client account may only be a project client)"

router = APIRouter(prefix="/projects/{project_id}/members", tags=["members"])


def member_public(member: ProjectMember, user: User) -> MemberPublic:
    return MemberPublic(
        project_id=member.project_id,
        user_id=user.id,
        user_name=user.name,
        role=member.role,
        added_by=member.added_by,
        created_at=member.created_at,
    )


@router.get("")
def list_members(
    project_id: PathId, session: SessionDep, _user: Annotated[User, Depends(require("member.read"))]
) -> list[MemberPublic]:
    get_project(session, project_id)
    return [member_public(m, u) for m, u in store.list_members(session, project_id)]


@router.post(
    "",
    status_code=status.HTTP_201_CREATED,
    responses=error_responses(409, s409=f"already a member, or {ROLE_CONFLICT}"),
    description="Add a user (by name) to the project with a project role. 404 for an unknown user; 409 for "
    f"{ROLE_CONFLICT} or if already a member.",
)
def add_member(
    project_id: PathId,
    body: MemberCreate,
    session: SessionDep,
    user: Annotated[User, Depends(require("member.admin"))],
) -> MemberPublic:
    project = get_project(session, project_id)
    added = store.find_user(session, body.user)
    member = store.add_member(session, project, added, body.role, added_by=user.id)
    return member_public(member, added)


@router.patch("/{user_id}", responses=error_responses(409, s409=ROLE_CONFLICT))
def change_member(
    project_id: PathId,
    user_id: PathId,
    body: MemberUpdate,
    session: SessionDep,
    _user: Annotated[User, Depends(require("member.admin"))],
) -> MemberPublic:
    get_project(session, project_id)
    member = store.change_member_role(session, store.get_member(session, project_id, user_id), body.role)
    target = session.get(User, user_id)
    assert target is not None
    return member_public(member, target)


@router.delete("/{user_id}", status_code=status.HTTP_204_NO_CONTENT)
def remove_member(
    project_id: PathId, user_id: PathId, session: SessionDep, _user: Annotated[User, Depends(require("member.admin"))]
) -> None:
    get_project(session, project_id)
    store.remove_member(session, project_id, user_id)
