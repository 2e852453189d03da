"""The fleet's edges: limits only go down, bad messages fail once, poison cannot stall the sweep."""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Iterator
from typing import Any

import pytest
from celery import Celery

from tests.conftest import MAX_FUNCTIONS
from modules import SPIN as STEP_SPIN, SPIN_WAT, TICKER_WAT, ticker_params, ticker_result, unique, wasm
from wasmjob.errors import ConfigError, ManifestError
from wasmjob.manifest import Manifest

SPIN = STEP_SPIN // 10  # about 0.2 ms per step


def _manifest(ext_id: str, **extra: Any) -> Manifest:
    data: dict[str, Any] = {"id": ext_id, "name": ext_id, "version": "1.0.0", "wasm_file": f"{ext_id}.wasm"}
    for key, value in extra.items():
        section, _, name = key.partition("__")
        data.setdefault(section, {})[name] = value
    return Manifest.from_dict(data)


@pytest.fixture(scope="module")
def plain(_fleet: Any) -> Iterator[Celery]:
    """A Celery client that knows nothing of wasmjob: what any producer holding Redis credentials has."""
    app = Celery("plain-client", broker=_fleet.redis.url, backend=_fleet.redis.url)
    yield app
    app.close()


@pytest.fixture(scope="module")
def ticker(_fleet: Any) -> Any:
    return _fleet.register("ticker", TICKER_WAT)


def _send(plain: Celery, serializer: str = "json", args: tuple[Any, ...] = (), **kwargs: Any) -> str:
    job_id = str(uuid.uuid4())
    plain.send_task("wasmjob.run", args=args, kwargs={"job_id": job_id, **kwargs}, queue="wasmjob", serializer=serializer)
    return job_id


def _wait_done(fleet: Any, job_id: str, timeout: float = 30.0) -> Any:
    from wasmjob.errors import NotFound

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            rec = fleet.client.job(job_id).record()
        except NotFound:
            rec = None
        if rec is not None and rec.done:
            return rec
        time.sleep(0.05)
    raise AssertionError(f"job {job_id} is not done after {timeout}s: {rec}\n{fleet.logs()}")


@pytest.mark.timeout(60)
def test_a_submitter_cannot_lift_the_limits_of_the_manifest(fleet: Any) -> None:
    manifest = _manifest(
        "capped", wasmjob__limits={"fuel": 1_000_000, "timeout_seconds": 2, "max_checkpoint_bytes": 1024},
        permissions__max_memory_mb=16,
    )
    fleet.client.add_module(wasm(SPIN_WAT), manifest)
    started = time.monotonic()
    job = fleet.client.submit(
        "capped", "tick", limits={"fuel": 10**15, "timeout_seconds": 10**5, "max_checkpoint_bytes": 10**9}
    )
    rec = job.wait(30)
    assert rec.status == "failed" and "fuel" in rec.error, rec.error
    assert time.monotonic() - started < 30
    assert rec.effective_limits["fuel"] == 1_000_000
    assert rec.effective_limits["timeout_seconds"] == 2
    assert rec.effective_limits["max_checkpoint_bytes"] == 1024
    assert "fuel 1e+15 asked, clamped to 1e+06" in rec.limit_notes
    assert rec.attempts == 1


@pytest.mark.parametrize("bad", [0.5, float("nan"), float("inf"), -1, 0, True, 10**30, "100"])
def test_the_client_refuses_limits_that_are_not_sane_integers(fleet: Any, ticker: Any, bad: Any) -> None:
    with pytest.raises(ConfigError, match="limit fuel must be"):
        fleet.client.submit("ticker", "tick", ticker_params(5), limits={"fuel": bad})


@pytest.mark.timeout(60)
def test_bad_plain_messages_fail_their_job_once_with_one_reason(fleet: Any, plain: Celery, ticker: Any) -> None:
    base = {"extension": "ticker", "job": "tick"}
    cases = {
        _send(plain, limits={"fuel": 0.5}, **base): "limit fuel must be an integer, got 0.5",
        _send(plain, limits={"fuel": float("nan")}, **base): "limit fuel must be an integer",
        _send(plain, limits={"timeout_seconds": float("inf")}, **base): "must be a finite number of seconds",
        _send(plain, limits={"fuel": 10**30}, **base): "limit fuel must be at most",
        _send(plain, limits={"max_memory_mb": -5}, **base): "must be at least 1",
        _send(plain, params={"n": 2**64}, **base): "integer outside 64 bits",
        _send(plain, "msgpack", params={"blob": b"\x00\x01"}, **base): "raw bytes",
        _send(plain, params="x" * (2 * 1024 * 1024), **base): "params are",
        _send(plain, "json", ("ticker", "tick"), **base): "keyword arguments only",
    }
    for job_id, reason in cases.items():
        rec = _wait_done(fleet, job_id)
        assert rec.status == "failed" and reason in rec.error, (reason, rec.error)
        assert rec.attempts == 0, "a refused message must never run or retry"
    ok = fleet.client.submit("ticker", "tick", ticker_params(20, SPIN))
    assert ok.wait(30).status == "completed"


