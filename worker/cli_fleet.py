"""Fleet commands of the ``wasmjob`` CLI: workers, Flower, jobs, usage and the extension registry.

``add_commands`` adds them to the main parser (``cli.py``). Output for scripts
goes to stdout (a job id, a result, one JSON object); progress bars and tables
for people go to stderr/stdout as noted. Errors are WasmJobError: one line.
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import sys
from typing import TYPE_CHECKING, Any

from .cli import json_arg
from .errors import WasmJobError

if TYPE_CHECKING:
    from .client import Client
    from .records import JobRecord

APP = "wasmjob.fleet.app"


def add_commands(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    """Add the fleet subcommands; each sets ``func`` to a handler returning an exit code."""
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--redis-url", help="the fleet's Redis (default: $WASMJOB_REDIS_URL or redis://127.0.0.1:6379/0)")

    p = sub.add_parser("worker", parents=[common], help="run a Celery worker of the fleet")
    p.add_argument("-c", "--concurrency", type=int, help="jobs at once (default: CPU count)")
    p.add_argument("-n", "--name", help="node name (default: wasmjob-<pid>@<host>)")
    p.add_argument("-Q", "--queues", help="queues to consume, comma-separated (default: wasmjob)")
    p.add_argument("-P", "--pool", default="prefork", help="Celery pool (default: prefork)")
    p.add_argument("-l", "--loglevel", default="INFO")
    p.add_argument("celery_args", nargs=argparse.REMAINDER, help="more `celery worker` options after --")
    p.set_defaults(func=cmd_worker)

    p = sub.add_parser("flower", parents=[common], help="run Flower, Celery's web monitor, on the fleet")
    p.add_argument("--port", type=int, default=5555)
    p.add_argument("--address", default="127.0.0.1")
    p.add_argument("flower_args", nargs=argparse.REMAINDER, help="more `celery flower` options after --")
    p.set_defaults(func=cmd_flower)

    p = sub.add_parser("submit", parents=[common], help="queue a job; prints its id (with --wait, its result)")
    p.add_argument("extension", help="id, id@version or sha256:<hex> of a registered extension")
    p.add_argument("job", help="job name")
    p.add_argument("--params", help="job parameters as JSON")
    p.add_argument("--tenant", help="tenant/library UUID")
    p.add_argument("--limits", help='per-job limits as JSON, e.g. {"fuel": 1000000000, "slice_seconds": 30}')
    p.add_argument("--queue", help="queue to send to (default: wasmjob)")
    p.add_argument("--priority", type=int, help="0..9, higher first")
    p.add_argument("--wait", action="store_true", help="wait with a progress bar; print the result JSON")
    p.add_argument("--timeout", type=float, help="with --wait: give up after this many seconds")
    p.add_argument("--quiet", action="store_true", help="with --wait: no progress bar")
    p.set_defaults(func=cmd_submit)

    p = sub.add_parser("status", parents=[common], help="show a job")
    p.add_argument("job_id")
    p.add_argument("--json", action="store_true", help="the job record as one JSON object")
    p.set_defaults(func=cmd_status)

    p = sub.add_parser("list", parents=[common], help="list recent jobs")
    p.add_argument("--status", help="only jobs in this status")
    p.add_argument("--limit", type=int, default=50)
    p.add_argument("--cursor", help="continue after a previous page (its cursor is printed on stderr)")
    p.add_argument("--json", action="store_true", help="one JSON object per line")
    p.set_defaults(func=cmd_list)

    p = sub.add_parser("logs", parents=[common], help="a job's log tail and warnings")
    p.add_argument("job_id")
    p.add_argument("--last", type=int, default=200)
    p.add_argument("--events", action="store_true", help="also its lifecycle: claims, losses, resumes")
    p.set_defaults(func=cmd_logs)

    p = sub.add_parser("result", parents=[common], help="a completed job's result as JSON")
    p.add_argument("job_id")
    p.set_defaults(func=cmd_result)

    for action, text in (
        ("pause", "checkpoint and stop a job"),
        ("resume", "queue a paused job again from its checkpoint"),
        ("cancel", "stop a job for good"),
    ):
        p = sub.add_parser(action, parents=[common], help=text)
        p.add_argument("job_id")
        p.set_defaults(func=cmd_control, action=action)

    p = sub.add_parser("usage", parents=[common], help="fuel, wall time and runs per extension and tenant")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_usage)

    p = sub.add_parser("extensions", help="the fleet's extension registry")
    ext_sub = p.add_subparsers(dest="ext_command", required=True)
    q = ext_sub.add_parser("add", parents=[common], help="validate and upload modules (directories or .wasm files)")
    q.add_argument("paths", nargs="+")
    q.add_argument("--key", help="publisher key to sign with (default: $WASMJOB_PUBLISHER_KEY or your config directory)")
    q.set_defaults(func=cmd_extensions_add)
    q = ext_sub.add_parser("list", parents=[common], help="registered extensions: id, versions, jobs, digests")
    q.add_argument("--json", action="store_true")
    q.set_defaults(func=cmd_extensions_list)

    from .cli_publishers import add_commands as add_identity_commands

    add_identity_commands(sub, common)


# processes -----------------------------------------------------------------------------


def cmd_worker(args: argparse.Namespace) -> int:
    cmd = [sys.executable, "-m", "celery", "-A", APP, "worker", "-E", "-P", args.pool, "-l", args.loglevel]
    cmd += ["-n", args.name or f"wasmjob-{os.getpid()}@%h"]
    if args.concurrency:
        cmd += ["-c", str(args.concurrency)]
    if args.queues:
        cmd += ["-Q", args.queues]
    else:
        cmd += ["-Q", _settings(args).queue]
    cmd += _rest(args.celery_args)
    return _exec(cmd, args)


def cmd_flower(args: argparse.Namespace) -> int:
    cmd = [sys.executable, "-m", "celery", "-A", APP, "flower", f"--port={args.port}", f"--address={args.address}"]
    cmd += _rest(args.flower_args)
    return _exec(cmd, args)


def _rest(extra: list[str]) -> list[str]:
    return extra[1:] if extra[:1] == ["--"] else extra


def _exec(cmd: list[str], args: argparse.Namespace) -> int:
    env = dict(os.environ)
    if args.redis_url:
        env["WASMJOB_REDIS_URL"] = args.redis_url
    _settings(args)  # fail here, in one line, on a bad URL or setting
    sys.stdout.flush()
    sys.stderr.flush()
    os.execvpe(cmd[0], cmd, env)
    return 0  # not reached


# jobs ----------------------------------------------------------------------------------


def cmd_submit(args: argparse.Namespace) -> int:
    client = _client(args)
    handle = client.submit(
        args.extension,
        args.job,
        json_arg(args.params, "--params"),
        tenant=args.tenant,
        limits=json_arg(args.limits, "--limits"),
        queue=args.queue,
        priority=args.priority,
    )
    if not args.wait:
        print(handle.id)
        return 0
    print(f"job {handle.id}", file=sys.stderr)
    rec = _wait_with_bar(handle, args.timeout, quiet=args.quiet)
    if rec.status == "completed":
        print(json.dumps(rec.result))
        return 0
    raise WasmJobError(f"{rec.status}" + (f": {rec.error}" if rec.error else ""), job_id=handle.id)


def _wait_with_bar(handle: Any, timeout: float | None, *, quiet: bool) -> JobRecord:
    if quiet:
        return _wait(handle, timeout, None)
    from rich.console import Console
    from rich.progress import BarColumn, Progress, TaskProgressColumn, TextColumn, TimeElapsedColumn

    columns = (
        TextColumn("{task.fields[status]:<9}"),
        BarColumn(),
        TaskProgressColumn(),
        TimeElapsedColumn(),
        TextColumn("{task.fields[message]}"),
    )
    with Progress(*columns, console=Console(stderr=True), transient=False) as bar:
        task = bar.add_task("job", total=1.0, status="queued", message="")

        def show(rec: JobRecord) -> None:
            worker = (rec.worker or "").split("/")[0]
            msg = f"{rec.message}  [{worker}]" if worker else rec.message
            bar.update(task, completed=rec.progress, status=rec.status, message=msg[:60])

        return _wait(handle, timeout, show)


def _wait(handle: Any, timeout: float | None, on_progress: Any) -> JobRecord:
    rec: JobRecord = handle.wait(timeout, on_progress)
    return rec


def cmd_status(args: argparse.Namespace) -> int:
    client = _client(args)
    rec = client.fleet.records.get(args.job_id)
    if args.json:
        data = rec.as_dict()
        data["warnings"] = client.fleet.records.warnings(rec.id)
        print(json.dumps(data, default=str))
        return 0
    from rich.console import Console
    from rich.table import Table

    table = Table(show_header=False, box=None)
    rows = [
        ("id", rec.id),
        ("status", rec.status + (f" ({rec.control} requested)" if rec.control else "")),
        ("extension", f"{rec.ext_id}@{rec.ext_version}  {rec.digest[:19]}…" if rec.digest else rec.extension),
        ("job", rec.job),
        ("progress", f"{rec.progress * 100:.1f}%  {rec.message}"),
        ("checkpoints", str(rec.checkpoints)),
        ("attempts", f"{rec.attempts} (recovered {rec.recoveries}x)" if rec.recoveries else str(rec.attempts)),
        ("worker", rec.worker or "-"),
        ("items / bytes", f"{rec.items} / {rec.bytes}"),
        ("fuel / wall / cpu", f"{rec.fuel:,} / {rec.wall_seconds:.2f}s / {rec.cpu_seconds:.2f}s"),
        ("created", _when(rec.created_at)),
        ("finished", _when(rec.finished_at)),
    ]
    if rec.effective_limits:
        rows.append(("limits", limits_line(rec.effective_limits, rec.limit_notes)))
    if rec.error:
        rows.append(("error", rec.error))
    elif rec.last_error and not rec.done:
        rows.append(("last error", rec.last_error))
    if rec.status == "completed":
        rows.append(("result", _short(json.dumps(rec.result))))
    for key, value in rows:
        table.add_row(key, value)
    Console().print(table)
    return 0


def limits_line(effective: dict[str, object], notes: str) -> str:
    """The effective limits of a job's runs in one line, with what was clamped."""
    text = ", ".join(f"{k}={'unmetered' if v is None and k == 'fuel' else v}" for k, v in effective.items())
    return text + (f"  (clamped: {notes})" if notes else "")


