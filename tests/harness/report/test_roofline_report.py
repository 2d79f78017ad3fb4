"""The report on the roofline: '% roofline' with the binding roof, emulated dtypes, dtypes left out."""

from __future__ import annotations

from dataclasses import replace

from harness.measure.capability import cpu_capability
from harness.measure.peak import peak_key
from harness.report.formats import render
from harness.runfile.codec import encode_run, parse_run
from harness.runfile.records import RunRecord
from harness.runfile.silicon import Bandwidth, BandwidthPoint, ComputeCeiling, DtypeLeftOut, bandwidth_key
from tests.harness.runfactory import lognormal_samples, make_cell, make_run

CPU = cpu_capability("x86_64", {"avx2", "fma"}, "Intel AVX2", "AVX2", {})


def _run(per_call_ns: float, weight_bytes: int, dtype: str = "fp32", emulated: str | None = None) -> RunRecord:
    run = make_run([make_cell(lognormal_samples(per_call_ns, 200, seed=1, sigma=0.01), dtype=dtype)])
    cell = run.cells[0]
    assert cell.measurement is not None
    workload = replace(cell.measurement.workload, weight_bytes=weight_bytes, activation_bytes=1000)
    cell = replace(cell, measurement=replace(cell.measurement, workload=workload), emulated=emulated)
    compute = ComputeCeiling(dtype, "cpu", None, 1e11, "mm 1024x1024x1024", {"mm 1024x1024x1024": 1e11}, "t", "k")
    band = Bandwidth("cpu", None, (BandwidthPoint(1 << 20, 1e11), BandwidthPoint(1 << 28, 1e10)), "t", "k")
    environment = replace(
        run.environment,
        capabilities={"cpu": CPU},
        dtypes_left_out=(DtypeLeftOut("cpu", "bf16", "oneDNN ISA 'Intel AVX2' has no bf16 instructions"),),
        ceilings={peak_key("cpu", None, dtype, None): compute},
        bandwidths={bandwidth_key("cpu", None, None): band},
    )
    run = replace(run, environment=environment, cells=(cell,), schema_version=2)
    return parse_run(encode_run(run), "round trip")  # what a report of a written file sees


def test_a_memory_bound_cell_shows_its_fraction_of_the_memory_roof() -> None:
    # 2 MFLOP per call over 100 MB: intensity 0.02, main memory at 10 GB/s -> 0.2 GFLOP/s attainable.
    run = _run(per_call_ns=20e6, weight_bytes=100_000_000)
    text = render([run])
    assert "% roofline" in text
    assert "50% mem" in text  # 100 MB in 20 ms = 5 GB/s of 10
    assert "> peak?" not in text


def test_a_figure_above_its_roofline_is_a_numbered_note_explaining_the_defect() -> None:
    run = _run(per_call_ns=5e6, weight_bytes=100_000_000)  # 20 GB/s against a 10 GB/s roof
    text = render([run])
    assert "200% mem!" in text
    assert "above its roofline" in text and "ceilings.json" in text


def test_emulated_and_left_out_dtypes_are_named_in_the_table() -> None:
    run = _run(per_call_ns=20e6, weight_bytes=100_000_000, dtype="bf16", emulated="no bf16 instructions")
    text = render([run])
    assert "bf16 emulated" in text
    assert "Left out of the default suite:" in text
    assert "cpu bf16: oneDNN ISA 'Intel AVX2' has no bf16 instructions" in text
    assert run.cells[0].emulated == "no bf16 instructions"
    assert run.environment.capabilities["cpu"].onednn_isa == "Intel AVX2"


def test_an_old_file_without_ceilings_shows_no_roofline() -> None:
    run = make_run([make_cell(lognormal_samples(1e6, 50, seed=2))])
    assert "% roofline" not in render([run])
