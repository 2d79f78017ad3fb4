"""The benchmark matrix: a suite (what the user asked for) expanded into cells.

A suite comes from defaults, then a TOML suite file, then command-line options, each overriding
the last; it is validated once here, before anything is measured, so a typo costs no run time.
Its parts are the typed sections of ``harness.run.config`` (matrix, stopping rule, execution,
load, engine, pricing); the checks that span sections (a scenario against its engine, its
parameters, ``--processes``) are here, and each scenario's own are in its ``SPEC.check``.
"""

from __future__ import annotations

import itertools
import tomllib
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, Literal

from pydantic import ValidationError

from harness.errors import ConfigError
from harness.run.config import (
    FIELDS,
    MAX_CONCURRENCY,
    MAX_THREADS,
    SECTIONS,
    EngineConfig,
    ExecutionConfig,
    LoadConfig,
    MatrixConfig,
    PricingConfig,
    Section,
    StoppingRule,
    describe_type,
)
from harness.runfile.engine import EngineParams
from harness.runfile.records import CellConfig, ScenarioParams

__all__ = [
    "DEFAULT_SUITE",
    "MAX_CONCURRENCY",
    "MAX_THREADS",
    "EngineCell",
    "Suite",
    "load_suite_file",
]

#: The run file's ``suite`` (schema v2) lists its keys in this order; a key added later follows them
#: in the order ``FIELDS`` declares it, so a new field needs no entry here.
RUN_FILE_ORDER = (
    "workloads", "preset", "backends", "batch_sizes", "dtypes", "modes", "threads", "device", "scenario",
    "max_time", "min_samples", "target_rel_ci", "tail", "isolate", "output", "pricing", "prompt_tokens",
    "output_tokens", "rate", "slo_p99", "slo_ttft", "slo_tpot", "concurrency", "loadgen", "prepare_limit",
    "sampling_grace", "processes", "engine", "endpoint", "model", "engine_silicon", "engine_python",
    "max_model_len", "prompts", "prompt_dist", "output_dist", "api", "requests", "engine_args",
)  # fmt: skip


@dataclass(frozen=True)
class EngineCell:
    """A cell measured on a serving engine, in the plan's own words.

    The run file records every cell as a ``CellConfig``; for an engine cell its fields mean other
    things (``to_config`` says which), so the plan keeps this variant and converts once.
    """

    model: str
    #: The request set (``EngineParams.describe``): prompts, token distributions, API, count.
    request_set: str
    #: ``vllm-cpu`` for an engine started for the run, ``endpoint`` for one attached to.
    server: str
    #: The dtype asked of a started engine, None for its silicon's default.
    dtype: str | None
    scenario: str
    params: ScenarioParams

    def to_config(self) -> CellConfig:
        """The run file's record: the model is the workload, the request set the preset, the
        engine the backend, and the mode ``engine``."""
        return CellConfig(
            workload=self.model,
            preset=self.request_set,
            backend=self.server,
            dtype=self.dtype or "engine-default",
            mode="engine",
            threads=None,
            batch_size=1,
            scenario=self.scenario,
            params=self.params,
        )


