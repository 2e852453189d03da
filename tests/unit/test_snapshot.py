"""Transparent snapshots: instrumentation, unwind/rewind, exact restore, compact storage.

The N-Queens example keeps its whole state in recursion and never checkpoints;
runs cut short by pauses and periodic snapshots must give exactly the result of
one uninterrupted run of the uninstrumented module.
"""

from __future__ import annotations

import dataclasses
import json
import os
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest
import wasmtime

from wasmjob import wasmbin
from wasmjob.errors import ManifestError, SnapshotError
from wasmjob.job import InterruptFlag, InterruptReason, JobSpec, Status
from wasmjob.manifest import Manifest, find_manifest
from wasmjob.runtime import Extension, Runtime, RuntimeConfig
from wasmjob.snapshot import image as img
from wasmjob.snapshot.driver import Unwinder
from wasmjob.snapshot.globals_export import GLOBAL_EXPORT_PREFIX, defined_globals
from wasmjob.snapshot.storage import SnapshotStore
from wasmjob.store import LocalStore

ROOT = Path(__file__).resolve().parents[2]
NQUEENS = ROOT / "extensions" / "nqueens" / "nqueens.wasm"
SOLUTIONS = {8: 92, 10: 724, 11: 2680, 12: 14200}

pytestmark = pytest.mark.skipif(shutil.which("wasm-opt") is None, reason="binaryen's wasm-opt is not installed")


@pytest.fixture(scope="module")
def rt(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Runtime]:
    runtime = Runtime(RuntimeConfig(cache_dir=tmp_path_factory.mktemp("cache") / "modules"))
    yield runtime
    runtime.close()


@pytest.fixture(scope="module")
def snap_ext(rt: Runtime) -> Extension:
    return rt.load(NQUEENS.read_bytes(), find_manifest(NQUEENS))


@pytest.fixture(scope="module")
def plain_ext(rt: Runtime) -> Extension:
    manifest = dataclasses.replace(find_manifest(NQUEENS), durability="checkpoint")
    return rt.load(NQUEENS.read_bytes(), manifest)


@pytest.fixture
def store(tmp_path: Path) -> Iterator[LocalStore]:
    st = LocalStore(tmp_path / "state")
    yield st
    st.close()


def _run(rt: Runtime, ext: Extension, store: LocalStore, spec: JobSpec, flag: InterruptFlag | None = None, **limits):
    token = store.acquire(spec.job_id, "test", 60)
    try:
        return rt.run(ext, spec, store, token, flag, ext.manifest.limits.merged(**limits))
    finally:
        store.release(spec.job_id, token)


def test_the_extension_keeps_its_identity_and_runs_instrumented_bytes(snap_ext: Extension, plain_ext: Extension) -> None:
    assert snap_ext.digest == plain_ext.digest  # the original module's digest names the extension
    assert snap_ext.instrumented_digest.startswith("sha256:") and snap_ext.instrumented_digest != snap_ext.digest
    described = snap_ext.describe()
    assert described["durability"] == "snapshot" and plain_ext.describe()["durability"] == "checkpoint"
    assert {"asyncify_start_unwind", "asyncify_start_rewind"} <= set(snap_ext.shape.exports)


def test_every_mutable_global_is_exported(rt: Runtime, snap_ext: Extension) -> None:
    code = rt.instrumenter.get(NQUEENS.read_bytes())
    mutable = [g.index for g in defined_globals(code) if g.mutable]
    exported = {e.name: e.index for e in wasmbin.inspect(code).exports if e.kind == wasmbin.KIND_GLOBAL}
    assert mutable and {f"{GLOBAL_EXPORT_PREFIX}{i}": i for i in mutable}.items() <= exported.items()
    assert len(mutable) > 1  # not only the stack pointer: asyncify's own state globals too


def test_periodic_snapshots_do_not_change_the_result(rt: Runtime, snap_ext: Extension, store: LocalStore) -> None:
    # a period of a nanosecond: every safe point (each 4096 placements) takes a snapshot
    out = _run(rt, snap_ext, store, JobSpec("nqueens", {"n": 11}), snapshot_seconds=1e-9)
    assert out.status is Status.COMPLETED, out.reason
    assert out.result == {"n": 11, "solutions": SOLUTIONS[11]}
    assert out.snapshots.taken >= 20  # each one unwound the stack and rewound it in place


