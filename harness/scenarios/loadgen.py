"""Run a cell under MLPerf LoadGen (``--loadgen``): its SingleStream, Server or Offline scenario,
its own schedule and validity rules, and its VALID/INVALID verdict in the run file.

``latency`` maps to SingleStream, ``server`` to Server (at ``--rate``, judged against
``--slo-p99``, or ``--slo-ttft``/``--slo-tpot`` with token latencies for decoders) and ``offline``
to Offline. LoadGen issues sample indices into the cell's sample library; the system under test
is the same batch runner as the ``offline`` scenario (``sut``), fed by ``concurrency`` worker
threads that each take up to ``batch_size`` waiting samples at a time (dynamic batching).

The run is sized by the cell's budget (``min_duration`` = ``--max-time``, ``min_query_count`` =
``--min-samples``). MLPerf submissions require far longer runs (600 s, and early-stopping query
counts), so a short run may well be INVALID by LoadGen's rules: the verdict is recorded as LoadGen
gives it, with the criteria it failed, and never overridden.

Needs ``mlcommons-loadgen`` (``pip install 'siliconbench[loadgen]'``), imported only here.
"""

from __future__ import annotations

import array
import queue
import re
import tempfile
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from harness.errors import ConfigError
from harness.runfile.records import LoadgenPart, Measurement
from harness.scenarios.base import CellContext, sampling_fields, workload_record
from harness.scenarios.registry import spec
from harness.scenarios.sut import BatchRunner, build_runner
from harness.scenarios.tokens import RequestTimeline, by_send_time, goodput, timeline_summaries
from harness.scenarios.validity import validity

__all__ = ["SCENARIO", "LoadGenScenario", "parse_summary"]

_LINE = re.compile(r"^\s*([^:]+?)\s*:\s*(.*?)\s*$")

#: The summary line that holds each scenario's throughput, in samples per second.
_THROUGHPUT_KEYS = {
    "SingleStream": "QPS w/o loadgen overhead",
    "Server": "Completed samples per second",
    "Offline": "Samples per second",
}
_TOKEN_KEYS = {
    "SingleStream": "TPS w/o loadgen overhead",
    "Server": "Completed tokens per second",
    "Offline": "Tokens per second",
}


def _number(text: str) -> float | int | str:
    try:
        return int(text)
    except ValueError:
        try:
            return float(text)
        except ValueError:
            return text


def parse_summary(text: str) -> dict[str, Any]:
    """``mlperf_log_summary.txt`` as {"verdict", "criteria", "fields"}.

    ``verdict`` is "VALID" or "INVALID" (None if absent); ``criteria`` maps each "... satisfied"
    line to True/False; ``fields`` holds every other "key : value" line (first occurrence),
    numbers parsed.
    """
    verdict = None
    criteria: dict[str, bool] = {}
    fields: dict[str, Any] = {}
    for line in text.splitlines():
        match = _LINE.match(line)
        if not match or line.lstrip().startswith("*"):
            continue
        key, value = match.group(1), match.group(2)
        if key == "Result is":
            verdict = value.split()[0] if value else None
        elif key.endswith("satisfied"):
            criteria[key] = value.strip().lower().startswith("yes")
        elif value and key not in fields:
            fields[key] = _number(value)
    return {"verdict": verdict, "criteria": criteria, "fields": fields}


def _settings(lg: Any, scenario: str, ctx: CellContext, per_batch_ns: int, decoder: bool) -> tuple[Any, dict[str, Any]]:
    """LoadGen's TestSettings for the cell, and the same as a plain dict for the record."""
    params, policy, batch = ctx.config.params, ctx.policy, ctx.config.batch_size
    settings = lg.TestSettings()
    settings.scenario = getattr(lg.TestScenario, scenario)
    settings.mode = lg.TestMode.PerformanceOnly
    min_duration_ms = max(1, int(policy.max_time_s * 1000))
    settings.min_duration_ms = min_duration_ms
    settings.max_duration_ms = 10 * min_duration_ms + 60_000
    settings.min_query_count = policy.min_count
    chosen: dict[str, Any] = {
        "scenario": scenario,
        "mode": "PerformanceOnly",
        "min_duration_ms": min_duration_ms,
        "max_duration_ms": settings.max_duration_ms,
        "min_query_count": policy.min_count,
    }
    if decoder:
        settings.use_token_latencies = True
        chosen["use_token_latencies"] = True
    if scenario == "SingleStream":
        settings.single_stream_expected_latency_ns = per_batch_ns
        chosen["single_stream_expected_latency_ns"] = per_batch_ns
    elif scenario == "Offline":
        expected = batch / (per_batch_ns / 1e9)
        settings.offline_expected_qps = expected
        chosen["offline_expected_qps"] = expected
    else:
        assert params.rate is not None  # the suite validates this
        settings.server_target_qps = params.rate
        chosen["server_target_qps"] = params.rate
        if params.slo_p99_ms is not None:
            settings.server_target_latency_ns = int(params.slo_p99_ms * 1e6)
            chosen["server_target_latency_ns"] = settings.server_target_latency_ns
        if decoder:
            if params.slo_ttft_ms is None or params.slo_tpot_ms is None:
                raise ConfigError(
                    "LoadGen's Server scenario for a decoder judges TTFT and TPOT: give --slo-ttft and --slo-tpot"
                )
            settings.ttft_latency = int(params.slo_ttft_ms * 1e6)
            settings.tpot_latency = int(params.slo_tpot_ms * 1e6)
            chosen.update(ttft_latency_ns=settings.ttft_latency, tpot_latency_ns=settings.tpot_latency)
        elif params.slo_p99_ms is None:
            raise ConfigError("LoadGen's Server scenario judges a latency target: give --slo-p99")
    return settings, chosen


