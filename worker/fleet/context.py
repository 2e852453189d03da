"""The Redis-side objects a fleet process shares: client, keys, store, records, registry."""

from __future__ import annotations

from wasmjob.broker_config import Settings

from ..keys import Keys
from ..policy import Policy
from ..records import Records
from ..registry import Registry
from ..store.redis import RedisStore, connect


class Fleet:
    """Everything that talks to the fleet's Redis, built from ``settings``, and the operator's policy.

    No connection is opened until the first command; safe to build before a fork
    (redis-py opens fresh connections in a child process).
    """

    def __init__(self, settings: Settings, policy: Policy | None = None) -> None:
        self.settings = settings
        self.policy = policy or Policy.from_env()
        self.keys = Keys(settings.prefix)
        self.client = connect(settings.redis_url, sentinel_master=settings.sentinel_master)
        self.store = RedisStore(
            self.client,
            self.keys,
            max_checkpoint_bytes=settings.max_checkpoint_bytes,
            max_kv_bytes=self.policy.max_kv_bytes,
            max_kv_keys=self.policy.max_kv_keys,
            replicas=settings.checkpoint_replicas,
            replica_wait_ms=settings.checkpoint_wait_ms,
        )
        self.scripts = self.store.scripts
        self.records = Records(
            self.client,
            self.keys,
            self.scripts,
            max_stalls=settings.max_stalls,
            grace=max(5.0, settings.lease_ttl),
            retention=settings.retention_seconds,
            max_retention=settings.max_retention_seconds,
            result_inline_bytes=settings.result_inline_bytes,
            # Celery's results in the same Redis: the scripts that end a job write them
            celery_results=settings.backend_url == settings.redis_url,
            result_expires=settings.result_expires,
        )
        self.registry = Registry(self.client, self.keys, self.scripts, registration=settings.registration)

    def close(self) -> None:
        self.client.close()
