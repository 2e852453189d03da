"""Failures of real processes: killed and stopped workers, a restarted Redis, kills at random."""

from __future__ import annotations

import random
import signal
import threading
import time

import pytest

from modules import SPIN, NOCHECK_WAT, TICKER_WAT, ticker_params, ticker_result



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
    # about one TTL plus a sweep; the bound is generous for a loaded machine and still far below
    # any other way back (Celery's redelivery after its visibility timeout)
    assert recovery < 5 * ttl, f"recovery took {recovery:.2f}s"
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
    deadline = time.monotonic() + 30  # the stale run ends when its finish is refused
    while "lost its lease" not in frozen.log_since_start():
        assert time.monotonic() < deadline, "the stale run never ended"
        time.sleep(0.05)
    final = job.record()
    assert final.refused_writes >= 1, "the stale worker never tried to write: the test proved nothing"
    assert (final.status, final.result, final.checkpoints) == ("completed", rec.result, rec.checkpoints)
    monitor.assert_never_behind_last_checkpoint()


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
    # 1200 steps are well over a second of work even on a fast CPU, three times the deadline; how many
    # attempts it takes depends on the CPU, so the test asserts what every attempt must do instead
    job = fleet.client.submit("nocheck", "tick", ticker_params(1200, SPIN), limits={"timeout_seconds": 0.4})
    rec = job.wait(50)
    assert rec.status == "completed", rec.error
    assert job.result() == ticker_result(1200, SPIN)
    retries = [e for e in job.events() if e["event"] == "retrying"]
    assert retries and all("timed out" in e["why"] for e in retries)
    assert rec.attempts == len(retries) + 1
    resumed_from = [e["from_checkpoint"] for e in claims(job)]
    assert resumed_from[0] == 0 and all(a < b for a, b in zip(resumed_from, resumed_from[1:])), (
        f"each attempt must resume past the last one's checkpoints: {resumed_from}"
    )


@pytest.mark.timeout(60)
def test_a_worker_shutting_down_hands_its_job_over_without_waiting_for_the_lease(fleet, ticker) -> None:
    job = fleet.client.submit("ticker", "tick", ticker_params(2000, SPIN))
    rec = fleet.wait_running(job, min_checkpoints=10)
    leaving = fleet.worker_of(rec)
    leaving.stop()
    assert job.wait(40).status == "completed" and job.result() == ticker_result(2000, SPIN)
    events = job.events()
    ends = [e for e in events if e["event"] in ("continued", "completed", "lost")]
    # the leaving worker checkpointed and handed the job on mid-run (not after finishing it), and
    # nobody had to wait for its lease to expire (that would be a 'lost' event from the sweep)
    assert ends[0]["event"] == "continued" and ends[0]["worker"].startswith(leaving.name), ends
    assert "lost" not in [e["event"] for e in events], "the job waited for the leaving worker's lease to expire"
    assert claims(job)[-1]["worker"].startswith(tuple(n for n in fleet.workers if n != leaving.name))