@dataclass(frozen=True, init=False)
class Suite:
    """What to run: the sections of ``harness.run.config`` and the folder the run file goes to.

    ``Suite(max_time=2, workloads=("mlp",))`` takes flat keys, as a suite file does;
    ``Suite(stopping=StoppingRule(max_time=2))`` takes sections. Lists multiply into cells;
    scalars apply to every cell.
    """

    matrix: MatrixConfig
    stopping: StoppingRule
    execution: ExecutionConfig
    load: LoadConfig
    engine: EngineConfig
    pricing: PricingConfig
    output: str

    def __init__(
        self,
        *,
        matrix: MatrixConfig | None = None,
        stopping: StoppingRule | None = None,
        execution: ExecutionConfig | None = None,
        load: LoadConfig | None = None,
        engine: EngineConfig | None = None,
        pricing: PricingConfig | None = None,
        output: str = "results",
        **flat: Any,
    ) -> None:
        given: dict[str, Section | None] = {"matrix": matrix, "stopping": stopping, "execution": execution}
        given.update(load=load, engine=engine, pricing=pricing)
        if not isinstance(output, str) or isinstance(output, bool):
            raise ConfigError(f"'output' must be str, got {output!r}")
        object.__setattr__(self, "output", output)
        for name, model in SECTIONS.items():
            object.__setattr__(self, name, given[name] if given[name] is not None else model())
        if flat:
            built = _sections(self, flat, "suite")
            for name, section in built.items():
                object.__setattr__(self, name, section)
        self._check_scenario_params()

    def _check_scenario_params(self) -> None:
        """Checks that span sections; each section checked its own, each scenario checks its own."""
        from harness.scenarios.registry import scenario_specs, spec

        load, execution = self.load, self.execution
        self._check_engine()
        scenario = spec(load.scenario)
        if execution.processes > 1 and (not scenario.mergeable or load.loadgen):
            pooled = [s.name for s in scenario_specs().values() if s.mergeable]
            raise ConfigError(
                f"--processes pools per-call samples across processes: scenarios {' and '.join(pooled)} "
                f"(without --loadgen), not {load.scenario!r}{' with --loadgen' if load.loadgen else ''}"
            )
        if load.loadgen and scenario.loadgen is None:
            runs = {s.name: s.loadgen for s in scenario_specs().values() if s.loadgen}
            raise ConfigError(
                f"LoadGen runs the scenarios {', '.join(runs)} (as {', '.join(runs.values())}), "
                f"not {load.scenario!r}; drop --loadgen or change --scenario"
            )
        scenario.check(self.scenario_params())

    def _check_engine(self) -> None:
        """Engine options only with an engine; an engine cell runs a scenario an engine can run."""
        from harness.scenarios.registry import scenario_specs, spec

        engine, load = self.engine, self.load
        if not engine.used:
            keys = ("prompts", "prompt_dist", "output_dist", "model", "trace", "multi_turn", "shared_prefix")
            given = [k for k in keys if getattr(engine, k) is not None]
            given += ["engine_arg"] if engine.engine_args else []
            if given:
                raise ConfigError(
                    f"--{given[0].replace('_', '-')} applies to serving engines: give --engine NAME (start one) "
                    "or --endpoint URL (attach to one)"
                )
            return
        scenario = spec(load.scenario)
        if scenario.engine is None:
            runs = [s.name for s in scenario_specs().values() if s.engine is not None]
            raise ConfigError(f"engine cells run the {' and '.join(runs)} scenarios, not --scenario {load.scenario}")
        if load.loadgen:
            raise ConfigError("--loadgen drives in-process backends; engine cells run without it")
        if self.execution.processes > 1:
            raise ConfigError(
                "engine cells are measured in this process against one engine for the run; "
                "--processes repeats in-process backends"
            )
        if scenario.engine == "open" and load.concurrency != (1,):
            closed = " or ".join(s.name for s in scenario_specs().values() if s.engine == "closed")
            raise ConfigError(
                f"an engine's {load.scenario} cells are an open loop (every arrival is sent, whatever is in "
                f"flight); --concurrency sweeps the users of --scenario {closed}"
            )
        params = self.engine_params()  # the engine and the request set, checked once, here
        assert params is not None
        if params.trace is not None and load.scenario != "server":
            raise ConfigError("--trace is replayed in open loop at the trace's times: give --scenario server")
        if params.multi_turn and load.scenario != "generate":
            raise ConfigError("--multi-turn conversations are run by closed-loop users: give --scenario generate")
        from workloads.request_checks import check_request_source

        check_request_source(params)  # the user's files, read and checked before anything runs

    def engine_params(self) -> EngineParams | None:
        """The engine part of the first cell, or None for in-process cells (``engine_configs``)."""
        configs = self.engine_configs()
        return configs[0] if configs else None

    def engine_configs(self) -> list[EngineParams]:
        """The engine part of the cells, one per engine configuration (``--engine-arg`` axes'
        product; one when there are none); empty for in-process cells.

        A started engine runs the suite's dtype when one was asked for (``--dtype``, one only, or a
        ``dtype`` axis), else its silicon's default.
        """
        engine = self.engine
        if not engine.used:
            return []
        from harness.run.engine_args import check_silicon, configurations, parse_engine_args
        from harness.runfile.engine import EngineSpec

        if not engine.model:
            raise ConfigError("engine cells need --model: the model folder or hub id the engine serves")
        if engine.api not in ("chat", "completions"):
            raise ConfigError(f"--api must be completions or chat, got {engine.api!r}")
        dtype = None
        dtypes = self.matrix.dtypes
        if dtypes != DEFAULT_DTYPES:
            if len(dtypes) != 1:
                raise ConfigError(f"an engine runs one dtype per run; got {', '.join(dtypes)}")
            dtype = dtypes[0]
        axes = parse_engine_args(engine.engine_args)
        if axes and engine.endpoint is not None:
            raise ConfigError(
                "--engine-arg configures an engine this run starts; an --endpoint is configured by its owner"
            )
        if dtype is not None and any(axis.key == "dtype" for axis in axes):
            raise ConfigError("give the engine's dtype once: --dtype or --engine-arg dtype=..., not both")
        check_silicon(axes, engine.engine_silicon)
        api: Literal["completions", "chat"] = "chat" if engine.api == "chat" else "completions"
        configs = []
        ready_timeout_s = self.engine_ready_timeout_s()
        for config in configurations(axes):
            swept = dict(config)
            spec = EngineSpec(
                model=engine.model,
                engine=engine.engine,
                endpoint=engine.endpoint,
                silicon=engine.engine_silicon,
                python=engine.engine_python,
                dtype=swept.get("dtype", dtype),
                max_model_len=engine.max_model_len,
                ready_timeout_s=ready_timeout_s,
                engine_args=tuple((key, value) for key, value in config if key != "dtype"),
            )
            configs.append(
                EngineParams(
                    spec=spec,
                    prompts=engine.prompts,
                    prompt_tokens=engine.prompt_dist or str(self.load.prompt_tokens),
                    output_tokens=engine.output_dist or str(self.load.output_tokens),
                    api=api,
                    requests=engine.requests,
                    trace=engine.trace,
                    trace_block_size=engine.trace_block_size,
                    trace_speed=engine.trace_speed,
                    trace_limit=engine.trace_limit,
                    multi_turn=engine.multi_turn,
                    think_time_s=engine.think_time,
                    shared_prefix=engine.shared_prefix,
                )
            )
        return configs

    def engine_ready_timeout_s(self) -> float:
        """How long a started engine may take to serve (its first ``/health`` 200): the cell's
        preparation limit, ``--prepare-limit`` when given, else its silicon's entry of
        ``harness.run.limits.ENGINE_READY_DEFAULTS`` (an engine's start is its cells' preparation)."""
        from harness.run.limits import engine_ready_default

        given = self.execution.prepare_limit
        if given is not None:
            return float(given)
        return engine_ready_default(self.engine.engine_silicon).seconds

    def dtypes_explicit(self) -> bool:
        """Whether the dtypes were asked for (a flag or a suite file), not the defaults: explicit
        dtypes run even where the silicon emulates them (``harness.run.dtypes``)."""
        return "dtypes" in self.matrix.model_fields_set

    def tail_percentile(self) -> float | None:
        """The percentile sampling must back: ``tail``, else 99 when a p99 SLO is set, else None."""
        if self.stopping.tail is not None:
            return self.stopping.tail
        load = self.load
        if any(v is not None for v in (load.slo_p99, load.slo_ttft, load.slo_tpot)):
            return 99.0
        return None

    def scenario_params(self) -> ScenarioParams:
        load = self.load
        return ScenarioParams(
            prompt_tokens=load.prompt_tokens,
            output_tokens=load.output_tokens,
            rate=load.rate,
            slo_p99_ms=load.slo_p99,
            slo_ttft_ms=load.slo_ttft,
            slo_tpot_ms=load.slo_tpot,
            concurrency=load.concurrency[0],
            loadgen=load.loadgen,
            engine=self.engine_params(),
        )

    def with_overrides(self, **overrides: Any) -> Suite:
        """A copy with every non-None override applied (the command line over the file)."""
        changes = {k: v for k, v in overrides.items() if v is not None}
        return _build(self, changes, "command line")

    def engine_cells(self) -> list[EngineCell]:
        """The engine cells: per engine configuration (configuration-major, so each engine serves
        its whole concurrency sweep and is stopped before the next starts), one per concurrency."""
        params = self.scenario_params()
        return [
            EngineCell(
                model=engine.spec.model,
                request_set=engine.describe(),
                server=f"{engine.spec.engine}-{engine.spec.silicon}" if engine.spec.engine is not None else "endpoint",
                dtype=engine.spec.dtype,
                scenario=self.load.scenario,
                params=replace(params, concurrency=users, engine=engine),
            )
            for engine in self.engine_configs()
            for users in self.load.concurrency
        ]

    def cells(self, default_presets: dict[str, str]) -> list[CellConfig]:
        """The matrix as the run file records it, in a stable order: workload-major so one
        model's cells run together.

        ``concurrency`` is a dimension of its own: a sweep over 1, 2, 4, … is one cell per value.
        Engine cells are planned as ``EngineCell`` and recorded through ``EngineCell.to_config``.
        """
        if self.engine.used:
            return [cell.to_config() for cell in self.engine_cells()]
        params = self.scenario_params()
        m = self.matrix
        return [
            CellConfig(
                workload=w,
                preset=m.preset or default_presets[w],
                backend=b,
                dtype=d,
                mode=mode,
                threads=m.threads,
                batch_size=bs,
                scenario=self.load.scenario,
                device=m.device,
                params=replace(params, concurrency=c),
            )
            for w, b, d, mode, bs, c in itertools.product(
                m.workloads, m.backends, m.dtypes, m.modes, m.batch_sizes, self.load.concurrency
            )
        ]

    def flat(self) -> dict[str, Any]:
        """Every suite key and its value, as a flat suite file would give them."""
        values: dict[str, Any] = {"output": self.output}
        for name in SECTIONS:
            values.update(getattr(self, name).model_dump())
        return values

    def to_dict(self) -> dict[str, Any]:
        """The run file's ``suite``: flat keys, schema v2's order, tuples as lists are in JSON."""
        values = self.flat()
        order = [*RUN_FILE_ORDER, *(k for k in values if k not in RUN_FILE_ORDER)]
        return {key: values[key] for key in order}


