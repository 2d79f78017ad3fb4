"""Cells on a serving engine: ``generate`` and ``server`` through the engine's streaming API.

An engine cell builds no model in this process. Its configuration names the engine to start or the
server to attach to (``EngineParams.spec``) and the model it serves, whose tokenizer builds the
request set and whose weights are the correctness reference. The flow is the in-process one:

1. the request set: exact prompt lengths with the model's tokenizer, or the user's file;
2. correctness before any timing: the engine's greedy token ids against transformers in fp32
   (``engine_check``); an engine that sends no token ids is measured with its correctness
   unchecked and a warning saying why;
3. measure, with the engine's ``/metrics`` sampled alongside: ``generate`` is a closed loop of
   ``concurrency`` users under the sampler's rule (with ``--multi-turn``, every conversation of the
   file once, turn by turn: ``engine_conversations``); ``server`` is open-loop Poisson arrivals at
   ``--rate``, a capacity search under the SLO, or a recorded trace replayed at its times;
4. the record: the usual measurement (end-to-end latency, token metrics, tokens/s, capacity and
   goodput, so reports and costs treat an engine like any backend) and the ``engine`` part: the
   engine's record, the token check, and every request with its event times and server counts;
   for token-id prompts the reuse they were designed with beside the engine's prefix cache hit
   rate (``workloads.reuse``), a trace's punctuality, and a conversation run's figures by turn.

The engine itself comes from the run's ``backends.engine.pool.EnginePool`` (one per ``EngineSpec``
for the whole run); this module only applies the load and makes the record.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import replace
from typing import Any

from backends.engine.pool import EnginePool
from backends.engine.serving import ServingEngine
from harness.errors import ConfigError
from harness.measure.sampler import SamplingPolicy
from harness.runfile.engine import EngineMetrics, EngineParams
from harness.runfile.records import (
    CapacitySearchRecord,
    CellConfig,
    Correctness,
    EngineAgreement,
    EnginePart,
    GenerationPart,
    Measurement,
    RequestSetFacts,
    ReuseRecord,
    SamplingRecord,
    ServerPart,
    ServerProbeRecord,
    SloTargets,
    TokenMetrics,
    TraceRecord,
    WorkloadFacts,
)
from harness.scenarios.base import sampling_fields
from harness.scenarios.engine import (
    REL_TOL,
    EngineProbe,
    EngineTarget,
    measure_closed_loop,
    measure_unloaded,
    probe_rate,
    replay_trace,
    search_capacity,
)
from harness.scenarios.engine_check import check_engine, threshold_for
from harness.scenarios.engine_conversations import turn_records
from harness.scenarios.engine_load import EngineLoadRun
from harness.scenarios.engine_records import load_record
from harness.scenarios.registry import cell_id
from harness.scenarios.tokens import SLO
from harness.scenarios.validity import validity
from workloads.request_sets import RequestSet, request_set
from workloads.reuse import PrefixReuse, engine_block_size

__all__ = ["EngineCell"]

#: No new probe starts after this many times the cell's time budget (as in-process ``server``).
SEARCH_BUDGET_FACTOR = 10
#: A probe's stragglers are cancelled this many unloaded end-to-end times after its last arrival.
GRACE_FACTOR = 20
#: A trace's stragglers are cancelled this long (plus the cell's time budget) after its last send.
TRACE_GRACE_S = 30.0


class EngineCell:
    """One engine cell being measured; ``phase`` says where it is, for a failure's record."""

    def __init__(
        self,
        config: CellConfig,
        policy: SamplingPolicy,
        pool: EnginePool,
        *,
        check_limit_s: float | None = None,
        load_limit_s: float | None = None,
    ) -> None:
        """``check_limit_s`` bounds the correctness check's requests and ``load_limit_s`` the load's,
        each from its start (the run passes the sampling limit of ``harness.run.limits`` for
        both); None: only the client's own per-request deadlines."""
        engine = config.params.engine
        if engine is None:
            raise ConfigError(f"cell {cell_id(config)} is not an engine cell")
        if config.scenario not in ("generate", "server"):
            raise ConfigError(f"engine cells run the generate and server scenarios, not {config.scenario!r}")
        self.config = config
        self.policy = policy
        self.params: EngineParams = engine
        self.pool = pool
        self.check_limit_s, self.load_limit_s = check_limit_s, load_limit_s
        self.phase = "setup"

    def run(self) -> Measurement:
        self.phase = "engine"
        serving = self.pool.get(self.params.spec)
        self.phase = "build"
        local = self._local_params()
        requests = request_set(local)
        target = EngineTarget(serving.endpoint, requests, reuse=_reuse_tracker(self.params, requests, serving))
        self._check_lengths(target)
        self.phase = "correctness"
        # The check's few requests, and then the load, each get the cell's sampling limit (budget
        # plus grace, ``harness.run.limits``) from their first request: a silent server fails them
        # there, whatever the client's own per-request deadlines (minutes, for a long prefill).
        agreement = check_engine(
            target,
            local.model,
            threshold=threshold_for(self.params.spec.dtype),
            isolate=target.reuse is not None or bool(requests.conversations),
            limit_s=self.check_limit_s,
        )
        self.phase = "measure"
        from backends.engine.metrics import MetricsSampler

        before = _designed(target.reuse)
        if self.load_limit_s is not None:
            target = target.until(time.monotonic() + self.load_limit_s)
        with MetricsSampler(serving.engine.url) as sampler:
            if requests.trace is not None:
                loads = self._trace(target)
            elif requests.conversations:
                loads = self._conversations(target)
            elif self.config.scenario == "generate":
                loads = self._generate(target)
            else:
                loads = self._server(target)
        loads.designed = _window(target.reuse, before)
        if requests.conversations:
            self.phase = "statistics"
            self._conversation_reuse(serving, requests, loads)
        self.phase = "statistics"
        exited = serving.exit_code()
        if exited is not None:
            loads.warnings.append(
                f"the engine exited with code {exited} during the cell; what was measured before is kept"
            )
        return self._measurement(serving, target, agreement, loads, sampler.result())

    def _trace(self, target: EngineTarget) -> _Loads:
        started = time.perf_counter()
        run = replay_trace(target, grace_s=self.policy.max_time_s + TRACE_GRACE_S)
        sampling = sampling_fields(
            self.policy,
            warmup_count=0,
            warmup_s=0.0,
            elapsed_s=run.duration_ns / 1e9,
            stop_reason="trace_replayed",
            wall_s=time.perf_counter() - started,
        )
        return _Loads(run, sampling, [])

    def _conversations(self, target: EngineTarget) -> _Loads:
        from harness.scenarios.engine_conversations import run_conversations

        started = time.perf_counter()
        params = self.params
        conversations = target.requests.conversations

        async def body(client: Any) -> EngineLoadRun:
            return await run_conversations(
                client,
                conversations,
                self.config.params.concurrency,
                think_time_s=params.think_time_s or 0.0,
                seed=params.seed,
            )

        run = target.load(body, connections=self.config.params.concurrency)
        sampling = sampling_fields(
            self.policy,
            warmup_count=0,
            warmup_s=0.0,
            elapsed_s=run.duration_ns / 1e9,
            stop_reason="conversations_done",
            wall_s=time.perf_counter() - started,
        )
        return _Loads(run, sampling, [])

    def _conversation_reuse(self, serving: ServingEngine, requests: RequestSet, loads: _Loads) -> None:
        """Each turn's prompt ids from the engine's ``/tokenize`` after the load, walked at its block
        (``engine_conversations.designed_reuse``): the designed reuse, or why none is given."""
        from backends.engine.metrics import read_cache_config
        from backends.engine.tokenize import chat_token_ids
        from harness.scenarios.engine_conversations import designed_reuse

        url, model = serving.engine.url, serving.endpoint.model
        block = read_cache_config(url).block_size or engine_block_size(self.params.spec.extra_args)
        found = designed_reuse(requests.conversations, loads.run, lambda m: chat_token_ids(url, model, m), block)
        loads.run, loads.reuse, loads.reuse_unknown = found.run, found.reuse, found.unknown
        if found.reuse is not None:
            loads.designed = (found.reuse.designed, found.reuse.prompt_tokens)

    def _local_params(self) -> EngineParams:
        """The params with the model as fetched (an ``s3://`` model's local folder), for the
        tokenizer and the reference; the cell's config keeps the name the user gave."""
        from backends.engine.models import local_model

        fetched = local_model(self.params.model)
        if fetched.path == self.params.model:
            return self.params
        return replace(self.params, spec=replace(self.params.spec, model=fetched.path))

    def _check_lengths(self, target: EngineTarget) -> None:
        limit = self.params.spec.max_model_len
        if self.config.scenario != "server" and target.requests.trace is not None:
            raise ConfigError("a trace is replayed in open loop at its recorded times: give --scenario server")
        if self.config.scenario != "generate" and target.requests.conversations:
            raise ConfigError("conversations are run by closed-loop users (--concurrency): give --scenario generate")
        for request in target.requests.requests:
            if request.input_tokens is not None and request.input_tokens + request.max_tokens > limit:
                raise ConfigError(
                    f"request {request.request_id} needs {request.input_tokens} + {request.max_tokens} tokens, "
                    f"more than the engine's max model length {limit}: raise --max-model-len or shorten the set"
                )

    def _generate(self, target: EngineTarget) -> _Loads:
        started = time.perf_counter()
        result = measure_closed_loop(target, self.config.params.concurrency, self.policy)
        sampling = sampling_fields(
            self.policy,
            warmup_count=len(result.warmup.outcomes),
            warmup_s=result.warmup.duration_ns / 1e9,
            elapsed_s=result.run.duration_ns / 1e9,
            stop_reason=result.stop_reason,
            wall_s=time.perf_counter() - started,
            rel_ci_half_width=result.rel_ci_half_width,
        )
        warnings = []
        if result.stop_reason != "converged":
            warnings.append(
                f"stopped by {result.stop_reason.replace('_', ' ')} before the median end-to-end latency's CI "
                f"reached ±{self.policy.target_rel_ci:.1%}"
            )
        return _Loads(result.run, sampling, warnings)

    def _server(self, target: EngineTarget) -> _Loads:
        from harness.scenarios.server import slo_from_params

        policy, params = self.policy, self.config.params
        slo = slo_from_params(params.slo_p99_ms, params.slo_ttft_ms, params.slo_tpot_ms)
        started = time.perf_counter()
        unloaded = measure_unloaded(target)
        if not unloaded.ok:
            reasons = ", ".join(f"{n} {kind}" for kind, n in unloaded.failures().items())
            raise ConfigError(f"the engine failed every request sent one at a time ({reasons})")
        e2e = sorted(unloaded.e2e_ns())
        service_s = e2e[len(e2e) // 2] / 1e9
        search = None
        if params.rate is not None:
            count = max(policy.min_count, min(policy.max_count, round(params.rate * policy.max_time_s)))
            fixed = probe_rate(target, params.rate, slo, count, grace_s=GRACE_FACTOR * service_s)
            reported: EngineProbe | None = fixed
            probes = [fixed]
            stop_reason = "fixed_rate"
        else:
            give_up = time.perf_counter() + SEARCH_BUDGET_FACTOR * policy.max_time_s
            search = search_capacity(target, slo, policy, service_s, out_of_time=lambda: time.perf_counter() > give_up)
            best = search.best()
            reported = best.result if best is not None else None
            probes = [p.result for p in search.probes]
            stop_reason = search.stop_reason
        shown = reported.run if reported is not None else unloaded
        sampling = sampling_fields(
            policy,
            warmup_count=len(unloaded.outcomes),
            warmup_s=unloaded.duration_ns / 1e9,
            elapsed_s=sum(p.run.duration_ns for p in probes) / 1e9,
            stop_reason=stop_reason,
            wall_s=time.perf_counter() - started,
        )
        warnings = []
        if reported is None:
            warnings.append("no probed rate met the SLO")
        elif search is not None and not search.converged:
            warnings.append(
                f"capacity search stopped by {search.stop_reason.replace('_', ' ')} before the bracket "
                f"narrowed to {REL_TOL:.0%}"
            )
        if params.rate is not None and not slo.empty and reported is not None and not reported.passed:
            warnings.append(f"the SLO was not met at {params.rate:g} requests/s")
        goodput = None if slo.empty else (shown.goodput_rps(slo) if reported is not None else 0.0)
        server = ServerPart(
            mode="fixed_rate" if params.rate is not None else "capacity_search",
            rate_rps=reported.rate if reported is not None else None,
            concurrency=params.concurrency,
            slo_ms=SloTargets(params.slo_p99_ms, params.slo_ttft_ms, params.slo_tpot_ms),
            slo_met=None if slo.empty else (reported is not None and reported.passed),
            capacity_rps=search.capacity if search is not None else None,
            goodput_rps=goodput,
            completed_rps=shown.completed_rps if reported is not None else 0.0,
            dropped=shown.failed if reported is not None else 0,
            requests=len(shown.outcomes) if reported is not None else 0,
            duration_s=shown.duration_ns / 1e9,
            service_time_ns=round(service_s * 1e9),
            search=None
            if search is None
            else CapacitySearchRecord(search.converged, search.stop_reason, search.lowest_failing, REL_TOL),
            probes=tuple(_probe_record(p) for p in probes),
            tokens=_token_metrics(shown, policy.confidence),
        )
        return _Loads(shown, sampling, warnings, server=server, probes=probes, slo=slo)

    def _measurement(
        self,
        serving: ServingEngine,
        target: EngineTarget,
        agreement: EngineAgreement,
        loads: _Loads,
        metrics: Any,
    ) -> Measurement:
        from harness.measure.stats import summarize
        from harness.scenarios.engine_records import length_report

        params, policy, run = self.params, self.policy, loads.run
        e2e = [round(v) for v in run.e2e_ns()]
        if not e2e:
            reasons = ", ".join(f"{n} {kind}" for kind, n in sorted(run.failures().items()))
            raise ConfigError(f"every measured request failed ({reasons})")
        warnings: list[str] = [agreement.warning] if agreement.warning else []
        if run.failed:
            reasons = ", ".join(f"{n} {kind.replace('_', ' ')}" for kind, n in sorted(run.failures().items()))
            warnings.append(f"{run.failed} of {len(run.outcomes)} requests failed: {reasons}")
        lengths = length_report(run.outcomes).warning
        if lengths:
            warnings.append(lengths)
        warnings.extend(loads.warnings)
        tokens = _token_metrics(run, policy.confidence)
        counts = {"requests (TTFT, TPOT, end-to-end)": len(e2e)}
        if tokens.itl_ns is not None:
            counts["ITL gaps"] = tokens.itl_ns.count
        ok = max(1, len(run.ok))
        generation = None
        if self.config.scenario == "generate":
            generation = GenerationPart(
                prompt_tokens=round(run.input_tokens / ok),
                output_tokens=round(run.output_tokens / ok),
                batch_size=1,
                requests=len(run.outcomes),
                tokens=tokens,
                sequences_per_s=run.completed_rps,
                output_tokens_per_s=run.output_tokens_per_s,
                total_tokens_per_s=run.total_tokens_per_s,
                token_agreement=None if agreement.unchecked else agreement.agreement,
                reference_tokens=agreement.tokens_per_prompt,
            )
        record = serving.record()
        requests = target.requests
        return Measurement(
            workload=WorkloadFacts(
                task="text-generation",
                description=f"{params.model} on {record.engine} ({record.mode}), requests {params.describe()}",
                params=0,
                flops_per_inference=None,
                tokens_per_sample=round((run.input_tokens + run.output_tokens) / ok),
            ),
            device={
                "engine": record.engine,
                "engine_mode": record.mode,
                "engine_version": record.version,
                "silicon": record.silicon,
                "url": record.url,
                "model": serving.endpoint.model,
            },
            compile_s=record.cold_start_s,
            peak_memory_bytes=None,
            correctness=Correctness(
                max_rel_error=1.0 - agreement.agreement,
                tolerance=1.0 - agreement.threshold,
                passed=agreement.passed,
                reference="engine greedy token ids vs transformers cpu fp32 (error: share of positions that differ)",
            ),
            sampling=loads.sampling,
            latency_ns=summarize(e2e, policy.confidence),
            samples_ns=tuple(e2e),
            throughput_per_s=run.completed_rps,
            tokens_per_s=run.total_tokens_per_s,
            flops_per_s=None,
            output_tokens_per_s=run.output_tokens_per_s,
            total_tokens_per_s=run.total_tokens_per_s,
            capacity_rps=loads.server.capacity_rps if loads.server is not None else None,
            goodput_rps=loads.server.goodput_rps if loads.server is not None else None,
            generation=generation,
            server=loads.server,
            engine=EnginePart(
                engine=record,
                request_set=RequestSetFacts(
                    source=requests.source,
                    requests=len(requests),
                    input_tokens=requests.input_tokens,
                    output_tokens=requests.output_tokens,
                    seed=requests.seed,
                    api=params.api,
                    prompt_forms=requests.prompt_forms,
                    ids_reason=requests.ids_reason,
                ),
                agreement=agreement,
                load=load_record(run, loads.slo, policy.confidence),
                probes=tuple(load_record(p.run, loads.slo, policy.confidence) for p in loads.probes),
                metrics=metrics,
                reuse=_reuse_record(target, loads, metrics),
                trace=_trace_record(requests, run, policy.confidence),
                turns=turn_records(run, policy.confidence) if requests.conversations else (),
                reuse_unknown=loads.reuse_unknown,
            ),
            warnings=tuple(warnings),
            validity=validity(counts, run.duration_ns / 1e9),
        )


class _Loads:
    """What a scenario's measuring phase hands to the record."""

    def __init__(
        self,
        run: EngineLoadRun,
        sampling: SamplingRecord,
        warnings: list[str],
        *,
        server: ServerPart | None = None,
        probes: Sequence[EngineProbe] = (),
        slo: SLO | None = None,
    ) -> None:
        self.run = run
        self.sampling = sampling
        self.warnings = warnings
        self.server = server
        self.probes = probes
        self.slo = slo
        #: Designed reuse over the measured window: (cached tokens, prompt tokens), or None.
        self.designed: tuple[int, int] | None = None
        #: A conversation run's own tracker (its ids come after the load), or why it has none.
        self.reuse: PrefixReuse | None = None
        self.reuse_unknown: str | None = None


def _reuse_tracker(params: EngineParams, requests: RequestSet, serving: ServingEngine) -> PrefixReuse | None:
    """A designed-reuse tracker where the prompts are token ids (their blocks are known exactly), at
    the block size the engine reports (``vllm:cache_config_info``), else the one it was given."""
    from backends.engine.metrics import read_cache_config

    forms = requests.prompt_forms
    if requests.trace is None and (not forms or any(form != "token_ids" for form in forms)):
        return None
    reported = read_cache_config(serving.engine.url).block_size
    return PrefixReuse(reported or engine_block_size(params.spec.extra_args))


def _designed(reuse: PrefixReuse | None) -> tuple[int, int] | None:
    return None if reuse is None else (reuse.designed, reuse.prompt_tokens)


def _window(reuse: PrefixReuse | None, before: tuple[int, int] | None) -> tuple[int, int] | None:
    after = _designed(reuse)
    if after is None or before is None:
        return None
    return after[0] - before[0], after[1] - before[1]


def _reuse_record(target: EngineTarget, loads: _Loads, metrics: EngineMetrics | None) -> ReuseRecord | None:
    """Designed reuse over the sampled window beside the engine's hit rate over the same window."""
    tracker = target.reuse or loads.reuse
    if loads.designed is None or tracker is None:
        return None
    cached, prompt = loads.designed
    return ReuseRecord(
        block_size=tracker.block_size,
        prompt_tokens=prompt,
        designed_cached_tokens=cached,
        designed_rate=cached / prompt if prompt else 0.0,
        measured_rate=None if metrics is None else metrics.prefix_cache_hit_rate,
    )


def _trace_record(requests: RequestSet, run: EngineLoadRun, confidence: float) -> TraceRecord | None:
    from harness.measure.stats import summarize

    replay = requests.trace
    if replay is None:
        return None
    trace = replay.trace
    late = [float(max(0, o.sent_ns - o.scheduled_ns)) for o in run.outcomes]
    return TraceRecord(
        file=trace.file,
        format=trace.format,
        read=trace.rows,
        replayed=len(replay.requests),
        over_context=replay.over_context,
        speed=replay.speed,
        block_size=trace.block_size,
        span_s=replay.schedule_s[-1] if replay.schedule_s else 0.0,
        lateness_ns=summarize(late, confidence) if late else None,
    )


def _token_metrics(run: EngineLoadRun, confidence: float) -> TokenMetrics:
    from harness.measure.stats import summarize

    ttft, tpot, itl, e2e = run.ttft_ns(), run.tpot_ns(), run.itl_ns(), run.e2e_ns()
    return TokenMetrics(
        ttft_ns=summarize(ttft, confidence) if ttft else None,
        tpot_ns=summarize(tpot, confidence) if tpot else None,
        itl_ns=summarize(itl, confidence) if itl else None,
        e2e_ns=summarize(e2e, confidence) if e2e else None,
        timelines_ns=tuple(tuple(e.t_ns - o.scheduled_ns for e in o.events) for o in run.ok if o.events),
    )


def _probe_record(probe: EngineProbe) -> ServerProbeRecord:
    import numpy as np

    run = probe.run

    def p99_ms(values: list[float]) -> float | None:
        return float(np.percentile(values, 99)) / 1e6 if values else None

    return ServerProbeRecord(
        rate_rps=probe.rate,
        passed=probe.passed,
        requests=len(run.outcomes),
        dropped=run.failed,
        duration_s=run.duration_ns / 1e9,
        completed_rps=run.completed_rps,
        goodput_rps=None if probe.slo.empty else run.goodput_rps(probe.slo),
        e2e_p99_ms=p99_ms(run.e2e_ns()),
        ttft_p99_ms=p99_ms(run.ttft_ns()),
        tpot_p99_ms=p99_ms(run.tpot_ns()),
    )
