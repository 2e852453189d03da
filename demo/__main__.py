"""``python -m demo``: a wasmjob fleet on this machine, a worker killed mid-job, and nothing lost.

1. Uses the Redis at ``WASMJOB_REDIS_URL`` if one answers (and says so), under its own
   key prefix and queue, and removes every key it made there at the end (its jobs'
   records and Celery's queue, bindings and task results); else starts a private
   ``redis-server`` on a free port in a temp dir (AOF on).
2. Starts two workers (``celery -A wasmjob.fleet.app worker``), registers the
   counter extension, and submits two counter jobs with live progress bars.
3. SIGKILLs the worker running job A mid-way: A resumes on the other worker
   from its last checkpoint and completes with exactly the uninterrupted result.
4. Pauses job B, then resumes it from its checkpoint.
5. Prints a summary (with the time to recover) and stops every process it started.

``--fleet`` runs steps 2 and 4 on an existing fleet instead (docker compose).
"""

from __future__ import annotations

import argparse
import os
import secrets
import signal
import sys
import tempfile
import time
from pathlib import Path
from types import FrameType
from typing import Any

from rich.console import Console
from rich.progress import BarColumn, Progress, TaskID, TaskProgressColumn, TextColumn, TimeElapsedColumn
from rich.table import Table

from wasmjob.broker_config import DEFAULT_REDIS_URL, Settings
from wasmjob.errors import WasmJobError

ROOT = Path(__file__).resolve().parents[1]
COUNTER = ROOT / "extensions" / "counter"
LEASE_TTL = 3.0
console = Console(stderr=True)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m demo", description=__doc__.split("\n")[0])
    parser.add_argument("--fleet", action="store_true", help="use the running fleet's workers; kill nothing")
    parser.add_argument("--target", type=int, default=24000, help="how far each counter job counts (default 24000)")
    args = parser.parse_args(argv)
    signal.signal(signal.SIGTERM, _raise_interrupt)
    try:
        with Demo(fleet_mode=args.fleet) as demo:
            return demo.run(args.target)
    except KeyboardInterrupt:
        console.print("[yellow]interrupted: stopped every process the demo started[/]")
        return 130
    except WasmJobError as exc:
        console.print(f"[red]demo: error: {exc}[/]")
        return 1


def _raise_interrupt(signum: int, frame: FrameType | None) -> None:
    raise KeyboardInterrupt


