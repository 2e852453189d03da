"""``python -m bench [--quick] [--rows 2,3] [--output BENCHMARKS.md]``: run the suite, print and write the table."""

from __future__ import annotations

import argparse
import signal
import sys
import time
from pathlib import Path
from types import FrameType

from . import machine, report
from .core import Context, Result, failed
from .rows import ROWS, TARGETS


def _terminate(signum: int, frame: FrameType | None) -> None:
    raise SystemExit(128 + signum)


def parse(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__)
    parser.add_argument("--quick", action="store_true", help="fewer samples: the whole run in under two minutes")
    parser.add_argument("--rows", default="", help="comma-separated row numbers to run (default: all)")
    parser.add_argument("--output", type=Path, default=Path("BENCHMARKS.md"), help="where to write the table")
    parser.add_argument("--no-write", action="store_true", help="print the table only")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse(argv)
    wanted = {r.strip() for r in args.rows.split(",") if r.strip()} or set(ROWS)
    unknown = wanted - set(ROWS)
    if unknown:
        print(f"bench: unknown rows {sorted(unknown)}; rows are {', '.join(ROWS)}", file=sys.stderr)
        return 2
    signal.signal(signal.SIGTERM, _terminate)
    signal.signal(signal.SIGINT, signal.default_int_handler)  # even when started with SIGINT ignored
    ctx = Context(quick=args.quick)
    results: list[Result] = []
    started = time.monotonic()
    desc = machine.describe()
    print("  ".join(f"{k}: {v}" for k, v in desc.items()), flush=True)
    try:
        for number, row in ROWS.items():
            if number not in wanted:
                continue
            t0 = time.monotonic()
            print(f"row {number} ...", end=" ", flush=True)
            try:
                got = row(ctx)
            except Exception as exc:  # noqa: BLE001 - one broken row must not hide the others
                got = [failed(number, f"row {number}", TARGETS[number], exc)]
            results.extend(got)
            print(f"{time.monotonic() - t0:.1f} s: " + ", ".join(f"{r.key} {r.verdict}" for r in got), flush=True)
    except KeyboardInterrupt:
        print("\nbench: interrupted; stopping the processes it started", file=sys.stderr)
        return 130
    finally:
        signal.signal(signal.SIGINT, signal.SIG_IGN)  # a second Ctrl-C must not cut the clean-up short
        ctx.close()
        signal.signal(signal.SIGINT, signal.default_int_handler)
    seconds = time.monotonic() - started
    desc["load average at end"] = machine.load_average()
    print()
    print(report.text_table(results))
    for r in results:
        if r.verdict in ("MISSES", "ERROR"):
            print(f"\n{r.key} {r.verdict}: {r.note}")
    if not args.no_write:
        report.write(args.output, report.markdown(results, desc, quick=args.quick, seconds=seconds))
        print(f"\nwrote {args.output} ({seconds:.0f} s)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
