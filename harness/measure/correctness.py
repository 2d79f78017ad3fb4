"""Compare a backend's output with the eager fp32 CPU reference.

The error is normwise: max |out − ref| over max |ref|, per output tensor, then the worst. An
elementwise relative error explodes on outputs near zero, which every real model has, while a
normwise one stays meaningful and still catches a wrong kernel or a broken compile.
"""

from __future__ import annotations

from typing import Any

__all__ = ["TOLERANCES", "max_relative_error", "tolerance_for"]

#: Normwise tolerances by dtype: a few hundred ulps of the dtype, to allow for the different
#: summation orders of compiled, fused and reduced-precision kernels across deep models.
TOLERANCES: dict[str, float] = {"fp32": 1e-4, "tf32": 5e-3, "fp16": 2e-2, "bf16": 6e-2}


def tolerance_for(dtype: str) -> float:
    return TOLERANCES.get(dtype, 6e-2)


def max_relative_error(reference: Any, output: Any) -> float:
    """Worst normwise relative error over the matching tensor leaves of two outputs."""
    import torch
    from torch.utils._pytree import tree_leaves

    ref_leaves = [t for t in tree_leaves(reference) if isinstance(t, torch.Tensor)]
    out_leaves = [t for t in tree_leaves(output) if isinstance(t, torch.Tensor)]
    if len(ref_leaves) != len(out_leaves):
        raise ValueError(f"output has {len(out_leaves)} tensors but the reference has {len(ref_leaves)}")
    worst = 0.0
    for ref, out in zip(ref_leaves, out_leaves, strict=False):
        if ref.shape != out.shape:
            raise ValueError(f"output shape {tuple(out.shape)} differs from reference {tuple(ref.shape)}")
        if not ref.is_floating_point():
            worst = max(worst, 0.0 if torch.equal(ref, out) else float("inf"))
            continue
        ref64, out64 = ref.double(), out.double()
        if not torch.isfinite(out64).all():
            return float("inf")
        scale = ref64.abs().max().item()
        diff = (out64 - ref64).abs().max().item()
        worst = max(worst, diff / scale if scale > 0 else diff)
    return worst