class Demo:
    """Sets up (and tears down) Redis and workers, then tells the story with progress bars."""

    def __init__(self, *, fleet_mode: bool) -> None:
        self.fleet_mode = fleet_mode
        self.tmp = Path(tempfile.mkdtemp(prefix="wasmjob-demo-"))
        self.redis: Any = None
        self.workers: dict[str, Any] = {}
        self.client: Any = None
        self.env: dict[str, str] = {}
        self.job_ids: list[str] = []

    # set-up and clean-up -------------------------------------------------------------

    def __enter__(self) -> Demo:
        from wasmjob.client import Client
        from harness.procs import LocalRedis, LocalWorker, redis_reachable

        url = os.environ.get("WASMJOB_REDIS_URL") or DEFAULT_REDIS_URL
        if redis_reachable(url):
            shared = "" if self.fleet_mode else "; the demo keeps to its own key prefix and queue there and removes them at the end"
            console.print(f"Redis: using the one already running at {_redact(url)} (WASMJOB_REDIS_URL){shared}")
        elif self.fleet_mode:
            raise WasmJobError(f"no Redis answers at {_redact(url)}; start the fleet first (docker compose up -d)")
        else:
            self.redis = LocalRedis(self.tmp / "redis").start()
            url = self.redis.url
            console.print(f"Redis: none reachable, started a private redis-server on port {self.redis.port} in {self.tmp}")
        run = secrets.token_hex(3)
        self.env = {"WASMJOB_REDIS_URL": url}
        if not self.fleet_mode:
            # our own key prefix and queue, so a Redis shared with a real fleet is left alone
            self.env |= {
                "WASMJOB_PREFIX": f"wasmjob-demo-{run}",
                "WASMJOB_QUEUE": f"wasmjob-demo-{run}",
                "WASMJOB_LEASE_TTL": str(LEASE_TTL),
                "WASMJOB_SWEEP_INTERVAL": "0.5",
                "WASMJOB_CACHE_DIR": str(self.tmp / "module-cache"),
            }
            for name in ("alpha", "beta"):
                self.workers[name] = LocalWorker(
                    name, self.env, self.tmp / f"{name}.log", concurrency=2, queues=self.env["WASMJOB_QUEUE"]
                ).start()
            for w in self.workers.values():
                w.wait_ready()
            console.print(f"Workers: alpha and beta (2 slots each), lease TTL {LEASE_TTL:g}s; logs in {self.tmp}")
        self.client = Client(settings=Settings.from_env(self.env))
        return self

    def __exit__(self, *exc: object) -> None:
        for w in self.workers.values():
            w.stop(timeout=5)
        if self.client is not None:
            if not self.fleet_mode:
                self._forget_demo_keys()
            self.client.close()
        if self.redis is not None:
            self.redis.stop()

    def _forget_demo_keys(self) -> None:
        if self.redis is not None:
            return  # a private Redis goes away with its temp dir
        forget_keys(self.client.fleet.client, self.env["WASMJOB_PREFIX"], self.env["WASMJOB_QUEUE"], self.job_ids)

    # the story ---------------------------------------------------------------------

    def run(self, target: int) -> int:
        ref = self.client.add_extension(COUNTER)
        console.print(f"Registered [bold]{ref}[/] ({ref.digest[:19]}…, jobs: {', '.join(ref.jobs)})\n")
        targets = {"A": target, "B": target}
        jobs = {"A": self.client.submit("counter", "counter", {"target": targets["A"]})}
        self.job_ids.append(jobs["A"].id)
        self._wait_until(jobs["A"], lambda r: r.status == "running")
        jobs["B"] = self.client.submit("counter", "counter", {"target": targets["B"]})
        self.job_ids.append(jobs["B"].id)
        facts: dict[str, Any] = {}
        with Progress(
            TextColumn("job {task.fields[label]}"),
            BarColumn(),
            TaskProgressColumn(),
            TextColumn("{task.fields[status]:<9} {task.fields[where]:<7} ckpt {task.fields[ckpt]:>5}"),
            TimeElapsedColumn(),
            console=console,
        ) as bars:
            ids = {
                k: bars.add_task(k, total=1.0, label=f"{k} counter→{targets[k]}", status="queued", where="", ckpt=0)
                for k in jobs
            }
            story = Story(self, jobs, bars, ids, facts)
            while not all(j.record().done for j in jobs.values()):
                story.step()
                time.sleep(0.05)
            story.step()
        return self._summary(jobs, targets, facts)

    def _wait_until(self, job: Any, ok: Any, timeout: float = 30) -> Any:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            rec = job.record()
            if ok(rec):
                return rec
            time.sleep(0.02)
        raise WasmJobError(f"job {job.id} stuck in {job.record().status}")

    def _summary(self, jobs: dict[str, Any], targets: dict[str, int], facts: dict[str, Any]) -> int:
        # Fits 80 columns: short headers, no borders, cells cut with an ellipsis rather than wrapped.
        table = Table(title="wasmjob demo: summary", box=None, header_style="bold")
        for column in ("job", "status", "correct", "tries", "ran on", "ckpts", "cpu s", "wall s"):
            table.add_column(column, no_wrap=True, overflow="ellipsis")
        all_ok = True
        for key, job in jobs.items():
            rec = job.record()
            workers: list[str] = []
            for ev in job.events():
                name = ev.get("worker", "").split("@")[0]
                if ev["event"] == "claimed" and (not workers or workers[-1] != name):
                    workers.append(name)
            expected = {"current": targets[key], "target": targets[key],
                        "processed": [f"item_{i}" for i in range(1, targets[key] + 1)]}
            correct = rec.status == "completed" and rec.result == expected
            all_ok &= correct
            table.add_row(
                key, rec.status, "yes" if correct else "[red]NO[/]", str(rec.attempts), " → ".join(workers),
                str(rec.checkpoints), f"{rec.cpu_seconds:.1f}", f"{rec.wall_seconds:.1f}",
            )
        console.print(table)
        if "recovered_in" in facts:
            console.print(
                f"Worker [bold]{facts['killed']}[/] was SIGKILLed with job A at {facts['killed_at_pct']:.0f}%"
                f" (checkpoint {facts['killed_ckpt']}); job A resumed on [bold]{facts['resumed_on']}[/] from"
                f" checkpoint {facts['resumed_from']} after [bold]{facts['recovered_in']:.2f}s[/]"
                f" (lease TTL {LEASE_TTL:g}s; plain Celery would redeliver after its visibility timeout, 1 h by default,"
                " and start over)."
            )
        if "paused_in" in facts:
            console.print(
                f"Job B paused {facts['paused_in'] * 1000:.0f} ms after it was asked, at {facts['paused_pct']:.0f}%;"
                f" resumed from checkpoint {facts['paused_ckpt']}."
            )
        console.print("[green]Every job completed with the uninterrupted result.[/]" if all_ok else "[red]A job did not end as it should.[/]")
        return 0 if all_ok else 1


