"""Messages a worker took from a Redis broker and never claimed: found in kombu's ``unacked`` hash.

With a Redis broker, kombu moves every message a worker takes into a hash
(``unacked``: delivery tag -> message) and an index (``unacked_index``: tag -> time
taken); the ack removes both. A worker that dies between taking a message and
claiming its job leaves the job ``queued`` with its message parked there until
Celery's visibility timeout (an hour). The sweep reads the index instead: a message
taken more than a grace period ago whose job is still queued at that dispatch was
taken by a worker that is gone (or frozen, or restarted its connection); the job is
dispatched again with a higher dispatch number, so the parked message is stale.

The sweep also reads queue lengths here (:meth:`UnackedDeliveries.waiting`): a queued job
whose message is neither in a queue nor taken is gone from the broker (see ``recovery.py``).

RabbitMQ gives a dead consumer's messages back by itself, so only the second question
is asked of it (:class:`AmqpDeliveries`): a passive queue declare counts the messages
waiting, and Celery's own ``inspect`` (``reserved``, then ``active``) names the messages
workers hold. A worker that does not answer in time (frozen, partitioned) counts as
holding nothing: its job goes out again, and the message it holds is stale by then.

Only messages still unacknowledged are read, so the cost follows the work in flight
(with late acks: running jobs and messages in transit), not the number of jobs; each
message is decoded once. Late acks stay on for this reason: a message acked on receipt
would leave no trace once its taker died, and on RabbitMQ they are what returns a dead
consumer's messages.
"""

from __future__ import annotations

import base64
import json
import logging
import time
from dataclasses import dataclass
from typing import Any, Protocol

import redis
from kombu.serialization import loads

from ..store.redis import as_text, translated
from .messages import TASK_NAME
from .metrics import PRIORITY_LISTS

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Delivery:
    """One taken, unacknowledged ``wasmjob.run`` message: its tag, job, dispatch and when it was taken."""

    tag: str
    job_id: str
    dispatch: int
    taken_at: float


class BrokerDeliveries(Protocol):
    """What the sweep asks a broker: which messages workers took and hold, and how many wait in a queue."""

    # True: the broker itself gives back a dead consumer's messages (no unclaimed-take check needed)
    redelivers_dead_consumers: bool

    def held(self) -> list[Delivery]: ...

    def waiting(self, queues: list[str]) -> dict[str, int]: ...

    def forget(self, tags: list[str]) -> None: ...


class UnackedDeliveries:
    """Reads kombu's unacked hash and index, and queue lengths, on the broker's Redis; takes the
    client, both key names and the transport's key prefix."""

    redelivers_dead_consumers = False

    def __init__(
        self, client: redis.Redis, *, hash_key: str = "unacked", index_key: str = "unacked_index", key_prefix: str = ""
    ) -> None:
        self.client = client
        self.hash_key = hash_key
        self.index_key = index_key
        self.key_prefix = key_prefix  # the transport's global_keyprefix, which queue lists carry too
        # tag -> parsed delivery (None: not a wasmjob.run message); parsed once, dropped once acked
        self._parsed: dict[str, Delivery | None] = {}

    @classmethod
    def for_transport(cls, client: redis.Redis, options: dict[str, Any]) -> UnackedDeliveries:
        """The unacked keys of a kombu Redis transport configured with ``options``."""
        prefix = options.get("global_keyprefix", "") or ""
        return cls(
            client,
            hash_key=prefix + options.get("unacked_key", "unacked"),
            index_key=prefix + options.get("unacked_index_key", "unacked_index"),
            key_prefix=prefix,
        )

    def held(self) -> list[Delivery]:
        """``wasmjob.run`` messages taken and not acknowledged yet, with when each was taken."""
        with translated():
            rows: list[tuple[bytes, float]] = self.client.zrange(self.index_key, 0, -1, withscores=True)  # type: ignore[assignment]
            taken = {as_text(tag): float(score) for tag, score in rows}
            unknown = [t for t in taken if t not in self._parsed]
            payloads: list[Any] = list(self.client.hmget(self.hash_key, unknown)) if unknown else []
        for tag, payload in zip(unknown, payloads):
            self._parsed[tag] = parse(tag, payload, taken[tag])
        tags = list(taken)
        live = set(tags)
        for tag in [t for t in self._parsed if t not in live]:
            del self._parsed[tag]
        return [d for d in (self._parsed[t] for t in tags) if d is not None]

    def waiting(self, queues: list[str]) -> dict[str, int]:
        """Messages waiting in each queue, all priorities (kombu's Redis transport keeps a list per
        priority step): one pipelined LLEN per list."""
        if not queues:
            return {}
        with translated():
            pipe = self.client.pipeline(transaction=False)
            for queue in queues:
                for suffix in PRIORITY_LISTS:
                    pipe.llen(self.key_prefix + queue + suffix)
            lengths = pipe.execute()
        steps = len(PRIORITY_LISTS)
        return {queue: sum(lengths[i * steps:(i + 1) * steps]) for i, queue in enumerate(queues)}

    def forget(self, tags: list[str]) -> None:
        """Drop parked messages that can only be stale now (their job moved to a later dispatch)."""
        if not tags:
            return
        with translated():
            pipe = self.client.pipeline(transaction=True)
            pipe.zrem(self.index_key, *tags)
            pipe.hdel(self.hash_key, *tags)
            pipe.execute()
        for tag in tags:
            self._parsed.pop(tag, None)