class _SystemUnderTest:
    """LoadGen's SUT callbacks over a batch runner: a queue and ``workers`` threads."""

    def __init__(self, lg: Any, runner: BatchRunner, workers: int, tokens: bool, clock: Callable[[], int]) -> None:
        self.lg, self.runner, self.tokens, self.clock = lg, runner, tokens, clock
        self.pending: queue.Queue[Any] = queue.Queue()
        self.issued: dict[int, int] = {}
        self.timelines: list[RequestTimeline] = []
        self.failures: list[BaseException] = []
        self.lock = threading.Lock()
        # LoadGen reads response data during the completion call; performance mode ignores it.
        self.first_data = array.array("q", [0])
        self.data = array.array("q", [0] * max(1, runner.output_tokens))
        self.threads = [threading.Thread(target=self._work, daemon=True) for _ in range(workers)]
        for thread in self.threads:
            thread.start()

    def issue(self, samples: list[Any]) -> None:
        now = self.clock()
        with self.lock:
            for sample in samples:
                self.issued[sample.id] = now
        for sample in samples:
            self.pending.put(sample)

    def flush(self) -> None:
        """Nothing is held back, so there is nothing to flush."""

    def _response(self, sample_id: int, data: array.array[int], tokens: int) -> Any:
        pointer, count = data.buffer_info()
        if self.tokens:
            return self.lg.QuerySampleResponse(sample_id, pointer, count * data.itemsize, tokens)
        return self.lg.QuerySampleResponse(sample_id, pointer, count * data.itemsize)

    def _work(self) -> None:
        lg, batch = self.lg, self.runner.batch_size
        while True:
            first = self.pending.get()
            if first is None:
                return
            samples = [first]
            while len(samples) < batch:
                try:
                    item = self.pending.get_nowait()
                except queue.Empty:
                    break
                if item is None:
                    self.pending.put(None)
                    break
                samples.append(item)
            try:

                def on_first(group: list[Any] = samples) -> None:
                    lg.FirstTokenComplete([self._response(s.id, self.first_data, 1) for s in group])

                times = self.runner.run([s.index for s in samples], self.clock, on_first if self.tokens else None)
                with self.lock:
                    for sample in samples:
                        self.timelines.append(RequestTimeline(self.issued.pop(sample.id), tuple(times)))
                lg.QuerySamplesComplete([self._response(s.id, self.data, self.runner.output_tokens) for s in samples])
            except BaseException as exc:
                with self.lock:
                    self.failures.append(exc)
                lg.QuerySamplesComplete([self._response(s.id, self.data, self.runner.output_tokens) for s in samples])

    def stop(self) -> None:
        for _ in self.threads:
            self.pending.put(None)
        for thread in self.threads:
            thread.join(timeout=60)


def _run(
    lg: Any, runner: BatchRunner, settings: Any, workers: int, tokens: bool
) -> tuple[_SystemUnderTest, str, float]:
    clock = time.perf_counter_ns
    system = _SystemUnderTest(lg, runner, workers, tokens, clock)
    sut = lg.ConstructSUT(system.issue, system.flush)
    qsl = lg.ConstructQSL(runner.library_size, runner.library_size, lambda _: None, lambda _: None)
    try:
        with tempfile.TemporaryDirectory(prefix="siliconbench-loadgen-") as folder:
            output = lg.LogOutputSettings()
            output.outdir = folder
            output.copy_summary_to_stdout = False
            log = lg.LogSettings()
            log.log_output = output
            log.enable_trace = False
            started = time.perf_counter()
            lg.StartTestWithLogSettings(sut, qsl, settings, log)
            wall = time.perf_counter() - started
            summary_path = Path(folder) / "mlperf_log_summary.txt"
            text = summary_path.read_text() if summary_path.exists() else ""
    finally:
        system.stop()
        lg.DestroyQSL(qsl)
        lg.DestroySUT(sut)
    if system.failures:
        raise system.failures[0]
    return system, text, wall


