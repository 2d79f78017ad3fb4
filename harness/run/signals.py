"""SIGINT, SIGTERM and SIGHUP end any run the same way: as an ``Interrupted`` exception.

A terminal's Ctrl-C (SIGINT), a job scheduler or ``kill`` (SIGTERM) and a closed terminal or SSH
session (SIGHUP) all mean "stop now, keep what was measured". Turning each into one exception
raised in the main thread lets the runner mark the run file ``interrupted`` and the CLI print the
table of what was measured and exit with 128 + the signal's number (130, 143, 129), the shell's
own convention, so a caller can tell which signal ended the run.

``Interrupted`` is a ``KeyboardInterrupt``: code that already cleans up on Ctrl-C (every
``finally``, the AWS teardown) cleans up on the other two as well. While cleaning up,
``signals_held()`` notes further signals instead of raising, so a second Ctrl-C cannot tear a
teardown or the last write of the run file in half. ``signals_deferred()`` holds them the same way
around a call that creates something (an AWS resource) and the line that records it, then raises
the first one: a create that returned is always recorded, so teardown always knows to undo it.
"""

from __future__ import annotations

import signal
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from types import FrameType

__all__ = ["STOP_SIGNALS", "Interrupted", "exit_code", "signals_deferred", "signals_held", "signals_interrupt"]

#: The signals that end a run cleanly, in the order the module docstring names them.
STOP_SIGNALS: tuple[signal.Signals, ...] = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)


class Interrupted(KeyboardInterrupt):
    """A stop signal arrived; ``signum`` says which (SIGINT for a plain KeyboardInterrupt)."""

    def __init__(self, signum: int = signal.SIGINT) -> None:
        super().__init__(f"signal {signal.Signals(signum).name}")
        self.signum = int(signum)


def exit_code(exc: BaseException) -> int:
    """128 + the signal's number for an interrupt (130 for a plain KeyboardInterrupt)."""
    return 128 + int(getattr(exc, "signum", signal.SIGINT))


def _raise(signum: int, frame: FrameType | None) -> None:
    raise Interrupted(signum)


def _in_main_thread() -> bool:
    return threading.current_thread() is threading.main_thread()


@contextmanager
def signals_interrupt() -> Iterator[None]:
    """Within the block, each stop signal raises ``Interrupted`` in the main thread.

    Outside the main thread (where Python cannot install handlers) this does nothing; the
    previous handlers come back on exit.
    """
    if not _in_main_thread():
        yield
        return
    previous = {sig: signal.signal(sig, _raise) for sig in STOP_SIGNALS}
    try:
        yield
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)


class HeldSignals:
    """The stop signals that arrived while held (the first one decides the exit code)."""

    def __init__(self) -> None:
        self.received: list[int] = []

    def note(self, signum: int, frame: FrameType | None) -> None:
        self.received.append(int(signum))


@contextmanager
def signals_held() -> Iterator[HeldSignals]:
    """Within the block, stop signals are noted, not raised: for teardown and final writes."""
    held = HeldSignals()
    if not _in_main_thread():
        yield held
        return
    previous = {sig: signal.signal(sig, held.note) for sig in STOP_SIGNALS}
    try:
        yield held
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)


@contextmanager
def signals_deferred() -> Iterator[None]:
    """Within the block, stop signals are noted; on leaving it the first one is raised as
    ``Interrupted`` (chained to the block's own exception, if it raised one)."""
    with signals_held() as held:
        try:
            yield
        except BaseException as exc:
            if held.received:
                raise Interrupted(held.received[0]) from exc
            raise
    if held.received:
        raise Interrupted(held.received[0])
