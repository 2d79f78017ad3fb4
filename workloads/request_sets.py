"""Request sets for serving engines: what each request asks, with its input length known exactly.

An engine workload is a model (a local folder, or a hub id loaded the ordinary way) plus a request
set. Two kinds:

- **synthetic**: prompts of an exact number of input tokens, counted with the model's own tokenizer
  the way the server counts them (``tokenizer(text)``, special tokens included), with lengths fixed
  or drawn from a stated distribution (``TokenCounts``). A prompt is text wherever text can be
  fitted to its length, and its token ids where it cannot (``workloads.exact_prompts``);
- **the user's prompts**: a JSONL (or JSON array) file of ShareGPT-style conversations
  (``{"conversations": [{"from": "human", "value": ...}, ...]}``), OpenAI-style chats
  (``{"messages": [{"role": ..., "content": ...}]}``) or plain ``{"prompt": ...}`` lines. A
  conversation's request is its turns up to and including the first user turn.

Output length is forced: ``max_tokens`` with ``ignore_eos``, fixed or drawn like the inputs (or, for
ShareGPT, the length of the reference reply). The counts the server achieved come back in each
request's outcome (``usage``), and ``harness.scenarios.engine_records.length_report`` compares
them with what was asked.
Everything is seeded, so a request set is the same on every machine and at every rate.
"""

from __future__ import annotations

import random
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from harness.errors import ConfigError
from harness.runfile.engine import (
    DEFAULT_TRACE_BLOCK_SIZE,
    ChatMessage,
    EngineParams,
    EngineRequest,
    SharedPrefix,
    TokenCounts,
)
from workloads.exact_prompts import ExactPrompt, PromptBuilder
from workloads.input_files import parse_json_records as _parse_records
from workloads.input_files import read_text_file

if TYPE_CHECKING:
    from transformers import PreTrainedTokenizerBase

    from workloads.conversations import Conversation
    from workloads.traces import TraceRequests

__all__ = [
    "MAX_PROMPT_FILE_BYTES",
    "ExactPrompt",
    "PromptKind",
    "RequestSet",
    "check_lengths",
    "conversation_request_set",
    "exact_prompt",
    "load_prompt_file",
    "load_tokenizer",
    "request_set",
    "synthetic_lengths",
    "synthetic_requests",
    "trace_request_set",
]

#: How a request's prompt travels: text the server tokenizes, token ids, or chat messages.
PromptKind = Literal["text", "token_ids", "messages"]
#: The largest prompt file read (bytes). It is read whole (a JSON array must be): ShareGPT V3, the
#: largest set serving benchmarks use, is about 670 MB; anything far beyond is not a request set
#: but a mistake (a tarball, a disk image) that would only fill memory before failing.
MAX_PROMPT_FILE_BYTES = 1 << 30
_ROLES = {"human": "user", "user": "user", "gpt": "assistant", "assistant": "assistant", "system": "system"}


@dataclass(frozen=True)
class RequestSet:
    """The requests of an engine workload, and where they came from (for the run file)."""

    requests: tuple[EngineRequest, ...]
    source: str
    input_tokens: str
    output_tokens: str
    seed: int
    ids_reason: str | None = None
    #: A replayed trace: the requests' send times and what was left out (``workloads.traces``).
    trace: TraceRequests | None = None
    #: Multi-turn conversations, run turn by turn; ``requests`` then holds each one's first turn.
    conversations: tuple[Conversation, ...] = ()

    def __len__(self) -> int:
        return len(self.requests)

    @property
    def prompt_forms(self) -> tuple[PromptKind, ...]:
        """Each request's prompt as sent: ``text`` for the server to tokenize, ``token_ids``, or
        chat ``messages``; in the set's order."""
        return tuple(_prompt_kind(r) for r in self.requests)

    def cycle(self, prefix: str = "") -> Callable[[], EngineRequest]:
        """A function giving the set's requests in order, round and round, each with a fresh id.

        Load generators need more requests than a file may hold; a repeated prompt keeps its
        length, and the id (``prefix`` + a running number) keeps outcomes apart.
        """
        if not self.requests:
            raise ConfigError(f"request set {self.source!r} is empty")
        counter = iter(range(1 << 62))

        def next_request() -> EngineRequest:
            n = next(counter)
            base = self.requests[n % len(self.requests)]
            return _with_id(base, f"{prefix}{n}")

        return next_request


