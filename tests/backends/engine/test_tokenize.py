"""The engine's ids of a chat prompt over HTTP, against a server on 127.0.0.1 that answers as vLLM
0.32's ``POST /tokenize`` does (``vllm/entrypoints/serve/tokenize/protocol.py``: a
``TokenizeChatRequest`` in, ``TokenizeResponse`` ``{count, max_model_len, tokens}`` out, at the
server's root), and one that has no such route, as another OpenAI-compatible server may not."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest

from backends.engine.tokenize import TokenizeUnavailable, chat_token_ids
from harness.runfile.engine import ChatMessage


class _Handler(BaseHTTPRequestHandler):
    bodies: list[dict[str, Any]]
    answer: tuple[int, str] | None = None

    def log_message(self, *args: object) -> None:
        pass

    def do_POST(self) -> None:
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        if self.path != "/tokenize":
            status, text = 404, json.dumps({"detail": "Not Found"})
        elif self.answer is not None:
            status, text = self.answer
        else:
            self.bodies.append(body)
            # A template of our own: role and content words, then the generation prompt.
            words = [w for m in body["messages"] for w in (m["role"], *m["content"].split())]
            if body.get("add_generation_prompt"):
                words.append("assistant:")
            tokens = [len(w) for w in words]
            status, text = 200, json.dumps({"count": len(tokens), "max_model_len": 4096, "tokens": tokens})
        data = text.encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)


@pytest.fixture
def server() -> Iterator[tuple[str, type[_Handler]]]:
    handler = type("Handler", (_Handler,), {"bodies": [], "answer": None})
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{httpd.server_address[1]}", handler
    finally:
        httpd.shutdown()
        httpd.server_close()


MESSAGES = (ChatMessage("user", "hello there"), ChatMessage("assistant", "hi"), ChatMessage("user", "again"))


def test_a_chat_is_tokenized_at_the_servers_root_as_the_chat_api_would_template_it(
    server: tuple[str, type[_Handler]],
) -> None:
    url, handler = server
    ids = chat_token_ids(url, "tiny", MESSAGES)
    assert ids == tuple(len(w) for w in ("user", "hello", "there", "assistant", "hi", "user", "again", "assistant:"))
    (body,) = handler.bodies
    # The chat completions API's defaults (ChatCompletionRequest): the generation prompt added, no
    # special tokens beyond the template's; the messages as the chat request sends them.
    assert body == {
        "model": "tiny",
        "messages": [{"role": m.role, "content": m.content} for m in MESSAGES],
        "add_generation_prompt": True,
        "add_special_tokens": False,
    }


def test_a_server_without_tokenize_says_so(server: tuple[str, type[_Handler]]) -> None:
    url, _ = server
    with pytest.raises(TokenizeUnavailable, match=r"the engine has no POST /tokenize \(HTTP 404 from .*/v1/tokenize\)"):
        chat_token_ids(url + "/v1", "tiny", MESSAGES)  # /v1/tokenize: not where vLLM serves it


@pytest.mark.parametrize(
    ("answer", "message"),
    [
        ((500, "boom"), "answered HTTP 500: boom"),
        ((200, json.dumps({"count": 2})), "without a 'tokens' list"),
        ((200, json.dumps({"tokens": ["a", "b"]})), "not token ids"),
    ],
)
def test_a_bad_answer_is_unavailable_with_its_reason(
    server: tuple[str, type[_Handler]], answer: tuple[int, str], message: str
) -> None:
    url, handler = server
    handler.answer = answer
    with pytest.raises(TokenizeUnavailable, match=message):
        chat_token_ids(url, "tiny", MESSAGES)


def test_an_engine_that_is_gone_is_unavailable() -> None:
    with pytest.raises(TokenizeUnavailable, match="failed"):
        chat_token_ids("http://127.0.0.1:9", "tiny", MESSAGES, timeout_s=2)
