"""Engine cell parameters: checked once, with messages that say what to give."""

from __future__ import annotations

import pytest

from harness.errors import ConfigError
from harness.scenarios.engine_params import EngineParams, normalize_endpoint


@pytest.mark.parametrize(
    ("url", "base"),
    [
        ("http://127.0.0.1:8000", "http://127.0.0.1:8000/v1"),
        ("http://127.0.0.1:8000/", "http://127.0.0.1:8000/v1"),
        ("https://host/v1/", "https://host/v1"),
    ],
)
def test_endpoints_become_the_api_base(url: str, base: str) -> None:
    assert normalize_endpoint(url) == base
    assert EngineParams("m", endpoint=url).endpoint == base


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"model": ""}, "needs --model"),
        ({"endpoint": None}, "exactly one of --endpoint"),
        ({"engine": "vllm"}, "exactly one of --endpoint"),
        ({"endpoint": "127.0.0.1:8000"}, "http:// or https://"),
        ({"requests": 0}, "at least one request"),
        ({"prompt_tokens": "lots"}, "token count 'lots'"),
        ({"api": "chat"}, "chat needs --prompts"),
        ({"output_tokens": "reference"}, "give a file"),
    ],
)
def test_bad_params_say_what_to_give(kwargs: dict[str, object], message: str) -> None:
    arguments: dict[str, object] = {"model": "m", "endpoint": "http://h:1", **kwargs}
    with pytest.raises(ConfigError, match=message):
        EngineParams(**arguments)  # type: ignore[arg-type]


def test_names_and_labels() -> None:
    params = EngineParams("/models/tiny", engine="vllm", prompt_tokens="uniform:8:32", output_tokens="16")
    assert params.model_name == "/models/tiny"
    assert EngineParams("/models/tiny", endpoint="http://h:1", served_model="tiny").model_name == "tiny"
    assert params.describe() == "inuniform:8:32-out16"
    assert EngineParams("m", engine="vllm", prompts="p.jsonl", api="chat", output_tokens="reference").describe() == (
        "file-outreference"
    )
