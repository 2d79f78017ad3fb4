"""The serving-engine parts of a run file: what a cell asked of an engine, and what the engine was.

These are records, so they live here and their producers import them: ``backends.engine`` fills
``EngineRecord`` (launcher) and ``EngineMetrics`` (metrics sampler), ``harness.run`` builds
``EngineParams`` from the command line or a suite file, ``workloads.request_sets`` the
``EngineRequest``s the client (``backends.engine.client``) sends. A change to a producer cannot change the
run file's shape by accident (``tests/harness/runfile/test_frozen_v2.py`` pins it). The checks in
``__post_init__`` are the records' own: a run file that breaks them is refused when read.
"""

from __future__ import annotations

import math
import random
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Annotated, Literal

from harness.errors import ConfigError
from harness.runfile.omit import OMIT_UNSET as _OMIT_UNSET

__all__ = [
    "DEFAULT_READY_TIMEOUT_S",
    "DEFAULT_REQUESTS",
    "DEFAULT_TRACE_BLOCK_SIZE",
    "ENGINES",
    "SILICON",
    "Api",
    "ChatMessage",
    "ColdStart",
    "EngineMetrics",
    "EngineParams",
    "EngineRecord",
    "EngineRequest",
    "EngineSpec",
    "MetricsSample",
    "SharedPrefix",
    "TokenCounts",
]

#: Engines ``backends.engine.launcher`` can start.
ENGINES = ("vllm",)
#: Where an engine can run; each is a different command line and environment, the same launcher.
SILICON = ("cpu", "cuda", "neuron")
#: How long an engine may take to serve where nobody said (a spec built outside a run's plan:
#: benchmarks, tests). A run's plan sets ``ready_timeout_s`` from ``--prepare-limit``, else from
#: its silicon's default (``harness.run.limits.ENGINE_READY_DEFAULTS``).
DEFAULT_READY_TIMEOUT_S = 600.0
#: Distinct requests in a synthetic set; loads cycle through them with fresh ids.
DEFAULT_REQUESTS = 64
#: The Mooncake trace format's block: each ``hash_ids`` entry stands for this many tokens.
DEFAULT_TRACE_BLOCK_SIZE = 512


@dataclass(frozen=True)
class TokenCounts:
    """A token count: ``fixed`` (``low``), ``uniform`` on [low, high], or ``normal`` (mean ``low``,
    standard deviation ``high``, rounded and clipped to at least 1).

    Written on the command line as ``128``, ``uniform:64:256`` or ``normal:128:32``.
    """

    kind: Literal["fixed", "uniform", "normal"]
    low: float
    high: float = 0.0

    @classmethod
    def parse(cls, text: str) -> TokenCounts:
        """``N``, ``uniform:LOW:HIGH`` or ``normal:MEAN:STD``; a ``ConfigError`` names the forms."""
        forms = "give N, uniform:LOW:HIGH or normal:MEAN:STD"
        parts = text.strip().split(":")
        try:
            if len(parts) == 1:
                counts = cls("fixed", int(parts[0]))
            elif len(parts) == 3 and parts[0] in ("uniform", "normal"):
                kind: Literal["uniform", "normal"] = "uniform" if parts[0] == "uniform" else "normal"
                counts = cls(kind, float(parts[1]), float(parts[2]))
            else:
                raise ConfigError(f"token count {text!r}: {forms}")
        except ValueError:
            raise ConfigError(f"token count {text!r}: {forms}") from None
        counts.check(text)
        return counts

    def check(self, text: str = "") -> None:
        where = f"token count {text or self.describe()!r}"
        if not (math.isfinite(self.low) and math.isfinite(self.high)):
            raise ConfigError(f"{where}: needs finite numbers")
        if self.kind == "uniform" and 1 <= self.low <= self.high and math.ceil(self.low) > math.floor(self.high):
            raise ConfigError(f"{where}: no whole number lies between LOW and HIGH")
        if self.kind == "fixed" and (self.low < 1 or self.low != int(self.low)):
            raise ConfigError(f"{where}: must be a whole number >= 1")
        if self.kind == "uniform" and not 1 <= self.low <= self.high:
            raise ConfigError(f"{where}: needs 1 <= LOW <= HIGH")
        if self.kind == "normal" and not (self.low >= 1 and self.high >= 0):
            raise ConfigError(f"{where}: needs MEAN >= 1 and STD >= 0")

    def draw(self, rng: random.Random, count: int) -> list[int]:
        """``count`` values, each at least 1."""
        if self.kind == "fixed":
            return [int(self.low)] * count
        if self.kind == "uniform":
            return [rng.randint(math.ceil(self.low), math.floor(self.high)) for _ in range(count)]
        return [max(1, round(rng.gauss(self.low, self.high))) for _ in range(count)]

    def describe(self) -> str:
        if self.kind == "fixed":
            return str(int(self.low))
        return f"{self.kind}:{self.low:g}:{self.high:g}"


