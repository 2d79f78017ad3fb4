"""The benchmark matrix: a suite (what the user asked for) expanded into cells.

A suite comes from defaults, then a TOML suite file, then command-line options, each overriding
the last; it is validated once here, before anything is measured, so a typo costs no run time.
"""

from __future__ import annotations

import itertools
import math
import tomllib
from dataclasses import asdict, dataclass, field, fields, replace
from pathlib import Path
from typing import Any, Literal

from harness.errors import ConfigError
from harness.run.engine_params import EngineParams
from harness.run.limits import PREPARE_LIMIT_S, SAMPLING_GRACE_S
from harness.runfile.records import CellConfig, ScenarioParams

__all__ = [
    "DEFAULT_SUITE",
    "MAX_CONCURRENCY",
    "MAX_THREADS",
    "Suite",
    "load_suite_file",
]

#: Upper bounds on any machine; a local run is also held to the cores it may use (harness.run.matrix).
MAX_THREADS = 1024
MAX_CONCURRENCY = 1024


#: The scenarios an engine cell can run.
ENGINE_SCENARIOS = ("generate", "server")


@dataclass(frozen=True)
class Suite:
    """What to run: lists multiply into cells; scalars apply to every cell."""

    workloads: tuple[str, ...] = ("mlp", "resnet50", "bert-base")
    preset: str | None = None
    backends: tuple[str, ...] = ("cpu",)
    batch_sizes: tuple[int, ...] = (1,)
    dtypes: tuple[str, ...] = ("fp32", "bf16")
    modes: tuple[str, ...] = ("eager",)
    threads: int | None = None
    device: str | None = None
    scenario: str = "latency"
    max_time: float = 4.0
    #: 36: the fewest samples for a two-sided 95% interval of the p90 (``stats.min_samples``), so the
    #: default suite backs its median and p90 even on cells the time budget stops early.
    min_samples: int = 36
    target_rel_ci: float = 0.01
    #: A tail percentile the stopping rule also waits for (None: the median alone; see tail_percentile).
    tail: float | None = None
    isolate: bool | None = None
    output: str = "results"
    pricing: dict[str, Any] = field(default_factory=dict)
    prompt_tokens: int = 128
    output_tokens: int = 128
    rate: float | None = None
    slo_p99: float | None = None
    slo_ttft: float | None = None
    slo_tpot: float | None = None
    concurrency: tuple[int, ...] = (1,)
    loadgen: bool = False
    prepare_limit: float = PREPARE_LIMIT_S
    sampling_grace: float = SAMPLING_GRACE_S
    processes: int = 1
    # Serving engines (``EngineParams``): start one (engine) or attach (endpoint), and the request set.
    engine: str | None = None
    endpoint: str | None = None
    model: str | None = None
    engine_silicon: str = "cpu"
    engine_python: str | None = None
    max_model_len: int = 512
    prompts: str | None = None
    prompt_dist: str | None = None
    output_dist: str | None = None
    api: str = "completions"
    requests: int = 64

    def __post_init__(self) -> None:
        for name in ("workloads", "backends", "batch_sizes", "dtypes", "modes"):
            if not getattr(self, name):
                raise ConfigError(f"suite key {name!r} is empty; give at least one value")
        for size in self.batch_sizes:
            if isinstance(size, bool) or not isinstance(size, int) or size < 1:
                raise ConfigError(f"batch size must be a whole number of 1 or more, got {size!r}")
        if self.threads is not None and (isinstance(self.threads, bool) or not 1 <= self.threads <= MAX_THREADS):
            raise ConfigError(f"threads must be from 1 to {MAX_THREADS}, got {self.threads!r}")
        for name, flag in (
            ("max_time", "max time"),
            ("prepare_limit", "prepare limit"),
            ("sampling_grace", "sampling grace"),
        ):
            value = getattr(self, name)
            if not _finite_positive(value):
                raise ConfigError(f"{flag} must be a finite positive number of seconds, got {value!r}")
        if not _finite_positive(self.target_rel_ci) or not self.target_rel_ci < 1:
            raise ConfigError(f"target CI must be a fraction between 0 and 1, got {self.target_rel_ci!r}")
        if self.min_samples < 3:
            raise ConfigError(f"min samples must be 3 or more, got {self.min_samples!r}")
        if self.tail is not None and not 50 < self.tail < 100:
            raise ConfigError(f"tail must be a percentile between 50 and 100 (e.g. 99), got {self.tail!r}")
        if self.pricing:
            from harness.pricing.given import validate_pricing_table

            validate_pricing_table(self.pricing)
        self._check_scenario_params()

    def _check_scenario_params(self) -> None:
        """Checks common to every scenario here; each scenario's own in its ``SPEC.check``."""
        from harness.scenarios.registry import spec

        for name in ("prompt_tokens", "output_tokens"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ConfigError(f"{name.replace('_', '-')} must be a whole number of 1 or more, got {value!r}")
        if not self.concurrency:
            raise ConfigError("suite key 'concurrency' is empty; give at least one value")
        for users in self.concurrency:
            if isinstance(users, bool) or not isinstance(users, int) or users < 1:
                raise ConfigError(f"concurrency must be a whole number of 1 or more, got {users!r}")
            if users > MAX_CONCURRENCY:
                raise ConfigError(f"concurrency must be at most {MAX_CONCURRENCY}, got {users!r}")
        for name in ("max_model_len", "requests"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ConfigError(f"{name.replace('_', '-')} must be a whole number of 1 or more, got {value!r}")
        self._check_engine()
        for name in ("rate", "slo_p99", "slo_ttft", "slo_tpot"):
            value = getattr(self, name)
            if value is not None and not _finite_positive(value):
                raise ConfigError(f"{name.replace('_', '-')} must be a finite positive number, got {value!r}")
        if isinstance(self.processes, bool) or not isinstance(self.processes, int) or self.processes < 1:
            raise ConfigError(f"processes must be a whole number of 1 or more, got {self.processes!r}")
        if self.processes > 1:
            if self.scenario not in ("latency", "throughput") or self.loadgen:
                raise ConfigError(
                    f"--processes pools per-call samples across processes: scenarios latency and throughput "
                    f"(without --loadgen), not {self.scenario!r}{' with --loadgen' if self.loadgen else ''}"
                )
            if self.isolate is False:
                raise ConfigError("--processes measures each cell in fresh processes; drop --no-isolate")
        scenario = spec(self.scenario)
        if self.loadgen and scenario.loadgen is None:
            from harness.scenarios.registry import scenario_specs

            runs = {s.name: s.loadgen for s in scenario_specs().values() if s.loadgen}
            raise ConfigError(
                f"LoadGen runs the scenarios {', '.join(runs)} (as {', '.join(runs.values())}), "
                f"not {self.scenario!r}; drop --loadgen or change --scenario"
            )
        scenario.check(self.scenario_params())

    def _check_engine(self) -> None:
        """Engine options only with an engine; an engine cell is a generate or server cell."""
        if self.engine is None and self.endpoint is None:
            given = [k for k in ("prompts", "prompt_dist", "output_dist", "model") if getattr(self, k) is not None]
            if given:
                raise ConfigError(
                    f"--{given[0].replace('_', '-')} applies to serving engines: give --engine NAME (start one) "
                    "or --endpoint URL (attach to one)"
                )
            return
        if self.scenario not in ENGINE_SCENARIOS:
            raise ConfigError(f"engine cells run the generate and server scenarios, not --scenario {self.scenario}")
        if self.loadgen:
            raise ConfigError("--loadgen drives in-process backends; engine cells run without it")
        if self.processes > 1:
            raise ConfigError(
                "engine cells are measured in this process against one engine for the run; "
                "--processes repeats in-process backends"
            )
        if self.scenario == "server" and self.concurrency != (1,):
            raise ConfigError(
                "an engine's server cells are an open loop (every arrival is sent, whatever is in flight); "
                "--concurrency sweeps the users of --scenario generate"
            )
        self.engine_params()  # the engine and the request set, checked once, here

    def engine_params(self) -> EngineParams | None:
        """The engine part of every cell, or None for in-process cells.

        A started engine runs the suite's dtype when one was asked for (``--dtype``, one only),
        else its silicon's default.
        """
        if self.engine is None and self.endpoint is None:
            return None
        from backends.engine.serving import EngineSpec

        if not self.model:
            raise ConfigError("engine cells need --model: the model folder or hub id the engine serves")
        if self.api not in ("chat", "completions"):
            raise ConfigError(f"--api must be completions or chat, got {self.api!r}")
        dtype = None
        if self.dtypes != DEFAULT_DTYPES:
            if len(self.dtypes) != 1:
                raise ConfigError(f"an engine runs one dtype per run; got {', '.join(self.dtypes)}")
            dtype = self.dtypes[0]
        spec = EngineSpec(
            model=self.model,
            engine=self.engine,
            endpoint=self.endpoint,
            silicon=self.engine_silicon,
            python=self.engine_python,
            dtype=dtype,
            max_model_len=self.max_model_len,
        )
        api: Literal["completions", "chat"] = "chat" if self.api == "chat" else "completions"
        return EngineParams(
            spec=spec,
            prompts=self.prompts,
            prompt_tokens=self.prompt_dist or str(self.prompt_tokens),
            output_tokens=self.output_dist or str(self.output_tokens),
            api=api,
            requests=self.requests,
        )

    def dtypes_explicit(self) -> bool:
        """Whether the dtypes were asked for (a flag or a suite file), not the defaults: explicit
        dtypes run even where the silicon emulates them (``harness.run.dtypes``)."""
        return self.dtypes != DEFAULT_DTYPES

    def tail_percentile(self) -> float | None:
        """The percentile sampling must back: ``tail``, else 99 when a p99 SLO is set, else None."""
        if self.tail is not None:
            return self.tail
        if any(v is not None for v in (self.slo_p99, self.slo_ttft, self.slo_tpot)):
            return 99.0
        return None

    def scenario_params(self) -> ScenarioParams:
        return ScenarioParams(
            prompt_tokens=self.prompt_tokens,
            output_tokens=self.output_tokens,
            rate=self.rate,
            slo_p99_ms=self.slo_p99,
            slo_ttft_ms=self.slo_ttft,
            slo_tpot_ms=self.slo_tpot,
            concurrency=self.concurrency[0],
            loadgen=self.loadgen,
            engine=self.engine_params(),
        )

    def with_overrides(self, **overrides: Any) -> Suite:
        """A copy with every non-None override applied (the command line over the file)."""
        changes = {k: v for k, v in overrides.items() if v is not None}
        return _build(self, changes, "command line")

    def cells(self, default_presets: dict[str, str]) -> list[CellConfig]:
        """The matrix, in a stable order: workload-major so one model's cells run together.

        ``concurrency`` is a dimension of its own: a sweep over 1, 2, 4, … is one cell per value.
        Engine cells are one per concurrency: the engine is the backend, the model it serves the
        workload and the request set the preset.
        """
        params = self.scenario_params()
        engine = params.engine
        if engine is not None:
            spec = engine.spec
            return [
                CellConfig(
                    workload=spec.model,
                    preset=engine.describe(),
                    backend=f"{spec.engine}-{spec.silicon}" if spec.engine is not None else "endpoint",
                    dtype=spec.dtype or "engine-default",
                    mode="engine",
                    threads=None,
                    batch_size=1,
                    scenario=self.scenario,
                    params=replace(params, concurrency=users),
                )
                for users in self.concurrency
            ]
        return [
            CellConfig(
                workload=w,
                preset=self.preset or default_presets[w],
                backend=b,
                dtype=d,
                mode=m,
                threads=self.threads,
                batch_size=bs,
                scenario=self.scenario,
                device=self.device,
                params=replace(params, concurrency=c),
            )
            for w, b, d, m, bs, c in itertools.product(
                self.workloads, self.backends, self.dtypes, self.modes, self.batch_sizes, self.concurrency
            )
        ]

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def _finite_positive(value: object) -> bool:
    return not isinstance(value, bool) and isinstance(value, int | float) and math.isfinite(value) and value > 0


DEFAULT_SUITE = Suite()
DEFAULT_DTYPES = DEFAULT_SUITE.dtypes

_TUPLE_KEYS = {"workloads", "backends", "batch_sizes", "dtypes", "modes", "concurrency"}
_ALLOWED_KEYS = tuple(f.name for f in fields(Suite))
_TYPES: dict[str, tuple[type, ...]] = {
    "workloads": (str,),
    "backends": (str,),
    "batch_sizes": (int,),
    "dtypes": (str,),
    "modes": (str,),
    "preset": (str,),
    "threads": (int,),
    "device": (str,),
    "scenario": (str,),
    "max_time": (int, float),
    "min_samples": (int,),
    "target_rel_ci": (float,),
    "tail": (int, float),
    "isolate": (bool,),
    "output": (str,),
    "pricing": (dict,),
    "prompt_tokens": (int,),
    "output_tokens": (int,),
    "rate": (int, float),
    "slo_p99": (int, float),
    "slo_ttft": (int, float),
    "slo_tpot": (int, float),
    "concurrency": (int,),
    "loadgen": (bool,),
    "prepare_limit": (int, float),
    "sampling_grace": (int, float),
    "processes": (int,),
    "engine": (str,),
    "endpoint": (str,),
    "model": (str,),
    "engine_silicon": (str,),
    "engine_python": (str,),
    "max_model_len": (int,),
    "prompts": (str,),
    "prompt_dist": (str,),
    "output_dist": (str,),
    "api": (str,),
    "requests": (int,),
}
_FLOAT_KEYS = {"max_time", "tail", "rate", "slo_p99", "slo_ttft", "slo_tpot", "prepare_limit", "sampling_grace"}


def _build(base: Suite, values: dict[str, Any], source: str) -> Suite:
    unknown = sorted(set(values) - set(_ALLOWED_KEYS))
    if unknown:
        raise ConfigError(f"unknown key {unknown[0]!r} in {source}; allowed keys: {', '.join(_ALLOWED_KEYS)}")
    clean: dict[str, Any] = {}
    for key, value in values.items():
        expected = _TYPES[key]
        if key in _TUPLE_KEYS:
            items = value if isinstance(value, list | tuple) else [value]
            bad = [v for v in items if isinstance(v, bool) or not isinstance(v, expected)]
            if bad:
                raise ConfigError(f"{source}: {key!r} must be a list of {expected[0].__name__}, got {bad[0]!r}")
            clean[key] = tuple(items)
        else:
            if (isinstance(value, bool) and bool not in expected) or not isinstance(value, expected):
                raise ConfigError(
                    f"{source}: {key!r} must be {' or '.join(t.__name__ for t in expected)}, got {value!r}"
                )
            clean[key] = float(value) if key in _FLOAT_KEYS else value  # type: ignore[arg-type]
    try:
        return replace(base, **clean)
    except ConfigError as exc:
        if source == "command line" or str(exc).startswith(source):
            raise
        exc.args = (f"{source}: {exc}",)  # name the file, keep the error's type
        raise exc from None


def load_suite_file(path: str | Path, base: Suite = DEFAULT_SUITE) -> Suite:
    """Read a TOML suite file over ``base``; keys may sit at the top level or under [suite]."""
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
    return _build(base, data, f"suite file {str(path)!r}")
