"""What a cell on a serving engine asks for: the engine (started or attached) and the request set.

``EngineParams`` is part of a cell's configuration (it lands in the run file), checked once when it
is built: ``spec`` says which engine to start or which server to attach to and the model it serves
(``backends.engine.serving.EngineSpec``); the rest says which requests to send. The engine
scenario (``harness.scenarios.engine_cell.request_set``) turns it into those requests: synthetic
prompts of exact token counts built with the model's tokenizer, or the user's prompt file.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from backends.engine.serving import EngineSpec
from harness.errors import ConfigError
from workloads.request_sets import TokenCounts

__all__ = ["DEFAULT_REQUESTS", "EngineParams"]

#: Distinct requests in a synthetic set; loads cycle through them with fresh ids.
DEFAULT_REQUESTS = 64


@dataclass(frozen=True)
class EngineParams:
    """A serving-engine cell: the engine and the request set.

    ``prompt_tokens``/``output_tokens`` are ``TokenCounts`` specs (``128``, ``uniform:64:256``,
    ``normal:128:32``); ``prompts`` a JSONL of the user's prompts instead of synthetic ones, whose
    output lengths are ``output_tokens`` or, with ``reference``, each conversation's reply.
    Synthetic prompts go to the completions API (their exact count is the point); a prompt file
    may use ``chat``. ``requests`` is how many distinct requests the set holds.
    """

    spec: EngineSpec
    prompts: str | None = None
    prompt_tokens: str = "128"
    output_tokens: str = "128"
    api: Literal["completions", "chat"] = "completions"
    requests: int = DEFAULT_REQUESTS
    seed: int = 0

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

    @property
    def model(self) -> str:
        return self.spec.model

    def describe(self) -> str:
        """A short label of the request set, for cell ids and tables."""
        source = "file" if self.prompts is not None else f"in{self.prompt_tokens}"
        return f"{source}-out{self.output_tokens}"
