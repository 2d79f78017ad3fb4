"""What a cell on a serving engine asks for: the server, the model and the request set.

``EngineParams`` is part of a cell's configuration (it lands in the run file), checked once when
it is built. ``request_set`` turns it into the requests the cell sends: synthetic prompts of exact
token counts built with the model's tokenizer, or the user's prompt file.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from harness.errors import ConfigError
from workloads.request_sets import RequestSet, TokenCounts

__all__ = ["DEFAULT_REQUESTS", "EngineParams", "normalize_endpoint", "request_set"]

#: Distinct requests in a synthetic set; loads cycle through them with fresh ids.
DEFAULT_REQUESTS = 64


def normalize_endpoint(url: str) -> str:
    """``http://host:port`` or ``…/v1`` (with or without a trailing slash) as the API base ``…/v1``."""
    text = url.strip().rstrip("/")
    if not text.startswith(("http://", "https://")):
        raise ConfigError(f"endpoint {url!r} must be an http:// or https:// URL, e.g. http://127.0.0.1:8000/v1")
    return text if text.endswith("/v1") else text + "/v1"


@dataclass(frozen=True)
class EngineParams:
    """A serving-engine cell: where the server is, which model, which requests.

    ``endpoint`` is the API base of a server someone else runs (``--endpoint``); ``engine`` names
    an engine siliconbench starts itself (``--engine vllm``), whose launcher fills the endpoint in
    when the engine is ready. ``model`` is the model folder or hub id: its tokenizer builds the
    prompts and its weights are the correctness reference. ``served_model`` is the name the server
    knows it by (default: ``model``). ``prompt_tokens``/``output_tokens`` are ``TokenCounts``
    specs (``128``, ``uniform:64:256``, ``normal:128:32``); ``prompts`` a JSONL of the user's
    prompts instead of synthetic ones (its output lengths: ``output_tokens``, or with
    ``output_tokens`` ``"reference"`` each conversation's reply).
    """

    model: str
    endpoint: str | None = None
    engine: str | None = None
    served_model: str | None = None
    prompts: str | None = None
    prompt_tokens: str = "128"
    output_tokens: str = "128"
    api: Literal["completions", "chat"] = "completions"
    requests: int = DEFAULT_REQUESTS
    seed: int = 0

    def __post_init__(self) -> None:
        if not self.model:
            raise ConfigError("an engine cell needs --model (a model folder or hub id)")
        if (self.endpoint is None) == (self.engine is None):
            raise ConfigError("give exactly one of --endpoint URL (attach to a server) and --engine NAME (start one)")
        if self.endpoint is not None:
            object.__setattr__(self, "endpoint", normalize_endpoint(self.endpoint))
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

    @property
    def model_name(self) -> str:
        """The model name requests carry."""
        return self.served_model or self.model

    def describe(self) -> str:
        """A short label of the request set, for cell ids and tables."""
        source = "file" if self.prompts is not None else f"in{self.prompt_tokens}"
        return f"{source}-out{self.output_tokens}"


def request_set(params: EngineParams, *, return_token_ids: bool = False) -> RequestSet:
    """The requests of a cell: synthetic from the model's tokenizer, or the user's file."""
    from workloads.request_sets import load_prompt_file, load_tokenizer, synthetic_requests

    tokenizer = load_tokenizer(params.model)
    if params.prompts is not None:
        output = None if params.output_tokens == "reference" else TokenCounts.parse(params.output_tokens)
        return load_prompt_file(
            params.prompts,
            tokenizer,
            output_tokens=output,
            api=params.api,
            limit=params.requests,
            seed=params.seed,
            return_token_ids=return_token_ids,
        )
    return synthetic_requests(
        tokenizer,
        params.requests,
        TokenCounts.parse(params.prompt_tokens),
        TokenCounts.parse(params.output_tokens),
        seed=params.seed,
        return_token_ids=return_token_ids,
    )