def cmd_list(args: argparse.Namespace) -> int:
    client = _client(args)
    page = client.jobs(args.status, args.limit, cursor=args.cursor)
    records = page.records
    if page.cursor is not None:
        print(f"more: --cursor {page.cursor}", file=sys.stderr)
    if args.json:
        for rec in records:
            print(json.dumps(rec.as_dict(), default=str))
        return 0
    from rich.console import Console
    from rich.table import Table

    table = Table("id", "status", "extension", "job", "progress", "attempts", "worker", "created")
    for rec in records:
        table.add_row(
            rec.id, rec.status, f"{rec.ext_id}@{rec.ext_version}", rec.job, f"{rec.progress * 100:.0f}%",
            str(rec.attempts), (rec.worker or "").split("/")[0], _when(rec.created_at),
        )
    Console().print(table)
    return 0


def cmd_logs(args: argparse.Namespace) -> int:
    client = _client(args)
    records = client.fleet.records
    records.get(args.job_id)
    if args.events:
        for ev in records.events(args.job_id):
            extra = {k: v for k, v in ev.items() if k not in ("ts", "event")}
            print(f"{_when(ev['ts'])}  {ev['event']:<16} {json.dumps(extra) if extra else ''}")
    levels = {0: "DEBUG", 1: "INFO", 2: "WARN", 3: "ERROR"}
    for line in records.logs(args.job_id, args.last):
        print(f"{_when(line['ts'])}  {levels.get(line['level'], line['level']):<5} {line['msg']}")
    for warning in records.warnings(args.job_id):
        print(f"warning: {warning}")
    return 0


