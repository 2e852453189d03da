"""Prometheus metrics of a whole fleet, read from Redis at scrape time (no multiprocess mode).

Fleet-wide numbers already live in Redis, kept by the scripts that end each run: the usage
ledger per extension and tenant (runs by outcome, fuel, wall and CPU seconds, peak memory)
and the sets behind running and waiting jobs. What only a worker process knows (module-cache
hits, compiles and compile time, writes Redis refused) it adds to one hash, ``{p}:metrics``,
after a run, and only when something changed: never per host call, and warm runs add nothing.
:class:`FleetCollector` turns one pipelined read of all that into metric families, so any
process (``wasmjob metrics``, ``wasmjob metrics --serve PORT``) can expose the fleet's numbers.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily
from prometheus_client.registry import Collector

from ..store.redis import as_text, translated

if TYPE_CHECKING:
    from .context import Fleet

# Redis transport: a queue's messages at priority steps 3, 6 and 9 sit in lists of their own
PRIORITY_LISTS = ("", "\x06\x163", "\x06\x166", "\x06\x169")
# usage-ledger fields that count runs, by the outcome Prometheus names them with
RUN_OUTCOMES = {
    "completed": "completed", "failed": "failed", "cancelled": "cancelled", "paused": "paused",
    "continued": "continued", "abandoned": "lease_lost",
}
PROCESS_FIELDS = ("cache_memory_hits", "cache_disk_hits", "compiles", "compile_seconds", "refused_writes", "recoveries")


class FleetCollector(Collector):
    """Collects the fleet's metrics from Redis on every scrape; takes the Fleet and its queues."""

    def __init__(self, fleet: Fleet, queues: tuple[str, ...] | None = None) -> None:
        self.fleet = fleet
        self.queues = queues or (fleet.settings.queue,)

    def collect(self) -> Iterator[Any]:
        keys, client = self.fleet.keys, self.fleet.client
        settings = self.fleet.settings
        # queue lists are readable here only when the broker is this same Redis
        queues = self.queues if settings.broker == settings.redis_url else ()
        with translated():
            members = sorted(as_text(m) for m in client.smembers(keys.usage_index))
            ext_ids = sorted(as_text(e) for e in client.smembers(keys.ext_ids))
            pipe = client.pipeline(transaction=False)
            for member in members:
                ext_id, _, tenant = member.partition("|")
                pipe.hgetall(keys.usage(ext_id, tenant))
            for ext_id in ext_ids:
                pipe.zcard(keys.ext_running(ext_id))
                pipe.zcard(keys.ext_waiting(ext_id))
            for queue in queues:
                for suffix in PRIORITY_LISTS:
                    pipe.llen(queue + suffix)
            pipe.scard(keys.active)
            pipe.zcard(keys.outbox)
            pipe.hgetall(keys.metrics)
            replies = pipe.execute()
        usage, replies = replies[: len(members)], replies[len(members):]
        slots, replies = replies[: 2 * len(ext_ids)], replies[2 * len(ext_ids):]
        depths, (active, outbox, process) = replies[: -3], replies[-3:]
        yield from self._usage(members, usage)
        jobs = GaugeMetricFamily("wasmjob_jobs", "Jobs holding or waiting for a slot, by extension", labels=["extension", "status"])
        for i, ext_id in enumerate(ext_ids):
            jobs.add_metric([ext_id, "running"], slots[2 * i])
            jobs.add_metric([ext_id, "waiting"], slots[2 * i + 1])
        yield jobs
        yield GaugeMetricFamily("wasmjob_jobs_running", "Jobs running now, fleet-wide", value=active)
        depth = GaugeMetricFamily("wasmjob_queue_depth", "Messages waiting in a broker queue (all priorities)", labels=["queue"])
        for i, queue in enumerate(queues):
            depth.add_metric([queue], sum(depths[i * len(PRIORITY_LISTS): (i + 1) * len(PRIORITY_LISTS)]))
        yield depth
        yield GaugeMetricFamily("wasmjob_outbox_entries", "Jobs whose next message is due or delayed (retries, waits)", value=outbox)
        yield from self._process({as_text(k): float(v) for k, v in process.items()})

    def _usage(self, members: list[str], rows: list[dict[Any, Any]]) -> Iterator[Any]:
        labels = ["extension", "tenant"]
        runs = CounterMetricFamily("wasmjob_runs", "Runs of jobs by how they ended", labels=[*labels, "outcome"])
        jobs = CounterMetricFamily("wasmjob_jobs_finished", "Jobs that ended in a run, by status", labels=[*labels, "status"])
        fuel = CounterMetricFamily("wasmjob_fuel", "Fuel units consumed (0 for runs without fuel metering)", labels=labels)
        wall = CounterMetricFamily("wasmjob_run_wall_seconds", "Wall-clock seconds of runs", labels=labels)
        cpu = CounterMetricFamily("wasmjob_run_cpu_seconds", "Thread CPU seconds of runs", labels=labels)
        peak = GaugeMetricFamily("wasmjob_run_peak_memory_bytes", "Largest linear memory one run used", labels=labels)
        losses = CounterMetricFamily("wasmjob_lease_losses", "Runs that lost their lease (billed as abandoned)", labels=labels)
        for member, raw in zip(members, rows):
            ext_id, _, tenant = member.partition("|")
            h = {as_text(k): as_text(v) for k, v in raw.items()}
            for field_name, outcome in RUN_OUTCOMES.items():
                runs.add_metric([ext_id, tenant, outcome], float(h.get(field_name, 0)))
            for status in ("completed", "failed", "cancelled"):
                jobs.add_metric([ext_id, tenant, status], float(h.get(status, 0)))
            fuel.add_metric([ext_id, tenant], float(h.get("fuel", 0)))
            wall.add_metric([ext_id, tenant], float(h.get("wall_seconds", 0)))
            cpu.add_metric([ext_id, tenant], float(h.get("cpu_seconds", 0)))
            peak.add_metric([ext_id, tenant], float(h.get("peak_memory", 0)))
            losses.add_metric([ext_id, tenant], float(h.get("abandoned", 0)))
        yield from (runs, jobs, fuel, wall, cpu, peak, losses)

    def _process(self, h: dict[str, float]) -> Iterator[Any]:
        yield CounterMetricFamily("wasmjob_recoveries", "Jobs the sweep took back from a lost worker", value=h.get("recoveries", 0))
        yield CounterMetricFamily(
            "wasmjob_refused_writes", "Checkpoint, progress or finish writes Redis refused (stale lease)",
            value=h.get("refused_writes", 0),
        )
        hits = CounterMetricFamily("wasmjob_module_cache_hits", "Compiled modules found in a cache", labels=["tier"])
        hits.add_metric(["memory"], h.get("cache_memory_hits", 0))
        hits.add_metric(["disk"], h.get("cache_disk_hits", 0))
        yield hits
        yield CounterMetricFamily("wasmjob_module_compiles", "Modules compiled (cache misses)", value=h.get("compiles", 0))
        yield CounterMetricFamily(
            "wasmjob_module_compile_seconds", "Seconds spent compiling modules", value=h.get("compile_seconds", 0)
        )


