"""Fleet commands of the ``wasmjob`` CLI: workers, Flower, jobs, usage and the extension registry.

``add_commands`` adds them to the main parser (``cli.py``). Output for scripts
goes to stdout (a job id, a result, one JSON object); progress bars and tables
for people go to stderr/stdout as noted. Errors are WasmJobError: one line.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import threading
import time
from typing import TYPE_CHECKING, Any

from .cli_common import EXIT_INTERRUPTED, age, json_arg, when
from .errors import ConfigError, JobFailed, NotFound

if TYPE_CHECKING:
    from .client import Client
    from .job_record import JobRecord

ID_HELP = "the job's id, or a unique prefix of it (as `list` shows)"
WAITED_FOR = {"pause": "paused, or done", "cancel": "cancelled, or done"}
SHORT_ID = 12


def add_commands(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    """Add the fleet subcommands; each sets ``func`` to a handler returning an exit code."""
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--redis-url", help="the fleet's Redis (default: $WASMJOB_REDIS_URL or redis://127.0.0.1:6379/0)")

    p = sub.add_parser("worker", parents=[common], help="run a Celery worker of the fleet")
    p.add_argument("-c", "--concurrency", type=int, help="jobs at once (default: CPU count)")
    p.add_argument("-n", "--name", help="node name (default: wasmjob-<pid>@<host>)")
    p.add_argument("-Q", "--queues", help="queues to consume, comma-separated (default: wasmjob)")
    p.add_argument("-P", "--pool", default="prefork", help="Celery pool (default: prefork)")
    p.add_argument("-l", "--loglevel", default="INFO", help="DEBUG, INFO, WARNING or ERROR (default: INFO)")
    p.add_argument("celery_args", nargs=argparse.REMAINDER, help="more `celery worker` options after --")
    p.set_defaults(func=cmd_worker)

    p = sub.add_parser(
        "flower", parents=[common], help="run Flower, Celery's web monitor, on the fleet",
        description="Run Flower on the fleet. Flower's HTTP API (/api/...) refuses requests unless "
        "FLOWER_UNAUTHENTICATED_API=true is set or an auth option is given (FLOWER_BASIC_AUTH=user:pass, "
        "--auth ...): set one of them to use the API, e.g. to revoke (cancel) jobs from scripts.",
    )
    p.add_argument("--port", type=int, default=5555, help="HTTP port (default: 5555)")
    p.add_argument("--address", default="127.0.0.1", help="address to listen on (default: 127.0.0.1)")
    p.add_argument("flower_args", nargs=argparse.REMAINDER, help="more `celery flower` options after --")
    p.set_defaults(func=cmd_flower)

    p = sub.add_parser("metrics", parents=[common], help="the fleet's Prometheus metrics (once, or served)")
    p.add_argument("--serve", type=int, metavar="PORT", help="serve /metrics on PORT until stopped")
    p.add_argument("--address", default="127.0.0.1", help="with --serve: address to listen on (default: 127.0.0.1)")
    p.set_defaults(func=cmd_metrics)

    p = sub.add_parser("submit", parents=[common], help="queue a job; prints its id (with --wait, its result)")
    p.add_argument("extension", help="id, id@version or sha256:<hex> of a registered extension")
    p.add_argument("job", help="job name")
    p.add_argument("--params", help="job parameters: JSON, @FILE or - (stdin)")
    p.add_argument("--tenant", help="tenant/library UUID")
    p.add_argument("--limits", help='per-job limits: JSON, @FILE or -, e.g. {"fuel": 1000000000, "slice_seconds": 30}')
    p.add_argument("--queue", help="queue to send to (default: wasmjob)")
    p.add_argument("--priority", type=int, help="0..9, higher first")
    p.add_argument("--wait", action="store_true", help="wait with a progress bar; print the result JSON")
    p.add_argument("--timeout", type=float, help="with --wait: give up after this many seconds")
    p.add_argument("--quiet", action="store_true", help="with --wait: no progress bar")
    p.set_defaults(func=cmd_submit)

    p = sub.add_parser("status", parents=[common], help="show a job")
    p.add_argument("job_id", help=ID_HELP)
    p.add_argument("--json", action="store_true", help="the job record as one JSON object")
    p.set_defaults(func=cmd_status)

    p = sub.add_parser("list", parents=[common], help="list recent jobs")
    p.add_argument("--status", help="only jobs in this status (queued, running, paused, completed, failed, cancelled)")
    p.add_argument("--limit", type=int, default=50, help="at most this many jobs (default: 50)")
    p.add_argument("--cursor", help="continue after a previous page (its cursor is printed on stderr)")
    p.add_argument("--json", action="store_true", help="one JSON object per line")
    p.set_defaults(func=cmd_list)

    p = sub.add_parser("logs", parents=[common], help="a job's log tail and warnings")
    p.add_argument("job_id", help=ID_HELP)
    p.add_argument("--last", type=int, default=200, help="show the last N lines (default: 200)")
    p.add_argument("--events", action="store_true", help="also its lifecycle: claims, losses, resumes")
    p.add_argument("-f", "--follow", action="store_true", help="keep printing new lines until the job is done")
    p.add_argument("--json", action="store_true", help="one JSON object per line (ts, level, msg)")
    p.set_defaults(func=cmd_logs)

    p = sub.add_parser("result", parents=[common], help="a completed job's result as JSON")
    p.add_argument("job_id", help=ID_HELP)
    p.set_defaults(func=cmd_result)

    for action, text in (
        ("pause", "checkpoint and stop a job"),
        ("resume", "queue a paused job again from its checkpoint"),
        ("cancel", "stop a job for good"),
    ):
        p = sub.add_parser(action, parents=[common], help=text)
        p.add_argument("job_id", help=ID_HELP)
        if action != "resume":
            p.add_argument("--wait", action="store_true", help=f"wait until the job has stopped ({WAITED_FOR[action]})")
            p.add_argument("--timeout", type=float, help="with --wait: give up after this many seconds")
        p.set_defaults(func=cmd_control, action=action)

    p = sub.add_parser("usage", parents=[common], help="fuel, wall time and runs per extension and tenant")
    p.add_argument("--json", action="store_true", help="one JSON object per line")
    p.set_defaults(func=cmd_usage)

    p = sub.add_parser("extensions", help="the fleet's extension registry")
    ext_sub = p.add_subparsers(dest="ext_command", required=True)
    q = ext_sub.add_parser("add", parents=[common], help="validate and upload modules (directories or .wasm files)")
    q.add_argument("paths", nargs="+", help="extension directories (with manifest.json) or .wasm files")
    q.add_argument("--key", help="publisher key to sign with (default: $WASMJOB_PUBLISHER_KEY or your config directory)")
    q.set_defaults(func=cmd_extensions_add)
    q = ext_sub.add_parser("list", parents=[common], help="registered extensions: id, versions, jobs, digests")
    q.add_argument("--json", action="store_true", help="one JSON object per line")
    q.set_defaults(func=cmd_extensions_list)

    from .cli_publishers import add_commands as add_identity_commands

    add_identity_commands(sub, common)


# processes -----------------------------------------------------------------------------


def cmd_worker(args: argparse.Namespace) -> int:
    from .fleet import CELERY_APP

    cmd = [sys.executable, "-m", "celery", "-A", CELERY_APP, "worker", "-E", "-P", args.pool, "-l", args.loglevel]
    cmd += ["-n", args.name or f"wasmjob-{os.getpid()}@%h"]
    # Mingle and gossip sync nothing a fleet needs (its state is in Redis) and, on a Redis broker,
    # are what leaves a reconnected worker consuming nothing after a Redis restart.
    cmd += ["--without-mingle", "--without-gossip"]
    if args.concurrency:
        cmd += ["-c", str(args.concurrency)]
    if args.queues:
        cmd += ["-Q", args.queues]
    else:
        cmd += ["-Q", _settings(args).queue]
    cmd += _rest(args.celery_args)
    return _exec(cmd, args)


def cmd_flower(args: argparse.Namespace) -> int:
    from .fleet import CELERY_APP

    cmd = [sys.executable, "-m", "celery", "-A", CELERY_APP, "flower", f"--port={args.port}", f"--address={args.address}"]
    cmd += _rest(args.flower_args)
    return _exec(cmd, args)


def cmd_metrics(args: argparse.Namespace) -> int:
    from .fleet.context import Fleet
    from .fleet.metrics import exposition, serve

    fleet = Fleet(_settings(args))
    if args.serve is None:
        sys.stdout.write(exposition(fleet).decode())
        return 0
    serve(fleet, args.serve, args.address)
    print(f"serving the fleet's metrics on http://{args.address}:{args.serve}/metrics", file=sys.stderr, flush=True)
    threading.Event().wait()
    return 0  # not reached


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
    try:  # from the moment its id is out, a Ctrl-C leaves the job running and says so
        print(f"job {handle.id}", file=sys.stderr)
        rec = _wait_with_bar(handle, args.timeout, quiet=args.quiet)
    except KeyboardInterrupt:
        print(
            f"\nstopped waiting; job {handle.id} goes on running on the fleet.\n"
            f"  pause it:  wasmjob pause {handle.id}\n  follow it: wasmjob status {handle.id}",
            file=sys.stderr,
        )
        return EXIT_INTERRUPTED
    if rec.status == "completed":
        print(json.dumps(rec.result))
        return 0
    raise JobFailed(f"{rec.status}" + (f": {rec.error}" if rec.error else ""), job_id=handle.id)


def _wait_with_bar(handle: Any, timeout: float | None, *, quiet: bool) -> JobRecord:
    """Wait for the job with one live bar on stderr; the bar is cleared when the wait ends
    (also on Ctrl-C), and the outcome is printed once, as a line."""
    if quiet:
        return _wait(handle, timeout, None)
    from rich.console import Console
    from rich.progress import BarColumn, Progress, TaskProgressColumn, TextColumn, TimeElapsedColumn

    console = Console(stderr=True)
    if not console.is_terminal:  # a log file gets the outcome line only, not bar frames
        rec = _wait(handle, timeout, None)
        console.print(f"{rec.status} at {rec.progress:.0%}" + (f": {rec.message}" if rec.message else ""), highlight=False)
        return rec

    columns = (
        TextColumn("{task.fields[status]:<9}"),
        BarColumn(bar_width=24),
        TaskProgressColumn(),
        TimeElapsedColumn(),
        TextColumn("{task.fields[message]}"),
    )
    with Progress(*columns, console=console, transient=True) as bar:
        task = bar.add_task("job", total=1.0, status="queued", message="")

        def show(rec: JobRecord) -> None:
            worker = (rec.worker or "").split("/")[0]
            msg = f"{rec.message}  [{worker}]" if worker else rec.message
            bar.update(task, completed=rec.progress, status=rec.status, message=msg[:40])

        rec = _wait(handle, timeout, show)
    console.print(f"{rec.status} at {rec.progress:.0%}" + (f": {rec.message}" if rec.message else ""), highlight=False)
    return rec


def _wait(handle: Any, timeout: float | None, on_progress: Any) -> JobRecord:
    rec: JobRecord = handle.wait(timeout, on_progress)
    return rec


def job_id_of(client: Client, text: str) -> str:
    """The full id for ``text``: an id, or a unique prefix of one (as git and docker accept)."""
    records = client.fleet.records
    if records.exists(text):
        return text
    matches = records.ids_with_prefix(text, limit=6)
    if not matches:
        raise NotFound(f"no job {text}" + ("" if len(text) >= 36 else " (nor one whose id starts with it)"))
    if len(matches) > 1:
        shown = ", ".join(m[:SHORT_ID] for m in matches[:5]) + (", ..." if len(matches) > 5 else "")
        raise ConfigError(f"id prefix {text!r} is ambiguous: it starts {shown}; give more characters")
    return matches[0]


def cmd_status(args: argparse.Namespace) -> int:
    client = _client(args)
    rec = client.fleet.records.get(job_id_of(client, args.job_id))
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
        ("fuel / wall / cpu", _usage_line(rec)),
        ("created", when(rec.created_at)),
        ("finished", when(rec.finished_at)),
    ]
    if rec.paused_at:
        rows.append(("paused", when(rec.paused_at)))
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


def _usage_line(rec: JobRecord) -> str:
    """Fuel and times of the runs that ended; during a first run nothing is measured yet."""
    if not rec.fuel and not rec.wall_seconds:
        return "- (measured when a run ends)" if not rec.done else "0 / 0.00s / 0.00s"
    return f"{rec.fuel:,} / {rec.wall_seconds:.2f}s / {rec.cpu_seconds:.2f}s"


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

    # Ids are cut to a prefix every command accepts; other cells shrink with an ellipsis.
    table = _table(("ID", SHORT_ID), "STATUS", "EXTENSION", "JOB", "PROGRESS", "WORKER", ("AGE", 4))
    for rec in records:
        table.add_row(
            rec.id[:SHORT_ID], rec.status, f"{rec.ext_id}@{rec.ext_version}", rec.job, f"{rec.progress * 100:.0f}%",
            (rec.worker or "-").split("/")[0].split("@")[0], age(rec.created_at),
        )
    Console().print(table)
    return 0


def _table(*columns: str | tuple[str, int]) -> Any:
    """A borderless table (as docker and kubectl print) whose cells never wrap: at 80
    columns long ones end in an ellipsis; a (name, width) column keeps its width."""
    from rich.table import Table

    table = Table(box=None, pad_edge=False, header_style="bold")
    for column in columns:
        name, width = column if isinstance(column, tuple) else (column, None)
        table.add_column(name, no_wrap=True, overflow="ellipsis", min_width=width)
    return table


def cmd_logs(args: argparse.Namespace) -> int:
    client = _client(args)
    records = client.fleet.records
    job_id = job_id_of(client, args.job_id)
    if args.events:
        for ev in records.events(job_id):
            extra = {k: v for k, v in ev.items() if k not in ("ts", "event")}
            if args.json:
                print(json.dumps({"ts": ev["ts"], "event": ev["event"], **extra}))
            else:
                print(f"{when(ev['ts'])}  {ev['event']:<16} {json.dumps(extra) if extra else ''}")
    last: tuple[float, str] | None = None  # the newest line printed
    try:
        while True:
            lines = records.logs(job_id, args.last)
            fresh = lines if last is None else [line for line in lines if (line["ts"], line["msg"]) > last]
            for line in fresh:
                _print_log(line, args.json)
            if fresh:
                last = (fresh[-1]["ts"], fresh[-1]["msg"])
            if not args.follow or records.get(job_id).done:
                break
            time.sleep(0.5)
    except KeyboardInterrupt:
        return EXIT_INTERRUPTED
    for warning in records.warnings(job_id):
        print(json.dumps({"warning": warning}) if args.json else f"warning: {warning}")
    return 0


LEVELS = {0: "DEBUG", 1: "INFO", 2: "WARN", 3: "ERROR"}


def _print_log(line: dict[str, Any], as_json: bool) -> None:
    level = LEVELS.get(line["level"], str(line["level"]))
    if as_json:
        print(json.dumps({"ts": line["ts"], "level": level, "msg": line["msg"]}), flush=True)
    else:
        print(f"{when(line['ts'])}  {level:<5} {line['msg']}", flush=True)


def cmd_result(args: argparse.Namespace) -> int:
    client = _client(args)
    print(json.dumps(client.job(job_id_of(client, args.job_id)).result()))
    return 0


def cmd_control(args: argparse.Namespace) -> int:
    client = _client(args)
    handle = client.job(job_id_of(client, args.job_id))
    status = getattr(handle, args.action)()
    done = {"pause": "paused", "cancel": "cancelled", "resume": "queued"}[args.action]
    if status == done or args.action == "resume":
        print(f"{args.action}: job {handle.id} is {status}")
        return 0
    print(f"{args.action} requested: job {handle.id} is {status}; it stops at its next check for interrupts")
    if not getattr(args, "wait", False):
        print(f"  (wasmjob {args.action} --wait waits for it; wasmjob status {handle.id[:SHORT_ID]} shows it)")
        return 0
    rec = handle.wait(args.timeout, until=(done, "completed", "failed", "cancelled"))
    print(f"job {handle.id} is {rec.status}" + (f" at {rec.progress:.0%}" if rec.status == done else ""))
    return 0


def cmd_usage(args: argparse.Namespace) -> int:
    rows = _client(args).usage()
    if args.json:
        for row in rows:
            print(json.dumps(row.__dict__))
        return 0
    from rich.console import Console

    # Tenants are cut to 8 characters (the nil tenant shows as "-"); --json has them whole.
    table = _table("EXTENSION", "TENANT", "RUNS", "FUEL", "WALL S", "CPU S", "DONE", "FAILED", "CANCELLED", "LOST")
    for r in rows:
        tenant = "-" if r.tenant == "00000000-0000-0000-0000-000000000000" else r.tenant[:8]
        table.add_row(
            r.extension, tenant, str(r.runs), f"{r.fuel:,}", f"{r.wall_seconds:.1f}", f"{r.cpu_seconds:.1f}",
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
    _, note = client.publishing_policy()
    if note:
        print(f"note: {note}", file=sys.stderr)
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

    table = _table("ID", "VERSION", "JOBS", "DURABILITY", ("DIGEST", 19), "SIZE", ("AGE", 4))
    for ref in refs:
        table.add_row(
            ref.id, ref.version, ", ".join(ref.jobs), ref.durability, ref.digest[:19], f"{ref.size:,}", age(ref.added_at)
        )
    Console().print(table)
    return 0


# helpers -------------------------------------------------------------------------------


def _settings(args: argparse.Namespace) -> Any:
    from wasmjob.broker_config import Settings

    return Settings.from_env(redis_url=getattr(args, "redis_url", None))


def _client(args: argparse.Namespace) -> Client:
    from .client import Client

    return Client(settings=_settings(args))


def _short(text: str, limit: int = 200) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"
