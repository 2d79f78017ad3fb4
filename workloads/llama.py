"""Llama-style decoders: RMSNorm, rotary embeddings, grouped-query attention, SwiGLU.

Presets: ``tiny`` for CI, ``1b`` with the shape of Llama-3.2-1B (1,235,814,400 parameters,
tied embeddings) and ``8b`` with the shape of Llama-3.1-8B (8,030,261,248 parameters), both from
their published ``config.json``. Random weights, no downloads: the arithmetic, not the answers,
is what is timed. The default is ``1b``: the 8B needs 32 GB in fp32 (16 GB in bf16).
"""

from __future__ import annotations

from functools import partial

from workloads.base import Workload, WorkloadFamily
from workloads.decoder import DecoderShape, RopeScaling, decoder_workload

__all__ = ["LLAMA", "SHAPES"]

#: Llama 3's vocabulary and context (``vocab_size``, ``max_position_embeddings``).
_VOCAB, _CONTEXT = 128_256, 131_072

SHAPES: dict[str, DecoderShape] = {
    "tiny": DecoderShape(
        style="llama",
        vocab_size=512,
        hidden=64,
        layers=2,
        heads=4,
        kv_heads=2,
        intermediate=176,
        max_positions=4096,
        tie_embeddings=True,
        rope_scaling=RopeScaling(factor=32.0),
    ),
    "1b": DecoderShape(
        style="llama",
        vocab_size=_VOCAB,
        hidden=2048,
        layers=16,
        heads=32,
        kv_heads=8,
        intermediate=8192,
        max_positions=_CONTEXT,
        tie_embeddings=True,
        rope_scaling=RopeScaling(factor=32.0),
    ),
    "8b": DecoderShape(
        style="llama",
        vocab_size=_VOCAB,
        hidden=4096,
        layers=32,
        heads=32,
        kv_heads=8,
        intermediate=14336,
        max_positions=_CONTEXT,
        tie_embeddings=False,
        rope_scaling=RopeScaling(factor=8.0),
    ),
}

_NAMES = {"tiny": "tiny Llama-style decoder", "1b": "Llama-3.2-1B shape", "8b": "Llama-3.1-8B shape"}


def _preset(preset: str) -> Workload:
    shape = SHAPES[preset]
    return decoder_workload(
        "llama",
        preset,
        shape,
        f"{_NAMES[preset]}: {shape.layers} layers, hidden {shape.hidden}, {shape.heads} heads "
        f"({shape.kv_heads} KV), SwiGLU {shape.intermediate}, vocabulary {shape.vocab_size}, "
        f"{shape.parameter_count() / 1e6:,.1f}M params, float32",
    )


LLAMA = WorkloadFamily(
    name="llama",
    description="Llama-style decoder LLM (GQA, RoPE, SwiGLU, static KV cache): "
    "tiny, 1b (Llama-3.2-1B), 8b (Llama-3.1-8B).",
    presets={name: partial(_preset, name) for name in SHAPES},
    default_preset="1b",
)