class Story:
    """One tick of the demo: refresh the bars and do the next scripted thing when it is time."""

    def __init__(self, demo: Demo, jobs: dict[str, Any], bars: Progress, ids: dict[str, TaskID], facts: dict[str, Any]) -> None:
        self.demo, self.jobs, self.bars, self.ids, self.facts = demo, jobs, bars, ids, facts
        self.kill_stage = "run" if not demo.fleet_mode else "done"
        self.pause_stage = "run"

    def say(self, text: str) -> None:
        self.bars.console.print(text)

    def step(self) -> None:
        recs = {k: j.record() for k, j in self.jobs.items()}
        for key, rec in recs.items():
            where = (rec.worker or "").split("@")[0]
            self.bars.update(self.ids[key], completed=rec.progress, status=rec.status, where=where, ckpt=rec.checkpoints)
        self._kill_story(recs["A"], recs["B"])
        self._pause_story(recs["B"])

    def _kill_story(self, a: Any, b: Any) -> None:
        """SIGKILL the worker running job A at 30%; watch A resume elsewhere; restart the worker."""
        if self.kill_stage == "run" and a.status == "running" and a.progress >= 0.3:
            victim = self.demo.workers[a.worker.split("@")[0]]
            victim.kill()
            self.facts["kill_time"] = time.time()
            a = self.jobs["A"].record()  # what the dead worker had saved
            self.facts.update(killed=victim.name, killed_at_pct=a.progress * 100, killed_ckpt=a.checkpoints)
            also = " (and job B with it)" if b.worker and b.worker.startswith(victim.name) else ""
            self.say(f"[red]✗ SIGKILL worker {victim.name}[/] while it runs job A at {a.progress:.0%}{also}")
            self.kill_stage = "recovering"
        elif self.kill_stage == "recovering" and a.status == "running" and not a.worker.startswith(self.facts["killed"]):
            claim = [e for e in self.jobs["A"].events() if e["event"] == "claimed"][-1]
            self.facts.update(
                resumed_on=claim["worker"].split("@")[0], resumed_from=claim["from_checkpoint"],
                recovered_in=claim["ts"] - self.facts["kill_time"],
            )
            self.say(
                f"[green]↻ job A resumed on {self.facts['resumed_on']}[/] from checkpoint {claim['from_checkpoint']}"
                f" after {self.facts['recovered_in']:.2f}s; restarting {self.facts['killed']} to heal the fleet"
            )
            self.demo.workers[self.facts["killed"]].start()
            self.kill_stage = "done"

    def _pause_story(self, b: Any) -> None:
        """Pause job B at 25%, keep it paused a moment, resume it from its checkpoint."""
        if self.pause_stage == "run" and b.status == "running" and b.progress >= 0.25:
            self.facts["pause_asked"] = time.monotonic()
            self.jobs["B"].pause()
            self.say(f"[yellow]⏸ pause job B[/] at {b.progress:.0%}")
            self.pause_stage = "pausing"
        elif self.pause_stage == "pausing" and b.status == "paused":
            self.facts.update(
                paused_in=time.monotonic() - self.facts["pause_asked"], paused_pct=b.progress * 100,
                paused_ckpt=b.checkpoints, paused_at=time.monotonic(),
            )
            self.say(f"[yellow]  job B paused[/] after {self.facts['paused_in'] * 1000:.0f} ms, checkpoint {b.checkpoints}")
            self.pause_stage = "paused"
        elif self.pause_stage == "paused" and time.monotonic() - self.facts["paused_at"] > 2.0:
            self.jobs["B"].resume()
            self.say("[green]▶ resume job B[/] from its checkpoint, on any worker")
            self.pause_stage = "done"


def forget_keys(redis: Any, prefix: str, queue: str, job_ids: list[str]) -> int:
    """Delete what a demo run left in a shared Redis: every key under its prefix, Celery's
    queue (with its priority lists) and binding for its queue, and its tasks' results
    (``celery-task-meta-<job>`` and ``<job>.<dispatch>``). Celery's remote-control binding
    (``celery.pidbox``) stays: every worker on that database shares it. Returns how many keys went."""
    patterns = [f"{prefix}:*", queue, f"{queue}\x06\x16*", f"_kombu.binding.{queue}", f"_kombu.binding_permanent.{queue}"]
    patterns += [f"celery-task-meta-{job_id}*" for job_id in job_ids]
    gone = 0
    try:
        for pattern in patterns:
            keys = list(redis.scan_iter(pattern, count=500))
            if keys:
                gone += redis.delete(*keys)
        # kombu's shared index of binding deadlines: only this queue's entries go.
        deadlines = "_kombu.binding_deadlines"
        ours = [m for m in redis.zrange(deadlines, 0, -1) if queue.encode() in m]
        if ours:
            redis.zrem(deadlines, *ours)
    except Exception as exc:  # the demo's outcome stands; say what could not be cleaned
        console.print(f"[yellow]could not remove the demo's keys ({exc}); they all start with {prefix} or {queue}[/]")
    return gone


def _redact(url: str) -> str:
    from wasmjob.store.redis import redact

    return redact(url)


if __name__ == "__main__":
    sys.exit(main())
