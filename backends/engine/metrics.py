"""The engine's own view of a run: its Prometheus ``/metrics`` sampled while the load runs.

The client sees latencies; the engine says *why*: requests queued behind a full batch
(``num_requests_waiting``), a KV cache running full (``kv_cache_usage_perc``, a fraction despite
the name), sequences evicted to make room (``num_preemptions``, a counter) and how much of the
prompts the prefix cache already held (``prefix_cache_queries`` and ``prefix_cache_hits``, counters
of prompt tokens looked up and found; vLLM 0.32's ``v1/metrics/loggers.py``, where the older
``gpu_prefix_cache_queries``/``gpu_prefix_cache_hits`` are read as a fallback). A capacity found
under an SLO means more beside these: a queue that grows at the top rate, or preemptions, say
the engine, not the client, was the limit.

The text is parsed with ``prometheus_client``'s own parser, not by hand. Names are vLLM's (v1
engine, 0.32 here); the older ``gpu_cache_usage_perc`` is read where ``kv_cache_usage_perc`` is
absent. Values are summed over the ``engine`` label (data-parallel engines), except the cache
usage, where the fullest engine is the one that binds. A sample that fails (the server is busy,
or gone) is counted, not fatal: the client's measurements do not depend on it.
"""

from __future__ import annotations

import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass

from harness.runfile.engine import EngineMetrics, MetricsSample

__all__ = [
    "DEFAULT_INTERVAL_S",
    "CacheConfig",
    "MetricsSampler",
    "parse_cache_config",
    "parse_metrics",
    "read_cache_config",
]

#: Often enough to see a queue build within a probe of a few seconds; cheap for the engine
#: (one ~70 kB text per sample) and for a 2-core machine.
DEFAULT_INTERVAL_S = 0.5
#: A run longer than this many samples keeps sampling at twice the interval, then four times, ...
MAX_SAMPLES = 4096

#: Our name -> the vLLM metric families that carry it, newest first.
_GAUGES: dict[str, tuple[str, ...]] = {
    "running": ("vllm:num_requests_running",),
    "waiting": ("vllm:num_requests_waiting",),
    "kv_cache_usage": ("vllm:kv_cache_usage_perc", "vllm:gpu_cache_usage_perc"),
}
#: A counter's samples carry ``_total`` whatever its family is called.
_PREEMPTIONS = ("vllm:num_preemptions_total",)
_PREFIX_QUERIES = ("vllm:prefix_cache_queries_total", "vllm:gpu_prefix_cache_queries_total")
_PREFIX_HITS = ("vllm:prefix_cache_hits_total", "vllm:gpu_prefix_cache_hits_total")


#: The metric names read from a sample (``# TYPE`` lines and samples whose name starts with one).
_READ = tuple(
    name.removesuffix("_total")
    for names in (*_GAUGES.values(), _PREEMPTIONS, _PREFIX_QUERIES, _PREFIX_HITS)
    for name in names
)


def _wanted(text: str) -> str:
    """Only the lines of the families read: vLLM's text is ~600 lines (50 kB), and parsing all of
    it took ~40 ms of the GIL on the sampler's thread, time the client's event loop, on the other
    thread, waited for; the lines kept parse in well under a millisecond."""
    kept = []
    for line in text.splitlines():
        name = line[7:] if line.startswith("# TYPE ") else line
        if name.startswith(_READ):
            kept.append(line)
    return "\n".join(kept) + "\n"


def parse_metrics(text: str, t_s: float = 0.0) -> MetricsSample:
    """The figures of one ``/metrics`` text; a metric the engine does not export is None."""
    from prometheus_client.parser import text_string_to_metric_families

    values: dict[str, list[float]] = {}
    for family in text_string_to_metric_families(_wanted(text)):
        for sample in family.samples:
            # A counter's ``_created`` sample is a timestamp, not a count.
            if sample.name.endswith("_created"):
                continue
            values.setdefault(sample.name, []).append(float(sample.value))

    def first(names: tuple[str, ...], combine: Callable[[list[float]], float]) -> float | None:
        for name in names:
            if name in values:
                return combine(values[name])
        return None

    return MetricsSample(
        t_s=t_s,
        running=first(_GAUGES["running"], sum),
        waiting=first(_GAUGES["waiting"], sum),
        kv_cache_usage=first(_GAUGES["kv_cache_usage"], max),
        preemptions_total=first(_PREEMPTIONS, sum),
        prefix_cache_queries_total=first(_PREFIX_QUERIES, sum),
        prefix_cache_hits_total=first(_PREFIX_HITS, sum),
    )