@dataclass(frozen=True)
class EngineSpec:
    """The engine part of a cell: start ``engine`` on ``silicon``, or attach to ``endpoint``.

    ``engine_args`` is the configuration a ``--engine-arg`` sweep gave this engine, as (flag,
    value) pairs in vLLM's names (``("max-num-seqs", "4")``, ``("enable-prefix-caching", "false")``);
    a swept dtype is ``dtype``, as a single ``--dtype`` is.
    """

    model: str
    engine: str | None = None
    endpoint: str | None = None
    silicon: str = "cpu"
    python: str | None = None
    dtype: str | None = None
    max_model_len: int = 512
    max_num_seqs: int | None = None
    tensor_parallel_size: int | None = None
    ready_timeout_s: float = DEFAULT_READY_TIMEOUT_S
    extra_args: tuple[str, ...] = ()
    extra_env: tuple[tuple[str, str], ...] = field(default=())
    engine_args: Annotated[tuple[tuple[str, str], ...], _OMIT_UNSET] = ()

    def __post_init__(self) -> None:
        if (self.engine is None) == (self.endpoint is None):
            raise ConfigError("give exactly one of --engine NAME (start it) and --endpoint URL (attach to it)")
        if self.engine is not None and self.engine not in ENGINES:
            raise ConfigError(f"unknown engine {self.engine!r}; available: {', '.join(ENGINES)}")
        if self.silicon not in SILICON:
            raise ConfigError(f"unknown engine silicon {self.silicon!r}; available: {', '.join(SILICON)}")

    def config_label(self) -> str:
        """The configuration as a report names it: ``max-num-seqs=4 dtype=bfloat16``, or ``default``."""
        parts = [f"{key}={value}" for key, value in self.engine_args]
        if self.dtype is not None:
            parts.append(f"dtype={self.dtype}")
        return " ".join(parts) or "default"


@dataclass(frozen=True)
class EngineParams:
    """A serving-engine cell: the engine and the request set.

    ``prompt_tokens``/``output_tokens`` are ``TokenCounts`` specs (``128``, ``uniform:64:256``,
    ``normal:128:32``); ``prompts`` a JSONL of the user's prompts instead of synthetic ones, whose
    output lengths are ``output_tokens`` or, with ``reference``, each conversation's reply.
    Synthetic prompts go to the completions API (their exact count is the point); a prompt file
    may use ``chat``. ``requests`` is how many distinct requests the set holds.

    Load as served (each left out of the run file while unset): ``trace`` a recorded trace
    (Mooncake JSONL or the Azure CSV) replayed open loop at ``trace_speed`` times its pace, its first
    ``trace_limit`` requests, ``trace_block_size`` tokens per Mooncake hash id; ``multi_turn`` runs
    each conversation of ``prompts`` turn by turn with ``think_time_s`` between a reply and the next
    turn; ``shared_prefix`` (``GROUPS:TOKENS``) gives the synthetic prompts one prefix per group.
    """

    spec: EngineSpec
    prompts: str | None = None
    prompt_tokens: str = "128"
    output_tokens: str = "128"
    api: Literal["completions", "chat"] = "completions"
    requests: int = DEFAULT_REQUESTS
    seed: int = 0
    trace: Annotated[str | None, _OMIT_UNSET] = None
    trace_block_size: Annotated[int | None, _OMIT_UNSET] = None
    trace_speed: Annotated[float | None, _OMIT_UNSET] = None
    trace_limit: Annotated[int | None, _OMIT_UNSET] = None
    multi_turn: Annotated[bool | None, _OMIT_UNSET] = None
    think_time_s: Annotated[float | None, _OMIT_UNSET] = None
    shared_prefix: Annotated[str | None, _OMIT_UNSET] = None

    def __post_init__(self) -> None:
        if not self.spec.model:
            raise ConfigError("an engine cell needs --model (the model folder or hub id the engine serves)")
        if self.requests < 1:
            raise ConfigError(f"an engine cell's request set needs at least one request, got {self.requests}")
        if self.api not in ("completions", "chat"):
            raise ConfigError(f"engine api must be completions or chat, got {self.api!r}")
        if self.prompts is None and self.api == "chat":
            raise ConfigError("synthetic prompts are sent as completions (exact token counts); chat needs --prompts")
        TokenCounts.parse(self.prompt_tokens)
        if self.output_tokens != "reference":
            TokenCounts.parse(self.output_tokens)
        elif self.prompts is None:
            raise ConfigError("output tokens 'reference' takes each reply's length from --prompts; give a file")
        sources = [n for n, v in (("--prompts", self.prompts), ("--trace", self.trace)) if v is not None]
        if self.shared_prefix is not None:
            sources.append("--shared-prefix")
        if len(sources) > 1:
            raise ConfigError(f"give one request set: {' and '.join(sources)} cannot be combined")
        if self.multi_turn and self.prompts is None:
            raise ConfigError("--multi-turn runs the conversations of --prompts FILE turn by turn; give a file")
        if self.think_time_s is not None and not self.multi_turn:
            raise ConfigError("--think-time is the pause between turns of a conversation; give --multi-turn")
        if self.multi_turn and self.api != "chat":
            raise ConfigError("--multi-turn sends each turn's history as chat messages; give --api chat")
        trace_options = (self.trace_block_size, self.trace_speed, self.trace_limit)
        if self.trace is None and any(v is not None for v in trace_options):
            raise ConfigError("--trace-block-size, --trace-speed and --trace-limit shape --trace FILE; give one")
        if self.shared_prefix is not None:
            SharedPrefix.parse(self.shared_prefix)

    @property
    def model(self) -> str:
        return self.spec.model

    def describe(self) -> str:
        """A short label of the request set, for cell ids and tables."""
        if self.trace is not None:
            speed = "" if self.trace_speed in (None, 1.0) else f"x{self.trace_speed:g}"
            return f"trace{speed}"
        source = "file" if self.prompts is not None else f"in{self.prompt_tokens}"
        if self.multi_turn:
            source = "conversations"
        if self.shared_prefix is not None:
            source = f"prefix{self.shared_prefix.replace(':', 'x')}-{source}"
        return f"{source}-out{self.output_tokens}"


