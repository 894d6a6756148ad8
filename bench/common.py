"""Shared by the service benchmarks: a PostgreSQL database of their own and a real API server process."""

from __future__ import annotations

import json
import os
import platform
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx
from sqlalchemy import create_engine, make_url, pool, text

REPO = Path(__file__).resolve().parents[1]
RESULTS = REPO / "bench" / "results"
DEFAULT_BENCH_DATABASE_URL = "postgresql+psycopg://postgres@127.0.0.1:5432/marslabel_bench"


def bench_database() -> str:
    """The benchmark database (MARSLABEL_BENCH_DATABASE_URL), created if missing, migrated, emptied."""
    from server.db import Base
    from server.schema import upgrade_to_head

    url = os.environ.get("MARSLABEL_BENCH_DATABASE_URL", DEFAULT_BENCH_DATABASE_URL)
    parsed = make_url(url)
    admin = create_engine(parsed.set(database="postgres"), poolclass=pool.NullPool, isolation_level="AUTOCOMMIT")
    with admin.connect() as connection:
        if not connection.scalar(text("SELECT 1 FROM pg_database WHERE datname = :n"), {"n": parsed.database}):
            connection.execute(text(f'CREATE DATABASE "{parsed.database}"'))
    admin.dispose()
    upgrade_to_head(url)
    engine = create_engine(url, poolclass=pool.NullPool)
    with engine.begin() as connection:
        tables = ", ".join(f'"{t.name}"' for t in Base.metadata.sorted_tables)
        connection.execute(text(f"TRUNCATE {tables} RESTART IDENTITY CASCADE"))
    engine.dispose()
    return url


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@contextmanager
def api_server(database_url: str, data_dir: Path) -> Iterator[str]:
    """`marslabel serve --no-worker` (uvicorn) in a process of its own; yields its base URL."""
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("MARSLABEL_")}
    env.update(MARSLABEL_DATABASE_URL=database_url, MARSLABEL_DATA_DIR=str(data_dir))
    log = (data_dir / "server.log").open("wb")
    process = subprocess.Popen(
        [sys.executable, "-m", "server.cli", "serve", "--no-worker", "--port", str(port)],
        cwd=REPO,
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 120
        while True:
            if process.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"API server did not start:\n{(data_dir / 'server.log').read_text()[-3000:]}")
            try:
                if httpx.get(f"{base}/api/v1/openapi.json", timeout=2).status_code == 200:
                    break
            except httpx.HTTPError:
                time.sleep(0.3)
        yield base
    finally:
        os.killpg(process.pid, signal.SIGTERM)
        process.wait(timeout=30)
        log.close()


@contextmanager
def worker_process(database_url: str, data_dir: Path, queues: str = "interactive") -> Iterator[None]:
    """`marslabel worker --queues <queues>` in a process of its own, on the embedded broker of `data_dir` (the one
    an api_server on the same folder sends to): what computes an embedding nobody computed ahead."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("MARSLABEL_")}
    env.update(MARSLABEL_DATABASE_URL=database_url, MARSLABEL_DATA_DIR=str(data_dir))
    log = (data_dir / f"worker-{queues.replace(',', '-')}.log").open("wb")
    process = subprocess.Popen(
        [sys.executable, "-m", "server.cli", "worker", "--queues", queues],
        cwd=REPO,
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    try:
        yield
    finally:
        os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait(timeout=30)
        log.close()


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    if not ordered:
        return float("nan")
    index = min(len(ordered) - 1, max(0, round(q / 100 * (len(ordered) - 1))))
    return ordered[index]


def write_result(name: str, figures: dict[str, Any]) -> Path:
    figures = {
        **figures,
        "machine": {"cpus": os.cpu_count(), "python": platform.python_version(), "platform": platform.platform()},
        "when": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
    }
    RESULTS.mkdir(parents=True, exist_ok=True)
    path = RESULTS / f"{name}.json"
    path.write_text(json.dumps(figures, indent=2) + "\n")
    return path
