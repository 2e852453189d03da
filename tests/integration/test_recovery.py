"""Failures of real processes: killed and stopped workers, a restarted Redis, kills at random."""

from __future__ import annotations

import random
import signal
import threading
import time

import pytest

from modules import NOCHECK_WAT, TICKER_WAT, ticker_params, ticker_result

SPIN = 2_000_000  # about 2 ms per step


@pytest.fixture(scope="module")
def ticker(_fleet):
    return _fleet.register("ticker", TICKER_WAT)


class Monitor:
    """Samples a job's progress and checkpoint counters atomically, every few milliseconds."""

    def __init__(self, fleet, job_id: str) -> None:
        self.redis, self.key = fleet.client.fleet.client, fleet.client.fleet.keys.job(job_id)
        self.samples: list[tuple[float, float, int]] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def __enter__(self) -> Monitor:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()

    def _run(self) -> None:
        while not self._stop.is_set():
            progress, ckpt, count = self.redis.hmget(self.key, "progress", "ckpt_progress", "checkpoints")
            self.samples.append((float(progress or 0), float(ckpt or 0), int(count or 0)))
            time.sleep(0.005)

    def assert_never_behind_last_checkpoint(self) -> None:
        last_ckpt, last_count = 0.0, 0
        for progress, ckpt, count in self.samples:
            assert count >= last_count, "the checkpoint count went back"
            assert ckpt >= last_ckpt, "a newer checkpoint was overwritten by an older one"
            assert progress >= last_ckpt - 1e-9, f"progress {progress} went back past the last checkpoint {last_ckpt}"
            last_ckpt, last_count = ckpt, count


def claims(job) -> list[dict]:
    return [e for e in job.events() if e["event"] == "claimed"]


@pytest.mark.timeout(60)
def test_killed_worker_job_resumes_from_checkpoint_on_another_worker(fleet, ticker) -> None:
    job = fleet.client.submit("ticker", "tick", ticker_params(2500, SPIN))
    with Monitor(fleet, job.id) as monitor:
        rec = fleet.wait_running(job, min_checkpoints=40)
        victim = fleet.worker_of(rec)
        victim.kill()
        killed_at = time.time()
        before = job.record().checkpoints
        rec = job.wait(40)
    assert rec.status == "completed", rec.error
    assert job.result() == ticker_result(2500, SPIN)
    resumed = claims(job)[-1]
    assert not resumed["worker"].startswith(victim.name) and resumed["from_checkpoint"] >= before
    recovery = resumed["ts"] - killed_at
    ttl = fleet.settings.lease_ttl
    print(f"\nrecovered {recovery:.2f}s after SIGKILL (lease TTL {ttl:g}s)")
    assert recovery < 2 * ttl + 1.0
    assert rec.recoveries == 1 and rec.attempts == 2
    monitor.assert_never_behind_last_checkpoint()
    assert [e["event"] for e in job.events()].count("completed") == 1


@pytest.mark.timeout(60)
def test_a_worker_stopped_past_its_lease_cannot_write_and_the_job_completes_once(fleet, ticker) -> None:
    job = fleet.client.submit("ticker", "tick", ticker_params(2000, SPIN))
    with Monitor(fleet, job.id) as monitor:
        rec = fleet.wait_running(job, min_checkpoints=20)
        frozen = fleet.worker_of(rec)
        frozen.signal(signal.SIGSTOP)
        deadline = time.monotonic() + 4 * fleet.settings.lease_ttl
        while time.monotonic() < deadline and not claims(job)[-1]["worker"].startswith(("w1", "w2")[frozen.name == "w1"]):
            time.sleep(0.05)
        taken_over = claims(job)[-1]
        assert not taken_over["worker"].startswith(frozen.name), "nobody took over the stopped worker's job"
        frozen.signal(signal.SIGCONT)  # the stale run wakes up and tries to go on
        rec = job.wait(40)
    assert rec.status == "completed", rec.error
    assert job.result() == ticker_result(2000, SPIN)
    assert [e["event"] for e in job.events()].count("completed") == 1
    time.sleep(1.0)  # give the stale run time to try every write it still would
    final = job.record()
    assert final.refused_writes >= 1, "the stale worker never tried to write: the test proved nothing"
    assert (final.status, final.result, final.checkpoints) == ("completed", rec.result, rec.checkpoints)
    monitor.assert_never_behind_last_checkpoint()
    assert "lost its lease" in frozen.log_since_start() or "lease lost" in frozen.log_since_start()


