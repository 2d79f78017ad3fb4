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
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Sequence

from backends.engine.protocol import EngineBackend
from backends.engine.records import RequestOutcome
from harness.measure.stats import summarize
from harness.runfile.engine import ChatMessage, EngineRequest
from harness.runfile.records import TurnRecord
from harness.scenarios.engine_load import EngineLoadRun, LoadShape
from workloads.conversations import Conversation

__all__ = ["run_conversations", "turn_records"]


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
