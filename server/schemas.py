"""Typed request and response bodies of the REST API: XCreate / XUpdate / XPublic per resource."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated

from fastapi import Path
from pydantic import AfterValidator, BaseModel, ConfigDict, Field, model_validator

from server.effort_schemas import BASE_AGREEMENT_DESCRIPTION, MaskEffort
from server.models import ImageStatus, MaskSource, ProjectRole, ReviewDecision, Role, Split
from server.request_model import RequestModel
from server.text import is_control

ColorChannel = Annotated[int, Field(ge=0, le=255)]

# Ids, versions, counts and offsets are stored in PostgreSQL `integer` columns (SQLite's are 64-bit): a larger
# value names nothing and would fail in the database, so it is refused where it enters, a 422 naming the field.
MAX_INT = 2**31 - 1
RowId = Annotated[int, Field(ge=1, le=MAX_INT, description="an id (1 .. 2^31-1)")]
PathId = Annotated[int, Path(ge=1, le=MAX_INT, description="an id (1 .. 2^31-1)")]
MAX_DESCRIPTION_CHARS = 10_000

# PostgreSQL text and jsonb cannot hold U+0000, so a NUL in stored text would fail in the database: every text
# a request stores is one of these two types, which refuse it where it enters (a 422 naming the field) and say
# so in the OpenAPI document's `pattern`. A name is also not blank and holds no control character.
TEXT_PATTERN = r"^[^\x00]*$"
NAME_PATTERN = r"^[^\x00-\x1f\x7f]*[^\s\x00-\x1f\x7f][^\x00-\x1f\x7f]*$"


def _no_nul(value: str) -> str:
    if "\x00" in value:
        raise ValueError("must not contain a NUL character (U+0000)")
    return value


def _name(value: str) -> str:
    if any(map(is_control, value)):
        raise ValueError("a name must not contain control characters (U+0000..U+001F, U+007F)")
    if not value.strip():
        raise ValueError("a name must not be blank")
    return value


Text = Annotated[str, AfterValidator(_no_nul), Field(json_schema_extra={"pattern": TEXT_PATTERN})]
Name = Annotated[str, AfterValidator(_name), Field(min_length=1, json_schema_extra={"pattern": NAME_PATTERN})]


def _as_utc(value: datetime) -> datetime:
    # SQLite hands back naive datetimes; every time stored is UTC, so say so in the answer.
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value


UTCDateTime = Annotated[datetime, AfterValidator(_as_utc)]


class ClassDef(RequestModel):
    id: int = Field(ge=0, le=254)
    name: Name = Field(max_length=100)
    color: tuple[ColorChannel, ColorChannel, ColorChannel] = Field(description="[r, g, b], each 0..255")


def _check_classes(classes: list[ClassDef], ignore_index: int) -> None:
    ids = [c.id for c in classes]
    if ids != list(range(len(ids))):
        raise ValueError(f"class ids must be 0..{len(ids) - 1} in order, got {ids}")
    names = [c.name for c in classes]
    if len(set(names)) != len(names):
        raise ValueError("class names must be unique")
    if ignore_index in ids:
        raise ValueError(f"ignore_index {ignore_index} is also a class id")


class ProjectCreate(RequestModel):
    name: Name = Field(max_length=200)
    description: Text = Field("", max_length=MAX_DESCRIPTION_CHARS)
    classes: list[ClassDef] = Field(min_length=1, max_length=255)
    ignore_index: int = Field(255, ge=0, le=255)

    @model_validator(mode="after")
    def _classes_fit(self) -> ProjectCreate:
        _check_classes(self.classes, self.ignore_index)
        return self


class ProjectUpdate(RequestModel):
    """Fields left out stay as they are. Classes may be renamed, recoloured, added, or removed from the end
    when no mask version uses them; the ignore index is fixed at creation (stored masks depend on it)."""

    name: Name | None = Field(None, max_length=200)
    description: Text | None = Field(None, max_length=MAX_DESCRIPTION_CHARS)
    classes: list[ClassDef] | None = Field(None, min_length=1, max_length=255)
    review_percent: int | None = Field(
        None, ge=0, le=100, description="share (percent) of saved human labels drawn for review, per version"
    )
    consensus_percent: int | None = Field(
        None, ge=0, le=100, description="share (percent) of images labelled twice, by two different annotators"
    )
    consensus_threshold: float | None = Field(
        None, ge=0, le=1, description="a pair whose agreement (mIoU) is below this goes to review with both labels"
    )


class ProjectPublic(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: int
    name: str
    description: str
    classes: list[ClassDef]
    ignore_index: int
    review_percent: int = Field(100, description="share (percent) of saved human labels drawn for review")
    consensus_percent: int = Field(0, description="share (percent) of images labelled by two annotators")
    consensus_threshold: float = Field(0.8, description="agreement (mIoU) below which a pair goes to review")
    my_role: ProjectRole | None = Field(
        None, description="the caller's project role here; null for an admin who is not a member"
    )
    created_at: UTCDateTime
    updated_at: UTCDateTime


class ImagePublic(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: int
    project_id: int
    file_name: str
    sha256: str
    width: int
    height: int
    format: str
    byte_size: int
    split: Split
    status: ImageStatus
    import_order: int
    claimed_by: int | None
    claim_expires_at: UTCDateTime | None
    created_at: UTCDateTime
    latest_mask_version: int | None = Field(None, description="Newest mask version of any source; null = none")
    model_confidence: float | None = Field(
        None,
        description="The model's mean confidence (top class probability) in its newest prediction of this image "
        "(a pseudo-label); null when no model has predicted it",
    )


class ImagePage(BaseModel):
    items: list[ImagePublic]
    total: int
    limit: int
    offset: int


class ImageUploadItem(BaseModel):
    file_name: str
    status: str = Field(description="stored | duplicate | rejected")
    reason: str | None = None
    image_id: int | None = None
    mask_version: int | None = Field(None, description="Version of the label stored with the image, if any")


class SamEmbedAhead(BaseModel):
    """The SAM embeddings of the queue's head queued after an upload (as after an import job or a round)."""

    images: list[int] = Field(description="The head of the queue: the first MARSLABEL_SAM_QUEUE_HEAD images")
    jobs: list[int] = Field(description="The sam_embed jobs queued now (none for a cached or already queued image)")
    error: str | None = Field(None, description="Why they were not queued (the broker refused); the upload stands")


