"""Recorded traces as request sets: the Mooncake and Azure formats, reuse built from hash ids, and
every bad file refused in one line before anything runs."""

from __future__ import annotations

import json
import random
from pathlib import Path
from typing import Any

import pytest

from harness.errors import ConfigError
from harness.runfile.engine import SharedPrefix, TokenCounts
from workloads.request_sets import load_tokenizer, synthetic_requests
from workloads.reuse import PrefixReuse, engine_block_size
from workloads.traces import build_trace_requests, read_trace


@pytest.fixture(scope="module")
def tokenizer(tmp_path_factory: pytest.TempPathFactory) -> Any:
    """A small byte-level BPE that adds <s> first, as Llama's does, trained and saved here."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, processors, trainers
    from transformers import PreTrainedTokenizerFast

    rng = random.Random(3)
    words = ["".join(rng.choice("abcdefghijklmnop") for _ in range(rng.randint(2, 6))) for _ in range(200)]
    tok = Tokenizer(models.BPE(unk_token="<unk>"))
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=500,
        special_tokens=["<unk>", "<s>", "</s>"],
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    tok.train_from_iterator([" ".join(rng.choice(words) for _ in range(10)) for _ in range(300)], trainer=trainer)
    tok.post_processor = processors.TemplateProcessing(single="<s> $A", special_tokens=[("<s>", 1)])
    folder = tmp_path_factory.mktemp("trace-tokenizer")
    PreTrainedTokenizerFast(tokenizer_object=tok, unk_token="<unk>", bos_token="<s>", eos_token="</s>").save_pretrained(
        folder
    )
    return load_tokenizer(str(folder))


def _mooncake(path: Path, rows: list[dict[str, Any]]) -> Path:
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return path


def test_mooncake_equal_hash_ids_are_equal_token_blocks(tmp_path: Path, tokenizer: Any) -> None:
    rows = [
        {"timestamp": 1000, "input_length": 40, "output_length": 3, "hash_ids": [7, 8, 9]},
        {"timestamp": 0, "input_length": 30, "output_length": 2, "hash_ids": [7, 8]},
        {"timestamp": 2500, "input_length": 44, "output_length": 5, "hash_ids": [7, 11, 12]},
    ]
    trace = read_trace(_mooncake(tmp_path / "t.jsonl", rows), block_size=16)
    assert trace.format == "mooncake" and trace.rows == 3
    assert [e.at_s for e in trace.entries] == [0.0, 1.0, 2.5]  # time order, from the first request
    built = build_trace_requests(trace, tokenizer, max_model_len=4096, speed=2.0)
    assert built.schedule_s == (0.0, 0.5, 1.25)  # --trace-speed 2 halves every gap
    a, b, c = (r.prompt for r in built.requests)
    assert isinstance(a, tuple) and isinstance(b, tuple) and isinstance(c, tuple)
    assert [len(a), len(b), len(c)] == [30, 40, 44]  # exactly input_length, the BOS included
    assert a[0] == b[0] == c[0] == tokenizer.bos_token_id
    assert b[:30] == a  # ids 7, 8 again: the same 1 + 16 + 13 tokens
    assert c[:17] == a[:17] and c[17:33] != b[17:33]  # only block 7 in common


def test_requests_over_the_context_are_counted_and_never_truncated(tmp_path: Path, tokenizer: Any) -> None:
    rows = [
        {"timestamp": 0, "input_length": 30, "output_length": 10, "hash_ids": [1, 2]},
        {"timestamp": 5, "input_length": 60, "output_length": 10, "hash_ids": [1, 2, 3, 4]},
    ]
    built = build_trace_requests(
        read_trace(_mooncake(tmp_path / "t.jsonl", rows), block_size=16), tokenizer, max_model_len=50
    )
    assert built.over_context == 1 and [len(r.prompt or ()) for r in built.requests] == [30]


def test_trace_limit_takes_the_first_rows(tmp_path: Path) -> None:
    rows = [{"timestamp": i, "input_length": 5, "output_length": 1, "hash_ids": [i]} for i in range(10)]
    trace = read_trace(_mooncake(tmp_path / "t.jsonl", rows), block_size=8, limit=4)
    assert len(trace.entries) == 4 and trace.rows == 4


def test_the_azure_csv_gives_times_and_lengths_and_prompts_that_share_nothing(tmp_path: Path, tokenizer: Any) -> None:
    path = tmp_path / "azure.csv"
    path.write_text(
        "TIMESTAMP,ContextTokens,GeneratedTokens\n"
        "2023-11-16 18:15:46.6805900,40,5\n"
        "2023-11-16 18:15:47.1805900,40,0\n"
        "2023-11-16 18:15:50.0000000,20,3\n"
    )
    trace = read_trace(path)
    assert trace.format == "azure" and trace.block_size is None
    assert [round(e.at_s, 6) for e in trace.entries] == [0.0, 0.5, pytest.approx(3.31941)]
    assert [e.output_tokens for e in trace.entries] == [5, 1, 3]  # no output recorded: one token
    built = build_trace_requests(trace, tokenizer, max_model_len=4096)
    reuse = PrefixReuse(8)
    assert [reuse.send(r.prompt) for r in built.requests if isinstance(r.prompt, tuple)] == [0, 0, 0]


def test_designed_reuse_counts_whole_blocks_and_never_the_last_token() -> None:
    reuse = PrefixReuse(4)
    assert reuse.send(list(range(10))) == 0
    assert reuse.send(list(range(10))) == 8  # 2 whole blocks; the third would hold the last token
    assert reuse.send([*range(8), 99, 98, 97]) == 8
    assert reuse.send([0, 1, 2, 3, 9, 9, 9, 9, 9]) == 4  # the second block differs: only the first
    assert reuse.send(list(range(8))) == 4  # all cached, but the last token's block is computed
    assert (reuse.designed, reuse.prompt_tokens) == (24, 10 + 10 + 11 + 9 + 8)
    assert reuse.cached(list(range(12))) == 8 and reuse.prompt_tokens == 48  # cached() records nothing


def test_the_block_size_asked_of_an_engine_is_read_from_its_arguments() -> None:
    assert engine_block_size(("--block-size", "32")) == 32
    assert engine_block_size(("--block-size=64",)) == 64
    assert engine_block_size(()) == 16


def test_a_shared_prefix_set_has_the_reuse_it_was_designed_with(tokenizer: Any) -> None:
    shared = SharedPrefix.parse("2:32")
    made = synthetic_requests(tokenizer, 6, TokenCounts.parse("50"), TokenCounts.parse("4"), shared_prefix=shared)
    prompts = [r.prompt for r in made.requests]
    assert all(isinstance(p, tuple) and len(p) == 50 for p in prompts)
    assert prompts[0][:33] == prompts[2][:33] == prompts[4][:33] != prompts[1][:33]
    assert prompts[0][33:] != prompts[2][33:]
    reuse = PrefixReuse(16)
    # Groups first seen by requests 0 and 1; each later one finds its group's 33 tokens: 2 blocks.
    assert [reuse.send(p) for p in prompts if isinstance(p, tuple)] == [0, 0, 32, 32, 32, 32]
    assert made.prompt_forms == ("token_ids",) * 6


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (None, "does not exist"),
        (b"\x00\x01\x02binary", "is binary"),
        (b"\xff\xfe{", "is not UTF-8"),
        (b"  \n\n", "is empty"),
        (b'{"timestamp": 0, "input_length": 5}\n', "needs output_length, hash_ids"),
        (b'{"timestamp": 0, "input_length": 5, "output_length": 1, "hash_ids": [1]\n', "not a JSON line"),
        (b'{"timestamp": -1, "input_length": 5, "output_length": 1, "hash_ids": [1]}\n', "timestamp must be"),
        (b'{"timestamp": 0, "input_length": 0, "output_length": 1, "hash_ids": [1]}\n', "input_length must be"),
        (b'{"timestamp": 0, "input_length": 600, "output_length": 1, "hash_ids": [1]}\n', "--trace-block-size"),
        (b'{"timestamp": 0, "input_length": 5, "output_length": 1, "hash_ids": ["a"]}\n', "hash_ids must be"),
        (b"a,b,c\n1,2,3\n", "not a trace this reads"),
        (b"TIMESTAMP,ContextTokens\n1,2\n", "header lacks GeneratedTokens"),
        (b"TIMESTAMP,ContextTokens,GeneratedTokens\nyesterday,2,3\n", "neither seconds nor a date-time"),
        (b"TIMESTAMP,ContextTokens,GeneratedTokens\n0,x,3\n", "ContextTokens must be"),
        (b"TIMESTAMP,ContextTokens,GeneratedTokens\n", "holds no requests"),
    ],
)
def test_a_bad_trace_is_one_line(tmp_path: Path, content: bytes | None, message: str) -> None:
    path = tmp_path / "trace.jsonl"
    if content is not None:
        path.write_bytes(content)
    with pytest.raises(ConfigError, match=message) as caught:
        read_trace(path)
    assert "\n" not in str(caught.value)


def test_an_enormous_file_is_refused_without_reading_it(tmp_path: Path) -> None:
    from workloads.input_files import MAX_INPUT_BYTES, read_text_file

    path = tmp_path / "big.jsonl"
    with path.open("wb") as f:
        f.truncate(MAX_INPUT_BYTES + 2**20)  # sparse: enormous to stat, nothing on disk to read
    with pytest.raises(ConfigError, match="is 513 MiB, more than the 512 MiB") as caught:
        read_trace(path)
    assert "\n" not in str(caught.value)
    with pytest.raises(ConfigError, match="is not a regular file"):
        read_text_file(tmp_path, "trace", "--trace")
