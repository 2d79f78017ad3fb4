"""The matmul peak: measured once per machine and versions, cached, and the fraction of it."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from harness.measure.peak import (
    SIZES,
    cache_path,
    fraction_of_peak,
    machine_key,
    measure_matmul_peak,
    peak_for,
    run_peaks,
)
from harness.runfile.records import Peak


def test_peak_is_measured_once_then_read_from_the_cache(tmp_path: Path) -> None:
    calls: list[tuple[str, str, int | None]] = []

    def measure(dtype: str, device: str, threads: int | None) -> tuple[float, int]:
        calls.append((dtype, device, threads))
        return 1.5e11, 1024

    path = tmp_path / "peak.json"
    first = peak_for("fp32", "cpu", 2, path=path, measure=measure, key="box|torch 9|fp32 t2", busy=lambda: False)
    again = peak_for("fp32", "cpu", 2, path=path, measure=measure, key="box|torch 9|fp32 t2", busy=lambda: False)
    assert first is not None and again is not None
    assert calls == [("fp32", "cpu", 2)]
    assert (first.cached, again.cached) == (False, True)
    assert again.flops_per_s == 1.5e11 and again.size == 1024
    # Another key (new torch, other threads) is another measurement.
    peak_for("fp32", "cpu", 2, path=path, measure=measure, key="box|torch 10|fp32 t2", busy=lambda: False)
    assert len(calls) == 2
    assert set(json.loads(path.read_text())) == {"box|torch 9|fp32 t2", "box|torch 10|fp32 t2"}


def test_a_peak_measured_on_a_busy_machine_is_used_but_never_cached(tmp_path: Path) -> None:
    path = tmp_path / "peak.json"
    busy = peak_for("fp32", "cpu", 2, path=path, measure=lambda *_: (3.3e10, 512), key="k", busy=lambda: True)
    assert busy is not None and busy.flops_per_s == 3.3e10
    assert not path.exists()  # the next run measures again
    quiet = peak_for("fp32", "cpu", 2, path=path, measure=lambda *_: (1.5e11, 512), key="k", busy=lambda: False)
    assert quiet is not None and json.loads(path.read_text())["k"]["flops_per_s"] == 1.5e11


def test_a_broken_cache_is_measured_again(tmp_path: Path) -> None:
    path = tmp_path / "peak.json"
    path.write_text("{not json")
    peak = peak_for("bf16", "cpu", None, path=path, measure=lambda *_: (2e10, 512), key="k", busy=lambda: False)
    assert peak is not None and not peak.cached
    assert Peak.from_dict(json.loads(path.read_text())["k"]) == peak


def test_no_peak_where_a_matmul_peak_means_nothing(tmp_path: Path) -> None:
    def never(*_: object) -> tuple[float, int]:
        raise AssertionError("must not measure")

    assert peak_for("int8", "cpu", path=tmp_path / "p.json", measure=never, key="k") is None
    assert peak_for("fp32", "neuron", path=tmp_path / "p.json", measure=never, key="k") is None
    assert peak_for("tf32", "cpu", path=tmp_path / "p.json", measure=never, key="k") is None


def test_cache_location_follows_the_environment(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SILICONBENCH_CACHE", str(tmp_path))
    assert cache_path() == tmp_path / "peak.json"
    monkeypatch.delenv("SILICONBENCH_CACHE")
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert cache_path() == tmp_path / "xdg" / "siliconbench" / "peak.json"


def test_machine_key_names_silicon_torch_dtype_and_threads() -> None:
    from harness.runfile.records import CpuFacts, Environment, GpuInventory, TorchFacts

    environment = Environment(
        host="h",
        os="Linux",
        python="3.11",
        cpu=CpuFacts("Xeon 8488C", "x86_64", 2, 1, 2, ("amx_bf16",)),
        packages={"torch": "2.13.0+cpu"},
        command=("siliconbench",),
        time_utc="2026-11-29T00:00:00Z",
        gpus=GpuInventory(True, devices=({"name": "NVIDIA H200"},)),
        torch=TorchFacts(2, 2, None),
    )
    key = machine_key(environment, "cpu", "bf16", 3)
    assert key == "Xeon 8488C x86_64 amx_bf16 cores=2 | torch 2.13.0+cpu | cpu bf16 threads=3"
    assert machine_key(environment, "cpu", "bf16", None).endswith("threads=2")
    assert machine_key(environment, "cuda:0", "fp16", None).startswith("NVIDIA H200 #0 | torch 2.13.0+cpu")


def test_run_peaks_names_each_needed_peak_once(tmp_path: Path) -> None:
    from harness.measure.environment import collect_environment
    from harness.runfile.records import peak_key

    wanted = [("cpu", None, "fp32", 1), ("cpu", None, "fp32", 1), ("neuron", None, "bf16", None)]
    peaks = run_peaks(collect_environment(), wanted, path=tmp_path / "peak.json")
    assert list(peaks) == [peak_key("cpu", None, "fp32", 1)]
    assert peaks[peak_key("cpu", None, "fp32", 1)].flops_per_s > 0


def test_fraction_of_peak() -> None:
    peak = Peak("fp32", "cpu", 2, 2e11, 1024, "2026-11-29T00:00:00Z", "k")
    assert fraction_of_peak(5e10, peak) == pytest.approx(0.25)
    assert fraction_of_peak(None, peak) is None
    assert fraction_of_peak(5e10, None) is None


def test_measure_matmul_peak_on_this_cpu() -> None:
    # A real, short measurement: some positive rate at one of the sizes (never a timing threshold).
    flops, size = measure_matmul_peak("fp32", "cpu", threads=1, budget_s=0.05)
    assert flops > 0 and size in SIZES


def test_measure_matmul_peak_scripted_clock_picks_the_best_size(monkeypatch: pytest.MonkeyPatch) -> None:
    # 256: 1 ms per call (33.6 GFLOP/s); 512: 4 ms per call (67.1 GFLOP/s); then the budget is spent.
    per_call = {256: 1_000_000, 512: 4_000_000}
    state = {"now": 0, "size": 256, "calls": 0}
    import torch

    def fake_mm(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
        state["size"] = a.shape[0]
        state["now"] += per_call.get(a.shape[0], 10**12)
        return a

    def clock() -> int:
        return state["now"]

    monkeypatch.setattr(torch, "mm", fake_mm)
    flops, size = measure_matmul_peak("fp32", "cpu", budget_s=0.030, clock=clock)
    assert size == 512
    assert flops == pytest.approx(2 * 512**3 / 4e-3)
