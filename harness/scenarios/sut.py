"""A system under test that takes *new* samples: what ``offline`` and LoadGen drive.

The ``latency``, ``throughput`` and ``server`` scenarios call a model on inputs bound once on the
device. ``offline`` and LoadGen instead hand the system sample indices into a host-side sample
library, as a real batch job or server does, so each batch is gathered on the host, copied to the
device, run, and its result copied back: that data movement is part of what they measure.

New inputs reach a prepared model without a new backend interface: a plain model is wrapped in
``harness.scenarios.staged.StagedModel``, whose inputs are buffers that the backend places like
any weights and that are refilled in place before each call (static shapes, so compiled and
traced code is reused). A decoder session already works this way (its prompt buffer). Batches are always full: a short
batch is padded by repeating its last sample, and the padding's results are discarded.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

import torch

from harness.scenarios.base import CellContext
from harness.scenarios.prepare import Prepared

if TYPE_CHECKING:
    from harness.scenarios.decoding import PreparedDecoder

__all__ = ["LIBRARY_MIN", "BatchRunner", "build_runner", "library_size"]

#: The sample library holds at least this many samples (and at least four batches).
LIBRARY_MIN = 16


def library_size(batch_size: int) -> int:
    return max(LIBRARY_MIN, 4 * batch_size)


def _padded(indices: Sequence[int], batch_size: int) -> torch.Tensor:
    if not 1 <= len(indices) <= batch_size:
        raise ValueError(f"a batch holds 1 to {batch_size} samples, got {len(indices)}")
    rows = list(indices) + [indices[-1]] * (batch_size - len(indices))
    return torch.tensor(rows, dtype=torch.int64)


@dataclass
class BatchRunner:
    """Runs a batch of library samples end to end; returns the clock at each output token.

    ``details`` carries what the cell record needs from preparation (correctness, FLOPs, ...).
    """

    batch_size: int
    library_size: int
    output_tokens: int
    run: Callable[[Sequence[int], Callable[[], int], Callable[[], None] | None], list[int]]
    details: Prepared


def _forward_runner(ctx: CellContext) -> BatchRunner:
    from harness.scenarios.prepare import prepare_checked

    backend, batch = ctx.backend, ctx.config.batch_size
    checked = prepare_checked(ctx, staged=True)
    staged, call = checked.staged, checked.prepared.call
    assert staged is not None
    size = library_size(batch)
    library = ctx.workload.make_inputs(size)
    synchronize, to_host = backend.synchronize, backend.to_host

    def run(indices: Sequence[int], clock: Callable[[], int], on_first: Callable[[], None] | None = None) -> list[int]:
        rows = _padded(indices, batch)
        staged.feed([tensor.index_select(0, rows) for tensor in library])
        to_host(call())
        synchronize()
        if on_first is not None:
            on_first()
        return [clock()]

    details = Prepared(
        flops=checked.flops_per_inference,
        correctness=checked.correctness,
        warning=checked.warning,
        device=checked.prepared.details,
        compile_s=checked.prepared.compile_s,
        decoder=False,
        tokens_per_sample=ctx.workload.tokens_per_sample,
    )
    return BatchRunner(batch, size, 1, run, details)


def _decoder_runner(ctx: CellContext) -> BatchRunner:
    from harness.scenarios.decoding import prepare_decoder, require_generation

    spec = require_generation(ctx)
    params, batch, backend = ctx.config.params, ctx.config.batch_size, ctx.backend
    size = library_size(batch)
    library = spec.make_prompts(size, params.prompt_tokens)
    prepared: PreparedDecoder
    prepared, check = prepare_decoder(ctx, batch, library[:batch])
    session, synchronize = prepared.session, backend.synchronize

    def run(indices: Sequence[int], clock: Callable[[], int], on_first: Callable[[], None] | None = None) -> list[int]:
        session.load_prompts(library.index_select(0, _padded(indices, batch)))
        times = prepared.request(clock, synchronize, on_first)
        session.generated()
        return times

    details = Prepared(
        flops=check.flops_per_request / batch,
        correctness=check.correctness,
        warning=check.warning,
        device=prepared.prefill.details,
        compile_s=prepared.compile_s,
        decoder=True,
        token_agreement=check.token_agreement,
        tokens_per_sample=params.prompt_tokens + params.output_tokens,
    )
    return BatchRunner(batch, size, params.output_tokens, run, details)


def build_runner(ctx: CellContext) -> BatchRunner:
    """The batch runner of the cell: generation for decoders, a staged forward pass otherwise."""
    return _decoder_runner(ctx) if ctx.workload.generation is not None else _forward_runner(ctx)
