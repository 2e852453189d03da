"""A chaos run: many jobs on a small fleet of its own while workers are SIGKILLed, one is
SIGSTOPped past its lease, one gets SIGTERM and the job store's Redis restarts.

Used by the chaos tests of each broker. Each fleet has its own key prefix and queue, so
the session's fleet never sees its jobs. :class:`ChaosRun` records what it did and what
it found: jobs, kills, lost and duplicated jobs, and how long each killed worker's job
took to be queued again (from the kill to its ``lost`` or ``redispatched`` event).
"""

from __future__ import annotations

import os
import random
import signal
import statistics
import time
from dataclasses import dataclass, field
from typing import Any

from modules import SPIN, ticker_params, ticker_result

DEBUG = bool(os.environ.get("WASMJOB_CHAOS_DEBUG"))


def start_fleet(base: Any, name: str, env: dict[str, str], workers: int) -> Any:
    """A fleet like the session's (same Redis), with its own prefix, queue, env and workers."""
    from wasmjob.broker_config import Settings
    from wasmjob.client import Client
    from harness.procs import LocalWorker

    full = {**base.env, "WASMJOB_PREFIX": f"chaos-{name}", "WASMJOB_QUEUE": f"chaos-{name}", **env}
    settings = Settings.from_env(full)
    fleet = type(base)(base.redis, full, settings, Client(settings=settings), base.tmp / f"chaos-{name}")
    for i in range(workers):
        worker = f"{name}{i}"
        fleet.workers[worker] = LocalWorker(worker, full, fleet.tmp / f"{worker}.log", queues=settings.queue).start()
    for w in fleet.workers.values():
        w.wait_ready(60)
    return fleet


def stop_fleet(fleet: Any) -> None:
    for w in fleet.workers.values():
        w.stop(timeout=5)
    fleet.client.close()


