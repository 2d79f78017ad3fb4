"""Find backends by name: built-ins plus the ``siliconbench.backends`` entry points.

Backends are imported only when asked for; none of them imports torch at module import time.
"""

from __future__ import annotations

import importlib
from importlib.metadata import entry_points

from backends.base import Availability, Backend
from harness.errors import BackendUnavailableError, ConfigError, UnknownNameError

__all__ = ["BUILTIN_BACKENDS", "ENTRY_POINT_GROUP", "available_backends", "get_backend", "require_backend"]

ENTRY_POINT_GROUP = "siliconbench.backends"

BUILTIN_BACKENDS: dict[str, str] = {
    "cpu": "backends.cpu:CpuBackend",
    "cuda": "backends.cuda:CudaBackend",
    "neuron": "backends.neuron:NeuronBackend",
}


def available_backends() -> dict[str, str]:
    """Registered backend names mapped to their import targets (built-ins first)."""
    found = dict(BUILTIN_BACKENDS)
    for ep in entry_points(group=ENTRY_POINT_GROUP):
        found.setdefault(ep.name, ep.value)
    return found


def get_backend(name: str) -> Backend:
    """A new instance of the backend registered as ``name``."""
    known = available_backends()
    if name not in known:
        raise UnknownNameError("backend", name, known)
    module_name, _, attribute = known[name].partition(":")
    try:
        cls = getattr(importlib.import_module(module_name), attribute)
    except (ImportError, AttributeError) as exc:
        raise ConfigError(f"backend {name!r} is registered but cannot be imported: {exc}") from None
    backend: Backend = cls()
    return backend


def require_backend(name: str) -> Backend:
    """The backend, or a one-line error saying why it cannot run here."""
    backend = get_backend(name)
    status: Availability = backend.availability()
    if not status.available:
        raise BackendUnavailableError(f"backend {name!r} is not available here: {status.reason}")
    return backend
