"""Annotation effort: the agreement of a saved mask with the version it started from, and the effort per image
per round for the dashboard, from the effort the web app sends with each human save. No commit inside.

Unit of the dashboard's figures: one labelling session, an (image, author) pair: the effort of every human-side
version that author saved of that image with effort recorded, summed (a label saved twice cost both saves). Its
start is the base of the author's first such version: a model version ("from a pseudo-label"), nothing or a hidden
first label of a consensus pair ("from scratch"), or another human label ("from a human label"). Its round is the
newest round that had finished when that first version was saved (0: none had: the seed labels).
"""

from __future__ import annotations

import statistics
from dataclasses import dataclass, field
from datetime import UTC, datetime

import numpy as np
from sqlalchemy import select
from sqlalchemy.orm import Session, aliased

from server.effort_schemas import ACTION_FIELDS
from server.models import ConsensusPair, Image, MaskSource, MaskVersion, Round, RoundStatus
from server.store.labels import HUMAN_SIDE


def pixel_agreement(base: np.ndarray, saved: np.ndarray, ignore_index: int) -> float:
    """Share of the pixels labelled (not `ignore_index`) in either mask that hold the same value in both. A pixel
    labelled in one mask and unlabelled in the other disagrees; one labelled in neither is not counted. Two masks
    with no labelled pixel at all are identical: 1.0."""
    if base.shape != saved.shape:
        raise ValueError(f"masks differ in size: {base.shape} and {saved.shape}")
    either = (base != ignore_index) | (saved != ignore_index)
    labelled = int(np.count_nonzero(either))
    if labelled == 0:
        return 1.0
    return int(np.count_nonzero(either & (base == saved))) / labelled


START_KINDS = ("from_pseudo_label", "from_scratch", "from_human_label")


@dataclass
class LabellingSession:
    """One labelling session: an (image, author) pair's effort, summed over its versions."""

    start: str  # one of START_KINDS
    after_round: int
    seconds: float | None = None
    actions: int | None = None
    base_agreement: float | None = None

    def add(self, effort: dict[str, object]) -> None:
        seconds = effort.get("active_seconds")
        if isinstance(seconds, int | float):
            self.seconds = (self.seconds or 0.0) + float(seconds)
        counts = [int(v) for name in ACTION_FIELDS if isinstance(v := effort.get(name), int)]
        if counts:
            self.actions = (self.actions or 0) + sum(counts)


@dataclass
class Figures:
    images: int = 0
    seconds: list[float] = field(default_factory=list)
    actions: list[float] = field(default_factory=list)
    agreements: list[float] = field(default_factory=list)


def _median(values: list[float]) -> float | None:
    return float(statistics.median(values)) if values else None


def _aware(value: datetime) -> datetime:
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value  # SQLite hands back naive UTC


@dataclass(frozen=True)
class RoundEffort:
    after_round: int
    labeled_count: int | None
    figures: dict[str, tuple[int, float | None, float | None, float | None]]  # start → images, medians


def effort_by_round(session: Session, project_id: int) -> list[RoundEffort]:
    """Per round (by the rounds finished before the labels were saved), per start kind: how many labelling sessions
    recorded effort, their median active seconds, median counted actions and median agreement of the first save
    with its base. Rounds with no recorded effort are left out."""
    finished = [
        (_aware(row.finished_at), row.index, row.labeled_count)
        for row in session.scalars(
            select(Round)
            .where(Round.project_id == project_id, Round.status == RoundStatus.done, Round.finished_at.is_not(None))
            .order_by(Round.finished_at)
        )
        if row.finished_at is not None
    ]
    labeled_counts = {index: count for _, index, count in finished}

    def round_at(saved_at: datetime) -> int:
        newest = 0
        for finished_at, index, _ in finished:
            if finished_at <= saved_at:
                newest = max(newest, index)
        return newest

    parent = aliased(MaskVersion)
    rows = session.execute(
        select(
            MaskVersion.image_id,
            MaskVersion.author_id,
            MaskVersion.effort,
            MaskVersion.base_agreement,
            MaskVersion.created_at,
            parent.source,
            ConsensusPair.id,
        )
        .join(Image, Image.id == MaskVersion.image_id)
        .outerjoin(parent, parent.id == MaskVersion.parent_id)
        .outerjoin(ConsensusPair, ConsensusPair.second_mask_id == MaskVersion.id)
        .where(
            Image.project_id == project_id,
            MaskVersion.source.in_(HUMAN_SIDE),
            MaskVersion.effort.is_not(None),
        )
        .order_by(MaskVersion.image_id, MaskVersion.version)
    ).all()
    sessions: dict[tuple[int, int | None], LabellingSession] = {}
    for image_id, author_id, effort, agreement, created_at, parent_source, blind_pair in rows:
        key = (image_id, author_id)
        if key not in sessions:
            if parent_source is None or blind_pair is not None:
                start = "from_scratch"
            elif parent_source == MaskSource.model:
                start = "from_pseudo_label"
            else:
                start = "from_human_label"
            sessions[key] = LabellingSession(
                start=start,
                after_round=round_at(_aware(created_at)),
                base_agreement=None if start == "from_scratch" else agreement,
            )
        sessions[key].add(effort or {})
    grouped: dict[int, dict[str, Figures]] = {}
    for entry in sessions.values():
        figures = grouped.setdefault(entry.after_round, {kind: Figures() for kind in START_KINDS})[entry.start]
        figures.images += 1
        if entry.seconds is not None:
            figures.seconds.append(entry.seconds)
        if entry.actions is not None:
            figures.actions.append(float(entry.actions))
        if entry.base_agreement is not None:
            figures.agreements.append(entry.base_agreement)
    return [
        RoundEffort(
            after_round=index,
            labeled_count=labeled_counts.get(index),
            figures={
                kind: (f.images, _median(f.seconds), _median(f.actions), _median(f.agreements))
                for kind, f in grouped[index].items()
            },
        )
        for index in sorted(grouped)
    ]


def median_seconds_by_author(session: Session, project_id: int) -> dict[int, float]:
    """Per author: the median active seconds of their labelling sessions (an image's saves summed) that recorded
    seconds."""
    rows = session.execute(
        select(MaskVersion.image_id, MaskVersion.author_id, MaskVersion.effort)
        .join(Image, Image.id == MaskVersion.image_id)
        .where(
            Image.project_id == project_id,
            MaskVersion.source.in_(HUMAN_SIDE),
            MaskVersion.author_id.is_not(None),
            MaskVersion.effort.is_not(None),
        )
    ).all()
    per_image: dict[tuple[int, int], float] = {}
    for image_id, author_id, effort in rows:
        seconds = (effort or {}).get("active_seconds")
        if isinstance(seconds, int | float):
            per_image[(image_id, author_id)] = per_image.get((image_id, author_id), 0.0) + float(seconds)
    by_author: dict[int, list[float]] = {}
    for (_, author_id), seconds in per_image.items():
        by_author.setdefault(author_id, []).append(seconds)
    return {author: float(statistics.median(values)) for author, values in by_author.items()}
