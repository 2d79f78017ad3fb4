"""Decoder plumbing shared by the ``generate``, ``server``, ``offline`` and LoadGen scenarios.

A decoder is checked and prepared once per cell: the fp32 CPU session gives the reference
(prefill logits, the first greedy tokens, FLOPs per prefill and per decode step); then the
backend prepares the same session's ``prefill`` and ``decode`` modules like any model, and the
prepared session must reproduce the reference logits within the dtype's tolerance. A backend that
cannot keep buffers updated in place between calls (Neuron's ``trace``) prepares the session's
parameter steps instead: the decode step holds the state as parameters, the prefill resets it.

One request of ``output_tokens`` tokens is one prefill and ``output_tokens - 1`` decode steps,
each followed by the backend's synchronize and a clock reading: the token timeline.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from harness.errors import ConfigError
from harness.runfile.records import Correctness
from harness.scenarios.base import CellContext, correctness_record

if TYPE_CHECKING:
    import torch

    from backends.base import PreparedModel
    from workloads.base import GenerationSession, GenerationSpec

__all__ = [
    "REFERENCE_TOKENS",
    "DecoderCheck",
    "PreparedDecoder",
    "prepare_decoder",
    "prepare_worker",
    "require_generation",
]

#: Greedy tokens compared with the fp32 reference: enough to see the cache work, few enough that
#: the CPU reference of an 8B model stays affordable. Reduced precision may legitimately diverge
#: (random weights give near-tied logits), so agreement is reported, not judged; logits are judged.
REFERENCE_TOKENS = 8


def require_generation(ctx: CellContext) -> GenerationSpec:
    """The workload's generation spec, or a one-line error naming the decoders."""
    spec = ctx.workload.generation
    if spec is None:
        raise ConfigError(
            f"scenario {ctx.config.scenario!r} with token counts needs a decoder workload (llama, gpt2); "
            f"{ctx.config.workload!r} has no generation spec"
        )
    params = ctx.config.params
    if params.prompt_tokens + params.output_tokens > spec.max_positions:
        raise ConfigError(
            f"--prompt-tokens {params.prompt_tokens} + --output-tokens {params.output_tokens} exceed "
            f"{ctx.config.workload}'s {spec.max_positions} positions"
        )
    return spec


@dataclass
class PreparedDecoder:
    """A session whose steps the backend prepared; ``request`` runs one timed generation."""

    session: GenerationSession
    prefill: PreparedModel
    decode: PreparedModel | None
    output_tokens: int

    @property
    def compile_s(self) -> float:
        return self.prefill.compile_s + (self.decode.compile_s if self.decode else 0.0)

    def request(
        self, clock: Callable[[], int], synchronize: Callable[[], None], on_first: Callable[[], None] | None = None
    ) -> list[int]:
        """Generate ``output_tokens`` tokens for the loaded prompts; the clock after each one.

        ``on_first`` is called as soon as the first token is ready (LoadGen's FirstTokenComplete).
        """
        times = []
        self.prefill.call()
        synchronize()
        times.append(clock())
        if on_first is not None:
            on_first()
        decode = self.decode
        if decode is not None:
            step = decode.call
            for _ in range(self.output_tokens - 1):
                step()
                synchronize()
                times.append(clock())
        return times


@dataclass(frozen=True)
class DecoderCheck:
    """The correctness of a prepared decoder against the fp32 CPU reference, and its cost."""

    correctness: Correctness
    warning: str | None
    token_agreement: float
    reference_tokens: int
    flops_per_request: float


def _keeps_buffer_updates(ctx: CellContext) -> bool:
    """Whether the backend, with this cell's options, keeps in-place buffer updates between calls."""
    per_options = getattr(ctx.backend, "keeps_buffer_updates", None)
    if callable(per_options):
        return bool(per_options(ctx.options))
    return bool(getattr(ctx.backend, "stateful_buffers", True))