def test_pauses_and_resumes_in_fresh_instances_give_the_uninterrupted_result(
    rt: Runtime, snap_ext: Extension, plain_ext: Extension, store: LocalStore
) -> None:
    """Each run is paused before it starts: a resumed run rewinds to its safe point, carries on to
    the next one (4096 placements later) and is snapshotted there, so every run does a little."""
    plain = _run(rt, plain_ext, store, JobSpec("nqueens", {"n": 10}))
    assert plain.result == {"n": 10, "solutions": SOLUTIONS[10]}
    spec = JobSpec("nqueens", {"n": 10})
    runs = 0
    while True:
        flag = InterruptFlag()
        flag.request(InterruptReason.PAUSE)
        out = _run(rt, snap_ext, store, spec, flag)
        runs += 1
        if out.status is not Status.INTERRUPTED:
            break
        assert out.interrupt is InterruptReason.PAUSE
        assert img.is_snapshot(store.load_checkpoint(spec.job_id))
        assert runs < 500
    assert out.status is Status.COMPLETED, out.reason
    assert runs >= 5, "the job finished before it was paused and resumed a few times"
    assert out.result == plain.result


def test_a_restored_instance_is_the_snapshotted_one(rt: Runtime, snap_ext: Extension, store: LocalStore) -> None:
    """plugin_init ran in the fresh instance, then the memory and globals went back: a capture taken
    right after the restore equals the snapshot bit for bit."""
    spec = JobSpec("nqueens", {"n": 12})
    flag = InterruptFlag()
    flag.request(InterruptReason.PAUSE)  # unwinds at the first safe point
    out = _run(rt, snap_ext, store, spec, flag)
    assert out.status is Status.INTERRUPTED
    saved = SnapshotStore(store, spec.job_id, 0, 1 << 30).load(store.load_checkpoint(spec.job_id))
    host = rt._host(spec, snap_ext.manifest, snap_ext.manifest.limits)
    wasm_store = rt._store(snap_ext.manifest.limits, rt.sandbox(snap_ext.metered).engine, snap_ext.metered)
    with host:
        instance = snap_ext.pre.instantiate(wasm_store)
        rt._attach(host, wasm_store, instance)
        rt._init(host, wasm_store, instance)
        unwinder = Unwinder(host, wasm_store, instance, None, None)
        assert host.memory_bytes() != saved.memory
        unwinder.restore(saved)
        again = unwinder.capture(saved.export, saved.args, saved.reason)
    assert again.memory == saved.memory
    assert again.globals == saved.globals and len(saved.globals) >= 2
    assert again.buffer == saved.buffer != 0


def test_a_cancel_saves_a_snapshot_and_stops(rt: Runtime, snap_ext: Extension, store: LocalStore) -> None:
    spec = JobSpec("nqueens", {"n": 12})
    flag = InterruptFlag()
    flag.request(InterruptReason.CANCEL)
    out = _run(rt, snap_ext, store, spec, flag)
    assert out.status is Status.INTERRUPTED and out.interrupt is InterruptReason.CANCEL
    assert img.is_snapshot(store.load_checkpoint(spec.job_id))


def test_a_snapshot_over_the_cap_fails_the_job_with_the_reason(rt: Runtime, snap_ext: Extension, store: LocalStore) -> None:
    out = _run(rt, snap_ext, store, JobSpec("nqueens", {"n": 12}), snapshot_seconds=0.001, max_checkpoint_bytes=64)
    assert out.status is Status.FAILED
    assert "snapshot of" in out.reason and "exceeds the limit of 64 bytes" in out.reason


def test_deltas_carry_only_changed_chunks_and_rebuild_exactly(store: LocalStore) -> None:
    job = "11111111-1111-1111-1111-111111111111"
    token = store.acquire(job, "test", 60)
    snaps = SnapshotStore(store, job, token, 1 << 30, full_every=3)
    memory = bytearray(os.urandom(4 << 20))  # 4 MiB that zstd cannot shrink
    sizes = []
    for step in range(5):
        memory[step * 10_000] ^= 0xFF
        image = img.Image(bytes(memory), {"g": ["i32", step]}, 1024, "execute_x", (1, 2, 3, 4), b"{}", "periodic")
        sizes.append(snaps.save(image))
        loaded = SnapshotStore(store, job, token, 1 << 30).load(store.load_checkpoint(job))
        assert loaded.memory == bytes(memory) and loaded.globals == {"g": ["i32", step]}
        assert loaded.args == (1, 2, 3, 4) and loaded.last_state == b"{}"
    assert snaps.stats.full == 2  # the first, then one after full_every deltas
    assert sizes[1] < sizes[0] / 20 and sizes[2] < sizes[0] / 20  # a delta: one 4 KiB chunk, compressed
    assert store.load_snapshot_base(job, "a") and store.load_snapshot_base(job, "b")


