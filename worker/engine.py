"""The one wasmtime Engine of a process, and the ticker thread that advances its epoch.

Fuel and epoch interruption are always on: fuel meters every run, the epoch
gives each run a wall-clock deadline without a signal or a thread per run.
"""

from __future__ import annotations

import hashlib
import threading
import weakref
from dataclasses import dataclass

import wasmtime

TICK_SECONDS = 0.01


@dataclass(frozen=True)
class EngineSettings:
    """Everything that changes compiled code; part of every cache key."""

    opt_level: str = "speed"
    max_wasm_stack: int = 512 * 1024
    parallel_compilation: bool = True

    def fingerprint(self) -> str:
        """A short digest of wasmtime's version and these settings."""
        text = (
            f"wasmtime={_wasmtime_version()};fuel=1;epoch=1;opt={self.opt_level};stack={self.max_wasm_stack}"
            ";memory_may_move=0"
        )
        return hashlib.sha256(text.encode()).hexdigest()[:16]


def _wasmtime_version() -> str:
    from importlib.metadata import version

    return version("wasmtime")


def make_engine(settings: EngineSettings) -> wasmtime.Engine:
    """An Engine with fuel and epoch interruption on and no WASI or threads.

    ``memory_may_move`` is always off: wasmtime reserves a memory's maximum up front, so
    its base address never changes and ``HostState`` keeps it for the whole run (not a
    setting, because the host's cached base would be unsafe with it on). It changes
    compiled code, so the fingerprint names it.
    """
    config = wasmtime.Config()
    config.consume_fuel = True
    config.epoch_interruption = True
    config.cranelift_opt_level = settings.opt_level
    config.max_wasm_stack = settings.max_wasm_stack
    config.parallel_compilation = settings.parallel_compilation
    config.wasm_threads = False
    config.memory_may_move = False
    return wasmtime.Engine(config)


class EpochTicker:
    """A daemon thread that increments the engine's epoch every ``TICK_SECONDS``.

    It holds the engine weakly and stops when the engine is gone or on :meth:`stop`.
    """

    def __init__(self, engine: wasmtime.Engine, interval: float = TICK_SECONDS) -> None:
        self.interval = interval
        self._engine = weakref.ref(engine)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="wasmjob-epoch", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.wait(self.interval):
            engine = self._engine()
            if engine is None:
                return
            engine.increment_epoch()
            del engine

    def ticks_for(self, seconds: float) -> int:
        """How many ticks make ``seconds`` (at least one)."""
        return max(1, int(seconds / self.interval) + 1)

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=1)
