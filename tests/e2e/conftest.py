"""Browser fixtures: the real app served over HTTP by uvicorn (in a thread of the test process, against the test
database) and Debian's Chromium driven by playwright. Chromium comes from apt (`scripts/setup` installs it when
root); `playwright install` is never run. A missing browser fails the tests rather than skipping them."""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx
import pytest
import uvicorn

from server.app import create_app
from server.settings import Settings
from tests.integration.conftest import DEFAULT_TEST_REDIS_URL, HEARTBEAT_S, WorkerProcess, start_worker

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--no-first-run",
]


def free_port() -> int:
    import socket

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@contextmanager
def serve(settings: Settings) -> Iterator[str]:
    """The app for `settings` on a free loopback port, in a thread; yields its base URL, stops it afterwards."""
    port = free_port()
    server = uvicorn.Server(uvicorn.Config(create_app(settings), host="127.0.0.1", port=port, log_level="warning"))
    thread = threading.Thread(target=server.run, name="live-server", daemon=True)
    thread.start()
    base = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 30
    while not server.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            pytest.fail("the live API server did not start", pytrace=False)
        time.sleep(0.05)
    assert httpx.get(f"{base}/api/v1/openapi.json", timeout=10).status_code == 200
    try:
        yield base
    finally:
        server.should_exit = True
        thread.join(timeout=30)


@pytest.fixture
def live_server(settings: Settings) -> Iterator[str]:
    """The app for `settings` on a free loopback port; yields its base URL and stops it afterwards."""
    with serve(settings) as base:
        yield base


@pytest.fixture(scope="session")
def chromium() -> Iterator[object]:
    """A headless Chromium (Debian's), shared by the session's browser tests."""
    if not CHROMIUM.is_file():
        pytest.fail(
            f"{CHROMIUM} is missing: `apt-get install -y chromium` (scripts/setup does it as root)", pytrace=False
        )
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), headless=True, args=CHROMIUM_ARGS)
        yield browser
        browser.close()


@pytest.fixture(scope="module")
def web_worker_settings(database_url: str, tmp_path_factory: pytest.TempPathFactory) -> Settings:
    """Like tests/integration's worker settings, but per test module: its worker stops at the module's end,
    so it never takes jobs of the integration tests that run later in the same session."""
    import redis

    broker = os.environ.get("MARSLABEL_TEST_REDIS_URL", DEFAULT_TEST_REDIS_URL)
    try:
        client = redis.Redis.from_url(broker, socket_connect_timeout=3)
        client.flushdb()
        client.close()
    except redis.RedisError as error:
        pytest.fail(f"cannot reach the test broker {broker} ({error}); start Redis (scripts/services)", pytrace=False)
    return Settings(
        database_url=database_url,
        broker_url=broker,
        data_dir=tmp_path_factory.mktemp("webapp-data"),
        job_heartbeat_seconds=HEARTBEAT_S,
    )


@pytest.fixture(scope="module")
def web_worker(web_worker_settings: Settings, tmp_path_factory: pytest.TempPathFactory) -> Iterator[WorkerProcess]:
    worker = start_worker(web_worker_settings, tmp_path_factory.mktemp("webapp-worker") / "worker.log")
    yield worker
    worker.stop()


@pytest.fixture
def web(db_url: str, web_worker_settings: Settings, web_worker: WorkerProcess) -> Iterator[str]:
    """The app with the worker's database, broker and data folder, served over HTTP (db_url empties the database)."""
    with serve(web_worker_settings.model_copy()) as base:
        yield base
