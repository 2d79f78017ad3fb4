"""The engine's own token ids of a chat prompt: vLLM's ``POST /tokenize`` with ``messages``.

A chat turn's prompt is the chat template applied to its messages, and only the engine knows
exactly which template and which ids it made (a folder's template, a server ``--chat-template``,
the tokenizer's special tokens). vLLM 0.32 answers it at the server's root, beside ``/v1``
(``entrypoints/serve/tokenize``): the request is ``{"model", "messages": [{"role", "content"}],
"add_generation_prompt": true, "add_special_tokens": false}`` (the chat API's own defaults), the
answer ``{"count", "max_model_len", "tokens": [ids]}``. Its handler renders through the same
``OnlineRenderer.preprocess_chat`` with the same resolved template and template kwargs as
``/v1/chat/completions`` (``launchers/api_server/app_state.py`` builds both from one
``resolved_chat_template``), so its ids are the prompt the engine prefilled. Another server may not
have it: ``TokenizeUnavailable`` then says why, and the caller gives no designed reuse.
"""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from collections.abc import Callable, Sequence

from harness.runfile.engine import ChatMessage

__all__ = ["Post", "TokenizeUnavailable", "chat_token_ids"]

#: ``post(url, body, timeout_s)`` -> (HTTP status, response text); injectable for tests.
Post = Callable[[str, bytes, float], tuple[int, str]]


class TokenizeUnavailable(Exception):
    """The engine cannot say a chat prompt's ids; the message says why, for the record."""


def _post(url: str, body: bytes, timeout_s: float) -> tuple[int, str]:
    request = urllib.request.Request(url, data=body, headers={"Content-Type": "application/json"}, method="POST")
    try:
        with urllib.request.urlopen(request, timeout=timeout_s) as response:
            return int(response.status), bytes(response.read()).decode("utf-8", errors="replace")
    except urllib.error.HTTPError as error:
        return int(error.code), error.read().decode("utf-8", errors="replace")


def chat_token_ids(
    url: str, model: str, messages: Sequence[ChatMessage], *, post: Post | None = None, timeout_s: float = 30.0
) -> tuple[int, ...]:
    """The ids the engine at ``url`` (its root, not ``/v1``) makes of ``messages`` as a chat prompt,
    with the generation prompt a chat request adds; ``TokenizeUnavailable`` where it cannot say."""
    body = json.dumps(
        {
            "model": model,
            "messages": [{"role": m.role, "content": m.content} for m in messages],
            "add_generation_prompt": True,
            "add_special_tokens": False,
        }
    ).encode()
    where = f"{url.rstrip('/')}/tokenize"
    try:
        status, text = (post or _post)(where, body, timeout_s)
    except (urllib.error.URLError, OSError) as error:
        raise TokenizeUnavailable(f"POST {where} failed ({error})") from None
    if status in (404, 405):
        raise TokenizeUnavailable(f"the engine has no POST /tokenize (HTTP {status} from {where})")
    if status != 200:
        raise TokenizeUnavailable(f"POST {where} answered HTTP {status}: {text[:200]}")
    try:
        tokens = json.loads(text)["tokens"]
    except (ValueError, KeyError, TypeError):
        raise TokenizeUnavailable(f"POST {where} answered without a 'tokens' list") from None
    if not isinstance(tokens, list) or not all(isinstance(t, int) and not isinstance(t, bool) for t in tokens):
        raise TokenizeUnavailable(f"POST {where} answered 'tokens' that are not token ids")
    return tuple(tokens)
