"""GPT-2 small (124M): LayerNorm, learned positions, multi-head attention, GELU MLP, with biases.

The ``default`` preset has the shape of OpenAI's ``gpt2`` (12 layers, hidden 768, 12 heads,
vocabulary 50,257, 1,024 positions; 124,439,808 parameters with the tied output embedding).
Random weights, no downloads.
"""

from __future__ import annotations

from functools import partial

from workloads.base import Workload, WorkloadFamily
from workloads.decoder import DecoderShape, decoder_workload

__all__ = ["GPT2", "SHAPES"]

SHAPES: dict[str, DecoderShape] = {
    "default": DecoderShape(
        style="gpt2",
        vocab_size=50_257,
        hidden=768,
        layers=12,
        heads=12,
        kv_heads=12,
        intermediate=3072,
        max_positions=1024,
        tie_embeddings=True,
    ),
    "tiny": DecoderShape(
        style="gpt2",
        vocab_size=512,
        hidden=64,
        layers=2,
        heads=4,
        kv_heads=4,
        intermediate=256,
        max_positions=1024,
        tie_embeddings=True,
    ),
}


def _preset(preset: str) -> Workload:
    shape = SHAPES[preset]
    return decoder_workload(
        "gpt2",
        preset,
        shape,
        f"GPT-2{' small' if preset == 'default' else ' tiny'}: {shape.layers} layers, hidden {shape.hidden}, "
        f"{shape.heads} heads, vocabulary {shape.vocab_size}, {shape.parameter_count() / 1e6:,.1f}M params, float32",
    )


GPT2 = WorkloadFamily(
    name="gpt2",
    description="GPT-2 small decoder LLM (124M params, static KV cache).",
    presets={name: partial(_preset, name) for name in SHAPES},
    default_preset="default",
)
