"""The arithmetic of the side by side with ``vllm bench serve``: what each side's file gives, the
ratios and the verdict. No engine and no timings; the figures are made up."""

from __future__ import annotations

import dataclasses
import math
from pathlib import Path

import pytest

from benchmarks.side_by_side import (
    ClientFigures,
    Pair,
    from_bench_serve,
    from_run_file,
    hit_rate,
    sent_together,
    summary_lines,
    verdict,
)
from harness.runfile.files import load_run, save_run

ENGINE_RUN = Path(__file__).resolve().parents[1] / "harness" / "runfile" / "fixtures" / "run-v2-engine.json"

#: The keys ``vllm bench serve --save-result`` writes that the comparison reads (vLLM 0.32,
#: vllm/benchmarks/serve.py: ``benchmark``'s result dict and ``BenchmarkMetrics``).
BENCH_SERVE_RESULT = {
    "duration": 9.5,
    "completed": 4,
    "failed": 0,
    "total_input_tokens": 512,
    "total_output_tokens": 256,
    "output_throughput": 26.9,
    "median_ttft_ms": 104.0,
    "median_tpot_ms": 19.5,
    "median_itl_ms": 19.0,
    "mean_ttft_ms": 110.0,
}


def _figures(ttft: float, tpot: float = 20.0, rate: float = 50.0) -> ClientFigures:
    return ClientFigures(ttft, tpot, tpot, rate, 12, 128.0, 64.0)


def test_a_bench_serve_result_gives_its_medians_and_per_request_tokens() -> None:
    figures = from_bench_serve(BENCH_SERVE_RESULT)
    assert figures == ClientFigures(104.0, 19.5, 19.0, 26.9, 4, 128.0, 64.0)
    # --save-detailed adds each request's start (perf_counter seconds): two of four sent together.
    detailed = from_bench_serve({**BENCH_SERVE_RESULT, "start_times": [10.0, 10.0004, 10.5, 11.0]})
    assert detailed.together == pytest.approx(0.5)


def test_a_bench_serve_result_without_a_key_or_with_failures_is_refused() -> None:
    partial = {k: v for k, v in BENCH_SERVE_RESULT.items() if k != "median_itl_ms"}
    with pytest.raises(ValueError, match="no median_itl_ms"):
        from_bench_serve(partial)
    with pytest.raises(ValueError, match="failed 1"):
        from_bench_serve({**BENCH_SERVE_RESULT, "failed": 1})


def test_a_run_file_gives_its_engine_loads_window(tmp_path: Path) -> None:
    run = load_run(ENGINE_RUN)
    with pytest.raises(ValueError, match="expected one cell, found 2"):
        from_run_file(ENGINE_RUN)
    one = tmp_path / "run-one.json"
    save_run(one, dataclasses.replace(run, cells=run.cells[:1]))
    figures = from_run_file(one)
    measured = run.cells[0].measurement
    assert measured is not None and measured.engine is not None
    load = measured.engine.load
    assert load is not None and load.ttft_ns is not None
    # The load's own figures (its measured window), not the cell's generation part.
    assert figures.ttft_p50_ms == pytest.approx(load.ttft_ns.p50 / 1e6)
    assert figures.output_tokens_per_s == pytest.approx(load.output_tokens_per_s)
    assert figures.requests == load.ok == 6
    assert figures.input_tokens_per_request == pytest.approx(14 / 6)
    assert figures.output_tokens_per_request == pytest.approx(5.0)
    assert figures.together == 0.0  # one user: each request sent ~15 ms after the one before


def test_ratios_are_siliconbench_over_bench_serve() -> None:
    pair = Pair(4, 1, _figures(330.0, rate=100.0), _figures(300.0, rate=125.0), 1.5, 1.7)
    assert pair.ratio("ttft_p50_ms") == pytest.approx(1.1)
    assert pair.ratio("output_tokens_per_s") == pytest.approx(0.8)
    assert math.isnan(Pair(1, 1, _figures(1.0), _figures(0.0), 0, 0).ratio("ttft_p50_ms"))


def test_the_verdict_holds_only_when_every_ratio_is_in_the_band() -> None:
    assert verdict([0.9, 1.0, 1.1]) == "within"
    assert verdict([1.0, 1.11]) == "OUTSIDE"
    assert verdict([0.89]) == "OUTSIDE"
    assert verdict([]) == "OUTSIDE"
    assert verdict([float("nan")]) == "OUTSIDE"


def test_the_summary_has_one_line_per_users_with_every_rounds_ratio() -> None:
    pairs = [
        Pair(1, 1, _figures(105.0), _figures(100.0), 1.0, 1.2),
        Pair(4, 1, _figures(300.0), _figures(250.0), 2.0, 2.1),
        Pair(1, 2, _figures(95.0), _figures(100.0), 1.3, 1.4),
        Pair(4, 2, _figures(300.0), _figures(300.0), 2.2, 2.3),
    ]
    one, four = summary_lines(pairs)
    assert one.startswith("1 user(s): TTFT p50 1.050, 0.950 (median 1.000);")
    assert "TTFT p50 within 0.9-1.1" in one and "1.00/1.20, 1.30/1.40" in one
    assert four.startswith("4 user(s): TTFT p50 1.200, 1.000 (median 1.100);")
    assert "TTFT p50 OUTSIDE 0.9-1.1" in four


def test_the_hit_rate_is_the_share_of_queried_prompt_tokens_served_from_the_cache() -> None:
    assert hit_rate((1000.0, 100.0), (1512.0, 228.0)) == pytest.approx(0.25)
    assert hit_rate((1000.0, 100.0), (1000.0, 100.0)) is None
    assert hit_rate(None, (1.0, 1.0)) is None


def test_requests_sent_within_a_millisecond_of_another_count_as_together() -> None:
    assert sent_together([0.0, 0.3, 0.9, 50.0, 50.5, 120.0]) == pytest.approx(5 / 6)
    assert sent_together([30.0, 0.0, 10.0]) == 0.0  # order does not matter; 10 ms apart is alone
    assert sent_together([0.0, 1.0]) == 0.0  # the bound itself is not together
    assert sent_together([5.0]) is None
