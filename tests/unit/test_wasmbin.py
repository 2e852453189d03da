"""The WASM binary reader: LEB128, sections, and the counts policy puts ceilings on."""

from __future__ import annotations

import pytest
import wasmtime

from wasmjob.wasmbin import (
    KIND_FUNC,
    KIND_MEMORY,
    WasmFormatError,
    encode_name,
    encode_uleb,
    inspect,
    read_sleb,
    read_uleb,
    sections,
)

from .wat import wat_module


@pytest.mark.parametrize("value", [0, 1, 127, 128, 300, 2**31, 2**32 - 1])
def test_uleb_round_trips(value: int) -> None:
    raw = encode_uleb(value)
    assert read_uleb(raw + b"\xff", 0) == (value, len(raw))


def test_uleb_refuses_values_past_its_width_and_truncation() -> None:
    with pytest.raises(WasmFormatError, match="too large"):
        read_uleb(encode_uleb(2**32), 0)
    with pytest.raises(WasmFormatError, match="longer than"):
        read_uleb(b"\x80" * 6 + b"\x00", 0)
    with pytest.raises(WasmFormatError, match="end of module"):
        read_uleb(b"\x80", 0)


def test_sleb_reads_negative_numbers() -> None:
    assert read_sleb(b"\x7f", 0) == (-1, 1)
    assert read_sleb(b"\x80\x7f", 0) == (-128, 2)
    assert read_sleb(b"\x3f", 0) == (63, 1)


def test_name_is_length_prefixed_utf8() -> None:
    assert encode_name("é") == b"\x02\xc3\xa9"


def test_counts_of_a_module_match_what_it_declares() -> None:
    wasm = wasmtime.wat2wasm(
        """(module
          (import "env" "f" (func $f))
          (import "env" "mem" (memory 2 10))
          (import "env" "tab" (table 7 funcref))
          (global $g (mut i32) (i32.const 0))
          (global $h i64 (i64.const 11))
          (table 100 200 funcref)
          (elem (i32.const 0) func $a $b)
          (func $a) (func $b) (func $c (export "c"))
          (data (i32.const 0) "x") (data (i32.const 8) "y") (data "passive")
          (export "g" (global $g)))"""
    )
    info = inspect(wasm)
    assert info.size == len(wasm)
    assert info.functions == 3
    assert info.imported(KIND_FUNC) == 1
    assert info.imported(KIND_MEMORY) == 1
    assert info.globals == 2
    assert info.data_segments == 3
    assert info.element_segments == 1
    assert info.table_entries == 107
    assert [(m.minimum, m.maximum) for m in info.memories] == [(2, 10)]
    assert info.export_names() == ["c", "g"]
    assert info.export_names(KIND_FUNC) == ["c"]
    assert [s.kind for s in info.sections][:3] == ["type", "import", "function"]


def test_sdk_style_module_reads_cleanly() -> None:
    info = inspect(wat_module("(i32.const 0)"))
    assert "execute_main" in info.export_names()
    assert info.memories and info.memories[0].minimum == 1
    assert info.imported(KIND_FUNC) >= 9


def test_table_with_an_initial_value_expression_is_counted() -> None:
    # table section: 1 table, 0x40 0x00, funcref, limits min 5, init (ref.null func) end
    body = b"\x01\x40\x00\x70\x00\x05\xd0\x70\x0b"
    wasm = b"\0asm\x01\0\0\0" + b"\x04" + encode_uleb(len(body)) + body
    assert inspect(wasm).table_entries == 5


def test_custom_sections_carry_their_name() -> None:
    payload = encode_name("name") + b"\x00"
    wasm = b"\0asm\x01\0\0\0" + b"\x00" + encode_uleb(len(payload)) + payload
    (sec,) = sections(wasm)
    assert (sec.kind, sec.name) == ("custom", "name")


@pytest.mark.parametrize(
    "wasm, match",
    [
        (b"not wasm", "header"),
        (b"\0asm\x0d\0\x01\0", "version 1"),
        (b"\0asm\x01\0\0\0\x03\x10\x01", "past the end"),
        # function section claiming 2**31 functions in 5 bytes
        (b"\0asm\x01\0\0\0\x03\x05" + encode_uleb(2**31), "claims"),
        (b"\0asm\x01\0\0\0\x07\x03\x01\x05a", "past the end of its section"),
    ],
)
def test_malformed_modules_are_refused_with_a_reason(wasm: bytes, match: str) -> None:
    with pytest.raises(WasmFormatError, match=match):
        inspect(wasm)
