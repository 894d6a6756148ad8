"""The Celery app, built from server settings: one task per entry of server.jobs.JOB_KINDS.

`marslabel worker` calls create_celery_app(settings, queues). For `celery -A worker.celery_app worker` the
module attribute `app` is built on first access from the environment's settings, never at import.

Workers only run jobs. Lost jobs are found by the reaper, which runs beside the API (`marslabel serve`) or as
`marslabel reaper` (server.reaper), so that it does not depend on any worker being alive.
"""

from __future__ import annotations

import importlib
import logging
import time
from typing import Any

from celery import Celery
from celery.signals import worker_process_init, worker_ready

from server.broker import celery_config
from server.db import get_engine
from server.jobs import JOB_KINDS, task_name
from server.settings import Settings, get_settings
from worker.context import JobHandler, run_job

log = logging.getLogger(__name__)


def resolve_handler(dotted: str) -> JobHandler:
    module_name, _, attr = dotted.partition(":")
    return getattr(importlib.import_module(module_name), attr)


def _make_task(app: Celery, kind: str, handler_path: str, settings: Settings) -> None:
    # Resolved now, in the worker's main process (pool processes inherit it): a broken handler stops the
    # worker at start, and no delivery spends seconds importing torch between taking a message and
    # claiming its row, a window in which a lost worker would leave the job `queued`.
    handler = resolve_handler(handler_path)

    def run(self: Any, job_id: int) -> str:
        return run_job(settings, job_id, self.request.id, handler)

    run.__name__ = f"run_{kind}"
    # acks_late + reject_on_worker_lost: a delivery whose process died goes back to the broker.
    app.task(name=task_name(kind), bind=True, acks_late=True, reject_on_worker_lost=True)(run)


def _forget_inherited_connections(settings: Settings) -> None:
    # A forked pool process must not share the parent's pooled database connections.
    get_engine(settings.resolved_database_url).dispose(close=False)


def create_celery_app(settings: Settings, queues: list[str] | None = None) -> Celery:
    """The worker's app, with a task for each job kind of `queues` (default: every kind). A worker of the
    `interactive` queue alone thus never imports the training code (torch) it will not run."""
    app = Celery("marslabel", set_as_current=False)
    app.conf.update(celery_config(settings))
    app.conf.update(
        task_acks_late=True,
        task_reject_on_worker_lost=True,
        worker_prefetch_multiplier=1,  # a long job must not hold back the next one on a busy worker
    )
    app.marslabel_settings = settings  # type: ignore[attr-defined]
    for kind, spec in JOB_KINDS.items():
        if queues is None or spec.queue in queues:
            _make_task(app, kind, spec.handler, settings)
    worker_process_init.connect(lambda **_: _forget_inherited_connections(settings), weak=False)
    if "sam_embed" in JOB_KINDS and (queues is None or JOB_KINDS["sam_embed"].queue in queues):
        # Building the SAM encoder's session takes seconds: done as the worker starts, not on an annotator's
        # first embedding. In the process that runs the jobs: each pool process (prefork), or the worker itself.
        worker_process_init.connect(lambda **_: _warm_sam(settings), weak=False)
        worker_ready.connect(lambda sender, **_: _warm_sam(settings) if _runs_jobs_itself(sender) else None, weak=False)
    return app


def _runs_jobs_itself(worker: Any) -> bool:
    # solo and threads pools run tasks in the worker's own process; prefork's children warm themselves.
    return "prefork" not in getattr(getattr(worker, "pool_cls", None), "__module__", "prefork")


def _warm_sam(settings: Settings) -> None:
    import numpy as np

    from worker.tasks.sam_embed import backend_for

    started = time.perf_counter()
    try:
        # One encode of a blank image: the encoder's session is built on first use, and its first run is slow.
        backend_for(settings).encode(np.zeros((64, 64, 3), np.uint8))
    except Exception as error:  # the job itself will then fail and say why
        log.warning("SAM model not loaded ahead: %s", error)
        return
    log.info("SAM model loaded ahead in %.1f s", time.perf_counter() - started)


_app: Celery | None = None


def __getattr__(name: str) -> Celery:
    global _app
    if name in ("app", "celery"):
        if _app is None:
            _app = create_celery_app(get_settings())
        return _app
    raise AttributeError(name)
