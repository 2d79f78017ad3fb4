"""A tiny Llama model *folder* for serving engines, built locally: nothing is downloaded.

Engines load a model the ordinary way, from a folder with ``config.json``, weights and a
tokenizer. This builds one: a two-layer ``LlamaForCausalLM`` with random weights and a small
byte-level BPE tokenizer trained on a generated corpus, both saved with ``save_pretrained``.
It is what CI serves with vLLM's CPU build and what the engine tests compare tokens against.

The weights are drawn wider than a trained model's (``initializer_range``) so the greedy choice
is decided by clear logit margins, not by near-ties that any change of summation order flips:
the token-agreement check between an engine and the transformers reference should then test the
engine, not the rounding.

Run ``python -m workloads.tiny_llm DIR`` to build it (``scripts/vllm-cpu.sh`` does).
"""

from __future__ import annotations

import sys
from dataclasses import dataclass
from pathlib import Path

__all__ = ["TINY_LLAMA", "TinyLlamaSpec", "build_tiny_llama"]


@dataclass(frozen=True)
class TinyLlamaSpec:
    """The shape of the tiny model; head size 64 is one every vLLM CPU attention kernel supports.

    Two layers, but wide enough (22M parameters, 88 MB) that a decode step costs a few
    milliseconds on one core: narrower, vLLM generates faster than its API server streams, and
    whole outputs arrive in one burst with no inter-token gaps left to measure.
    """

    vocab_size: int = 2048
    hidden: int = 768
    layers: int = 2
    heads: int = 12
    kv_heads: int = 4
    intermediate: int = 3072
    max_positions: int = 2048
    initializer_range: float = 0.25
    seed: int = 0


TINY_LLAMA = TinyLlamaSpec()

_SPECIAL = ("<unk>", "<s>", "</s>")
#: A chat template so chat completions work; the tokenizer adds ``<s>`` itself for completions.
_CHAT_TEMPLATE = (
    "{% for message in messages %}{{ message['role'] }}: {{ message['content'] }}\n{% endfor %}"
    "{% if add_generation_prompt %}assistant:{% endif %}"
)


def _corpus(seed: int, lines: int = 4000) -> list[str]:
    """Deterministic English-like text: enough distinct words for a few thousand merges."""
    import random

    rng = random.Random(seed)
    syllables = [c + v for c in "bcdfghklmnprstvwz" for v in ("a", "e", "i", "o", "u", "ai", "ou")]
    words = ["".join(rng.choice(syllables) for _ in range(rng.randint(1, 4))) for _ in range(3000)]
    words += "the a of and to in is it that for on with as was at by be this from or an are not".split()
    return [" ".join(rng.choice(words) for _ in range(rng.randint(5, 20))) + "." for _ in range(lines)]


def _tokenizer(spec: TinyLlamaSpec) -> object:
    """A byte-level BPE (any text encodes, nothing is ``<unk>``) wrapped for ``save_pretrained``."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, processors, trainers
    from transformers import PreTrainedTokenizerFast

    tok = Tokenizer(models.BPE(unk_token="<unk>"))
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=spec.vocab_size,
        special_tokens=list(_SPECIAL),
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    tok.train_from_iterator(_corpus(spec.seed), trainer=trainer)
    bos = tok.token_to_id("<s>")
    tok.post_processor = processors.TemplateProcessing(
        single="<s> $A", pair="<s> $A <s> $B", special_tokens=[("<s>", bos)]
    )
    return PreTrainedTokenizerFast(  # type: ignore[no-untyped-call]
        tokenizer_object=tok,
        unk_token="<unk>",
        bos_token="<s>",
        eos_token="</s>",
        chat_template=_CHAT_TEMPLATE,
        model_max_length=spec.max_positions,
    )


def build_tiny_llama(folder: str | Path, spec: TinyLlamaSpec = TINY_LLAMA) -> Path:
    """Build and save the model folder (config, safetensors weights, tokenizer); returns its path."""
    import torch
    from transformers import LlamaConfig, LlamaForCausalLM

    path = Path(folder)
    path.mkdir(parents=True, exist_ok=True)
    tokenizer = _tokenizer(spec)
    vocab = len(tokenizer)  # type: ignore[arg-type]
    config = LlamaConfig(
        vocab_size=vocab,
        hidden_size=spec.hidden,
        intermediate_size=spec.intermediate,
        num_hidden_layers=spec.layers,
        num_attention_heads=spec.heads,
        num_key_value_heads=spec.kv_heads,
        max_position_embeddings=spec.max_positions,
        initializer_range=spec.initializer_range,
        tie_word_embeddings=False,
        bos_token_id=tokenizer.bos_token_id,  # type: ignore[attr-defined]
        eos_token_id=tokenizer.eos_token_id,  # type: ignore[attr-defined]
        dtype="float32",
    )
    torch.manual_seed(spec.seed)
    model = LlamaForCausalLM(config)
    model.train(False)
    model.save_pretrained(path)
    tokenizer.save_pretrained(path)  # type: ignore[attr-defined]
    return path


if __name__ == "__main__":
    if len(sys.argv) != 2:
        sys.exit("usage: python -m workloads.tiny_llm DIR")
    print(build_tiny_llama(sys.argv[1]))
