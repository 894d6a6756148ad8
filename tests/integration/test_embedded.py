"""The embedded default, as `scripts/serve` runs it: SQLite, the filesystem broker, `marslabel serve` with its
own worker process. Real processes throughout: the CLI, the API server, the worker."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from tests.integration.conftest import REPO, make_project_folder


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def _children(pid: int) -> set[int]:
    found: set[int] = set()
    for task in Path(f"/proc/{pid}/task").glob("*"):
        text = (task / "children").read_text() if (task / "children").exists() else ""
        found.update(int(p) for p in text.split())
    return found


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    # A zombie is dead too: it only waits for its parent to read its status.
    stat = Path(f"/proc/{pid}/stat")
    return not (stat.exists() and stat.read_text().split(") ", 1)[1].startswith("Z"))


@pytest.fixture
def embedded_env(tmp_path: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("MARSLABEL_")}
    (tmp_path / "imports").mkdir()
    env.update(
        MARSLABEL_DATA_DIR=str(tmp_path / "var"),
        MARSLABEL_IMPORT_ROOT=str(tmp_path / "imports"),
        PYTHONUNBUFFERED="1",
    )
    return env


def marslabel(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "server.cli", *args], cwd=REPO, env=env, capture_output=True, text=True, timeout=300
    )


def test_cli_and_embedded_service_end_to_end(embedded_env: dict[str, str], tmp_path: Path) -> None:
    # An unmigrated database: serve refuses, naming the command that fixes it.
    refused = marslabel(embedded_env, "serve", "--no-worker")
    assert refused.returncode == 2 and "marslabel migrate" in refused.stderr

    assert marslabel(embedded_env, "migrate").returncode == 0
    again = marslabel(embedded_env, "migrate")  # safe to re-run
    assert again.returncode == 0 and "schema revision" in again.stdout

    made = marslabel(embedded_env, "create-user", "ada", "--role", "lead")
    assert made.returncode == 0, made.stderr
    token = made.stdout.strip()
    assert token.startswith("ml_") and "\n" not in token
    duplicate = marslabel(embedded_env, "create-user", "ada", "--role", "lead")
    assert duplicate.returncode == 1 and "already exists" in duplicate.stderr

    first = marslabel(embedded_env, "demo")
    assert first.returncode == 0, first.stderr
    assert "24 images" in first.stdout and "24 added now" in first.stdout
    labeled = int(first.stdout.split("(24 added now, ")[1].split(" ")[0])
    assert 0 < labeled < 24  # some scenes come labeled, most wait for an annotator
    second = marslabel(embedded_env, "demo")
    assert "already there" in second.stdout and "24 images" in second.stdout and "0 added now" in second.stdout
    # The demo says how to sign in, with the same lead token each time.
    demo_token = first.stdout.split("with the token ")[1].split()[0]
    assert demo_token.startswith("ml_") and f"with the token {demo_token}" in second.stdout

    make_project_folder(tmp_path / "imports" / "drop", 60, labeled_every=4, val=10, size=24)
    port = _free_port()
    log_path = tmp_path / "serve.log"
    with log_path.open("wb") as log:
        server = subprocess.Popen(
            [sys.executable, "-m", "server.cli", "serve", "--port", str(port)],
            cwd=REPO,
            env=embedded_env,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    base = f"http://127.0.0.1:{port}"
    auth = {"Authorization": f"Bearer {token}"}
    try:
        _wait_until_up(base, server, log_path)
        assert f"http://127.0.0.1:{port}/" in log_path.read_text()  # the URL is printed
        assert httpx.get(f"{base}/", follow_redirects=True).status_code == 200  # the web app
        workers = _children(server.pid)
        assert workers, "serve started no worker process"

        me = httpx.get(f"{base}/api/v1/users/me", headers={"Authorization": f"Bearer {demo_token}"})
        assert me.status_code == 200 and me.json()["role"] == "lead", me.text
        projects = httpx.get(f"{base}/api/v1/projects", headers=auth).json()
        demo = next(p for p in projects if p["name"] == "demo")
        assert [c["name"] for c in demo["classes"]][:3] == ["sky", "ridge", "soil"]
        job = httpx.post(f"{base}/api/v1/projects/{demo['id']}/imports", json={"path": "drop"}, headers=auth).json()
        deadline = time.monotonic() + 240
        while time.monotonic() < deadline:
            row = httpx.get(f"{base}/api/v1/jobs/{job['id']}", headers=auth).json()
            if row["status"] in ("done", "failed", "cancelled"):
                break
            time.sleep(0.3)
        assert row["status"] == "done", (row, log_path.read_text()[-4000:])
        assert (row["result"]["stored"], row["result"]["labeled"]) == (60, 15)
    finally:
        server.send_signal(signal.SIGTERM)
        try:
            server.wait(timeout=60)
        except subprocess.TimeoutExpired:
            os.killpg(server.pid, signal.SIGKILL)
            raise
    deadline = time.monotonic() + 30
    while any(_alive(pid) for pid in workers) and time.monotonic() < deadline:
        time.sleep(0.2)
    assert not any(_alive(pid) for pid in workers), "the embedded worker outlived the server"


def _wait_until_up(base: str, server: subprocess.Popen[bytes], log_path: Path) -> None:
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        if server.poll() is not None:
            pytest.fail(f"marslabel serve exited:\n{log_path.read_text()[-4000:]}", pytrace=False)
        try:
            if httpx.get(f"{base}/api/v1/openapi.json", timeout=2).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.3)
    pytest.fail(f"marslabel serve did not answer:\n{log_path.read_text()[-4000:]}", pytrace=False)
