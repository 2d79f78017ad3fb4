"""Test doubles for what moto cannot do: boot an instance and run its user data.

``FakeFleet`` watches moto for running instances that siliconbench launched and plays each one:
it reads the instance's real user data back from EC2 and runs that script with bash, with two
stand-ins on PATH: ``shutdown`` (records its arguments) and the AMI's ``python`` (pip install is
recorded and not run, so nothing is installed; everything else, including ``python -m harness
agent``, runs this checkout's real code). There is no ``aws`` command: the script reaches S3 through
presigned URLs with the real ``curl``, then through the agent. test_aws_instance.py plays whole AMIs,
pip included, with no network. When moto reports an
instance terminated, its processes are killed, as termination would.
"""

from __future__ import annotations

import base64
import os
import signal
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

REPO_ROOT = Path(__file__).resolve().parents[4]
ACCOUNT_ID = "123456789012"
REGION = "us-east-1"

_FAKE_SHUTDOWN = """#!/bin/bash
echo "$*" >> "$FAKE_SHUTDOWN_LOG"
"""

_FAKE_PYTHON = """#!/bin/bash
# The AMI's PyTorch interpreter: pip install is recorded (and fails when FAKE_PIP_RC says so; takes
# FAKE_PIP_SLEEP seconds, as a large install does).
if [ "$1" = "-m" ] && [ "$2" = "pip" ] && [ "$3" = "install" ]; then
  echo "$*" >> "$FAKE_PIP_LOG"
  sleep "${FAKE_PIP_SLEEP:-0}"
  exit "${FAKE_PIP_RC:-0}"
fi
exec @PYTHON@ "$@"
"""


def seed_public_parameter(name: str, value: str, region: str = REGION) -> None:
    """Put an AWS-owned public parameter into the running moto server's store.

    Through the API moto (like AWS) refuses names under /aws/, so this goes to moto's backend
    object, which lives in this process because the server runs in a thread here.
    """
    from moto.core.utils import utcnow
    from moto.ssm.models import Parameter, ssm_backends

    store = ssm_backends[ACCOUNT_ID][region]._parameters
    store[name].append(
        Parameter(
            account_id=ACCOUNT_ID,
            name=name,
            value=value,
            parameter_type="String",
            description=None,
            allowed_pattern=None,
            keyid=None,
            last_modified_date=utcnow(),
            version=1,
            data_type="aws:ec2:image",
        )
    )


@dataclass
class Played:
    """One instance the fleet played: its user data, process and stand-in logs."""

    instance_id: str
    instance_type: str
    home: Path
    user_data: str = ""
    process: subprocess.Popen[bytes] | None = None
    behaviour: str = "boot"

    @property
    def shutdown_calls(self) -> list[str]:
        path = self.home / "shutdown.log"
        return path.read_text().splitlines() if path.exists() else []

    @property
    def pip_calls(self) -> list[str]:
        path = self.home / "pip.log"
        return path.read_text().splitlines() if path.exists() else []

    @property
    def log(self) -> str:
        path = self.home / "bootstrap.log"
        return path.read_text() if path.exists() else ""


