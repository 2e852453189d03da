# Two entry points for a fresh machine: `make demo` and `make test`.
.PHONY: demo test test-unit test-integration bench setup

setup:
	@scripts/setup.sh

demo: setup
	.venv/bin/python -m demo

test: setup
	.venv/bin/python -m pytest

test-unit: setup
	.venv/bin/python -m pytest -m unit

test-integration: setup
	.venv/bin/python -m pytest -m integration

bench: setup
	.venv/bin/python -m bench