def load_tokenizer(model: str) -> PreTrainedTokenizerBase:
    """The model's tokenizer, from a local folder or a hub id (``AutoTokenizer``, the ordinary way)."""
    from transformers import AutoTokenizer

    try:
        tokenizer: PreTrainedTokenizerBase = AutoTokenizer.from_pretrained(model)
    except (OSError, ValueError) as exc:
        raise ConfigError(f"cannot load the tokenizer of model {model!r}: {' '.join(str(exc).split())[:300]}") from None
    # Its warning about prompts longer than the model's maximum goes to stderr mid-run; the length
    # that matters is the engine's context, which ``check_lengths`` enforces in one line.
    warned = getattr(tokenizer, "deprecation_warnings", None)
    if isinstance(warned, dict):
        warned["sequence-length-is-longer-than-the-specified-maximum"] = True
    return tokenizer


def exact_prompt(tokenizer: PreTrainedTokenizerBase, tokens: int, rng: random.Random) -> ExactPrompt:
    """A prompt that ``tokenizer`` counts as exactly ``tokens`` ids: fitted text where it can be,
    else the ids (``workloads.exact_prompts``). For many prompts, build one ``PromptBuilder``."""
    return PromptBuilder(tokenizer).build(tokens, rng)


def synthetic_requests(
    tokenizer: PreTrainedTokenizerBase,
    count: int,
    input_tokens: TokenCounts,
    output_tokens: TokenCounts,
    *,
    seed: int = 0,
    as_token_ids: bool = False,
    return_token_ids: bool = False,
    shared_prefix: SharedPrefix | None = None,
) -> RequestSet:
    """``count`` completions requests with prompts of exactly the drawn number of tokens.

    With ``shared_prefix`` (``GROUPS:TOKENS``), request ``i`` belongs to group ``i % GROUPS``, and
    every prompt of a group is the tokenizer's leading special tokens, the group's ``TOKENS`` ids,
    then ids of its own up to its drawn length; these go as ids, so the prefix is the same tokens
    to the engine's cache (``workloads.traces`` says why text cannot promise that).

    Each prompt is text fitted to its length where the tokenizer allows, else its token ids
    (``workloads.exact_prompts``); the set records which (``prompt_forms``) and why ids
    (``ids_reason``). ``as_token_ids`` sends every prompt as ids (the completions API takes them),
    so the server does no tokenizing at all; the count is then exact by construction.
    """
    lengths, rng = _draw_lengths(count, input_tokens, output_tokens, seed)
    inputs, outputs = [n for n, _ in lengths], [n for _, n in lengths]
    builder = PromptBuilder(tokenizer)
    requests = []
    reasons: list[str] = []
    prefixes = _group_prefixes(builder, shared_prefix, min(inputs), seed)
    for i, (n_in, n_out) in enumerate(zip(inputs, outputs, strict=True)):
        if prefixes:
            head = prefixes[i % len(prefixes)]
            own = random.Random(f"{seed}:own:{i}")
            prompt: str | tuple[int, ...] = (*head, *(own.choice(builder.ordinary) for _ in range(n_in - len(head))))
            reason = "a shared prefix is sent as token ids"
            if reason not in reasons:
                reasons.append(reason)
        else:
            built = builder.ids(n_in, rng, "token ids were asked for") if as_token_ids else builder.build(n_in, rng)
            if built.reason is not None and built.reason not in reasons:
                reasons.append(built.reason)
            prompt = built.prompt
        requests.append(
            EngineRequest(
                f"s{i}",
                max_tokens=n_out,
                prompt=prompt,
                input_tokens=n_in,
                ignore_eos=True,
                seed=seed,
                return_token_ids=return_token_ids,
            )
        )
    return RequestSet(
        tuple(requests),
        "synthetic",
        input_tokens.describe(),
        output_tokens.describe(),
        seed,
        ids_reason="; ".join(reasons) or None,
    )


