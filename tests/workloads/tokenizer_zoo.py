"""A zoo of Hugging Face tokenizers built here, nothing downloaded: one of each family a served
model may bring, each with and without the special tokens its post-processor adds and a chat template.

The families are the ones models are published with: byte-level BPE (GPT-2, Llama 3, Qwen), small
and large; SentencePiece-style Unigram with byte fallback (T5, and Llama 2/Mistral's ``▁`` pieces
with ``<0xNN>`` byte tokens); WordPiece (BERT: ``[CLS] … [SEP]``, lower-casing normalizer);
character level (ByT5/CANINE-like: one token per character). Two more are the awkward cases: a
byte-level BPE of 512 ids saved without a decoder (decoding then joins raw ``Ġ`` tokens with
spaces, so decode-and-encode never round-trips), and a byte-fallback SentencePiece with no pieces
but bytes, where no text is shorter than four tokens. Each is saved with
``save_pretrained`` and loaded back the way a server loads it (``AutoTokenizer``), so what the
tests see is a folder like a model's.

The corpora are generated (seeded words over a small alphabet, some accented), so training is
fast and the zoo is the same on every machine; the large BPE has its ~50k merges trained on
enough distinct words to reach them in a few seconds.
"""

from __future__ import annotations

import json
import random
from dataclasses import dataclass
from pathlib import Path

__all__ = ["ZOO", "ZooEntry", "build", "build_zoo"]

#: A chat template in the Jinja form transformers and vLLM render (role: content lines).
CHAT_TEMPLATE = (
    "{% for m in messages %}{{ m['role'] }}: {{ m['content'] }}\n{% endfor %}"
    "{% if add_generation_prompt %}assistant:{% endif %}"
)


@dataclass(frozen=True)
class ZooEntry:
    """One tokenizer of the zoo: its family and whether it adds special tokens / has a chat template."""

    family: str
    specials: bool

    @property
    def name(self) -> str:
        return f"{self.family}-{'specials' if self.specials else 'plain'}"


FAMILIES = ("bpe-small", "bpe-large", "unigram-bytes", "wordpiece", "chars", "bpe-no-decoder", "bytes-only")
ZOO = tuple(ZooEntry(family, specials) for family in FAMILIES for specials in (True, False))


def _words(rng: random.Random, count: int, alphabet: str, low: int = 2, high: int = 8) -> list[str]:
    return ["".join(rng.choice(alphabet) for _ in range(rng.randint(low, high))) for _ in range(count)]


def _corpus(seed: int, vocabulary: int, lines: int) -> list[str]:
    rng = random.Random(seed)
    words = _words(rng, vocabulary, "abcdefghijklmnopqrstuvwxyzéüß", 2, 9)
    punctuation = ["", "", "", ",", ".", "?", "!"]
    return [" ".join(rng.choice(words) + rng.choice(punctuation) for _ in range(14)) for _ in range(lines)]


def build(entry: ZooEntry, folder: Path) -> Path:
    """Build ``entry``'s tokenizer and save it into ``folder`` (a model-like tokenizer folder)."""
    from transformers import PreTrainedTokenizerFast

    family = entry.family
    if family == "bpe-small":
        tok, kw = _byte_bpe(vocab_size=500, corpus=_corpus(1, 400, 400))
    elif family == "bpe-large":
        tok, kw = _byte_bpe_large(50_000)
    elif family == "unigram-bytes":
        tok, kw = _unigram_bytes()
    elif family == "wordpiece":
        tok, kw = _wordpiece()
    elif family == "chars":
        tok, kw = _chars()
    elif family == "bpe-no-decoder":
        tok, kw = _byte_bpe(vocab_size=512, corpus=_corpus(5, 400, 400))
        tok.decoder = None
    elif family == "bytes-only":
        tok, kw = _bytes_only()
    else:
        raise ValueError(f"no zoo family {family!r}; have {', '.join(FAMILIES)}")
    if entry.specials:
        from tokenizers import processors

        single = kw.pop("template")
        tok.post_processor = processors.TemplateProcessing(
            single=single, special_tokens=[(t, tok.token_to_id(t)) for t in kw.pop("template_tokens")]
        )
        kw["chat_template"] = CHAT_TEMPLATE
    else:
        kw.pop("template")
        kw.pop("template_tokens")
    wrapped = PreTrainedTokenizerFast(tokenizer_object=tok, **kw)
    folder.mkdir(parents=True, exist_ok=True)
    wrapped.save_pretrained(folder)
    # A model folder's config beside the tokenizer, as a served model has (vLLM reads it first).
    config = {"model_type": "llama", "architectures": ["LlamaForCausalLM"], "vocab_size": len(wrapped)}
    (folder / "config.json").write_text(json.dumps(config, indent=1) + "\n")
    return folder


