"""The `first_set` job: rank a project's unlabelled pool for its first labels, without a model.

ml.start.first_set (the function the simulator's `--start` calls) picks the round's budget of representative
images; their ranks and scores are written in one transaction, so the queue serves them first once the round is
done. Nothing is half-made: a re-delivered job whose scores exist returns them instead of choosing again, and
a cancelled one wrote nothing. Once recorded, the picks get their SAM embeddings queued.
"""

from __future__ import annotations

import time
from typing import Any

from sqlalchemy import func, insert, select

from ml.start import first_set
from server.db import session_scope
from server.models import Score
from worker.context import JobContext
from worker.project_data import ProjectSource, job_round, project_split
from worker.sam_ahead import embed_head


def run_first_set(ctx: JobContext) -> dict[str, Any]:
    url = ctx.settings.resolved_database_url
    round_id = int(ctx.params["round_id"])
    with session_scope(url) as session:
        row = job_round(session, round_id)
        stored = session.scalar(select(func.count()).select_from(Score).where(Score.round_id == round_id))
        if stored:
            return {"round_id": round_id, "picked": stored, "note": "recorded by an earlier attempt"}
        project_id, method, budget, seed = row.project_id, row.strategy, row.budget, int(row.params.get("seed", 0))

    pool = project_split(url, project_id, seed).unlabeled
    if not pool:
        raise RuntimeError(f"project {project_id} has no unlabelled pool image to choose a first set from")
    ctx.result = {"round_id": round_id, "method": method, "pool": len(pool)}
    ctx.progress(0.0, f"first set: {method}, {min(budget, len(pool))} of {len(pool)} unlabelled pool images")
    started = time.perf_counter()
    picks = first_set(
        ProjectSource(url, pool, with_labels=False),
        [str(i) for i in pool],
        budget,
        method=method,
        seed=seed,
        progress=lambda fraction, message: ctx.progress(0.95 * fraction, message),
    )
    choose_seconds = time.perf_counter() - started
    ctx.progress(0.95, f"chose {len(picks)} images")
    with session_scope(url) as session:
        session.execute(
            insert(Score),
            [
                {"round_id": round_id, "image_id": int(i), "score": score, "rank": rank}
                for rank, (i, score) in enumerate(picks, start=1)
            ],
        )
    embedded = embed_head(ctx, project_id, round_id)
    return {
        "round_id": round_id,
        "method": method,
        "pool": len(pool),
        "picked": len(picks),
        "image_ids": [int(i) for i, _ in picks],
        "seconds": {"choose": choose_seconds},
        "sam_embed": embedded,
    }
