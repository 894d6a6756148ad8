"""Tables of DESIGN.md's data model. Everything a user gave is kept; masks are append-only."""

from __future__ import annotations

import enum
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import (
    JSON,
    Boolean,
    DateTime,
    Enum,
    Float,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    String,
    Text,
    UniqueConstraint,
    text,
)
from sqlalchemy.orm import Mapped, mapped_column, relationship

from server.db import Base


def utcnow() -> datetime:
    return datetime.now(UTC)


def _enum(cls: type[enum.Enum], name: str) -> Enum:
    # Store the lower-case values, checked by a constraint on every backend.
    return Enum(
        cls,
        name=name,
        values_callable=lambda e: [m.value for m in e],
        native_enum=False,
        length=32,
        create_constraint=True,
    )


class Role(enum.StrEnum):
    admin = "admin"
    lead = "lead"
    annotator = "annotator"
    client = "client"


class ProjectRole(enum.StrEnum):
    """A member's role within one project (server/permissions.py says what each may do there)."""

    lead = "lead"
    annotator = "annotator"
    reviewer = "reviewer"
    client = "client"


class ReviewDecision(enum.StrEnum):
    accepted = "accepted"
    rejected = "rejected"


class Split(enum.StrEnum):
    pool = "pool"
    val = "val"
    test = "test"


class ImageStatus(enum.StrEnum):
    unlabeled = "unlabeled"  # no human mask yet (may have model masks)
    labeled = "labeled"  # has at least one human mask version


class MaskSource(enum.StrEnum):
    human = "human"
    sam = "sam"
    model = "model"


class JobStatus(enum.StrEnum):
    queued = "queued"
    running = "running"
    done = "done"
    failed = "failed"
    cancelled = "cancelled"


class RoundStatus(enum.StrEnum):
    queued = "queued"
    running = "running"
    done = "done"
    failed = "failed"
    cancelled = "cancelled"


TZDateTime = DateTime(timezone=True)


class User(Base):
    __tablename__ = "users"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(120), unique=True)
    role: Mapped[Role] = mapped_column(_enum(Role, "role"))
    created_at: Mapped[datetime] = mapped_column(TZDateTime, default=utcnow)

    tokens: Mapped[list[ApiToken]] = relationship(back_populates="user")


class ApiToken(Base):
    __tablename__ = "api_tokens"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    # Only the sha256 of a token is stored; the token itself is shown once, when it is made.
    token_sha256: Mapped[str] = mapped_column(String(64), unique=True)
    revoked: Mapped[bool] = mapped_column(Boolean, default=False)
    created_at: Mapped[datetime] = mapped_column(TZDateTime, default=utcnow)

    user: Mapped[User] = relationship(back_populates="tokens")


class Project(Base):
    __tablename__ = "projects"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(200), unique=True)
    description: Mapped[str] = mapped_column(Text, default="")
    # [{"id": 0, "name": "sky", "color": [r, g, b]}, ...], ids 0..K-1 in order.
    classes: Mapped[list[dict[str, Any]]] = mapped_column(JSON)
    ignore_index: Mapped[int] = mapped_column(Integer, default=255)
    # Start a round (with `round_defaults`) once this many images got their first human label since the
    # last round began; None = only by hand.
    auto_round_after: Mapped[int | None] = mapped_column(Integer, nullable=True)
    round_defaults: Mapped[dict[str, Any] | None] = mapped_column(JSON, nullable=True)
    # Pseudo-label pixels whose top class probability is below this become ignore (0 keeps every pixel).
    pseudo_label_threshold: Mapped[float] = mapped_column(Float, default=0.0)
    # The share (percent) of saved human labels that go to the review queue, drawn per mask version.
    review_percent: Mapped[int] = mapped_column(Integer, default=100)
    # Consensus: the share (percent) of images labelled twice, by two different annotators, and the agreement
    # (mIoU over the pixels both labelled) below which the pair goes to review.
    consensus_percent: Mapped[int] = mapped_column(Integer, default=0)
    consensus_threshold: Mapped[float] = mapped_column(Float, default=0.8)
    created_at: Mapped[datetime] = mapped_column(TZDateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(TZDateTime, default=utcnow, onupdate=utcnow)


class ProjectMember(Base):
    """A user's membership of a project. Outside admin, a user reaches only the projects they belong to."""

    __tablename__ = "project_members"

    project_id: Mapped[int] = mapped_column(ForeignKey("projects.id", ondelete="CASCADE"), primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), primary_key=True, index=True)
    role: Mapped[ProjectRole] = mapped_column(_enum(ProjectRole, "project_role"))
    added_by: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"), nullable=True)
    created_at: Mapped[datetime] = mapped_column(TZDateTime, default=utcnow)


