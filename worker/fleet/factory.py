"""The fleet's Celery app: configured from :class:`wasmjob.broker_config.Settings`, with ``wasmjob.run``
registered by name and the worker hooks (per-process runtime, recovery sweep, graceful stop)."""

from __future__ import annotations

import logging
import os

from typing import Any

from celery import Celery, signals
from celery.app.amqp import AMQP

from wasmjob.broker_config import Settings, celery_config

from ..errors import StoreUnavailable
from ..policy import connection_warnings
from ..store.redis import connect
from .context import Fleet
from .deliveries import AmqpDeliveries, BrokerDeliveries, UnackedDeliveries
from .dispatch import Dispatcher
from .messages import TASK_NAME, TASK_OPTIONS
from .process import WorkerProcess
from .publish import PUBLISH_TASK, publish
from .recovery import Sweeper
from .logformat import install as install_log_format
from .revoke import install as install_revoke
from .task import EXPECTED_ERRORS, run

log = logging.getLogger(__name__)
# a queued job waits this many lease TTLs before the sweep checks its message still exists
LOST_AFTER_TTLS = 3


class FleetAMQP(AMQP):
    """Celery's message builder, except that a message's ``task-sent`` event carries its shadow
    name (``extension/job``) as Celery's ``task-received`` event already does: Flower keeps the
    name of whichever event arrives last, and the two race."""

    def as_task_v2(self, *args: Any, **kwargs: Any) -> Any:
        message = super().as_task_v2(*args, **kwargs)
        shadow = message.headers.get("shadow")
        if shadow and message.sent_event is not None:
            message.sent_event["name"] = shadow
        return message


class FleetApp(Celery):
    """A Celery app of a wasmjob fleet; takes the fleet's Settings."""

    amqp_cls = f"{__name__}:FleetAMQP"

    def __init__(self, fleet_settings: Settings, *, set_as_current: bool = False) -> None:
        super().__init__("wasmjob", set_as_current=set_as_current)
        self.fleet_settings = fleet_settings
        self.config_from_object(celery_config(fleet_settings).as_dict())
        self._fleet: Fleet | None = None
        self._process: WorkerProcess | None = None
        self._sweeper: Sweeper | None = None
        # No backend writes by the task: the script that ends a job writes Celery's result of the
        # submitter's task id (task.py says what the task reports instead); JobFailed and a
        # rejected message are expected outcomes, logged without a traceback.
        self.task(
            name=TASK_NAME, bind=True, typing=False, ignore_result=True, throws=EXPECTED_ERRORS, **TASK_OPTIONS
        )(run)
        self.task(name=PUBLISH_TASK, bind=True, typing=False)(publish)

    def fleet(self) -> Fleet:
        """The Redis-side objects of this process (no connection until used)."""
        if self._fleet is None:
            self._fleet = Fleet(self.fleet_settings)
        return self._fleet

    def worker_process(self) -> WorkerProcess:
        """This process's runtime and caches, made on first use (or at ``worker_process_init``)."""
        if self._process is None or self._process.pid != os.getpid():
            self._process = WorkerProcess(self.fleet_settings, Fleet(self.fleet_settings))
        return self._process

    def dispatcher(self) -> Dispatcher:
        fleet = self._process.fleet if self._process and self._process.pid == os.getpid() else self.fleet()
        return Dispatcher(self, fleet)

    def broker_deliveries(self) -> BrokerDeliveries:
        """What the sweep asks the broker: kombu's unacked hash and queue lists on Redis; passive
        declares and ``inspect`` on RabbitMQ (which gives a dead consumer's messages back itself)."""
        settings = self.fleet_settings
        if not settings.broker_is_redis:
            return AmqpDeliveries(self)
        url = settings.broker
        client = self.fleet().client if url == settings.redis_url else connect(url, sentinel_master=settings.sentinel_master)
        return UnackedDeliveries.for_transport(client, dict(self.conf.broker_transport_options or {}))

    # worker hooks (connected by create_app) ------------------------------------------------

    def on_worker_ready(self, hostname: str) -> None:
        """Main process: clear a stale stopping marker, publish the policy, start the recovery sweep."""
        fleet = self.fleet()
        try:
            fleet.client.delete(fleet.keys.worker_stopping(hostname))
        except Exception as exc:  # Redis may still be starting; the sweep retries on its own
            log.warning("cannot clear the stopping marker of %s: %s", hostname, exc)
        try:
            fleet.publish_policy(hostname)
        except Exception as exc:  # producers fall back to their own policy; workers still enforce this one
            log.warning("cannot publish %s's policy: %s", hostname, exc)
        settings = self.fleet_settings
        for warning in connection_warnings(settings.redis_url, settings.ssl_cert_reqs):
            log.warning("insecure: %s", warning)
        self._sweeper = Sweeper(
            fleet, Dispatcher(self, fleet), hostname, settings.sweep_interval,
            deliveries=self.broker_deliveries(), claim_grace=settings.lease_ttl,
            lost_after=LOST_AFTER_TTLS * settings.lease_ttl,
        )
        self._sweeper.start()
        log.info(
            "wasmjob worker %s ready: lease TTL %gs, sweep every %gs, slices of %gs",
            hostname, self.fleet_settings.lease_ttl, self.fleet_settings.sweep_interval, self.fleet_settings.slice_seconds,
        )

    def on_worker_stopping(self, hostname: str) -> None:
        """Main process: ask running jobs to checkpoint and move on; stop sweeping."""
        fleet = self.fleet()
        try:
            fleet.client.set(fleet.keys.worker_stopping(hostname), "1", ex=300)
        except Exception as exc:
            log.warning("cannot tell %s's jobs to stop: %s", hostname, exc)
        if self._sweeper is not None:
            self._sweeper.stop()
            self._sweeper = None


def create_app(settings: Settings | None = None, *, set_as_current: bool = False) -> FleetApp:
    """A fleet app from ``settings`` (``Settings.from_env()`` when omitted)."""
    app = FleetApp(settings or Settings.from_env(), set_as_current=set_as_current)
    uid = f"wasmjob-{id(app)}"
    install_revoke()
    install_log_format(app.fleet_settings.log_format)

    def process_init(**_: object) -> None:
        if _is_current(app):
            try:
                app.worker_process()
            except StoreUnavailable as exc:
                log.warning("worker process starts without Redis: %s", exc.reason)

    def process_shutdown(**_: object) -> None:
        if _is_current(app) and app._process is not None:
            app._process.close()

    def ready(sender: object = None, **_: object) -> None:
        if getattr(sender, "app", None) is app:
            app.on_worker_ready(getattr(sender, "hostname", None) or "worker")

    def shutting_down(sender: object = None, **_: object) -> None:
        if _is_current(app):
            app.on_worker_stopping(str(sender))

    signals.worker_process_init.connect(process_init, weak=False, dispatch_uid=uid + "-init")
    signals.worker_process_shutdown.connect(process_shutdown, weak=False, dispatch_uid=uid + "-exit")
    signals.worker_ready.connect(ready, weak=False, dispatch_uid=uid + "-ready")
    signals.worker_shutting_down.connect(shutting_down, weak=False, dispatch_uid=uid + "-stop")
    return app


def _is_current(app: Celery) -> bool:
    from celery import current_app

    return current_app._get_current_object() is app  # type: ignore[attr-defined]
