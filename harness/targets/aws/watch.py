"""Follow one launched instance until it finishes, fails or goes quiet, from what it reports.

The instance speaks only through S3 (``heartbeat.json``, ``error.json``) and EC2 (its state), so
this is all polling, with three separate limits: bootstrap (no agent heartbeat yet), silence (the
agent stopped writing heartbeats: a crash, a hang, a lost network) and the whole run (--max-hours).
Freshness is judged by change in the heartbeat, on this machine's clock, never by comparing clocks.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from harness.errors import CloudError
from harness.targets.aws import storage
from harness.targets.aws.launch import describe_instance

__all__ = ["Event", "InstanceWatch", "ProgressCallback", "Timing", "describe_heartbeat"]

GONE_STATES = ("shutting-down", "terminated", "stopping", "stopped")


@dataclass(frozen=True)
class Timing:
    """How often to look and how long to wait; tests shrink these to milliseconds."""

    poll_s: float = 10.0
    running_timeout_s: float = 900.0
    bootstrap_timeout_s: float = 2400.0
    stale_timeout_s: float = 600.0
    heartbeat_s: float = 30.0
    teardown_timeout_s: float = 600.0
    teardown_poll_s: float = 5.0
    profile_wait_s: float = 90.0
    profile_retry_s: float = 5.0


@dataclass(frozen=True)
class Event:
    """A progress report about one instance, for the CLI to print."""

    instance_type: str
    state: str
    detail: str = ""
    instance_id: str | None = None


ProgressCallback = Callable[[Event], None]


def describe_heartbeat(heartbeat: dict[str, Any]) -> str:
    """One line of progress: the bootstrap step, or cells done and the cell being measured."""
    state = heartbeat.get("state", "?")
    if heartbeat.get("phase") == "bootstrap":
        return str(heartbeat.get("message") or state)
    total = heartbeat.get("cells_total")
    text = f"cells {heartbeat.get('cells_done', 0)}/{total if total is not None else '?'}"
    if heartbeat.get("failed_cells"):
        text += f" ({heartbeat['failed_cells']} failed)"
    if heartbeat.get("current_cell"):
        text += f", measuring {heartbeat['current_cell']}"
    return text


class InstanceWatch:
    """Polls one instance; ``follow`` returns its final heartbeat or raises a one-line CloudError."""

    def __init__(
        self,
        ec2: Any,
        store: storage.RunStore,
        instance_type: str,
        instance_id: str,
        timing: Timing,
        max_hours: float,
        *,
        check_cancel: Callable[[], None],
        emit: Callable[[str, str, str, str | None], None],
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.ec2, self.store, self.timing, self.max_hours = ec2, store, timing, max_hours
        self.check_cancel, self.emit, self.clock, self.sleep = check_cancel, emit, clock, sleep
        self.name = f"{instance_type} instance {instance_id}"
        self.instance_type, self.instance_id = instance_type, instance_id

    def _state(self) -> tuple[str, str]:
        described = describe_instance(self.ec2, self.instance_id)
        if described is None:
            return "terminated", "EC2 no longer knows it"
        return described["State"]["Name"], described.get("StateReason", {}).get("Message", "no reason given")

    def wait_running(self) -> float:
        """Wait for EC2 to report it running; returns when that was, on ``clock``."""
        started = self.clock()
        while True:
            self.check_cancel()
            state, reason = self._state()
            if state == "running":
                return started
            if state in GONE_STATES:
                raise CloudError(f"{self.name} went {state} before it was running: {reason}")
            if self.clock() - started > self.timing.running_timeout_s:
                raise CloudError(f"{self.name} was not running after {self.timing.running_timeout_s:.0f} s")
            self.sleep(self.timing.poll_s)

    def follow(self) -> dict[str, Any]:
        """Wait for running, then follow the heartbeat until it says complete."""
        timing = self.timing
        started = self.wait_running()
        self.emit(self.instance_type, "running", "bootstrapping", self.instance_id)
        running_at = last_change = self.clock()
        deadline = started + self.max_hours * 3600
        last: dict[str, Any] | None = None
        while True:
            self.check_cancel()
            heartbeat, error = self.store.get_json(storage.HEARTBEAT), self.store.get_json(storage.ERROR)
            now = self.clock()
            if error is not None:
                raise CloudError(
                    f"{self.name} failed in {error.get('phase', '?')}: {error.get('message', 'no message')}"
                )
            if heartbeat != last:
                last, last_change = heartbeat, now
                if heartbeat is not None:
                    self.emit(
                        self.instance_type, str(heartbeat.get("state")), describe_heartbeat(heartbeat), self.instance_id
                    )
            if heartbeat is not None and heartbeat.get("state") == "complete":
                return heartbeat
            if heartbeat is not None and heartbeat.get("state") in ("failed", "interrupted"):
                raise CloudError(f"{self.name} reported {heartbeat['state']}: {heartbeat.get('message', 'no message')}")
            in_bootstrap = heartbeat is None or heartbeat.get("phase") == "bootstrap"
            if heartbeat is None and now - running_at > timing.bootstrap_timeout_s:
                raise CloudError(
                    f"{self.name} never reported: no heartbeat {timing.bootstrap_timeout_s:.0f} s after it "
                    "started running (user data did not run?)"
                )
            if in_bootstrap and now - running_at > timing.bootstrap_timeout_s:
                raise CloudError(
                    f"{self.name} did not finish bootstrapping within {timing.bootstrap_timeout_s:.0f} s "
                    f"(last: {describe_heartbeat(heartbeat or {})})"
                )
            if not in_bootstrap and now - last_change > timing.stale_timeout_s:
                raise CloudError(
                    f"{self.name} stopped reporting: no heartbeat for {timing.stale_timeout_s:.0f} s "
                    "(the benchmark process died or hung)"
                )
            if now > deadline:
                raise CloudError(f"{self.name} ran past --max-hours {self.max_hours:g}")
            state, reason = self._state()
            if state != "running":
                final = self.store.get_json(storage.HEARTBEAT)  # it may have finished and powered off
                if final is not None and final.get("state") == "complete":
                    return final
                if self.store.get_json(storage.ERROR) is None:
                    raise CloudError(f"{self.name} went {state} before finishing: {reason}")
                continue  # its error report arrived meanwhile: the next pass raises it
            self.sleep(timing.poll_s)
