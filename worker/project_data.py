"""A project's images and human labels as ml.interfaces.SampleSource, read from the database on demand.

Sample ids are image ids as strings. Labels are the latest human-side mask (source human or sam) of an image;
model masks are never training labels. The engine wraps these sources in ml.data.CachedSource, so each image
is decoded once per training run.
"""

from __future__ import annotations

import io
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from PIL import Image as PILImage
from sqlalchemy import exists, func, select
from sqlalchemy.orm import Session

from server.db import session_scope
from server.models import (
    Image,
    ImageBlob,
    ImageStatus,
    MaskSource,
    MaskVersion,
    Review,
    ReviewDecision,
    Round,
    Split,
)
from server.store.labels import LabelSource, effective_labels_query
from worker.tasks.sam_embed import rgb_array

HUMAN_SOURCES = (MaskSource.human, MaskSource.sam)


def job_round(session: Session, round_id: int) -> Round:
    """The round a `round` or `first_set` job runs; LookupError when it was deleted meanwhile."""
    row = session.get(Round, round_id)
    if row is None:
        raise LookupError(f"round {round_id} no longer exists")
    return row


class ProjectSource:
    """Images of one project by id; `with_labels` decides whether load_label reads the human masks."""

    def __init__(self, database_url: str, image_ids: Sequence[int], with_labels: bool) -> None:
        self._url = database_url
        self._ids = [str(i) for i in image_ids]
        self._with_labels = with_labels

    @property
    def ids(self) -> Sequence[str]:
        return self._ids

    def load_image(self, sample_id: str) -> np.ndarray:
        with session_scope(self._url) as session:
            data = session.scalar(select(ImageBlob.data).where(ImageBlob.image_id == int(sample_id)))
        if data is None:
            raise LookupError(f"image {sample_id} no longer exists")
        return rgb_array(data)

    def load_label(self, sample_id: str) -> np.ndarray | None:
        if not self._with_labels:
            return None
        with session_scope(self._url) as session:
            png = session.scalar(
                select(MaskVersion.png)
                .where(MaskVersion.image_id == int(sample_id), MaskVersion.source.in_(HUMAN_SOURCES))
                .order_by(MaskVersion.version.desc())
                .limit(1)
            )
        if png is None:
            return None
        return np.asarray(PILImage.open(io.BytesIO(png)), dtype=np.uint8)


@dataclass(frozen=True)
class ProjectSplit:
    """Which images a round trains on, validates on and scores."""

    labeled: list[int]  # human-labelled images the model trains on
    unlabeled: list[int]  # pool images without a human label: the SSL pool and the images to rank
    val: list[int]  # human-labelled images it is validated on
    val_source: str  # "val split" | "held-back labelled images" | "none"


def held_back_count(labeled: int) -> int:
    """Labelled images kept out of training for validation when the project has no labelled val split:
    a fifth, at least one, never so many that fewer than one is left to train on."""
    if labeled < 2:
        return 0
    return max(1, min(labeled - 1, round(labeled * 0.2)))


def accepted_image_ids(session: Session, project_id: int) -> set[int]:
    """Images whose current human label (newest human-side version) a reviewer accepted."""
    query = effective_labels_query(project_id, source=LabelSource.human).where(
        exists().where(Review.mask_version_id == MaskVersion.id, Review.decision == ReviewDecision.accepted)
    )
    return {row[0].id for row in session.execute(query)}


def project_split(database_url: str, project_id: int, seed: int, *, accepted_only: bool = False) -> ProjectSplit:
    """With accepted_only, a labelled pool image trains only when a reviewer accepted its current human label;
    the others (pending, rejected) are neither trained on nor scored."""
    with session_scope(database_url) as session:
        rows = session.execute(
            select(Image.id, Image.split, Image.status).where(Image.project_id == project_id).order_by(Image.id)
        ).all()
        human = set(
            session.scalars(
                select(func.distinct(MaskVersion.image_id))
                .join(Image, Image.id == MaskVersion.image_id)
                .where(Image.project_id == project_id, MaskVersion.source.in_(HUMAN_SOURCES))
            )
        )
        accepted = accepted_image_ids(session, project_id) if accepted_only else human
    labeled_pool = [i for i, split, _ in rows if split == Split.pool and i in human and i in accepted]
    unlabeled = [i for i, split, status in rows if split == Split.pool and status == ImageStatus.unlabeled]
    unlabeled = [i for i in unlabeled if i not in human]
    val = [i for i, split, _ in rows if split == Split.val and i in human]
    if val:
        return ProjectSplit(labeled_pool, unlabeled, val, "val split")
    keep = held_back_count(len(labeled_pool))
    if keep == 0:
        return ProjectSplit(labeled_pool, unlabeled, [], "none")
    order = np.random.default_rng(seed).permutation(len(labeled_pool))
    held = sorted(labeled_pool[k] for k in order[:keep])
    train = [i for i in labeled_pool if i not in set(held)]
    return ProjectSplit(train, unlabeled, held, "held-back labelled images")
