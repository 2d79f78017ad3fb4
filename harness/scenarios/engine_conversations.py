"""Conversations on a serving engine, turn by turn, each turn sending the history the engine made.

``concurrency`` users each take the next conversation not yet started and run its turns in order:
a turn's messages are the conversation so far (its earlier user messages and the replies *the engine
gave* to them, never the recorded ones) plus the turn's own, so the history grows as a real user's
does and the engine's prefix cache is offered exactly the reuse such a history has. After a reply
the user waits ``think_time_s`` before the next turn (0: at once). A turn that fails ends its
conversation (its later turns would have no reply to build on); the failure is kept and counted.

A turn's TTFT counts from when it was sent: a closed loop has no schedule to fall behind. The
figures by turn index (``turn_records``) set turn 0, whose prompt nothing had sent before, beside
later turns, whose history the cache may hold.

What the conversations were designed to reuse (``designed_reuse``) needs each turn's prompt ids,
which the chat template makes from its messages: after the load (never inside its timed window)
each turn's messages, rebuilt from the conversations and the replies the engine gave, go to the
engine's own tokenizer (``backends.engine.tokenize``), and ``workloads.reuse`` walks the ids in
sending order at the engine's block. Where the engine cannot tokenize a chat, or its ids are not
the length the server counted for the prompt, no designed reuse is given and the reason is kept.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace

from backends.engine.protocol import EngineBackend
from backends.engine.records import RequestOutcome
from harness.measure.stats import summarize
from harness.runfile.engine import ChatMessage, EngineRequest
from harness.runfile.records import TurnRecord
from harness.scenarios.engine_load import EngineLoadRun, LoadShape
from workloads.conversations import Conversation
from workloads.reuse import PrefixReuse

__all__ = ["ConversationReuse", "designed_reuse", "run_conversations", "sent_messages", "turn_records"]


async def run_conversations(
    engine: EngineBackend,
    conversations: Sequence[Conversation],
    concurrency: int,
    *,
    think_time_s: float = 0.0,
    seed: int | None = None,
    prefix: str = "c",
) -> EngineLoadRun:
    """Every conversation once, ``concurrency`` at a time; outcomes in the order turns were sent."""
    if concurrency < 1:
        raise ValueError(f"concurrency must be 1 or more, got {concurrency}")
    if think_time_s < 0:
        raise ValueError(f"think time must be >= 0, got {think_time_s}")
    queue = list(conversations)
    sent: list[tuple[int, RequestOutcome]] = []
    order = 0
    origin_ns = time.monotonic_ns()

    async def user() -> None:
        nonlocal order
        while queue:
            conversation = queue.pop(0)
            history: list[ChatMessage] = []
            for number, turn in enumerate(conversation.turns):
                earlier = len(history)
                history.extend(turn.messages)
                request = EngineRequest(
                    f"{prefix}{conversation.index}t{number}",
                    max_tokens=turn.max_tokens,
                    messages=tuple(history),
                    seed=seed,
                    conversation=conversation.index,
                    turn=number,
                    history_messages=earlier,
                )
                index = order
                order += 1
                outcome = await engine.submit(request).outcome()
                sent.append((index, outcome))
                if not outcome.ok:
                    break
                history.append(ChatMessage("assistant", outcome.text))
                if think_time_s and number + 1 < len(conversation.turns):
                    await asyncio.sleep(think_time_s)

    await asyncio.gather(*(user() for _ in range(min(concurrency, max(1, len(queue))))))
    outcomes = tuple(o for _, o in sorted(sent, key=lambda pair: pair[0]))
    end_ns = max((o.end_ns for o in outcomes), default=time.monotonic_ns())
    return EngineLoadRun(LoadShape("closed_loop", concurrency=concurrency), outcomes, origin_ns, end_ns)


def turn_records(run: EngineLoadRun, confidence: float = 0.95) -> tuple[TurnRecord, ...]:
    """The run's requests grouped by turn index: how many, and their TTFT and mean history."""
    by_turn: dict[int, list[RequestOutcome]] = {}
    for outcome in run.outcomes:
        if outcome.turn is not None:
            by_turn.setdefault(outcome.turn, []).append(outcome)
    records = []
    for turn in sorted(by_turn):
        outcomes = by_turn[turn]
        ok = [o for o in outcomes if o.ok]
        ttft = [float(first - o.scheduled_ns) for o in ok if (first := o.first_token_ns) is not None]
        history = [o.input_tokens for o in ok if o.input_tokens is not None]
        records.append(
            TurnRecord(
                turn=turn,
                requests=len(outcomes),
                ok=len(ok),
                history_tokens=sum(history) / len(history) if history else None,
                ttft_ns=summarize(ttft, confidence) if ttft else None,
            )
        )
    return tuple(records)


