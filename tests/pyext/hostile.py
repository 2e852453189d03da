"""Test-only jobs that misbehave, built into the scaffold's component beside its ``count``."""

import os
import sys

import wjwords  # a listed dependency: bundled by wasmjob build
from wasmjob_sdk import Context, job


@job
def dependency(ctx: Context, state: dict) -> dict:
    return {"shout": wjwords.shout(state.get("text", "hi"))}


@job
def spin(ctx: Context, state: dict) -> dict:
    while True:  # never checks, never returns: only the wall-clock limit stops it
        pass


@job
def membomb(ctx: Context, state: dict) -> dict:
    hoard = []
    while True:
        hoard.append(bytearray(8 * 1024 * 1024))


@job
def recurse(ctx: Context, state: dict) -> dict:
    def down(n: int) -> int:
        return down(n + 1) + 1

    down(0)
    return state


@job
def deep(ctx: Context, state: dict) -> dict:
    sys.setrecursionlimit(10_000_000)  # past CPython's own guard: the wasm stack is the limit

    def down(n: int) -> int:
        return down(n + 1) + 1

    down(0)
    return state


@job
def bigcheckpoint(ctx: Context, state: dict) -> dict:
    ctx.checkpoint({"blob": "x" * (int(state.get("mb", 2)) * 1024 * 1024)})
    return state


@job
def crash(ctx: Context, state: dict) -> dict:
    print("about to fail")
    print("on stderr", file=sys.stderr)
    raise ValueError(f"boom at {state.get('where', 'start')}")


@job
def burn(ctx: Context, state: dict) -> dict:
    total = 0
    for i in range(10**9):
        total += i
    return {"total": total}


@job
def ambient(ctx: Context, state: dict) -> dict:
    """What the sandbox lets Python see: no environment, files, arguments or network."""
    seen: dict = {"env": dict(os.environ), "argv": list(sys.argv)}
    for name, probe in {
        "read_etc": lambda: open("/etc/hostname").read(),
        "list_root": lambda: os.listdir("/"),
        "write_tmp": lambda: open("/tmp/wasmjob-probe", "w").write("x"),
        "socket": _connect,
    }.items():
        try:
            seen[name] = f"allowed: {probe()!r}"[:100]
        except Exception as exc:  # the expected outcome for every probe
            seen[name] = f"denied: {type(exc).__name__}"
    return seen


def _connect() -> str:
    import socket

    with socket.create_connection(("127.0.0.1", 6379), timeout=1) as conn:
        return str(conn)


@job
def forbidden(ctx: Context, state: dict) -> dict:
    ctx.call("action:admin.wipe.v1", {})
    return state


@job
def kv(ctx: Context, state: dict) -> dict:
    ctx.kv_set("greeting", state.get("value", "hello"))
    return {"read": ctx.kv_get("greeting"), "missing": ctx.kv_get("nothing-here")}


@job
def calls(ctx: Context, state: dict) -> dict:
    """Host-call costs for the bench: ``n`` interrupt checks, then ``k`` small checkpoints."""
    for _ in range(int(state.get("n", 0))):
        ctx.check()
    for i in range(int(state.get("k", 0))):
        ctx.checkpoint({"i": i})
    return {"n": state.get("n", 0), "k": state.get("k", 0)}
