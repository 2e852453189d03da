"""The demo on a shared Redis removes what it made there, and only that."""

from __future__ import annotations

import redis as redis_py

from demo.__main__ import forget_keys


def test_the_demo_removes_its_keys_and_celerys_and_leaves_others(redis_server) -> None:
    client = redis_py.Redis.from_url(redis_server.url)
    prefix, queue, job = "wasmjob-demo-abc123", "wasmjob-demo-abc123", "11111111-2222-4333-8444-555555555555"
    made = [f"{prefix}:job:{job}", f"{prefix}:jobs", queue, f"{queue}\x06\x163", f"_kombu.binding.{queue}",
            f"_kombu.binding_permanent.{queue}", f"celery-task-meta-{job}", f"celery-task-meta-{job}.2"]
    kept = ["otherfleet:job:x", "otherfleet-queue", "celery-task-meta-someone-else", "_kombu.binding.otherfleet-queue"]
    for key in made + kept:
        client.set(key, "x")
    client.zadd("_kombu.binding_deadlines", {queue: 1.0, "otherfleet-queue": 2.0})
    try:
        assert forget_keys(client, prefix, queue, [job]) == len(made)
        assert [k for k in made if client.exists(k)] == []
        assert all(client.exists(k) for k in kept)
        deadlines = client.zrange("_kombu.binding_deadlines", 0, -1)
        assert queue.encode() not in deadlines and b"otherfleet-queue" in deadlines
    finally:
        client.delete(*kept)
        client.zrem("_kombu.binding_deadlines", "otherfleet-queue")
