"""The component's side of ``wasmjob:job/host``: the world's exports, over the generated bindings.

Imported only inside a component built by ``wasmjob build`` (componentize-py generates
``wit_world``); the entry module it writes imports the author's jobs, then this.
"""

from __future__ import annotations

import wit_world
from wit_world.imports import host as _wit

from .jobs import registered, run_job

_LEVELS = (_wit.Level.DEBUG, _wit.Level.INFO, _wit.Level.WARN, _wit.Level.ERROR)


class _ComponentHost:
    """The :class:`~wasmjob_sdk.context.Host` protocol over the component's imports."""

    def log(self, level: int, message: str) -> None:
        _wit.log(_LEVELS[level if 0 <= level <= 3 else 1], message)

    # the imports themselves, without a wrapper call per use
    report_progress = staticmethod(_wit.report_progress)
    checkpoint = staticmethod(_wit.checkpoint)
    check_interrupt = staticmethod(_wit.check_interrupt)
    add_warning = staticmethod(_wit.add_warning)
    increment_items = staticmethod(_wit.increment_items)
    increment_bytes = staticmethod(_wit.increment_bytes)

    def call(self, method: str, library_id: str, payload: str) -> str:
        from componentize_py_types import Err

        from .context import HostCallFailed

        try:
            return _wit.call(method, library_id, payload)
        except Err as err:
            raise HostCallFailed(f"{method}: {err.value}") from None


_HOST = _ComponentHost()


class WitWorld(wit_world.WitWorld):
    """The exports of world ``extension``: ``jobs`` and ``execute``."""

    def jobs(self) -> list[str]:
        return sorted(registered())

    def execute(self, job: str, ctx: str, state: bytes) -> int:
        return run_job(job, _HOST, ctx, state)
