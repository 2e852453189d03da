"""The Celery settings of a wasmjob fleet, as one explicit object built from :class:`Settings`.

Why each setting: late acks + reject on worker lost keep a message until its
run ends; prefetch 1 keeps long jobs from queueing behind each other on one
worker; the visibility timeout is set for the broker and the result backend
(every run ends well before it; wasmjob itself recovers lost jobs in seconds
through leases, not through redelivery); task events and sent events let
Flower see every job; task results are JSON, so a client in any language can
read them from the backend.

A plain ``Celery(broker=..., backend=...)`` with Celery's defaults must be able to
send jobs and use the remote controls, so the fleet keeps the Redis transport's
defaults wherever producer and consumer must agree: the key separator and the
priority steps (``0, 3, 6, 9``) name the queues a message at a priority goes to,
and the serializer of ``task_serializer`` is also the one remote-control replies
are written in (json, which a default client accepts). Only consumer-side options
differ from the defaults. wasmjob's own job messages ask for msgpack per message
(see ``fleet/dispatch.py``); json messages are accepted as well.
"""

from __future__ import annotations

import ssl
from dataclasses import asdict, dataclass, field
from typing import Any

from .settings import Settings

_CERT_REQS = {"required": ssl.CERT_REQUIRED, "optional": ssl.CERT_OPTIONAL, "none": ssl.CERT_NONE}


@dataclass(frozen=True)
class CeleryConfig:
    """Celery setting names and values; pass it to ``app.config_from_object``."""

    broker_url: str
    result_backend: str
    broker_transport_options: dict[str, Any]
    result_backend_transport_options: dict[str, Any]
    broker_use_ssl: dict[str, Any] | None
    redis_backend_use_ssl: dict[str, Any] | None
    task_default_queue: str
    broker_transport: str | None = None
    task_queue_max_priority: int | None = None
    task_serializer: str = "json"
    result_serializer: str = "json"
    event_serializer: str = "json"
    accept_content: list[str] = field(default_factory=lambda: ["msgpack", "json"])
    result_accept_content: list[str] = field(default_factory=lambda: ["msgpack", "json"])
    task_acks_late: bool = True
    task_reject_on_worker_lost: bool = True
    task_acks_on_failure_or_timeout: bool = True
    worker_prefetch_multiplier: int = 1
    task_track_started: bool = True
    worker_send_task_events: bool = True
    task_send_sent_event: bool = True
    result_expires: float = 86400.0
    result_extended: bool = True
    broker_connection_retry_on_startup: bool = True
    broker_connection_max_retries: int | None = None
    broker_channel_error_retry: bool = True
    worker_cancel_long_running_tasks_on_connection_loss: bool = False
    worker_hijack_root_logger: bool = True
    worker_max_memory_per_child: int | None = None
    task_time_limit: float | None = None
    worker_enable_remote_control: bool = True

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def celery_config(settings: Settings) -> CeleryConfig:
    """The Celery settings for a fleet described by ``settings``."""
    transport = {
        "visibility_timeout": int(settings.visibility_timeout),
        # consumer-side only: which of several queues a worker reads first
        "queue_order_strategy": "priority",
        "socket_timeout": 10,
        "socket_connect_timeout": 5,
        "health_check_interval": 25,
        "retry_on_timeout": True,
    }
    backend_transport = {"visibility_timeout": int(settings.visibility_timeout), "retry_policy": {"timeout": 5.0}}
    ssl_options: dict[str, Any] | None = None
    if any(u.startswith("rediss://") for u in (settings.redis_url, settings.broker, settings.backend_url)):
        ssl_options = {"ssl_cert_reqs": _CERT_REQS[settings.ssl_cert_reqs]}
        if settings.ssl_ca_certs:
            ssl_options["ssl_ca_certs"] = settings.ssl_ca_certs
    broker = settings.broker
    if not settings.broker_is_redis:
        transport = {"confirm_publish": True}  # RabbitMQ: no visibility timeout; a dead consumer's messages come back
    if broker.startswith("sentinel://"):
        transport["master_name"] = settings.sentinel_master
    if settings.backend_url.startswith("sentinel://"):
        backend_transport["master_name"] = settings.sentinel_master
    return CeleryConfig(
        broker_transport=broker_transport(broker),
        broker_url=broker,
        result_backend=settings.backend_url,
        broker_transport_options=transport,
        result_backend_transport_options=backend_transport,
        # RabbitMQ queues are declared with x-max-priority 9 (a queue's arguments cannot change later)
        task_queue_max_priority=None if settings.broker_is_redis else 9,
        broker_use_ssl=ssl_options if broker.startswith("rediss://") else None,
        redis_backend_use_ssl=ssl_options if settings.backend_url.startswith("rediss://") else None,
        task_default_queue=settings.queue,
        result_expires=settings.result_expires,
        # a backstop above the runtime's own deadline: a run stuck outside WASM is killed,
        # its lease expires and the sweep resumes the job elsewhere
        task_time_limit=settings.run_timeout + 120,
    )


def broker_transport(url: str) -> str | None:
    """kombu's transport for a broker URL: Redis brokers get the one that survives reconnects."""
    from . import redis_transport

    if url.startswith(("redis://", "rediss://", "unix://")):
        return redis_transport.REDIS
    if url.startswith("sentinel://"):
        return redis_transport.SENTINEL
    return None