class ImageUploadResult(BaseModel):
    items: list[ImageUploadItem]
    stored: int
    duplicate: int
    rejected: int
    unmatched_labels: list[str] = Field(default_factory=list, description="Label files that matched no image")
    sam_embed: SamEmbedAhead | None = Field(
        None,
        description="SAM embeddings of the queue's head, queued when images were stored (null: none stored, "
        "or MARSLABEL_SAM_QUEUE_HEAD is 0)",
    )


class MaskVersionPublic(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: int
    image_id: int
    version: int
    parent_version: int | None
    source: MaskSource
    author_id: int | None
    model_version_id: int | None
    sha256: str
    class_ids: list[int]
    labeled_fraction: float
    confidence: float | None = Field(None, description="model masks: the mean top class probability")
    effort: MaskEffort | None = Field(
        None, description="human saves: the work the web app counted for this save; null when none was sent"
    )
    base_agreement: float | None = Field(None, description=BASE_AGREEMENT_DESCRIPTION)
    created_at: UTCDateTime


class ReviewPublic(BaseModel):
    id: int
    image_id: int
    mask_version: int = Field(description="the version of the image's masks this decision is about")
    decision: ReviewDecision
    comment: str
    reviewer_id: int | None
    reviewer_name: str | None
    created_at: UTCDateTime


class QueueNext(BaseModel):
    image: ImagePublic | None = Field(description="The claimed image; null when nothing is left for the caller")
    review: ReviewPublic | None = Field(
        None,
        description="Set when the image came back to its author rejected: the decision with the reviewer's "
        "comment. Save the fix as a new version on top of the rejected one; it is reviewed again.",
    )
    claim_expires_at: UTCDateTime | None = None
    rank: int | None = Field(None, description="Rank in the latest done query round; null = import order")
    score: float | None = None
    consensus_second: bool = Field(
        False,
        description="The image is handed out for a second, independent label (consensus): another annotator "
        "labelled it already. Label it without looking at theirs; save on top of the image's newest version.",
    )


class QueueImageRef(RequestModel):
    image_id: RowId


class UserCreate(RequestModel):
    name: Name = Field(max_length=120)
    role: Role


class UserPublic(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: int
    name: str
    role: Role
    created_at: UTCDateTime


class UserWithToken(UserPublic):
    token: str = Field(description="Shown once; only its sha256 is stored")
