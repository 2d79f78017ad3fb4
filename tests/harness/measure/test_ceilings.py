"""Ceilings: the best of several shapes and paths, bandwidth by working set, cached with conditions."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from harness.measure import ceilings
from harness.measure.ceilings import bandwidth_key, compute_shapes, measure_bandwidth, measure_compute, run_ceilings
from harness.measure.peak import peak_key
from harness.runfile.silicon import Bandwidth, BandwidthPoint
from tests.harness.runfactory import make_run


class Clock:
    def __init__(self) -> None:
        self.now = 0

    def __call__(self) -> int:
        return self.now


def _shape(clock: Clock, name: str, flops: float, ns: int, ran: list[str]) -> Any:
    def build() -> Any:
        def call() -> None:
            ran.append(name)
            clock.now += ns

        return call

    return (name, flops, build)


def test_the_ceiling_is_the_best_shape_not_the_largest_square_product() -> None:
    """The issue's machine: 2048² reached 111 GFLOP/s, 1024² 136, a 3x3 convolution 134."""
    clock, ran = Clock(), []
    shapes = [
        _shape(clock, "mm 1024x1024x1024", 2.0 * 1024**3, int(2.0 * 1024**3 / 136e9 * 1e9), ran),
        _shape(clock, "conv3x3 64->64 56x56 bs1", 231e6, int(231e6 / 134e9 * 1e9), ran),
        _shape(clock, "mm 2048x2048x2048", 2.0 * 2048**3, int(2.0 * 2048**3 / 111e9 * 1e9), ran),
    ]
    best, name, tried = measure_compute("fp32", budget_s=100, clock=clock, shapes=shapes)
    assert name == "mm 1024x1024x1024"
    assert best == pytest.approx(136e9, rel=1e-3)
    assert set(tried) == {s[0] for s in shapes}


def test_a_shape_that_would_overrun_the_budget_is_never_started() -> None:
    """An emulated dtype: the cheapest shape runs; one predicted to overrun the budget never starts."""
    clock, ran = Clock(), []
    shapes = [
        _shape(clock, "small", 1e9, 100_000_000, ran),  # 10 GFLOP/s: 0.1 s a call
        _shape(clock, "huge", 1e12, 100_000_000_000, ran),  # predicted 100 s a call
    ]
    best, name, tried = measure_compute("bf16", budget_s=2.0, clock=clock, shapes=shapes)
    assert (name, list(tried)) == ("small", ["small"])
    assert "huge" not in ran
    assert best == pytest.approx(1e10)


def test_the_real_shapes_cover_products_linear_layers_and_convolutions() -> None:
    names = [name for name, _, _ in compute_shapes("fp32", "cpu")]
    assert any(n.startswith("mm ") for n in names)
    assert any(n.startswith("linear ") for n in names)
    assert any(n.startswith("conv3x3") for n in names) and any(n.startswith("conv1x1") for n in names)
    flops = [f for _, f, _ in compute_shapes("fp32", "cpu")]
    assert flops == sorted(flops)


def test_real_stream_kernels_report_the_best_rate_per_size_and_name_it() -> None:
    points = measure_bandwidth(sizes=(1 << 16, 1 << 20))
    assert [p.bytes for p in points] == [1 << 16, 1 << 20]
    assert all(p.bytes_per_s > 0 and p.kernel in ("triad", "read", "gemv") for p in points)


def test_every_stream_kernel_moves_about_the_working_set() -> None:
    import torch

    from harness.measure.ceilings import _stream_kernels

    for total in (1 << 16, 1 << 22):
        kernels = _stream_kernels(torch, "cpu", total)
        assert set(kernels) == {"triad", "read", "gemv"}  # a triad alone is no roof for a weight stream
        for name, (moved, call) in kernels.items():
            assert abs(moved - total) <= 0.02 * total, (name, moved, total)
            call()


def test_the_memory_roof_is_the_fastest_kernel_not_the_triad(monkeypatch: pytest.MonkeyPatch) -> None:
    # A machine where reads stream faster than a triad (write-allocate): the roof must be the read's.
    from harness.measure import ceilings

    real = ceilings._stream_kernels

    def uneven(torch: Any, device: str, total: int) -> dict[str, tuple[int, Any]]:
        kernels = real(torch, device, total)
        moved, _ = kernels["read"]
        return {**kernels, "read": (moved * 50, kernels["read"][1])}  # as if 50x the bytes per call

    monkeypatch.setattr(ceilings, "_stream_kernels", uneven)
    [point] = measure_bandwidth(sizes=(1 << 20,))
    assert point.kernel == "read"


