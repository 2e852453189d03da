"""The ``wasmjob`` command: local runs and inspection here, fleet commands from ``cli_fleet``.

Every error ends as one line on stderr and a non-zero exit; results go to
stdout as JSON so scripts can read them.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import sys
import threading
import uuid
from pathlib import Path
from types import FrameType
from typing import Any

from .cli_common import (
    EXIT_CODES,
    EXIT_FAILED,
    EXIT_INTERRUPTED,
    EXIT_TIMEOUT,
    exit_code_for,
    json_arg,
    shown_path,
)
from .errors import NotFound, WasmJobError
from .validate import check_limits

RUN_NAMESPACE = uuid.UUID("6f1c1e1a-7a39-4a8e-9d7e-5b0c2f0f3a11")


def _read_module(path: str) -> tuple[Path, bytes]:
    p = Path(path)
    if p.is_dir():
        from .manifest import MANIFEST_NAME, Manifest

        manifest = Manifest.from_file(p / MANIFEST_NAME)
        p = p / manifest.wasm_file
    try:
        return p, p.read_bytes()
    except OSError as exc:
        raise NotFound(f"cannot read module {path}: {exc.strerror}") from None


def local_job_id(digest: str, job: str, params: Any, tenant: str) -> str:
    """The same command gets the same job id, so running it again resumes."""
    key = json.dumps([digest, job, params, tenant], sort_keys=True, separators=(",", ":"))
    return str(uuid.uuid5(RUN_NAMESPACE, key))


def cmd_inspect(args: argparse.Namespace) -> int:
    from .manifest import find_manifest
    from .runtime import Runtime

    path, wasm = _read_module(args.module)
    ext = Runtime().load(wasm, find_manifest(path))
    info = ext.describe()
    if args.json:
        print(json.dumps(info, indent=2))
        return 0
    from rich.console import Console
    from rich.table import Table

    table = Table(show_header=False, box=None)
    for key in ("id", "name", "version", "digest", "size", "state_encoding", "durability"):
        table.add_row(key, str(info[key]))
    table.add_row("jobs", ", ".join(f"{j['name']} ({j['export']})" for j in info["jobs"]))
    table.add_row("imports", ", ".join(info["imports"]) or "none")
    table.add_row("methods", ", ".join(repr(m) for m in info["permissions"]["methods"]) or "none (no host methods)")
    table.add_row("limits", ", ".join(f"{k}={v}" for k, v in info["limits"].items()))
    Console().print(table)
    return 0


def cmd_run(args: argparse.Namespace) -> int:
    from .job import DEFAULT_LIBRARY_ID, InterruptFlag, InterruptReason, JobSpec
    from .manifest import find_manifest
    from .owners import local_owner
    from .runtime import Runtime
    from .store import LocalStore

    path, wasm = _read_module(args.module)
    params = json_arg(args.params, "--params")
    runtime = Runtime()
    ext = runtime.load(wasm, find_manifest(path))
    tenant = args.tenant or DEFAULT_LIBRARY_ID
    job_id = local_job_id(ext.digest, args.job, params, tenant)
    store = LocalStore(args.state_dir)
    if args.fresh:
        store.forget(job_id)
    record = store.job(job_id)
    if record and record["meta"].get("status") == "completed":
        print(f"job {job_id} already completed; --fresh runs it again", file=sys.stderr)
        print(json.dumps(record["meta"].get("result")))
        return 0
    if record and record["meta"].get("status") == "failed":
        # As on the fleet: a failed job stays failed (resume is refused there too).
        raise WasmJobError(f"failed earlier: {record['meta'].get('error')}; --fresh starts it over", job_id=job_id)
    limits = ext.manifest.limits.merged(
        **check_limits({"fuel": args.fuel, "timeout_seconds": args.timeout, "max_memory_mb": args.memory}),
        snapshot_seconds=args.snapshot_every if ext.snapshot_mode else None,
    )
    token = store.acquire(job_id, local_owner(), ttl=limits.timeout_seconds + 60)
    resumed = store.load_checkpoint(job_id) is not None
    if resumed:
        print(f"resuming job {job_id} from its last checkpoint", file=sys.stderr)
    interrupts = InterruptFlag()
    _on_sigint(interrupts, InterruptReason.PAUSE)
    spec = JobSpec(job_name=args.job, params=params, job_id=job_id, library_id=tenant)
    with _ProgressBar(store, job_id, enabled=not args.quiet):
        outcome = runtime.run(ext, spec, store, token, interrupts, limits)
    store.release(job_id, token)
    usage = outcome.usage.as_dict()
    step = outcome.next_step  # the fleet decides with the same property
    if step == "completed":
        store.set_meta(job_id, status="completed", result=outcome.result, usage=usage)
        print(json.dumps(outcome.result))
        return 0
    if step == "interrupted":
        store.set_meta(job_id, status="paused", usage=usage)
        saved = "a snapshot" if ext.snapshot_mode else f"{outcome.checkpoints} checkpoint(s)"
        print(
            f"interrupted at {outcome.progress:.0%} after {saved}; run the same command again to resume",
            file=sys.stderr,
        )
        return EXIT_INTERRUPTED
    if step == "retry":
        store.set_meta(job_id, status="paused", error=outcome.reason, usage=usage)
        if outcome.failure == "timeout":
            print(
                f"stopped at its time limit ({limits.timeout_seconds:g} s) at {outcome.progress:.0%}; "
                "run the same command again to continue from its last checkpoint",
                file=sys.stderr,
            )
            return EXIT_TIMEOUT
        raise WasmJobError(f"{outcome.reason}; run the same command again to retry from the last checkpoint", job_id=job_id)
    store.set_meta(job_id, status="failed", error=outcome.reason, usage=usage)
    raise WasmJobError(f"failed: {outcome.reason}", job_id=job_id)


def _on_sigint(flag: Any, reason: Any) -> None:
    """First Ctrl-C asks the job to checkpoint and stop; a second one quits at once."""

    def handler(signum: int, frame: FrameType | None) -> None:
        if flag.reason is not None:
            print("\naborted; the job resumes from its last checkpoint next time", file=sys.stderr)
            os._exit(EXIT_INTERRUPTED)
        print("\nstopping: asking the job to checkpoint (Ctrl-C again to abort)", file=sys.stderr)
        flag.request(reason)

    if threading.current_thread() is threading.main_thread():
        signal.signal(signal.SIGINT, handler)


class _ProgressBar:
    """A rich progress bar on stderr, fed by polling the local store (the runtime stays UI-free)."""

    def __init__(self, store: Any, job_id: str, *, enabled: bool) -> None:
        self.store, self.job_id = store, job_id
        self.enabled = enabled and sys.stderr.isatty()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def __enter__(self) -> _ProgressBar:
        if self.enabled:
            self._thread = threading.Thread(target=self._loop, daemon=True)
            self._thread.start()
        return self

    def _loop(self) -> None:
        from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn

        with Progress(
            TextColumn("[bold]{task.description}"), BarColumn(), TextColumn("{task.percentage:>3.0f}%"),
            TextColumn("{task.fields[message]}"), TimeElapsedColumn(), transient=True,
        ) as bar:
            task = bar.add_task("running", total=1.0, message="")
            while not self._stop.wait(0.1):
                record = self.store.job(self.job_id) or {}
                bar.update(task, completed=record.get("progress", 0.0), message=record.get("message", "")[:60])

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        if self._thread:
            self._thread.join(timeout=1)


def cmd_new(args: argparse.Namespace) -> int:
    from .scaffold import scaffold

    dest = scaffold(args.name, args.lang, Path(args.dir or args.name))
    print(dest)
    return 0


def cmd_build(args: argparse.Namespace) -> int:
    from .builder import build_extension

    print(shown_path(build_extension(Path(args.dir))))
    return 0


def cmd_test(args: argparse.Namespace) -> int:
    from .tester import run_tests

    return run_tests(Path(args.dir))


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="wasmjob",
        description="Durable, sandboxed WebAssembly jobs.",
        epilog=EXIT_CODES,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--version", action="version", version=f"wasmjob {_version()}", help="print the version and exit")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    run = sub.add_parser("run", help="run a job locally, resuming from its checkpoint")
    run.add_argument("module", help="path to a .wasm module (or an extension directory)")
    run.add_argument("job", help="job name, as registered by the extension")
    run.add_argument("--params", help="job parameters: JSON, @FILE or - (stdin)")
    run.add_argument("--tenant", help="library/tenant UUID (default: the nil UUID)")
    run.add_argument("--state-dir", default=".wasmjob", help="where checkpoints live (default .wasmjob)")
    run.add_argument("--fuel", type=int, help="fuel budget of this run (a positive integer; default: the manifest's)")
    run.add_argument(
        "--timeout",
        type=float,
        help="wall-clock limit of this run, in seconds: at the limit the run stops (exit 124) and the same "
        "command continues from the last checkpoint (default: the manifest's timeout_seconds)",
    )
    run.add_argument("--memory", type=int, help="memory limit in MiB")
    run.add_argument("--fresh", action="store_true", help="forget the job's checkpoint and start over")
    run.add_argument(
        "--snapshot-every", type=float, default=10.0, metavar="SECONDS",
        help="snapshot mode: seconds of run time between snapshots (default 10)",
    )
    run.add_argument("--quiet", action="store_true", help="no progress bar")
    run.set_defaults(func=cmd_run)

    inspect = sub.add_parser("inspect", help="show a module's id, jobs, imports and limits")
    inspect.add_argument("module", help="path to a .wasm module (or an extension directory)")
    inspect.add_argument("--json", action="store_true", help="print it as one JSON object")
    inspect.set_defaults(func=cmd_inspect)

    new = sub.add_parser("new", help="scaffold a new extension")
    new.add_argument("name", help="the extension's id: lowercase letters, digits, - and _")
    new.add_argument("--lang", choices=["rust", "c", "python"], default="rust", help="the SDK to use (default: rust)")
    new.add_argument("--dir", help="destination directory (default: NAME)")
    new.set_defaults(func=cmd_new)

    build = sub.add_parser("build", help="build an extension directory into its .wasm")
    build.add_argument("dir", nargs="?", default=".", help="the extension's directory, with manifest.json (default: .)")
    build.set_defaults(func=cmd_build)

    test = sub.add_parser("test", help="run an extension's own native tests (offline, on the SDK's mock host)")
    test.add_argument("dir", nargs="?", default=".", help="the extension's directory (default: .)")
    test.set_defaults(func=cmd_test)

    from .cli_fleet import add_commands

    add_commands(sub)

    completion = sub.add_parser("completion", help="print a shell completion script: eval \"$(wasmjob completion bash)\"")
    completion.add_argument("shell", choices=["bash", "zsh"], help="the shell to complete in")
    completion.set_defaults(func=cmd_completion)
    return parser


def _version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("wasmjob")
    except PackageNotFoundError:
        return "unknown"


def cmd_completion(args: argparse.Namespace) -> int:
    from .completion import script

    print(script(build_parser(), args.shell))
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return int(args.func(args) or 0)
    except WasmJobError as exc:
        print(f"wasmjob: error: {exc}", file=sys.stderr)
        return exit_code_for(exc)
    except KeyboardInterrupt:
        print("wasmjob: interrupted", file=sys.stderr)
        return EXIT_INTERRUPTED
    except BrokenPipeError:
        return EXIT_FAILED
    except Exception as exc:
        if os.environ.get("WASMJOB_DEBUG"):
            raise
        print(f"wasmjob: internal error: {type(exc).__name__}: {exc} (set WASMJOB_DEBUG=1 for a traceback)", file=sys.stderr)
        return EXIT_FAILED


if __name__ == "__main__":
    sys.exit(main())