@pytest.mark.timeout(90)
def test_jobs_complete_when_redis_restarts_mid_job(fleet, ticker) -> None:
    jobs = [fleet.client.submit("ticker", "tick", ticker_params(1500, SPIN)) for _ in range(3)]
    fleet.wait_running(jobs[0], min_checkpoints=20)
    fleet.redis.restart(downtime=1.0)
    records = [j.wait(60) for j in jobs]
    assert [r.status for r in records] == ["completed"] * 3, [r.error or r.last_error for r in records]
    assert all(j.result() == ticker_result(1500, SPIN) for j in jobs)
    assert all([e["event"] for e in j.events()].count("completed") == 1 for j in jobs)


@pytest.mark.timeout(120)
def test_many_jobs_across_two_workers_with_random_kills_each_complete_exactly_once(fleet, ticker) -> None:
    rng = random.Random(7)
    targets = [rng.randrange(200, 900) for _ in range(16)]
    jobs = [fleet.client.submit("ticker", "tick", ticker_params(t, SPIN)) for t in targets]
    kills = 0
    deadline = time.monotonic() + 90
    while time.monotonic() < deadline and kills < 4:
        time.sleep(rng.uniform(0.8, 1.6))
        victim = fleet.workers[rng.choice(sorted(fleet.workers))]
        victim.kill()
        kills += 1
        fleet.ensure_workers()
    records = [j.wait(max(1.0, deadline - time.monotonic())) for j in jobs]
    assert [r.status for r in records] == ["completed"] * len(jobs), [r.error for r in records]
    for job, target in zip(jobs, targets):
        assert job.result() == ticker_result(target, SPIN)
        assert [e["event"] for e in job.events()].count("completed") == 1
    assert sum(r.recoveries for r in records) >= 1, "no job was hit by a kill: the test proved nothing"


@pytest.mark.timeout(60)
def test_a_job_that_never_checks_for_interrupts_is_stopped_by_its_deadline_and_resumes(fleet) -> None:
    fleet.register("nocheck", NOCHECK_WAT)
    job = fleet.client.submit("nocheck", "tick", ticker_params(800, SPIN), limits={"timeout_seconds": 0.4})
    rec = job.wait(40)
    assert rec.status == "completed", rec.error
    assert job.result() == ticker_result(800, SPIN)
    retries = [e for e in job.events() if e["event"] == "retrying"]
    assert len(retries) >= 2 and all("timed out" in e["why"] for e in retries)


@pytest.mark.timeout(60)
def test_a_worker_shutting_down_hands_its_job_over_without_waiting_for_the_lease(fleet, ticker) -> None:
    job = fleet.client.submit("ticker", "tick", ticker_params(2000, SPIN))
    rec = fleet.wait_running(job, min_checkpoints=10)
    leaving = fleet.worker_of(rec)
    started = time.time()
    leaving.stop()
    assert time.time() - started < 5, "a warm shutdown must not wait for the job to finish"
    deadline = time.monotonic() + 10
    while not claims(job)[-1]["worker"].startswith(tuple(n for n in fleet.workers if n != leaving.name)):
        assert time.monotonic() < deadline, job.events()
        time.sleep(0.05)
    handed_over = claims(job)[-1]["ts"] - started
    assert handed_over < fleet.settings.lease_ttl, f"took {handed_over:.2f}s: it waited for the lease to expire"
    assert job.wait(40).status == "completed" and job.result() == ticker_result(2000, SPIN)
    assert "continued" in [e["event"] for e in job.events()]
