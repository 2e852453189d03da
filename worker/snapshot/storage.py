"""Where one job's snapshots go: through its checkpoint store, fenced by the run's lease token.

A full snapshot goes to one of two *base slots* (``a``/``b``, alternating);
then the job's state gets a small delta naming it. Later snapshots write only a
delta: the chunks that differ from that full one. A crash between the two
writes leaves the state naming the other, untouched slot, so what is stored is
always a complete snapshot. A new full one is written every ``full_every``
snapshots, or sooner once the delta grows past half of the full one.
Stores without base slots get a full snapshot in the state every time.
"""

from __future__ import annotations

import secrets
import time
from dataclasses import dataclass, field
from typing import Protocol, runtime_checkable

from ..errors import CheckpointTooLarge
from ..store.base import CheckpointStore, ProgressUpdate
from . import image as img

FULL_EVERY = 16
SMALL_BYTES = 64 * 1024
"""An image with less non-zero memory than this is written whole into the state: one write, no delta."""
SLOTS = ("a", "b")


@runtime_checkable
class SnapshotBases(Protocol):
    """A checkpoint store that also keeps full snapshots in per-job slots, fenced like checkpoints."""

    def save_snapshot_base(self, job_id: str, token: int, slot: str, data: bytes) -> None: ...

    def load_snapshot_base(self, job_id: str, slot: str) -> bytes | None: ...


@dataclass
class SnapshotStats:
    """What one run's snapshots cost: counts, bytes written, seconds spent, and the raw memory size."""

    taken: int = 0
    full: int = 0
    bytes_written: int = 0
    memory_bytes: int = 0
    save_seconds: float = 0.0
    restore_seconds: float = 0.0
    sizes: list[int] = field(default_factory=list)


class SnapshotStore:
    """Saves and loads one job's snapshots; takes the checkpoint store, job id, lease token and size cap."""

    def __init__(self, store: CheckpointStore, job_id: str, token: int, cap: int, *, full_every: int = FULL_EVERY) -> None:
        self.store = store
        self.job_id = job_id
        self.token = token
        self.cap = cap
        self.full_every = full_every
        self.bases = store if isinstance(store, SnapshotBases) else None
        self.stats = SnapshotStats()
        self._base: tuple[str, int] | None = None  # (slot, id) of the full snapshot deltas build on
        self._base_memory: bytes | bytearray = b""
        self._base_blob: img.Blob | None = None  # after a restore: the full snapshot, rebuilt when first needed
        self._base_bytes = 0
        self._since_full = 0

    # saving ------------------------------------------------------------------------

    def save(self, image: img.Image, update: ProgressUpdate | None = None) -> int:
        """Write ``image`` durably (raises CheckpointTooLarge, LeaseLost, StoreUnavailable); returns its bytes."""
        started = time.perf_counter()
        blob_id = secrets.randbits(62)
        written = 0
        nonzero = img.nonzero_chunks(image.memory) if self._base is None else None
        if self.bases is None or (nonzero is not None and len(nonzero) * img.CHUNK < SMALL_BYTES):
            blob = img.encode(image, "full", blob_id, nonzero if nonzero is not None else img.nonzero_chunks(image.memory))
            self._put_state(blob, update)
            written = len(blob)
        else:
            if self._base_blob is not None:
                self._base_memory, self._base_blob = img.rebuild(self._base_blob, None).memory, None
            delta = img.changed_chunks(image.memory, self._base_memory) if self._base else None
            if delta is None or self._since_full >= self.full_every or len(delta) * img.CHUNK > self._base_bytes // 2:
                written += self._write_full(image, blob_id, nonzero)
                delta = []
            blob = img.encode(image, "delta", secrets.randbits(62), delta, self._base)
            self._put_state(blob, update)
            written += len(blob)
            self._since_full += 1
        self.stats.taken += 1
        self.stats.bytes_written += written
        self.stats.sizes.append(written)
        self.stats.memory_bytes = len(image.memory)
        self.stats.save_seconds += time.perf_counter() - started
        return written

    def _write_full(self, image: img.Image, blob_id: int, chunks: list[int] | None) -> int:
        assert self.bases is not None
        slot = SLOTS[1] if self._base and self._base[0] == SLOTS[0] else SLOTS[0]
        chunks = chunks if chunks is not None else img.nonzero_chunks(image.memory)
        blob = img.encode(image, "full", blob_id, chunks)
        self._check_cap(blob)
        self.bases.save_snapshot_base(self.job_id, self.token, slot, blob)
        self._base = (slot, blob_id)
        self._base_memory, self._base_blob = image.memory, None
        self._base_bytes = max(len(chunks) * img.CHUNK, img.CHUNK)
        self._since_full = 0
        self.stats.full += 1
        return len(blob)

    def _put_state(self, blob: bytes, update: ProgressUpdate | None) -> None:
        self._check_cap(blob)
        self.store.save_checkpoint(self.job_id, self.token, blob, update)

    def _check_cap(self, blob: bytes) -> None:
        if len(blob) > self.cap:
            raise CheckpointTooLarge(
                f"snapshot of {len(blob)} bytes (compressed) exceeds the limit of {self.cap} bytes", job_id=self.job_id
            )

    # loading -----------------------------------------------------------------------

    def load(self, state: bytes) -> img.Image:
        """The image stored state stands for (reading its full snapshot when it is a delta)."""
        started = time.perf_counter()
        top = img.decode(state)
        full = None
        if top.kind == "delta":
            slot, blob_id = top.header["base"]
            raw = self.bases.load_snapshot_base(self.job_id, slot) if self.bases is not None else None
            full = img.decode(raw) if raw is not None else None
            image = img.rebuild(top, full)
            if full is not None:  # later deltas keep building on the same full snapshot
                self._base = (slot, int(blob_id))
                self._base_blob = full
                self._base_bytes = max(len(full.chunks) * img.CHUNK, img.CHUNK)
        else:
            image = img.rebuild(top, None)
        self.stats.restore_seconds += time.perf_counter() - started
        self.stats.memory_bytes = len(image.memory)
        return image
