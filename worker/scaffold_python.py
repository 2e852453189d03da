"""The Python part of ``wasmjob new --lang python``: the ``count`` job, its tests and its build settings.

The project runs natively under plain ``pytest`` (the SDK's test double) and builds
into a component with ``wasmjob build`` (see ``builder_python.py``).
"""

from __future__ import annotations

import os
from pathlib import Path

from .builder_python import SDK_PYTHON_DIR

REPO_ROOT = SDK_PYTHON_DIR.parents[2]


def python_files(name: str, dest: Path) -> dict[str, str]:
    """The files of a Python extension project named ``name`` written to ``dest``."""
    return {
        "app.py": _APP_PY.replace("{name}", name),
        "pyproject.toml": _PYPROJECT.format(name=name, sdk=_sdk_path(dest)),
        "tests/test_app.py": _TEST_PY,
    }


def _sdk_path(dest: Path) -> str:
    """The SDK for pytest's ``pythonpath``: relative inside this checkout, else absolute."""
    target = Path(dest).resolve()
    try:
        target.relative_to(REPO_ROOT)
    except ValueError:
        return SDK_PYTHON_DIR.as_posix()
    return Path(os.path.relpath(SDK_PYTHON_DIR, target)).as_posix()


_PYPROJECT = """[project]
name = "{name}"
version = "0.1.0"
requires-python = ">=3.11"

# wasmjob build: the module that defines the jobs, and pure-Python requirements to bundle.
[tool.wasmjob]
module = "app"
dependencies = []

# plain pytest runs the jobs natively against the SDK's test double
[tool.pytest.ini_options]
pythonpath = [".", "{sdk}"]
testpaths = ["tests"]
"""

_APP_PY = '''"""{name}: a wasmjob extension in Python.

Job "count" sums 1..target. Its state is also its parameters
({"target": 1000}) and, once it completes, its result.
"""

from dataclasses import dataclass

from wasmjob_sdk import Context, JobError, job


@dataclass
class CountState:
    target: int = 0
    current: int = 0
    sum: int = 0


@job
def count(ctx: Context, state: CountState) -> CountState:
    if state.target <= 0:
        raise JobError('give a target: --params \\'{"target": 1000}\\'')
    while state.current < state.target:
        # Paused, cancelled or out of time? The SDK checkpoints `state` as it
        # is now and the next run continues from here.
        ctx.check()
        state.current += 1
        state.sum += state.current
        ctx.add_items(1)
        if state.current % 10_000 == 0:
            ctx.progress(state.current / state.target, f"{state.current}/{state.target}")
            ctx.checkpoint(state)
    ctx.log(f"sum of 1..={state.target} is {state.sum}")
    return state  # the SDK checkpoints the final state: it is the job's result
'''

_TEST_PY = '''"""The job runs natively here, against the SDK's test double of the host."""

import app  # noqa: F401  (registers the jobs)
from wasmjob_sdk.testing import FakeHost, run, run_until_done


def test_count_sums_one_to_target():
    out = run("count", {"target": 100})
    assert out.completed
    assert out.result == {"target": 100, "current": 100, "sum": 5050}


def test_count_checkpoints_when_interrupted_and_resumes_to_the_same_result():
    first = run("count", {"target": 100}, FakeHost(interrupt_at=40))
    assert first.interrupted and first.result["current"] == 39
    done, runs = run_until_done("count", {"target": 100}, interrupt_every=30)
    assert runs == 4 and done.result == {"target": 100, "current": 100, "sum": 5050}


def test_count_without_a_target_fails_with_a_reason():
    out = run("count", {})
    assert not out.completed and "give a target" in out.reason
'''
