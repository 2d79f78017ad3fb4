"""Exit codes of every command, in one place (the README lists them).

====  ===============================================================================
0     success
1     a run finished but a cell failed (or the regression gate tripped)
2     bad input, or a precondition the user must fix (preflight); one line, no traceback
3     a cloud or environment failure during a run (an instance, a bootstrap, the disk)
128+N ended by signal N: 130 for Ctrl-C (SIGINT), 143 for SIGTERM, 129 for SIGHUP;
      the run file's status says ``interrupted``
====  ===============================================================================
"""

from __future__ import annotations

import signal

__all__ = ["EXIT_CELL_FAILED", "EXIT_ENVIRONMENT", "EXIT_OK", "EXIT_USAGE", "exit_for_signal"]

EXIT_OK = 0
EXIT_CELL_FAILED = 1
EXIT_USAGE = 2
EXIT_ENVIRONMENT = 3


def exit_for_signal(signum: int = signal.SIGINT) -> int:
    """The shell's convention for a process ended by ``signum``."""
    return 128 + int(signum)
