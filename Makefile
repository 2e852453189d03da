# Two entry points for a fresh machine: `make demo` and `make test`.
.PHONY: demo test test-unit test-integration bench setup

setup:
	@scripts/setup.sh

demo: setup
	.venv/bin/python -m demo

test: setup
	.venv/bin/python -m pytest

test-unit: setup
	.venv/bin/python -m pytest -m "unit and not slow"

test-integration: setup
	.venv/bin/python -m pytest -m "integration and not slow"

bench: setup
	.venv/bin/python -m bench
