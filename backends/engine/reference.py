"""Correctness of an engine: its greedy tokens against the in-process fp32 reference.

An engine gives no logits to compare, so the check is on tokens: a few prompts from the request
set, decoded greedily by the engine (token ids returned by the server, ``return_token_ids``) and
by transformers in fp32 on the CPU from the same model folder. The figure is positional
agreement, the share of positions where both chose the same token, as for the in-process
decoders (``harness.scenarios.decoding``); after a first difference the contexts differ and later
tokens rarely agree, so a divergence early in a sequence costs the most, which is what a reader
should see. ``first_divergence`` says where each sequence parted.

Near-tied logits may legitimately flip under another summation order, and reduced precision
flips more of them, so the threshold depends on the engine's dtype; below it the cell carries a
warning (``TokenAgreement.warning``) before any timing is read.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from backends.engine.protocol import EngineBackend
    from backends.engine.records import RequestOutcome

__all__ = [
    "AGREEMENT_THRESHOLDS",
    "CHECK_PROMPTS",
    "CHECK_TOKENS",
    "REFERENCE",
    "TokenAgreement",
    "check_engine",
    "compare_tokens",
    "engine_greedy_tokens",
    "outcome_token_ids",
    "reference_greedy_tokens",
    "threshold_for",
]

REFERENCE = "transformers fp32 greedy on cpu"
#: Prompts and greedy tokens per prompt in the check: enough to see the KV cache and batching at
#: work, few enough that the CPU reference of a large model stays affordable.
CHECK_PROMPTS = 4
CHECK_TOKENS = 16
#: Least agreement that passes, by the engine's dtype. fp32 against fp32 differs only in
#: summation order; bf16/fp16 legitimately flip near-ties and everything after them.
AGREEMENT_THRESHOLDS: dict[str, float] = {"float32": 0.9, "fp32": 0.9}
REDUCED_PRECISION_THRESHOLD = 0.5


def threshold_for(dtype: str | None) -> float:
    return AGREEMENT_THRESHOLDS.get(dtype or "float32", REDUCED_PRECISION_THRESHOLD)


@dataclass(frozen=True)
class TokenAgreement:
    """The token check of one cell, as the run file keeps it."""

    agreement: float
    threshold: float
    prompts: int
    tokens_per_prompt: int
    first_divergence: tuple[int | None, ...]
    reference: str = REFERENCE

    @property
    def passed(self) -> bool:
        return self.agreement >= self.threshold

    @property
    def warning(self) -> str | None:
        if self.passed:
            return None
        return (
            f"correctness: the engine's greedy tokens agree with the {self.reference} reference on "
            f"{self.agreement:.0%} of positions, below the {self.threshold:.0%} threshold"
        )

    def to_dict(self) -> dict[str, Any]:
        return {
            "agreement": self.agreement,
            "threshold": self.threshold,
            "passed": self.passed,
            "prompts": self.prompts,
            "tokens_per_prompt": self.tokens_per_prompt,
            "first_divergence": list(self.first_divergence),
            "reference": self.reference,
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> TokenAgreement:
        return cls(
            agreement=float(data["agreement"]),
            threshold=float(data["threshold"]),
            prompts=int(data["prompts"]),
            tokens_per_prompt=int(data["tokens_per_prompt"]),
            first_divergence=tuple(data.get("first_divergence") or ()),
            reference=str(data.get("reference") or REFERENCE),
        )


def compare_tokens(
    engine: Sequence[Sequence[int] | None], reference: Sequence[Sequence[int]], threshold: float
) -> TokenAgreement:
    """Positional agreement of the engine's sequences with the reference's.

    A missing sequence (the request failed) or a short one counts its missing positions as
    disagreeing: a check that could not run must not pass.
    """
    if len(engine) != len(reference):
        raise ValueError(f"{len(engine)} engine sequences for {len(reference)} reference sequences")
    agree = total = 0
    divergence: list[int | None] = []
    for got, want in zip(engine, reference, strict=True):
        got = list(got or ())
        total += len(want)
        first: int | None = None
        for i, token in enumerate(want):
            if i < len(got) and got[i] == token:
                agree += 1
            elif first is None:
                first = i
        divergence.append(first)
    tokens = max((len(w) for w in reference), default=0)
    return TokenAgreement(agree / total if total else 0.0, threshold, len(reference), tokens, tuple(divergence))


def reference_greedy_tokens(model: str, prompts: Sequence[Sequence[int]], max_tokens: int) -> list[list[int]]:
    """Greedy tokens of the model folder ``model`` in fp32 on the CPU, end-of-sequence ignored.

    One prompt at a time: no padding, so nothing differs from what the engine is given.
    """
    import torch
    from transformers import AutoModelForCausalLM

    net = AutoModelForCausalLM.from_pretrained(model, dtype=torch.float32)
    net.train(False)
    out: list[list[int]] = []
    with torch.inference_mode():
        for prompt in prompts:
            ids = torch.tensor([list(prompt)], dtype=torch.long)
            generated = net.generate(
                ids,
                attention_mask=torch.ones_like(ids),
                max_new_tokens=max_tokens,
                min_new_tokens=max_tokens,
                do_sample=False,
                pad_token_id=net.config.eos_token_id,
            )
            out.append([int(t) for t in generated[0, ids.shape[1] :]])
    return out


def outcome_token_ids(outcome: RequestOutcome) -> list[int] | None:
    """The token ids a request streamed, or None when it failed or the server sent none."""
    if not outcome.ok:
        return None
    ids: list[int] = []
    for event in outcome.events:
        if event.token_ids is None:
            return None
        ids.extend(event.token_ids)
    return ids


async def engine_greedy_tokens(
    backend: EngineBackend, prompts: Sequence[Sequence[int]], max_tokens: int
) -> list[list[int] | None]:
    """Greedy tokens of the engine for token-id prompts (completions API, ``return_token_ids``)."""
    from backends.engine.records import EngineRequest

    requests = [
        EngineRequest(
            request_id=f"correctness-{i}",
            prompt=tuple(int(t) for t in prompt),
            max_tokens=max_tokens,
            ignore_eos=True,
            temperature=0.0,
            return_token_ids=True,
        )
        for i, prompt in enumerate(prompts)
    ]
    # One at a time, as the reference runs: the check is of the engine's arithmetic, not its batching.
    outcomes = []
    for request in requests:
        outcomes.append(await backend.submit(request).outcome())
    return [outcome_token_ids(o) for o in outcomes]


async def check_engine(
    backend: EngineBackend,
    model: str,
    prompts: Sequence[Sequence[int]],
    dtype: str | None,
    max_tokens: int = CHECK_TOKENS,
) -> TokenAgreement:
    """The engine's greedy tokens for ``prompts`` against the reference from the model folder."""
    import asyncio

    got = await engine_greedy_tokens(backend, prompts, max_tokens)
    want = await asyncio.to_thread(reference_greedy_tokens, model, prompts, max_tokens)
    return compare_tokens(got, want, threshold_for(dtype))