def test_a_full_snapshot_written_without_its_delta_leaves_the_old_one_whole(store: LocalStore) -> None:
    """A crash between the base write and the state write: the state still names the other slot."""
    job = "22222222-2222-2222-2222-222222222222"
    token = store.acquire(job, "test", 60)
    snaps = SnapshotStore(store, job, token, 1 << 30)
    first = img.Image(os.urandom(128 * 1024), {}, 8, "execute_x", (0, 0, 0, 0))
    snaps.save(first)
    snaps._write_full(img.Image(os.urandom(128 * 1024), {}, 8, "execute_x", (0, 0, 0, 0)), 7, None)
    assert SnapshotStore(store, job, token, 1 << 30).load(store.load_checkpoint(job)).memory == first.memory


def test_a_damaged_snapshot_is_refused_with_a_reason() -> None:
    blob = img.encode(img.Image(bytes(65536)), "full", 1, [])
    with pytest.raises(SnapshotError, match="damaged"):
        img.decode(blob[:-5])
    assert not img.is_snapshot(b'{"n": 1}')


def test_durability_must_be_a_known_mode() -> None:
    base = {"id": "x", "name": "x", "version": "1.0.0"}
    assert Manifest.from_dict(base).durability == "checkpoint"
    assert Manifest.from_dict(base | {"wasmjob": {"durability": "snapshot"}}).durability == "snapshot"
    with pytest.raises(ManifestError, match="wasmjob.durability"):
        Manifest.from_dict(base | {"wasmjob": {"durability": "replay"}})


def test_a_module_that_is_already_instrumented_is_refused(rt: Runtime) -> None:
    code = rt.instrumenter.get(NQUEENS.read_bytes())
    manifest = dataclasses.replace(find_manifest(NQUEENS), id="twice")
    with pytest.raises(SnapshotError, match="instrumented before"):
        rt.load(code, manifest)
    assert wasmtime.Module(rt.engine, code)  # the instrumented bytes themselves are valid


def test_a_rust_sdk_job_opts_in_with_its_manifest_alone(rt: Runtime, store: LocalStore) -> None:
    """The Rust counter, unchanged, in snapshot mode: paused at every safe point, same result."""
    path = ROOT / "extensions" / "counter-rs" / "counter-rs.wasm"
    plain = rt.load(path.read_bytes(), find_manifest(path))
    snap = rt.load(path.read_bytes(), dataclasses.replace(find_manifest(path), durability="snapshot"))
    expected = _run(rt, plain, store, JobSpec("counter", {"target": 12})).result
    spec = JobSpec("counter", {"target": 12})
    for runs in range(1, 200):
        flag = InterruptFlag()
        flag.request(InterruptReason.PAUSE)
        out = _run(rt, snap, store, spec, flag)
        if out.status is not Status.INTERRUPTED:
            break
    assert out.status is Status.COMPLETED, out.reason
    assert runs > 12 and out.result == expected and expected["current"] == 12


def test_ctrl_c_pauses_a_local_run_into_a_snapshot_and_the_next_run_finishes_it(tmp_path: Path) -> None:
    import signal
    import sqlite3
    import subprocess
    import sys
    import time

    def run() -> subprocess.Popen[str]:
        return subprocess.Popen(
            [sys.executable, "-m", "wasmjob", "run", str(NQUEENS), "nqueens", "--params", '{"n": 14}',
             "--state-dir", "state", "--quiet", "--snapshot-every", "0.05"],
            cwd=tmp_path, env=os.environ | {"PYTHONUNBUFFERED": "1"}, text=True,
            stdout=subprocess.PIPE, stderr=subprocess.PIPE,
        )

    def snapshotted() -> bool:
        try:
            with sqlite3.connect(tmp_path / "state" / "wasmjob.sqlite3") as db:
                row = db.execute("SELECT checkpoints FROM jobs").fetchone()
        except sqlite3.Error:
            return False
        return bool(row and row[0] > 0)

    first = run()
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and not snapshotted() and first.poll() is None:
        time.sleep(0.02)
    first.send_signal(signal.SIGINT)
    out, err = first.communicate(timeout=60)
    assert first.returncode == 130, err
    assert "after a snapshot" in err and out == ""
    again = run()
    out, err = again.communicate(timeout=120)
    assert again.returncode == 0, err
    assert "resuming job" in err
    assert json.loads(out) == {"n": 14, "solutions": 365_596}