def _group_prefixes(
    builder: PromptBuilder, shared: SharedPrefix | None, shortest: int, seed: int
) -> list[tuple[int, ...]]:
    """Each group's leading ids (special tokens, then ``shared.tokens`` ordinary ids)."""
    if shared is None:
        return []
    lead = builder._prefix
    if len(lead) + shared.tokens >= shortest:
        raise ConfigError(
            f"--shared-prefix {shared.groups}:{shared.tokens}: a prefix of {shared.tokens} tokens (after "
            f"{len(lead)} special) leaves no token of its own to a prompt of {shortest}; raise --prompt-tokens "
            "or shorten the prefix"
        )
    out = []
    for group in range(shared.groups):
        rng = random.Random(f"{seed}:prefix:{group}")
        out.append((*lead, *(rng.choice(builder.ordinary) for _ in range(shared.tokens))))
    return out


def _draw_lengths(
    count: int, input_tokens: TokenCounts, output_tokens: TokenCounts, seed: int
) -> tuple[list[tuple[int, int]], random.Random]:
    if count < 1:
        raise ConfigError(f"a request set needs at least one request, got {count}")
    rng = random.Random(seed)
    inputs = input_tokens.draw(rng, count)
    outputs = output_tokens.draw(rng, count)
    return list(zip(inputs, outputs, strict=True)), rng


def synthetic_lengths(
    count: int, input_tokens: TokenCounts, output_tokens: TokenCounts, *, seed: int = 0
) -> list[tuple[int, int]]:
    """The (input, output) token counts ``synthetic_requests`` draws with the same arguments.

    Drawn apart from the prompts so lengths can be checked before any prompt is built: fitting a
    prompt of a hundred million tokens would take hours only to be refused.
    """
    return _draw_lengths(count, input_tokens, output_tokens, seed)[0]


def check_lengths(lengths: Sequence[tuple[str, int | None, int]], max_model_len: int) -> None:
    """Refuse a request whose input plus output tokens (``(id, input, output)``) exceed the
    engine's context: the engine would reject it on every send, so it is bad input, not a fault."""
    for request_id, n_in, n_out in lengths:
        if n_out > max_model_len or (n_in is not None and n_in + n_out > max_model_len):
            need = f"{n_in} + {n_out}" if n_in is not None else f"{n_out} output"
            raise ConfigError(
                f"request {request_id} needs {need} tokens, more than the engine's max model length "
                f"{max_model_len}: raise --max-model-len or shorten the set"
            )


