"""The team's figures for a project's dashboard: per annotator (labels saved, decisions on them, agreement with
reviewers and with other annotators, time per image once effort is recorded) and the review panel's counts.
No commit inside."""

from __future__ import annotations

import statistics
from dataclasses import dataclass, field

from sqlalchemy import func, select
from sqlalchemy.orm import Session, aliased, defer

from server.models import ConsensusPair, Image, MaskVersion, Project, ProjectMember, ProjectRole, Review, User
from server.store.consensus import mask_agreement, mask_pixels, pair_counts
from server.store.labels import HUMAN_SIDE
from server.store.reviews import review_counts

# Agreement with reviewers decodes two PNGs per correction: the newest this many corrections per project count.
MAX_CORRECTIONS = 200


@dataclass
class AnnotatorFigures:
    user_id: int
    user_name: str
    project_role: ProjectRole | None
    labels_saved: int = 0
    images_labelled: int = 0
    accepted: int = 0
    rejected: int = 0
    pair_mious: list[float] = field(default_factory=list)
    correction_mious: list[float] = field(default_factory=list)

    @property
    def acceptance_rate(self) -> float | None:
        decided = self.accepted + self.rejected
        return self.accepted / decided if decided else None


def annotator_figures(session: Session, project: Project) -> list[AnnotatorFigures]:
    """Every member who labels (annotator or lead) and everyone who saved a human label here, by name."""
    human = MaskVersion.source.in_(HUMAN_SIDE)
    in_project = Image.project_id == project.id
    figures: dict[int, AnnotatorFigures] = {}

    def of(user_id: int, name: str, role: ProjectRole | None) -> AnnotatorFigures:
        if user_id not in figures:
            figures[user_id] = AnnotatorFigures(user_id, name, role)
        return figures[user_id]

    roles = dict(
        session.execute(
            select(ProjectMember.user_id, ProjectMember.role).where(ProjectMember.project_id == project.id)
        ).all()
    )
    for user_id, name, role in session.execute(
        select(User.id, User.name, ProjectMember.role)
        .join(ProjectMember, ProjectMember.user_id == User.id)
        .where(
            ProjectMember.project_id == project.id,
            ProjectMember.role.in_([ProjectRole.annotator, ProjectRole.lead]),
        )
    ):
        of(user_id, name, role)
    for user_id, name, saved, images in session.execute(
        select(User.id, User.name, func.count(MaskVersion.id), func.count(func.distinct(MaskVersion.image_id)))
        .join(MaskVersion, MaskVersion.author_id == User.id)
        .join(Image, Image.id == MaskVersion.image_id)
        .where(in_project, human)
        .group_by(User.id, User.name)
    ):
        entry = of(user_id, name, roles.get(user_id))
        entry.labels_saved, entry.images_labelled = int(saved), int(images)
    for user_id, decision, count in session.execute(
        select(MaskVersion.author_id, Review.decision, func.count(Review.id))
        .join(MaskVersion, MaskVersion.id == Review.mask_version_id)
        .join(Image, Image.id == Review.image_id)
        .where(in_project, MaskVersion.author_id.is_not(None))
        .group_by(MaskVersion.author_id, Review.decision)
    ):
        if user_id in figures:
            setattr(figures[user_id], decision.value, int(count))
    for pair in session.scalars(
        select(ConsensusPair).join(Image, Image.id == ConsensusPair.image_id).where(in_project)
    ):
        if pair.miou is None:
            continue
        for author in (pair.first_author_id, pair.second_author_id):
            if author in figures:
                figures[author].pair_mious.append(pair.miou)
    _add_corrections(session, project, figures, roles)
    return sorted(figures.values(), key=lambda f: f.user_name)


def _add_corrections(
    session: Session, project: Project, figures: dict[int, AnnotatorFigures], roles: dict[int, ProjectRole]
) -> None:
    """Agreement with reviewers: a human label that a reviewer or lead of the project corrected (the next version
    is theirs, saved on top of it) is compared with that correction, over the pixels both labelled."""
    checkers = [user_id for user_id, role in roles.items() if role in (ProjectRole.reviewer, ProjectRole.lead)]
    if not checkers:
        return
    original, correction = aliased(MaskVersion), aliased(MaskVersion)
    rows = session.execute(
        select(original, correction)
        .options(defer(original.png), defer(correction.png))
        .join(correction, correction.parent_id == original.id)
        .join(Image, Image.id == original.image_id)
        .where(
            Image.project_id == project.id,
            original.source.in_(HUMAN_SIDE),
            correction.source.in_(HUMAN_SIDE),
            correction.author_id.in_(checkers),
            correction.author_id != original.author_id,
        )
        .order_by(correction.id.desc())
        .limit(MAX_CORRECTIONS)
    ).all()
    class_ids = [int(c["id"]) for c in project.classes]
    for first, second in rows:
        if first.author_id not in figures:
            continue
        agreement = mask_agreement(
            mask_pixels(session, first), mask_pixels(session, second), class_ids, project.ignore_index
        )
        if agreement.miou is not None:
            figures[first.author_id].correction_mious.append(agreement.miou)


def mean(values: list[float]) -> float | None:
    return statistics.fmean(values) if values else None


@dataclass(frozen=True)
class ReviewPanel:
    pending: int
    accepted: int
    rejected: int
    pairs: int
    disagreements: int
    mean_pair_miou: float | None


def review_panel(session: Session, project: Project) -> ReviewPanel:
    counts = review_counts(session, project)
    pairs = pair_counts(session, project.id)
    return ReviewPanel(
        counts.pending, counts.accepted, counts.rejected, pairs.pairs, pairs.disagreements, pairs.mean_miou
    )