@dataclass
class FakeFleet:
    """Boots (plays) every siliconbench instance that moto reports running."""

    ec2: Any
    env: dict[str, str]
    root: Path
    poll_s: float = 0.1
    behaviours: dict[str, str] = field(default_factory=dict)
    extra_env: dict[str, dict[str, str]] = field(default_factory=dict)
    played: dict[str, Played] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self._stop = threading.Event()
        self._ended: set[str] = set()
        self._boot_lock = threading.Lock()
        self._thread = threading.Thread(target=self._watch, name="fake-fleet", daemon=True)
        self.bin = self.root / "bin"
        self.bin.mkdir(parents=True, exist_ok=True)
        for name, text in (("shutdown", _FAKE_SHUTDOWN), ("python", _FAKE_PYTHON)):
            path = self.bin / name
            path.write_text(text.replace("@PYTHON@", sys.executable))
            path.chmod(0o755)

    def behave(self, instance_type: str, behaviour: str, **env: str) -> None:
        """``boot`` (run the user data), ``silent`` (never run it); env adds stand-in settings."""
        self.behaviours[instance_type] = behaviour
        self.extra_env[instance_type] = env

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=10)
        for played in self.played.values():
            _kill(played)

    def end(self, instance_ids: list[str]) -> None:
        """Stop these instances' played processes now, as termination does before EC2 reports it
        (a terminated instance runs nothing); one not yet booted never boots.

        EC2's word: TerminateInstances "shuts down one or more instances", which pass through
        ``shutting-down`` ("preparing to be terminated") to ``terminated`` ("permanently deleted";
        docs.aws.amazon.com/AWSEC2/latest/APIReference/API_TerminateInstances.html and the user
        guide's ec2-instance-lifecycle page, read 2026-12-03). Stopping them at the call, not at
        ``terminated``, is early; the launcher waits for ``terminated`` before it empties and
        deletes the bucket, so for what the sweep checks the two are the same.
        """
        with self._boot_lock:
            self._ended.update(instance_ids)
        for instance_id in instance_ids:
            played = self.played.get(instance_id)
            if played is not None:
                _kill(played)

    def wait_idle(self, timeout_s: float = 60.0) -> None:
        """Wait until every played bootstrap script has exited."""
        deadline = time.monotonic() + timeout_s
        for played in list(self.played.values()):
            if played.process is not None:
                played.process.wait(timeout=max(0.1, deadline - time.monotonic()))

    def _watch(self) -> None:
        while not self._stop.wait(self.poll_s):
            try:
                reservations = self.ec2.describe_instances(
                    Filters=[{"Name": "tag:siliconbench:managed", "Values": ["true"]}]
                )["Reservations"]
            except Exception:
                continue
            for reservation in reservations:
                for instance in reservation["Instances"]:
                    self._step(instance)

    def _step(self, instance: dict[str, Any]) -> None:
        instance_id, state = instance["InstanceId"], instance["State"]["Name"]
        played = self.played.get(instance_id)
        if played is None and state == "running":
            self._boot(instance)
        elif played is not None and state in ("shutting-down", "terminated"):
            _kill(played)

    def _boot(self, instance: dict[str, Any]) -> None:
        instance_id, instance_type = instance["InstanceId"], instance["InstanceType"]
        home = self.root / instance_id
        home.mkdir(parents=True, exist_ok=True)
        played = Played(instance_id, instance_type, home, behaviour=self.behaviours.get(instance_type, "boot"))
        self.played[instance_id] = played
        encoded = self.ec2.describe_instance_attribute(InstanceId=instance_id, Attribute="userData")
        played.user_data = base64.b64decode(encoded["UserData"]["Value"]).decode()
        if played.behaviour == "silent":
            return
        script = home / "user-data.sh"
        script.write_text(played.user_data)
        env = {
            **os.environ,
            **self.env,
            "PATH": f"{self.bin}{os.pathsep}{os.environ.get('PATH', '')}",
            "PYTHONPATH": str(REPO_ROOT),
            "OMP_NUM_THREADS": "1",
            "SILICONBENCH_PYTHON": str(self.bin / "python"),
            "SILICONBENCH_HOME": str(home / "opt"),
            "SILICONBENCH_LOG": str(home / "bootstrap.log"),
            "FAKE_SHUTDOWN_LOG": str(home / "shutdown.log"),
            "FAKE_PIP_LOG": str(home / "pip.log"),
            **self.extra_env.get(instance_type, {}),
        }
        with self._boot_lock:
            if instance_id in self._ended:
                return
            played.process = subprocess.Popen(
                ["bash", str(script)],
                cwd=home,
                env=env,
                start_new_session=True,
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
            )


def _kill(played: Played) -> None:
    process = played.process
    if process is not None and process.poll() is None:
        try:
            os.killpg(process.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        process.wait(timeout=10)
