#!/usr/bin/env bash
# Create .venv with wasmjob and its test dependencies, and make sure redis-server exists.
# Idempotent: a second run only checks. Used by `make demo`, `make test` and .ci/run.
set -euo pipefail
cd "$(dirname "$0")/.."

PYTHON="${PYTHON:-python3}"
if ! "$PYTHON" -c 'import sys; sys.exit(0 if sys.version_info >= (3, 11) else 1)' 2>/dev/null; then
    echo "setup: Python 3.11 or newer is required (set PYTHON=/path/to/python3.11)" >&2
    exit 1
fi

if ! command -v redis-server >/dev/null 2>&1; then
    if [ "$(id -u)" = "0" ] && command -v apt-get >/dev/null 2>&1; then
        echo "setup: installing redis-server" >&2
        apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq redis-server >/dev/null
    else
        echo "setup: redis-server is missing: install it (e.g. sudo apt-get install redis-server)" >&2
        exit 1
    fi
fi

# binaryen's wasm-opt instruments extensions in snapshot mode (transparent snapshots).
if ! command -v wasm-opt >/dev/null 2>&1; then
    if [ "$(id -u)" = "0" ] && command -v apt-get >/dev/null 2>&1; then
        echo "setup: installing binaryen" >&2
        { DEBIAN_FRONTEND=noninteractive apt-get install -y -qq binaryen >/dev/null 2>&1 \
          || { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq binaryen >/dev/null; }; } \
          || echo "setup: binaryen could not be installed: snapshot mode will be unavailable" >&2
    else
        echo "setup: wasm-opt is missing: snapshot mode needs it (e.g. sudo apt-get install binaryen)" >&2
    fi
fi

stamp=.venv/.wasmjob-installed
if [ ! -f "$stamp" ] || [ pyproject.toml -nt "$stamp" ]; then
    echo "setup: creating .venv and installing wasmjob (log: .venv/setup.log)" >&2
    [ -x .venv/bin/python ] || "$PYTHON" -m venv .venv
    if ! { .venv/bin/python -m pip install --disable-pip-version-check --upgrade pip \
           && .venv/bin/python -m pip install --disable-pip-version-check -e ".[dev,python]"; } >.venv/setup.log 2>&1; then
        tail -20 .venv/setup.log >&2
        echo "setup: installing failed; the whole log is in .venv/setup.log" >&2
        exit 1
    fi
    touch "$stamp"
fi
