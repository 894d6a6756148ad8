"""The job protocol's pieces that need no database: the kinds table, import path checks, API import weight."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from server.imports import ImportPathError, resolve_import_path
from server.jobs import JOB_KINDS, QUEUES, task_name


def test_every_job_kind_has_a_handler_and_a_known_queue() -> None:
    from server.settings import Settings
    from worker.celery_app import create_celery_app, resolve_handler

    app = create_celery_app(Settings(broker_url="redis://127.0.0.1:6379/15"))
    for kind, spec in JOB_KINDS.items():
        assert spec.queue in QUEUES
        assert callable(resolve_handler(spec.handler))
        assert task_name(kind) in app.tasks
    # Interactive work has a queue of its own; long model work never shares it.
    assert JOB_KINDS["sam_embed"].queue == "interactive"
    assert {JOB_KINDS[kind].queue for kind in ("round", "pseudo_label", "sam_auto_masks")} == {"gpu"}


def test_an_interactive_worker_has_only_its_tasks_and_no_torch() -> None:
    code = (
        "import sys; from server.settings import Settings; from worker.celery_app import create_celery_app; "
        "app = create_celery_app(Settings(broker_url='redis://127.0.0.1:6379/15'), ['interactive']); "
        "print(sorted(t for t in app.tasks if t.startswith('marslabel.')), 'torch' in sys.modules)"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert result.stdout.strip() == "['marslabel.sam_embed'] False"


def test_api_imports_neither_worker_nor_celery() -> None:
    code = (
        "import sys, server.app, server.routers, server.jobs; "
        "print(sorted(m for m in ('worker', 'celery', 'kombu', 'torch') if m in sys.modules))"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert result.stdout.strip() == "[]"


def test_import_paths(tmp_path: Path) -> None:
    root = tmp_path / "root"
    (root / "a" / "b").mkdir(parents=True)
    (tmp_path / "secret").mkdir()
    os.symlink(tmp_path / "secret", root / "out")
    os.symlink(root / "a" / "b", root / "inside")
    assert resolve_import_path(root, "a/b") == (root / "a" / "b").resolve()
    assert resolve_import_path(root, "inside") == (root / "a" / "b").resolve()  # a symlink that stays inside
    for path, status in [
        ("../secret", 403),
        ("a/../../secret", 403),
        (str(tmp_path / "secret"), 403),
        ("out", 403),
        ("out/x", 403),
        ("nope", 404),
        ("", 400),
        ("a\x00b", 400),
    ]:
        with pytest.raises(ImportPathError) as caught:
            resolve_import_path(root, path)
        assert caught.value.status == status, path
    with pytest.raises(ImportPathError) as unset:
        resolve_import_path(None, "a")
    assert unset.value.status == 403 and "MARSLABEL_IMPORT_ROOT" in str(unset.value)