def load_prompt_file(
    path: str | Path,
    tokenizer: PreTrainedTokenizerBase | None,
    *,
    output_tokens: TokenCounts | None,
    api: Literal["chat", "completions"] = "chat",
    limit: int | None = None,
    seed: int = 0,
    return_token_ids: bool = False,
) -> RequestSet:
    """The user's prompts as requests, in file order (``limit`` caps how many).

    ``output_tokens`` None takes each ShareGPT conversation's reference reply length (tokenized
    with ``tokenizer``) as its ``max_tokens``, as vLLM's serving benchmark does; lines without a
    reply then need ``output_tokens``. Input counts are computed where the tokenizer can say what
    the server will see (completions; chat with the model's chat template) and otherwise left to
    the server's usage.
    """
    file = Path(path)
    text = _read_prompt_file(file)
    records = _parse_records(text, file)
    rng = random.Random(seed)
    requests: list[EngineRequest] = []
    for number, record in records:
        if limit is not None and len(requests) >= limit:
            break
        messages, reply = _conversation(record, file, number)
        if output_tokens is not None:
            max_tokens = output_tokens.draw(rng, 1)[0]
        elif reply is not None and tokenizer is not None:
            max_tokens = max(1, len(tokenizer(reply, add_special_tokens=False)["input_ids"]))
        else:
            raise ConfigError(
                f"{file}:{number}: no reference reply to take the output length from; give --output-tokens"
            )
        rid = f"p{len(requests)}"
        if api == "completions":
            prompt = "\n".join(m.content for m in messages)
            n_in = None if tokenizer is None else len(tokenizer(prompt)["input_ids"])
            request = EngineRequest(
                rid,
                max_tokens=max_tokens,
                prompt=prompt,
                input_tokens=n_in,
                seed=seed,
                return_token_ids=return_token_ids,
            )
        else:
            request = EngineRequest(
                rid,
                max_tokens=max_tokens,
                messages=messages,
                input_tokens=_chat_tokens(tokenizer, messages),
                seed=seed,
                return_token_ids=return_token_ids,
            )
        requests.append(request)
    if not requests:
        raise ConfigError(f"the prompt file {str(file)!r} holds no prompts")
    out = output_tokens.describe() if output_tokens is not None else "reference reply"
    return RequestSet(tuple(requests), str(file), "from file", out, seed)


def _read_prompt_file(file: Path) -> str:
    """The file's text; a missing, unreadable, enormous, binary or empty file is one line of bad
    input (``workloads.input_files.read_text_file``, the reader traces and conversations share)."""
    return read_text_file(file, "prompt file", "--prompts", max_bytes=MAX_PROMPT_FILE_BYTES)


def _prompt_kind(request: EngineRequest) -> PromptKind:
    if request.messages is not None:
        return "messages"
    return "text" if isinstance(request.prompt, str) else "token_ids"


def _with_id(request: EngineRequest, request_id: str) -> EngineRequest:
    from dataclasses import replace

    return replace(request, request_id=request_id)


def _chat_tokens(tokenizer: PreTrainedTokenizerBase | None, messages: Sequence[ChatMessage]) -> int | None:
    if tokenizer is None or not getattr(tokenizer, "chat_template", None):
        return None
    encoded: Any = tokenizer.apply_chat_template(
        [{"role": m.role, "content": m.content} for m in messages], tokenize=True, add_generation_prompt=True
    )
    # transformers 5 returns a BatchEncoding here, 4.x a plain list of ids.
    ids = encoded["input_ids"] if hasattr(encoded, "keys") else encoded
    return len(ids)


def _conversation(record: Any, file: Path, number: int) -> tuple[tuple[ChatMessage, ...], str | None]:
    """The turns up to the first user turn, and the reply that followed it (if any)."""
    where = f"{file}:{number}"
    if not isinstance(record, dict):
        raise ConfigError(f"{where}: expected a JSON object, got {type(record).__name__}")
    if isinstance(record.get("prompt"), str):
        return (ChatMessage("user", record["prompt"]),), None
    turns = record.get("conversations", record.get("messages"))
    if not isinstance(turns, list):
        raise ConfigError(f"{where}: needs 'conversations' (ShareGPT), 'messages' or 'prompt'")
    messages: list[ChatMessage] = []
    for index, turn in enumerate(turns):
        if not isinstance(turn, dict):
            raise ConfigError(f"{where}: turn {index} is not an object")
        speaker = turn.get("from", turn.get("role"))
        content = turn.get("value", turn.get("content"))
        role = _ROLES.get(str(speaker))
        if role is None or not isinstance(content, str):
            raise ConfigError(f"{where}: turn {index} needs from/role in {sorted(_ROLES)} and a text value/content")
        messages.append(ChatMessage(role, content))
        if role == "user":
            following = turns[index + 1] if index + 1 < len(turns) else None
            reply = None
            if isinstance(following, dict) and _ROLES.get(str(following.get("from", following.get("role")))) == (
                "assistant"
            ):
                value = following.get("value", following.get("content"))
                reply = value if isinstance(value, str) else None
            return tuple(messages), reply
    raise ConfigError(f"{where}: the conversation has no user turn")


