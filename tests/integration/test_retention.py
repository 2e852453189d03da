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
