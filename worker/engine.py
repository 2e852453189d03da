"""The one wasmtime Engine of a process, and the ticker thread that advances its epoch.

Epoch interruption is always on: it gives each run a wall-clock deadline without
a signal or a thread per run. Fuel is a setting: a metered engine counts every
instruction (for a fuel budget or fuel billing) at a cost of roughly half again the
run time of tight loops, so runs that ask for neither go to an engine without it.
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
    fuel: bool = True

    def fingerprint(self) -> str:
        """A short digest of wasmtime's version and these settings."""
        text = (
            f"wasmtime={_wasmtime_version()};fuel={int(self.fuel)};epoch=1;opt={self.opt_level};stack={self.max_wasm_stack}"
            ";memory_may_move=0"
        )
        return hashlib.sha256(text.encode()).hexdigest()[:16]


def _wasmtime_version() -> str:
    from importlib.metadata import version

    return version("wasmtime")


def make_engine(settings: EngineSettings) -> wasmtime.Engine:
    """An Engine with epoch interruption on, fuel as ``settings`` say, and no WASI or threads.

    ``memory_may_move`` is always off: wasmtime reserves a memory's maximum up front, so
    its base address never changes and ``HostState`` keeps it for the whole run (not a
    setting, because the host's cached base would be unsafe with it on). It changes
    compiled code, so the fingerprint names it.
    """
    config = wasmtime.Config()
    config.consume_fuel = settings.fuel
    config.epoch_interruption = True
    config.cranelift_opt_level = settings.opt_level
    config.max_wasm_stack = settings.max_wasm_stack
    config.parallel_compilation = settings.parallel_compilation
    config.wasm_threads = False
    config.memory_may_move = False
    return wasmtime.Engine(config)


class EpochTicker:
    """A daemon thread that increments the epoch of its engines every ``TICK_SECONDS``.

    It holds the engines weakly (one thread serves a process's metered and unmetered
    engine) and stops when they are all gone or on :meth:`stop`.
    """

    def __init__(self, engine: wasmtime.Engine, interval: float = TICK_SECONDS) -> None:
        self.interval = interval
        self._engines = [weakref.ref(engine)]
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="wasmjob-epoch", daemon=True)
        self._thread.start()

    def add(self, engine: wasmtime.Engine) -> None:
        """Tick ``engine`` too."""
        self._engines = [*self._engines, weakref.ref(engine)]

    def _run(self) -> None:
        while not self._stop.wait(self.interval):
            alive = 0
            for ref in self._engines:
                engine = ref()
                if engine is not None:
                    engine.increment_epoch()
                    alive += 1
                del engine
            if not alive:
                return

    def ticks_for(self, seconds: float) -> int:
        """How many ticks make ``seconds`` (at least one)."""
        return max(1, int(seconds / self.interval) + 1)

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=1)
