"""Check a whole suite against what is installed here before anything is measured.

A typo, an unavailable backend or a prompt too long for a decoder costs no run time: every name,
preset, option and scenario fit is resolved up front and reported as one ``ConfigError``.
"""

from __future__ import annotations

import os
from typing import Any

from harness.errors import ConfigError
from harness.run.plan import Suite
from workloads.registry import check_factory_unseen

__all__ = ["check_threads", "resolve_presets", "usable_cores", "validate_matrix", "validate_options"]


def resolve_presets(suite: Suite, check_fit: bool = True) -> dict[str, str]:
    """Each workload's preset for this suite, checked to exist (and, with ``check_fit``, to suit
    the scenario)."""
    from workloads.base import WorkloadFamily
    from workloads.registry import builtin_presets, load_factory

    presets: dict[str, str] = {}
    for name in suite.matrix.workloads:
        known = None if check_fit else builtin_presets(name)
        if known is not None:
            # Planning for another machine: a built-in's presets are data; its module (and torch)
            # is imported only where the cells run.
            preset = suite.matrix.preset or known.default
            if preset not in known.presets:
                raise ConfigError(f"workload {name!r} has no preset {preset!r}; available: {', '.join(known.presets)}")
            presets[name] = preset
            continue
        factory = load_factory(name)
        if isinstance(factory, WorkloadFamily):
            preset = suite.matrix.preset or factory.default_preset
            if preset not in factory.presets:
                raise ConfigError(
                    f"workload {name!r} has no preset {preset!r}; available: {', '.join(factory.presets)}"
                )
            presets[name] = preset
            if check_fit:
                check_scenario_fits(suite, name, factory(preset))
        else:
            preset = suite.matrix.preset or "default"
            presets[name] = preset
            # The user's own factory: checked without calling it (what it is, its signature, its
            # declared return type), so ``os:system`` is refused before it can run anything. It is
            # called only in the cell that builds its model, which fails alone if the call does.
            check_factory_unseen(name, factory, preset)
    return presets


def usable_cores() -> int:
    """The cores this process may run on (its affinity mask, which containers narrow)."""
    try:
        return len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        return os.cpu_count() or 1


def check_threads(suite: Suite) -> None:
    """``--threads`` within the cores this machine lets us use: more threads than cores only
    time-slice one another."""
    cores = usable_cores()
    threads = suite.matrix.threads
    if threads is not None and threads > cores:
        raise ConfigError(
            f"--threads {threads} is more than the {cores} cores this process may use here; give at most {cores}"
        )


def validate_options(backend: Any, suite: Suite) -> None:
    """Every dtype × mode of the suite against one backend (ConfigError names the allowed values)."""
    from backends.base import BackendOptions

    matrix = suite.matrix
    for dtype in matrix.dtypes:
        for mode in matrix.modes:
            backend.validate(BackendOptions(dtype=dtype, mode=mode, threads=matrix.threads, device=matrix.device))


def validate_matrix(suite: Suite) -> tuple[dict[str, str], dict[str, Any]]:
    """Resolve every name and option before measuring; returns default presets and backends.

    Engine cells name no in-process workload or backend: the engine serves the model; what they
    do name (model folder, prompts, engine python, endpoint) is checked here, once
    (``harness.run.engine_inputs``).
    """
    from backends.registry import require_backend

    check_threads(suite)
    engine = suite.engine_params()
    if engine is not None:
        from harness.run.engine_inputs import check_engine_inputs

        check_engine_inputs(engine)
        return {}, {}
    presets = resolve_presets(suite)
    if suite.load.loadgen:
        import importlib.util

        if importlib.util.find_spec("mlperf_loadgen") is None:
            raise ConfigError(
                "--loadgen needs MLPerf LoadGen: pip install 'siliconbench[loadgen]' (package mlcommons-loadgen)"
            )
    backends: dict[str, Any] = {}
    for name in suite.matrix.backends:
        backend = require_backend(name)
        validate_options(backend, suite)
        backends[name] = backend
    return presets, backends


def check_scenario_fits(suite: Suite, name: str, workload: Any) -> None:
    """Generation options against the workload: decoders only, and within their positions."""
    from harness.scenarios.registry import spec

    scenario = spec(suite.load.scenario)
    generation = getattr(workload, "generation", None)
    if generation is None:
        if scenario.workloads == "decoders":
            raise ConfigError(f"scenario {scenario.name!r} needs a decoder workload (llama, gpt2); {name!r} is not one")
        if suite.load.slo_ttft is not None or suite.load.slo_tpot is not None:
            raise ConfigError(f"--slo-ttft and --slo-tpot apply to decoders; {name!r} is not one: use --slo-p99")
        return
    if scenario.uses_prompts and suite.load.prompt_tokens + suite.load.output_tokens > generation.max_positions:
        raise ConfigError(
            f"--prompt-tokens {suite.load.prompt_tokens} + --output-tokens {suite.load.output_tokens} exceed "
            f"{name}'s {generation.max_positions} positions"
        )