class Image(Base):
    __tablename__ = "images"
    __table_args__ = (
        UniqueConstraint("project_id", "sha256", name="uq_images_project_sha256"),
        Index("ix_images_project_order", "project_id", "import_order"),
        Index("ix_images_project_status", "project_id", "status"),
        # What the annotation queue scans: unlabeled pool images in import order (migration 0002).
        Index(
            "ix_images_queue",
            "project_id",
            "import_order",
            "id",
            postgresql_where=text("status = 'unlabeled' AND split = 'pool'"),
            sqlite_where=text("status = 'unlabeled' AND split = 'pool'"),
        ),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    project_id: Mapped[int] = mapped_column(ForeignKey("projects.id", ondelete="CASCADE"))
    file_name: Mapped[str] = mapped_column(String(500))
    sha256: Mapped[str] = mapped_column(String(64))
    width: Mapped[int] = mapped_column(Integer)
    height: Mapped[int] = mapped_column(Integer)
    format: Mapped[str] = mapped_column(String(16))  # PNG | JPEG | TIFF
    byte_size: Mapped[int] = mapped_column(Integer)
    split: Mapped[Split] = mapped_column(_enum(Split, "split"), default=Split.pool)
    status: Mapped[ImageStatus] = mapped_column(_enum(ImageStatus, "image_status"), default=ImageStatus.unlabeled)
    # Import order within the project: the queue's ranking when no query round has run yet.
    import_order: Mapped[int] = mapped_column(Integer)
    claimed_by: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"), nullable=True)
    claim_expires_at: Mapped[datetime | None] = mapped_column(TZDateTime, nullable=True)
    created_at: Mapped[datetime] = mapped_column(TZDateTime, default=utcnow)


class ImageBlob(Base):
    """The bytes, apart from `images` so that listing images never loads them."""

    __tablename__ = "image_blobs"

    image_id: Mapped[int] = mapped_column(ForeignKey("images.id", ondelete="CASCADE"), primary_key=True)
    data: Mapped[bytes] = mapped_column(LargeBinary)


class ImageSkip(Base):
    """An annotator skipped this image: their `next` does not hand it to them again."""

    __tablename__ = "image_skips"

    image_id: Mapped[int] = mapped_column(ForeignKey("images.id", ondelete="CASCADE"), primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), primary_key=True)
    created_at: Mapped[datetime] = mapped_column(TZDateTime, default=utcnow)


