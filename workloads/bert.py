"""The BERT-base encoder: the reference transformer (attention + GEMM) workload.

Built from ``transformers.BertConfig`` with seeded random weights, never from the hub, so it needs
no network and every run times the same arithmetic. The ``default`` preset has the shape of
``bert-base-uncased`` (Devlin et al., 2018): 12 layers, hidden 768, 12 heads, intermediate 3072,
vocabulary 30522, i.e. 109,482,240 parameters with the pooler.

``transformers`` is imported inside ``build_model`` only: importing it takes seconds, and listing
or resolving workloads must stay cheap.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import partial
from typing import TYPE_CHECKING, Any

import torch
from torch import nn

from workloads.base import Workload, WorkloadFamily

if TYPE_CHECKING:
    from transformers import BertModel

__all__ = ["BERT_BASE", "BertEncoder", "BertShape", "encoder_flops"]

#: Seeds for the weights and the inputs; fixed so every process builds identical arithmetic.
WEIGHT_SEED = 0
INPUT_SEED = 1

#: Sequence length of every preset: the length usually quoted for BERT inference benchmarks.
SEQUENCE_LENGTH = 128

#: The attention kernel: "sdpa", transformers' default and what users run. On CPU torch dispatches
#: it to ``_scaled_dot_product_flash_attention_for_cpu``, which torch's flop counter has no formula
#: for (torch 2.13); ``harness.measure.flops`` registers one, so attention counts the same FLOPs
#: as the two ``matmul``s of the "eager" implementation (a test holds them equal).
ATTN_IMPLEMENTATION = "sdpa"


@dataclass(frozen=True)
class BertShape:
    """The knobs a preset turns; the defaults are ``bert-base-uncased``."""

    layers: int = 12
    hidden: int = 768
    heads: int = 12
    intermediate: int = 3072
    vocab_size: int = 30522
    sequence_length: int = SEQUENCE_LENGTH


_SHAPES: dict[str, BertShape] = {
    "default": BertShape(),
    "tiny": BertShape(layers=2, hidden=128, heads=2, intermediate=512),
}


def encoder_flops(shape: BertShape) -> int:
    """Analytic forward FLOPs of one sequence: 2 per multiply-add, matrix products only.

    Per layer, with sequence length s, hidden h and intermediate i: the Q, K, V and output
    projections (4·s·h²), the score and context products (2·s²·h) and the feed-forward block
    (2·s·h·i); plus the pooler's dense layer on the first token (h²). Embedding look-ups,
    LayerNorm, softmax, GELU and bias adds are not matrix products and are left out, as
    ``FlopCounterMode`` does. For bert-base at s=128 this is 11.17 GMACs = 22.35 GFLOPs per
    sequence: the 2·N·tokens rule of Kaplan et al. 2020 ("Scaling Laws for Neural Language
    Models", section 2.1) with N = 84.9M non-embedding parameters gives 21.74 GFLOPs, the attention
    products add 0.60 GFLOPs and the pooler 1.2 MFLOPs; the ~22 GFLOPs (~11 GMACs) usually quoted
    for BERT-base at sequence 128.
    """
    s, h, i = shape.sequence_length, shape.hidden, shape.intermediate
    per_layer_macs = 4 * s * h * h + 2 * s * s * h + 2 * s * h * i
    return 2 * (shape.layers * per_layer_macs + h * h)


class BertEncoder(nn.Module):
    """``BertModel`` that returns only the last hidden state, as a plain tensor.

    A single tensor output keeps tracing, export and correctness comparison simple. The pooler is
    still part of the model (it is in the published parameter count) and still runs.
    """

    def __init__(self, bert: BertModel) -> None:
        super().__init__()
        self.bert = bert

    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        output = self.bert(input_ids=input_ids, attention_mask=attention_mask, return_dict=True)
        hidden: torch.Tensor = output.last_hidden_state
        return hidden


def _build(shape: BertShape) -> nn.Module:
    """Seeded construction without disturbing the caller's global RNG state; no downloads."""
    from transformers import BertConfig, BertModel

    # A dict because ``attn_implementation`` is a ``**kwargs`` of the base config class, which
    # BertConfig's typed signature does not show in every transformers version.
    options: dict[str, Any] = {
        "vocab_size": shape.vocab_size,
        "hidden_size": shape.hidden,
        "num_hidden_layers": shape.layers,
        "num_attention_heads": shape.heads,
        "intermediate_size": shape.intermediate,
        "max_position_embeddings": 512,
        "attn_implementation": ATTN_IMPLEMENTATION,
    }
    config = BertConfig(**options)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(WEIGHT_SEED)
        model = BertEncoder(BertModel(config, add_pooling_layer=True))
    return model.eval()


def _inputs(shape: BertShape, batch_size: int) -> tuple[torch.Tensor, ...]:
    generator = torch.Generator().manual_seed(INPUT_SEED)
    size = (batch_size, shape.sequence_length)
    input_ids = torch.randint(0, shape.vocab_size, size, generator=generator, dtype=torch.int64)
    attention_mask = torch.ones(size, dtype=torch.int64)
    return input_ids, attention_mask


def _preset(preset: str) -> Workload:
    shape = _SHAPES[preset]
    return Workload(
        name="bert-base",
        preset=preset,
        build_model=partial(_build, shape),
        make_inputs=partial(_inputs, shape),
        task="text-encoding",
        description=(
            f"BERT encoder, {shape.layers} layers, hidden {shape.hidden}, {shape.heads} heads, "
            f"intermediate {shape.intermediate}, sequence {shape.sequence_length}, float32"
        ),
        tokens_per_sample=shape.sequence_length,
        metadata={
            "layers": shape.layers,
            "hidden": shape.hidden,
            "heads": shape.heads,
            "intermediate": shape.intermediate,
            "vocab_size": shape.vocab_size,
            "sequence_length": shape.sequence_length,
            "attn_implementation": ATTN_IMPLEMENTATION,
        },
    )


BERT_BASE = WorkloadFamily(
    name="bert-base",
    description="BERT-base encoder at sequence 128 (110M params, ~22.3 GFLOPs per sequence).",
    presets={name: partial(_preset, name) for name in _SHAPES},
    default_preset="default",
)
