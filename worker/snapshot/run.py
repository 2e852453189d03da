"""The snapshot-mode branch of a run: fresh start or restore, then the driver's call loop."""

from __future__ import annotations

from typing import TYPE_CHECKING

import wasmtime

from ..errors import ModuleError, SnapshotError
from .driver import Unwinder
from .image import Image
from .storage import SnapshotStore

if TYPE_CHECKING:
    from ..host import HostState


def execute(
    host: HostState,
    store: wasmtime.Store,
    instance: wasmtime.Instance,
    export: str,
    args: tuple[int, ...] | None,
    image: Image | None,
    snapshots: SnapshotStore | None,
    every: float | None,
) -> int:
    """Run ``export`` with ``args`` (a first run), or restore ``image`` and rewind into it; returns the code."""
    func = instance.exports(store).get(export)
    if not isinstance(func, wasmtime.Func):
        raise ModuleError(f"the module does not export {export!r}")
    unwinder = Unwinder(host, store, instance, snapshots, every)
    host.unwinder = unwinder
    try:
        if image is None:
            assert args is not None
            unwinder.allocate_buffer()
            return unwinder.execute(func, export, args)
        if image.export != export:
            raise SnapshotError(f"the snapshot was taken in export {image.export!r}, not {export!r}", job_id=host.job_id)
        unwinder.restore(image)
        return unwinder.execute(func, export, image.args, rewind=True)
    finally:
        host.unwinder = None  # plugin_cleanup runs as in checkpoint mode: nothing unwinds it