class LoadGenScenario:
    name = "loadgen"

    def run(self, ctx: CellContext) -> Measurement:
        try:
            import mlperf_loadgen as lg
        except ImportError:
            raise ConfigError(
                "--loadgen needs MLPerf LoadGen: pip install 'siliconbench[loadgen]' (package mlcommons-loadgen)"
            ) from None
        from harness.measure.stats import summarize

        config, policy, backend = ctx.config, ctx.policy, ctx.backend
        params = config.params
        scenario = spec(config.scenario).loadgen or config.scenario
        runner = build_runner(ctx)
        info = runner.details
        decoder = info.decoder

        ctx.phase = "measure"
        clock = time.perf_counter_ns
        calibrated_at = clock()
        for _ in range(2):
            runner.run(list(range(runner.batch_size)), clock, None)
        per_batch_ns = max(1, (clock() - calibrated_at) // 2)
        settings, chosen = _settings(lg, scenario, ctx, per_batch_ns, decoder)
        workers = params.concurrency if scenario == "Server" else 1
        system, text, wall = _run(lg, runner, settings, workers, decoder)
        peak = backend.peak_memory_bytes()

        ctx.phase = "statistics"
        parsed = parse_summary(text)
        if parsed["verdict"] is None:
            raise RuntimeError("LoadGen wrote no result line in mlperf_log_summary.txt")
        timelines = by_send_time(system.timelines)
        summary = summarize([t.e2e_ns for t in timelines], policy.confidence)
        fields = parsed["fields"]
        throughput = float(fields.get(_THROUGHPUT_KEYS[scenario], 0.0) or 0.0)
        tokens_per_sample = info.tokens_per_sample
        tokens = timeline_summaries(timelines, policy.confidence) if decoder else None
        output_tps = total_tps = None
        if decoder:
            token_rate = fields.get(_TOKEN_KEYS[scenario])
            output_tps = float(token_rate) if isinstance(token_rate, int | float) else throughput * params.output_tokens
            total_tps = throughput * (params.prompt_tokens + params.output_tokens)
        goodput_rps = None
        if scenario == "Server":
            from harness.scenarios.server import slo_from_params

            slo = slo_from_params(params.slo_p99_ms, params.slo_ttft_ms, params.slo_tpot_ms)
            span = max(t.token_ns[-1] for t in timelines) - min(t.due_ns for t in timelines)
            goodput_rps = goodput(timelines, slo, max(1, span))
        loadgen = LoadgenPart(
            scenario=scenario,  # type: ignore[arg-type]  # a spec's LoadGen name
            verdict=parsed["verdict"],
            valid=parsed["verdict"] == "VALID",
            criteria=parsed["criteria"],
            result=fields,
            settings=chosen,
            version=_version(),
            summary_text=text,
            wall_s=wall,
            goodput_rps=goodput_rps,
            tokens=tokens,
        )
        warnings = [info.warning] if info.warning else []
        failed = [name for name, ok in parsed["criteria"].items() if not ok]
        reasons = (
            []
            if parsed["verdict"] == "VALID"
            else [f"LoadGen: INVALID ({', '.join(failed) + ' not met' if failed else 'see its summary'})"]
        )
        if reasons:
            warnings.append(reasons[0])
        device = backend.device_info()
        device.update(info.device)
        flops = info.flops
        counts = {"queries": len(timelines)}
        return Measurement(
            workload=workload_record(ctx, flops, tokens_per_sample),
            device=device,
            compile_s=info.compile_s,
            peak_memory_bytes=peak,
            correctness=info.correctness,
            sampling=sampling_fields(
                policy,
                warmup_count=2,
                warmup_s=2 * per_batch_ns / 1e9,
                elapsed_s=wall,
                stop_reason="loadgen",
                wall_s=wall,
            ),
            latency_ns=summary,
            throughput_per_s=throughput,
            tokens_per_s=throughput * tokens_per_sample if tokens_per_sample else None,
            flops_per_s=flops * throughput if flops else None,
            samples_ns=tuple(t.e2e_ns for t in timelines),
            output_tokens_per_s=output_tps,
            total_tokens_per_s=total_tps,
            goodput_rps=goodput_rps,
            loadgen=loadgen,
            warnings=tuple(warnings),
            validity=validity(counts, wall, extra_reasons=reasons),
        )


def _version() -> str | None:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("mlcommons-loadgen")
    except PackageNotFoundError:
        return None


SCENARIO = LoadGenScenario()
