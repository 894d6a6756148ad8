"""The `import` job: every image of a server-side folder into a project, through store.images.add_image.

Images are committed in chunks, so progress is visible while it runs and a cancel keeps what was committed.
Duplicates and rejected files are counted with their reasons; neither stops the import. Once the images are in,
the head of the queue gets its SAM embeddings queued (result `sam_embed`), so the first image opens SAM-ready.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from sqlalchemy.orm import Session

from server.db import session_scope
from server.imports import resolve_import_path
from server.models import Project, Split
from server.store.images import add_image
from server.store.limits import UploadLimits
from server.store.projects import get_project
from worker.context import JobContext
from worker.import_layouts import ImportItem, plan_import
from worker.sam_ahead import embed_head

CHUNK = 25  # images per commit
LISTED_MAX = 200  # rejected / duplicate file names kept in the result


def _add_one(
    session: Session, project: Project, item: ImportItem, author_id: int | None, limits: UploadLimits
) -> tuple[str, str]:
    """('stored' | 'duplicate' | 'rejected', reason) for one image; add_image never half-stores one."""
    try:
        data = item.image_path.read_bytes()
        label_png = None
        if item.label_path is not None:
            reader = item.label_reader
            label_png = reader(item.label_path) if reader else item.label_path.read_bytes()
    except (OSError, ValueError) as error:
        return "rejected", f"cannot read: {error}"
    result = add_image(
        session,
        project,
        item.file_name,
        data,
        split=item.split,
        label_png=label_png,
        author_id=author_id,
        limits=limits,
    )
    if result.status == "stored":
        return "stored", "labeled" if result.mask_version is not None else ""
    return result.status, result.reason or ""


def run_import(ctx: JobContext) -> dict[str, Any]:
    params = ctx.params
    if ctx.settings.import_root is None:
        raise RuntimeError("this worker has no MARSLABEL_IMPORT_ROOT; imports are disabled here")
    # Checked again here: the worker's import root is the one that counts for the files it reads.
    folder: Path = resolve_import_path(ctx.settings.import_root, params["path"])
    default_split = Split(params.get("split") or Split.pool)
    plan = plan_import(folder, ctx.settings.import_root, params.get("layout", "auto"), default_split)
    total = len(plan.items)
    result: dict[str, Any] = {
        "layout": plan.layout,
        "total": total,
        "processed": 0,
        "stored": 0,
        "labeled": 0,
        "duplicate": 0,
        "rejected": len(plan.skipped),
        "rejections": [{"file": f, "reason": r} for f, r in plan.skipped[:LISTED_MAX]],
        "duplicates": [],
    }
    ctx.result = result
    ctx.progress(0.0, f"{total} images found ({plan.layout} layout)")
    url = ctx.settings.resolved_database_url
    limits = UploadLimits.from_settings(ctx.settings)
    author_id = ctx.created_by  # imported labels are human labels, by whoever started the import
    for start in range(0, total, CHUNK):
        chunk = plan.items[start : start + CHUNK]
        outcomes: list[tuple[ImportItem, str, str]] = []
        with session_scope(url) as session:
            project = get_project(session, ctx.project_id)  # type: ignore[arg-type]
            for item in chunk:
                outcomes.append((item, *_add_one(session, project, item, author_id, limits)))
        # Counted only once the chunk is committed: the result never claims what a rollback undid.
        for item, outcome, reason in outcomes:
            result[outcome] += 1
            if outcome == "stored" and reason == "labeled":
                result["labeled"] += 1
            elif outcome == "rejected" and len(result["rejections"]) < LISTED_MAX:
                result["rejections"].append({"file": item.file_name, "reason": reason})
            elif outcome == "duplicate" and len(result["duplicates"]) < LISTED_MAX:
                result["duplicates"].append({"file": item.file_name, "reason": reason})
        result["processed"] = start + len(chunk)
        ctx.progress(
            result["processed"] / max(total, 1),
            f"{result['processed']} of {total}: {result['stored']} stored, {result['duplicate']} duplicate, "
            f"{result['rejected']} rejected",
        )
    if result["stored"]:
        result["sam_embed"] = embed_head(ctx, ctx.project_id)  # type: ignore[arg-type]
    return result