@pytest.mark.timeout(90)
def test_a_poison_record_in_the_outbox_cannot_stall_the_jobs_behind_it(fleet: Any, plain: Celery) -> None:
    ref = fleet.register("patient", unique(TICKER_WAT, "patient"))
    records = fleet.client.fleet.records
    fields = dict(extension="patient", digest=ref.digest, ext_id="patient", ext_version=ref.version, job="tick",
                  tenant=None, queue=None, priority=None, dispatch=1, enqueue=True)
    unencodable = str(uuid.uuid4())
    records.create(unencodable, params=None, limits={"fuel": 10**30}, **fields)
    undecodable = str(uuid.uuid4())
    records.create(undecodable, params=None, limits={}, **fields)
    records.client.hset(records.keys.job(undecodable), "limits", "{not json")
    message = _send(plain, limits={"fuel": 10**30}, extension="patient", job="tick")  # the message
    time.sleep(0.01)  # the ten jobs are due after the poison
    delayed = []
    for _ in range(10):
        job_id = str(uuid.uuid4())
        records.create(job_id, params=ticker_params(5), limits={}, **fields)
        delayed.append(job_id)
    started = time.monotonic()
    for job_id in delayed:
        rec = _wait_done(fleet, job_id, timeout=60)
        assert rec.status == "completed" and rec.result == ticker_result(5), rec.error
    took = time.monotonic() - started
    for job_id, reason in ((unencodable, "limit fuel must be at most"), (message, "limit fuel must be at most")):
        rec = _wait_done(fleet, job_id)
        assert rec.status == "failed" and reason in rec.error, rec.error
    status, error = records.client.hmget(records.keys.job(undecodable), "status", "error")
    assert status == b"failed" and b"record cannot be read" in error
    due = {m.decode() for m in records.client.zrange(records.keys.outbox, 0, -1)}
    assert not due & {unencodable, undecodable, message}
    print(f"10 delayed jobs behind poison completed in {took:.1f}s")


def test_a_manifest_that_asks_for_more_than_policy_is_refused_at_add(fleet: Any) -> None:
    too_much = {
        "permissions__methods": [""],
        "permissions__max_memory_mb": 4096,
        "permissions__rate_limits": {"requests_per_minute": 0},
        "wasmjob__limits": {"max_log_bytes": 10**12},
    }
    for key, value in too_much.items():
        if key == "permissions__methods":
            with pytest.raises(ManifestError, match="empty prefix"):
                _manifest("greedy", **{key: value})
            continue
        with pytest.raises(ManifestError, match="breaks operator policy") as info:
            fleet.client.add_module(wasm(TICKER_WAT), _manifest("greedy", **{key: value}))
        assert "the operator allows at most" in str(info.value)
    assert json.dumps([r.id for r in fleet.client.extensions()]).count('"greedy"') == 0


@pytest.mark.timeout(60)
def test_a_compile_bomb_fails_its_jobs_once_and_every_worker_remembers_it(fleet: Any, ticker: Any) -> None:
    bomb = wasm(unique(TICKER_WAT, "bomb").rstrip().removesuffix(")") + "(func)" * (MAX_FUNCTIONS + 100) + ")")
    client_fleet = fleet.client.fleet
    with fleet.lax_publisher(max_functions=10**6):  # a publisher's lax policy: the workers still hold the line
        fleet.client.add_module(bomb, _manifest("compilebomb"))
    started = time.monotonic()
    first = fleet.client.submit("compilebomb", "tick", ticker_params(5)).wait(30)
    second = fleet.client.submit("compilebomb", "tick", ticker_params(5)).wait(30)
    took = time.monotonic() - started
    for rec in (first, second):
        rule = f"{MAX_FUNCTIONS + 107} functions; the operator allows at most {MAX_FUNCTIONS}"
        assert rec.status == "failed" and rule in rec.error, rec.error
        assert rec.attempts == 1
    refused = client_fleet.client.hkeys(client_fleet.keys.modules_refused)
    assert any(b"functions" in client_fleet.client.hget(client_fleet.keys.modules_refused, h) for h in refused)
    assert fleet.client.submit("ticker", "tick", ticker_params(20, SPIN)).wait(30).status == "completed"
    print(f"compile bomb refused twice in {took:.2f}s")
