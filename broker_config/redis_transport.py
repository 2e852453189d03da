"""kombu's Redis transports, with two reconnect bugs and a hang worked around.

When a worker loses Redis, Celery collects the broker connection (kombu sets the
transport's ``client`` to None) and then closes it. Closing the channel restores
its unacknowledged messages, which needs a fresh connection pool, whose parameters
kombu reads from ``transport.client``: ``AttributeError: 'NoneType' object has no
attribute 'hostname'`` in ``_connparams``, which Celery treats as an unrecoverable
error, and the worker exits (kombu 5.7.0, the newest release, still does this).

Here each channel remembers the connection it was opened with and builds its pool
from that when the transport has already let go of it; the messages are restored
(or, while Redis is still down, left in kombu's ``unacked`` hash) and the worker
reconnects. A channel closed under a producer that still holds it (a lost connection
closes the pooled producers' channels) raised ``AttributeError`` on its next publish,
which nothing retries; here it is a connection error, so kombu's retry opens a new one.

And one hang: kombu reads the fan-out (pub/sub) connection, which carries Celery's
broadcasts (ping, inspect, revoke), whenever its poller wakes it for that socket, and
redis-py 8 reads pub/sub with no timeout at all. Woken with nothing to read, a worker's
event loop waited there for good: it answered no ping and took no job, and its log said
nothing. Here that read returns at once when nothing is there, and otherwise waits at
most the transport's ``socket_timeout``, after which Celery reconnects as on any broker
error. Use with ``broker_transport`` (``celeryconfig.py`` sets it for Redis brokers).
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from functools import cached_property
from typing import Any

import redis
from kombu.transport import redis as kombu_redis

DEFAULT_READ_TIMEOUT = 10.0  # seconds, where the transport sets no socket_timeout


class BoundedPubSub(redis.client.PubSub):
    """redis-py's pub/sub, except that a blocking read never waits without end (see above)."""

    def parse_response(self, block: bool = True, timeout: float = 0) -> Any:
        if not block:
            return super().parse_response(block=False, timeout=timeout)
        conn = self.connection
        if conn is not None and not conn.can_read(timeout=0):
            return None  # woken with nothing to read
        limit = self.connection_pool.connection_kwargs.get("socket_timeout") or DEFAULT_READ_TIMEOUT
        return super().parse_response(block=False, timeout=limit)


class _RemembersItsConnection:
    """Channel mixin: build connection pools from the connection the channel was opened with."""

    connection: Any

    def __init__(self, connection: Any, *args: Any, **kwargs: Any) -> None:
        self._opened_with = connection.client
        super().__init__(connection, *args, **kwargs)  # type: ignore[call-arg]

    @contextmanager
    def _client_info(self) -> Iterator[None]:
        transport = self.connection
        if transport is None:  # closed under its user (a producer's, by a lost connection): reconnect
            raise redis.exceptions.ConnectionError("this broker channel was closed")
        if transport.client is not None or self._opened_with is None:
            yield
            return
        transport.client = self._opened_with  # collected under us: lend it back for this call only
        try:
            yield
        finally:
            transport.client = None

    def _get_pool(self, asynchronous: bool = False) -> Any:
        with self._client_info():
            return super()._get_pool(asynchronous)  # type: ignore[misc]

    @cached_property
    def subclient(self) -> Any:
        """The fan-out connection, as kombu makes it, reading through :class:`BoundedPubSub`."""
        client = self._create_client(asynchronous=True)  # type: ignore[attr-defined]
        pubsub = client.pubsub()
        if type(pubsub) is redis.client.PubSub:  # kombu's key-prefixing pub/sub keeps its own reads
            pubsub.__class__ = BoundedPubSub
        return pubsub


class Channel(_RemembersItsConnection, kombu_redis.Channel):
    """kombu's Redis channel that survives being closed after its transport was collected
    and whose fan-out reads never wait without end."""


class SentinelChannel(_RemembersItsConnection, kombu_redis.SentinelChannel):
    """The same for Redis Sentinel."""


class Transport(kombu_redis.Transport):
    Channel = Channel


class SentinelTransport(kombu_redis.SentinelTransport):
    Channel = SentinelChannel


REDIS = f"{__name__}:Transport"
SENTINEL = f"{__name__}:SentinelTransport"