class AmqpDeliveries:
    """A RabbitMQ broker seen by the sweep through the Celery app: passive declares for queue depth,
    ``inspect`` (waiting ``timeout`` seconds for answers) for the messages workers hold."""

    redelivers_dead_consumers = True

    def __init__(self, app: Any, *, timeout: float = 1.0) -> None:
        self.app = app
        self.timeout = timeout

    def held(self) -> list[Delivery]:
        """``wasmjob.run`` messages the answering workers hold, reserved or running, dated now
        (RabbitMQ keeps no time of a take). Reserved is asked first, so a message that starts
        to run in between is seen in one of the two answers."""
        inspect = self.app.control.inspect(timeout=self.timeout)
        now = time.time()
        held: list[Delivery] = []
        for ask in (inspect.reserved, inspect.active):
            for worker, requests in (ask() or {}).items():
                for request in requests or []:
                    delivery = from_request(f"{worker}/{request.get('id')}", request, now)
                    if delivery is not None:
                        held.append(delivery)
        return held

    def waiting(self, queues: list[str]) -> dict[str, int]:
        """Messages ready in each queue (a passive declare; a queue that is gone holds none). When the
        broker cannot be asked, every queue counts as busy, so nothing is taken for lost."""
        counts: dict[str, int] = {}
        try:
            with self.app.connection_for_write() as conn:
                for queue in queues:
                    try:
                        with conn.channel() as channel:  # a missing queue closes the channel, not the connection
                            counts[queue] = int(channel.queue_declare(queue=queue, passive=True).message_count)
                    except conn.channel_errors:
                        counts[queue] = 0
        except Exception as exc:
            log.warning("cannot count the broker's queues (%s); no message is taken for lost this round", exc)
            return {queue: 1 for queue in queues}
        return counts

    def forget(self, tags: list[str]) -> None:
        """Nothing is parked: RabbitMQ drops a stale message when its holder acks it."""


def from_request(tag: str, request: dict[str, Any], taken_at: float) -> Delivery | None:
    """The job and dispatch of one request a worker reported (``inspect reserved/active``)."""
    # ``type`` is the task; ``name`` is its shadow (``extension/job``) as Flower shows it
    if request.get("type", request.get("name")) != TASK_NAME or not isinstance(request.get("kwargs"), dict):
        return None
    kwargs = request["kwargs"]
    job_id = kwargs.get("job_id") or request.get("id")
    dispatch = kwargs.get("dispatch", 0)
    if not isinstance(job_id, str) or not isinstance(dispatch, int):
        return None
    return Delivery(tag, job_id, dispatch, taken_at)


def parse(tag: str, payload: bytes | str | None, taken_at: float) -> Delivery | None:
    """The job and dispatch of one unacked entry (``[message, exchange, routing_key]`` as JSON)."""
    if payload is None:
        return None
    try:
        message = json.loads(payload)[0]
        headers = message.get("headers") or {}
        if headers.get("task") != TASK_NAME:
            return None
        body = message["body"]
        if (message.get("properties") or {}).get("body_encoding") == "base64":
            body = base64.b64decode(body)
        decoded = loads(body, message.get("content-type"), message.get("content-encoding") or "utf-8",
                        accept={"application/x-msgpack", "application/json"})
        kwargs = decoded[1] if isinstance(decoded, (list, tuple)) else decoded.get("kwargs", {})
        job_id = kwargs.get("job_id") or headers.get("id")
        dispatch = kwargs.get("dispatch", 0)
        if not isinstance(job_id, str) or not isinstance(dispatch, int):
            return None
        return Delivery(tag, job_id, dispatch, float(taken_at))
    except Exception as exc:  # a message we cannot read is not ours to recover
        log.debug("unacked message %s unreadable: %s", tag, exc)
        return None
