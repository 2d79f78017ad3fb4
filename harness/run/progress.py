"""Progress lines on stderr while a suite runs (used by the ``run`` and ``agent`` commands)."""

from __future__ import annotations

import sys

from harness.run.limits import CellLimits
from harness.run.runner import ProgressFn
from harness.runfile.records import CellConfig, CellRecord
from harness.scenarios.registry import spec
from harness.scenarios.specs import DEFAULT_SCENARIO

__all__ = ["progress_detail", "progress_printer"]


def progress_detail(record: CellRecord) -> str:
    """The figures worth a progress line for the record's scenario."""
    measured = record.measurement
    assert measured is not None
    lat, samp = measured.latency_ns, measured.sampling
    if measured.generation is not None:
        gen, tokens = measured.generation, measured.generation.tokens
        tpot = tokens.tpot_ns.p50 / 1e6 if tokens.tpot_ns else float("nan")
        ttft = tokens.ttft_ns.p50 / 1e6 if tokens.ttft_ns else float("nan")
        return (
            f"TTFT p50 {ttft:.3f} ms, TPOT p50 {tpot:.3f} ms, "
            f"{gen.output_tokens_per_s:.1f} output tok/s ({gen.requests} requests)"
        )
    if measured.server is not None:
        srv = measured.server
        head = (
            f"capacity {srv.capacity_rps:.2f} req/s"
            if srv.capacity_rps is not None
            else f"{srv.rate_rps or 0:g} req/s offered"
        )
        good = f", goodput {srv.goodput_rps:.2f} req/s" if srv.goodput_rps is not None else ""
        return f"{head}{good}, p99 {lat.p99 / 1e6:.3f} ms ({len(srv.probes)} probes)"
    if measured.loadgen is not None:
        return f"{measured.throughput_per_s:.1f} samples/s, LoadGen {measured.loadgen.verdict}"
    if measured.offline is not None:
        return f"{measured.throughput_per_s:.1f} samples/s ({measured.offline.samples} samples)"
    return (
        f"p50 {lat.p50 / 1e6:.3f} ms, {measured.throughput_per_s:.1f} inf/s ({samp.stop_reason}, {lat.count} samples)"
    )


def progress_printer(quiet: bool, limits: CellLimits | None = None) -> ProgressFn:
    """Progress lines; a cell's first line says what its preparation waits for and how long it may
    (``limits``: the run's, before each cell's own default is looked up)."""

    def show(index: int, total: int, config: CellConfig, record: CellRecord | None) -> None:
        if quiet:
            return
        engine = config.params.engine
        if engine is not None:
            # An engine's dtype, mode and batch are not its configuration; its engine config is.
            label = f"[{index}/{total}] {config.workload}:{config.preset} {config.backend} {engine.spec.config_label()}"
        else:
            label = (
                f"[{index}/{total}] {config.workload}:{config.preset} {config.backend} {config.dtype} "
                f"{config.mode} bs={config.batch_size}"
            )
        scenario = spec(config.scenario).cell_label(config.params)
        if scenario != DEFAULT_SCENARIO:
            label += f" {scenario}"
        if record is None:
            wait = ""
            if limits is not None and config.params.engine is None:
                wait = f" ({limits.for_cell(config.backend, config.mode).preparing()})"
            print(f"{label} ...{wait}", file=sys.stderr, flush=True)
        elif record.error is None:
            print(f"{label} ok: {progress_detail(record)}", file=sys.stderr, flush=True)
        else:
            err = record.error
            print(f"{label} FAILED in {err.phase}: {err.message}", file=sys.stderr, flush=True)

    return show
