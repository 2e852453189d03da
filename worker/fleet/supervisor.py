"""One thread per worker process that looks after every running job: leases and control polls.

Starting two threads per run (a lease keeper and an interrupt watcher) costs a
millisecond on a busy machine, more than a trivial job itself. Instead each
process has one supervisor thread; a run registers its *watches* (objects with
``next_at`` and ``tick(now)``) for as long as it runs. Ticks run under a lock,
so once :meth:`Supervisor.watching` exits, none of its watches is mid-tick.
A run wakes the thread only when one of its watches is due before the thread
looks again anyway: short jobs then cost no thread switch each.
"""

from __future__ import annotations

import logging
import math
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Protocol

log = logging.getLogger(__name__)


class Watch(Protocol):
    """Something the supervisor calls when it is due."""

    next_at: float

    def tick(self, now: float) -> None: ...


class Supervisor:
    """The process's supervisor thread (started on first use)."""

    def __init__(self) -> None:
        self._watches: list[Watch] = []
        self._lock = threading.Lock()
        self._wake = threading.Event()
        self._thread: threading.Thread | None = None
        self._deadline = math.inf  # when the thread looks at the watches next (under the lock)

    @contextmanager
    def watching(self, *watches: Watch) -> Iterator[None]:
        with self._lock:
            self._watches.extend(watches)
            if self._thread is None or not self._thread.is_alive():
                self._deadline = math.inf
                self._thread = threading.Thread(target=self._run, name="wasmjob-supervisor", daemon=True)
                self._thread.start()
            wake = min((w.next_at for w in watches), default=math.inf) < self._deadline
        if wake:
            self._wake.set()
        try:
            yield
        finally:
            with self._lock:
                self._watches = [w for w in self._watches if not any(w is x for x in watches)]

    def _run(self) -> None:
        while True:
            with self._lock:
                due = min((w.next_at for w in self._watches), default=None)
                self._deadline = math.inf if due is None else due
            now = time.monotonic()
            if due is None or due > now:
                self._wake.wait(None if due is None else due - now)
                self._wake.clear()
                continue
            with self._lock:
                for watch in [w for w in self._watches if w.next_at <= now]:
                    try:
                        watch.tick(now)
                    except Exception:  # one job's watch must not stop the others'
                        log.exception("supervisor: %r failed", watch)
                        watch.next_at = now + 1.0