def exposition(fleet: Fleet, queues: tuple[str, ...] | None = None) -> bytes:
    """The fleet's metrics in Prometheus's text format, read now."""
    registry = CollectorRegistry(auto_describe=False)
    registry.register(FleetCollector(fleet, queues))
    return generate_latest(registry)


def serve(fleet: Fleet, port: int, addr: str = "0.0.0.0", queues: tuple[str, ...] | None = None) -> Any:
    """Serve ``/metrics`` on ``addr:port`` from a daemon thread; returns (server, thread)."""
    from prometheus_client import start_http_server

    registry = CollectorRegistry(auto_describe=False)
    registry.register(FleetCollector(fleet, queues))
    return start_http_server(port, addr=addr, registry=registry)


class ProcessCounters:
    """What one worker process adds to ``{p}:metrics``: the part of its counters not yet added."""

    def __init__(self) -> None:
        self.added = dict.fromkeys(PROCESS_FIELDS, 0.0)
        self._lock = threading.Lock()

    def flush(self, fleet: Fleet, current: dict[str, float]) -> None:
        """Add what grew since the last flush, in one round trip; nothing when nothing grew."""
        with self._lock:
            delta = {k: v - self.added.get(k, 0.0) for k, v in current.items() if v > self.added.get(k, 0.0)}
            if not delta:
                return
            try:
                with translated():
                    pipe = fleet.client.pipeline(transaction=False)
                    for name, value in delta.items():
                        if name == "compile_seconds":
                            pipe.hincrbyfloat(fleet.keys.metrics, name, value)
                        else:
                            pipe.hincrby(fleet.keys.metrics, name, int(value))
                    pipe.execute()
            except Exception:  # metrics must never change a job's outcome; added next time
                return
            self.added.update({k: self.added.get(k, 0.0) + v for k, v in delta.items()})


def add_counter(fleet: Fleet, name: str, amount: int = 1) -> None:
    """Add to one fleet-wide counter right away (for rare events: a recovery)."""
    try:
        with translated():
            fleet.client.hincrby(fleet.keys.metrics, name, amount)
    except Exception:
        pass
