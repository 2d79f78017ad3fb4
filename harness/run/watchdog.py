"""A deadline kept by its own thread, for cells measured in this process.

A cell in this process cannot be stopped from inside when it hangs: a hung C call never returns
to run a Python signal handler or check a flag. A watchdog thread still runs (a blocked C call in
PyTorch, a lock or a socket releases the GIL), so when the deadline passes it can save the run
file and end the process; that is all it can do, which is why the message it leads to names
``--isolate``, where the parent kills the cell's process and the run goes on.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable

__all__ = ["Watchdog"]


class Watchdog:
    """Calls ``on_expire()`` once, in its own thread, if an armed deadline passes.

    ``disarm()`` waits for an ``on_expire`` already running, so the caller and the watchdog
    never write the run file at the same time; it returns False if the deadline had passed.
    """

    def __init__(self, on_expire: Callable[[], None], clock: Callable[[], float] = time.monotonic) -> None:
        self._on_expire = on_expire
        self._clock = clock
        self._cond = threading.Condition()
        self._deadline: float | None = None
        self._fired = False
        self._closed = False
        self._thread = threading.Thread(target=self._loop, name="siliconbench-watchdog", daemon=True)
        self._thread.start()

    def arm(self, limit_s: float) -> None:
        """Expire ``limit_s`` seconds from now (replacing any deadline already armed)."""
        with self._cond:
            self._deadline = self._clock() + limit_s
            self._cond.notify()

    def disarm(self) -> bool:
        """Cancel the deadline; False if it had already expired."""
        with self._cond:
            self._deadline = None
            self._cond.notify()
            return not self._fired

    def close(self) -> None:
        with self._cond:
            self._closed = True
            self._deadline = None
            self._cond.notify()
        self._thread.join(timeout=5)

    def _loop(self) -> None:
        with self._cond:
            while not self._closed:
                if self._deadline is None:
                    self._cond.wait()
                    continue
                remaining = self._deadline - self._clock()
                if remaining > 0:
                    self._cond.wait(timeout=min(remaining, 1.0))
                    continue
                self._fired = True
                self._deadline = None
                self._on_expire()  # under the lock: disarm() waits for it