DEFAULT_SUITE = Suite()
DEFAULT_DTYPES = DEFAULT_SUITE.matrix.dtypes


def _allowed_keys() -> tuple[str, ...]:
    """Every suite key: those of the sections (``harness.run.config.FIELDS``) and ``output``."""
    return (*FIELDS, "output")


def _normalized(key: str, value: Any) -> Any:
    """A list for a repeatable key, as TOML and argparse give it, becomes the tuple the field holds."""
    if FIELDS[key].repeatable:
        return tuple(value) if isinstance(value, list | tuple) else (value,)
    return value


def _type_error(error: ValidationError, section: str, source: str) -> ConfigError:
    """The first of pydantic's complaints as one line naming the key, the type it takes and the value."""
    first = error.errors()[0]
    key = str(first["loc"][0]) if first["loc"] else section
    if key not in FIELDS:
        return ConfigError(f"{source}: {error.errors()[0]['msg']}")
    return ConfigError(f"{source}: {key!r} must be {describe_type(FIELDS[key])}, got {first['input']!r}")


def _sections(base: Suite, values: dict[str, Any], source: str) -> dict[str, Section]:
    """The sections ``values`` (flat keys) change, each validated over its part of ``base``."""
    allowed = _allowed_keys()
    unknown = sorted(set(values) - set(allowed))
    if unknown:
        raise ConfigError(f"unknown key {unknown[0]!r} in {source}; allowed keys: {', '.join(allowed)}")
    changed: dict[str, dict[str, Any]] = {}
    for key, value in values.items():
        if key != "output":
            changed.setdefault(FIELDS[key].section, {})[key] = _normalized(key, value)
    built: dict[str, Section] = {}
    for name, changes in changed.items():
        current: Section = getattr(base, name)
        try:
            # Only the keys set so far, then the changes: the section's ``model_fields_set`` keeps
            # saying which keys were asked for (``dtypes_explicit``), the rest stay defaults.
            given = {key: getattr(current, key) for key in current.model_fields_set}
            built[name] = SECTIONS[name].model_validate({**given, **changes})
        except ValidationError as exc:
            raise _type_error(exc, name, source) from None
    return built


