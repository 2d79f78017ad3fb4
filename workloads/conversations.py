"""Multi-turn conversations from the user's prompt file, to be run turn by turn.

The file is the one ``--prompts`` reads (``workloads.request_sets``): ShareGPT lines
(``{"conversations": [{"from": "human", "value": ...}, {"from": "gpt", ...}, ...]}``) or OpenAI chats
(``{"messages": [{"role": "user", "content": ...}, ...]}``). Each user message is a turn. The
recorded assistant replies are never sent: a turn's history holds the replies *the engine gave* to
the earlier turns (``harness.scenarios.engine_conversations``), so the history grows as it would
for a real user and the engine's prefix cache sees the reuse that history really has. A recorded
reply's length (in the model's tokens) is the turn's ``max_tokens`` when no output length is given.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from harness.errors import ConfigError
from harness.runfile.engine import ChatMessage, TokenCounts
from workloads.input_files import parse_json_records, read_text_file

if TYPE_CHECKING:
    from transformers import PreTrainedTokenizerBase

__all__ = ["Conversation", "Turn", "load_conversations", "read_conversation_file"]

_ROLES = {"human": "user", "user": "user", "gpt": "assistant", "assistant": "assistant", "system": "system"}


@dataclass(frozen=True)
class Turn:
    """One turn: the messages it adds (a user message, with any system message before it) and the
    output length it asks for."""

    messages: tuple[ChatMessage, ...]
    max_tokens: int


@dataclass(frozen=True)
class Conversation:
    """A conversation's turns, in order; ``index`` is its place in the file's conversations."""

    index: int
    turns: tuple[Turn, ...]


@dataclass(frozen=True)
class _Parsed:
    index: int
    where: str
    turns: tuple[tuple[tuple[ChatMessage, ...], str | None], ...]


def read_conversation_file(path: str | Path, limit: int | None = None) -> list[_Parsed]:
    """Check and parse the file's conversations (no tokenizer needed): one ``ConfigError`` line
    for a file that is missing, binary, empty or malformed, or a conversation with no user turn."""
    file = Path(path)
    text = read_text_file(file, "prompt file", "--prompts")
    parsed: list[_Parsed] = []
    for number, record in parse_json_records(text, file):
        if limit is not None and len(parsed) >= limit:
            break
        where = f"{file}:{number}"
        parsed.append(_Parsed(len(parsed), where, _turns(record, where)))
    if not parsed:
        raise ConfigError(f"the prompt file {str(file)!r} holds no conversations")
    return parsed


def _turns(record: Any, where: str) -> tuple[tuple[tuple[ChatMessage, ...], str | None], ...]:
    if not isinstance(record, dict):
        raise ConfigError(f"{where}: expected a JSON object, got {type(record).__name__}")
    if isinstance(record.get("prompt"), str):
        return (((ChatMessage("user", record["prompt"]),), None),)
    raw = record.get("conversations", record.get("messages"))
    if not isinstance(raw, list):
        raise ConfigError(f"{where}: needs 'conversations' (ShareGPT), 'messages' or 'prompt'")
    turns: list[tuple[tuple[ChatMessage, ...], str | None]] = []
    pending: list[ChatMessage] = []
    for index, item in enumerate(raw):
        if not isinstance(item, dict):
            raise ConfigError(f"{where}: turn {index} is not an object")
        role = _ROLES.get(str(item.get("from", item.get("role"))))
        content = item.get("value", item.get("content"))
        if role is None or not isinstance(content, str):
            raise ConfigError(f"{where}: turn {index} needs from/role in {sorted(_ROLES)} and a text value/content")
        if role == "assistant":
            if turns and turns[-1][1] is None and not pending:
                turns[-1] = (turns[-1][0], content)
            continue  # a recorded reply is never sent; the engine's own takes its place
        pending.append(ChatMessage(role, content))
        if role == "user":
            turns.append((tuple(pending), None))
            pending = []
    if not turns:
        raise ConfigError(f"{where}: the conversation has no user turn")
    return tuple(turns)


def load_conversations(
    path: str | Path,
    tokenizer: PreTrainedTokenizerBase | None,
    *,
    output_tokens: TokenCounts | None,
    limit: int | None = None,
    seed: int = 0,
) -> tuple[Conversation, ...]:
    """The file's conversations with each turn's output length: drawn from ``output_tokens``, or
    (None) the recorded reply's length in the model's tokens."""
    rng = random.Random(seed)
    out: list[Conversation] = []
    for parsed in read_conversation_file(path, limit):
        turns = []
        for number, (messages, reply) in enumerate(parsed.turns):
            if output_tokens is not None:
                max_tokens = output_tokens.draw(rng, 1)[0]
            elif reply is not None and tokenizer is not None:
                max_tokens = max(1, len(tokenizer(reply, add_special_tokens=False)["input_ids"]))
            else:
                raise ConfigError(
                    f"{parsed.where}: turn {number} has no recorded reply to take the output length from; "
                    "give --output-dist"
                )
            turns.append(Turn(messages, max_tokens))
        out.append(Conversation(parsed.index, tuple(turns)))
    return tuple(out)
