"""A decoder-only transformer with a static KV cache: the architecture behind ``llama`` and ``gpt2``.

Written out here rather than taken from ``transformers`` because its generation path must have
static shapes and no Python-side state, so that one code path runs eagerly, under
``torch.compile``, on CUDA (graphs included) and traced ahead of time on Neuron:

- The KV cache is a set of preallocated buffers (batch, kv_heads, max_tokens, head_dim) written in
  place with ``index_copy_``; a decode step attends to the whole cache under a mask of the
  positions filled so far, so its shapes never change from one token to the next.
- The position is a 0-dim tensor buffer, never a Python int, so a compiled step does not
  specialize (and recompile) on it.
- Greedy argmax happens inside the step and the token is written into a sequence buffer, so no
  host round trip is needed between tokens.
- For ``torch_neuronx.trace``, which keeps no in-place buffer update and aliases state only on
  parameters, ``Session.parameter_steps`` gives the same arithmetic (``FunctionalStep``) as a
  decode step holding its state as parameters (``ParameterDecode``) and a prefill that computes
  the whole state from the prompt and resets the decode step's state to it (``PromptPrefill``).

Two styles share the code: ``llama`` (RMSNorm, rotary embeddings with Llama 3 frequency scaling,
grouped-query attention, SwiGLU, no biases) and ``gpt2`` (LayerNorm, learned positions,
multi-head attention and a GELU MLP, with biases). Attention runs through
``scaled_dot_product_attention``, as users run it; ``harness.measure.flops`` registers the FLOP
formula of its CPU kernel so the count is the same as for two explicit products (the ``matmul``
form, kept for the tests to compare against). On devices without a fused kernel (XLA, so Neuron)
torch lowers it to those same products.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

import torch
from torch import nn
from torch.nn import functional as F

from workloads.base import GenerationSpec, Workload

__all__ = [
    "DEFAULT_PROMPT_TOKENS",
    "CausalLM",
    "DecodeStep",
    "DecoderShape",
    "FunctionalStep",
    "GenerationState",
    "KVCache",
    "ParameterDecode",
    "PrefillStep",
    "PromptPrefill",
    "RopeScaling",
    "Session",
    "build_causal_lm",
    "decoder_workload",
    "greedy_uncached",
    "new_session",
    "random_prompts",
]

#: Seeds for the weights and the prompts; fixed so every process builds identical arithmetic.
WEIGHT_SEED = 0
PROMPT_SEED = 1
#: Standard deviation of the random weights: ``initializer_range`` of Llama and GPT-2.
INIT_STD = 0.02


@dataclass(frozen=True)
class RopeScaling:
    """Llama 3's rotary frequency scaling (``rope_type: llama3`` in the published configs)."""

    factor: float
    low_freq_factor: float = 1.0
    high_freq_factor: float = 4.0
    original_max_positions: int = 8192


@dataclass(frozen=True)
class DecoderShape:
    """Every knob a preset turns. ``style`` picks the block: ``llama`` or ``gpt2``."""

    style: Literal["llama", "gpt2"]
    vocab_size: int
    hidden: int
    layers: int
    heads: int
    kv_heads: int
    intermediate: int
    max_positions: int
    tie_embeddings: bool
    norm_eps: float = 1e-5
    rope_theta: float = 500_000.0
    rope_scaling: RopeScaling | None = None
    #: ``sdpa``: ``scaled_dot_product_attention``, what users run (transformers' default) and what
    #: is measured; ``matmul``: the same arithmetic as two explicit products, kept as the reference
    #: the tests hold the SDPA path (its outputs and its FLOP count) against.
    attention: Literal["sdpa", "matmul"] = "sdpa"

    def __post_init__(self) -> None:
        if self.attention not in ("sdpa", "matmul"):
            raise ValueError(f"attention must be 'sdpa' or 'matmul', got {self.attention!r}")
        if self.hidden % self.heads or self.heads % self.kv_heads:
            raise ValueError(f"hidden {self.hidden}, heads {self.heads} and kv_heads {self.kv_heads} do not divide")

    @property
    def head_dim(self) -> int:
        return self.hidden // self.heads

    def parameter_count(self) -> int:
        """Parameters, counted from the shape (shared embeddings once), as published model cards do."""
        h, i, v, hd = self.hidden, self.intermediate, self.vocab_size, self.head_dim
        kv = self.kv_heads * hd
        if self.style == "llama":
            per_layer = h * h * 2 + 2 * h * kv + 3 * h * i + 2 * h
            extra = h  # final RMSNorm
        else:
            per_layer = (h * h + h) * 2 + 2 * (h * kv + kv) + 2 * h * i + i + h + 4 * h
            extra = 2 * h + self.max_positions * h  # final LayerNorm and learned positions
        head = 0 if self.tie_embeddings else v * h
        return self.layers * per_layer + v * h + head + extra