def sent_messages(
    conversations: Sequence[Conversation], outcomes: Sequence[RequestOutcome]
) -> list[tuple[ChatMessage, ...]]:
    """The messages each of ``outcomes`` (turns of ``conversations``) sent, as ``run_conversations``
    built them: the earlier turns' messages, each followed by the reply the engine gave it."""
    replies = {(o.conversation, o.turn): o.text for o in outcomes if o.ok}
    by_index = {c.index: c for c in conversations}
    out = []
    for outcome in outcomes:
        if outcome.conversation is None or outcome.turn is None or outcome.conversation not in by_index:
            raise ValueError(f"request {outcome.request_id} is not a turn of these conversations")
        turns = by_index[outcome.conversation].turns
        messages: list[ChatMessage] = []
        for number in range(outcome.turn):
            messages.extend(turns[number].messages)
            messages.append(ChatMessage("assistant", replies[(outcome.conversation, number)]))
        messages.extend(turns[outcome.turn].messages)
        out.append(tuple(messages))
    return out


@dataclass(frozen=True)
class ConversationReuse:
    """A conversation run's designed reuse: the tracker that walked every turn's ids (None, with
    ``unknown`` saying why, where the ids are not known) and the run with each turn stamped."""

    run: EngineLoadRun
    reuse: PrefixReuse | None
    unknown: str | None = None


def designed_reuse(
    conversations: Sequence[Conversation],
    run: EngineLoadRun,
    token_ids: Callable[[Sequence[ChatMessage]], tuple[int, ...]],
    block_size: int,
) -> ConversationReuse:
    """Each turn's prompt ids from ``token_ids`` (the engine's ``/tokenize``), in sending order,
    through ``PrefixReuse`` at ``block_size``; every turn stamped with its designed cached tokens.

    Ids whose count is not the server's own prompt count for the turn are not the prompt it
    prefilled (another template, another tokenizer): then no designed reuse is given."""
    from backends.engine.tokenize import TokenizeUnavailable

    try:
        prompts = [token_ids(messages) for messages in sent_messages(conversations, run.outcomes)]
    except TokenizeUnavailable as error:
        return ConversationReuse(run, None, f"each turn's prompt ids are unknown: {error}")
    differ = [
        (len(ids), o.input_tokens)
        for ids, o in zip(prompts, run.outcomes, strict=True)
        if o.input_tokens is not None and o.input_tokens != len(ids)
    ]
    if differ:
        tokenized, counted = differ[0]
        return ConversationReuse(
            run,
            None,
            f"the engine's /tokenize gave {len(differ)} of {len(prompts)} turns another length than the server "
            f"counted for their prompts (e.g. {tokenized} against {counted}): its ids are not the prompts",
        )
    reuse = PrefixReuse(block_size)
    stamped = tuple(
        replace(outcome, designed_cached_tokens=reuse.send(ids))
        for ids, outcome in zip(prompts, run.outcomes, strict=True)
    )
    return ConversationReuse(replace(run, outcomes=stamped), reuse)