@dataclass(frozen=True)
class SharedPrefix:
    """``--shared-prefix GROUPS:TOKENS``: synthetic prompts in ``groups`` groups, every prompt of a
    group opening with the same ``tokens`` tokens (its own tokens follow, up to its drawn length)."""

    groups: int
    tokens: int

    @classmethod
    def parse(cls, text: str) -> SharedPrefix:
        form = "give GROUPS:TOKENS, two whole numbers >= 1 (e.g. 4:256)"
        parts = text.strip().split(":")
        if len(parts) != 2 or not all(p.strip().isdigit() for p in parts):
            raise ConfigError(f"--shared-prefix {text!r}: {form}")
        groups, tokens = (int(p) for p in parts)
        if groups < 1 or tokens < 1:
            raise ConfigError(f"--shared-prefix {text!r}: {form}")
        return cls(groups, tokens)


#: The OpenAI-compatible API a request goes to.
Api = Literal["completions", "chat"]


@dataclass(frozen=True)
class ChatMessage:
    """One turn of a chat conversation, as the chat completions API takes it."""

    role: str
    content: str


@dataclass(frozen=True)
class EngineRequest:
    """One request to an OpenAI-compatible engine.

    Exactly one of ``prompt`` (text, or token ids for the completions API) and ``messages`` (chat)
    is set; which one decides the API. ``max_tokens`` with ``ignore_eos`` forces the output length
    where the engine allows it (vLLM does). Greedy decoding (``temperature`` 0) is the default so
    the engine's tokens can be compared with the in-process reference. ``input_tokens`` is what the
    workload built the prompt to be, kept beside the server's own count to check one against the
    other. ``return_token_ids`` asks the engine for the ids of the tokens it streams (a vLLM
    extension) for the correctness check. ``designed_cached_tokens`` is the prompt's leading tokens
    an earlier request of the load already sent (what a prefix cache of unbounded size would hold);
    ``conversation`` and ``turn`` (from 0) place a turn of a multi-turn conversation, sent after
    ``history_messages`` earlier messages (the replies among them the engine's own).
    """

    request_id: str
    max_tokens: int
    prompt: str | tuple[int, ...] | None = None
    messages: tuple[ChatMessage, ...] | None = None
    ignore_eos: bool = True
    temperature: float = 0.0
    top_p: float = 1.0
    seed: int | None = None
    input_tokens: int | None = None
    return_token_ids: bool = False
    designed_cached_tokens: int | None = None
    conversation: int | None = None
    turn: int | None = None
    history_messages: int | None = None

    def __post_init__(self) -> None:
        if (self.prompt is None) == (self.messages is None):
            raise ValueError(f"request {self.request_id!r}: set exactly one of prompt and messages")
        if self.max_tokens < 1:
            raise ValueError(f"request {self.request_id!r}: max_tokens must be >= 1, got {self.max_tokens}")

    @property
    def api(self) -> Api:
        """Which endpoint serves this request: ``completions`` for a prompt, ``chat`` for messages."""
        return "chat" if self.messages is not None else "completions"


