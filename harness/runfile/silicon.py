"""Records of what the silicon can do: its capability (ISA, native dtypes) and its ceilings.

Kept apart from the cell records because they describe the machine, not a measurement: the
capability probe (``harness.measure.capability``) and the roofline ceilings
(``harness.measure.ceilings``) build them once per run, and the reports read them to say which
dtypes ran emulated, which were left out of the default suite, and how far each cell sits below
its roofline. Like every run-file record they import nothing above ``harness.runfile``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Annotated, Literal

from harness.runfile.omit import OMIT_UNSET as _OMIT_UNSET

__all__ = [
    "Bandwidth",
    "BandwidthPoint",
    "Capability",
    "ComputeCeiling",
    "DtypeLeftOut",
    "DtypeSupport",
    "bandwidth_key",
]


def bandwidth_key(backend: str, device: str | None, threads: int | None) -> str:
    """How a run file's ``environment.bandwidths`` names the bandwidth a cell is held to."""
    return f"{backend}/{device or '-'}/t{threads or 'default'}"


@dataclass(frozen=True)
class DtypeSupport:
    """Whether the silicon runs ``dtype`` natively, and the instruction or unit that decides it."""

    dtype: str
    native: bool
    why: str


@dataclass(frozen=True)
class Capability:
    """What one backend's silicon offers, as probed in the process that measures it.

    ``kind`` says which facts apply: on a CPU the ISA oneDNN and ATen dispatch to in this
    process (after ``ONEDNN_MAX_CPU_ISA`` and ``ATEN_CPU_CAPABILITY``, listed in ``limits``) and the
    CPU's flags; on a GPU its compute capability; on Neuron its NeuronCore version.
    """

    backend: str
    kind: Literal["cpu", "cuda", "neuron"]
    summary: str
    dtypes: tuple[DtypeSupport, ...]
    onednn_isa: str | None = None
    aten_capability: str | None = None
    limits: dict[str, str] = field(default_factory=dict)
    cpu_flags: tuple[str, ...] = ()
    compute_capability: str | None = None
    neuroncore_version: int | None = None
    #: How each fact was found ("oneDNN verbose header", "torch.backends.cpu", "NVML", "neuron-ls").
    sources: tuple[str, ...] = ()
    notes: tuple[str, ...] = ()

    def support(self, dtype: str) -> DtypeSupport | None:
        """The verdict for ``dtype`` (None: this probe has none, as for a dtype it never heard of)."""
        return next((s for s in self.dtypes if s.dtype == dtype), None)


@dataclass(frozen=True)
class DtypeLeftOut:
    """A dtype of the default suite not planned on a backend, because its silicon emulates it."""

    backend: str
    dtype: str
    reason: str


@dataclass(frozen=True)
class ComputeCeiling:
    """The best dense compute rate measured for a dtype: the roofline's flat roof.

    ``tried`` holds every shape and path measured (``"mm 1024x1024x1024"``, ``"linear ..."``,
    ``"conv3x3 ..."``) with its FLOP/s, so a reader sees how far apart the paths are; ``best`` names
    the winner.
    """

    dtype: str
    device: str
    threads: int | None
    flops_per_s: float
    best: str
    tried: dict[str, float]
    measured_utc: str
    key: str
    cached: bool = False
    #: Measured while other work held the cores (then used for this run but never cached).
    busy: bool = False


@dataclass(frozen=True)
class BandwidthPoint:
    """The best stream kernel over arrays of ``bytes`` in all: ``bytes_per_s`` moved (reads and writes).

    ``kernel`` names the winner (``triad``, ``read``, ``gemv``); files written before the read
    kernels were measured have none, and their points are the triad's.
    """

    bytes: int
    bytes_per_s: float
    kernel: Annotated[str | None, _OMIT_UNSET] = None


@dataclass(frozen=True)
class Bandwidth:
    """Memory bandwidth by working-set size: the roofline's slanted roof, per level of the hierarchy.

    A working set that fits a cache is served at that cache's rate, so a cell is held to the
    best stream kernel measured over about its own working set (``for_working_set``); the
    largest size, far past the last-level cache, is main memory.
    """

    device: str
    threads: int | None
    points: tuple[BandwidthPoint, ...]
    measured_utc: str
    key: str
    cached: bool = False
    busy: bool = False

    @property
    def main_memory_bytes_per_s(self) -> float:
        """The rate over the largest arrays measured (main memory)."""
        return max(self.points, key=lambda p: p.bytes).bytes_per_s

    def for_working_set(self, working_set_bytes: float) -> BandwidthPoint:
        """The roof for a working set: the fastest point measured over at least half of it.

        A working set streams at least as fast as one twice its size, so the points from half
        of it up bound it from above; the point just below it, not the next one up, sets the
        roof (the next one up may already spill to a slower level, and a cell between two sizes
        then beat its roof: 126% for a 67 MB weight stream held to a 256 MiB rate). Below the
        smallest size measured, the smallest size's rate; past the largest, the largest's.
        """
        ordered = sorted(self.points, key=lambda p: p.bytes)
        eligible = [p for p in ordered if p.bytes >= working_set_bytes / 2]
        if not eligible:
            return ordered[-1]
        return max(eligible, key=lambda p: p.bytes_per_s)
