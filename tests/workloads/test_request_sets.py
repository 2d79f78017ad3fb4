"""Request sets for engines: exact input token counts with the model's tokenizer, the user's prompts."""

from __future__ import annotations

import json
import random
from pathlib import Path
from typing import Any

import pytest

from backends.engine import ChatMessage
from harness.errors import ConfigError
from harness.runfile.engine import TokenCounts
from workloads.request_sets import exact_prompt, load_prompt_file, load_tokenizer, synthetic_requests

TEMPLATE = "{% for m in messages %}{{ m['role'] }}: {{ m['content'] }}\n{% endfor %}assistant:"


@pytest.fixture(scope="module")
def tokenizer_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A small byte-level BPE that adds <s>, as Llama's does, trained and saved locally."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, processors, trainers
    from transformers import PreTrainedTokenizerFast

    rng = random.Random(1)
    words = ["".join(rng.choice("abcdefghijklmnopqrstuvwxyz") for _ in range(rng.randint(2, 7))) for _ in range(300)]
    corpus = [" ".join(rng.choice(words) for _ in range(12)) for _ in range(400)]
    tok = Tokenizer(models.BPE(unk_token="<unk>"))
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=600,
        special_tokens=["<unk>", "<s>", "</s>"],
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    tok.train_from_iterator(corpus, trainer=trainer)
    tok.post_processor = processors.TemplateProcessing(single="<s> $A", special_tokens=[("<s>", 1)])
    wrapped = PreTrainedTokenizerFast(
        tokenizer_object=tok, unk_token="<unk>", bos_token="<s>", eos_token="</s>", chat_template=TEMPLATE
    )
    folder = tmp_path_factory.mktemp("tokenizer")
    wrapped.save_pretrained(folder)
    return folder


@pytest.fixture(scope="module")
def tokenizer(tokenizer_dir: Path) -> Any:
    return load_tokenizer(str(tokenizer_dir))


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("128", TokenCounts("fixed", 128)),
        ("uniform:64:256", TokenCounts("uniform", 64, 256)),
        ("normal:128:32", TokenCounts("normal", 128, 32)),
    ],
)
def test_token_counts_parse(text: str, expected: TokenCounts) -> None:
    assert TokenCounts.parse(text) == expected
    assert TokenCounts.parse(expected.describe()) == expected


@pytest.mark.parametrize("text", ["0", "x", "uniform:9:3", "poisson:3:4", "normal:0:1", "uniform:1"])
def test_token_counts_reject_with_the_forms(text: str) -> None:
    with pytest.raises(ConfigError, match="token count"):
        TokenCounts.parse(text)


def test_draws_stay_in_their_distribution() -> None:
    rng = random.Random(0)
    values = TokenCounts("uniform", 10, 20).draw(rng, 500)
    assert min(values) >= 10 and max(values) <= 20 and len(set(values)) == 11
    normal = TokenCounts("normal", 100, 10).draw(rng, 2000)
    assert 98 < sum(normal) / len(normal) < 102 and min(normal) >= 1


@pytest.mark.parametrize("tokens", [2, 3, 17, 64, 200])
def test_exact_prompt_encodes_to_exactly_that_many_tokens(tokenizer: Any, tokens: int) -> None:
    rng = random.Random(tokens)
    for _ in range(5):
        built = exact_prompt(tokenizer, tokens, rng)
        # The server's own count: the tokenizer as called by default, <s> included.
        assert built.form == "text" and built.text is not None and built.reason is None
        assert len(tokenizer(built.text)["input_ids"]) == tokens


def test_exact_prompt_needs_room_after_the_special_tokens(tokenizer: Any) -> None:
    with pytest.raises(ConfigError, match="no room"):
        exact_prompt(tokenizer, 1, random.Random(0))