def request_set(params: EngineParams) -> RequestSet:
    """The requests of an engine cell (``EngineParams``): synthetic from the model's tokenizer, or the user's file.

    Every request must fit the engine's context (``check_lengths``); synthetic lengths are checked
    before a prompt is built, a file's once its requests are read.
    """
    limit = params.spec.max_model_len
    if params.prompts is None and params.trace is None:
        drawn = synthetic_lengths(
            params.requests,
            TokenCounts.parse(params.prompt_tokens),
            TokenCounts.parse(params.output_tokens),
            seed=params.seed,
        )
        check_lengths([(f"s{i}", n_in, n_out) for i, (n_in, n_out) in enumerate(drawn)], limit)
    tokenizer = load_tokenizer(params.model)
    if params.trace is not None:
        return trace_request_set(params, tokenizer)
    if params.prompts is not None and params.multi_turn:
        return conversation_request_set(params, tokenizer)
    if params.prompts is not None:
        output = None if params.output_tokens == "reference" else TokenCounts.parse(params.output_tokens)
        requests = load_prompt_file(
            params.prompts, tokenizer, output_tokens=output, api=params.api, limit=params.requests, seed=params.seed
        )
        check_lengths([(r.request_id, r.input_tokens, r.max_tokens) for r in requests.requests], limit)
        return requests
    return synthetic_requests(
        tokenizer,
        params.requests,
        TokenCounts.parse(params.prompt_tokens),
        TokenCounts.parse(params.output_tokens),
        seed=params.seed,
        shared_prefix=None if params.shared_prefix is None else SharedPrefix.parse(params.shared_prefix),
    )


def trace_request_set(params: EngineParams, tokenizer: PreTrainedTokenizerBase) -> RequestSet:
    """A recorded trace's requests (``workloads.traces``), each with its send time."""
    from workloads.traces import build_trace_requests, read_trace

    assert params.trace is not None
    trace = read_trace(
        params.trace, block_size=params.trace_block_size or DEFAULT_TRACE_BLOCK_SIZE, limit=params.trace_limit
    )
    built = build_trace_requests(
        trace, tokenizer, max_model_len=params.spec.max_model_len, speed=params.trace_speed or 1.0, seed=params.seed
    )
    lengths = [r.input_tokens or 0 for r in built.requests]
    outputs = [r.max_tokens for r in built.requests]
    return RequestSet(
        built.requests,
        f"{trace.format} trace {trace.file}",
        f"trace {min(lengths)}..{max(lengths)}",
        f"trace {min(outputs)}..{max(outputs)}",
        params.seed,
        ids_reason="trace prompts are token-id blocks, so equal hash ids are equal cache blocks",
        trace=built,
    )


def conversation_request_set(params: EngineParams, tokenizer: PreTrainedTokenizerBase) -> RequestSet:
    """The file's multi-turn conversations (``workloads.conversations``); ``requests`` holds each
    one's first turn (for the correctness check), the load runs every turn."""
    from workloads.conversations import load_conversations

    assert params.prompts is not None
    output = None if params.output_tokens == "reference" else TokenCounts.parse(params.output_tokens)
    conversations = load_conversations(
        params.prompts, tokenizer, output_tokens=output, limit=params.requests, seed=params.seed
    )
    firsts = tuple(
        EngineRequest(
            f"c{c.index}t0",
            max_tokens=c.turns[0].max_tokens,
            messages=c.turns[0].messages,
            input_tokens=_chat_tokens(tokenizer, c.turns[0].messages),
            seed=params.seed,
            conversation=c.index,
            turn=0,
            history_messages=0,
        )
        for c in conversations
    )
    out = output.describe() if output is not None else "reference reply"
    turns = sum(len(c.turns) for c in conversations)
    return RequestSet(
        firsts, f"{params.prompts} ({turns} turns)", "from file", out, params.seed, conversations=conversations
    )