def test_resumed_runs_store_deltas_on_the_full_snapshot_they_restored(rt: Runtime, store: LocalStore) -> None:
    """primes with a 128 KiB sieve segment (over the 64 KiB 'small image' line): every run restores a
    delta over its full snapshot and, paused again, writes only a delta on that same full one."""
    path = ROOT / "extensions" / "primes" / "primes.wasm"
    plain = rt.load(path.read_bytes(), find_manifest(path))
    snap = rt.load(path.read_bytes(), dataclasses.replace(find_manifest(path), durability="snapshot"))
    params = {"limit": 4_000_000, "segment": 131_072, "poll_segments": 1}
    big = {"max_checkpoint_bytes": 8 << 20}
    expected = _run(rt, plain, store, JobSpec("count_primes", params), **big).result
    spec = JobSpec("count_primes", params)
    deltas_only = 0
    for runs in range(1, 100):
        flag = InterruptFlag()
        flag.request(InterruptReason.PAUSE)
        out = _run(rt, snap, store, spec, flag, **big)
        if out.status is not Status.INTERRUPTED:
            break
        assert out.snapshots.taken == 1
        deltas_only += out.snapshots.full == 0
    assert out.status is Status.COMPLETED, out.reason
    assert out.result == expected and expected["count"] == 283_146
    assert runs > 5 and deltas_only >= runs // 2


HEAP_JOB = """
    (i32.store (i32.const 2048) (global.get $heap))
    (block $done (loop $l
      (br_if $done (i32.ge_u (local.get $i) (i32.const 50)))
      (drop (call $alloc (i32.const 16)))
      (drop (call $check_interrupt (i32.const 128)))
      (local.set $i (i32.add (local.get $i) (i32.const 1)))
      (br $l)))
    (i32.store8 (i32.const 3000)
      (i32.add (i32.const 48) (i32.ge_s (i32.sub (global.get $heap) (i32.load (i32.const 2048))) (i32.const 800))))
    (drop (call $checkpoint (i32.const 128) (i32.const 3000) (i32.const 1)))
    (i32.const 0)"""


def _snapshot_manifest(name: str) -> Manifest:
    return dataclasses.replace(Manifest.default(name), durability="snapshot")


def test_a_guest_global_other_than_the_stack_pointer_is_restored(rt: Runtime, store: LocalStore) -> None:
    """The module's allocator keeps its heap top in a mutable global: paused after every allocation
    and resumed in fresh instances, the job still sees all 50 allocations (result 1, not 0)."""
    from .wat import wat_module

    ext = rt.load(wat_module(HEAP_JOB), _snapshot_manifest("heap"))
    spec = JobSpec("main")
    for runs in range(1, 200):
        flag = InterruptFlag()
        flag.request(InterruptReason.PAUSE)
        out = _run(rt, ext, store, spec, flag)
        if out.status is not Status.INTERRUPTED:
            break
    assert out.status is Status.COMPLETED, out.reason
    assert runs > 40 and out.result == 1


def test_a_job_that_never_reaches_a_safe_point_cannot_be_paused(rt: Runtime, store: LocalStore) -> None:
    from .wat import wat_module

    body = """
    (block $done (loop $l
      (br_if $done (i32.ge_u (local.get $i) (i32.const 100000)))
      (local.set $i (i32.add (local.get $i) (i32.const 1)))
      (br $l)))
    (i32.store8 (i32.const 3000) (i32.const 55))
    (drop (call $checkpoint (i32.const 128) (i32.const 3000) (i32.const 1)))
    (i32.const 0)"""
    ext = rt.load(wat_module(body), _snapshot_manifest("noimports"))
    flag = InterruptFlag()
    flag.request(InterruptReason.PAUSE)
    out = _run(rt, ext, store, JobSpec("main"), flag)
    assert out.status is Status.COMPLETED and out.result == 7
    assert out.snapshots.taken == 0


def test_a_store_outage_skips_periodic_snapshots_and_the_job_goes_on(rt: Runtime, snap_ext: Extension, store: LocalStore) -> None:
    from wasmjob.errors import StoreUnavailable

    class Flaky:
        """The local store, except that snapshot writes fail as if the store were down."""

        def __getattr__(self, name: str):
            return getattr(store, name)

        def save_checkpoint(self, job_id, token, state, update=None):
            if img.is_snapshot(state):
                raise StoreUnavailable("store down")
            store.save_checkpoint(job_id, token, state, update)

    spec = JobSpec("nqueens", {"n": 10})
    token = store.acquire(spec.job_id, "test", 60)
    out = rt.run(snap_ext, spec, Flaky(), token, None, snap_ext.manifest.limits.merged(snapshot_seconds=1e-9))
    assert out.status is Status.COMPLETED, out.reason
    assert out.result == {"n": 10, "solutions": SOLUTIONS[10]}
    assert any("snapshot not saved: store down" in w for w in out.warnings)
