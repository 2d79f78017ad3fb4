"""Conversations turn by turn against a small chat server of our own on 127.0.0.1 that keeps every
request body, so each turn's history can be read back: the engine's replies, never the recorded ones."""

from __future__ import annotations

import asyncio
import json
import time
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web

from backends.engine.client import OpenAIClient
from backends.engine.protocol import Endpoint
from harness.errors import ConfigError
from harness.runfile.engine import TokenCounts
from harness.scenarios.engine_conversations import designed_reuse, run_conversations, sent_messages, turn_records
from workloads.conversations import load_conversations, read_conversation_file


class ChatServer:
    """Streams ``reply-N`` (N: the request's number) as two chunks, then usage; keeps the bodies.
    A last user message ``fail`` is answered HTTP 500."""

    def __init__(self) -> None:
        self.bodies: list[dict[str, Any]] = []
        self.arrivals: list[float] = []
        self.port = 0
        self._runner: web.AppRunner | None = None

    async def __aenter__(self) -> ChatServer:
        app = web.Application()
        app.router.add_post("/v1/chat/completions", self._chat)
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        server = site._server
        assert isinstance(server, asyncio.Server)
        self.port = server.sockets[0].getsockname()[1]
        return self

    async def __aexit__(self, *exc: object) -> None:
        assert self._runner is not None
        await self._runner.cleanup()

    async def _chat(self, request: web.Request) -> web.StreamResponse:
        body = await request.json()
        self.bodies.append(body)
        self.arrivals.append(time.monotonic())
        if body["messages"][-1]["content"] == "fail":
            return web.json_response({"error": {"message": "no"}}, status=500)
        number = len(self.bodies)
        response = web.StreamResponse(headers={"Content-Type": "text/event-stream"})
        await response.prepare(request)
        for piece in ("reply-", str(number)):
            chunk = {"choices": [{"index": 0, "delta": {"content": piece}, "finish_reason": None}]}
            await response.write(b"data: " + json.dumps(chunk).encode() + b"\n\n")
        tokens = sum(len(m["content"].split()) for m in body["messages"])
        usage = {"choices": [], "usage": {"prompt_tokens": tokens, "completion_tokens": 2, "total_tokens": tokens + 2}}
        await response.write(b"data: " + json.dumps(usage).encode() + b"\n\n")
        await response.write(b"data: [DONE]\n\n")
        return response


def _file(tmp_path: Path, lines: list[Any]) -> Path:
    path = tmp_path / "conversations.jsonl"
    path.write_text("".join(json.dumps(line) + "\n" for line in lines))
    return path


SHAREGPT = {
    "conversations": [
        {"from": "system", "value": "be brief"},
        {"from": "human", "value": "first question"},
        {"from": "gpt", "value": "a recorded reply of six words here"},
        {"from": "human", "value": "second question"},
        {"from": "gpt", "value": "recorded two"},
        {"from": "human", "value": "third"},
    ]
}
OPENAI = {"messages": [{"role": "user", "content": "hello"}, {"role": "user", "content": "again"}]}


def _run(path: Path, concurrency: int = 1, think: float = 0.0) -> tuple[ChatServer, Any]:
    conversations = load_conversations(path, None, output_tokens=TokenCounts.parse("2"))

    async def main() -> tuple[ChatServer, Any]:
        async with ChatServer() as server, OpenAIClient(Endpoint(f"http://127.0.0.1:{server.port}/v1", "m")) as client:
            run = await run_conversations(client, conversations, concurrency, think_time_s=think)
            return server, run

    return asyncio.run(main())


def test_every_turn_sends_the_history_with_the_replies_the_engine_gave(tmp_path: Path) -> None:
    server, run = _run(_file(tmp_path, [SHAREGPT]))
    sent = [[(m["role"], m["content"]) for m in body["messages"]] for body in server.bodies]
    assert sent == [
        [("system", "be brief"), ("user", "first question")],
        [("system", "be brief"), ("user", "first question"), ("assistant", "reply-1"), ("user", "second question")],
        [
            ("system", "be brief"),
            ("user", "first question"),
            ("assistant", "reply-1"),
            ("user", "second question"),
            ("assistant", "reply-2"),
            ("user", "third"),
        ],
    ]
    assert [(o.conversation, o.turn, o.history_messages) for o in run.outcomes] == [(0, 0, 0), (0, 1, 3), (0, 2, 5)]
    turns = turn_records(run)
    assert [(t.turn, t.requests, t.ok) for t in turns] == [(0, 1, 1), (1, 1, 1), (2, 1, 1)]
    assert [t.history_tokens for t in turns] == [4.0, 7.0, 9.0]  # the server's counts of each history
    assert all(t.ttft_ns is not None for t in turns)


def test_users_run_conversations_side_by_side_and_think_between_turns(tmp_path: Path) -> None:
    server, run = _run(_file(tmp_path, [OPENAI, OPENAI, SHAREGPT]), concurrency=2, think=0.2)
    assert len(run.outcomes) == 2 + 2 + 3 and all(o.ok for o in run.outcomes)
    # Both users started at once (the first two requests arrive together), and a turn follows its
    # reply after the think time, not before.
    assert server.arrivals[1] - server.arrivals[0] < 0.15
    ends = {(o.conversation, o.turn): o for o in run.outcomes}
    for (conversation, turn), outcome in ends.items():
        if turn:
            assert outcome.sent_ns - ends[(conversation, turn - 1)].end_ns >= 0.19e9


