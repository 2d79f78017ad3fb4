"""The suite a ``run`` (or ``aws plan``) command asks for: defaults, then a suite file, then flags."""

from __future__ import annotations

import argparse

from harness.run.plan import Suite

__all__ = ["ENGINE_FLAGS", "suite_from_args"]

#: The serving-engine options of ``run`` (``harness.cli.main._add_engine_options``), as suite keys.
ENGINE_FLAGS = (
    "engine",
    "endpoint",
    "model",
    "engine_silicon",
    "engine_python",
    "max_model_len",
    "prompt_dist",
    "output_dist",
    "prompts",
    "api",
    "requests",
)


def suite_from_args(args: argparse.Namespace) -> Suite:
    from harness.run.plan import DEFAULT_SUITE, load_suite_file

    suite = load_suite_file(args.suite) if args.suite else DEFAULT_SUITE
    return suite.with_overrides(
        workloads=args.workload,
        preset=args.preset,
        backends=args.backend,
        batch_sizes=args.batch_size,
        dtypes=args.dtype,
        modes=args.mode,
        threads=args.threads,
        device=args.device,
        max_time=args.max_time,
        min_samples=args.min_samples,
        target_rel_ci=args.target_ci,
        tail=args.tail,
        isolate=args.isolate,
        output=args.output,
        scenario=args.scenario,
        prompt_tokens=args.prompt_tokens,
        output_tokens=args.output_tokens,
        rate=args.rate,
        slo_p99=args.slo_p99,
        slo_ttft=args.slo_ttft,
        slo_tpot=args.slo_tpot,
        concurrency=args.concurrency,
        loadgen=args.loadgen,
        prepare_limit=getattr(args, "prepare_limit", None),
        sampling_grace=getattr(args, "sampling_grace", None),
        processes=args.processes,
        # Serving engines; commands without these flags (``aws plan``) leave them unset.
        **{name: getattr(args, name, None) for name in ENGINE_FLAGS},
    )
