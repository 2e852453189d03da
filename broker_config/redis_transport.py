"""kombu's Redis transports, with one reconnect bug worked around.

When a worker loses Redis, Celery collects the broker connection (kombu sets the
transport's ``client`` to None) and then closes it. Closing the channel restores
its unacknowledged messages, which needs a fresh connection pool, whose parameters
kombu reads from ``transport.client``: ``AttributeError: 'NoneType' object has no
attribute 'hostname'`` in ``_connparams``, which Celery treats as an unrecoverable
error, and the worker exits (kombu 5.7.0, the newest release, still does this).

Here each channel remembers the connection it was opened with and builds its pool
from that when the transport has already let go of it; the messages are restored
(or, while Redis is still down, left in kombu's ``unacked`` hash) and the worker
reconnects. Use with ``broker_transport`` (``celeryconfig.py`` sets it for Redis
brokers).
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from kombu.transport import redis as kombu_redis


class _RemembersItsConnection:
    """Channel mixin: build connection pools from the connection the channel was opened with."""

    connection: Any

    def __init__(self, connection: Any, *args: Any, **kwargs: Any) -> None:
        self._opened_with = connection.client
        super().__init__(connection, *args, **kwargs)  # type: ignore[call-arg]

    @contextmanager
    def _client_info(self) -> Iterator[None]:
        transport = self.connection
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


class Channel(_RemembersItsConnection, kombu_redis.Channel):
    """kombu's Redis channel that survives being closed after its transport was collected."""


class SentinelChannel(_RemembersItsConnection, kombu_redis.SentinelChannel):
    """The same for Redis Sentinel."""


class Transport(kombu_redis.Transport):
    Channel = Channel


class SentinelTransport(kombu_redis.SentinelTransport):
    Channel = SentinelChannel


REDIS = f"{__name__}:Transport"
SENTINEL = f"{__name__}:SentinelTransport"
