"""A cell on the roofline: which roof binds, the fraction of it, and a figure above it as a defect."""

from __future__ import annotations

import pytest

from harness.report.roofline import place
from harness.runfile.silicon import Bandwidth, BandwidthPoint, ComputeCeiling

COMPUTE = ComputeCeiling("fp32", "cpu", 2, 136e9, "mm 1024x1024x1024", {"mm 1024x1024x1024": 136e9}, "t", "k")
BAND = Bandwidth("cpu", 2, (BandwidthPoint(1 << 22, 100e9), BandwidthPoint(1 << 28, 16e9)), "t", "k")


def test_mlp_at_batch_one_is_memory_bound() -> None:
    """4096-wide layers at batch 1: 2 FLOPs per 4-byte weight, intensity 0.5, far left of the ridge."""
    weights = 4 * 4096 * 4096 * 4
    flops = 2.0 * 4 * 4096 * 4096
    point = place(flops, weights, 0.020, COMPUTE, BAND)
    assert point is not None
    assert point.bound == "memory"
    assert point.intensity == pytest.approx(0.5)
    assert point.memory_ceiling == 16e9
    assert point.attainable_flops_per_s == pytest.approx(0.5 * 16e9)
    assert point.achieved_bytes_per_s == pytest.approx(weights / 0.020)
    assert point.fraction == pytest.approx(point.achieved_bytes_per_s / 16e9)
    assert point.defect() is None


def test_a_large_convolution_is_compute_bound() -> None:
    point = place(8e9, 1e8, 0.1, COMPUTE, BAND)  # intensity 80 FLOP/byte, ridge at 8.5
    assert point is not None and point.bound == "compute"
    assert point.fraction == pytest.approx(80e9 / 136e9)


def test_a_figure_above_its_roofline_is_explained_as_a_defect() -> None:
    point = place(8e9, 1e8, 0.05, COMPUTE, BAND)  # 160 GFLOP/s against a 136 GFLOP/s ceiling
    assert point is not None and point.above
    defect = point.defect()
    assert defect is not None
    assert "above the compute ceiling" in defect and "mm 1024x1024x1024" in defect and "ceilings.json" in defect


def test_nothing_to_place_without_its_figures() -> None:
    assert place(0, 1e6, 0.1, COMPUTE, BAND) is None
    assert place(1e6, 0, 0.1, COMPUTE, BAND) is None
    assert place(1e6, 1e6, 0, COMPUTE, BAND) is None
