"""Hostile modules through the fleet: each bomb fails (or is capped) with its reason, within a
bound, and the workers take the next job; shared storage holds per-tenant quotas and headroom."""

from __future__ import annotations

import time
import uuid
from typing import Any

import pytest

from tests.conftest import KV_QUOTA
from modules import SPIN as STEP_SPIN, TICKER_WAT, ticker_params, wasm
from wasmjob.manifest import Manifest

SPIN = STEP_SPIN // 10  # about 0.2 ms per step
BOUND = 30.0  # seconds from submit until a bomb is stopped, on a loaded CI machine

_IMPORTS = """
  (import "spacedrive" "spacedrive_log" (func $log (param i32 i32 i32)))
  (import "spacedrive" "register_job" (func $register_job (param i32 i32 i32 i32 i32) (result i32)))
  (import "spacedrive" "job_checkpoint" (func $checkpoint (param i32 i32 i32) (result i32)))
  (import "spacedrive" "spacedrive_call" (func $call (param i32 i32 i32 i32 i32) (result i32)))
"""


def _module(body: str, *, pages: int = 2, extra: str = "", data: str = "") -> str:
    return f"""
(module
{_IMPORTS}
  (memory (export "memory") {pages})
  (global $heap (mut i32) (i32.const 65536))
  (data (i32.const 16) "tick")
  (data (i32.const 32) "execute_tick")
  (data (i32.const 100) "action:kv.set.v1")
  {data}
  (func (export "wasm_alloc") (param $n i32) (result i32)
    (local $p i32)
    (local.set $p (global.get $heap))
    (global.set $heap (i32.and (i32.add (i32.add (global.get $heap) (local.get $n)) (i32.const 7)) (i32.const -8)))
    (local.get $p))
  (func (export "plugin_init") (result i32)
    (drop (call $register_job (i32.const 16) (i32.const 4) (i32.const 32) (i32.const 12) (i32.const 1)))
    (i32.const 0))
  {extra}
  (func (export "execute_tick") (param $ctx i32) (param $ctx_len i32) (param $st i32) (param $st_len i32) (result i32)
    (local $i i32) (local $n i32) (local $p i32)
    {body})
)
"""


VALUE = 60_000
_PAYLOAD = '{"key":"k00000000","value":"' + "x" * VALUE + '"}'
# writes k<i> = 60 KB until a call is refused, then traps: the refusal's reason is in its logs
KV_FLOOD = _module(
    f"""
    (loop $l
      (local.set $n (local.get $i)) (local.set $p (i32.const 1040))
      (loop $d
        (i32.store8 (local.get $p) (i32.add (i32.const 48) (i32.rem_u (local.get $n) (i32.const 10))))
        (local.set $n (i32.div_u (local.get $n) (i32.const 10)))
        (local.set $p (i32.sub (local.get $p) (i32.const 1)))
        (br_if $d (i32.ge_u (local.get $p) (i32.const 1033))))
      (if (i32.eqz (call $call (i32.const 100) (i32.const 16) (i32.const 200) (i32.const 1024) (i32.const {len(_PAYLOAD)})))
        (then unreachable))
      (local.set $i (i32.add (local.get $i) (i32.const 1)))
      (br $l))
    (i32.const 0)""",
    pages=16,
    data=f'(data (i32.const 1024) "{_PAYLOAD.replace(chr(34), chr(92) + "22")}")',
)
# overwrites one small key, slowly, until a write is refused: nothing grows while Redis is nearly full
KV_REPEAT = _module(
    """
    (loop $l
      (local.set $n (i32.const 3000000))
      (loop $spin (local.set $n (i32.sub (local.get $n) (i32.const 1))) (br_if $spin (local.get $n)))
      (if (i32.eqz (call $call (i32.const 100) (i32.const 16) (i32.const 200) (i32.const 1024) (i32.const 23)))
        (then unreachable))
      (br $l))
    (i32.const 0)""",
    data='(data (i32.const 1024) "{\\22key\\22:\\22k\\22,\\22value\\22:\\22v\\22}")',
)
# 200,000 log lines of 1 KB (200 MB asked for), then success: the log cap keeps what is stored small
LOG_FLOOD = _module(
    """
    (loop $l
      (call $log (i32.const 1) (i32.const 4096) (i32.const 1024))
      (local.set $i (i32.add (local.get $i) (i32.const 1)))
      (br_if $l (i32.lt_u (local.get $i) (i32.const 200000))))
    (i32.const 0)"""
)
BOMBS: dict[str, tuple[str, dict[str, Any], str]] = {
    # name: (module, submit limits, what the failure says)
    "loop": (_module("(loop $l (br $l)) (i32.const 0)"), {"timeout_seconds": 0.5}, "no progress across 3 attempts"),
    "memory": (
        _module("(block $d (loop $l (br_if $d (i32.eq (memory.grow (i32.const 16)) (i32.const -1))) (br $l))) unreachable"),
        {}, "memory limit of 16 MiB",
    ),
    "table": (
        _module(
            "(block $d (loop $l (br_if $d (i32.eq (table.grow $t (ref.null func) (i32.const 50000)) (i32.const -1)))"
            " (br $l))) unreachable",
            extra="(table $t 0 funcref)",
        ),
        {}, "trap: unreachable",
    ),
    "recursion": (_module("(call $deep (i32.const 0))", extra="(func $deep (param i32) (result i32) (call $deep (local.get 0)))"),
                  {}, "stack overflow"),
    "checkpoint": (_module("(drop (call $checkpoint (i32.const 0) (i32.const 0) (i32.const 2097152))) unreachable", pages=64),
                   {}, "trap: unreachable"),
    "kvflood": (KV_FLOOD, {}, f"key-value quota of {KV_QUOTA} bytes reached"),
}


