"""An engine cell's request source, checked at planning: before an engine starts or a request leaves.

The user's files are read and parsed here without the model's tokenizer (a trace's every line, a
conversation file's every turn), so a missing, binary, empty, malformed or enormous file, or a
``--shared-prefix`` that leaves a prompt no tokens of its own, is one ``ConfigError`` line (exit 2)
and not a failed cell after a minute's engine start. The cell reads the files again to build its
requests; a trace of the public size takes well under a second to parse.
"""

from __future__ import annotations

from harness.errors import ConfigError
from harness.runfile.engine import DEFAULT_TRACE_BLOCK_SIZE, EngineParams, SharedPrefix, TokenCounts

__all__ = ["check_request_source"]


def check_request_source(params: EngineParams) -> None:
    """Raise ``ConfigError`` for a request source that cannot be run as given."""
    if params.trace is not None:
        from workloads.traces import read_trace

        trace = read_trace(
            params.trace, block_size=params.trace_block_size or DEFAULT_TRACE_BLOCK_SIZE, limit=params.trace_limit
        )
        limit = params.spec.max_model_len
        if all(e.input_tokens + e.output_tokens > limit for e in trace.entries):
            raise ConfigError(
                f"{trace.file}: every request of the trace needs more than the engine's max model length {limit}; "
                "raise --max-model-len"
            )
    if params.prompts is not None:
        from workloads.conversations import read_conversation_file

        read_conversation_file(params.prompts, params.requests)
    if params.shared_prefix is not None:
        shared = SharedPrefix.parse(params.shared_prefix)
        prompts = TokenCounts.parse(params.prompt_tokens)
        shortest = prompts.low if prompts.kind != "normal" else 1
        if prompts.kind != "normal" and shared.tokens >= shortest:
            raise ConfigError(
                f"--shared-prefix {params.shared_prefix}: a prefix of {shared.tokens} tokens leaves no token of its "
                f"own to a prompt of {shortest:g}; raise --prompt-tokens above {shared.tokens} or shorten the prefix"
            )
