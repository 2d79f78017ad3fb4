"""The tiny Llama folder engines serve: built locally, loadable the ordinary way, the same every time."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest

from workloads.tiny_llm import TinyLlamaSpec, build_tiny_llama

SMALL = TinyLlamaSpec(vocab_size=600, hidden=64, heads=1, kv_heads=1, intermediate=128, max_positions=256)


def _digest(folder: Path) -> str:
    return hashlib.sha256((folder / "model.safetensors").read_bytes()).hexdigest()


@pytest.mark.slow
def test_the_folder_loads_with_transformers_and_is_reproducible(tmp_path: Path) -> None:
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    first = build_tiny_llama(tmp_path / "a", SMALL)
    second = build_tiny_llama(tmp_path / "b", SMALL)
    assert _digest(first) == _digest(second)
    assert (first / "tokenizer.json").read_text() == (second / "tokenizer.json").read_text()

    tokenizer = AutoTokenizer.from_pretrained(first)
    ids = tokenizer("the cat sat on the mat")["input_ids"]
    assert ids[0] == tokenizer.bos_token_id and tokenizer.unk_token_id not in ids
    assert tokenizer.decode(ids, skip_special_tokens=True) == "the cat sat on the mat"
    assert tokenizer.apply_chat_template(
        [{"role": "user", "content": "hi"}], tokenize=False, add_generation_prompt=True
    )

    model = AutoModelForCausalLM.from_pretrained(first, dtype=torch.float32)
    config = model.config
    assert (config.num_hidden_layers, config.hidden_size, config.vocab_size) == (2, 64, len(tokenizer))
    with torch.inference_mode():
        logits = model(torch.tensor([ids])).logits[0, -1]
    top2 = logits.topk(2).values
    # Wide weights: the greedy choice is decided by a clear margin, not a near-tie.
    assert float(top2[0] - top2[1]) > 1e-3 and float(logits.std()) > 0.5
