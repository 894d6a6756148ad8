"""Request and response bodies of team work: project members (and, below, review decisions)."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field

from server.models import ProjectRole
from server.schemas import UTCDateTime


class MemberCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    user: str = Field(min_length=1, max_length=120, description="the user's name")
    role: ProjectRole


class MemberUpdate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    role: ProjectRole


class MemberPublic(BaseModel):
    project_id: int
    user_id: int
    user_name: str
    role: ProjectRole
    added_by: int | None
    created_at: UTCDateTime
