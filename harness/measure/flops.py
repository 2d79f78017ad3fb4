"""Counting model FLOPs with ``torch.utils.flop_counter``, attention on CPU included.

Users run attention through ``scaled_dot_product_attention`` (transformers' default), and on CPU
torch dispatches it to ``aten._scaled_dot_product_flash_attention_for_cpu``, for which torch's
flop counter has no formula (torch 2.13 counts only the CUDA kernels): attention would count 0
FLOPs and a model measured as users run it would look less busy than it is. So we register the
formula torch uses for its CUDA kernels — two batched products, Q·Kᵀ and P·V, 2 FLOPs per
multiply-add; the mask, the softmax and a causal skip are not counted, as on CUDA — and every
counter the harness opens goes through ``flop_counter()``, which registers it first.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from torch.utils.flop_counter import FlopCounterMode

__all__ = ["attention_flops", "flop_counter", "register_attention_formulas"]


def attention_flops(query_shape: Any, key_shape: Any, value_shape: Any) -> int:
    """FLOPs of softmax(Q·Kᵀ)·V for (batch, heads, length, dim) shapes; key/value heads may be fewer
    (grouped-query attention broadcasts them), which does not change the arithmetic per query head."""
    batch, heads, q_len, dim = (int(v) for v in query_shape)
    k_len = int(key_shape[-2])
    v_dim = int(value_shape[-1])
    return 2 * batch * heads * q_len * k_len * dim + 2 * batch * heads * q_len * k_len * v_dim


def _cpu_flash_flops(
    query_shape: Any, key_shape: Any, value_shape: Any, *args: Any, out_shape: Any = None, **kwargs: Any
) -> int:
    return attention_flops(query_shape, key_shape, value_shape)


def register_attention_formulas() -> None:
    """Register the CPU attention kernel's formula once (a torch that has its own keeps it)."""
    import torch
    from torch.utils import flop_counter

    target = getattr(torch.ops.aten, "_scaled_dot_product_flash_attention_for_cpu", None)
    if target is None or target in flop_counter.flop_registry:
        return
    flop_counter.register_flop_formula(target)(_cpu_flash_flops)


def flop_counter() -> FlopCounterMode:
    """A quiet ``FlopCounterMode`` that counts CPU attention too."""
    from torch.utils.flop_counter import FlopCounterMode

    register_attention_formulas()
    return FlopCounterMode(display=False)