def cmd_result(args: argparse.Namespace) -> int:
    print(json.dumps(_client(args).job(args.job_id).result()))
    return 0


def cmd_control(args: argparse.Namespace) -> int:
    handle = _client(args).job(args.job_id)
    print(getattr(handle, args.action)())
    return 0


def cmd_usage(args: argparse.Namespace) -> int:
    rows = _client(args).usage()
    if args.json:
        for row in rows:
            print(json.dumps(row.__dict__))
        return 0
    from rich.console import Console
    from rich.table import Table

    table = Table(
        "extension", "tenant", "runs", "fuel", "wall s", "cpu s", "completed", "failed", "cancelled", "abandoned"
    )
    for r in rows:
        table.add_row(
            r.extension, r.tenant, str(r.runs), f"{r.fuel:,}", f"{r.wall_seconds:.2f}", f"{r.cpu_seconds:.2f}",
            str(r.completed), str(r.failed), str(r.cancelled), str(r.abandoned),
        )
    Console().print(table)
    return 0


# extensions ----------------------------------------------------------------------------


def cmd_extensions_add(args: argparse.Namespace) -> int:
    from .publishers import load_or_create

    client = _client(args)
    key = load_or_create(args.key)
    if key.created:
        print(f"created publisher key {key.path} ({key.id}): keep it; later versions must be signed with it",
              file=sys.stderr)
    for path in args.paths:
        ref = client.add_extension(path, key=key)
        print(f"{ref}  {ref.digest}  jobs: {', '.join(ref.jobs)}")
    return 0


def cmd_extensions_list(args: argparse.Namespace) -> int:
    refs = _client(args).extensions()
    if args.json:
        for ref in refs:
            print(json.dumps(ref.as_dict()))
        return 0
    from rich.console import Console
    from rich.table import Table

    table = Table("id", "version", "jobs", "digest", "size", "added")
    for ref in refs:
        table.add_row(ref.id, ref.version, ", ".join(ref.jobs), ref.digest, f"{ref.size:,}", _when(ref.added_at))
    Console().print(table)
    return 0


# helpers -------------------------------------------------------------------------------


def _settings(args: argparse.Namespace) -> Any:
    from wasmjob.broker_config import Settings

    return Settings.from_env(redis_url=getattr(args, "redis_url", None))


def _client(args: argparse.Namespace) -> Client:
    from .client import Client

    return Client(settings=_settings(args))


def _when(ts: float | None) -> str:
    if not ts:
        return "-"
    return datetime.datetime.fromtimestamp(ts).strftime("%Y-%m-%d %H:%M:%S")


def _short(text: str, limit: int = 200) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"