@dataclass(frozen=True)
class CacheConfig:
    """The engine's KV cache as it reports it: its block size (tokens) and whether prefix caching is
    on; None where it does not say.

    vLLM exports its ``CacheConfig`` as the labels of one gauge, ``vllm:cache_config_info``. The
    block size is the platform's choice unless asked for: 16 on CUDA (``CacheConfig.DEFAULT_BLOCK_SIZE``)
    but 128 on the CPU platform (``platforms/cpu.py``, 0.32), so it is read, not assumed."""

    block_size: int | None = None
    prefix_caching: bool | None = None


def parse_cache_config(text: str) -> CacheConfig:
    """The cache facts of one ``/metrics`` text (``vllm:cache_config_info``'s labels)."""
    from prometheus_client.parser import text_string_to_metric_families

    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if sample.name != "vllm:cache_config_info":
                continue
            labels = sample.labels
            size = labels.get("block_size", "")
            caching = labels.get("enable_prefix_caching")
            return CacheConfig(
                int(size) if size.isdigit() else None,
                None if caching not in ("True", "False") else caching == "True",
            )
    return CacheConfig()


def read_cache_config(url: str, *, fetch: Callable[[str, float], str] | None = None) -> CacheConfig:
    """The cache facts of the engine at ``url`` (its ``/metrics``); empty where it cannot be read."""
    try:
        return parse_cache_config((fetch or _fetch)(f"{url.rstrip('/')}/metrics", 10.0))
    except (urllib.error.URLError, OSError, ValueError):
        return CacheConfig()


def _fetch(url: str, timeout_s: float) -> str:
    with urllib.request.urlopen(url, timeout=timeout_s) as response:
        return bytes(response.read()).decode("utf-8", errors="replace")


class MetricsSampler:
    """Samples ``{url}/metrics`` on a background thread between ``start()`` and ``stop()``.

    A context manager: ``with MetricsSampler(url) as sampler: ...; sampler.result()``. The
    thread only waits on the network and parses between requests, so it takes little from the
    client's event loop; ``fetch`` and ``clock`` are injectable for tests.
    """

    def __init__(
        self,
        url: str,
        interval_s: float = DEFAULT_INTERVAL_S,
        *,
        fetch: Callable[[str, float], str] = _fetch,
        clock: Callable[[], float] = time.monotonic,
        max_samples: int = MAX_SAMPLES,
    ) -> None:
        if interval_s <= 0:
            raise ValueError(f"interval_s must be positive, got {interval_s}")
        self.url = url.rstrip("/")
        self.interval_s = interval_s
        self._fetch = fetch
        self._clock = clock
        self._max_samples = max_samples
        self._samples: list[MetricsSample] = []
        self._failed = 0
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._t0 = 0.0
        self._started_utc: str | None = None

    def sample_once(self) -> None:
        t = self._clock() - self._t0
        try:
            text = self._fetch(f"{self.url}/metrics", max(1.0, self.interval_s * 4))
            sample = parse_metrics(text, t)
        except (urllib.error.URLError, OSError, ValueError):
            self._failed += 1
            return
        if len(self._samples) >= self._max_samples:
            # Keep the whole run at half the resolution rather than only its start.
            self._samples = self._samples[::2]
            self.interval_s *= 2
        self._samples.append(sample)

    def _run(self) -> None:
        while not self._stop.wait(self.interval_s):
            self.sample_once()

    def start(self) -> MetricsSampler:
        from datetime import UTC, datetime

        self._t0 = self._clock()
        self._started_utc = datetime.now(UTC).isoformat(timespec="seconds")
        # The first reading is taken here, before the load starts, so a counter's rise from the
        # first sample to the last is the load's alone.
        self.sample_once()
        self._thread = threading.Thread(target=self._run, name="engine-metrics", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> EngineMetrics:
        """Stop sampling, take one last sample (the run's end state) and return the result."""
        if self._thread is not None:
            self._stop.set()
            self._thread.join()
            self._thread = None
            self.sample_once()
        return self.result()

    def result(self) -> EngineMetrics:
        return EngineMetrics(self.url, self.interval_s, tuple(self._samples), self._failed, self._started_utc)

    def __enter__(self) -> MetricsSampler:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
