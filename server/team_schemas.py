"""Request and response bodies of team work: project members (and, below, review decisions, consensus pairs)."""

from __future__ import annotations

from pydantic import BaseModel, Field

from server.models import MaskSource, ProjectRole, ReviewDecision
from server.request_model import RequestModel
from server.schemas import MAX_INT, ImagePublic, Name, Text, UTCDateTime


class MemberCreate(RequestModel):
    user: Name = Field(max_length=120, description="the user's name")
    role: ProjectRole


class MemberUpdate(RequestModel):
    role: ProjectRole


class MemberPublic(BaseModel):
    project_id: int
    user_id: int
    user_name: str
    role: ProjectRole
    added_by: int | None
    created_at: UTCDateTime


MAX_COMMENT_CHARS = 2000


class ReviewCreate(RequestModel):
    mask_version: int = Field(
        ge=1, le=MAX_INT, description="the version reviewed: the image's newest human label (else 409, stale)"
    )
    decision: ReviewDecision
    comment: Text = Field("", max_length=MAX_COMMENT_CHARS, description="what to fix; required to reject")


class ReviewQueueItem(BaseModel):
    image: ImagePublic
    mask_version: int
    mask_source: MaskSource
    author_id: int | None
    author_name: str | None
    labeled_fraction: float
    saved_at: UTCDateTime
    effort_seconds: float | None = Field(
        None, description="active seconds this version's save cost, as the web app counted it; null when not sent"
    )
    consensus: ConsensusPublic | None = Field(
        None, description="when this label is the second of a consensus pair below the threshold: both labels"
    )


class ReviewQueuePage(BaseModel):
    items: list[ReviewQueueItem]
    total: int = Field(description="labels awaiting review (all of them, or the project's drawn share)")
    accepted: int = Field(description="decisions so far: accepted")
    rejected: int = Field(description="decisions so far: rejected")
    review_percent: int
    limit: int
    offset: int


class ConsensusLabel(BaseModel):
    mask_version: int
    author_id: int | None
    author_name: str | None


class ClassAgreement(BaseModel):
    class_id: int
    name: str
    iou: float | None = Field(description="IoU over the pixels both labelled; null where neither used the class")


class ConsensusPublic(BaseModel):
    id: int
    image_id: int
    first: ConsensusLabel = Field(description="the first annotator's label")
    second: ConsensusLabel = Field(description="the second annotator's label, saved later")
    miou: float | None = Field(description="mean IoU over the classes either used; null: no pixel both labelled")
    classes: list[ClassAgreement]
    compared_fraction: float = Field(description="share of the image's pixels both labelled")
    threshold: float = Field(description="the project's consensus_threshold when the pair was computed")
    disagreement: bool = Field(description="below the threshold (or nothing in common): sent to review")
    created_at: UTCDateTime


class ConsensusPage(BaseModel):
    items: list[ConsensusPublic]
    total: int = Field(description="pairs matching the filter")
    pairs: int = Field(description="every pair of the project")
    disagreements: int
    mean_miou: float | None
    consensus_percent: int
    consensus_threshold: float
    limit: int
    offset: int


class AnnotatorFiguresPublic(BaseModel):
    user_id: int
    user_name: str
    project_role: ProjectRole | None = Field(description="null: no longer a member")
    labels_saved: int = Field(description="human mask versions saved here")
    images_labelled: int
    accepted: int = Field(description="their versions a reviewer accepted")
    rejected: int
    acceptance_rate: float | None = Field(description="accepted / decided; null before any decision")
    agreement_with_reviewers: float | None = Field(
        description="mean mIoU of their labels with the corrections a reviewer or lead saved on top of them"
    )
    corrections: int
    agreement_with_annotators: float | None = Field(description="mean mIoU of the consensus pairs they are in")
    consensus_pairs: int
    median_seconds_per_image: float | None = Field(
        None,
        description="median active seconds per image (an image's saves summed) over their saves that recorded "
        "effort; null when none did",
    )


class ReviewPanelPublic(BaseModel):
    pending: int = Field(description="labels awaiting review")
    accepted: int
    rejected: int
    consensus_pairs: int
    disagreements: int = Field(description="consensus pairs below the threshold")
    mean_consensus_miou: float | None


class TeamFigures(BaseModel):
    review: ReviewPanelPublic
    annotators: list[AnnotatorFiguresPublic]