def test_a_working_set_is_held_to_the_level_it_fits() -> None:
    band = Bandwidth(
        "cpu",
        None,
        (BandwidthPoint(1 << 19, 200e9), BandwidthPoint(1 << 24, 80e9), BandwidthPoint(1 << 28, 15e9)),
        "t",
        "k",
    )
    assert band.for_working_set(100_000).bytes_per_s == 200e9
    assert band.for_working_set(4 << 20).bytes_per_s == 80e9
    assert band.for_working_set(268e6).bytes_per_s == 15e9  # mlp's 268 MB of weights: main memory
    assert band.for_working_set(2e9).bytes_per_s == 15e9
    assert band.main_memory_bytes_per_s == 15e9


def test_a_working_set_between_two_sizes_is_held_to_the_faster_size_below_it() -> None:
    import itertools

    from harness.measure.ceilings import STREAM_BYTES

    # Rates falling with size, as a cache spills: 64 MiB still streams at 40 GB/s, 128 MiB at 31.
    rates = {1 << 26: 40e9, 1 << 27: 31e9, 1 << 28: 25e9, 1 << 29: 24e9}
    band = Bandwidth("cpu", None, tuple(BandwidthPoint(b, rates.get(b, 100e9)) for b in STREAM_BYTES), "t", "k")
    # A 67.16 MB weight stream (mlp large, fp32) is just over 64 MiB: the 64 MiB rate bounds it;
    # the next size up (the rule before) would hold it to 31 GB/s, and the cell showed 126% of that.
    assert band.for_working_set(67.16e6).bytes_per_s == 40e9
    assert band.for_working_set(1 << 29).bytes_per_s == 25e9  # half of 512 MiB is 256 MiB
    ratios = [b / a for a, b in itertools.pairwise(STREAM_BYTES)]
    assert set(ratios) == {2}, "every working set has a measured size within a factor of two below it"


def _environment() -> Any:
    return make_run([]).environment


def test_ceilings_are_measured_once_per_conditions_and_cached(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # The conditions start unlimited whatever the caller's shell sets (the suite is also run under
    # ONEDNN_MAX_CPU_ISA=AVX2): the limit set below must be a change of conditions.
    for name in ("ONEDNN_MAX_CPU_ISA", "ATEN_CPU_CAPABILITY"):
        monkeypatch.delenv(name, raising=False)
    calls: list[str] = []

    def compute(dtype: str, where: str, threads: int | None) -> tuple[float, str, dict[str, float]]:
        calls.append(f"compute {dtype}")
        return 1e11, "mm 1024x1024x1024", {"mm 1024x1024x1024": 1e11, "conv": 9e10}

    def triad(where: str, threads: int | None) -> tuple[BandwidthPoint, ...]:
        calls.append("triad")
        return (BandwidthPoint(1 << 28, 2e10),)

    path = tmp_path / "ceilings.json"
    wanted = [("cpu", None, "fp32", 2), ("cpu", None, "bf16", 2), ("cpu", None, "fp32", 2)]
    kwargs: dict[str, Any] = {"path": path, "busy": lambda: False, "compute": compute, "bandwidth": triad}
    computes, bands = run_ceilings(_environment(), wanted, **kwargs)
    assert calls == ["compute fp32", "triad", "compute bf16"]
    assert set(computes) == {peak_key("cpu", None, "fp32", 2), peak_key("cpu", None, "bf16", 2)}
    assert set(bands) == {bandwidth_key("cpu", None, 2)}
    again, _ = run_ceilings(_environment(), wanted, **kwargs)
    assert calls == ["compute fp32", "triad", "compute bf16"]
    assert all(c.cached for c in again.values())
    # An ISA limit is another condition: measured again.
    monkeypatch.setenv("ONEDNN_MAX_CPU_ISA", "AVX2")
    run_ceilings(_environment(), wanted[:1], **kwargs)
    assert calls[-2:] == ["compute fp32", "triad"]
    assert any("ONEDNN_MAX_CPU_ISA=AVX2" in key for key in json.loads(path.read_text()))


def test_ceilings_measured_on_a_busy_machine_are_used_but_never_cached(tmp_path: Path) -> None:
    path = tmp_path / "ceilings.json"
    computes, bands = run_ceilings(
        _environment(),
        [("cpu", None, "fp32", None)],
        path=path,
        busy=lambda: True,
        compute=lambda *_: (3e10, "mm", {"mm": 3e10}),
        bandwidth=lambda *_: (BandwidthPoint(1 << 28, 1e9),),
    )
    assert computes and bands
    assert not path.exists()


def test_no_ceilings_where_they_mean_nothing(tmp_path: Path) -> None:
    def never(*_: object) -> Any:
        raise AssertionError("measured")

    found = run_ceilings(
        _environment(),
        [("neuron", None, "bf16", None), ("cpu", None, "int8", None), ("cpu", None, "tf32", None)],
        path=tmp_path / "c.json",
        compute=never,
        bandwidth=never,
    )
    assert found == ({}, {})


def test_the_cache_file_sits_beside_the_peak_cache(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("SILICONBENCH_CACHE", str(tmp_path))
    assert ceilings.ceilings_cache_path() == tmp_path / "ceilings.json"
