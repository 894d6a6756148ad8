"""SAM embeddings of the queue's head, queued from a worker's job (the import job when it ends, a round once its
ranking is stored) through server.sam.embed_queue_head, so that the first images an annotator opens are SAM-ready
at once."""

from __future__ import annotations

import logging
from typing import Any

from server.sam import embed_queue_head
from server.store.queue import LATEST_DONE_ROUND
from worker.context import JobContext

log = logging.getLogger(__name__)


def embed_head(ctx: JobContext, project_id: int, round_id: int | None = LATEST_DONE_ROUND) -> dict[str, Any] | None:
    """The head's embedding jobs ({"images", "jobs"[, "error"]}), None when MARSLABEL_SAM_QUEUE_HEAD is 0. A failure
    is reported in the answer, never raised: the calling job's own work is stored already."""
    if ctx.settings.sam_queue_head <= 0:
        return None
    try:
        return embed_queue_head(ctx.settings, project_id, created_by=ctx.created_by, round_id=round_id)
    except Exception as error:  # the database or the SAM configuration: said, not raised
        log.warning("job %s: embeddings of the queue's head not queued: %s", ctx.job_id, error)
        return {"images": [], "jobs": [], "error": f"{type(error).__name__}: {error}"}
