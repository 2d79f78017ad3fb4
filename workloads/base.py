"""The workload contract: a model built from code plus a way to make its inputs.

A workload never downloads anything: ``build_model`` constructs the architecture with seeded
random weights, so every backend, process and machine times the same arithmetic.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Protocol, runtime_checkable

if TYPE_CHECKING:
    import torch

__all__ = ["GenerationSession", "GenerationSpec", "Workload", "WorkloadFactory", "WorkloadFamily"]


@runtime_checkable
class GenerationSession(Protocol):
    """One batch of sequences being generated, over a static KV cache.

    ``prefill`` and ``decode`` are modules whose ``forward()`` takes no arguments: the prompt, the
    tokens produced so far, the position and the cache are buffers they own and update in place.
    So a backend prepares them like any model (cast, place, compile, trace) with no new interface,
    every call has static shapes, and the greedy token never leaves the device between steps.
    ``prefill()`` reads the prompt, fills the cache and writes the first output token;
    each ``decode()`` feeds back the last token and writes the next. Both return the logits
    (batch, vocabulary) of the position they just processed.

    Optionally, ``parameter_steps()`` returns (prefill, decode, prefill_inputs, decode_inputs) for
    backends whose compiled models do not keep buffer updates between calls (Neuron's ``trace``):
    the decode step holds its state as parameters that the backend aliases, and the prefill
    computes the whole initial state from the prompt and resets the decode step's state to it
    (see ``workloads.decoder.ParameterDecode`` and ``PromptPrefill``).
    """

    @property
    def prefill(self) -> torch.nn.Module: ...

    @property
    def decode(self) -> torch.nn.Module: ...

    def load_prompts(self, prompts: torch.Tensor) -> None:
        """Copy int64 prompt ids (batch, prompt_tokens) into the session, wherever it now lives."""
        ...

    def generated(self) -> torch.Tensor:
        """The output tokens written so far, (batch, output_tokens), on the host."""
        ...


@dataclass(frozen=True)
class GenerationSpec:
    """What a decoder workload adds so the ``generate`` and ``server`` scenarios can drive it.

    ``new_session(model, batch_size, prompt_tokens, output_tokens)`` builds a session sharing
    ``model``'s weights with a cache sized for exactly that many tokens; ``make_prompts(batch_size,
    prompt_tokens)`` gives seeded random prompt ids. Generation is greedy and ignores end-of-sequence,
    so every request produces exactly ``output_tokens`` tokens.
    """

    vocab_size: int
    max_positions: int
    make_prompts: Callable[[int, int], torch.Tensor]
    new_session: Callable[[torch.nn.Module, int, int, int], GenerationSession]


@dataclass(frozen=True)
class Workload:
    """One model at one size, ready to be built and fed.

    ``make_inputs(batch_size)`` returns the positional arguments of one forward call; the model's
    output may be a tensor or any pytree of tensors. ``tokens_per_sample`` is set by workloads whose
    cost is quoted per token (the sequence length of an encoder, say), and is 0 otherwise.
    ``generation`` is set by decoder LLMs only: the forward pass of ``build_model`` is then one
    uncached prefill of ``make_inputs``' prompt, and the spec drives token-by-token generation.
    """

    name: str
    preset: str
    build_model: Callable[[], torch.nn.Module]
    make_inputs: Callable[[int], tuple[torch.Tensor, ...]]
    task: str = "custom"
    description: str = ""
    tokens_per_sample: int = 0
    metadata: Mapping[str, Any] = field(default_factory=dict)
    generation: GenerationSpec | None = None


@runtime_checkable
class WorkloadFactory(Protocol):
    """What a plug-in provides: called with a preset name (or None for its default)."""

    def __call__(self, preset: str | None = None) -> Workload: ...


@dataclass(frozen=True)
class WorkloadFamily:
    """A named workload with several sizes: ``tiny`` for CI and the published size as default.

    Built-in workloads are families; a plug-in may be one too, or any ``WorkloadFactory``.
    """

    name: str
    description: str
    presets: Mapping[str, Callable[[], Workload]]
    default_preset: str

    def __call__(self, preset: str | None = None) -> Workload:
        from harness.errors import UnknownNameError

        chosen = preset or self.default_preset
        try:
            make = self.presets[chosen]
        except KeyError:
            raise UnknownNameError(f"preset of workload {self.name!r}", chosen, self.presets) from None
        return make()
