"""Dtype planning against the silicon: native only by default, emulated when asked, named when left out."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path
from typing import Any

from harness.measure.capability import cpu_capability, cuda_capability
from harness.run.dtypes import plan_dtypes
from harness.run.native import capabilities_for, plan_for_silicon
from harness.runfile.records import CellConfig, CellRecord
from harness.runfile.silicon import Capability
from tests.harness.runfactory import make_cell, make_run

AVX2_CPU = cpu_capability("x86_64", {"avx2", "fma"}, "Intel AVX2", "AVX2", {})
AMX_CPU = cpu_capability(
    "x86_64",
    {"avx512f", "avx512_bf16", "amx_bf16", "amx_tile"},
    "Intel AVX-512 with float16, Intel DL Boost and bfloat16 support and "
    "Intel AMX with bfloat16 and 8-bit integer support",
    "AVX512",
    {},
)


def test_the_default_suite_leaves_out_what_the_silicon_emulates_and_says_why() -> None:
    plan = plan_dtypes(["cpu"], ["fp32", "bf16"], explicit=False, capabilities={"cpu": AVX2_CPU})
    assert plan.dtypes == {"cpu": ("fp32",)}
    (left,) = plan.left_out
    assert (left.backend, left.dtype) == ("cpu", "bf16")
    assert "no bf16 instructions" in left.reason
    assert plan.emulated == {}
    assert any("left out of the default suite" in line and "--dtype bf16" in line for line in plan.warnings())


def test_a_dtype_asked_for_runs_anyway_marked_emulated() -> None:
    plan = plan_dtypes(["cpu"], ["fp32", "bf16"], explicit=True, capabilities={"cpu": AVX2_CPU})
    assert plan.dtypes == {"cpu": ("fp32", "bf16")}
    assert plan.left_out == ()
    assert "no bf16 instructions" in plan.emulated[("cpu", "bf16")]
    assert any("emulated" in line for line in plan.warnings())


def test_silicon_that_runs_bf16_keeps_it() -> None:
    plan = plan_dtypes(["cpu"], ["fp32", "bf16"], explicit=False, capabilities={"cpu": AMX_CPU})
    assert plan.dtypes == {"cpu": ("fp32", "bf16")} and plan.left_out == () and plan.emulated == {}


def test_per_backend_and_never_an_empty_plan() -> None:
    old_gpu = cuda_capability("cuda", "7.5", "T4")
    plan = plan_dtypes(["cpu", "cuda"], ["bf16"], explicit=False, capabilities={"cpu": AVX2_CPU, "cuda": old_gpu})
    # Nothing native is left on either: the first asked-for dtype stays, marked, rather than no cells.
    assert plan.dtypes == {"cpu": ("bf16",), "cuda": ("bf16",)}
    assert set(plan.emulated) == {("cpu", "bf16"), ("cuda", "bf16")}


def test_a_backend_without_a_probe_runs_what_was_asked() -> None:
    plan = plan_dtypes(["plugin"], ["fp32", "bf16"], explicit=False, capabilities={})
    assert plan.dtypes == {"plugin": ("fp32", "bf16")}


def _config(dtype: str) -> CellConfig:
    return CellConfig(
        workload="mlp", preset="tiny", backend="cpu", dtype=dtype, mode="eager", threads=None, batch_size=1
    )


def test_the_silicon_plan_drops_cells_and_records_why_in_the_environment() -> None:
    environment = make_run([]).environment
    plan = plan_for_silicon(
        [_config("fp32"), _config("bf16")],
        environment,
        explicit_dtypes=False,
        requested_dtypes=["fp32", "bf16"],
        capabilities={"cpu": AVX2_CPU},
        ceilings=False,
    )
    assert [c.dtype for c in plan.cells] == ["fp32"]
    assert plan.environment.capabilities == {"cpu": AVX2_CPU}
    assert [(d.backend, d.dtype) for d in plan.environment.dtypes_left_out] == [("cpu", "bf16")]


def test_an_emulated_cell_is_marked_with_a_warning() -> None:
    environment = make_run([]).environment
    plan = plan_for_silicon(
        [_config("bf16")],
        environment,
        explicit_dtypes=True,
        requested_dtypes=["bf16"],
        capabilities={"cpu": AVX2_CPU},
        ceilings=False,
    )
    run = make_run([make_cell([1000, 1100, 1200], dtype="bf16")])
    cell: CellRecord = run.cells[0]
    marked = plan.mark(cell)
    assert marked.emulated is not None and "no bf16 instructions" in marked.emulated
    assert marked.measurement is not None and any("emulated" in w for w in marked.measurement.warnings)
    fp32 = make_run([make_cell([1000, 1100, 1200])]).cells[0]
    assert plan.mark(fp32) is fp32


def test_a_gpu_capability_comes_from_nvml_facts_without_a_cuda_context() -> None:
    environment = make_run([]).environment
    from harness.runfile.records import GpuInventory

    gpus = GpuInventory(available=True, devices=({"name": "NVIDIA A10G", "compute_capability": "8.6"},))
    found = capabilities_for([("cuda", "cuda:0")], replace(environment, gpus=gpus), cpu=_never)
    assert found["cuda"].compute_capability == "8.6"
    assert found["cuda"].support("bf16") is not None and found["cuda"].support("bf16").native  # type: ignore[union-attr]


def _never() -> Capability:
    raise AssertionError("probed the CPU for a GPU run")


def test_a_failing_probe_leaves_the_dtypes_as_asked() -> None:
    def broken() -> Any:
        raise RuntimeError("no cpuinfo")

    assert capabilities_for([("cpu", None)], make_run([]).environment, cpu=broken) == {}


def test_dtypes_asked_for_are_explicit_even_when_they_equal_the_defaults(tmp_path: Path) -> None:
    """``--dtype fp32 --dtype bf16`` is a request, not the default: bf16 then runs, marked emulated."""
    from harness.run.plan import Suite, load_suite_file

    assert not Suite().dtypes_explicit()
    assert not Suite(max_time=2).with_overrides(workloads=("mlp",)).dtypes_explicit()
    assert Suite().with_overrides(dtypes=("fp32", "bf16")).dtypes_explicit()
    path = tmp_path / "suite.toml"
    path.write_text('dtypes = ["fp32", "bf16"]\n')
    assert load_suite_file(path).dtypes_explicit()
