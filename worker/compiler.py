"""Compiling a module in a child process with a memory and a time limit.

A pathological module (a million functions) can take a compiler minutes and
gigabytes; in a child with ``RLIMIT_AS`` and a deadline it is killed instead,
and the worker keeps neither the time nor the memory. The child writes the
serialized code to its stdout; the parent loads it into its own engine and
signs it into the module cache with the cache's key, so code on disk still only
ever comes from this host. Run as ``python -m wasmjob.compiler '<settings JSON>' <MiB>``.
"""

from __future__ import annotations

import json
import os
import resource
import subprocess
import sys
from dataclasses import asdict, dataclass

from .engine import EngineSettings
from .errors import ModuleError, ModuleRefused

EXIT_INVALID = 3


@dataclass(frozen=True)
class CompileLimits:
    """How long (seconds) and how much address space (MiB) one compilation may take."""

    timeout_seconds: float = 60.0
    memory_mb: int = 2048


def compile_serialized(wasm: bytes, settings: EngineSettings, limits: CompileLimits) -> bytes:
    """wasmtime's serialized code for ``wasm`` under ``settings``, compiled in a bounded child."""
    try:
        done = subprocess.run(
            [sys.executable, "-m", "wasmjob.compiler", json.dumps(asdict(settings)), str(limits.memory_mb)],
            input=wasm,
            capture_output=True,
            timeout=limits.timeout_seconds,
            check=False,
        )
    except subprocess.TimeoutExpired:
        raise ModuleRefused(
            f"compiling the module took longer than {limits.timeout_seconds:g}s (the operator's limit)"
        ) from None
    if done.returncode == 0 and done.stdout:
        return done.stdout
    lines = done.stderr.decode(errors="replace").strip().splitlines()
    # memory first: wasmtime may report the child's address-space limit as an invalid module
    # ("out of memory (failed to allocate N bytes)"), depending on where the allocation failed
    if any("MemoryError" in line or "memory allocation" in line or "out of memory" in line.lower() for line in lines):
        raise ModuleRefused(f"compiling the module needed more than {limits.memory_mb} MiB (the operator's limit)")
    if done.returncode == EXIT_INVALID and lines:
        raise ModuleError(lines[-1])
    detail = lines[-1] if lines else f"exit status {done.returncode}"
    raise ModuleRefused(
        f"compiling the module failed within the operator's limits ({limits.memory_mb} MiB, "
        f"{limits.timeout_seconds:g}s): {detail}"
    )


def main() -> int:
    import wasmtime

    import wasmtime.component

    from .component.format import is_component
    from .engine import make_engine

    # the child bounds itself (no preexec_fn: the worker that starts it has threads)
    memory = int(sys.argv[2]) * 1024 * 1024
    resource.setrlimit(resource.RLIMIT_AS, (memory, memory))
    resource.setrlimit(resource.RLIMIT_CORE, (0, 0))
    settings = EngineSettings(**json.loads(sys.argv[1]))
    wasm = sys.stdin.buffer.read()
    kind = wasmtime.component.Component if is_component(wasm) else wasmtime.Module
    try:
        module = kind(make_engine(settings), wasm)
    except wasmtime.WasmtimeError as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else "unknown error"
        print(f"invalid WebAssembly module: {first}", file=sys.stderr)
        return EXIT_INVALID
    sys.stdout.buffer.write(bytes(module.serialize()))
    sys.stdout.flush()
    return 0


if __name__ == "__main__":
    os._exit(main())
