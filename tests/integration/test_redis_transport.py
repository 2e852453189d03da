"""The fan-out (pub/sub) side of our Redis transport, on a real Redis: a worker's event loop
woken for that socket with nothing to read must not wait there for good.

That is how a worker of the suite went silent (3 times in about 90 runs): py-spy showed its
main thread in kombu's ``_receive`` -> redis-py ``PubSub.parse_response`` -> a socket read
with no timeout, for minutes, while broadcasts and jobs waited.
"""

from __future__ import annotations

import threading
import uuid
from collections.abc import Iterator
from typing import Any

import pytest
import redis
from kombu import Connection

from wasmjob.broker_config import redis_transport

SOCKET_TIMEOUT = 30  # seconds: far above what a read may take when nothing is there


@pytest.fixture
def channel(redis_server: Any) -> Iterator[tuple[Any, str]]:
    """A channel of our transport whose fan-out connection is subscribed to one Redis channel,
    and that Redis channel's name."""
    conn = Connection(redis_server.url, transport=redis_transport.REDIS,
                      transport_options={"socket_timeout": SOCKET_TIMEOUT})
    chan = conn.channel()
    topic = f"wasmjob-test-fanout-{uuid.uuid4().hex[:8]}"
    try:
        chan.subclient.subscribe(topic)
        confirmed = chan.subclient.parse_response(block=False, timeout=SOCKET_TIMEOUT)
        assert confirmed is not None and confirmed[0] == b"subscribe", confirmed
        yield chan, topic
    finally:
        chan.close()
        conn.release()


def _returns(call: Any, within: float) -> list[Any]:
    """What ``call`` returned, if it returned within ``within`` seconds (else an empty list)."""
    out: list[Any] = []
    thread = threading.Thread(target=lambda: out.append(call()), daemon=True)
    thread.start()
    thread.join(within)
    return out


def test_the_fanout_connection_reads_through_the_bounded_pubsub(channel) -> None:
    chan, _ = channel
    assert isinstance(chan, redis_transport.Channel)
    assert type(chan.subclient) is redis_transport.BoundedPubSub


def test_a_wakeup_with_nothing_to_read_returns_and_a_message_is_still_read(channel) -> None:
    chan, topic = channel
    assert not chan.subclient.connection.can_read(timeout=0)
    # kombu's own LISTEN handler, as its poller calls it; on kombu's channel it never returns here
    assert _returns(chan._receive, within=SOCKET_TIMEOUT / 2) == [False], "the event loop would hang"
    # a blocking read, as kombu makes it, still returns what arrives
    with chan.conn_or_acquire() as client:
        assert client.publish(topic, b"hello") == 1
    assert chan.subclient.connection.can_read(timeout=SOCKET_TIMEOUT)
    message = chan.subclient.parse_response()
    assert message == [b"message", topic.encode(), b"hello"], message


def test_a_producer_whose_channel_was_closed_under_it_reconnects_and_publishes(redis_server: Any) -> None:
    """A lost connection closes the channels of pooled producers; the sweeper's next re-dispatch
    went through such a channel and kombu raised ``AttributeError`` (its closed channel has no
    transport), which failed the job. Ours raises a connection error, so kombu's retry revives it."""
    conn = Connection(redis_server.url, transport=redis_transport.REDIS)
    queue = f"wasmjob-test-closed-{uuid.uuid4().hex[:8]}"
    try:
        producer = conn.Producer()
        producer.channel.close()
        with pytest.raises(redis.exceptions.ConnectionError, match="closed"):
            producer.publish({"n": 1}, routing_key=queue, retry=False)
        retry = {"max_retries": 2, "interval_start": 0, "interval_step": 0.1}
        producer.publish({"n": 2}, routing_key=queue, retry=True, retry_policy=retry)
        assert conn.default_channel.client.llen(queue) == 1
    finally:
        conn.default_channel.client.delete(queue)
        conn.release()