@dataclass
class ChaosRun:
    """One chaos run over ``fleet``; :meth:`run` submits, disrupts, waits and checks."""

    fleet: Any
    ext: str
    jobs: int = 40
    seed: int = 11
    kills: int = 0
    stops: int = 0
    terms: int = 0
    restarts: int = 0
    recoveries: list[float] = field(default_factory=list)
    lost: list[str] = field(default_factory=list)
    duplicated: list[str] = field(default_factory=list)
    wrong: list[str] = field(default_factory=list)
    last_victim: str = ""
    redispatched: int = 0
    _disrupted: list[tuple[float, str, int]] = field(default_factory=list)  # (when, job id, dispatch)

    def run(self, deadline: float = 100.0) -> None:
        rng = random.Random(self.seed)
        fleet, client = self.fleet, self.fleet.client
        targets = [rng.randrange(60, 260) for _ in range(self.jobs)]
        plan = ["kill", "stop", "kill", "restart", "kill", "term", "kill"]
        # jobs go out in waves, one before each disruption, so there is running work to disrupt
        # however fast the machine is
        waves = [targets[i::len(plan)] for i in range(len(plan))]
        handles: list[Any] = []
        start = time.monotonic()
        end = start + deadline
        for action, wave in zip(plan, waves):
            handles += [client.submit(self.ext, "tick", ticker_params(t, SPIN)) for t in wave]
            victim = self._busy_worker(handles, end)
            if victim is None:
                break
            name, rec = victim
            t0 = time.monotonic()
            getattr(self, "_" + action)(fleet.workers[name], rec)
            self.last_victim = name
            if DEBUG:
                statuses = [h.record().status for h in handles]
                print(f"{time.monotonic() - start:.1f}s {action} {name} took {time.monotonic() - t0:.1f}s;",
                      {s: statuses.count(s) for s in set(statuses)}, flush=True)
        targets = [t for wave in waves for t in wave][: len(handles)]
        records = [h.wait(max(5.0, end - time.monotonic())) for h in handles]
        for h, rec, target in zip(handles, records, targets):
            done = [e["event"] for e in h.events()].count("completed")
            if rec.status != "completed":
                self.lost.append(f"{h.id}: {rec.status} {rec.error or rec.last_error}")
            elif done != 1:
                self.duplicated.append(f"{h.id}: completed {done} times")
            elif rec.result != ticker_result(target, SPIN):
                self.wrong.append(h.id)
        self._measure(handles)

    def dead_workers(self) -> list[str]:
        """Workers that are not running, apart from the last one this run took down on purpose."""
        return [n for n, w in self.fleet.workers.items() if not w.alive and n != self.last_victim]

    # disruptions ------------------------------------------------------------------------

    def _busy_worker(self, handles: list[Any], end: float) -> tuple[str, Any] | None:
        """A worker that runs a job with a checkpoint now, and that job's record."""
        while time.monotonic() < end:
            self.fleet.ensure_workers()
            for h in handles:
                rec = h.record()
                if rec.status == "running" and rec.worker and rec.checkpoints >= 1:
                    return rec.worker.split("@", 1)[0], rec
            if all(h.record().done for h in handles):
                return None
            time.sleep(0.05)
        return None

    def _note(self, rec: Any) -> None:
        self._disrupted.append((time.time(), rec.id, rec.dispatch))

    def _kill(self, worker: Any, rec: Any) -> None:
        worker.kill()
        self._note(rec)
        self.kills += 1

    def _stop(self, worker: Any, rec: Any) -> None:
        """SIGSTOP past the lease: another worker must take over, the frozen run must write nothing."""
        worker.signal(signal.SIGSTOP)
        self._note(rec)
        self.stops += 1
        until = time.monotonic() + 10 * self.fleet.settings.lease_ttl
        handle = self.fleet.client.job(rec.id)
        while time.monotonic() < until and handle.record().dispatch == rec.dispatch:
            time.sleep(0.05)
        worker.signal(signal.SIGCONT)

    def _term(self, worker: Any, rec: Any) -> None:
        self._note(rec)
        worker.stop(timeout=15)
        self.terms += 1

    def _restart(self, worker: Any, rec: Any) -> None:
        self.fleet.redis.restart(downtime=0.3)
        self.restarts += 1

    # figures ----------------------------------------------------------------------------

    def _measure(self, handles: list[Any]) -> None:
        by_id = {h.id: h for h in handles}
        self.redispatched = sum(e["event"] == "redispatched" for h in handles for e in h.events())
        for when, job_id, dispatch in self._disrupted:
            for e in by_id[job_id].events():
                if e["ts"] >= when - 0.01 and e["event"] in ("lost", "redispatched", "continued", "retrying"):
                    self.recoveries.append(e["ts"] - when)
                    break

    def figures(self, broker: str) -> str:
        r = sorted(self.recoveries)
        spread = f"{r[0]:.2f}/{statistics.median(r):.2f}/{r[-1]:.2f}s" if r else "n/a"
        return (
            f"chaos[{broker}]: jobs={self.jobs} kills={self.kills} sigstop={self.stops} sigterm={self.terms} "
            f"redis_restarts={self.restarts} lost={len(self.lost)} duplicated={len(self.duplicated)} "
            f"wrong={len(self.wrong)} unclaimed_redispatches={self.redispatched} requeued_after_disruption min/median/max={spread} (n={len(r)})"
        )


def record_figures(line: str) -> None:
    """Print a run's figures, and append them to ``$WASMJOB_CHAOS_FIGURES`` when set (repeated runs)."""
    print("\n" + line)
    path = os.environ.get("WASMJOB_CHAOS_FIGURES")
    if path:
        with open(path, "a") as out:
            out.write(line + "\n")


def rabbitmq_vhost(name: str) -> str | None:
    """A fresh RabbitMQ vhost on 127.0.0.1:5672 (guest may use it); None when RabbitMQ is not there."""
    import shutil
    import socket
    import subprocess

    try:
        socket.create_connection(("127.0.0.1", 5672), timeout=1).close()
    except OSError:
        return None
    ctl = shutil.which("rabbitmqctl") or "/usr/sbin/rabbitmqctl"
    if not os.path.exists(ctl):
        return "/"  # no rabbitmqctl: the default vhost, with queue names of our own
    def run(*args: str) -> None:
        subprocess.run([ctl, *args], check=True, capture_output=True, timeout=60)
    try:
        subprocess.run([ctl, "delete_vhost", name], capture_output=True, timeout=60)
        run("add_vhost", name)
        run("set_permissions", "-p", name, "guest", ".*", ".*", ".*")
    except (OSError, subprocess.SubprocessError):
        return "/"
    return name


def drop_rabbitmq_vhost(name: str) -> None:
    import shutil
    import subprocess

    if name != "/":
        subprocess.run([shutil.which("rabbitmqctl") or "rabbitmqctl", "delete_vhost", name], capture_output=True, timeout=60)
