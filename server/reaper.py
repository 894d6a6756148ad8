"""The reaper of lost jobs on a schedule of its own: a thread beside the API (`marslabel serve`) or a small
process (`marslabel reaper`). It never depends on a worker being alive: workers only run jobs.

Every REAP_FRACTION of a heartbeat interval it calls server.jobs.reap_stale_jobs; `poke()` asks for a pass now
(the embedded supervisor does, when one of its workers died). Several reapers may run at once (one per API
replica, say): every change they make is a conditional UPDATE, so a job is re-queued once.
"""

from __future__ import annotations

import logging
import threading

from server.jobs import ReapReport, reap_seconds, reap_stale_jobs
from server.settings import Settings

log = logging.getLogger(__name__)


class Reaper:
    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.period_s = reap_seconds(settings)
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def reap_once(self) -> ReapReport | None:
        try:
            return reap_stale_jobs(self.settings)
        except Exception:  # the database may be away for a moment: try again next period
            log.exception("job reaper failed; trying again in %.1f s", self.period_s)
            return None

    def run(self) -> None:
        """Reap every period (and when poked) until `stop()`."""
        log.info("reaper: looking for lost jobs every %.1f s", self.period_s)
        while not self._stop.is_set():
            self.reap_once()
            self._wake.wait(self.period_s)
            self._wake.clear()

    def start(self) -> None:
        self._thread = threading.Thread(target=self.run, name="marslabel-reaper", daemon=True)
        self._thread.start()

    def poke(self) -> None:
        self._wake.set()

    def stop(self) -> None:
        self._stop.set()
        self._wake.set()
        if self._thread is not None:
            self._thread.join(timeout=30)