def test_a_failed_turn_ends_its_conversation(tmp_path: Path) -> None:
    failing = {"messages": [{"role": "user", "content": "fail"}, {"role": "user", "content": "never sent"}]}
    server, run = _run(_file(tmp_path, [failing, OPENAI]))
    assert [(o.conversation, o.turn, o.ok) for o in run.outcomes] == [(0, 0, False), (1, 0, True), (1, 1, True)]
    assert all(body["messages"][-1]["content"] != "never sent" for body in server.bodies)


def test_recorded_replies_set_each_turns_output_length(tmp_path: Path) -> None:
    class Words:
        def __call__(self, text: str, add_special_tokens: bool = True) -> dict[str, list[int]]:
            return {"input_ids": list(range(len(text.split())))}

    answered = {"conversations": [*SHAREGPT["conversations"], {"from": "gpt", "value": "one two three"}]}
    (conversation,) = load_conversations(_file(tmp_path, [answered]), Words(), output_tokens=None)  # type: ignore[arg-type]
    assert [t.max_tokens for t in conversation.turns] == [7, 2, 3]
    with pytest.raises(ConfigError, match="turn 2 has no recorded reply"):
        load_conversations(_file(tmp_path, [SHAREGPT]), Words(), output_tokens=None)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (None, "does not exist"),
        (b"\x00\x00", "is binary"),
        (b"", "is empty"),
        (b"{not json\n", "not a JSON line"),
        (b"[1, 2", "not valid JSON"),
        (b'{"conversations": [{"from": "gpt", "value": "only a reply"}]}\n', "has no user turn"),
        (b'{"messages": [{"role": "robot", "content": "x"}]}\n', "needs from/role"),
        (b'{"other": 1}\n', "needs 'conversations'"),
        (b"[]", "holds no conversations"),
    ],
)
def test_a_bad_conversation_file_is_one_line(tmp_path: Path, content: bytes | None, message: str) -> None:
    path = tmp_path / "c.jsonl"
    if content is not None:
        path.write_bytes(content)
    with pytest.raises(ConfigError, match=message) as caught:
        read_conversation_file(path)
    assert "\n" not in str(caught.value)


def _word_ids(vocabulary: dict[str, int], extra: int = 0) -> Any:
    """A stand-in for the engine's /tokenize: one id per word of each message's content (the count
    ``ChatServer`` gives as the prompt's usage), plus ``extra`` ids of a template of another length."""

    def token_ids(messages: Any) -> tuple[int, ...]:
        words = [w for m in messages for w in m.content.split()]
        return tuple(vocabulary.setdefault(w, len(vocabulary)) for w in words) + (0,) * extra

    return token_ids


def test_each_turn_is_tokenized_as_sent_and_its_designed_reuse_walks_whole_blocks(tmp_path: Path) -> None:
    path = _file(tmp_path, [SHAREGPT])
    server, run = _run(path)
    conversations = load_conversations(path, None, output_tokens=TokenCounts.parse("2"))
    rebuilt = [[(m.role, m.content) for m in messages] for messages in sent_messages(conversations, run.outcomes)]
    assert rebuilt == [[(m["role"], m["content"]) for m in body["messages"]] for body in server.bodies]
    found = designed_reuse(conversations, run, _word_ids({}), block_size=2)
    assert found.unknown is None and found.reuse is not None
    # Prompts of 4, 7 and 9 words; blocks of 2, never the last token: turn 2 finds the 2 blocks of
    # turn 1's prompt, turn 3 those and the block of "reply-1 second" turn 2 sent (its last word,
    # alone in a part block, is not cached).
    assert [o.designed_cached_tokens for o in found.run.outcomes] == [0, 4, 6]
    assert (found.reuse.designed, found.reuse.prompt_tokens) == (10, 20)
    assert [o.request_id for o in found.run.outcomes] == [o.request_id for o in run.outcomes]


def test_no_designed_reuse_where_the_engine_cannot_tokenize_or_its_ids_are_not_the_prompts(tmp_path: Path) -> None:
    from backends.engine.tokenize import TokenizeUnavailable

    path = _file(tmp_path, [SHAREGPT, OPENAI])
    _, run = _run(path)
    conversations = load_conversations(path, None, output_tokens=TokenCounts.parse("2"))

    def absent(messages: Any) -> tuple[int, ...]:
        raise TokenizeUnavailable("the engine has no POST /tokenize (HTTP 404 from http://e/tokenize)")

    found = designed_reuse(conversations, run, absent, block_size=2)
    assert found.reuse is None and found.run is run
    assert found.unknown == (
        "each turn's prompt ids are unknown: the engine has no POST /tokenize (HTTP 404 from http://e/tokenize)"
    )
    longer = designed_reuse(conversations, run, _word_ids({}, extra=1), block_size=2)
    assert longer.reuse is None and longer.unknown is not None
    assert "gave 5 of 5 turns another length than the server counted" in longer.unknown
