"""Exact-length prompts for any tokenizer: text wherever text fits, ids only where it cannot.

Every tokenizer of the zoo (``tests.workloads.tokenizer_zoo``) builds prompts of 8, 32, 128 and
480 tokens; each is counted here with the tokenizer called as a server calls it. The engine stage
counts the same prompts with vLLM's own code (``test_exact_prompts_vllm.py``).
"""

from __future__ import annotations

import random
from pathlib import Path
from typing import Any

import pytest

from harness.errors import ConfigError
from harness.runfile.engine import TokenCounts
from tests.workloads.tokenizer_zoo import ZOO, build_zoo
from workloads.exact_prompts import ExactPrompt, PromptBuilder
from workloads.request_sets import load_tokenizer, synthetic_requests

LENGTHS = (8, 32, 128, 480)


@pytest.fixture(scope="module")
def folders(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    return build_zoo(tmp_path_factory.mktemp("zoo"))


@pytest.fixture(scope="module")
def zoo(folders: dict[str, Path]) -> dict[str, Any]:
    return {name: load_tokenizer(str(folder)) for name, folder in folders.items()}


@pytest.mark.parametrize("name", [entry.name for entry in ZOO])
def test_every_zoo_tokenizer_gets_exact_text_prompts(zoo: dict[str, Any], name: str) -> None:
    tokenizer = zoo[name]
    for tokens in LENGTHS:
        requests = synthetic_requests(tokenizer, 2, TokenCounts("fixed", tokens), TokenCounts("fixed", 4), seed=tokens)
        # Text wherever it can be fitted: every one of these lengths can, in every family.
        assert requests.prompt_forms == ("text",) * 2 and requests.ids_reason is None
        for request in requests.requests:
            assert isinstance(request.prompt, str)
            assert len(tokenizer(request.prompt)["input_ids"]) == tokens == request.input_tokens


def test_the_old_builder_failed_where_the_new_one_fits(zoo: dict[str, Any]) -> None:
    """A tokenizer without a decoder joins decoded tokens with spaces, so decode-then-encode (the
    builder this replaced) never settles; fitting from pieces joined without spaces does."""
    tokenizer = zoo["chars-plain"]
    ids = [tokenizer.convert_tokens_to_ids(c) for c in "abc"]
    assert tokenizer.decode(ids) == "a b c" and len(tokenizer("a b c")["input_ids"]) == 5
    built = PromptBuilder(tokenizer).build(32, random.Random(0))
    assert built.text is not None and len(tokenizer(built.text)["input_ids"]) == 32


def test_ids_where_no_text_is_that_short(zoo: dict[str, Any]) -> None:
    """Byte-fallback SentencePiece with only bytes: ``▁`` alone costs three tokens, so no text is
    under 5 tokens with ``<s>``; those prompts go as ids, ``<s>`` first, and say why."""
    tokenizer = zoo["bytes-only-specials"]
    builder = PromptBuilder(tokenizer)
    for tokens in (2, 3, 4):
        built = builder.build(tokens, random.Random(tokens))
        assert built.form == "token_ids" and built.token_ids is not None and len(built.token_ids) == tokens
        assert built.token_ids[0] == tokenizer.bos_token_id
        assert not set(tokenizer.all_special_ids) & set(built.token_ids[1:])
        assert built.reason == f"no text this tokenizer encodes to exactly {tokens} tokens was found"
    mixed = synthetic_requests(tokenizer, 40, TokenCounts("uniform", 2, 9), TokenCounts("fixed", 4), seed=1)
    for request, form in zip(mixed.requests, mixed.prompt_forms, strict=True):
        assert request.input_tokens is not None
        # Every entry that can be text is text; only the too-short ones are ids.
        assert form == ("token_ids" if request.input_tokens <= 4 else "text")
        sent = len(request.prompt) if isinstance(request.prompt, tuple) else len(tokenizer(request.prompt)["input_ids"])
        assert sent == request.input_tokens
    assert set(mixed.prompt_forms) == {"text", "token_ids"}
    assert mixed.ids_reason is not None and "no text this tokenizer encodes to exactly" in mixed.ids_reason


def test_ids_carry_the_special_tokens_around_them(zoo: dict[str, Any]) -> None:
    """``[CLS] … [SEP]`` for WordPiece: an ids prompt is framed as the tokenizer frames text."""
    tokenizer = zoo["wordpiece-specials"]
    built = PromptBuilder(tokenizer).ids(10, random.Random(0), "asked")
    assert built.token_ids is not None
    assert (built.token_ids[0], built.token_ids[-1]) == (tokenizer.cls_token_id, tokenizer.sep_token_id)


def test_a_prompt_with_no_room_names_the_way_out(zoo: dict[str, Any]) -> None:
    with pytest.raises(ConfigError, match=r"after the 2 special tokens this tokenizer adds; ask for at least 3"):
        PromptBuilder(zoo["wordpiece-specials"]).build(2, random.Random(0))


def test_prompts_are_the_same_for_a_seed_whatever_was_checked_before(zoo: dict[str, Any]) -> None:
    tokenizer = zoo["bpe-large-specials"]
    warm = PromptBuilder(tokenizer)
    warm.build(128, random.Random(5))
    assert warm.build(32, random.Random(9)) == PromptBuilder(tokenizer).build(32, random.Random(9))


def test_an_exact_prompt_is_text_or_ids_of_its_length() -> None:
    with pytest.raises(ValueError, match="either text or token ids"):
        ExactPrompt(3)
    with pytest.raises(ValueError, match="2 token ids for a prompt of 3 tokens"):
        ExactPrompt(3, token_ids=(1, 2))
    assert ExactPrompt(2, token_ids=(1, 2)).prompt == (1, 2) and ExactPrompt(2, text="x").form == "text"


def test_zoo_folders_are_model_folders(folders: dict[str, Path]) -> None:
    """Each zoo folder is what a served model brings: a config and a tokenizer AutoTokenizer loads."""
    assert sorted(folders) == sorted(entry.name for entry in ZOO)
    for folder in folders.values():
        assert (folder / "config.json").is_file() and (folder / "tokenizer.json").is_file()