def _steps(
    ctx: CellContext, session: GenerationSession
) -> tuple[Any, Any, tuple[torch.Tensor, ...], tuple[torch.Tensor, ...]]:
    """The prefill and decode modules the backend can run, and the inputs to bind to each.

    A backend whose compiled models do not keep in-place buffer updates between calls (Neuron's
    ``trace`` compiles buffers in as constants) gets the session's parameter steps: a decode step
    holding its state as parameters for the backend to alias, and a prefill that resets that state.
    """
    if _keeps_buffer_updates(ctx):
        return session.prefill, session.decode, (), ()
    steps = getattr(session, "parameter_steps", None)
    if steps is None:
        raise ConfigError(
            f"backend {ctx.backend.name!r} cannot keep a KV cache in module buffers, and {ctx.config.workload!r}'s "
            "generation session offers no parameter_steps(); run it on a backend such as cpu or cuda"
        )
    prefill, decode, prefill_inputs, decode_inputs = steps()
    return prefill, decode, tuple(prefill_inputs), tuple(decode_inputs)


def _prepare_steps(ctx: CellContext, session: GenerationSession, output_tokens: int) -> PreparedDecoder:
    prefill_step, decode_step, prefill_inputs, decode_inputs = _steps(ctx, session)
    prefill = ctx.backend.prepare(prefill_step, prefill_inputs, ctx.options)
    decode = ctx.backend.prepare(decode_step, decode_inputs, ctx.options) if output_tokens > 1 else None
    return PreparedDecoder(session, prefill, decode, output_tokens)


def prepare_decoder(ctx: CellContext, batch_size: int, prompts: torch.Tensor) -> tuple[PreparedDecoder, DecoderCheck]:
    """Reference, prepare and check a decoder session for ``prompts`` (batch_size, prompt_tokens)."""
    import torch

    from harness.measure.correctness import max_relative_error
    from harness.measure.flops import flop_counter

    spec = require_generation(ctx)
    params = ctx.config.params
    output_tokens = params.output_tokens
    reference_tokens = min(output_tokens, REFERENCE_TOKENS)

    ctx.phase = "reference"
    session = spec.new_session(ctx.model, batch_size, params.prompt_tokens, output_tokens)
    session.load_prompts(prompts)
    with torch.inference_mode():
        with flop_counter() as counter:
            reference_logits = session.prefill().float().cpu()
        prefill_flops = counter.get_total_flops()
        decode_flops = 0
        for step in range(reference_tokens - 1):
            if step == 0:
                with flop_counter() as counter:
                    session.decode()
                decode_flops = counter.get_total_flops()
            else:
                session.decode()
    reference = session.generated()[:, :reference_tokens].clone()
    # Every decode step attends to the whole static cache, so all cost the same as the first.
    flops = float(prefill_flops + decode_flops * (output_tokens - 1))
    # A fresh session for the backend: tokens the prepared steps fail to write stay zero and are
    # counted as disagreeing, instead of the reference's own tokens being read back.
    del session
    session = spec.new_session(ctx.model, batch_size, params.prompt_tokens, output_tokens)
    session.load_prompts(prompts)

    ctx.phase = "prepare"
    ctx.backend.reset_peak_memory()
    prepared = _prepare_steps(ctx, session, output_tokens)

    ctx.phase = "correctness"
    output = prepared.prefill.call()
    if isinstance(output, tuple | list):  # a functional step returns its logits first, then its state
        output = output[0]
    logits = ctx.backend.to_host(output)
    for _ in range(reference_tokens - 1):
        assert prepared.decode is not None
        prepared.decode.call()
    ctx.backend.synchronize()
    error = max_relative_error(reference_logits, logits)
    record, warning = correctness_record(error, ctx.config.dtype, "cpu eager fp32 prefill logits")
    tokens = session.generated()[:, :reference_tokens]
    agreement = float((tokens == reference).float().mean().item())
    check = DecoderCheck(record, warning, agreement, reference_tokens, flops)
    return prepared, check


def prepare_worker(ctx: CellContext, batch_size: int, prompts: torch.Tensor) -> PreparedDecoder:
    """Another session on the already prepared weights (its own cache), for a concurrent slot."""
    spec = require_generation(ctx)
    params = ctx.config.params
    session = spec.new_session(ctx.model, batch_size, params.prompt_tokens, params.output_tokens)
    session.load_prompts(prompts)
    return _prepare_steps(ctx, session, params.output_tokens)
