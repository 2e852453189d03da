"""WebAssembly components: the component-model ABI (``extensions/sdk/wit``) beside core modules.

The runtime tells the two apart by the header's layer field (:func:`is_component`);
a component's host calls end in the same :class:`~wasmjob.host.HostState` as a core
module's, so limits, permissions, metering and the store are shared.
"""

from __future__ import annotations

from .format import HOST_INTERFACE, WORLD, is_component
from .runner import ComponentExtension, ComponentRunner

__all__ = [
    # telling components from core modules
    "HOST_INTERFACE",
    "WORLD",
    "is_component",
    # loading and running
    "ComponentExtension",
    "ComponentRunner",
]
