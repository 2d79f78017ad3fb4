"""The engine's /metrics: parsed from a real vLLM 0.32 CPU capture, sampled with an injected fetch."""

from __future__ import annotations

import urllib.error
from pathlib import Path

import pytest

from backends.engine.metrics import MetricsSampler, parse_metrics
from harness.runfile.engine import MetricsSample

# Captured from vLLM 0.32.0's CPU build serving the tiny Llama under 24 concurrent streams.
CAPTURE = (Path(__file__).parent / "data" / "vllm-0.32.0-cpu-metrics.txt").read_text()


def test_a_real_capture_gives_queue_cache_and_preemptions() -> None:
    sample = parse_metrics(CAPTURE, t_s=1.5)
    assert sample == MetricsSample(1.5, 14.0, 0.0, pytest.approx(0.02306967984934083), 0.0, 264.0, 0.0)


def test_the_prefix_cache_hit_rate_is_the_rise_of_hits_over_the_rise_of_queries() -> None:
    """vLLM 0.32's counters (``v1/metrics/loggers.py``) count prompt tokens looked up and found;
    the run's rate is their rises, not their totals (an engine that served earlier loads has both
    counters high already)."""
    texts = iter(
        f'# TYPE vllm:prefix_cache_queries counter\nvllm:prefix_cache_queries_total{{engine="0"}} {q}\n'
        f'# TYPE vllm:prefix_cache_hits counter\nvllm:prefix_cache_hits_total{{engine="0"}} {h}\n'
        for q, h in [(1000, 900), (1400, 1000), (2000, 1200)]
    )
    sampler = MetricsSampler("http://e", fetch=lambda u, t: next(texts), clock=lambda: 0.0)
    for _ in range(3):
        sampler.sample_once()
    metrics = sampler.result()
    assert metrics.prefix_cache_hit_rate == pytest.approx(300 / 1000)
    assert metrics.summary()["prefix_cache_hit_rate"] == pytest.approx(0.3)


def test_the_older_prefix_cache_names_are_read_and_no_counters_give_no_rate() -> None:
    text = "# TYPE vllm:gpu_prefix_cache_queries counter\nvllm:gpu_prefix_cache_queries_total 10\n"
    assert parse_metrics(text).prefix_cache_queries_total == 10.0
    sampler = MetricsSampler("http://e", fetch=lambda u, t: "vllm:num_requests_running 1\n", clock=lambda: 0.0)
    sampler.sample_once()
    sampler.sample_once()
    assert sampler.result().prefix_cache_hit_rate is None


def test_the_first_sample_is_taken_before_start_returns() -> None:
    """The counters' rise must be the load's alone: the first reading precedes the load."""
    sampler = MetricsSampler("http://e", interval_s=60, fetch=lambda u, t: "vllm:num_requests_running 0\n")
    sampler.start()
    try:
        assert len(sampler.result().samples) == 1
    finally:
        sampler.stop()


def test_engines_are_summed_and_the_fullest_cache_binds() -> None:
    text = "\n".join(
        [
            "# TYPE vllm:num_requests_waiting gauge",
            'vllm:num_requests_waiting{engine="0"} 3.0',
            'vllm:num_requests_waiting{engine="1"} 4.0',
            "# TYPE vllm:kv_cache_usage_perc gauge",
            'vllm:kv_cache_usage_perc{engine="0"} 0.25',
            'vllm:kv_cache_usage_perc{engine="1"} 0.75',
            "# TYPE vllm:num_preemptions counter",
            'vllm:num_preemptions_total{engine="0"} 2.0',
            'vllm:num_preemptions_created{engine="0"} 1.7e9',
            'vllm:num_preemptions_total{engine="1"} 5.0',
            "",
        ]
    )
    sample = parse_metrics(text)
    assert (sample.waiting, sample.kv_cache_usage, sample.preemptions_total, sample.running) == (7.0, 0.75, 7.0, None)


def test_the_older_cache_gauge_is_read_where_the_new_one_is_absent() -> None:
    text = "# TYPE vllm:gpu_cache_usage_perc gauge\nvllm:gpu_cache_usage_perc 0.5\n"
    assert parse_metrics(text).kv_cache_usage == 0.5


def test_sampler_summarizes_and_counts_failures() -> None:
    waiting = iter([0, 2, 5, 1])
    clock = iter([100.0, 100.0, 100.5, 101.0, 101.5, 102.0, 102.5])

    def fetch(url: str, timeout: float) -> str:
        assert url == "http://engine:8000/metrics"
        w = next(waiting, None)
        if w is None:
            raise urllib.error.URLError("gone")
        return (
            f"vllm:num_requests_waiting {w}\nvllm:num_requests_running 4\nvllm:kv_cache_usage_perc {w / 10}\n"
            f"# TYPE vllm:num_preemptions counter\nvllm:num_preemptions_total {w * 2}\n"
        )

    sampler = MetricsSampler("http://engine:8000/", fetch=fetch, clock=lambda: next(clock))
    sampler._t0 = sampler._clock()
    for _ in range(5):
        sampler.sample_once()
    metrics = sampler.result()
    assert [s.t_s for s in metrics.samples] == [0.0, 0.5, 1.0, 1.5]
    summary = metrics.summary()
    assert summary == {
        "samples": 4,
        "failed_samples": 1,
        "peak_running": 4.0,
        "peak_waiting": 5.0,
        "mean_waiting": 2.0,
        "peak_kv_cache_usage": 0.5,
        "preemptions": 2.0,
        "prefix_cache_hit_rate": None,
    }


def test_a_long_run_halves_its_resolution_instead_of_growing() -> None:
    ticks = iter(range(10_000))
    sampler = MetricsSampler(
        "http://e",
        interval_s=1.0,
        fetch=lambda u, t: "vllm:num_requests_waiting 1\n",
        clock=lambda: float(next(ticks)),
        max_samples=8,
    )
    for _ in range(20):
        sampler.sample_once()
    metrics = sampler.result()
    assert len(metrics.samples) <= 8 and metrics.interval_s > 1.0
    assert metrics.samples[-1].t_s > 15  # the end of the run is kept


def test_the_thread_samples_until_stopped() -> None:
    sampler = MetricsSampler("http://e", interval_s=0.01, fetch=lambda u, t: "vllm:num_requests_running 2\n")
    with sampler:
        import time

        time.sleep(0.1)
    metrics = sampler.result()
    assert len(metrics.samples) >= 2 and metrics.peak_running == 2.0
