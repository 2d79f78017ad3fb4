"""Correctness of an engine before any timing counts: its greedy tokens against transformers in fp32.

The same prompt token ids go to the engine (as a completions prompt of ids, so the engine adds no
special tokens of its own) and to the model folder loaded with ``transformers`` in fp32 on the CPU.
Both decode greedily for the same number of tokens with end-of-sequence ignored; the agreement is
the fraction of positions where the tokens are equal, as for in-process decoders
(``decoding.DecoderCheck.token_agreement``). The engine's token ids come from the stream itself
(``return_token_ids``); an engine that does not send them cannot be checked, and the cell says so
instead of comparing re-tokenized text (BPE does not round-trip).

Greedy decoding of an engine can legitimately part from the reference where two logits are
nearly tied (other kernels sum in another order), and everything after a split differs; the
threshold is therefore on agreement, with the position of each first divergence recorded.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from backends.engine.client import OpenAIClient
from backends.engine.records import RequestOutcome
from harness.errors import ConfigError
from harness.runfile.engine import EngineRequest
from harness.runfile.records import EngineAgreement
from harness.scenarios.engine import EngineTarget
from harness.scenarios.engine_load import run_closed_loop

__all__ = [
    "AGREEMENT_THRESHOLD",
    "CHECK_PROMPTS",
    "CHECK_TOKENS",
    "REDUCED_PRECISION_THRESHOLD",
    "EngineAgreement",
    "agreement",
    "check_engine",
    "engine_greedy",
    "reference_greedy",
    "threshold_for",
]

#: Prompts and tokens per prompt of the check: enough to see a systematic error, cheap on a CPU.
CHECK_PROMPTS = 4
CHECK_TOKENS = 16
#: Below this token agreement the cell carries a warning and its correctness fails (fp32 engine:
#: only the summation order differs from the reference, so near-ties alone may flip a token).
AGREEMENT_THRESHOLD = 0.9
#: The same for an engine in bf16/fp16, which legitimately flips more near-ties (and all after them).
REDUCED_PRECISION_THRESHOLD = 0.5


def threshold_for(dtype: str | None) -> float:
    """The agreement an engine running ``dtype`` must reach (None: the engine's fp32 default)."""
    return AGREEMENT_THRESHOLD if dtype in (None, "fp32", "float32") else REDUCED_PRECISION_THRESHOLD


def agreement(
    engine: Sequence[Sequence[int]], reference: Sequence[Sequence[int]], threshold: float = AGREEMENT_THRESHOLD
) -> EngineAgreement:
    """Position-wise agreement of two sets of token sequences of the reference's length.

    A missing engine token (a shorter sequence) counts as a disagreement.
    """
    if len(engine) != len(reference) or not reference:
        raise ValueError(f"{len(engine)} engine sequences for {len(reference)} reference sequences")
    width = len(reference[0])
    same = 0
    firsts: list[int | None] = []
    for got, want in zip(engine, reference, strict=True):
        matches = [i < len(got) and got[i] == want[i] for i in range(len(want))]
        same += sum(matches)
        firsts.append(next((i for i, ok in enumerate(matches) if not ok), None))
    return EngineAgreement(len(reference), width, same / (len(reference) * width), tuple(firsts), threshold)


def reference_greedy(model: str, prompts: Sequence[Sequence[int]], tokens: int) -> list[list[int]]:
    """Greedy continuations of ``prompts`` by the model folder in fp32 on the CPU (EOS ignored)."""
    import torch
    from transformers import AutoModelForCausalLM

    try:
        net: Any = AutoModelForCausalLM.from_pretrained(model, dtype=torch.float32)
    except (OSError, ValueError) as exc:
        detail = " ".join(str(exc).split())[:300]
        raise ConfigError(f"cannot load model {model!r} for the reference: {detail}") from None
    net.eval()
    out: list[list[int]] = []
    # The whole sequence again at every step: slower than a KV cache, but the plainest greedy
    # decoding there is, the same in every transformers version; the check is short.
    with torch.inference_mode():
        for prompt in prompts:
            ids = list(prompt)
            for _ in range(tokens):
                ids.append(int(net(torch.tensor([ids], dtype=torch.long)).logits[0, -1].argmax()))
            out.append(ids[len(prompt) :])
    return out


def engine_greedy(
    target: EngineTarget, prompts: Sequence[Sequence[int]], tokens: int, limit_s: float | None = None
) -> list[RequestOutcome]:
    """The engine's greedy continuations of ``prompts`` (as token ids), one request at a time,
    all ended within ``limit_s`` of the first being sent (None: the client's own deadlines)."""
    requests = iter(
        EngineRequest(
            f"check{i}", max_tokens=tokens, prompt=tuple(p), ignore_eos=True, temperature=0.0, return_token_ids=True
        )
        for i, p in enumerate(prompts)
    )

    async def run(client: OpenAIClient) -> list[RequestOutcome]:
        loaded = await run_closed_loop(client, lambda: next(requests), 1, len(prompts))
        return list(loaded.outcomes)

    return target.load(run, connections=1, limit_s=limit_s)


def check_engine(
    target: EngineTarget,
    model: str,
    *,
    prompts: int = CHECK_PROMPTS,
    tokens: int = CHECK_TOKENS,
    threshold: float = AGREEMENT_THRESHOLD,
    isolate: bool = False,
    limit_s: float | None = None,
) -> EngineAgreement:
    """Compare the engine with the reference on the first ``prompts`` prompts of the request set.

    ``isolate`` (for a load whose prefix reuse is measured) sends each prompt's ids after the first
    in reverse order: the same tokens and length, but no block the load will send, so the check
    leaves nothing in the engine's prefix cache that the load could hit.

    Raises ``ConfigError`` when the engine fails the requests. An engine that sends no token ids is
    measured all the same, its agreement ``unchecked`` with the reason (the cell then warns), as a
    backend whose output disagrees is.
    """
    from workloads.request_sets import load_tokenizer

    tokenizer = load_tokenizer(model)
    prompt_ids: list[list[int]] = []
    for request in target.requests.requests[:prompts]:
        if isinstance(request.prompt, tuple):
            prompt_ids.append(list(request.prompt))
        elif isinstance(request.prompt, str):
            prompt_ids.append(list(tokenizer(request.prompt)["input_ids"]))
        else:
            assert request.messages is not None
            text = "\n".join(message.content for message in request.messages)
            prompt_ids.append(list(tokenizer(text)["input_ids"]))
    if isolate:
        prompt_ids = [ids[:1] + ids[:0:-1] for ids in prompt_ids]
    outcomes = engine_greedy(target, prompt_ids, tokens, limit_s)
    engine_tokens: list[list[int]] = []
    for outcome in outcomes:
        if outcome.failure is not None:
            raise ConfigError(f"the engine failed the correctness check's request: {outcome.failure.detail}")
        ids = [i for event in outcome.events for i in (event.token_ids or ())]
        if not ids:
            reason = (
                "the engine sends no token ids (return_token_ids), and re-tokenized text would not be its "
                "tokens; use an engine that sends them (vLLM >= 0.10.2)"
            )
            return EngineAgreement(len(prompt_ids), tokens, 0.0, (), threshold, unchecked=reason)
        engine_tokens.append(ids)
    return agreement(engine_tokens, reference_greedy(model, prompt_ids, tokens), threshold)
