"""The ``server`` scenario: open-loop Poisson arrivals, latency from the due time, capacity under an SLO.

Requests arrive on a Poisson schedule fixed in advance (``arrivals``) and are served by
``concurrency`` slots in arrival order (``load.run_open_loop``); each request's latency runs from
its *scheduled* arrival, so time spent queueing behind a slow request counts (no coordinated
omission). A decoder's request is a generation, so its TTFT includes the queueing too.

With ``--rate`` the cell is one run at that rate. Otherwise the cell searches (``capacity``) for
the highest rate whose p99s meet the SLO: ``--slo-p99`` on end-to-end latency, ``--slo-ttft`` and
``--slo-tpot`` on a decoder's time to first token and time per output token (MLPerf's LLM server
rule). That rate is the cell's ``capacity_rps``: the figure cost per million is computed at.
Goodput is the rate of requests that met every target, over the run's duration.

The search and the probes are written against a ``run_load(schedule) -> LoadRun`` function, so
the same code is tested on a simulated queue whose capacity is known analytically.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from functools import partial
from typing import TYPE_CHECKING, Any

from harness.errors import ConfigError
from harness.runfile.records import (
    CapacitySearchRecord,
    Measurement,
    ServerPart,
    ServerProbeRecord,
    SloTargets,
)
from harness.scenarios.arrivals import DEFAULT_SEED, poisson_schedule
from harness.scenarios.base import CellContext, sampling_fields, workload_record
from harness.scenarios.capacity import CapacitySearch, find_capacity
from harness.scenarios.load import Handler, LoadRun, run_open_loop
from harness.scenarios.prepare import Prepared, prepare_checked
from harness.scenarios.specs import ScenarioSpec, engine_label
from harness.scenarios.tokens import SLO, RequestTimeline, by_send_time, goodput, meets_slo, timeline_summaries
from harness.scenarios.validity import validity

if TYPE_CHECKING:
    from harness.runfile.records import ScenarioParams

__all__ = [
    "PROBES_PER_SEARCH",
    "SCENARIO",
    "SPEC",
    "ServerProbe",
    "ServerScenario",
    "probe_at",
    "search_capacity",
    "slo_from_params",
]

#: The time budget is split over about this many probes when searching for the capacity.
PROBES_PER_SEARCH = 8
#: Probes at most, whatever the bracket.
MAX_PROBES = 12
#: Stop bisecting when the bracket's ends are this close (relative).
REL_TOL = 0.05
#: The first guess is this fraction of the rate the measured service time would sustain.
START_UTILIZATION = 0.8
#: The search gives up below the first guess divided by this (low rates make slow probes).
MIN_RATE_DIVISOR = 32
#: No new probe starts after this many times the cell's time budget.
SEARCH_BUDGET_FACTOR = 10

LoadFn = Callable[[Sequence[float]], LoadRun]


def slo_from_params(slo_p99_ms: float | None, slo_ttft_ms: float | None, slo_tpot_ms: float | None) -> SLO:
    def ns(ms: float | None) -> float | None:
        return None if ms is None else ms * 1e6

    return SLO(e2e_ns=ns(slo_p99_ms), ttft_ns=ns(slo_ttft_ms), tpot_ns=ns(slo_tpot_ms))


@dataclass(frozen=True)
class ServerProbe:
    """One open-loop run at one offered rate, judged against the SLO."""

    rate: float
    run: LoadRun
    slo: SLO

    @property
    def passed(self) -> bool:
        return meets_slo(self.run.timelines, self.slo, self.run.dropped)

    @property
    def completed_rps(self) -> float:
        return len(self.run.timelines) / (self.run.duration_ns / 1e9)

    @property
    def goodput_rps(self) -> float | None:
        return None if self.slo.empty else goodput(self.run.timelines, self.slo, self.run.duration_ns)

    def summary(self) -> ServerProbeRecord:
        """The probe as the run file lists it (milliseconds for latencies)."""
        import numpy as np

        timelines = self.run.timelines

        def p99_ms(values: list[float]) -> float | None:
            return float(np.percentile(values, 99)) / 1e6 if values else None

        return ServerProbeRecord(
            rate_rps=self.rate,
            passed=self.passed,
            requests=len(timelines) + self.run.dropped,
            dropped=self.run.dropped,
            duration_s=self.run.duration_ns / 1e9,
            completed_rps=self.completed_rps,
            goodput_rps=self.goodput_rps,
            e2e_p99_ms=p99_ms([t.e2e_ns for t in timelines]),
            ttft_p99_ms=p99_ms([t.ttft_ns for t in timelines]),
            tpot_p99_ms=p99_ms([t.tpot_ns for t in timelines if t.tpot_ns is not None]),
        )


def probe_at(
    rate: float,
    run_load: LoadFn,
    slo: SLO,
    probe_s: float,
    min_requests: int,
    max_requests: int,
    seed: int = DEFAULT_SEED,
) -> ServerProbe:
    """Offer ``rate`` for about ``probe_s`` seconds (``min_requests`` to ``max_requests``)."""
    count = max(min_requests, min(max_requests, math.ceil(rate * probe_s)))
    return ServerProbe(rate, run_load(poisson_schedule(rate, count, seed).tolist()), slo)


def search_capacity(
    run_load: LoadFn,
    slo: SLO,
    start_rate: float,
    probe_s: float,
    min_requests: int,
    max_requests: int,
    *,
    rel_tol: float = REL_TOL,
    max_probes: int = MAX_PROBES,
    out_of_time: Callable[[], bool] | None = None,
) -> CapacitySearch[ServerProbe]:
    """The highest rate whose probe meets ``slo``, searched from ``start_rate``."""
    if slo.empty:
        raise ConfigError("a capacity search needs an SLO: give --slo-p99 (or --slo-ttft/--slo-tpot for decoders)")
    measure = partial(
        probe_at, run_load=run_load, slo=slo, probe_s=probe_s, min_requests=min_requests, max_requests=max_requests
    )
    return find_capacity(
        measure,
        lambda probe: probe.passed,
        start_rate,
        rel_tol=rel_tol,
        max_probes=max_probes,
        min_rate=start_rate / MIN_RATE_DIVISOR,
        out_of_time=out_of_time,
    )


def _handlers(ctx: CellContext) -> tuple[list[Handler], Prepared]:
    """One request handler per concurrency slot, and what the record needs from preparing them."""
    config, backend = ctx.config, ctx.backend
    params = config.params
    synchronize = backend.synchronize
    if ctx.workload.generation is not None:
        from harness.scenarios.decoding import prepare_decoder, prepare_worker

        prompts = ctx.workload.generation.make_prompts(config.batch_size, params.prompt_tokens)
        first, check = prepare_decoder(ctx, config.batch_size, prompts)
        ctx.phase = "prepare"
        workers = [first] + [prepare_worker(ctx, config.batch_size, prompts) for _ in range(params.concurrency - 1)]
        handlers: list[Handler] = [partial(_generate, worker, synchronize=synchronize) for worker in workers]
        info = Prepared(
            flops=check.flops_per_request / config.batch_size,
            correctness=check.correctness,
            warning=check.warning,
            device=first.prefill.details,
            compile_s=sum(w.compile_s for w in workers),
            decoder=True,
            tokens_per_sample=params.prompt_tokens + params.output_tokens,
            token_agreement=check.token_agreement,
        )
        return handlers, info
    if params.slo_ttft_ms is not None or params.slo_tpot_ms is not None:
        raise ConfigError(f"--slo-ttft and --slo-tpot apply to decoders; {config.workload!r} is not one: use --slo-p99")

    checked = prepare_checked(ctx)
    prepared = checked.prepared
    call = prepared.call

    def forward(clock: Callable[[], int]) -> list[int]:
        call()
        synchronize()
        return [clock()]

    info = Prepared(
        flops=checked.flops_per_inference,
        correctness=checked.correctness,
        warning=checked.warning,
        device=prepared.details,
        compile_s=prepared.compile_s,
        decoder=False,
        tokens_per_sample=ctx.workload.tokens_per_sample,
    )
    return [forward] * params.concurrency, info


def _generate(worker: Any, clock: Callable[[], int], synchronize: Callable[[], None]) -> list[int]:
    times: list[int] = worker.request(clock, synchronize)
    return times


class ServerScenario:
    name = "server"

    def run(self, ctx: CellContext) -> Measurement:
        config, policy, backend = ctx.config, ctx.policy, ctx.backend
        params = config.params
        slo = slo_from_params(params.slo_p99_ms, params.slo_ttft_ms, params.slo_tpot_ms)
        handlers, info = _handlers(ctx)

        ctx.phase = "measure"
        clock = time.perf_counter_ns
        calibration_count = max(3, min(policy.min_count, 20))
        calibrated_at = clock()
        warmup_count = 0
        while warmup_count < 2 or clock() - calibrated_at < policy.warmup_time_s * 1e9:
            handlers[0](clock)
            warmup_count += 1
        unloaded = []
        for _ in range(calibration_count):
            due = clock()
            unloaded.append(RequestTimeline(due, tuple(handlers[0](clock))))
        calibration_ns = clock() - calibrated_at
        service_ns = sorted(t.e2e_ns for t in unloaded)[len(unloaded) // 2]

        def run_load(schedule: Sequence[float]) -> LoadRun:
            grace = max(float(schedule[-1]), 20 * service_ns / 1e9)
            return run_open_loop(schedule, handlers, deadline_s=float(schedule[-1]) + grace)

        # A p99 SLO (the policy's tail) is judged on at least the requests its p99 interval needs.
        min_requests = min(policy.max_count, max(policy.min_count, policy.tail_min_count or 0))
        measured_at = time.perf_counter()
        search: CapacitySearch[ServerProbe] | None = None
        if params.rate is not None:
            fixed = probe_at(params.rate, run_load, slo, policy.max_time_s, min_requests, policy.max_count)
            reported: ServerProbe | None = fixed
            probes = [fixed]
            stop_reason = "fixed_rate"
        elif not meets_slo(unloaded, slo, percentile=50):
            # Even the typical request alone misses a target: no rate can meet it, so do not spend
            # the budget probing ever lower rates. (A few slow outliers are left to the probes.)
            reported, probes, stop_reason = None, [], "nothing_passed"
        else:
            start = START_UTILIZATION * params.concurrency / (service_ns / 1e9)
            give_up = measured_at + SEARCH_BUDGET_FACTOR * policy.max_time_s
            search = search_capacity(
                run_load,
                slo,
                start,
                policy.max_time_s / PROBES_PER_SEARCH,
                min_requests,
                policy.max_count,
                out_of_time=lambda: time.perf_counter() > give_up,
            )
            best = search.best()
            reported = best.result if best is not None else None
            probes, stop_reason = [p.result for p in search.probes], search.stop_reason
        elapsed = time.perf_counter() - measured_at
        peak = backend.peak_memory_bytes()

        ctx.phase = "statistics"
        return self._record(
            ctx,
            slo,
            info,
            unloaded,
            calibration_ns,
            service_ns,
            reported,
            probes,
            search,
            stop_reason,
            elapsed,
            peak,
            warmup_count,
        )

    def _record(
        self,
        ctx: CellContext,
        slo: SLO,
        info: Prepared,
        unloaded: list[RequestTimeline],
        calibration_ns: int,
        service_ns: int,
        reported: ServerProbe | None,
        probes: list[ServerProbe],
        search: CapacitySearch[ServerProbe] | None,
        stop_reason: str,
        elapsed: float,
        peak: int | None,
        warmup_count: int,
    ) -> Measurement:
        from harness.measure.stats import summarize

        config, policy = ctx.config, ctx.policy
        params = config.params
        warnings: list[str] = [info.warning] if info.warning else []
        shown = reported.run.timelines if reported is not None and reported.run.timelines else unloaded
        if reported is None:
            warnings.append(
                "no rate met the SLO: the median request, alone, already misses it"
                if search is None
                else "no probed rate met the SLO"
            )
        elif search is not None and not search.converged:
            warnings.append(
                f"capacity search stopped by {search.stop_reason.replace('_', ' ')} before the bracket "
                f"narrowed to {REL_TOL:.0%}"
            )
        if reported is not None and reported.run.dropped:
            warnings.append(f"{reported.run.dropped} requests were dropped: the queue could not drain in time")
        if params.rate is not None and not slo.empty and reported is not None and not reported.passed:
            warnings.append(f"the SLO was not met at {params.rate:g} requests/s")
        latencies = [t.e2e_ns for t in by_send_time(shown)]
        summary = summarize(latencies, policy.confidence)
        duration_s = reported.run.duration_ns / 1e9 if reported is not None else calibration_ns / 1e9
        completed = reported.completed_rps if reported is not None else 0.0
        capacity = search.capacity if search is not None else (0.0 if stop_reason == "nothing_passed" else None)
        goodput_rps = reported.goodput_rps if reported is not None else (0.0 if not slo.empty else None)
        counts = {"requests at the reported rate": len(shown) if reported is not None else 0}
        tokens = timeline_summaries(shown, policy.confidence) if info.decoder else None
        if tokens is not None and tokens.itl_ns is not None:
            counts["ITL gaps"] = tokens.itl_ns.count
        server = ServerPart(
            mode="fixed_rate" if params.rate is not None else "capacity_search",
            rate_rps=reported.rate if reported is not None else None,
            concurrency=params.concurrency,
            slo_ms=SloTargets(params.slo_p99_ms, params.slo_ttft_ms, params.slo_tpot_ms),
            slo_met=None if slo.empty else (reported is not None and reported.passed),
            capacity_rps=capacity,
            goodput_rps=goodput_rps,
            completed_rps=completed,
            dropped=reported.run.dropped if reported is not None else 0,
            requests=len(shown) if reported is not None else 0,
            duration_s=duration_s,
            service_time_ns=service_ns,
            search=None
            if search is None
            else CapacitySearchRecord(
                converged=search.converged,
                stop_reason=search.stop_reason,
                lowest_failing_rps=search.lowest_failing,
                rel_tol=REL_TOL,
            ),
            probes=tuple(p.summary() for p in probes),
            tokens=tokens,
        )
        output_tps = total_tps = None
        if info.decoder:
            sequences_per_s = completed * config.batch_size if reported is not None else 0.0
            output_tps = sequences_per_s * params.output_tokens
            total_tps = sequences_per_s * (params.prompt_tokens + params.output_tokens)
        throughput = completed * config.batch_size
        device = ctx.backend.device_info()
        device.update(info.device)
        flops, tokens_per_sample = info.flops, info.tokens_per_sample
        return Measurement(
            workload=workload_record(ctx, flops, tokens_per_sample),
            device=device,
            compile_s=info.compile_s,
            peak_memory_bytes=peak,
            correctness=info.correctness,
            sampling=sampling_fields(
                policy,
                warmup_count=warmup_count + len(unloaded),
                warmup_s=calibration_ns / 1e9,
                elapsed_s=elapsed,
                stop_reason=stop_reason,
                wall_s=elapsed,
            ),
            latency_ns=summary,
            throughput_per_s=throughput,
            tokens_per_s=throughput * tokens_per_sample if tokens_per_sample else None,
            flops_per_s=flops * throughput if flops else None,
            samples_ns=tuple(latencies),
            capacity_rps=capacity,
            goodput_rps=goodput_rps,
            output_tokens_per_s=output_tps,
            total_tokens_per_s=total_tps,
            server=server,
            warnings=tuple(warnings),
            validity=validity(counts, duration_s if reported is not None else 0.0),
        )


SCENARIO = ServerScenario()


def _check(params: ScenarioParams) -> None:
    slo_given = any(v is not None for v in (params.slo_p99_ms, params.slo_ttft_ms, params.slo_tpot_ms))
    trace = params.engine is not None and params.engine.trace is not None
    if trace and params.rate is not None:
        raise ConfigError("a trace sets its own arrival times: drop --rate (scale them with --trace-speed)")
    if params.rate is None and not slo_given and not trace:
        raise ConfigError(
            "the server scenario needs --rate (requests/s) or an SLO to search capacity under "
            "(--slo-p99 MS, or --slo-ttft/--slo-tpot MS for decoders)"
        )
    if params.loadgen and params.rate is None:
        raise ConfigError("LoadGen's Server scenario runs at a fixed rate: give --rate (requests/s)")
    if params.loadgen and not slo_given:
        raise ConfigError(
            "LoadGen's Server scenario judges a latency target: give --slo-p99 MS "
            "(or --slo-ttft and --slo-tpot MS for decoders)"
        )


def _label(params: ScenarioParams) -> tuple[str, ...]:
    """Server cells differ by their rate (or ``capacity``, the search) and, in-process, by their
    token counts and users; an engine's server cells always name their users."""
    rate = f"r{params.rate:g}" if params.rate is not None else "capacity"
    if params.engine is not None:
        return (engine_label(params)[0], rate, f"c{params.concurrency}")
    parts = [f"p{params.prompt_tokens}o{params.output_tokens}", rate]
    if params.concurrency != 1:
        parts.append(f"c{params.concurrency}")
    if params.loadgen:
        parts.append("loadgen")
    return tuple(parts)


SPEC = ScenarioSpec(
    name="server",
    help="open-loop Poisson arrivals, latency from the scheduled arrival; at --rate, or searching the highest "
    "rate that meets the SLO (the capacity)",
    runner="harness.scenarios.server:SCENARIO",
    order=3,
    params=("prompt_tokens", "output_tokens", "rate", "slo_p99_ms", "slo_ttft_ms", "slo_tpot_ms", "concurrency"),
    uses_prompts=True,
    engine="open",
    # The capacity search may spend SEARCH_BUDGET_FACTOR budgets on probes and one more on the last.
    budgets=SEARCH_BUDGET_FACTOR + 1,
    label=_label,
    part="server",
    columns=(
        "concurrency",
        "slo",
        "capacity_rps",
        "capacity_p99_met",
        "rate_rps",
        "goodput_rps",
        "e2e_p99_ms",
        "ttft_p99_ms",
        "tpot_p50_ms",
        "output_tokens_per_s",
        "samples",
        "usd_per_million_at_capacity",
        "usd_per_million_output_tokens_at_capacity",
        "usd_per_million_total_tokens_at_capacity",
        "usd_per_million_output_tokens_measured",
    ),
    loadgen="Server",
    check=_check,
)