# --- building blocks ------------------------------------------------------------------------


class RMSNorm(nn.Module):
    """Root-mean-square norm computed in float32, as Llama does, then cast back."""

    def __init__(self, dim: int, eps: float) -> None:
        super().__init__()
        self.weight = nn.Parameter(torch.ones(dim))
        self.eps = eps

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x32 = x.float()
        normed = x32 * torch.rsqrt(x32.pow(2).mean(-1, keepdim=True) + self.eps)
        return self.weight * normed.to(x.dtype)


def rope_tables(shape: DecoderShape, positions: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """cos and sin (tokens, head_dim) in float32 for the given positions.

    Computed from the positions on every call rather than kept in a buffer: a buffer would be
    cast to bf16 with the model, and bf16 frequencies put the angles of late positions far off.
    """
    hd = shape.head_dim
    exponents = torch.arange(0, hd, 2, device=positions.device, dtype=torch.float32) / hd
    inv_freq = 1.0 / (shape.rope_theta**exponents)
    scaling = shape.rope_scaling
    if scaling is not None:
        # Llama 3: low frequencies divided by ``factor``, high ones kept, a smooth ramp between.
        wavelen = 2 * math.pi / inv_freq
        low_wavelen = scaling.original_max_positions / scaling.low_freq_factor
        high_wavelen = scaling.original_max_positions / scaling.high_freq_factor
        scaled = torch.where(wavelen > low_wavelen, inv_freq / scaling.factor, inv_freq)
        smooth = (scaling.original_max_positions / wavelen - scaling.low_freq_factor) / (
            scaling.high_freq_factor - scaling.low_freq_factor
        )
        smoothed = (1 - smooth) * scaled / scaling.factor + smooth * scaled
        medium = (wavelen >= high_wavelen) & (wavelen <= low_wavelen)
        inv_freq = torch.where(medium, smoothed, scaled)
    angles = positions.to(torch.float32)[:, None] * inv_freq[None, :]
    angles = torch.cat((angles, angles), dim=-1)
    return angles.cos(), angles.sin()


def apply_rope(x: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor) -> torch.Tensor:
    """Rotate (batch, heads, tokens, head_dim) by the tables, rotate-half convention as in Llama."""
    first, second = x.float().chunk(2, dim=-1)
    rotated = torch.cat((-second, first), dim=-1)
    return (x.float() * cos + rotated * sin).to(x.dtype)


class Attention(nn.Module):
    """Grouped-query attention (multi-head when kv_heads == heads) over an optional static cache."""

    def __init__(self, shape: DecoderShape) -> None:
        super().__init__()
        bias = shape.style == "gpt2"
        kv = shape.kv_heads * shape.head_dim
        self.shape = shape
        self.q_proj = nn.Linear(shape.hidden, shape.hidden, bias=bias)
        self.k_proj = nn.Linear(shape.hidden, kv, bias=bias)
        self.v_proj = nn.Linear(shape.hidden, kv, bias=bias)
        self.o_proj = nn.Linear(shape.hidden, shape.hidden, bias=bias)

    def forward(
        self,
        x: torch.Tensor,
        rope: tuple[torch.Tensor, torch.Tensor] | None,
        cache: tuple[torch.Tensor, torch.Tensor] | None,
        position: torch.Tensor | None,
        updated: list[tuple[torch.Tensor, torch.Tensor]] | None = None,
    ) -> torch.Tensor:
        """Uncached (cache None), prefill (cache, position None) or one decode step (both set).

        With ``updated`` (a list) the cache is not written in place: the new (key, value) cache
        tensors are appended to it instead, for steps whose state must travel as outputs.
        """
        shape = self.shape
        batch, tokens, _ = x.shape
        q = self.q_proj(x).view(batch, tokens, shape.heads, shape.head_dim).transpose(1, 2)
        k = self.k_proj(x).view(batch, tokens, shape.kv_heads, shape.head_dim).transpose(1, 2)
        v = self.v_proj(x).view(batch, tokens, shape.kv_heads, shape.head_dim).transpose(1, 2)
        if rope is not None:
            q, k = apply_rope(q, *rope), apply_rope(k, *rope)
        if cache is None or position is None:
            if cache is not None and updated is not None:
                updated.append((torch.cat((k, cache[0][:, :, tokens:]), 2), torch.cat((v, cache[1][:, :, tokens:]), 2)))
            elif cache is not None:
                cache[0][:, :, :tokens].copy_(k)
                cache[1][:, :, :tokens].copy_(v)
            keys, values = k, v
            mask = torch.ones(tokens, tokens, dtype=torch.bool, device=x.device).tril()
        else:
            index = position.view(1)
            if updated is not None:
                cache = (cache[0].index_copy(2, index, k), cache[1].index_copy(2, index, v))
                updated.append(cache)
            else:
                cache[0].index_copy_(2, index, k)
                cache[1].index_copy_(2, index, v)
            keys, values = cache
            mask = (torch.arange(keys.shape[2], device=x.device) <= position).view(1, -1)
        groups = shape.heads // shape.kv_heads
        if groups > 1:
            length = keys.shape[2]
            keys = keys[:, :, None].expand(batch, shape.kv_heads, groups, length, shape.head_dim)
            values = values[:, :, None].expand(batch, shape.kv_heads, groups, length, shape.head_dim)
            keys = keys.reshape(batch, shape.heads, length, shape.head_dim)
            values = values.reshape(batch, shape.heads, length, shape.head_dim)
        if shape.attention == "sdpa":
            attended = F.scaled_dot_product_attention(q, keys, values, attn_mask=mask)
        else:
            scores = torch.matmul(q, keys.transpose(2, 3)) / math.sqrt(shape.head_dim)
            scores = scores.masked_fill(~mask, torch.finfo(scores.dtype).min)
            probs = torch.softmax(scores, dim=-1, dtype=torch.float32).to(q.dtype)
            attended = torch.matmul(probs, values)
        context = attended.transpose(1, 2).reshape(batch, tokens, shape.hidden)
        out: torch.Tensor = self.o_proj(context)
        return out


class SwiGLU(nn.Module):
    """Llama's gated feed-forward block: down(silu(gate(x)) * up(x))."""

    def __init__(self, shape: DecoderShape) -> None:
        super().__init__()
        self.gate_proj = nn.Linear(shape.hidden, shape.intermediate, bias=False)
        self.up_proj = nn.Linear(shape.hidden, shape.intermediate, bias=False)
        self.down_proj = nn.Linear(shape.intermediate, shape.hidden, bias=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out: torch.Tensor = self.down_proj(F.silu(self.gate_proj(x)) * self.up_proj(x))
        return out


class GeluMLP(nn.Module):
    """GPT-2's feed-forward block: c_proj(gelu_tanh(c_fc(x)))."""

    def __init__(self, shape: DecoderShape) -> None:
        super().__init__()
        self.c_fc = nn.Linear(shape.hidden, shape.intermediate)
        self.c_proj = nn.Linear(shape.intermediate, shape.hidden)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out: torch.Tensor = self.c_proj(F.gelu(self.c_fc(x), approximate="tanh"))
        return out


def _norm(shape: DecoderShape) -> nn.Module:
    """RMSNorm for Llama, LayerNorm (with bias) for GPT-2."""
    if shape.style == "llama":
        return RMSNorm(shape.hidden, shape.norm_eps)
    return nn.LayerNorm(shape.hidden, eps=shape.norm_eps)


class Block(nn.Module):
    """Pre-norm residual block: x + attn(norm(x)), then x + mlp(norm(x))."""

    def __init__(self, shape: DecoderShape) -> None:
        super().__init__()
        self.input_norm = _norm(shape)
        self.attn = Attention(shape)
        self.post_attn_norm = _norm(shape)
        self.mlp: nn.Module = SwiGLU(shape) if shape.style == "llama" else GeluMLP(shape)

    def forward(
        self,
        x: torch.Tensor,
        rope: tuple[torch.Tensor, torch.Tensor] | None,
        cache: tuple[torch.Tensor, torch.Tensor] | None,
        position: torch.Tensor | None,
        updated: list[tuple[torch.Tensor, torch.Tensor]] | None = None,
    ) -> torch.Tensor:
        x = x + self.attn(self.input_norm(x), rope, cache, position, updated)
        out: torch.Tensor = x + self.mlp(self.post_attn_norm(x))
        return out


class KVCache(nn.Module):
    """Static per-layer key and value buffers (batch, kv_heads, max_tokens, head_dim)."""

    def __init__(self, shape: DecoderShape, batch_size: int, max_tokens: int) -> None:
        super().__init__()
        self.layers = shape.layers
        size = (batch_size, shape.kv_heads, max_tokens, shape.head_dim)
        for index in range(shape.layers):
            self.register_buffer(f"k{index}", torch.zeros(size), persistent=False)
            self.register_buffer(f"v{index}", torch.zeros(size), persistent=False)

    def layer(self, index: int) -> tuple[torch.Tensor, torch.Tensor]:
        key: torch.Tensor = getattr(self, f"k{index}")
        value: torch.Tensor = getattr(self, f"v{index}")
        return key, value


class CausalLM(nn.Module):
    """The decoder with its language-model head; ``forward`` is an uncached pass over all tokens."""

    def __init__(self, shape: DecoderShape) -> None:
        super().__init__()
        self.shape = shape
        self.embed = nn.Embedding(shape.vocab_size, shape.hidden)
        self.positions = nn.Embedding(shape.max_positions, shape.hidden) if shape.style == "gpt2" else None
        self.blocks = nn.ModuleList(Block(shape) for _ in range(shape.layers))
        self.norm = _norm(shape)
        self.lm_head = nn.Linear(shape.hidden, shape.vocab_size, bias=False)
        if shape.tie_embeddings:
            self.lm_head.weight = self.embed.weight

    def _hidden(
        self,
        input_ids: torch.Tensor,
        positions: torch.Tensor,
        cache: KVCache | Sequence[tuple[torch.Tensor, torch.Tensor]] | None,
        position: torch.Tensor | None,
        updated: list[tuple[torch.Tensor, torch.Tensor]] | None = None,
    ) -> torch.Tensor:
        x = self.embed(input_ids)
        rope = None
        if self.positions is not None:
            x = x + self.positions(positions)[None]
        else:
            rope = rope_tables(self.shape, positions)
        for index, block in enumerate(self.blocks):
            layer = None if cache is None else cache.layer(index) if isinstance(cache, KVCache) else cache[index]
            x = block(x, rope, layer, position, updated)
        out: torch.Tensor = self.norm(x)
        return out

    def forward(self, input_ids: torch.Tensor) -> torch.Tensor:
        """Logits (batch, tokens, vocabulary) of a causal pass with no cache: the reference path."""
        positions = torch.arange(input_ids.shape[1], device=input_ids.device)
        logits: torch.Tensor = self.lm_head(self._hidden(input_ids, positions, None, None))
        return logits

    def prefill(self, input_ids: torch.Tensor, cache: KVCache) -> torch.Tensor:
        """Fill the cache from position 0 with the prompt; logits (batch, vocab) of its last token."""
        positions = torch.arange(input_ids.shape[1], device=input_ids.device)
        hidden = self._hidden(input_ids, positions, cache, None)
        logits: torch.Tensor = self.lm_head(hidden[:, -1])
        return logits

    def decode(self, token: torch.Tensor, position: torch.Tensor, cache: KVCache) -> torch.Tensor:
        """Feed one token (batch, 1) at ``position`` (0-dim); logits (batch, vocab) of it."""
        hidden = self._hidden(token, position.view(1), cache, position)
        logits: torch.Tensor = self.lm_head(hidden[:, -1])
        return logits


def _init_weights(module: nn.Module) -> None:
    """Normal(0, 0.02) weights and zero biases, as Llama and GPT-2 initialize; norms stay at one."""
    if isinstance(module, nn.Linear | nn.Embedding):
        nn.init.normal_(module.weight, mean=0.0, std=INIT_STD)
        if isinstance(module, nn.Linear) and module.bias is not None:
            nn.init.zeros_(module.bias)


def build_causal_lm(shape: DecoderShape) -> CausalLM:
    """Seeded construction without disturbing the caller's global RNG; works on the meta device."""
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(WEIGHT_SEED)
        model = CausalLM(shape)
        model.apply(_init_weights)
    return model.eval()


def random_prompts(vocab_size: int, batch_size: int, prompt_tokens: int) -> torch.Tensor:
    """Seeded uniform token ids (batch, prompt_tokens), int64."""
    generator = torch.Generator().manual_seed(PROMPT_SEED)
    return torch.randint(0, vocab_size, (batch_size, prompt_tokens), generator=generator, dtype=torch.int64)


# --- generation over the static cache -------------------------------------------------------


class GenerationState(nn.Module):
    """The sequence so far (batch, prompt + output) and the position of the next token to feed."""

    sequence: torch.Tensor
    position: torch.Tensor

    def __init__(self, batch_size: int, total_tokens: int) -> None:
        super().__init__()
        self.register_buffer("sequence", torch.zeros(batch_size, total_tokens, dtype=torch.int64), persistent=False)
        self.register_buffer("position", torch.zeros((), dtype=torch.int64), persistent=False)


class PrefillStep(nn.Module):
    """``forward()``: run the prompt through the model, fill the cache, write the first token."""

    lm: CausalLM
    cache: KVCache
    state: GenerationState

    def __init__(self, lm: CausalLM, cache: KVCache, state: GenerationState, prompt_tokens: int) -> None:
        super().__init__()
        self.lm, self.cache, self.state = lm, cache, state
        self.prompt_tokens = prompt_tokens

    def forward(self) -> torch.Tensor:
        p = self.prompt_tokens
        sequence: torch.Tensor = self.state.sequence
        logits = self.lm.prefill(sequence[:, :p], self.cache)
        sequence[:, p].copy_(logits.argmax(dim=-1))
        self.state.position.fill_(p)
        return logits


class DecodeStep(nn.Module):
    """``forward()``: feed back the last token, write the next one, advance the position."""

    lm: CausalLM
    cache: KVCache
    state: GenerationState

    def __init__(self, lm: CausalLM, cache: KVCache, state: GenerationState) -> None:
        super().__init__()
        self.lm, self.cache, self.state = lm, cache, state

    def forward(self) -> torch.Tensor:
        sequence: torch.Tensor = self.state.sequence
        position: torch.Tensor = self.state.position
        token = sequence.index_select(1, position.view(1))
        logits = self.lm.decode(token, position, self.cache)
        sequence.index_copy_(1, (position + 1).view(1), logits.argmax(dim=-1, keepdim=True))
        position.add_(1)
        return logits


class FunctionalStep(nn.Module):
    """The prefill (``prompt_tokens`` set) or decode step as a pure function of the state.

    ``forward(sequence, position, k0, v0, k1, v1, ...)`` returns ``(logits, sequence', position',
    k0', v0', ...)`` and writes nothing in place: the arithmetic of ``PrefillStep`` and
    ``DecodeStep`` with the state in the outputs, so that a compiler which does not keep in-place
    writes (``torch_neuronx.trace``) can be told which output is the new value of which state
    tensor. Shapes stay fixed: the whole static cache goes in and out, the position is a 0-dim
    tensor. ``PromptPrefill`` and ``ParameterDecode`` wrap it for the Neuron backend.
    """

    lm: CausalLM

    def __init__(self, lm: CausalLM, prompt_tokens: int | None) -> None:
        super().__init__()
        self.lm = lm
        self.prompt_tokens = prompt_tokens

    def extra_repr(self) -> str:
        # In the repr, so the prefill and decode steps (same weights) differ in a backend's
        # artifact-cache key, which hashes the repr.
        return "decode" if self.prompt_tokens is None else f"prefill of {self.prompt_tokens} tokens"

    def forward(self, sequence: torch.Tensor, position: torch.Tensor, *cache: torch.Tensor) -> tuple[torch.Tensor, ...]:
        pairs = [(cache[2 * index], cache[2 * index + 1]) for index in range(len(cache) // 2)]
        updated: list[tuple[torch.Tensor, torch.Tensor]] = []
        p = self.prompt_tokens
        if p is not None:
            positions = torch.arange(p, device=sequence.device)
            hidden = self.lm._hidden(sequence[:, :p], positions, pairs, None, updated)
            next_position = position * 0 + p  # derived from the input, so it stays a graph output
        else:
            token = sequence.index_select(1, position.view(1))
            hidden = self.lm._hidden(token, position.view(1), pairs, position, updated)
            next_position = position + 1
        logits: torch.Tensor = self.lm.lm_head(hidden[:, -1])
        new_sequence = sequence.index_copy(1, next_position.view(1), logits.argmax(dim=-1, keepdim=True))
        return (logits, new_sequence, next_position, *(tensor for pair in updated for tensor in pair))


def _state_layout(lm: CausalLM, batch_size: int, total_tokens: int) -> list[tuple[tuple[int, ...], torch.dtype]]:
    """Shape and dtype of each state tensor, in order: sequence, position, then a key and a value per layer."""
    shape = lm.shape
    dtype = next(lm.parameters()).dtype
    cache = (batch_size, shape.kv_heads, total_tokens, shape.head_dim)
    return [((batch_size, total_tokens), torch.int64), ((), torch.int64)] + [(cache, dtype)] * (2 * shape.layers)


class ParameterDecode(nn.Module):
    """The decode step with its state held as *parameters* of the module, for ``torch_neuronx.trace``.

    ``forward()`` takes nothing and returns ``(logits, sequence', position', k0', v0', ...)``;
    ``state_aliases()`` maps each state parameter to the output that holds its next value. That is
    the form ``trace``'s ``input_output_aliases`` takes: its keys are matched against the module's
    ``named_parameters()``, and the traced module keeps those tensors as its own parameters, on the
    device, replaced by the aliased outputs after every call (see ``backends.neuron.backend``).

    Once a backend has compiled the step, the state lives in the compiled module, not here:
    ``bind_state`` records those tensors, ``reset_state`` overwrites them (the start of every
    request), and ``live_state`` reads them.
    """

    lm: CausalLM

    def __init__(self, lm: CausalLM, batch_size: int, total_tokens: int) -> None:
        super().__init__()
        self.step = FunctionalStep(lm, None)
        device = next(lm.parameters()).device
        self.state = nn.ParameterList(
            nn.Parameter(torch.zeros(size, dtype=dtype, device=device), requires_grad=False)
            for size, dtype in _state_layout(lm, batch_size, total_tokens)
        )
        self._bound: list[torch.Tensor] | None = None

    def forward(self) -> tuple[torch.Tensor, ...]:
        result: tuple[torch.Tensor, ...] = self.step(*self.state)
        return result

    def state_aliases(self) -> dict[torch.Tensor, int]:
        """{state parameter: index of the output that replaces it}; output 0 is the logits."""
        return {parameter: 1 + index for index, parameter in enumerate(self.state)}

    def bind_state(self, tensors: Sequence[torch.Tensor]) -> None:
        """Take the compiled module's state tensors (in ``state_aliases`` order) as the live state."""
        tensors = list(tensors)
        expected = [(tuple(p.shape), p.dtype) for p in self.state]
        found = [(tuple(t.shape), t.dtype) for t in tensors]
        if found != expected:
            raise ValueError(
                f"the compiled decode step holds {len(found)} state tensors that do not match its "
                f"{len(expected)} state parameters (sequence, position, key and value per layer)"
            )
        self._bound = tensors

    def live_state(self) -> list[torch.Tensor]:
        """Where the state is now: the compiled module's tensors once bound, else this module's parameters."""
        return self._bound if self._bound is not None else list(self.state)

    def reset_state(self, values: Sequence[torch.Tensor]) -> None:
        """Overwrite the whole live state (the T5 tutorial's ``state.copy_(tensor)`` before generating)."""
        with torch.no_grad():
            for live, value in zip(self.live_state(), values, strict=True):
                live.copy_(value)


class PromptPrefill(nn.Module):
    """The prefill that starts a request for ``ParameterDecode``: prompt in, whole initial state out.

    ``forward(prompt)`` returns ``(logits, sequence, position, k0, v0, ...)`` computed from the
    prompt alone (a zero cache), so nothing from an earlier request can leak in; ``after_call``
    then resets the decode step's state to those outputs. This is the T5 tutorial's pattern for
    ``torch_neuronx.trace``: a stateless graph computes the initial cache, which is copied into the
    parameters of the stateful decoder before generation starts.
    """

    lm: CausalLM

    def __init__(self, lm: CausalLM, prompt_tokens: int, total_tokens: int, decode: ParameterDecode) -> None:
        super().__init__()
        self.step = FunctionalStep(lm, prompt_tokens)
        self.total_tokens = total_tokens
        self.__dict__["_decode"] = decode  # not a submodule: its state must not become this step's parameters

    def forward(self, prompt: torch.Tensor) -> tuple[torch.Tensor, ...]:
        lm = self.step.lm
        batch = prompt.shape[0]
        dtype = next(lm.parameters()).dtype
        tail = torch.zeros(batch, self.total_tokens - prompt.shape[1], dtype=prompt.dtype, device=prompt.device)
        sequence = torch.cat((prompt, tail), dim=1)
        position = torch.zeros((), dtype=torch.int64, device=prompt.device)
        cache = [
            torch.zeros(size, dtype=dtype, device=prompt.device)
            for size, _ in _state_layout(lm, batch, self.total_tokens)[2:]
        ]
        result: tuple[torch.Tensor, ...] = self.step(sequence, position, *cache)
        return result

    def after_call(self, outputs: Sequence[torch.Tensor]) -> None:
        """Hand the state this prefill computed to the decode step: the explicit reset of every request."""
        decode: ParameterDecode = self.__dict__["_decode"]
        decode.reset_state(list(outputs)[1:])


class Session:
    """A ``workloads.base.GenerationSession`` over a ``CausalLM``: one cache, one batch."""

    def __init__(self, lm: CausalLM, batch_size: int, prompt_tokens: int, output_tokens: int) -> None:
        if prompt_tokens < 1 or output_tokens < 1:
            raise ValueError(f"prompt and output tokens must be 1 or more, got {prompt_tokens} and {output_tokens}")
        total = prompt_tokens + output_tokens
        if total > lm.shape.max_positions:
            raise ValueError(
                f"{prompt_tokens} + {output_tokens} tokens exceed the model's {lm.shape.max_positions} positions"
            )
        parameter = next(lm.parameters())
        cache = KVCache(lm.shape, batch_size, total).to(device=parameter.device, dtype=parameter.dtype)
        state = GenerationState(batch_size, total).to(device=parameter.device)
        self.prompt_tokens, self.output_tokens = prompt_tokens, output_tokens
        self.prefill = PrefillStep(lm, cache, state, prompt_tokens)
        self.decode = DecodeStep(lm, cache, state)
        self._lm, self._total = lm, total
        self._parameter_steps: tuple[PromptPrefill, ParameterDecode, torch.Tensor] | None = None

    def parameter_steps(self) -> tuple[nn.Module, nn.Module, tuple[torch.Tensor, ...], tuple[torch.Tensor, ...]]:
        """Prefill and decode for a backend that keeps the state in its compiled decode step (Neuron).

        Returns ``(prefill, decode, prefill_inputs, decode_inputs)``: a ``PromptPrefill`` bound to
        this session's prompt tensor, and a ``ParameterDecode`` that takes no inputs. Built on first
        use (the decode step holds a second static cache), after which ``load_prompts`` also fills
        the prompt tensor and ``generated`` reads the decode step's live state.
        """
        if self._parameter_steps is None:
            batch = self.prefill.state.sequence.shape[0]
            decode = ParameterDecode(self._lm, batch, self._total)
            prefill = PromptPrefill(self._lm, self.prompt_tokens, self._total, decode)
            prompt = self.prefill.state.sequence[:, : self.prompt_tokens].clone()
            self._parameter_steps = (prefill, decode, prompt)
        prefill, decode, prompt = self._parameter_steps
        return prefill, decode, (prompt,), ()

    def load_prompts(self, prompts: torch.Tensor) -> None:
        sequence: torch.Tensor = self.prefill.state.sequence
        if tuple(prompts.shape) != (sequence.shape[0], self.prompt_tokens):
            expected = (sequence.shape[0], self.prompt_tokens)
            raise ValueError(f"prompts of shape {tuple(prompts.shape)}; this session takes {expected}")
        sequence[:, : self.prompt_tokens].copy_(prompts)
        if self._parameter_steps is not None:
            self._parameter_steps[2].copy_(prompts)

    def generated(self) -> torch.Tensor:
        sequence: torch.Tensor = self.prefill.state.sequence
        if self._parameter_steps is not None:
            sequence = self._parameter_steps[1].live_state()[0]
        p = self.prompt_tokens
        return sequence[:, p : p + self.output_tokens].to("cpu")


def new_session(model: nn.Module, batch_size: int, prompt_tokens: int, output_tokens: int) -> Session:
    """A session sharing ``model``'s weights (the ``GenerationSpec.new_session`` of decoders)."""
    if not isinstance(model, CausalLM):
        raise TypeError(f"expected a CausalLM, got {type(model).__name__}")
    return Session(model, batch_size, prompt_tokens, output_tokens)


def greedy_uncached(model: CausalLM, prompts: torch.Tensor, output_tokens: int) -> torch.Tensor:
    """Greedy tokens by re-running the whole sequence every step: the cache-free reference."""
    sequence = prompts
    produced = []
    with torch.inference_mode():
        for _ in range(output_tokens):
            token = model(sequence)[:, -1].argmax(dim=-1, keepdim=True)
            produced.append(token)
            sequence = torch.cat((sequence, token), dim=1)
    return torch.cat(produced, dim=1)


#: Prompt length of the plain forward pass (the ``latency`` and ``throughput`` scenarios): a prefill.
DEFAULT_PROMPT_TOKENS = 128


def decoder_workload(name: str, preset: str, shape: DecoderShape, description: str) -> Workload:
    """The ``Workload`` of a decoder: a 128-token prefill as its forward, plus a generation spec."""
    from functools import partial

    def inputs(batch_size: int) -> tuple[torch.Tensor, ...]:
        return (random_prompts(shape.vocab_size, batch_size, DEFAULT_PROMPT_TOKENS),)

    return Workload(
        name=name,
        preset=preset,
        build_model=partial(build_causal_lm, shape),
        make_inputs=inputs,
        task="text-generation",
        description=description,
        tokens_per_sample=DEFAULT_PROMPT_TOKENS,
        metadata={
            "style": shape.style,
            "vocab_size": shape.vocab_size,
            "hidden": shape.hidden,
            "layers": shape.layers,
            "heads": shape.heads,
            "kv_heads": shape.kv_heads,
            "intermediate": shape.intermediate,
            "max_positions": shape.max_positions,
            "tie_embeddings": shape.tie_embeddings,
            "params": shape.parameter_count(),
        },
        generation=GenerationSpec(
            vocab_size=shape.vocab_size,
            max_positions=shape.max_positions,
            make_prompts=partial(random_prompts, shape.vocab_size),
            new_session=new_session,
        ),
    )
