"""Each Lua script and its Python contract name the same keys, in the same order, and the same arguments."""

from __future__ import annotations

import re

import msgpack
import pytest

from wasmjob.store import contracts as c
from wasmjob.store.redis import LUA_DIR

pytestmark = pytest.mark.unit

_NAMED_KEYS = re.compile(r"named_keys\(([^)]*)\)")
_ARG_USE = re.compile(r"\bA\.([A-Za-z_][A-Za-z0-9_]*)")


def _lua(script: str) -> str:
    text = (LUA_DIR / f"{script}.lua").read_text()
    return "\n".join(line.split("--", 1)[0] for line in text.splitlines())  # code only, not comments


def test_every_script_has_exactly_one_contract() -> None:
    scripts = {p.stem for p in LUA_DIR.glob("*.lua") if not p.stem.startswith("_")}
    assert sorted(k.SCRIPT for k in c.CONTRACTS) == sorted(scripts)


@pytest.mark.parametrize("contract", c.CONTRACTS, ids=lambda k: k.SCRIPT)
def test_the_script_names_the_contracts_keys_in_order(contract: type[c.Contract]) -> None:
    calls = _NAMED_KEYS.findall(_lua(contract.SCRIPT))
    assert len(calls) == 1, f"{contract.SCRIPT}.lua must name its keys once with named_keys(...)"
    names = tuple(re.findall(r"'([^']*)'", calls[0]))
    assert names == contract.KEY_NAMES


@pytest.mark.parametrize("contract", c.CONTRACTS, ids=lambda k: k.SCRIPT)
def test_the_script_reads_every_argument_of_its_contract_and_no_other(contract: type[c.Contract]) -> None:
    code = _lua(contract.SCRIPT)
    assert "ARGV" not in code and "KEYS" not in code, "read arguments as A.<name> and keys as K.<name>"
    assert "local A = args()" in code
    assert set(_ARG_USE.findall(code)) == set(contract.ARG_NAMES)


def test_a_call_encodes_its_keys_in_order_and_its_arguments_as_one_named_map() -> None:
    call = c.Release(lease="L", ext_running="R", token=7, owner="w", job_id="j")
    keys, argv = call.encoded()
    assert keys == ["L", "R"]
    assert msgpack.unpackb(argv) == {"token": 7, "owner": "w", "job_id": "j"}
    keys, _ = c.Release(lease="L", ext_running=None, token=7, owner="w", job_id="j").encoded()
    assert keys == ["L"]  # an optional last key is left out, and the script sees it as nil


def test_a_missing_or_unknown_field_fails_where_the_call_is_built() -> None:
    with pytest.raises(TypeError):
        c.OutboxAck(outbox="o", job="j", job_id="x")  # type: ignore[call-arg]
    with pytest.raises(TypeError):
        c.OutboxAck(outbox="o", job="j", job_id="x", dispatch=1, dispach=2)  # type: ignore[call-arg]
