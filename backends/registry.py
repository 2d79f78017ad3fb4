"""Find backends by name: built-ins plus the ``siliconbench.backends`` entry points.

Backends are imported only when asked for; none of them imports torch at module import time.
"""

from __future__ import annotations

from backends.base import Availability, Backend
from harness.errors import BackendUnavailableError, UnknownNameError
from harness.plugins import discover, import_target

__all__ = ["BUILTIN_BACKENDS", "ENTRY_POINT_GROUP", "available_backends", "get_backend", "require_backend"]

ENTRY_POINT_GROUP = "siliconbench.backends"

BUILTIN_BACKENDS: dict[str, str] = {
    "cpu": "backends.cpu:CpuBackend",
    "cuda": "backends.cuda:CudaBackend",
    "neuron": "backends.neuron:NeuronBackend",
}


def available_backends() -> dict[str, str]:
    """Registered backend names mapped to their import targets (built-ins first)."""
    return discover(ENTRY_POINT_GROUP, BUILTIN_BACKENDS)


def get_backend(name: str) -> Backend:
    """A new instance of the backend registered as ``name``."""
    known = available_backends()
    if name not in known:
        raise UnknownNameError("backend", name, known)
    cls = import_target(known[name], f"backend {name!r}")
    backend: Backend = cls()  # type: ignore[operator]
    return backend


def require_backend(name: str) -> Backend:
    """The backend, or a one-line error saying why it cannot run here."""
    backend = get_backend(name)
    status: Availability = backend.availability()
    if not status.available:
        raise BackendUnavailableError(f"backend {name!r} is not available here: {status.reason}")
    return backend