def _byte_bpe(vocab_size: int, corpus: list[str]) -> tuple[object, dict[str, object]]:
    """GPT-2/Llama 3 style: byte-level pre-tokenizer and decoder, BOS and EOS added around."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers

    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size,
        special_tokens=["<|begin|>", "<|end|>"],
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    tok.train_from_iterator(corpus, trainer=trainer)
    return tok, {
        "bos_token": "<|begin|>",
        "eos_token": "<|end|>",
        "template": "<|begin|> $A <|end|>",
        "template_tokens": ["<|begin|>", "<|end|>"],
    }


def _byte_bpe_large(vocab_size: int) -> tuple[object, dict[str, object]]:
    """A GPT-2-sized byte-level BPE whose merges are written out, not trained (training 50k merges
    takes tens of seconds on two cores): every string of 2 to 4 symbols over ``Ġ`` (a space) and
    19 letters, shortest first, each merged from its prefix and last symbol, as trained merges are."""
    import itertools

    from tokenizers import Tokenizer, decoders, models, pre_tokenizers

    specials = ["<|begin|>", "<|end|>"]
    alphabet = pre_tokenizers.ByteLevel.alphabet()
    vocab = {t: i for i, t in enumerate([*specials, *sorted(alphabet)])}
    symbols = "Ġetaoinshrdlucmfwypv"
    merges: list[tuple[str, str]] = []
    for size in (2, 3, 4):
        for chars in itertools.product(symbols, repeat=size):
            if len(vocab) >= vocab_size:
                break
            word = "".join(chars)
            if "Ġ" in word[1:]:
                continue  # the pre-tokenizer splits before a space: no merge spans one
            merges.append((word[:-1], word[-1]))
            vocab[word] = len(vocab)
    tok = Tokenizer(models.BPE(vocab=vocab, merges=merges))
    tok.add_special_tokens(specials)
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    return tok, {
        "bos_token": "<|begin|>",
        "eos_token": "<|end|>",
        "template": "<|begin|> $A <|end|>",
        "template_tokens": ["<|begin|>", "<|end|>"],
    }


def _unigram_bytes() -> tuple[object, dict[str, object]]:
    """Llama 2/Mistral style SentencePiece: ``▁`` word pieces, ``<0xNN>`` byte fallback, ``<s>`` first.

    The vocabulary is written out (specials, 256 byte tokens, then scored pieces), as a converted
    SentencePiece model has it; what is not a piece falls back to its UTF-8 bytes."""
    from tokenizers import Regex, Tokenizer, decoders, models, normalizers, pre_tokenizers

    rng = random.Random(3)
    vocab: list[tuple[str, float]] = [("<unk>", 0.0), ("<s>", 0.0), ("</s>", 0.0)]
    vocab += [(f"<0x{b:02X}>", 0.0) for b in range(256)]
    pieces = {*"abcdefghijklmnopqrstuvwxyz", *(f"▁{w}" for w in _words(rng, 600, "abcdefghijklmnopqrstuvwxyz", 1, 6))}
    pieces |= set(_words(rng, 300, "abcdefghijklmnopqrstuvwxyz", 2, 4)) | {"▁", ",", "."}
    vocab += [(p, -float(len(p)) - rng.random()) for p in sorted(pieces)]
    tok = Tokenizer(models.Unigram(vocab, unk_id=0, byte_fallback=True))
    tok.normalizer = normalizers.Sequence([normalizers.Prepend("▁"), normalizers.Replace(Regex(" "), "▁")])
    tok.pre_tokenizer = pre_tokenizers.Split("▁", behavior="merged_with_next")
    tok.decoder = decoders.Sequence(
        [decoders.Replace("▁", " "), decoders.ByteFallback(), decoders.Fuse(), decoders.Strip(" ", 1, 0)]
    )
    return tok, {
        "unk_token": "<unk>",
        "bos_token": "<s>",
        "eos_token": "</s>",
        "template": "<s> $A",
        "template_tokens": ["<s>"],
    }


def _bytes_only() -> tuple[object, dict[str, object]]:
    """SentencePiece with byte fallback and no pieces but the 256 bytes: every character is its
    UTF-8 bytes, and the ``▁`` put before the text costs three, so no text is shorter than four
    tokens (plus ``<s>``): a prompt of 2 or 3 tokens has to be sent as ids."""
    from tokenizers import Regex, Tokenizer, decoders, models, normalizers, pre_tokenizers

    vocab: list[tuple[str, float]] = [("<unk>", 0.0), ("<s>", 0.0), ("</s>", 0.0)]
    vocab += [(f"<0x{b:02X}>", -1.0) for b in range(256)]
    tok = Tokenizer(models.Unigram(vocab, unk_id=0, byte_fallback=True))
    tok.normalizer = normalizers.Sequence([normalizers.Prepend("▁"), normalizers.Replace(Regex(" "), "▁")])
    tok.pre_tokenizer = pre_tokenizers.Split("▁", behavior="merged_with_next")
    tok.decoder = decoders.Sequence(
        [decoders.Replace("▁", " "), decoders.ByteFallback(), decoders.Fuse(), decoders.Strip(" ", 1, 0)]
    )
    return tok, {
        "unk_token": "<unk>",
        "bos_token": "<s>",
        "eos_token": "</s>",
        "template": "<s> $A",
        "template_tokens": ["<s>"],
    }


def _wordpiece() -> tuple[object, dict[str, object]]:
    """BERT style: lower-casing normalizer, ``##`` continuations, ``[CLS] … [SEP]``."""
    from tokenizers import Tokenizer, decoders, models, normalizers, pre_tokenizers, trainers

    tok = Tokenizer(models.WordPiece(unk_token="[UNK]"))
    tok.normalizer = normalizers.BertNormalizer(lowercase=True)
    tok.pre_tokenizer = pre_tokenizers.BertPreTokenizer()
    tok.decoder = decoders.WordPiece()
    trainer = trainers.WordPieceTrainer(
        vocab_size=1500, special_tokens=["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"], show_progress=False
    )
    tok.train_from_iterator(_corpus(4, 500, 500), trainer=trainer)
    return tok, {
        "unk_token": "[UNK]",
        "pad_token": "[PAD]",
        "cls_token": "[CLS]",
        "sep_token": "[SEP]",
        "mask_token": "[MASK]",
        "template": "[CLS] $A [SEP]",
        "template_tokens": ["[CLS]", "[SEP]"],
    }


def _chars() -> tuple[object, dict[str, object]]:
    """One token per character (a BPE with no merges): every character its own id, spaces too."""
    from tokenizers import Tokenizer, models

    alphabet = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789 .,;:!?'-\n"
    vocab = {"<unk>": 0, "<bos>": 1, "<eos>": 2, **{c: i + 3 for i, c in enumerate(alphabet)}}
    tok = Tokenizer(models.BPE(vocab=vocab, merges=[], unk_token="<unk>"))
    return tok, {
        "unk_token": "<unk>",
        "bos_token": "<bos>",
        "eos_token": "<eos>",
        "template": "<bos> $A <eos>",
        "template_tokens": ["<bos>", "<eos>"],
    }


def build_zoo(root: Path) -> dict[str, Path]:
    """Every zoo tokenizer, each in its own folder under ``root``, by name."""
    return {entry.name: build(entry, root / entry.name) for entry in ZOO}
