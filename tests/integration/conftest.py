"""Job fixtures: a real Celery worker process (`marslabel worker`) on Redis and the test PostgreSQL database.

Redis is the test broker (MARSLABEL_TEST_REDIS_URL, default db 11, flushed at start). If PostgreSQL or Redis
cannot be reached the tests fail with a message saying so; CI has both.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest
from fastapi.testclient import TestClient

from server.app import create_app
from server.models import Job, JobStatus
from server.settings import Settings
from tests.factories import png_bytes

REPO = Path(__file__).resolve().parents[2]
DEFAULT_TEST_REDIS_URL = "redis://127.0.0.1:6379/11"
# Workers run no reaper (server.reaper runs beside the API or as `marslabel reaper`); the tests that lose a
# worker start a reaper process of their own.
HEARTBEAT_S = 30
ALL_QUEUES = "interactive,cpu,gpu"


@dataclass
class WorkerProcess:
    process: subprocess.Popen[bytes]
    log_path: Path

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def alive(self) -> bool:
        return self.process.poll() is None

    def kill(self) -> None:
        """SIGKILL the worker and its pool processes: a machine lost mid-job."""
        if self.alive():
            os.killpg(self.process.pid, signal.SIGKILL)
        self.process.wait(timeout=30)

    def stop(self) -> None:
        if not self.alive():
            return
        os.killpg(self.process.pid, signal.SIGTERM)
        try:
            self.process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            self.kill()


def worker_env(settings: Settings) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("MARSLABEL_")}
    env.update(
        MARSLABEL_DATA_DIR=str(settings.data_dir),
        MARSLABEL_JOB_HEARTBEAT_SECONDS=str(settings.job_heartbeat_seconds),
        PYTHONUNBUFFERED="1",
    )
    if settings.database_url:
        env["MARSLABEL_DATABASE_URL"] = settings.database_url
    if settings.broker_url:
        env["MARSLABEL_BROKER_URL"] = settings.broker_url
    if settings.import_root:
        env["MARSLABEL_IMPORT_ROOT"] = str(settings.import_root)
    return env


def _start(command: list[str], settings: Settings, log_path: Path, ready: str, timeout: float) -> WorkerProcess:
    """A `marslabel` subprocess in its own process group; returns once its log shows `ready`."""
    log_file = log_path.open("ab")
    process = subprocess.Popen(
        [sys.executable, "-m", "server.cli", *command],
        cwd=REPO,
        env=worker_env(settings),
        stdout=log_file,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    log_file.close()
    started = WorkerProcess(process, log_path)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if ready in started.log():
            return started
        if not started.alive():
            break
        time.sleep(0.2)
    started.stop()
    pytest.fail(f"`marslabel {command[0]}` did not become ready:\n{started.log()[-4000:]}", pytrace=False)


def start_worker(
    settings: Settings, log_path: Path, *, pool: str = "prefork", queues: str = ALL_QUEUES, timeout: float = 90
) -> WorkerProcess:
    """`marslabel worker` as a subprocess in its own process group; returns once it reports ready."""
    return _start(["worker", "--queues", queues, "--pool", pool], settings, log_path, " ready.", timeout)


def start_reaper(settings: Settings, log_path: Path, *, timeout: float = 60) -> WorkerProcess:
    """`marslabel reaper` as a subprocess: lost jobs are re-queued whether or not a worker is alive."""
    return _start(["reaper"], settings, log_path, "looking for lost jobs every", timeout)


@pytest.fixture(scope="session")
def redis_url() -> str:
    import redis

    url = os.environ.get("MARSLABEL_TEST_REDIS_URL", DEFAULT_TEST_REDIS_URL)
    try:
        client = redis.Redis.from_url(url, socket_connect_timeout=3)
        client.flushdb()
        client.close()
    except redis.RedisError as error:
        pytest.fail(
            f"cannot reach the test broker {url} ({error}). Start Redis (scripts/services) or set "
            "MARSLABEL_TEST_REDIS_URL; job tests fail rather than skip.",
            pytrace=False,
        )
    return url


@pytest.fixture(scope="session")
def import_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("import-root")


@pytest.fixture(scope="session")
def worker_settings(database_url: str, redis_url: str, import_root: Path, tmp_path_factory: pytest.TempPathFactory):
    return Settings(
        database_url=database_url,
        broker_url=redis_url,
        import_root=import_root,
        data_dir=tmp_path_factory.mktemp("worker-data"),
        job_heartbeat_seconds=HEARTBEAT_S,
    )


@pytest.fixture(scope="session")
def celery_worker(worker_settings: Settings, tmp_path_factory: pytest.TempPathFactory) -> Iterator[WorkerProcess]:
    """One real worker process for the session, stopped at its end."""
    worker = start_worker(worker_settings, tmp_path_factory.mktemp("worker-log") / "worker.log")
    yield worker
    worker.stop()


@pytest.fixture
def job_settings(db_url: str, worker_settings: Settings) -> Settings:
    """The API's settings for job tests: the worker's database, broker and import root (db_url empties it)."""
    return worker_settings.model_copy()


@pytest.fixture
def job_client(job_settings: Settings) -> Iterator[TestClient]:
    with TestClient(create_app(job_settings)) as client:
        yield client


def noise_image(seed: int, size: int = 32) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, (size, size, 3), dtype=np.uint8)


def make_project_folder(
    root: Path, count: int, *, labeled_every: int = 2, val: int = 0, size: int = 32, seed: int = 0
) -> Path:
    """A dataset in the project layout: images/, labels/ (every `labeled_every`-th), splits/, classes.json."""
    (root / "images").mkdir(parents=True)
    (root / "labels").mkdir()
    (root / "splits").mkdir()
    ids = [f"img_{i:04d}" for i in range(count)]
    for i, sample_id in enumerate(ids):
        (root / "images" / f"{sample_id}.png").write_bytes(png_bytes(noise_image(seed + i, size)))
        if i % labeled_every == 0:
            label = np.full((size, size), 255, np.uint8)
            label[: size // 2] = i % 4
            (root / "labels" / f"{sample_id}.png").write_bytes(png_bytes(label))
    (root / "splits" / "val.txt").write_text("".join(f"{s}\n" for s in ids[:val]))
    (root / "splits" / "pool.txt").write_text("".join(f"{s}\n" for s in ids[val:]))
    (root / "classes.json").write_text(
        '{"ignore_index": 255, "classes": [{"id": 0, "name": "soil", "color": [1, 2, 3]}]}'
    )
    return root


def wait_for_job(
    session_factory: Callable[[], object], job_id: int, *, until: Callable[[Job], bool], timeout: float = 120
) -> Job:
    """Poll the row (a fresh session each time) until `until(job)` holds; fails with the row on timeout."""
    deadline = time.monotonic() + timeout
    job = None
    while time.monotonic() < deadline:
        with session_factory() as session:  # type: ignore[attr-defined]
            job = session.get(Job, job_id)
            session.expunge_all()
        if job is not None and until(job):
            return job
        time.sleep(0.05)
    pytest.fail(
        f"job {job_id} did not get there in {timeout}s: "
        f"{None if job is None else (job.status, job.progress, job.message, job.error)}",
        pytrace=False,
    )


TERMINAL = {JobStatus.done, JobStatus.failed, JobStatus.cancelled}
