"""Engine cell parameters: checked once, with messages that say what to give."""

from __future__ import annotations

import pytest

from harness.errors import ConfigError
from harness.runfile.engine import EngineParams, EngineSpec

ATTACHED = EngineSpec("m", endpoint="http://127.0.0.1:8000")


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"spec": EngineSpec("", endpoint="http://h:1")}, "needs --model"),
        ({"requests": 0}, "at least one request"),
        ({"prompt_tokens": "lots"}, "token count 'lots'"),
        ({"api": "chat"}, "chat needs --prompts"),
        ({"api": "grpc"}, "completions or chat"),
        ({"output_tokens": "reference"}, "give a file"),
    ],
)
def test_bad_params_say_what_to_give(kwargs: dict[str, object], message: str) -> None:
    arguments: dict[str, object] = {"spec": ATTACHED, **kwargs}
    with pytest.raises(ConfigError, match=message):
        EngineParams(**arguments)  # type: ignore[arg-type]


def test_labels() -> None:
    assert EngineParams(ATTACHED, prompt_tokens="uniform:8:32", output_tokens="16").describe() == (
        "inuniform:8:32-out16"
    )
    assert EngineParams(ATTACHED, prompts="p.jsonl", api="chat", output_tokens="reference").describe() == (
        "file-outreference"
    )
    assert EngineParams(ATTACHED).model == "m"
