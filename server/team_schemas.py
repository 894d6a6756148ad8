"""Request and response bodies of team work: project members (and, below, review decisions)."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field

from server.models import MaskSource, ProjectRole, ReviewDecision
from server.schemas import MAX_INT, ImagePublic, UTCDateTime


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


MAX_COMMENT_CHARS = 2000


class ReviewCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    mask_version: int = Field(
        ge=1, le=MAX_INT, description="the version reviewed: the image's newest human label (else 409, stale)"
    )
    decision: ReviewDecision
    comment: str = Field("", max_length=MAX_COMMENT_CHARS, description="what to fix; required to reject")


class ReviewQueueItem(BaseModel):
    image: ImagePublic
    mask_version: int
    mask_source: MaskSource
    author_id: int | None
    author_name: str | None
    labeled_fraction: float
    saved_at: UTCDateTime
    effort_seconds: float | None = Field(None, description="active labelling time, once the web app records it")


class ReviewQueuePage(BaseModel):
    items: list[ReviewQueueItem]
    total: int = Field(description="labels awaiting review (all of them, or the project's drawn share)")
    accepted: int = Field(description="decisions so far: accepted")
    rejected: int = Field(description="decisions so far: rejected")
    review_percent: int
    limit: int
    offset: int
