"""Redis headroom: refuse key-value and checkpoint writes while Redis is nearly full.

Redis runs with ``noeviction``: once it is full, every write fails, a small
``submit`` of another tenant included. A worker process therefore reads Redis's
memory every few seconds (a supervisor watch, never per call) and, above the
operator's fraction of ``maxmemory``, makes its store refuse the writes a guest
controls, so the room left is kept for records, leases and submits.
"""

from __future__ import annotations

import logging
import time

import redis

from ..store.redis import RedisStore

log = logging.getLogger(__name__)
CHECK_SECONDS = 2.0
RECHECK_SECONDS = 0.2


class Headroom:
    """A supervisor watch; takes the store, the fraction of maxmemory that is "full" and an interval."""

    def __init__(self, store: RedisStore, high: float, interval: float = CHECK_SECONDS) -> None:
        self.store = store
        self.high = high
        self.interval = interval
        self.next_at = 0.0
        self._checked_at = 0.0
        store.recheck = self.recheck

    def refresh(self) -> None:
        """Check now if the last check is older than the interval (a run starting)."""
        now = time.monotonic()
        if now >= self.next_at:
            self.tick(now)

    def recheck(self) -> None:
        """While writes are refused, look again at most every ``RECHECK_SECONDS`` (so room that
        came back is used at once, at a few round trips a second only while Redis is full)."""
        now = time.monotonic()
        if now - self._checked_at >= RECHECK_SECONDS:
            self.tick(now)

    def tick(self, now: float) -> None:
        self.next_at = now + self.interval
        self._checked_at = now
        try:
            info = self.store.client.info("memory")
        except redis.RedisError as exc:
            log.debug("headroom check skipped: %s", exc)
            return
        used, cap = int(info.get("used_memory", 0)), int(info.get("maxmemory", 0))
        if cap and used >= self.high * cap:
            if not self.store.low_memory:
                log.warning("Redis is at %.0f%% of maxmemory: guest writes are refused", 100 * used / cap)
            self.store.low_memory = (
                f"Redis is at {used / cap:.0%} of its maxmemory (the operator keeps {1 - self.high:.0%} free): "
                "key-value and checkpoint writes are refused until it has room"
            )
        else:
            self.store.low_memory = None
