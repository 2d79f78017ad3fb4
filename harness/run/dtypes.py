"""Which dtypes a suite measures on each backend, given what its silicon runs natively.

The default suite measures what a user of this silicon would deploy: a dtype the silicon only
emulates (bf16 on an AVX2-only CPU: converted to fp32 in software, 10-40x slower) is left out of
it, and the run file and table name it and why. A dtype the user asked for explicitly (``--dtype``
or a suite file) is measured anyway, since that is the question asked, but the cell is marked
``emulated`` and a warning says so.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from harness.runfile.silicon import Capability, DtypeLeftOut

__all__ = ["DtypePlan", "plan_dtypes"]


@dataclass(frozen=True)
class DtypePlan:
    """Per backend, the dtypes to measure; what was left out; and why each emulated one is."""

    dtypes: dict[str, tuple[str, ...]]
    left_out: tuple[DtypeLeftOut, ...]
    #: (backend, dtype) -> why the silicon emulates it, for dtypes measured anyway.
    emulated: dict[tuple[str, str], str]

    def warnings(self) -> list[str]:
        """One line per emulated dtype measured, and per dtype left out, for the command line."""
        lines = [
            f"{backend} {dtype} is emulated on this silicon ({why}); measured because it was asked for, marked emulated"
            for (backend, dtype), why in self.emulated.items()
        ]
        lines += [
            f"{left.dtype} left out of the default suite on {left.backend}: {left.reason}; "
            f"--dtype {left.dtype} measures it anyway"
            for left in self.left_out
        ]
        return lines


def plan_dtypes(
    backends: Sequence[str],
    requested: Sequence[str],
    explicit: bool,
    capabilities: Mapping[str, Capability],
) -> DtypePlan:
    """The dtypes to measure per backend.

    ``explicit`` is whether the user named the dtypes; a backend with no capability record (an
    engine, a plugin) measures every requested dtype as asked. A default suite never plans zero
    dtypes on a backend: if its silicon runs none natively, the first requested one stays, marked.
    """
    dtypes: dict[str, tuple[str, ...]] = {}
    left: list[DtypeLeftOut] = []
    emulated: dict[tuple[str, str], str] = {}
    for backend in backends:
        capability = capabilities.get(backend)
        kept: list[str] = []
        for dtype in requested:
            support = capability.support(dtype) if capability is not None else None
            if support is None or support.native:
                kept.append(dtype)
            elif explicit:
                kept.append(dtype)
                emulated[(backend, dtype)] = support.why
            else:
                left.append(DtypeLeftOut(backend, dtype, support.why))
        if not kept:
            first = left.pop(next(i for i, out in enumerate(left) if out.backend == backend))
            kept.append(first.dtype)
            emulated[(backend, first.dtype)] = first.reason
        dtypes[backend] = tuple(kept)
    return DtypePlan(dtypes, tuple(left), emulated)
