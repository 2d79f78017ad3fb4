"""A cell on the roofline: its arithmetic intensity, the ceiling that holds it, and how close it is.

The attainable rate at intensity I (FLOPs per byte moved) is ``min(P, I·B)``: P the compute
ceiling of the cell's dtype, B the memory bandwidth over the cell's working set
(``harness.measure.ceilings``). A cell left of the ridge point ``P/B`` is memory-bound: more
arithmetic units would not make it faster, fewer bytes would. "% of peak" alone calls an mlp at
batch 1 a 3% cell, when it runs at most of the memory roof; the roofline says which roof binds.

The bytes are the least a call must move (weights once, inputs and outputs; see
``harness.scenarios.prepare.traffic_bytes``), so the intensity is an upper bound and the memory
roof is never set below what the cell could reach. A figure above its roofline therefore means a
ceiling is wrong (measured on a busy machine, or missing the path the model takes), and the
report says so as a defect rather than showing it as a fraction over 100%.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from harness.runfile.silicon import Bandwidth, ComputeCeiling

__all__ = ["RooflinePoint", "place"]


@dataclass(frozen=True)
class RooflinePoint:
    """Where a cell sits: achieved rates, both ceilings, the one that binds, and the fraction of it."""

    intensity: float
    working_set_bytes: float
    achieved_flops_per_s: float
    achieved_bytes_per_s: float
    compute_ceiling: float
    memory_ceiling: float
    attainable_flops_per_s: float
    bound: Literal["compute", "memory"]
    fraction: float
    compute_path: str
    memory_level_bytes: int
    #: Whether the binding ceiling was measured while other work held the cores.
    ceiling_busy: bool = False
    #: The stream kernel that set the memory roof (None in files that measured only the triad).
    memory_kernel: str | None = None

    @property
    def above(self) -> bool:
        """Whether the cell beat its roofline, which a true ceiling makes impossible."""
        return self.fraction > 1.0

    def defect(self) -> str | None:
        """Why a figure above its ceiling is a defect of the ceiling, and how to remeasure it."""
        if not self.above:
            return None
        if self.bound == "compute":
            what = (
                f"{self.achieved_flops_per_s / 1e9:.3g} GFLOP/s is {self.fraction - 1:.0%} above the compute ceiling "
                f"{self.compute_ceiling / 1e9:.3g} GFLOP/s (best of the shapes tried: {self.compute_path})"
            )
        else:
            what = (
                f"{self.achieved_bytes_per_s / 1e9:.3g} GB/s is {self.fraction - 1:.0%} above the memory ceiling "
                f"{self.memory_ceiling / 1e9:.3g} GB/s ({self.memory_kernel or 'triad'} over "
                f"{self.memory_level_bytes / 2**20:.3g} MiB)"
            )
        if self.ceiling_busy:
            cause = (
                "that ceiling was measured while other work held the cores, so it is too low: rerun on a quiet "
                "machine (a ceiling measured busy is never cached)"
            )
        else:
            cause = (
                "the ceiling is too low (the machine was busier when it was measured than during the cell, or the "
                "model takes a faster path than any shape measured): delete the ceilings cache (ceilings.json under "
                "$SILICONBENCH_CACHE or ~/.cache/siliconbench) to measure it again"
            )
        return f"above its roofline: {what}; {cause}"


def place(
    flops_per_call: float,
    bytes_per_call: float,
    seconds_per_call: float,
    compute: ComputeCeiling,
    bandwidth: Bandwidth,
) -> RooflinePoint | None:
    """The cell's point on the roofline; None when a figure it needs is missing or zero."""
    if not (flops_per_call > 0 and bytes_per_call > 0 and seconds_per_call > 0 and compute.flops_per_s > 0):
        return None
    level = bandwidth.for_working_set(bytes_per_call)
    if not level.bytes_per_s > 0:
        return None
    intensity = flops_per_call / bytes_per_call
    memory_roof = intensity * level.bytes_per_s
    attainable = min(compute.flops_per_s, memory_roof)
    achieved = flops_per_call / seconds_per_call
    compute_bound = compute.flops_per_s <= memory_roof
    return RooflinePoint(
        intensity=intensity,
        working_set_bytes=bytes_per_call,
        achieved_flops_per_s=achieved,
        achieved_bytes_per_s=bytes_per_call / seconds_per_call,
        compute_ceiling=compute.flops_per_s,
        memory_ceiling=level.bytes_per_s,
        attainable_flops_per_s=attainable,
        bound="compute" if compute_bound else "memory",
        fraction=achieved / attainable,
        compute_path=compute.best,
        memory_level_bytes=level.bytes,
        ceiling_busy=compute.busy if compute_bound else bandwidth.busy,
        memory_kernel=level.kernel,
    )
