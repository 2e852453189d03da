"""A fleet whose workers' policy differs from the producer's environment: producers check releases
against the policy the workers published, and a compile that outlasts several lease TTLs runs once."""

from __future__ import annotations

import time
from collections.abc import Iterator
from dataclasses import replace
from typing import Any

import pytest
import wasmtime

from modules import TICKER_WAT, manifest, ticker_params, ticker_result, unique, wasm
from tests.conftest import FleetUnderTest
from wasmjob.errors import ManifestError

pytestmark = [pytest.mark.integration, pytest.mark.timeout(90)]

PREFIX, QUEUE = "wasmjob-policy", "wasmjob-policy"
LEASE_TTL = 0.6  # the slow module compiles for several of these
WORKER_MAX_MEMORY_MB = 64  # the producer's environment allows 1024 (the default)
COMPILE_TTLS = 8  # the slow module is sized to compile for about this many lease TTLs here
MAX_SLOW_FUNCTIONS = 150_000  # on a slow machine, at most this (the workers' ceiling is above it)


@pytest.fixture(scope="module")
def policy_fleet(redis_server: Any, fleet_env: dict[str, str], tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    from harness.procs import LocalWorker
    from wasmjob.broker_config import Settings
    from wasmjob.client import Client

    tmp = tmp_path_factory.mktemp("policy-fleet")
    env = {
        **fleet_env, "WASMJOB_PREFIX": PREFIX, "WASMJOB_QUEUE": QUEUE, "WASMJOB_LEASE_TTL": str(LEASE_TTL),
        "WASMJOB_MAX_MEMORY_MB": str(WORKER_MAX_MEMORY_MB),
        "WASMJOB_MAX_FUNCTIONS": str(MAX_SLOW_FUNCTIONS + 1000),
        "WASMJOB_CACHE_DIR": str(tmp / "module-cache"),
    }
    producer_env = {k: v for k, v in env.items() if not k.startswith("WASMJOB_MAX_")}
    client = Client(settings=Settings.from_env(producer_env))
    assert client.fleet.policy.max_memory_mb > WORKER_MAX_MEMORY_MB  # the producer's own policy is laxer
    fut = FleetUnderTest(redis_server, env, client.settings, client, tmp)
    for name in ("p1", "p2"):
        fut.workers[name] = LocalWorker(name, env, tmp / f"{name}.log", queues=QUEUE).start()
    try:
        for w in fut.workers.values():
            w.wait_ready()
        deadline = time.monotonic() + 30
        while client.fleet.published_policy() is None and time.monotonic() < deadline:
            time.sleep(0.05)
        yield fut
    finally:
        for w in fut.workers.values():
            w.stop(timeout=5)
        client.close()


def test_a_producer_checks_a_manifest_against_the_policy_the_workers_published(policy_fleet: Any) -> None:
    client = policy_fleet.client
    published = client.fleet.published_policy()
    assert published is not None and published.policy.max_memory_mb == WORKER_MAX_MEMORY_MB
    assert published.worker.split("@")[0] in policy_fleet.workers
    greedy = replace(manifest("greedymem"), permissions=replace(manifest("greedymem").permissions, max_memory_mb=128))
    client.fleet.policy.check_manifest(greedy)  # within the producer's own environment's policy
    with pytest.raises(ManifestError, match="allows at most 64.*published") as info:
        client.add_module(wasm(TICKER_WAT), greedy)
    assert "greedymem" not in {r.id for r in client.extensions()}, info.value
    saved = client.fleet.client.get(client.fleet.keys.policy)
    client.fleet.client.delete(client.fleet.keys.policy)
    try:  # no worker published yet: the producer's environment decides, and says so
        policy, note = client.publishing_policy()
        assert policy == client.fleet.policy and "no worker has published" in note
    finally:
        client.fleet.client.set(client.fleet.keys.policy, saved)


def _ticker_with(functions: int, tag: str) -> bytes:
    return wasm(unique(TICKER_WAT, tag).rstrip().removesuffix(")") + "(func)" * functions + ")")


def _functions_compiling_for(seconds: float) -> int:
    """How many empty functions the ticker needs to compile for about ``seconds`` on this machine.

    The best of three probe compiles: one probe taken while the machine was busy (another suite
    beside this one) made the module five times too small once the load had passed.
    """
    from wasmjob.engine import EngineSettings, make_engine

    probe = 5_000
    engine = make_engine(EngineSettings())
    took = float("inf")
    for attempt in range(3):
        module = _ticker_with(probe, f"probe{attempt}")
        started = time.monotonic()
        wasmtime.Module(engine, module)
        took = min(took, max(time.monotonic() - started, 1e-3))
    return min(MAX_SLOW_FUNCTIONS, max(probe, int(probe * seconds / took)))


def test_a_module_compiling_for_several_lease_ttls_runs_once_on_one_worker(policy_fleet: Any) -> None:
    client = policy_fleet.client
    functions = _functions_compiling_for(COMPILE_TTLS * LEASE_TTL)
    slow = _ticker_with(functions, "slowcompile")
    client.add_module(slow, manifest("slowcompile"))
    started = time.monotonic()
    rec = client.submit("slowcompile", "tick", ticker_params(20)).wait(60)
    took = time.monotonic() - started
    assert rec.status == "completed" and rec.result == ticker_result(20), (rec.status, rec.error)
    events = client.fleet.records.events(rec.id)
    claims = [e for e in events if e["event"] == "claimed"]
    assert len(claims) == 1 and rec.attempts == 1 and rec.recoveries == 0, (events, policy_fleet.logs())
    deadline = time.monotonic() + 20  # the worker adds its counters right after the run
    while b"compiles" not in (metrics := client.fleet.client.hgetall(client.fleet.keys.metrics)):
        assert time.monotonic() < deadline, metrics
        time.sleep(0.05)
    compile_seconds = float(metrics[b"compile_seconds"])
    assert int(metrics[b"compiles"]) == 1, metrics  # compiled once, by the one worker that ran it
    print(f"{len(slow)} bytes compiled once in {compile_seconds:.1f}s = {compile_seconds / LEASE_TTL:.1f} lease TTLs; job took {took:.1f}s")
    assert compile_seconds > 2 * LEASE_TTL, f"{functions} functions compiled too fast to test a slow compile"
