"""Prompts of an exact number of input tokens for any Hugging Face tokenizer: text where it fits,
token ids where it cannot.

A serving engine counts a text prompt with the model's tokenizer, special tokens included
(``tokenizer(text)``, as vLLM's completions endpoint does), so a prompt of N tokens is a text that
encodes to N ids. Decoding ids and encoding the result is not an identity for most tokenizers
(BPE merges across the joins, a decoder may be missing or lossy, a normalizer may rewrite), so
the text is *fitted*: assembled from pieces that each encode back to their own id alone, then
lengthened or shortened, piece by piece, until the final text itself encodes to N. Three ways of
joining pieces are tried, because tokenizers disagree on what a join means: the tokenizer's own
``decode`` (byte-level BPE, SentencePiece ``▁``, WordPiece ``##``), plain concatenation (a
tokenizer without a decoder joins decoded tokens with spaces), and a space between pieces.

Where no text fits (the shortest text is already longer than asked, or no token decodes to text
that encodes back), the prompt is the ids themselves: the completions API takes a list of ints as
``prompt`` and the server then tokenizes nothing, so the count is exact by construction. The ids
carry the special tokens the tokenizer would add (its ``BOS``, ``[CLS] … [SEP]``), so the model
sees what a text prompt would give it. Text stays the default: an entry is ids only where text
could not be fitted, and the request set records which entries are which.
"""

from __future__ import annotations

import random
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Literal

from harness.errors import ConfigError

if TYPE_CHECKING:
    from transformers import PreTrainedTokenizerBase

__all__ = ["ExactPrompt", "PromptBuilder", "PromptForm"]

PromptForm = Literal["text", "token_ids"]

#: Encodes of one joining method before the next is tried (each is one ``tokenizer(text)`` call).
_ROUNDS = 40
#: Draws of an ordinary id before a tokenizer is taken to have no pieces at all.
_DRAWS = 2000


@dataclass(frozen=True)
class ExactPrompt:
    """A prompt of exactly ``tokens`` input tokens: ``text`` for the server to tokenize, or the ids.

    ``reason`` says why an ids prompt is not text (None for text)."""

    tokens: int
    text: str | None = None
    token_ids: tuple[int, ...] | None = None
    reason: str | None = None

    def __post_init__(self) -> None:
        if (self.text is None) == (self.token_ids is None):
            raise ValueError("an exact prompt is either text or token ids")
        if self.token_ids is not None and len(self.token_ids) != self.tokens:
            raise ValueError(f"{len(self.token_ids)} token ids for a prompt of {self.tokens} tokens")

    @property
    def form(self) -> PromptForm:
        return "text" if self.text is not None else "token_ids"

    @property
    def prompt(self) -> str | tuple[int, ...]:
        """What goes in the request's ``prompt``."""
        if self.text is not None:
            return self.text
        assert self.token_ids is not None
        return self.token_ids


