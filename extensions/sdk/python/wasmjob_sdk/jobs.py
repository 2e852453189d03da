"""The ``@job`` decorator, the registry it fills, and one run of a job against a host.

:func:`run_job` is the whole contract of ``execute``: decode the state, call the
function, checkpoint the final state and return 0; on :class:`Interrupted` checkpoint
the current state and return 1; on an exception log the traceback and the reason and
return 2. The component entry point and the test double both call it.
"""

from __future__ import annotations

import inspect
import json
import traceback
import typing
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from .context import ERROR, WARN, CheckpointFailed, Context, Host, Interrupted, JobError
from .state import convert, decode_state

COMPLETED, INTERRUPTED, FAILED = 0, 1, 2
_JOBS: dict[str, JobDef] = {}


@dataclass(frozen=True)
class JobDef:
    """A registered job: its name, function and the type its state is converted to."""

    name: str
    fn: Callable[..., Any]
    state_type: Any


def job(fn: Callable[..., Any] | None = None, *, name: str | None = None) -> Any:
    """Register ``fn(ctx, state)`` as a job (named after the function unless ``name`` is given)."""

    def register(f: Callable[..., Any]) -> Callable[..., Any]:
        params = list(inspect.signature(f).parameters.values())
        if len(params) != 2:
            raise TypeError(f"job {f.__name__} must take (ctx, state)")
        hints = typing.get_type_hints(f)
        job_name = name or f.__name__
        _JOBS[job_name] = JobDef(job_name, f, hints.get(params[1].name, Any))
        return f

    return register(fn) if fn is not None else register


def registered() -> dict[str, JobDef]:
    """Every job registered so far, by name."""
    return dict(_JOBS)


def run_job(name: str, host: Host, ctx_json: str, state: bytes) -> int:
    """Run job ``name`` once against ``host``; returns 0 completed, 1 interrupted, 2 failed."""
    info = json.loads(ctx_json) if ctx_json else {}
    ctx = Context(host, info, info.get("state_encoding", "json"))
    spec = _JOBS.get(name)
    if spec is None:
        return _fail(ctx, f"no job named {name!r} (jobs: {', '.join(sorted(_JOBS)) or 'none'})")
    try:
        ctx.state = convert(decode_state(state, ctx.encoding), spec.state_type)
        if ctx.state is None and spec.state_type is not Any and isinstance(spec.state_type, type):
            ctx.state = spec.state_type()
    except (TypeError, ValueError, UnicodeDecodeError) as exc:
        return _fail(ctx, f"bad parameters or state for job {name}: {exc}")
    try:
        result = spec.fn(ctx, ctx.state)
    except Interrupted:
        try:
            ctx.save(ctx.state)
        except CheckpointFailed as exc:
            ctx.log(f"could not checkpoint on interrupt: {exc}", WARN)
        return INTERRUPTED
    except JobError as exc:
        return _fail(ctx, str(exc) or type(exc).__name__)
    except MemoryError:
        return _fail(ctx, "MemoryError: out of memory: the job reached its memory limit")
    except Exception as exc:  # any bug in the job: its traceback goes to the job's log
        reason = f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__
        return _fail(ctx, reason, traceback.format_exc())
    try:
        ctx.save(result if result is not None else ctx.state)
    except CheckpointFailed:
        pass  # the host knows why and fails the run with that reason
    except Exception as exc:
        return _fail(ctx, f"cannot encode the result: {type(exc).__name__}: {exc}")
    return COMPLETED


def _fail(ctx: Context, reason: str, trace: str | None = None) -> int:
    if trace:
        ctx.log(trace.rstrip(), WARN)
    ctx.log(reason, ERROR)
    return FAILED
