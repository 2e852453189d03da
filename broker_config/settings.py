"""wasmjob's own settings: one frozen object built from the environment at startup.

Nothing here is read at import time; the Celery app, the client and the CLI
call :meth:`Settings.from_env` when they start.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, fields, replace
from typing import Any
from urllib.parse import quote

from wasmjob.errors import ConfigError

DEFAULT_REDIS_URL = "redis://127.0.0.1:6379/0"
REDIS_SCHEMES = ("redis://", "rediss://", "unix://", "sentinel://")
AMQP_SCHEMES = ("amqp://", "amqps://", "pyamqp://")

# environment variable -> field; every field can be set this way
ENV = {
    "WASMJOB_REDIS_URL": "redis_url",
    "WASMJOB_RESULT_URL": "result_url",
    "WASMJOB_BROKER_URL": "broker_url",
    "WASMJOB_SENTINEL_MASTER": "sentinel_master",
    "WASMJOB_CHECKPOINT_REPLICAS": "checkpoint_replicas",
    "WASMJOB_CHECKPOINT_WAIT_MS": "checkpoint_wait_ms",
    "WASMJOB_REDIS_CERT_REQS": "ssl_cert_reqs",
    "WASMJOB_REDIS_CA_CERTS": "ssl_ca_certs",
    "WASMJOB_PREFIX": "prefix",
    "WASMJOB_QUEUE": "queue",
    "WASMJOB_LEASE_TTL": "lease_ttl",
    "WASMJOB_SWEEP_INTERVAL": "sweep_interval",
    "WASMJOB_SLICE_SECONDS": "slice_seconds",
    "WASMJOB_RUN_TIMEOUT": "run_timeout",
    "WASMJOB_MAX_STALLS": "max_stalls",
    "WASMJOB_VISIBILITY_TIMEOUT": "visibility_timeout",
    "WASMJOB_MAX_CHECKPOINT_BYTES": "max_checkpoint_bytes",
    "WASMJOB_RESULT_EXPIRES": "result_expires",
    "WASMJOB_CACHE_DIR": "cache_dir",
    "WASMJOB_OPERATIONS": "operations",
    "WASMJOB_FUEL_BILLING": "fuel_billing",
    "WASMJOB_REGISTRATION": "registration",
    "WASMJOB_TENANT_SECRET": "tenant_secret",
    "WASMJOB_SNAPSHOT_SECONDS": "snapshot_seconds",
    "WASMJOB_RETENTION_SECONDS": "retention_seconds",
    "WASMJOB_MAX_RETENTION_SECONDS": "max_retention_seconds",
    "WASMJOB_RESULT_INLINE_BYTES": "result_inline_bytes",
    "WASMJOB_LOG_FORMAT": "log_format",
    "WASMJOB_REDIS_PASSWORD": "redis_password",
}


@dataclass(frozen=True)
class Settings:
    """Where Redis is and how the fleet behaves.

    ``lease_ttl``: seconds a lease lives without renewal; a dead worker's jobs
    resume within about twice this. ``sweep_interval``: how often a worker runs
    the recovery sweep. ``slice_seconds``: a job runs at most this long per Celery
    task before it checkpoints and continues in a new one. ``run_timeout``: hard
    wall-clock limit of one run. ``max_stalls``: attempts in a row without a new
    checkpoint before a job fails. ``visibility_timeout``: Celery's redelivery
    timeout for unacknowledged messages; every run ends well before it.
    ``operations``: comma-separated ``module:function`` hooks that register extra
    host operations for ``spacedrive_call`` when a worker process starts.
    ``fuel_billing``: meter every run with fuel (else only runs with a fuel budget are
    metered, the rest run on the faster engine without fuel and bill CPU seconds).
    ``registration``: ``open`` (any publisher key claims an unowned extension id) or
    ``closed`` (only keys the operator registered). ``tenant_secret``: when set, a job
    runs for a tenant only with that tenant's token (``wasmjob tenants token``).
    ``snapshot_seconds``: a job of an extension in snapshot mode is snapshotted every
    this many seconds of run time, so a crash loses at most about that much work.
    ``retention_seconds``: how long a finished job (completed, failed, cancelled) keeps its
    record, result, state, logs and events before they expire together; a job may ask for
    its own with the ``retention_seconds`` limit, up to ``max_retention_seconds``.
    ``result_inline_bytes``: a larger result is kept beside the record, not in it.
    ``broker_url``: a broker apart from the job store (``amqp://`` for RabbitMQ); the job
    store stays ``redis_url``. ``sentinel_master``: the master's name when a URL is
    ``sentinel://``. ``checkpoint_replicas``: a checkpoint is acknowledged only once this
    many replicas have it (Redis ``WAIT``, up to ``checkpoint_wait_ms``); 0 = the master only.
    """

    redis_url: str = DEFAULT_REDIS_URL
    result_url: str | None = None
    broker_url: str | None = None
    sentinel_master: str = "mymaster"
    checkpoint_replicas: int = 0
    checkpoint_wait_ms: int = 1000
    ssl_cert_reqs: str = "required"
    ssl_ca_certs: str | None = None
    prefix: str = "wasmjob"
    queue: str = "wasmjob"
    lease_ttl: float = 10.0
    sweep_interval: float = 1.0
    slice_seconds: float = 60.0
    run_timeout: float = 300.0
    max_stalls: int = 3
    visibility_timeout: float = 3600.0
    max_checkpoint_bytes: int = 16 * 1024 * 1024
    result_expires: float = 86400.0
    cache_dir: str | None = None
    operations: str = ""
    fuel_billing: bool = False
    registration: str = "open"
    tenant_secret: str | None = None
    snapshot_seconds: float = 10.0
    retention_seconds: float = 3 * 86400.0
    max_retention_seconds: float = 30 * 86400.0
    result_inline_bytes: int = 64 * 1024
    log_format: str = "text"  # or "json": one JSON object per log line (fleet/logformat.py)
    redis_password: str | None = None  # kept apart from the URLs; any characters (see with_password)

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None, **overrides: Any) -> Settings:
        """Settings from ``WASMJOB_*`` variables (``os.environ`` by default), then ``overrides``."""
        env = os.environ if env is None else env
        types = {f.name: f.type for f in fields(cls)}
        values: dict[str, Any] = {}
        for var, name in ENV.items():
            raw = env.get(var)
            if raw is None or raw == "":
                continue
            values[name] = _convert(var, raw, str(types[name]))
        values.update({k: v for k, v in overrides.items() if v is not None})
        return cls(**values).with_password().validated()

    def with_password(self) -> Settings:
        """The settings with ``redis_password`` URL-escaped into every Redis URL that has none, so a
        password like ``p@ss:w/rd`` never has to be escaped by hand."""
        if not self.redis_password:
            return self
        secret = quote(self.redis_password, safe="")

        def add(url: str | None) -> str | None:
            if not url or not url.startswith(("redis://", "rediss://")):
                return url
            scheme, rest = url.split("://", 1)
            user, at, host = rest.partition("@")
            if not at:  # no user either: Redis's default user
                return f"{scheme}://:{secret}@{rest}"
            if ":" in user:  # the URL has its own password
                return url
            return f"{scheme}://{user}:{secret}@{host}"  # an ACL user named in the URL

        return replace(self, redis_url=add(self.redis_url) or self.redis_url, result_url=add(self.result_url),
                       broker_url=add(self.broker_url))

    def validated(self) -> Settings:
        if not self.redis_url.startswith(REDIS_SCHEMES):
            raise ConfigError(
                f"WASMJOB_REDIS_URL must start with redis://, rediss://, unix:// or sentinel://, not {self.redis_url!r}"
            )
        if not self.broker.startswith(REDIS_SCHEMES + AMQP_SCHEMES):
            raise ConfigError(f"WASMJOB_BROKER_URL must be a Redis or an amqp:// URL, not {self.broker!r}")
        if self.checkpoint_replicas < 0 or self.checkpoint_wait_ms <= 0:
            raise ConfigError("WASMJOB_CHECKPOINT_REPLICAS must be >= 0 and WASMJOB_CHECKPOINT_WAIT_MS positive")
        if self.ssl_cert_reqs not in ("required", "optional", "none"):
            raise ConfigError("WASMJOB_REDIS_CERT_REQS must be required, optional or none")
        if self.lease_ttl <= 0 or self.sweep_interval <= 0 or self.slice_seconds <= 0 or self.run_timeout <= 0:
            raise ConfigError("lease TTL, sweep interval, slice and run timeout must be positive")
        if self.snapshot_seconds <= 0:
            raise ConfigError("WASMJOB_SNAPSHOT_SECONDS must be positive")
        if self.run_timeout >= self.visibility_timeout * 0.9:
            raise ConfigError(
                f"WASMJOB_RUN_TIMEOUT ({self.run_timeout:g}s) must stay below 90% of the visibility timeout"
                f" ({self.visibility_timeout:g}s), or Celery would redeliver running jobs"
            )
        if self.registration not in ("open", "closed"):
            raise ConfigError("WASMJOB_REGISTRATION must be open or closed")
        if self.tenant_secret is not None and len(self.tenant_secret) < 16:
            raise ConfigError("WASMJOB_TENANT_SECRET must be at least 16 characters")
        if not 1 <= self.retention_seconds <= self.max_retention_seconds:
            raise ConfigError("WASMJOB_RETENTION_SECONDS must be at least 1 and at most WASMJOB_MAX_RETENTION_SECONDS")
        if self.max_stalls < 1:
            raise ConfigError("WASMJOB_MAX_STALLS must be at least 1")
        if self.log_format not in ("text", "json"):
            raise ConfigError("WASMJOB_LOG_FORMAT must be text or json")
        return self

    @property
    def backend_url(self) -> str:
        return self.result_url or self.redis_url

    @property
    def broker(self) -> str:
        """The broker's URL: ``WASMJOB_BROKER_URL``, else the job store's Redis."""
        return self.broker_url or self.redis_url

    @property
    def broker_is_redis(self) -> bool:
        return self.broker.startswith(REDIS_SCHEMES)


def _convert(var: str, raw: str, type_name: str) -> Any:
    if "bool" in type_name:
        if raw.lower() in ("1", "true", "yes", "on"):
            return True
        if raw.lower() in ("0", "false", "no", "off"):
            return False
        raise ConfigError(f"{var}={raw!r} is not a yes/no value (1, 0, true, false)")
    try:
        if "float" in type_name:
            return float(raw)
        if "int" in type_name:
            return int(raw)
    except ValueError:
        raise ConfigError(f"{var}={raw!r} is not a number") from None
    return raw
