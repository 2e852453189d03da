"""Rebuild every extension under extensions/*/ that has a manifest.json.

    python extensions/build.py            # rebuild the committed .wasm files in place
    python extensions/build.py --check    # rebuild into a temp dir; exit 1 naming each
                                          # committed .wasm that differs (what CI runs)
    python extensions/build.py counter    # only the named extensions
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

EXTENSIONS = Path(__file__).resolve().parent
sys.path.insert(0, str(EXTENSIONS.parent))  # run as a script from anywhere: find the worker package

from wasmjob.builder import BuildError, build_extension  # noqa: E402


def extension_dirs(names: list[str]) -> list[Path]:
    """Source directories to build: the named ones, or every one with a manifest."""
    found = sorted(p.parent for p in EXTENSIONS.glob("*/manifest.json"))
    if not names:
        return found
    by_name = {d.name: d for d in found}
    missing = [n for n in names if n not in by_name]
    if missing:
        raise SystemExit(f"no extension named {', '.join(missing)} (have: {', '.join(by_name)})")
    return [by_name[n] for n in names]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--check", action="store_true", help="verify committed .wasm files match a fresh build")
    parser.add_argument("names", nargs="*", help="extension directory names (default: all)")
    args = parser.parse_args(argv)
    stale: list[str] = []
    failed: list[str] = []
    with tempfile.TemporaryDirectory(prefix="wasmjob-check-") as scratch:
        for src in extension_dirs(args.names):
            try:
                built = build_extension(src, Path(scratch) / src.name if args.check else None)
            except BuildError as exc:
                print(f"FAILED {src.name}: {exc}", file=sys.stderr)
                failed.append(src.name)
                continue
            committed = src / built.name
            shown = committed.relative_to(EXTENSIONS.parent)
            if not args.check:
                print(f"built  {shown} ({built.stat().st_size} bytes)")
            elif committed.exists() and committed.read_bytes() == built.read_bytes():
                print(f"ok     {shown}")
            else:
                print(f"STALE  {shown}")
                stale.append(str(shown))
    if stale:
        print(f"differs from a fresh build: {', '.join(stale)} (run python extensions/build.py)", file=sys.stderr)
    if failed:
        print(f"could not build: {', '.join(failed)}", file=sys.stderr)
    return 2 if failed else 1 if stale else 0

if __name__ == "__main__":
    sys.exit(main())
