"""The backend contract: how and on what a workload runs.

A backend prepares (casts, compiles, places) a model, binds its inputs, and offers the
``synchronize`` that makes host-clock timing honest. It never times anything itself: the sampler in
``harness.measure.sampler`` does that the same way for every backend. A device with its own clock hands the
sampler a ``DeviceTimer`` to read, and a device with an energy counter hands the cell an
``EnergyMeter``; both are optional parts of a ``PreparedModel``, so backends without them change
nothing.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Protocol, runtime_checkable

if TYPE_CHECKING:
    import torch

    from harness.runfile.records import Energy

__all__ = ["Availability", "Backend", "BackendOptions", "DeviceTimer", "EnergyMeter", "PreparedModel"]


@dataclass(frozen=True)
class BackendOptions:
    """What the user chose for a cell; each backend validates the values it supports."""

    dtype: str = "fp32"
    mode: str = "eager"
    threads: int | None = None
    device: str | None = None
    extra: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class Availability:
    """Whether a backend can run here, and if not, why in one line."""

    available: bool
    reason: str = ""


class DeviceTimer(Protocol):
    """Timestamps taken by the device itself around one call (CUDA events, say).

    The sampler calls ``start()`` before the call, ``stop()`` right after it and, only after the
    backend's ``synchronize()``, ``elapsed_ns()``. A device clock sees when queued work really ran,
    free of the host's wake-up and scheduling jitter.
    """

    #: Recorded in the cell's ``sampling.timer`` so a reader knows which clock the samples are on.
    name: str

    def start(self) -> None:
        """Mark the start of one call on the device's queue."""
        ...

    def stop(self) -> None:
        """Mark the end of that call on the device's queue."""
        ...

    def elapsed_ns(self) -> int:
        """Device time between the last start and stop; valid only after a synchronize."""
        ...


class EnergyMeter(Protocol):
    """A device energy counter read around the measurement window."""

    def start(self) -> None:
        """Read the counter (and the clock) at the start of the window."""
        ...

    def stop(self, calls: int, batch_size: int) -> Energy:
        """Read it again; the energy of the window, per call and per inference, for the cell.

        Where the counter cannot be read, the figures are None and ``reason`` says why.
        """
        ...


@dataclass
class PreparedModel:
    """A model ready to time: ``call()`` runs one inference on inputs already on the device.

    Binding the inputs before the timed region keeps argument handling out of the measurement.
    ``compile_s`` is the wall time of preparation including the first (compiling) call.
    ``details`` lands in the cell's ``device`` record; ``device_timer`` and ``energy_meter`` are
    offered by devices that have them.
    """

    call: Callable[[], Any]
    compile_s: float
    details: dict[str, Any] = field(default_factory=dict)
    device_timer: DeviceTimer | None = None
    energy_meter: EnergyMeter | None = None


@runtime_checkable
class Backend(Protocol):
    """What every backend provides; registered under the ``siliconbench.backends`` entry points.

    Optional, read with ``getattr``: ``keeps_buffer_updates(options)`` (else the attribute
    ``stateful_buffers``, default True) says whether a model prepared with those options keeps
    in-place updates of its buffers from one call to the next. Where it does not (Neuron's
    ``trace`` compiles buffers into the binary as constants), decoders hand the backend their
    ``parameter_steps()`` instead: a decode step whose state is held as parameters, which it lists
    with ``state_aliases()`` ({parameter: output index}) for the backend to keep on the device and
    takes back with ``bind_state(tensors)`` once compiled; and a prefill whose ``after_call(outputs)``
    the backend calls after each call, to reset that state for the next request.
    """

    name: str
    dtypes: tuple[str, ...]
    modes: tuple[str, ...]
    #: Accelerators default to one child process per cell, so a device fault fails one cell.
    isolate_by_default: bool

    def availability(self) -> Availability:
        """Cheap check (no model work) of whether this backend can run on this machine."""
        ...

    def validate(self, options: BackendOptions) -> None:
        """Raise ``ConfigError`` for options this backend does not support."""
        ...

    def prepare(
        self, model: torch.nn.Module, inputs: tuple[torch.Tensor, ...], options: BackendOptions
    ) -> PreparedModel:
        """Cast, place and compile ``model``, bind ``inputs``, and run it once."""
        ...

    def synchronize(self) -> None:
        """Block until queued device work is done (a no-op on the CPU)."""
        ...

    def to_host(self, output: Any) -> Any:
        """The output as fp32 CPU tensors, for the correctness check."""
        ...

    def device_info(self) -> dict[str, Any]:
        """Facts about the device for the run file's environment."""
        ...

    def reset_peak_memory(self) -> None:
        """Start a fresh peak-memory window for the next cell."""
        ...

    def peak_memory_bytes(self) -> int | None:
        """Peak memory since the last reset, or None where it cannot be known."""
        ...
