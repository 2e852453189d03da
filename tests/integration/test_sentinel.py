"""Redis behind Sentinel: one master, one replica and three sentinels on loopback ports; the
master is SIGKILLed mid-run and every job still completes exactly once with the right result.

Checkpoints wait for the replica (``WASMJOB_CHECKPOINT_REPLICAS=1``), so every acknowledged
checkpoint is on the machine that becomes the master.
"""

from __future__ import annotations

import time

import pytest

from chaos import record_figures, start_fleet, stop_fleet
from modules import SPIN, TICKER_WAT, ticker_params, ticker_result



def _until(check, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.1)


def _topology(old: int, new: int, sentinels) -> str:
    """What each Redis says it is and holds, and which master each sentinel names."""
    import redis

    lines = []
    for name, port in (("old master", old), ("new master", new)):
        client = redis.Redis(port=port, socket_timeout=2)
        try:
            info = client.info("replication")
            lines.append(f"{name} :{port}: role {info.get('role')} link {info.get('master_link_status', '-')} "
                         f"replicas {info.get('connected_slaves', 0)} keys {client.dbsize()}")
        except redis.exceptions.RedisError as exc:
            lines.append(f"{name} :{port}: {exc}")
        finally:
            client.close()
    lines += [f"sentinel :{s.port} names :{s.master_port_now()}" for s in sentinels]
    return "\n".join(lines)


@pytest.fixture(scope="module")
def sentinel_set(_fleet):
    import redis

    from harness.procs import LocalRedis, LocalSentinel

    base = _fleet.tmp / "sentinel"
    master = LocalRedis(base / "master").start()
    replica = LocalRedis(base / "replica", extra_args=["--replicaof", "127.0.0.1", str(master.port)]).start()
    sentinels = [LocalSentinel(base / f"s{i}", master.port).start() for i in range(3)]
    try:
        probe = redis.Redis(port=master.port)
        _until(lambda: probe.info("replication").get("connected_slaves") == 1, 30, "the replica to sync")
        probe.close()
        for s in sentinels:
            client = redis.Redis(port=s.port, decode_responses=True)
            _until(lambda: len(client.sentinel_slaves("mymaster")) == 1
                   and len(client.sentinel_sentinels("mymaster")) == 2, 30, "the sentinels to know each other")
            client.close()
        yield master, replica, sentinels
    finally:
        for proc in (*sentinels, replica, master):
            proc.stop()


@pytest.mark.timeout(180)
def test_jobs_complete_exactly_once_when_the_master_is_killed_and_sentinel_fails_over(_fleet, sentinel_set) -> None:
    from harness.procs import LocalRedis

    master, replica, sentinels = sentinel_set
    env = {
        "WASMJOB_REDIS_URL": ";".join(s.url for s in sentinels),
        "WASMJOB_SENTINEL_MASTER": "mymaster",
        "WASMJOB_CHECKPOINT_REPLICAS": "1",
    }
    fleet = start_fleet(_fleet, "sentinel", env, workers=2)
    try:
        fleet.register("sentinel-ticker", TICKER_WAT)
        targets = [150 + 30 * i for i in range(8)]
        jobs = [fleet.client.submit("sentinel-ticker", "tick", ticker_params(t, SPIN)) for t in targets]
        _until(lambda: sum(j.record().checkpoints >= 1 for j in jobs) >= 2, 60, "jobs to checkpoint")
        master.proc.kill()
        killed = time.monotonic()
        master.proc.wait()
        _until(lambda: sentinels[0].master_port_now() == replica.port, 60, "a failover")
        failover = time.monotonic() - killed
        # every sentinel names the new master before the old one comes back: one that still named
        # the old master could send clients to it, a replica that serves its data only once synced
        _until(lambda: all(s.master_port_now() == replica.port for s in sentinels), 60, "the sentinels to agree")
        # the old master comes back and becomes the new master's replica (checkpoints wait for one)
        old = LocalRedis(master.data_dir, port=master.port, extra_args=["--replicaof", "127.0.0.1", str(replica.port)])
        master.proc = old.start().proc
        try:
            records = [j.wait(120) for j in jobs]
        except Exception:  # what each job and worker went through, for a failover that stalls
            for job in jobs:
                print(job.id, job.record(), [(e["event"], e.get("dispatch")) for e in job.events()])
            print(_topology(master.port, replica.port, sentinels))
            print(fleet.logs())
            raise
        done = time.monotonic() - killed
        assert [r.status for r in records] == ["completed"] * len(jobs), [r.error or r.last_error for r in records]
        for job, target in zip(jobs, targets):
            assert job.result() == ticker_result(target, SPIN)
            assert [e["event"] for e in job.events()].count("completed") == 1
        record_figures(f"sentinel failover: new master {failover:.1f}s after SIGKILL, all {len(jobs)} jobs completed "
                       f"once {done:.1f}s after it; runs lost with the master: {sum(r.recoveries for r in records)}")
        assert not [n for n, w in fleet.workers.items() if not w.alive], "a worker died with the master"
    finally:
        stop_fleet(fleet)


def test_a_checkpoint_or_claim_that_must_reach_a_replica_is_refused_when_none_has_it(redis_server) -> None:
    from wasmjob.errors import StoreUnavailable
    from wasmjob.keys import Keys
    from wasmjob.store.redis import RedisStore, connect

    store = RedisStore(connect(redis_server.url), Keys("wait-for-replica"), replicas=1, replica_wait_ms=50)
    try:
        token = store.acquire("job", "w/1/a", ttl=5)
        with pytest.raises(StoreUnavailable, match="0 of 1 replica"):
            store.save_checkpoint("job", token, b"state")
        assert not store.replicated()  # what a claim checks before its run starts
        assert RedisStore(store.client, Keys("wait-for-replica")).replicated()  # none asked for
    finally:
        store.client.close()
