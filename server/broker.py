"""Where Celery messages go: the broker URL and transport options, shared by the API's client and the worker.

Unset Settings.broker_url means the embedded default: kombu's filesystem transport in data_dir/broker,
which needs no server, works across processes (messages are files) and supports fanout, so a revoke
reaches the worker just as it does over Redis.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from server.settings import Settings

# Redis re-delivers an unacknowledged message only after this long; a job lost with its whole worker
# is found sooner by the heartbeat reaper, so this only needs to exceed the longest job.
REDIS_VISIBILITY_TIMEOUT_S = 12 * 3600


def embedded_broker_dir(settings: Settings) -> Path:
    return (settings.data_dir / "broker").resolve()


def broker_url(settings: Settings) -> str:
    return settings.broker_url or "filesystem://"


def celery_config(settings: Settings) -> dict[str, Any]:
    """Celery configuration common to the client and the worker; creates the embedded broker folders."""
    config: dict[str, Any] = {
        "broker_url": broker_url(settings),
        # Job state lives in the jobs table, never in a result backend.
        "result_backend": None,
        "task_ignore_result": True,
        "task_serializer": "json",
        "accept_content": ["json"],
        "task_default_queue": "cpu",
        "broker_connection_retry_on_startup": True,
        "broker_connection_timeout": 5,
        # Do not hang a request for minutes when the broker is down: fail fast, the route answers 503.
        "task_publish_retry_policy": {"max_retries": 2, "interval_start": 0.2, "interval_step": 0.5},
    }
    if settings.broker_url is None:
        root = embedded_broker_dir(settings)
        for sub in ("queue", "control"):
            (root / sub).mkdir(parents=True, exist_ok=True)
        config["broker_transport_options"] = {
            "data_folder_in": str(root / "queue"),
            "data_folder_out": str(root / "queue"),
            "control_folder": str(root / "control"),
            # kombu looks into the folder once a second by default: up to a second added to every SAM embedding.
            "polling_interval": 0.2,
        }
    elif settings.broker_url.startswith(("redis://", "rediss://")):
        config["broker_transport_options"] = {"visibility_timeout": REDIS_VISIBILITY_TIMEOUT_S}
    return config


def embedded_pending_task_ids(settings: Settings) -> set[str] | None:
    """Task ids of the messages waiting in the embedded broker's queue folder; None when one of them cannot
    be read (a file still being written): the caller then cannot tell a lost message from a waiting one.

    The filesystem transport deletes a message file when a worker takes it, and has no redelivery: a
    worker that dies between taking a message and claiming its job loses the message, and only this
    listing shows it (server.jobs.reap_stale_jobs re-sends such a job)."""
    found: set[str] = set()
    for path in (embedded_broker_dir(settings) / "queue").glob("*.msg"):
        try:
            found.add(str(json.loads(path.read_bytes())["headers"]["id"]))
        except FileNotFoundError:
            continue  # taken by a worker meanwhile: its job is being claimed
        except (OSError, ValueError, KeyError, TypeError):
            return None
    return found
