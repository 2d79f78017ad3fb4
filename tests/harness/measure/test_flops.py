"""Attention measured as users run it (SDPA) and counted like the explicit products."""

from __future__ import annotations

import dataclasses

import pytest
import torch

import workloads.bert as bert
from harness.measure.flops import attention_flops, flop_counter
from workloads.decoder import CausalLM, Session, build_causal_lm
from workloads.gpt2 import GPT2
from workloads.llama import LLAMA

CPU_SDPA = "aten._scaled_dot_product_flash_attention_for_cpu"


def test_attention_flops_by_hand() -> None:
    # Q·Kᵀ: 2·(1·2·3·5·4) = 240; P·V: 2·(1·2·3·5·6) = 360.
    assert attention_flops((1, 2, 3, 4), (1, 2, 5, 4), (1, 2, 5, 6)) == 600
    # Grouped-query: 8 query heads on 2 key/value heads cost as 8 heads.
    assert attention_flops((1, 8, 16, 64), (1, 2, 16, 64), (1, 2, 16, 64)) == 4 * 8 * 16 * 16 * 64


def _bert_counts(monkeypatch: pytest.MonkeyPatch, implementation: str) -> tuple[torch.Tensor, int, dict[str, int]]:
    monkeypatch.setattr(bert, "ATTN_IMPLEMENTATION", implementation)
    workload = bert.BERT_BASE("tiny")
    model = workload.build_model()
    with torch.inference_mode(), flop_counter() as counter:
        out = model(*workload.make_inputs(2))
    per_op = {str(k): int(v) for k, v in counter.get_flop_counts()["Global"].items()}
    return out, int(counter.get_total_flops()), per_op


def test_bert_sdpa_counts_what_eager_attention_counts(monkeypatch: pytest.MonkeyPatch) -> None:
    eager_out, eager_flops, _ = _bert_counts(monkeypatch, "eager")
    sdpa_out, sdpa_flops, per_op = _bert_counts(monkeypatch, "sdpa")
    # The CPU SDPA kernel ran and was counted: without the formula it would count 0.
    assert per_op.get(CPU_SDPA, 0) > 0
    assert sdpa_flops == eager_flops
    assert sdpa_flops == 2 * bert.encoder_flops(bert.BertShape(layers=2, hidden=128, heads=2, intermediate=512))
    torch.testing.assert_close(sdpa_out, eager_out, rtol=1e-4, atol=1e-5)


def test_bert_measures_sdpa_by_default() -> None:
    assert bert.ATTN_IMPLEMENTATION == "sdpa"
    assert bert.BERT_BASE("tiny").metadata["attn_implementation"] == "sdpa"


def _decoder_run(model: CausalLM) -> tuple[torch.Tensor, torch.Tensor, int, int, dict[str, int]]:
    session = Session(model, 2, 12, 4)
    prompts = torch.randint(0, model.shape.vocab_size, (2, 12), generator=torch.Generator().manual_seed(3))
    session.load_prompts(prompts)
    with torch.inference_mode():
        with flop_counter() as prefill_counter:
            logits = session.prefill().float()
        with flop_counter() as decode_counter:
            session.decode()
        session.decode()
        session.decode()
    per_op = {str(k): int(v) for k, v in decode_counter.get_flop_counts()["Global"].items()}
    return (
        logits,
        session.generated().clone(),
        int(prefill_counter.get_total_flops()),
        int(decode_counter.get_total_flops()),
        per_op,
    )


@pytest.mark.parametrize("family", [pytest.param(LLAMA, id="llama"), pytest.param(GPT2, id="gpt2")])
def test_decoder_sdpa_matches_the_explicit_products(family: object) -> None:
    workload = family("tiny")  # type: ignore[operator]
    sdpa_model = workload.build_model()
    assert isinstance(sdpa_model, CausalLM) and sdpa_model.shape.attention == "sdpa"
    matmul_model = build_causal_lm(dataclasses.replace(sdpa_model.shape, attention="matmul"))
    logits, tokens, prefill, decode, per_op = _decoder_run(sdpa_model)
    ref_logits, ref_tokens, ref_prefill, ref_decode, _ = _decoder_run(matmul_model)
    assert per_op.get(CPU_SDPA, 0) > 0
    assert (prefill, decode) == (ref_prefill, ref_decode)
    torch.testing.assert_close(logits, ref_logits, rtol=1e-4, atol=1e-4)
    assert torch.equal(tokens, ref_tokens)


def test_decoder_attention_is_checked() -> None:
    with pytest.raises(ValueError, match="attention"):
        dataclasses.replace(LLAMA("tiny").build_model().shape, attention="flash")  # type: ignore[arg-type]