@dataclass(frozen=True)
class ColdStart:
    """An engine's cold start taken apart: what a fleet that scales out pays before a first token.

    ``download_s`` is fetching the weights (None when the model was already local: a folder, or a
    hub id vLLM fetches itself); ``compile_s`` the ahead-of-time compile a Neuron engine runs
    before it serves (None where there is none, or on a compile-cache hit); ``ready_s`` the
    engine's start to its first ``/health`` 200 (it includes ``compile_s``). ``compile_cache``
    is where compiled artifacts are kept and ``compile_cache_hit`` whether everything the start
    needed was there already (it wrote nothing new; None when the cache was empty and stayed so).
    ``model_source`` is where the weights came from (``s3://...``, ``hub``).
    """

    ready_s: float
    download_s: float | None = None
    compile_s: float | None = None
    compile_cache: str | None = None
    compile_cache_hit: bool | None = None
    model_source: str | None = None
    model_path: str | None = None


@dataclass(frozen=True)
class EngineRecord:
    """The engine a cell measured, as the run file keeps it.

    ``cold_start_s`` is None for an attached server; ``stopped_clean`` says whether the group was
    gone after SIGTERM alone (False: it needed SIGKILL), None while running or when attached.
    """

    engine: str
    mode: str  # "launched" or "attached"
    url: str
    silicon: str | None = None
    version: str | None = None
    model: str | None = None
    argv: tuple[str, ...] = ()
    env: Mapping[str, str] = field(default_factory=dict)
    started_utc: str | None = None
    cold_start_s: float | None = None
    pid: int | None = None
    stopped_clean: bool | None = None
    cold_start: Annotated[ColdStart | None, _OMIT_UNSET] = None


@dataclass(frozen=True)
class MetricsSample:
    """One reading of ``/metrics``: seconds since the sampler started, and the engine's figures."""

    t_s: float
    running: float | None
    waiting: float | None
    kv_cache_usage: float | None
    preemptions_total: float | None
    prefix_cache_queries_total: Annotated[float | None, _OMIT_UNSET] = None
    prefix_cache_hits_total: Annotated[float | None, _OMIT_UNSET] = None


@dataclass(frozen=True)
class EngineMetrics:
    """The samples of one run and their summary, as the run file keeps them."""

    url: str
    interval_s: float
    samples: tuple[MetricsSample, ...]
    failed_samples: int = 0
    started_utc: str | None = None

    def _values(self, name: str) -> list[float]:
        return [v for s in self.samples if (v := getattr(s, name)) is not None]

    @property
    def peak_waiting(self) -> float | None:
        values = self._values("waiting")
        return max(values) if values else None

    @property
    def mean_waiting(self) -> float | None:
        values = self._values("waiting")
        return sum(values) / len(values) if values else None

    @property
    def peak_running(self) -> float | None:
        values = self._values("running")
        return max(values) if values else None

    @property
    def peak_kv_cache_usage(self) -> float | None:
        values = self._values("kv_cache_usage")
        return max(values) if values else None

    def _rise(self, name: str) -> float | None:
        values = self._values(name)
        return values[-1] - values[0] if len(values) >= 2 else None

    @property
    def prefix_cache_hit_rate(self) -> float | None:
        """Cached prompt tokens over queried prompt tokens during the run (vLLM's prefix cache
        counters, each the rise from the first sample to the last); None without the counters or
        without a query."""
        queries, hits = self._rise("prefix_cache_queries_total"), self._rise("prefix_cache_hits_total")
        if queries is None or hits is None or queries <= 0:
            return None
        return hits / queries

    @property
    def preemptions(self) -> float | None:
        """Preemptions during the run: the counter's rise from the first sample to the last."""
        values = self._values("preemptions_total")
        return values[-1] - values[0] if len(values) >= 2 else None

    def summary(self) -> dict[str, float | int | None]:
        """The figures a reader looks at first (the samples stay in the run file)."""
        return {
            "samples": len(self.samples),
            "failed_samples": self.failed_samples,
            "peak_running": self.peak_running,
            "peak_waiting": self.peak_waiting,
            "mean_waiting": self.mean_waiting,
            "peak_kv_cache_usage": self.peak_kv_cache_usage,
            "preemptions": self.preemptions,
            "prefix_cache_hit_rate": self.prefix_cache_hit_rate,
        }