def test_synthetic_requests_are_seeded_and_exact(tokenizer: Any) -> None:
    counts = TokenCounts("uniform", 8, 40)
    a = synthetic_requests(tokenizer, 12, counts, TokenCounts("fixed", 16), seed=3)
    b = synthetic_requests(tokenizer, 12, counts, TokenCounts("fixed", 16), seed=3)
    assert a == b
    assert len({r.input_tokens for r in a.requests}) > 3
    assert a.prompt_forms == ("text",) * 12 and a.ids_reason is None
    for request in a.requests:
        assert isinstance(request.prompt, str) and request.input_tokens is not None
        assert len(tokenizer(request.prompt)["input_ids"]) == request.input_tokens
        assert (request.max_tokens, request.ignore_eos, request.temperature) == (16, True, 0.0)
    ids = synthetic_requests(tokenizer, 3, TokenCounts("fixed", 9), TokenCounts("fixed", 2), as_token_ids=True)
    assert ids.prompt_forms == ("token_ids",) * 3 and ids.ids_reason == "token ids were asked for"
    special = set(tokenizer.all_special_ids)
    for request in ids.requests:
        # The <s> the tokenizer adds to a text prompt leads the ids too; the rest are ordinary.
        assert isinstance(request.prompt, tuple) and len(request.prompt) == 9
        assert request.prompt[0] == tokenizer.bos_token_id and not special & set(request.prompt[1:])


def test_cycle_repeats_with_fresh_ids(tokenizer: Any) -> None:
    requests = synthetic_requests(tokenizer, 2, TokenCounts("fixed", 5), TokenCounts("fixed", 2))
    next_request = requests.cycle("c")
    drawn = [next_request() for _ in range(5)]
    assert [r.request_id for r in drawn] == ["c0", "c1", "c2", "c3", "c4"]
    assert drawn[2].prompt == drawn[0].prompt and drawn[3].prompt == drawn[1].prompt


def _write_jsonl(path: Path, rows: list[Any]) -> Path:
    path.write_text("\n".join(json.dumps(row) for row in rows) + "\n\n")
    return path


SHAREGPT = [
    {
        "id": "a",
        "conversations": [
            {"from": "system", "value": "be brief"},
            {"from": "human", "value": "name three colours"},
            {"from": "gpt", "value": "red green blue"},
            {"from": "human", "value": "more"},
        ],
    },
    {"messages": [{"role": "user", "content": "hello"}, {"role": "assistant", "content": "hi"}]},
    {"prompt": "complete this"},
]


def test_sharegpt_jsonl_as_chat(tmp_path: Path, tokenizer: Any) -> None:
    path = _write_jsonl(tmp_path / "p.jsonl", SHAREGPT)
    loaded = load_prompt_file(path, tokenizer, output_tokens=TokenCounts("fixed", 7))
    first, second, third = loaded.requests
    assert first.messages == (ChatMessage("system", "be brief"), ChatMessage("user", "name three colours"))
    assert second.messages == (ChatMessage("user", "hello"),)
    assert third.messages == (ChatMessage("user", "complete this"),)
    assert {r.max_tokens for r in loaded.requests} == {7}
    expected = tokenizer.apply_chat_template(
        [{"role": "system", "content": "be brief"}, {"role": "user", "content": "name three colours"}],
        tokenize=True,
        add_generation_prompt=True,
    )["input_ids"]
    assert first.input_tokens == len(expected)


def test_reference_reply_sets_the_output_length(tmp_path: Path, tokenizer: Any) -> None:
    path = tmp_path / "array.json"
    path.write_text(json.dumps(SHAREGPT[:2]))
    loaded = load_prompt_file(path, tokenizer, output_tokens=None, api="completions", limit=2)
    assert loaded.requests[0].max_tokens == len(tokenizer("red green blue", add_special_tokens=False)["input_ids"])
    assert loaded.requests[0].prompt == "be brief\nname three colours"
    assert loaded.requests[0].input_tokens == len(tokenizer("be brief\nname three colours")["input_ids"])
    with pytest.raises(ConfigError, match=r"p\.jsonl:3: no reference reply"):
        load_prompt_file(_write_jsonl(tmp_path / "p.jsonl", SHAREGPT), tokenizer, output_tokens=None)


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ("{not json\n", r"bad\.jsonl:1: not a JSON line"),
        ('{"conversations": [{"from": "robot", "value": "x"}]}\n', "turn 0 needs from/role"),
        ('{"conversations": [{"from": "gpt", "value": "x"}]}\n', "no user turn"),
        ('{"other": 1}\n', "needs 'conversations'"),
        ("\n", "is empty"),  # blank lines only: empty, said before any line is parsed
    ],
)
def test_bad_prompt_files_say_where(tmp_path: Path, content: str, message: str) -> None:
    path = tmp_path / "bad.jsonl"
    path.write_text(content)
    with pytest.raises(ConfigError, match=message):
        load_prompt_file(path, None, output_tokens=TokenCounts("fixed", 1))


def test_missing_model_is_a_config_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="cannot load the tokenizer"):
        load_tokenizer(str(tmp_path / "nothing-here"))