def _manifest(ext_id: str, **extra: Any) -> Manifest:
    data: dict[str, Any] = {
        "id": ext_id, "name": ext_id, "version": "1.0.0", "wasm_file": f"{ext_id}.wasm",
        "permissions": {"methods": ["action:kv."], "max_memory_mb": 16, "rate_limits": {"requests_per_minute": 6000}},
    }
    data.update(extra)
    return Manifest.from_dict(data)


@pytest.fixture(scope="module")
def corpus(_fleet: Any) -> dict[str, Any]:
    refs = {}
    for name, (wat, _, _) in BOMBS.items():
        refs[name] = _fleet.client.add_module(wasm(wat), _manifest(f"hostile-{name}"))
    refs["repeat"] = _fleet.client.add_module(wasm(KV_REPEAT), _manifest("hostile-repeat"))
    _fleet.register("ticker", TICKER_WAT)
    return refs


def _logs(fleet: Any, job_id: str) -> str:
    return "\n".join(str(line.get("message", line)) for line in fleet.client.job(job_id).logs(1000))


@pytest.mark.timeout(120)
def test_every_bomb_is_stopped_with_its_reason_and_the_workers_take_the_next_job(fleet: Any, corpus: Any) -> None:
    pids = {n: w.proc.pid for n, w in fleet.workers.items()}
    tenant = str(uuid.uuid4())
    submitted = {
        name: fleet.client.submit(f"hostile-{name}", "tick", tenant=tenant, limits=limits)
        for name, (_, limits, _) in BOMBS.items()
    }
    took: dict[str, float] = {}
    for name, job in submitted.items():
        rec = job.wait(90)
        took[name] = rec.finished_at - rec.created_at  # submit to stopped, as the record saw it
        assert took[name] < BOUND * 2, (name, took[name])
        reason = BOMBS[name][2]
        text = f"{rec.error}\n{_logs(fleet, job.id)}"
        assert rec.status == "failed" and reason in text, (name, rec.error)
    started = time.monotonic()
    assert fleet.client.submit("ticker", "tick", ticker_params(20, SPIN)).wait(BOUND).status == "completed"
    took["next job"] = time.monotonic() - started
    assert {n: w.proc.pid for n, w in fleet.workers.items()} == pids and all(w.alive for w in fleet.workers.values())
    usage = fleet.client.fleet.client.hgetall(fleet.client.fleet.keys.kv_usage(f"{tenant}:hostile-kvflood"))
    assert int(usage[b"bytes"]) <= KV_QUOTA and int(usage[b"keys"]) > 10
    print("time to stop each bomb (s):", {k: round(v, 2) for k, v in took.items()})


@pytest.mark.timeout(60)
def test_a_log_flood_is_capped_at_the_policy_even_when_the_manifest_asks_for_a_terabyte(fleet: Any) -> None:
    client_fleet = fleet.client.fleet
    with fleet.lax_publisher(max_log_bytes=2**40):  # registered by a publisher with a lax policy; the workers' caps it
        fleet.client.add_module(
            wasm(LOG_FLOOD), _manifest("hostile-logs", wasmjob={"limits": {"max_log_bytes": 10**12}})
        )
    started = time.monotonic()
    job = fleet.client.submit("hostile-logs", "tick")
    rec = job.wait(60)
    took = time.monotonic() - started
    assert rec.status == "completed", rec.error
    assert rec.effective_limits["max_log_bytes"] == 1024 * 1024
    stored = sum(len(str(line.get("message", ""))) for line in job.logs(10_000))
    assert stored <= 1024 * 1024
    assert any("log limit of 1048576 bytes reached" in w for w in client_fleet.records.warnings(job.id))
    print(f"log flood of 200 MB capped at 1 MiB; run took {took:.1f}s")


@pytest.mark.timeout(60)
def test_a_nearly_full_redis_refuses_guest_writes_but_not_another_tenants_submit(fleet: Any, corpus: Any) -> None:
    client = fleet.client.fleet.client
    before = client.config_get("maxmemory")["maxmemory"]
    ballast = f"ballast-{uuid.uuid4()}"
    client.set(ballast, b"\0" * (32 * 1024 * 1024))  # so 7% of maxmemory is megabytes of room
    tenant = str(uuid.uuid4())

    def nearly_full() -> None:  # ~93% used: above the workers' 90% mark, with room left for submits
        client.config_set("maxmemory", int(int(client.info("memory")["used_memory"]) / 0.93))

    try:
        nearly_full()
        job = fleet.client.submit("hostile-repeat", "tick", tenant=tenant)
        other = fleet.client.submit("ticker", "tick", ticker_params(5), tenant=str(uuid.uuid4()))
        assert other.record().status in ("queued", "running", "completed", "failed")
        deadline = time.monotonic() + BOUND
        while not (rec := job.record()).done and time.monotonic() < deadline:
            nearly_full()  # whatever the rest of the fleet does meanwhile
            time.sleep(0.2)
        assert rec.status == "failed" and "of its maxmemory" in _logs(fleet, job.id), rec
    finally:
        client.config_set("maxmemory", before)
        client.delete(ballast)
    usage = client.hgetall(fleet.client.fleet.keys.kv_usage(f"{tenant}:hostile-repeat"))
    assert int(usage.get(b"keys", 0)) <= 1  # one key, overwritten: nothing grew while Redis was nearly full
