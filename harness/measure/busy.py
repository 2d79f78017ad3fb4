"""Whether other work competes for the cores: the witness cells and the peak cache share.

A cell warns when its latencies may be inflated by someone else's work, and the matmul-peak cache
refuses to keep a peak measured meanwhile; both ask this one rule. Where the kernel's counters
saw the cell's own window (``harness.measure.contention``) they decide; the load average, which
lags by a minute and counts our own threads, is the witness only where they cannot.
"""

from __future__ import annotations

import os
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from harness.measure.contention import Contention

__all__ = ["BUSY_MARGIN", "busy_machine_warning"]

#: Load above the core count, beyond this margin, means work other than ours competed for cores.
BUSY_MARGIN = 0.5


def busy_machine_warning(threads: int, window: Contention | None = None) -> str | None:
    """A warning when other work competed for the cores during the cell, else None.

    Intra-op thread pools spin at barriers: when another process holds a core that one of our
    threads needs, a parallel region waits for a scheduler time slice, and latency can grow a
    hundredfold. The one-minute load average, taken at the end of the cell, is a cheap witness.
    """
    if window is not None and window.foreign_cores is not None:
        if not window.busy:
            return None
        return (
            f"busy machine: {window.describe()} while this cell used {threads} thread(s); other work may have "
            "inflated the latencies"
        )
    try:
        load = os.getloadavg()[0]
        cores = len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        return None
    if load > cores + BUSY_MARGIN:
        return (
            f"busy machine: load average {load:.1f} on {cores} cores while this cell used {threads} "
            "thread(s); other work may have inflated the latencies"
        )
    return None
