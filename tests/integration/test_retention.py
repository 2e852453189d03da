"""Finished jobs expire together after their retention time, and job lists page over an index."""

from __future__ import annotations

import dataclasses
import uuid
from collections.abc import Iterator
from typing import Any

import pytest

from wasmjob.errors import ConfigError

pytestmark = pytest.mark.timeout(60)


@pytest.fixture
def own(redis_server: Any, fleet_settings: Any) -> Iterator[Any]:
    """Store and records under a key prefix of this test alone (the shared fleet's sweep never sees it)."""
    from wasmjob.fleet.context import Fleet

    fleet = Fleet(dataclasses.replace(fleet_settings, prefix=f"ret-{uuid.uuid4().hex[:8]}"))
    yield fleet
    fleet.close()


def make_job(records: Any, ext_id: str = "ext") -> str:
    job = str(uuid.uuid4())
    records.create(
        job, extension=ext_id, digest="sha256:" + "0" * 64, ext_id=ext_id, ext_version="1", job="main",
        params=None, tenant=None, queue=None, priority=None, limits={}, dispatch=1, enqueue=False,
    )
    return job


def test_pages_walk_every_job_newest_first_exactly_once(own: Any) -> None:
    records = own.records
    made = [make_job(records) for _ in range(45)]
    for job in made[::3]:
        records.control(job, "pause")
    seen, cursor, pages = [], None, 0
    while True:
        page = records.page(None, 7, cursor)
        seen += [r.id for r in page.records]
        pages += 1
        if page.cursor is None:
            break
        cursor = page.cursor
    assert sorted(seen) == sorted(made) and len(seen) == len(set(seen))
    created = [records.get(j).created_at for j in seen]
    assert created == sorted(created, reverse=True)
    assert pages in (7, 8)
    paused, cursor = [], None
    while True:
        page = records.page("paused", 2, cursor)
        assert len(page.records) <= 2
        paused += [r.id for r in page.records]
        if page.cursor is None:
            break
        cursor = page.cursor
    assert sorted(paused) == sorted(made[::3])


def test_a_bad_cursor_is_one_clear_error(own: Any) -> None:
    with pytest.raises(ConfigError, match="cursor"):
        own.records.page(None, 5, "yesterday")


TENANT = "00000000-0000-0000-0000-000000000000"


def short_lived(fleet: Any, retention: float = 1.0) -> Any:
    """The fleet's records with a retention of ``retention`` seconds (the floor is one second)."""
    from wasmjob.records import Records

    return Records(fleet.client, fleet.keys, fleet.scripts, retention=retention, result_inline_bytes=64)


def job_keys(fleet: Any, job: str) -> list[str]:
    k = fleet.keys
    return [k.job(job), k.state(job), k.logs(job), k.warnings(job), k.events(job), k.result(job), k.celery_result(job)]


def run_to_the_end(fleet: Any, records: Any, job: str, result: Any, kind: str = "completed") -> None:
    from wasmjob.store.base import LogLine, ProgressUpdate

    claim = records.claim(job, "ext", "w/1/a", 30, 1, 1.0)
    assert claim.outcome == "ok"
    update = ProgressUpdate(progress=0.5, logs=[LogLine(0.0, 1, "half way")], warnings=["careful"])
    fleet.store.save_checkpoint(job, claim.token, b'{"n": 1}', update)
    records.finish(job, ext_id="ext", tenant=TENANT, token=claim.token, kind=kind, result=result,
                   error="broke" if kind == "failed" else "", fuel=5, wall_seconds=0.5, cpu_seconds=0.25)


def wait_gone(fleet: Any, keys: list[str], timeout: float = 20.0) -> None:
    import time

    deadline = time.monotonic() + timeout
    while fleet.client.exists(*keys):
        assert time.monotonic() < deadline, f"still there: {[k for k in keys if fleet.client.exists(k)]}"
        time.sleep(0.1)


def test_a_finished_job_keeps_everything_until_its_retention_then_all_of_it_expires_together(own: Any) -> None:
    records = short_lived(own)
    job = make_job(records)
    run_to_the_end(own, records, job, {"big": "x" * 200})
    keys = job_keys(own, job)
    assert all(own.client.exists(key) for key in keys), "record, state, logs, warnings, events, result, Celery's"
    ttls = {own.client.pexpiretime(key) for key in keys}
    assert len(ttls) == 1 and ttls.pop() > 0, "every key expires at the same instant"
    rec = records.get(job)
    assert rec.result == {"big": "x" * 200} and rec.result_bytes > 64 and rec.expires_at is not None
    assert rec.cpu_seconds == 0.25 and rec.wall_seconds == 0.5
    assert records.page(None, 10).records[0].result is None  # a page leaves large results apart
    wait_gone(own, keys)
    assert own.client.zscore(own.keys.jobs, job) is not None  # until the sweep prunes the index
    assert records.prune_expired() == 1
    assert own.client.zscore(own.keys.jobs, job) is None and own.client.zscore(own.keys.expiring, job) is None
    assert records.page(None, 10).records == []
    usage = {(u.extension, u.tenant): u for u in records.usage()}[("ext", TENANT)]
    assert usage.completed == 1 and usage.cpu_seconds == 0.25, "usage outlives the jobs it counts"


def test_failed_cancelled_and_rejected_jobs_expire_too_and_live_ones_never(own: Any) -> None:
    records = short_lived(own)
    failed, cancelled, rejected, queued = (make_job(records) for _ in range(4))
    run_to_the_end(own, records, failed, None, kind="failed")
    records.control(cancelled, "cancel")
    assert records.reject(rejected, "a bad message") == "failed"
    for job in (failed, cancelled, rejected):
        assert own.client.pttl(own.keys.job(job)) > 0 and own.client.pttl(own.keys.events(job)) > 0
    assert own.client.pttl(own.keys.job(queued)) == -1 and own.client.pttl(own.keys.events(queued)) == -1
    wait_gone(own, job_keys(own, failed) + job_keys(own, cancelled) + job_keys(own, rejected))
    assert records.prune_expired() == 3
    assert [r.id for r in records.page(None, 10).records] == [queued]


def test_a_job_asks_for_its_own_retention_within_the_operators_maximum(own: Any) -> None:
    from wasmjob.records import Records

    records = Records(own.client, own.keys, own.scripts, retention=3600, max_retention=7200)
    keep_short, keep_long = str(uuid.uuid4()), str(uuid.uuid4())
    for job, seconds in ((keep_short, 60.0), (keep_long, 10**6)):
        records.create(
            job, extension="ext", digest="sha256:" + "0" * 64, ext_id="ext", ext_version="1", job="main",
            params=None, tenant=None, queue=None, priority=None, limits={"retention_seconds": seconds},
            dispatch=1, enqueue=False,
        )
        run_to_the_end(own, records, job, 1)
    assert 50_000 < own.client.pttl(own.keys.job(keep_short)) <= 60_000
    assert 7_000_000 < own.client.pttl(own.keys.job(keep_long)) <= 7_200_000
