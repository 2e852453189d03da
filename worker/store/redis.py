"""The checkpoint store of the fleet: job state in Redis, every write fenced by a Lua script.

The Lua scripts live beside this module (``lua/*.lua``, with ``_lib.lua``
prepended to each); what each takes, by name, is its dataclass in ``contracts.py``. A lease is a key ``"<token>|<owner>"`` with a TTL; a write
is accepted only while that key holds exactly its run's token and owner (a :class:`Fence`),
so a worker that was stopped past its TTL can never overwrite a newer checkpoint or finish a
job twice, even when a failover issued its token number again to another run.
Redis errors become :class:`StoreUnavailable` / :class:`LeaseLost` here, at the edge.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import redis
from redis.backoff import ExponentialBackoff
from redis.retry import Retry

from ..errors import (
    CheckpointTooLarge,
    InvalidTransition,
    LeaseHeld,
    LeaseLost,
    ManifestError,
    NotFound,
    PermissionDenied,
    PublishRefused,
    QuotaExceeded,
    StoreError,
    StoreUnavailable,
)
from ..keys import Keys
from . import contracts as c
from .base import Fence, ProgressUpdate, owner_of

LUA_DIR = Path(__file__).with_name("lua")
SCRIPT_NAMES = tuple(contract.SCRIPT for contract in c.CONTRACTS)
DEFAULT_MAX_CHECKPOINT_BYTES = 16 * 1024 * 1024
# How long staged checkpoint bytes live when their commit never runs (the worker died between the two).
STAGING_TTL_MS = 60_000
LOG_LINES_KEPT = 1000
WARNINGS_KEPT = 100

# Lua error prefixes -> our errors (the script's text follows the prefix).
_SCRIPT_ERRORS: dict[str, type[StoreError] | type[Exception]] = {
    "LEASE_LOST": LeaseLost,
    "LEASE_HELD": LeaseHeld,
    "TOO_LARGE": CheckpointTooLarge,
    "NOT_FOUND": NotFound,
    "INVALID": InvalidTransition,
    "IMMUTABLE": ManifestError,
    "QUOTA": QuotaExceeded,
    "NOT_OWNER": PublishRefused,
    "NOT_PUBLISHER": PublishRefused,
}


def connect(url: str, *, timeout: float = 5.0, sentinel_master: str = "mymaster") -> redis.Redis:
    """A Redis client for ``url`` (``redis://``, ``rediss://``, ``unix://``; password in the URL), or
    for the master a set of Sentinels names (``sentinel://host:port/db;sentinel://host:port...``).

    Replies stay bytes (checkpoints are binary). A command is retried twice on a
    dropped connection, quickly, so a restarted Redis (or a new master) is picked up again.
    """
    options: dict[str, Any] = {
        "socket_timeout": timeout,
        "socket_connect_timeout": min(timeout, 2.0),
        "retry": Retry(ExponentialBackoff(cap=0.5, base=0.05), 2),
        "retry_on_error": [redis.exceptions.ConnectionError, redis.exceptions.TimeoutError],
        "health_check_interval": 30,
    }
    try:
        if url.startswith("sentinel://"):
            return _sentinel_master(url, sentinel_master, options)
        return redis.Redis.from_url(url, **options)
    except ValueError as exc:
        raise StoreUnavailable(f"bad Redis URL {redact(url)}: {exc}") from exc


def _sentinel_master(url: str, master: str, options: dict[str, Any]) -> redis.Redis:
    """A client of the master the Sentinels in ``url`` name; it asks them again after a failover."""
    from urllib.parse import urlparse

    from redis.sentinel import Sentinel

    parts = [urlparse(u) for u in url.split(";") if u.strip()]
    if not parts or any(p.scheme != "sentinel" or not p.hostname for p in parts):
        raise ValueError("expected sentinel://[:password@]host:port[/db] URLs separated by ';'")
    hosts = [(p.hostname, p.port or 26379) for p in parts]
    first = parts[0]
    db = int(first.path.strip("/") or 0)
    sentinel = Sentinel(
        hosts, socket_timeout=options["socket_timeout"], socket_connect_timeout=options["socket_connect_timeout"]
    )
    return sentinel.master_for(master, db=db, username=first.username or None, password=first.password, **options)


def redact(url: str) -> str:
    """``url`` with any password replaced by ``***``, for messages and logs."""
    if "@" not in url or "://" not in url:
        return url
    scheme, rest = url.split("://", 1)
    creds, host = rest.rsplit("@", 1)
    user = creds.split(":", 1)[0] if ":" in creds else ""
    return f"{scheme}://{user}:***@{host}"


@contextmanager
def translated(job_id: str | None = None) -> Iterator[None]:
    """Turn redis-py errors, and the error replies of our scripts, into wasmjob errors."""
    try:
        yield
    except redis.exceptions.ResponseError as exc:
        text = str(exc)
        prefix, _, rest = text.partition(" ")
        kind = _SCRIPT_ERRORS.get(prefix)
        if kind is LeaseHeld:
            raise LeaseHeld(f"already running in {rest}", job_id=job_id) from exc
        if kind is not None:
            raise kind(rest or text, job_id=job_id) from exc  # type: ignore[call-arg]
        if isinstance(exc, redis.exceptions.NoPermissionError) or "no permissions to" in text:
            raise PermissionDenied(f"these Redis credentials may not do that: {text}", job_id=job_id) from exc
        if text.startswith(("NOAUTH", "WRONGPASS")):
            raise StoreUnavailable(f"Redis refused the credentials: {text}", job_id=job_id) from exc
        raise StoreUnavailable(f"Redis error: {text}", job_id=job_id) from exc
    except redis.exceptions.AuthenticationError as exc:
        raise StoreUnavailable(f"Redis refused the credentials: {exc}", job_id=job_id) from exc
    except (redis.exceptions.ConnectionError, redis.exceptions.TimeoutError) as exc:
        raise StoreUnavailable(f"Redis unreachable: {exc}", job_id=job_id) from exc
    except redis.exceptions.RedisError as exc:
        raise StoreUnavailable(f"Redis error: {exc}", job_id=job_id) from exc


class Scripts:
    """The Lua scripts registered on one client; each runs by EVALSHA and reloads after a restart."""

    def __init__(self, client: redis.Redis) -> None:
        prelude = (LUA_DIR / "_lib.lua").read_text()
        self._scripts = {
            name: client.register_script(prelude + "\n" + (LUA_DIR / f"{name}.lua").read_text())
            for name in SCRIPT_NAMES
        }

    def __call__(self, call: c.Contract, *, job_id: str | None = None) -> Any:
        """Run ``call``'s script with its keys and its arguments (one msgpack map)."""
        keys, argv = call.encoded()
        with translated(job_id):
            return self._scripts[call.SCRIPT](keys=keys, args=[argv])

    def sha(self, name: str) -> str:
        return str(self._scripts[name].sha)

    def load(self, name: str) -> None:
        """Load one script into Redis's cache again (after a restart or SCRIPT FLUSH)."""
        script = self._scripts[name]
        script.sha = script.registered_client.script_load(script.script)


def send_pair(client: redis.Redis, first: Sequence[Any], second: Sequence[Any], *more: Sequence[Any]) -> tuple[Any, ...]:
    """Send two commands (and any ``more``) in one write on one pooled connection and read every reply.

    Cheaper than a redis-py Pipeline for this one fixed pair. Error replies come back as
    ``ResponseError`` values, not raised, so both replies are always read. On a dropped
    connection the connection is closed (never returned to the pool with unread replies)
    and the pair is retried under the client's retry policy, as redis-py does for one command.
    """
    pool = client.connection_pool
    conn = pool.get_connection()
    try:
        commands = [first, second, *more]

        def attempt() -> tuple[Any, ...]:
            conn.send_packed_command(conn.pack_commands(commands))
            return tuple(_reply(conn) for _ in commands)

        return conn.retry.call_with_retry(attempt, lambda _error: conn.disconnect())  # type: ignore[no-any-return]
    except BaseException:
        conn.disconnect()  # whatever was sent or half read is dropped with the socket
        raise
    finally:
        pool.release(conn)


def _reply(conn: Any) -> Any:
    try:
        return conn.read_response()
    except redis.exceptions.ResponseError as exc:
        return exc


class RedisStore:
    """:class:`~wasmjob.store.base.CheckpointStore` on Redis.

    Takes a client (see :func:`connect`), the key layout, and the largest
    checkpoint accepted (the runtime enforces the job's own, smaller limit first).
    ``replicas``: a checkpoint counts as saved only once that many replicas have it
    (Redis ``WAIT``, up to ``replica_wait_ms``), so it survives a failover to any of them.
    """

    def __init__(
        self,
        client: redis.Redis,
        keys: Keys | None = None,
        *,
        max_checkpoint_bytes: int = DEFAULT_MAX_CHECKPOINT_BYTES,
        max_kv_bytes: int = 64 * 1024 * 1024,
        max_kv_keys: int = 10_000,
        replicas: int = 0,
        replica_wait_ms: int = 1000,
    ) -> None:
        self.client = client
        self.replicas = replicas
        self.replica_wait_ms = replica_wait_ms
        self.keys = keys or Keys()
        self.scripts = Scripts(client)
        self.max_checkpoint_bytes = max_checkpoint_bytes
        self.max_kv_bytes = max_kv_bytes
        self.max_kv_keys = max_kv_keys
        # set by a periodic check (fleet/headroom.py), never per call: why writes are refused now;
        # while it is set, ``recheck`` (when given) may look again before a write is refused
        self.low_memory: str | None = None
        self.recheck: Callable[[], None] | None = None

    @classmethod
    def from_url(cls, url: str, keys: Keys | None = None, **kwargs: Any) -> RedisStore:
        return cls(connect(url), keys, **kwargs)

    # leases -------------------------------------------------------------------

    def acquire(self, job_id: str, owner: str, ttl: float) -> Fence:
        k = self.keys
        call = c.Acquire(job=k.job(job_id), lease=k.lease(job_id), owner=owner, ttl_ms=_ms(ttl))
        return Fence(int(self.scripts(call, job_id=job_id)), owner)

    def renew(self, job_id: str, token: int, ttl: float, *, ext_id: str | None = None) -> bool:
        k = self.keys
        call = c.Renew(
            lease=k.lease(job_id), ext_running=k.ext_running(ext_id) if ext_id else None,
            token=token, owner=owner_of(token), ttl_ms=_ms(ttl), job_id=job_id,
        )
        return bool(self.scripts(call, job_id=job_id))

    def release(self, job_id: str, token: int, *, ext_id: str | None = None) -> None:
        k = self.keys
        call = c.Release(
            lease=k.lease(job_id), ext_running=k.ext_running(ext_id) if ext_id else None, token=token,
            owner=owner_of(token), job_id=job_id,
        )
        self.scripts(call, job_id=job_id)

    def lease_holder(self, job_id: str) -> tuple[int, str] | None:
        """The (token, owner) holding the job's lease now, or None."""
        with translated(job_id):
            raw = self.client.get(self.keys.lease(job_id))
        if raw is None:
            return None
        token, _, owner = as_text(raw).partition("|")
        return int(token), owner

    # checkpoints and progress ---------------------------------------------------

    def load_checkpoint(self, job_id: str) -> bytes | None:
        with translated(job_id):
            data = self.client.get(self.keys.state(job_id))
        return None if data is None else as_bytes(data)

    def save_checkpoint(
        self, job_id: str, token: int, state: bytes, update: ProgressUpdate | None = None
    ) -> None:
        if len(state) > self.max_checkpoint_bytes:
            raise CheckpointTooLarge(
                f"checkpoint of {len(state)} bytes exceeds the store's {self.max_checkpoint_bytes}", job_id=job_id
            )
        self._refuse_when_low(job_id)
        self._write(job_id, token, "state", state, update or ProgressUpdate())

    def record_progress(self, job_id: str, token: int, update: ProgressUpdate) -> None:
        self._write(job_id, token, "progress", b"", update)

    def save_snapshot_base(self, job_id: str, token: int, slot: str, data: bytes) -> None:
        """A full snapshot into base slot ``slot``, through the checkpoint's fenced commit and size cap."""
        if len(data) > self.max_checkpoint_bytes:
            raise CheckpointTooLarge(
                f"snapshot of {len(data)} bytes exceeds the store's {self.max_checkpoint_bytes}", job_id=job_id
            )
        self._write(job_id, token, "state", data, ProgressUpdate(), target=self.keys.snapshot_base(job_id, slot))

    def load_snapshot_base(self, job_id: str, slot: str) -> bytes | None:
        with translated(job_id):
            data = self.client.get(self.keys.snapshot_base(job_id, slot))
        return None if data is None else as_bytes(data)

    def _write(
        self, job_id: str, token: int, mode: str, state: bytes, update: ProgressUpdate, *, target: str | None = None
    ) -> None:
        """One fenced write. A checkpoint's bytes go by a plain SET to a staging key, sent in the
        same write as the script that commits them, so Lua never copies the state (one round trip).
        ``target`` commits them to another key than the job's state (a snapshot's base slot)."""
        k = self.keys
        staging = k.staging(job_id, token)
        call = c.Checkpoint(
            job=k.job(job_id), lease=k.lease(job_id), state=target or k.state(job_id), logs_key=k.logs(job_id),
            warnings_key=k.warnings(job_id), staging=staging,
            token=token,
            owner=owner_of(token),
            mode=mode,
            max_state_bytes=self.max_checkpoint_bytes,
            progress="" if update.progress is None else repr(float(update.progress)),
            has_message=update.message is not None,
            message=update.message or "",
            items_delta=int(update.items),
            bytes_delta=int(update.bytes),
            logs_kept=LOG_LINES_KEPT,
            warnings_kept=WARNINGS_KEPT,
            logs=[
                json.dumps({"ts": round(line.ts, 3), "level": line.level, "msg": line.message}) for line in update.logs
            ],
            warnings=list(update.warnings),
        )
        if mode != "state":
            self.scripts(call, job_id=job_id)
            return
        keys, argv = call.encoded()
        with translated(job_id):
            # with replicas asked for, a WAIT in the same write holds the reply until they have it
            wait = [("WAIT", self.replicas, self.replica_wait_ms)] if self.replicas else []
            for _ in range(2):
                stored, committed, *replicated = send_pair(
                    self.client,
                    ("SET", staging, state, "PX", STAGING_TTL_MS),
                    ("EVALSHA", self.scripts.sha("checkpoint"), len(keys), *keys, argv),
                    *wait,
                )
                if isinstance(stored, Exception):
                    raise stored
                if not (isinstance(committed, redis.exceptions.NoScriptError)):
                    break
                self.scripts.load("checkpoint")  # Redis restarted or flushed its scripts: load, send again
            if isinstance(committed, Exception):
                raise committed
        if replicated and (isinstance(replicated[0], Exception) or int(replicated[0]) < self.replicas):
            raise StoreUnavailable(
                f"checkpoint reached {replicated[0]} of {self.replicas} replica(s) within {self.replica_wait_ms} ms;"
                " it counts as not saved", job_id=job_id,
            )

    def replicated(self) -> bool:
        """Wait until ``replicas`` replicas have every write so far (True at once when none are asked for)."""
        if not self.replicas:
            return True
        # WAIT covers the writes of its own connection: a write on that connection first, and Redis's
        # one ordered replication stream makes it cover every earlier write of this process too
        try:
            with translated():
                _, acked = send_pair(
                    self.client, ("SET", self.keys.replication_probe, "1", "PX", 60_000),
                    ("WAIT", self.replicas, self.replica_wait_ms),
                )
        except StoreUnavailable:
            return False
        return not isinstance(acked, Exception) and int(acked) >= self.replicas

    # key-value pairs of extensions ----------------------------------------------

    def kv_get(self, namespace: str, key: str) -> str | None:
        with translated():
            raw = self.client.hget(self.keys.kv(namespace), key)
        return None if raw is None else as_text(raw)

    def kv_set(self, namespace: str, key: str, value: str) -> None:
        """Set a key within the scope's quota (bytes and keys), atomically; refused when Redis is low."""
        self._refuse_when_low()
        k = self.keys
        self.scripts(
            c.KvSet(
                kv=k.kv(namespace), usage=k.kv_usage(namespace), key=key, value=value,
                max_bytes=self.max_kv_bytes, max_keys=self.max_kv_keys,
            )
        )

    def _refuse_when_low(self, job_id: str | None = None) -> None:
        if self.low_memory and self.recheck is not None:
            self.recheck()
        if self.low_memory:
            raise QuotaExceeded(self.low_memory, job_id=job_id)

    def ping(self) -> None:
        """Raise StoreUnavailable unless Redis answers."""
        with translated():
            self.client.ping()


def as_text(raw: Any) -> str:
    """A Redis reply (bytes with this client) as text."""
    return raw.decode("utf-8", "replace") if isinstance(raw, (bytes, bytearray)) else str(raw)


def as_bytes(raw: Any) -> bytes:
    return bytes(raw) if isinstance(raw, (bytes, bytearray)) else str(raw).encode()


def _ms(seconds: float) -> int:
    return max(1, int(seconds * 1000))