class MaskVersion(Base):
    """One saved mask: a single-channel PNG of class ids, 255 = ignore. Never updated, never deleted."""

    __tablename__ = "mask_versions"
    __table_args__ = (UniqueConstraint("image_id", "version", name="uq_mask_versions_image_version"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    image_id: Mapped[int] = mapped_column(ForeignKey("images.id", ondelete="CASCADE"), index=True)
    version: Mapped[int] = mapped_column(Integer)  # 1, 2, ... per image
    parent_id: Mapped[int | None] = mapped_column(ForeignKey("mask_versions.id"), nullable=True)
    # Human saves from the web app: the effort it counted ({"active_seconds": …, "brush_strokes": …}, only the
    # fields sent; server/effort_schemas.py); SQL NULL when none was sent, never zeros.
    effort: Mapped[dict[str, Any] | None] = mapped_column(JSON(none_as_null=True), nullable=True)
    # Agreement with the parent version (server.store.effort.pixel_agreement); NULL without a parent.
    base_agreement: Mapped[float | None] = mapped_column(Float, nullable=True)
    source: Mapped[MaskSource] = mapped_column(_enum(MaskSource, "mask_source"))
    author_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"), nullable=True)
    model_version_id: Mapped[int | None] = mapped_column(
        ForeignKey("model_versions.id", ondelete="SET NULL"), nullable=True
    )
    png: Mapped[bytes] = mapped_column(LargeBinary)
    sha256: Mapped[str] = mapped_column(String(64))
    class_ids: Mapped[list[int]] = mapped_column(JSON)  # the class ids the mask uses (not 255)
    labeled_fraction: Mapped[float] = mapped_column(Float)  # share of pixels that are not 255
    confidence: Mapped[float | None] = mapped_column(Float, nullable=True)  # model masks: mean top probability
    created_at: Mapped[datetime] = mapped_column(TZDateTime, default=utcnow)


class MaskConfidence(Base):
    """A model mask's per-pixel confidence: an 8-bit greyscale PNG of the image's size, the top class probability
    × 255 (0 = unsure, 255 = certain). Written with the mask version by the pseudo-label job; the web app shades
    the pixels the model was unsure of. Apart from `mask_versions` so that listing versions never loads it."""

    __tablename__ = "mask_confidences"

    mask_version_id: Mapped[int] = mapped_column(ForeignKey("mask_versions.id", ondelete="CASCADE"), primary_key=True)
    png: Mapped[bytes] = mapped_column(LargeBinary)


class Review(Base):
    """A reviewer's decision on one human mask version. Append-only: one decision per version (a fix is a new
    version, reviewed again)."""

    __tablename__ = "reviews"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    image_id: Mapped[int] = mapped_column(ForeignKey("images.id", ondelete="CASCADE"), index=True)
    mask_version_id: Mapped[int] = mapped_column(ForeignKey("mask_versions.id", ondelete="CASCADE"), unique=True)
    decision: Mapped[ReviewDecision] = mapped_column(_enum(ReviewDecision, "review_decision"))
    comment: Mapped[str] = mapped_column(Text, default="")
    reviewer_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"), nullable=True)
    created_at: Mapped[datetime] = mapped_column(TZDateTime, default=utcnow)


class ConsensusPair(Base):
    """Two annotators' labels of one image and their agreement, computed when the second was saved. Append-only;
    one pair per image. `class_iou` maps a class id (as text) to its IoU over the pixels both labelled, null where
    neither used the class there; `miou` is their mean over the classes either used (null: no pixel in common)."""

    __tablename__ = "consensus_pairs"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    image_id: Mapped[int] = mapped_column(ForeignKey("images.id", ondelete="CASCADE"), unique=True)
    first_mask_id: Mapped[int] = mapped_column(ForeignKey("mask_versions.id", ondelete="CASCADE"))
    second_mask_id: Mapped[int] = mapped_column(ForeignKey("mask_versions.id", ondelete="CASCADE"))
    first_author_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"), nullable=True)
    second_author_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"), nullable=True)
    miou: Mapped[float | None] = mapped_column(Float, nullable=True)
    class_iou: Mapped[dict[str, Any]] = mapped_column(JSON)
    compared_fraction: Mapped[float] = mapped_column(Float)  # share of pixels both labelled
    threshold: Mapped[float] = mapped_column(Float)  # the project's consensus_threshold when computed
    disagreement: Mapped[bool] = mapped_column(Boolean)  # below the threshold (or nothing in common): to review
    created_at: Mapped[datetime] = mapped_column(TZDateTime, default=utcnow)


class ModelVersion(Base):
    __tablename__ = "model_versions"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    project_id: Mapped[int] = mapped_column(ForeignKey("projects.id", ondelete="CASCADE"), index=True)
    round_id: Mapped[int | None] = mapped_column(ForeignKey("rounds.id", ondelete="SET NULL"), nullable=True)
    method: Mapped[str] = mapped_column(String(32))
    config: Mapped[dict[str, Any]] = mapped_column(JSON)
    metrics: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    labeled_count: Mapped[int] = mapped_column(Integer)
    artifact_path: Mapped[str] = mapped_column(String(1000))
    artifact_sha256: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(TZDateTime, default=utcnow)


ACTIVE_ROUND_WHERE = text("status IN ('queued', 'running')")


class Round(Base):
    __tablename__ = "rounds"
    __table_args__ = (
        UniqueConstraint("project_id", "index", name="uq_rounds_project_index"),
        # At most one queued or running round per project, enforced by the database.
        Index(
            "ux_rounds_one_active",
            "project_id",
            unique=True,
            postgresql_where=ACTIVE_ROUND_WHERE,
            sqlite_where=ACTIVE_ROUND_WHERE,
        ),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    project_id: Mapped[int] = mapped_column(ForeignKey("projects.id", ondelete="CASCADE"))
    index: Mapped[int] = mapped_column(Integer)  # 1, 2, ... per project
    method: Mapped[str] = mapped_column(String(32))
    strategy: Mapped[str] = mapped_column(String(32))
    budget: Mapped[int] = mapped_column(Integer)
    status: Mapped[RoundStatus] = mapped_column(_enum(RoundStatus, "round_status"), default=RoundStatus.queued)
    params: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    job_id: Mapped[int | None] = mapped_column(ForeignKey("jobs.id", ondelete="SET NULL"), nullable=True)
    labeled_count: Mapped[int] = mapped_column(Integer, default=0)  # human-labelled images it trained on
    trigger: Mapped[str] = mapped_column(String(16), default="manual")  # manual | auto
    created_by: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"), nullable=True)
    created_at: Mapped[datetime] = mapped_column(TZDateTime, default=utcnow)
    finished_at: Mapped[datetime | None] = mapped_column(TZDateTime, nullable=True)


class Score(Base):
    __tablename__ = "scores"
    __table_args__ = (Index("ix_scores_round_rank", "round_id", "rank"),)

    round_id: Mapped[int] = mapped_column(ForeignKey("rounds.id", ondelete="CASCADE"), primary_key=True)
    image_id: Mapped[int] = mapped_column(ForeignKey("images.id", ondelete="CASCADE"), primary_key=True)
    score: Mapped[float] = mapped_column(Float)
    rank: Mapped[int] = mapped_column(Integer)  # 1 = label first


class Job(Base):
    """Every long piece of work. The API creates the row and sends the task; the task moves it along."""

    __tablename__ = "jobs"
    __table_args__ = (Index("ix_jobs_project_created", "project_id", "created_at"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    project_id: Mapped[int | None] = mapped_column(ForeignKey("projects.id", ondelete="CASCADE"), nullable=True)
    kind: Mapped[str] = mapped_column(String(32))  # import | train | score | pseudo_label | export | sam_embed
    status: Mapped[JobStatus] = mapped_column(_enum(JobStatus, "job_status"), default=JobStatus.queued, index=True)
    progress: Mapped[float] = mapped_column(Float, default=0.0)  # 0..1
    message: Mapped[str] = mapped_column(Text, default="")
    params: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    result: Mapped[dict[str, Any] | None] = mapped_column(JSON, nullable=True)
    error: Mapped[str | None] = mapped_column(Text, nullable=True)
    cancel_requested: Mapped[bool] = mapped_column(Boolean, default=False)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    celery_task_id: Mapped[str | None] = mapped_column(String(64), nullable=True)
    worker: Mapped[str | None] = mapped_column(String(200), nullable=True)  # hostname of the running worker
    created_by: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"), nullable=True)
    created_at: Mapped[datetime] = mapped_column(TZDateTime, default=utcnow)
    started_at: Mapped[datetime | None] = mapped_column(TZDateTime, nullable=True)
    heartbeat_at: Mapped[datetime | None] = mapped_column(TZDateTime, nullable=True)
    finished_at: Mapped[datetime | None] = mapped_column(TZDateTime, nullable=True)
