"""`marslabel serve`'s own worker processes on the embedded default, kept alive.

One process per queue group (EMBEDDED_WORKER_GROUPS): `interactive` apart from `cpu,gpu`, so that a SAM
embedding never waits behind a round; the long work runs at a lower CPU priority (nice 10), so that on a
machine of few cores an embedding (or a request) is not slowed down by a round that keeps every core busy.

A process that dies is started again after a backoff (1 s, doubled after each quick death up to 60 s, back
to 1 s once one lived a minute), with a log line each time; the death is reported to `on_death` (the
reaper's poke: its jobs are re-queued at once, not after the heartbeat timeout). Each worker gets
`--parent-pid`, so that it ends with `serve` even when `serve` is killed.
"""

from __future__ import annotations

import contextlib
import logging
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

log = logging.getLogger(__name__)

EMBEDDED_WORKER_GROUPS = (("interactive", 0), ("cpu,gpu", 10))  # (queues, niceness)
POLL_S = 0.25
FIRST_BACKOFF_S = 1.0
MAX_BACKOFF_S = 60.0
STABLE_S = 60.0  # a worker that lived this long before dying restarts after FIRST_BACKOFF_S again
STOP_WAIT_S = 15.0


def _described(returncode: int) -> str:
    if returncode < 0:
        try:
            return f"killed by {signal.Signals(-returncode).name}"
        except ValueError:
            return f"killed by signal {-returncode}"
    return f"exited with code {returncode}"


@dataclass
class _Slot:
    queues: str
    niceness: int
    process: subprocess.Popen[bytes] | None = None
    started_at: float = 0.0
    restarts: int = 0
    backoff_s: float = FIRST_BACKOFF_S
    restart_at: float = 0.0


class EmbeddedWorkers:
    def __init__(
        self, groups: tuple[tuple[str, int], ...] = EMBEDDED_WORKER_GROUPS, on_death: Callable[[], None] | None = None
    ):
        self._slots = [_Slot(queues, niceness) for queues, niceness in groups]
        self._on_death = on_death
        self._lock = threading.Lock()
        self._stopping = threading.Event()
        self._thread: threading.Thread | None = None

    def pids(self) -> dict[str, int | None]:
        with self._lock:
            return {slot.queues: slot.process.pid if slot.process else None for slot in self._slots}

    def start(self) -> None:
        with self._lock:
            for slot in self._slots:
                self._spawn(slot)
        self._thread = threading.Thread(target=self._watch, name="marslabel-worker-supervisor", daemon=True)
        self._thread.start()

    def _spawn(self, slot: _Slot) -> None:
        command = [
            sys.executable,
            "-m",
            "server.cli",
            "worker",
            "--queues",
            slot.queues,
            "--parent-pid",
            str(os.getpid()),
            "--niceness",
            str(slot.niceness),
        ]
        # Its own process group, so that stopping it also stops anything it started; no preexec_fn, which is
        # unsafe in a process with threads (the worker sets its own parent-death signal).
        slot.process = subprocess.Popen(command, start_new_session=True)
        slot.started_at = time.monotonic()
        if slot.restarts:
            log.warning(
                "embedded worker [%s] restarted (pid %d, restart %d)", slot.queues, slot.process.pid, slot.restarts
            )

    def _watch(self) -> None:
        while not self._stopping.wait(POLL_S):
            with self._lock:
                if self._stopping.is_set():
                    return
                for slot in self._slots:
                    self._check(slot)

    def _check(self, slot: _Slot) -> None:
        now = time.monotonic()
        if slot.process is not None:
            returncode = slot.process.poll()  # reaps it: its pid is gone from now on
            if returncode is None:
                return
            lived = now - slot.started_at
            if lived >= STABLE_S:
                slot.backoff_s = FIRST_BACKOFF_S
            log.warning(
                "embedded worker [%s] (pid %d) %s after %.0f s; restarting it in %.0f s",
                slot.queues, slot.process.pid, _described(returncode), lived, slot.backoff_s,
            )  # fmt: skip
            slot.process = None
            slot.restart_at = now + slot.backoff_s
            slot.backoff_s = min(2 * slot.backoff_s, MAX_BACKOFF_S)
            if self._on_death is not None:
                self._on_death()
        if slot.process is None and now >= slot.restart_at:
            slot.restarts += 1
            try:
                self._spawn(slot)
            except OSError as error:
                log.error("embedded worker [%s] could not be started: %s", slot.queues, error)
                slot.process = None
                slot.restart_at = now + slot.backoff_s
                slot.backoff_s = min(2 * slot.backoff_s, MAX_BACKOFF_S)

    def stop(self) -> None:
        """Stop watching, then stop every worker (SIGTERM to its group, SIGKILL after STOP_WAIT_S)."""
        with self._lock:
            self._stopping.set()
            processes = [slot.process for slot in self._slots if slot.process is not None]
        if self._thread is not None:
            self._thread.join(timeout=5)
        for process in processes:
            if process.poll() is None:
                _signal_group(process, signal.SIGTERM)
        deadline = time.monotonic() + STOP_WAIT_S
        for process in processes:
            try:
                process.wait(timeout=max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                _signal_group(process, signal.SIGKILL)
                process.wait()


def _signal_group(process: subprocess.Popen[bytes], signum: int) -> None:
    with contextlib.suppress(ProcessLookupError):  # gone meanwhile
        os.killpg(process.pid, signum)