class PromptBuilder:
    """Exact prompts for one tokenizer.

    ``ordinary`` are the ids that are not special. Text is fitted from *pieces*: ordinary ids whose
    decoded text alone is printable and encodes back to that one id (strict pieces) or, for a
    tokenizer that has none (every text gains a ``▁`` of three byte tokens, say), whose decoded
    text is printable at all. Pieces are drawn by rejection (draw an ordinary id, keep it if it
    is a piece), each id checked once and remembered, so a 50k vocabulary costs only the ids a
    prompt draws, and the draws are the same for a seed whatever was checked before.
    """

    def __init__(self, tokenizer: PreTrainedTokenizerBase) -> None:
        self.tokenizer = tokenizer
        empty = list(tokenizer("")["input_ids"])
        self.specials = len(empty)
        special = set(tokenizer.all_special_ids)
        self.ordinary = [i for i in range(len(tokenizer)) if i not in special]
        self._texts: dict[int, str | None] = {}
        self._strict: set[int] = set()
        self._found: dict[bool, bool] = {}
        self._prefix, self._suffix = self._special_frame(empty)

    def count(self, text: str) -> int:
        """Input tokens of ``text`` as the server counts them (special tokens included)."""
        return len(self.tokenizer(text)["input_ids"])

    def build(self, tokens: int, rng: random.Random) -> ExactPrompt:
        """A prompt of exactly ``tokens`` tokens: fitted text, else ids (with the reason)."""
        body = tokens - self.specials
        if body < 1:
            raise ConfigError(
                f"a prompt of {tokens} tokens leaves no room after the {self.specials} special tokens this "
                f"tokenizer adds; ask for at least {self.specials + 1} (--prompt-tokens)"
            )
        strict = self._has_pieces(strict=True)
        if not strict and not self._has_pieces(strict=False):
            return self.ids(tokens, rng, "no ordinary token of this tokenizer decodes to printable text")
        for join in self._joins():
            text = self._fit(tokens, body, rng, join, strict)
            if text is not None:
                return ExactPrompt(tokens, text=text)
        return self.ids(tokens, rng, f"no text this tokenizer encodes to exactly {tokens} tokens was found")

    def ids(self, tokens: int, rng: random.Random, reason: str) -> ExactPrompt:
        """``tokens`` ids: the special tokens the tokenizer adds around random ordinary ids."""
        body = tokens - len(self._prefix) - len(self._suffix)
        if not self.ordinary or body < 1:
            raise ConfigError(
                f"cannot build a prompt of {tokens} tokens from this tokenizer's ordinary tokens; "
                "give your own prompts with --prompts FILE"
            )
        drawn = tuple(rng.choice(self.ordinary) for _ in range(body))
        return ExactPrompt(tokens, token_ids=(*self._prefix, *drawn, *self._suffix), reason=reason)

    def _has_pieces(self, *, strict: bool) -> bool:
        """Whether any piece turns up in ``_DRAWS`` draws (a probe of its own: the prompts' draws
        stay the same whatever it finds)."""
        if strict not in self._found:
            self._found[strict] = bool(self._pieces(random.Random(0), 1, strict))
        return self._found[strict]

    def _fit(
        self, tokens: int, body: int, rng: random.Random, join: Callable[[Sequence[int]], str], strict: bool
    ) -> str | None:
        """Lengthen or shorten a random run of pieces until its joined text encodes to ``tokens``.

        Each round moves by the difference divided by the tokens a piece has cost so far (at least
        one piece); when one piece more overshoots and one fewer falls short, the last piece is
        swapped for another draw instead."""
        units = self._pieces(rng, body, strict)
        last = 0
        for _ in range(_ROUNDS):
            if not units:
                return None
            text = join(units)
            have = self.count(text)
            if have == tokens:
                return text
            per_piece = max(have - self.specials, 1) / len(units)
            step = int((tokens - have) / per_piece) or (1 if tokens > have else -1)
            if abs(step) == 1 and step == -last:
                units[-1:] = self._pieces(rng, 1, strict)  # one piece over, one under: try another
                last = 0
                continue
            last = step
            if step > 0:
                units.extend(self._pieces(rng, step, strict))
            elif len(units) + step >= 1:
                del units[step:]
            else:
                units = self._pieces(rng, 1, strict)
        return None

    def _pieces(self, rng: random.Random, count: int, strict: bool) -> list[int]:
        """``count`` random pieces (fewer only when ``_DRAWS`` draws found none at all).

        Candidates are drawn in batches and the unchecked ones checked in one batch call; the
        draws depend only on the seed and on which ids are pieces, never on what was cached."""
        out: list[int] = []
        drawn = 0
        while len(out) < count and self.ordinary and not (drawn >= _DRAWS and not out):
            batch = [rng.choice(self.ordinary) for _ in range(max(2 * (count - len(out)), 16))]
            drawn += len(batch)
            self._check(batch)
            kept = [c for c in batch if (c in self._strict if strict else self._texts[c] is not None)]
            out.extend(kept[: count - len(out)])
        return out

    def _joins(self) -> tuple[Callable[[Sequence[int]], str], ...]:
        texts = self._texts

        def decoded(units: Sequence[int]) -> str:
            return str(self.tokenizer.decode(list(units), skip_special_tokens=True))

        def concatenated(units: Sequence[int]) -> str:
            return "".join(texts[u] or "" for u in units)

        def spaced(units: Sequence[int]) -> str:
            return " ".join(texts[u] or "" for u in units)

        return decoded, concatenated, spaced

    def _check(self, tokens: Sequence[int]) -> None:
        """Decide, once per id, whether each of ``tokens`` is a piece: its decoded text alone is
        printable, and (strict) encodes back to exactly that id; one batch decode and encode."""
        new = sorted({t for t in tokens if t not in self._texts})
        if not new:
            return
        texts = [str(t) for t in self.tokenizer.batch_decode([[t] for t in new], skip_special_tokens=True)]
        encoded = self.tokenizer(texts, add_special_tokens=False)["input_ids"]
        for token, text, ids in zip(new, texts, encoded, strict=True):
            printable = bool(text.strip()) and "\ufffd" not in text and text.isprintable()
            self._texts[token] = text if printable else None
            if printable and list(ids) == [token]:
                self._strict.add(token)

    def _special_frame(self, empty: list[int]) -> tuple[tuple[int, ...], tuple[int, ...]]:
        """The special ids the tokenizer puts before and after a text's own ids.

        Found by encoding one piece with and without special tokens; where no piece round-trips,
        the ids of the empty text are taken as all leading (a BOS), which is the common case."""
        for piece in self._pieces(random.Random(0), 20, strict=True):
            text = self._texts[piece]
            assert text is not None
            plain = list(self.tokenizer(text, add_special_tokens=False)["input_ids"])
            full = list(self.tokenizer(text)["input_ids"])
            for start in range(len(full) - len(plain) + 1):
                if full[start : start + len(plain)] == plain and len(full) - len(plain) == len(empty):
                    return tuple(full[:start]), tuple(full[start + len(plain) :])
        return tuple(empty), ()
