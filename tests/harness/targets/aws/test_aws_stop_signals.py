"""The launcher's one stop-signal handler: the first signal interrupts, every later one is dropped.

Two signals that come together (a Ctrl-C pressed again; systemd's stop, SIGTERM then SIGHUP) run
their handlers back to back: CPython runs a tripped signal's handler at the next check after the
first handler raised (Modules/signalmodule.c, ``_PyErr_CheckSignalsTstate`` re-arms the rest), and
that check can come while the first interrupt is being handled, before any teardown-only handler
is in place. So the handler itself must know the run is already stopping.
"""

from __future__ import annotations

import signal

import pytest

from harness.run.signals import Interrupted
from harness.targets.aws.orchestrator import _Run


def test_the_first_stop_signal_interrupts_and_later_ones_are_dropped() -> None:
    run = object.__new__(_Run)  # the handler needs no AWS: only the run's ``stopping``
    run.stopping = False
    with pytest.raises(Interrupted) as caught:
        run.on_stop_signal(signal.SIGTERM, None)
    assert caught.value.signum == signal.SIGTERM and run.stopping
    for signum in (signal.SIGHUP, signal.SIGINT, signal.SIGTERM):
        run.on_stop_signal(signum, None)  # returns: nothing raised


def test_a_run_that_is_tearing_down_drops_even_its_first_signal() -> None:
    run = object.__new__(_Run)
    run.stopping = True  # set as the teardown begins
    run.on_stop_signal(signal.SIGINT, None)  # returns: nothing raised
    assert run.stopping
