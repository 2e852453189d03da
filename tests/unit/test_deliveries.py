"""Reading kombu's unacked entries: which job and dispatch a taken ``wasmjob.run`` message belongs to."""

from __future__ import annotations

import base64
import json

import msgpack
import pytest

from wasmjob.fleet.deliveries import Delivery, from_request, parse

pytestmark = pytest.mark.unit


def entry(kwargs: dict, *, task: str = "wasmjob.run", task_id: str = "t-1", codec: str = "msgpack") -> bytes:
    """An unacked hash value as kombu's Redis transport writes it: JSON of [message, exchange, routing key]."""
    body = [[], kwargs, {"callbacks": None}]
    raw = msgpack.packb(body) if codec == "msgpack" else json.dumps(body).encode()
    message = {
        "body": base64.b64encode(raw).decode(),
        "content-type": "application/x-msgpack" if codec == "msgpack" else "application/json",
        "content-encoding": "binary" if codec == "msgpack" else "utf-8",
        "headers": {"task": task, "id": task_id, "lang": "py"},
        "properties": {"body_encoding": "base64", "delivery_tag": "tag-1"},
    }
    return json.dumps([message, "wasmjob", "wasmjob"]).encode()


def test_a_fleet_message_names_its_job_and_dispatch() -> None:
    got = parse("tag-1", entry({"job_id": "j-1", "dispatch": 4}), 12.5)
    assert got == Delivery("tag-1", "j-1", 4, 12.5)


def test_a_plain_celery_client_message_is_the_task_id_at_dispatch_zero() -> None:
    got = parse("tag-1", entry({"extension": "x", "job": "main"}, task_id="abc", codec="json"), 1.0)
    assert got == Delivery("tag-1", "abc", 0, 1.0)


@pytest.mark.parametrize(
    "payload",
    [None, b"not json", entry({"job_id": "j"}, task="other.task"), entry({"job_id": "j", "dispatch": "3"})],
    ids=["gone", "garbage", "another task", "bad dispatch"],
)
def test_what_is_not_a_readable_wasmjob_message_is_left_alone(payload) -> None:
    assert parse("tag-1", payload, 0.0) is None


def test_a_request_a_worker_reports_names_its_job_by_task_type_not_shadow_name() -> None:
    """``inspect reserved/active`` on RabbitMQ: ``name`` is the shadow name Flower shows, ``type`` the task."""
    request = {"id": "t-9", "name": "ticker/tick", "type": "wasmjob.run", "kwargs": {"job_id": "j-9", "dispatch": 3}}
    assert from_request("w1/t-9", request, 5.0) == Delivery("w1/t-9", "j-9", 3, 5.0)
    assert from_request("w1/t-9", {**request, "kwargs": {"extension": "x"}}, 5.0) == Delivery("w1/t-9", "t-9", 0, 5.0)
    assert from_request("w1/t-9", {**request, "type": "other.task"}, 5.0) is None
    assert from_request("w1/t-9", {**request, "kwargs": "{'job_id': 'j-9'}"}, 5.0) is None  # a repr: unreadable
