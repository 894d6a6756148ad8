"""Effective labels: per image, its newest human-side mask (source human or sam) if it has one, else its
newest model mask. Human labels always win over model labels, however new the model mask is.

One SQL statement picks the effective mask of every image of a project (a window over its mask versions),
so the manifest pages and the export stream read the same rule from one place.
"""

from __future__ import annotations

import enum
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Literal

from sqlalchemy import Select, case, exists, func, select
from sqlalchemy.orm import Session, defer

from server.models import Image, ImageBlob, MaskSource, MaskVersion, ModelVersion, Review, ReviewDecision, Split
from server.store.errors import NotFound

HUMAN_SIDE = (MaskSource.human, MaskSource.sam)


class LabelSource(enum.StrEnum):
    """Which effective labels to take: every one, only human-made (human or SAM-assisted), only model."""

    all = "all"
    human = "human"
    model = "model"


def label_source(mask: MaskVersion) -> Literal["human", "model"]:
    """human | model: the side a mask is on (SAM-assisted masks are made by a person)."""
    return "model" if mask.source == MaskSource.model else "human"


def _effective_mask_ids(project_id: int, accepted_only: bool = False):  # type: ignore[no-untyped-def]
    human_first = case((MaskVersion.source.in_(HUMAN_SIDE), 0), else_=1)
    rank = func.row_number().over(partition_by=MaskVersion.image_id, order_by=(human_first, MaskVersion.version.desc()))
    query = (
        select(MaskVersion.id.label("mask_id"), MaskVersion.image_id.label("image_id"), rank.label("rank"))
        .join(Image, Image.id == MaskVersion.image_id)
        .where(Image.project_id == project_id)
    )
    if accepted_only:  # only versions a reviewer accepted: per image, its newest accepted version
        accepted = exists().where(Review.mask_version_id == MaskVersion.id, Review.decision == ReviewDecision.accepted)
        query = query.where(accepted)
    return query.subquery("effective")


def effective_labels_query(
    project_id: int,
    *,
    source: LabelSource = LabelSource.all,
    model_version_id: int | None = None,
    split: Split | None = None,
    with_png: bool = False,
    accepted_only: bool = False,
) -> Select[tuple[Image, MaskVersion]]:
    """(image, its effective mask) for every labeled image of the project that passes the filters, in import
    order. Without with_png the mask's PNG is deferred: a manifest page never loads it. With accepted_only,
    an image's label is its newest version a reviewer accepted, and images with none are left out."""
    effective = _effective_mask_ids(project_id, accepted_only)
    query = (
        select(Image, MaskVersion)
        .join(effective, effective.c.image_id == Image.id)
        .join(MaskVersion, MaskVersion.id == effective.c.mask_id)
        .where(effective.c.rank == 1, Image.project_id == project_id)
        .order_by(Image.import_order, Image.id)
    )
    if not with_png:
        query = query.options(defer(MaskVersion.png))
    if source == LabelSource.human:
        query = query.where(MaskVersion.source.in_(HUMAN_SIDE))
    elif source == LabelSource.model:
        query = query.where(MaskVersion.source == MaskSource.model)
    if model_version_id is not None:
        query = query.where(MaskVersion.model_version_id == model_version_id)
    if split is not None:
        query = query.where(Image.split == split)
    return query


def check_model_version(session: Session, project_id: int, model_version_id: int) -> None:
    found = session.get(ModelVersion, model_version_id)
    if found is None or found.project_id != project_id:
        raise NotFound("model version", model_version_id, within=f"project {project_id}")


@dataclass(frozen=True)
class LabelListing:
    rows: list[tuple[Image, MaskVersion]]
    total: int


def list_labels(
    session: Session,
    project_id: int,
    *,
    source: LabelSource = LabelSource.all,
    model_version_id: int | None = None,
    split: Split | None = None,
    limit: int = 50,
    offset: int = 0,
    accepted_only: bool = False,
) -> LabelListing:
    """One page of the label manifest; images without any label are not in it."""
    if model_version_id is not None:
        check_model_version(session, project_id, model_version_id)
    query = effective_labels_query(
        project_id, source=source, model_version_id=model_version_id, split=split, accepted_only=accepted_only
    )
    total = session.scalar(select(func.count()).select_from(query.order_by(None).subquery())) or 0
    rows = session.execute(query.limit(limit).offset(offset)).all()
    return LabelListing(rows=[(row[0], row[1]) for row in rows], total=total)


def effective_label(session: Session, image: Image) -> MaskVersion:
    """The image's effective mask (PNG deferred); NotFound saying the image has no label otherwise."""
    found = session.scalar(
        select(MaskVersion)
        .options(defer(MaskVersion.png))
        .where(MaskVersion.image_id == image.id)
        .order_by(case((MaskVersion.source.in_(HUMAN_SIDE), 0), else_=1), MaskVersion.version.desc())
        .limit(1)
    )
    if found is None:
        raise NotFound("label of image", image.id, within=f"project {image.project_id} (no mask version yet)")
    return found


def image_names(session: Session, project_id: int) -> list[tuple[int, str]]:
    """(id, file name) of every image of the project in import order: what export file names are made from."""
    query = select(Image.id, Image.file_name).where(Image.project_id == project_id)
    return [(row[0], row[1]) for row in session.execute(query.order_by(Image.import_order, Image.id))]


@dataclass(frozen=True)
class LabelRow:
    image: Image
    mask: MaskVersion  # PNG loaded
    image_bytes: bytes | None  # only when asked for


def iter_effective_labels(
    session: Session,
    project_id: int,
    *,
    source: LabelSource = LabelSource.all,
    split: Split | None = None,
    with_image_bytes: bool = False,
    batch: int = 100,
    accepted_only: bool = False,
) -> Iterator[LabelRow]:
    """Every effective label with its PNG (and the image's bytes), streamed from one query in batches
    (a server-side cursor on PostgreSQL), so an export never holds the whole project in memory."""
    query = effective_labels_query(project_id, source=source, split=split, with_png=True, accepted_only=accepted_only)
    if with_image_bytes:
        query = query.outerjoin(ImageBlob, ImageBlob.image_id == Image.id).add_columns(ImageBlob.data)
    for row in session.execute(query.execution_options(yield_per=batch)):
        image, mask = row[0], row[1]
        yield LabelRow(image=image, mask=mask, image_bytes=row[2] if with_image_bytes else None)
        # Done with them: keep the identity map (and memory) from growing with the project.
        session.expunge(image)
        session.expunge(mask)
