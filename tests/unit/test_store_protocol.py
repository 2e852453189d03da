"""Both stores take what the CheckpointStore protocol promises callers, under the same names."""

from __future__ import annotations

import inspect

import pytest

from wasmjob.store import LocalStore
from wasmjob.store.base import CheckpointStore
from wasmjob.store.redis import RedisStore

pytestmark = pytest.mark.unit

METHODS = [name for name, value in vars(CheckpointStore).items() if inspect.isfunction(value) and not name.startswith("_")]


def test_the_protocol_lists_the_methods_the_runtime_calls() -> None:
    assert {"acquire", "renew", "release", "load_checkpoint", "save_checkpoint", "record_progress"} <= set(METHODS)


@pytest.mark.parametrize("store", [LocalStore, RedisStore], ids=lambda s: s.__name__)
@pytest.mark.parametrize("name", METHODS)
def test_a_store_takes_the_protocols_parameters_and_adds_only_optional_ones(store: type, name: str) -> None:
    promised = inspect.signature(getattr(CheckpointStore, name)).parameters
    given = inspect.signature(getattr(store, name)).parameters
    assert list(given)[: len(promised)] == list(promised), f"{store.__name__}.{name} takes {list(given)}"
    for extra in list(given)[len(promised):]:
        assert given[extra].default is not inspect.Parameter.empty, f"{store.__name__}.{name}: {extra} is required"
