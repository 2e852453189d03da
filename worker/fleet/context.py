"""The Redis-side objects a fleet process shares: client, keys, store, records, registry."""

from __future__ import annotations

import json
import time
from dataclasses import dataclass, fields

from wasmjob.broker_config import Settings

from ..errors import ConfigError
from ..keys import Keys
from ..policy import Policy
from ..records import Records
from ..registry import Registry
from ..store.redis import RedisStore, connect, translated


@dataclass(frozen=True)
class PublishedPolicy:
    """The operator policy a worker of the fleet runs with, as it published it when it started."""

    policy: Policy
    worker: str
    published_at: float


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

    def publish_policy(self, worker: str) -> None:
        """Tell producers the policy this worker runs with (they check releases against it)."""
        data = {"policy": self.policy.as_dict(), "worker": worker, "published_at": time.time()}
        with translated():
            self.client.set(self.keys.policy, json.dumps(data))

    def published_policy(self) -> PublishedPolicy | None:
        """The policy a worker of the fleet last published; None when none did (or it cannot be read).
        PermissionDenied when these credentials may not read it."""
        with translated():
            raw = self.client.get(self.keys.policy)
        if not raw:
            return None
        try:
            data = json.loads(raw)
            known = {f.name for f in fields(Policy)}
            # settings a newer worker knows and this producer does not are its own business
            policy = Policy.from_dict({k: v for k, v in data["policy"].items() if k in known})
            return PublishedPolicy(policy, str(data.get("worker", "?")), float(data.get("published_at", 0)))
        except (ValueError, TypeError, KeyError, AttributeError, ConfigError):
            return None

    def close(self) -> None:
        self.client.close()