def _build(base: Suite, values: dict[str, Any], source: str) -> Suite:
    try:
        built = _sections(base, values, source)
        output = values.get("output", base.output)
        if isinstance(output, bool) or not isinstance(output, str):
            raise ConfigError(f"{source}: 'output' must be str, got {output!r}")
        sections = {name: built.get(name, getattr(base, name)) for name in SECTIONS}
        return Suite(output=output, **sections)
    except ConfigError as exc:
        if source == "command line" or str(exc).startswith(source):
            raise
        exc.args = (f"{source}: {exc}",)  # name the file, keep the error's type
        raise exc from None


def load_suite_file(path: str | Path, base: Suite = DEFAULT_SUITE) -> Suite:
    """Read a TOML suite file over ``base``; keys may sit at the top level, under [suite], or in
    their section's table ([matrix], [stopping], [execution], [load], [engine])."""
    path = Path(path)
    try:
        with path.open("rb") as handle:
            data = tomllib.load(handle)
    except FileNotFoundError:
        raise ConfigError(f"suite file {str(path)!r} does not exist") from None
    except OSError as exc:
        raise ConfigError(f"cannot read suite file {str(path)!r}: {exc.strerror}") from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"suite file {str(path)!r} is not valid TOML: {exc}") from None
    except UnicodeDecodeError as exc:
        raise ConfigError(
            f"suite file {str(path)!r} is not UTF-8 text (byte {exc.start}: {exc.reason}); is it a TOML suite file?"
        ) from None
    if "suite" in data and isinstance(data["suite"], dict):
        nested = data.pop("suite")
        data = {**nested, **data}
    source = f"suite file {str(path)!r}"
    return _build(base, _flattened(data, source), source)


def _flattened(data: dict[str, Any], source: str) -> dict[str, Any]:
    """Section tables (``[stopping]``, ``[engine]``, ...) as the flat keys they hold.

    ``[pricing]`` stays what it always was, the ``pricing`` key's own table; ``engine = "vllm"``
    is the engine key, ``[engine]`` the engine section.
    """
    flat: dict[str, Any] = {}
    for key, value in data.items():
        if key in SECTIONS and key != "pricing" and isinstance(value, dict):
            for inner, item in value.items():
                ref = FIELDS.get(inner)
                if ref is not None and ref.section != key:
                    raise ConfigError(f"{source}: key {inner!r} belongs in [{ref.section}], not [{key}]")
                if ref is None:
                    allowed = ", ".join(k for k, r in FIELDS.items() if r.section == key)
                    raise ConfigError(f"unknown key {inner!r} in [{key}] of {source}; allowed keys: {allowed}")
                flat[inner] = item
        else:
            flat[key] = value
    return flat
