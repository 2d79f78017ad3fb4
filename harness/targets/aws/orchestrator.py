"""Run a suite on one EC2 instance per instance type, at once, and never leave one behind.

Per instance type, a thread: write the job to S3, launch, wait until running, follow the heartbeat
(with separate limits for bootstrap, silence and the whole run), and in ``finally`` terminate the
instance and bring home whatever run file it produced. The main thread waits; Ctrl-C or SIGTERM
cancels every thread, terminates every instance the run created, then sweeps EC2 for anything
tagged with the run id (a launch whose reply was lost), and deletes the run's security group,
instance profile and bucket (when it created them). An instance that outlives all of this still
powers itself off at its watchdog, and ``siliconbench aws cleanup`` finds it by its tags.
"""

from __future__ import annotations

import math
import signal
import tempfile
import threading
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field, replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from harness import __version__
from harness.errors import RunFileError, SiliconbenchError
from harness.run.plan import Suite
from harness.run.signals import STOP_SIGNALS, Interrupted, signals_deferred
from harness.runfile.codec import decode_run
from harness.runfile.files import new_run_id, save_run
from harness.runfile.records import TargetFacts
from harness.targets.aws import storage
from harness.targets.aws.ami import environment_probe
from harness.targets.aws.iam import CreatedProfile, create_instance_profile, delete_instance_profile, run_profile
from harness.targets.aws.launch import (
    LaunchSpec,
    Subnet,
    create_security_group,
    default_subnets,
    delete_security_group,
    find_run_instances,
    find_run_security_groups,
    given_subnet,
    launch_instance,
    terminate_instances,
    wait_terminated,
)
from harness.targets.aws.model_token import parse_token_source
from harness.targets.aws.plan import AwsOptions, InstancePlan, plan_instances
from harness.targets.aws.preflight import require_ready
from harness.targets.aws.prices import LaunchPrice, price_for
from harness.targets.aws.session import ClientFactory, aws_call
from harness.targets.aws.ship import BUNDLE, Shipment, build_shipment
from harness.targets.aws.tags import TAG_INSTANCE_TYPE, run_tags
from harness.targets.aws.userdata import Bootstrap, PresignedUrls, render_user_data
from harness.targets.aws.watch import Event, InstanceWatch, ProgressCallback, Timing
from harness.targets.base import TargetInterrupted, TargetOutcome

__all__ = ["AwsTarget", "Event", "InterruptedRun", "ProgressCallback", "Timing"]

#: The instance's own watchdog fires this many minutes after --max-hours, so normally the launcher
#: (which gives up at --max-hours) ends the instance first and the watchdog is the backstop.
WATCHDOG_MARGIN_MIN = 10
#: Resources stay unexpired this long past --max-hours, so cleanup never races a live run.
EXPIRY_MARGIN = timedelta(hours=1)
_INTERRUPTED = "interrupted (Ctrl-C or SIGTERM) before the run finished"


@dataclass(frozen=True)
class _Worker:
    """One instance type's thread, as the main thread waits for it."""

    instance_type: str
    done: threading.Event = field(default_factory=threading.Event)


class _Cancelled(Exception):
    """The run was cancelled (Ctrl-C, SIGTERM) while this instance was being launched or watched."""


@dataclass
class _Resources:
    """What this run created, recorded the moment it exists, so teardown can remove exactly that."""

    bucket: str | None = None
    bucket_created: bool = False
    security_group: str | None = None
    #: Set before the group's create call: teardown then also looks for it by the run's tags.
    security_group_wanted: bool = False
    profile_name: str | None = None
    created_profile: CreatedProfile | None = None
    instances: dict[str, str] = field(default_factory=dict)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def add_instance(self, instance_type: str, instance_id: str) -> None:
        with self.lock:
            self.instances[instance_type] = instance_id

    def instance_ids(self) -> list[str]:
        with self.lock:
            return list(self.instances.values())


class AwsTarget:
    """The ``aws`` target: one instance per instance type, one local run file per instance."""

    kind = "aws"

    def __init__(
        self,
        options: AwsOptions,
        *,
        factory: ClientFactory | None = None,
        timing: Timing | None = None,
        progress: ProgressCallback | None = None,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
        now: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        self.options = options
        self._factory = factory
        self.timing = timing or Timing()
        self._progress = progress
        self._clock = clock
        self._sleep = sleep
        self._now = now
        self.run_id: str | None = None
        self.teardown_problems: list[str] = []

    def run(self, suite: Suite) -> list[TargetOutcome]:
        """Preflight and plan (nothing created yet), then launch and follow every instance; teardown
        always runs."""
        self.options.require_instance_profile()
        factory = self._factory or ClientFactory(self.options.region)
        ready = require_ready(factory, self.options)
        plans = plan_instances(suite, self.options, factory)
        identity = aws_call("reading the caller identity", factory.client("sts").get_caller_identity)
        with tempfile.TemporaryDirectory(prefix="siliconbench-ship-") as scratch:
            shipment = build_shipment(Path(scratch), self.options.wheel)
            owner = str(identity.get("Arn", "unknown"))
            run = _Run(self, factory, plans, owner=owner, output=Path(suite.output), ship=shipment)
            run.zones = dict(ready.zones)
            self.run_id = run.run_id
            try:
                return run.execute()
            finally:
                self.teardown_problems = run.problems


class _Run:
    """One invocation's state: the shared resources, the worker threads and their outcomes."""

    def __init__(
        self,
        target: AwsTarget,
        factory: ClientFactory,
        plans: list[InstancePlan],
        owner: str,
        output: Path,
        ship: Shipment,
    ) -> None:
        self.t = target
        self.options = target.options
        self.timing = target.timing
        self.factory = factory
        self.region = factory.region
        self.plans = plans
        self.owner = owner
        #: The account, from the caller's ARN, for the instance policy's parameter and secret ARNs.
        self.account = owner.split(":")[4] if owner.count(":") >= 5 and owner.split(":")[4] else "*"
        self.output = output
        self.run_id = new_run_id()
        self.started_at = target._now()
        self.tags = run_tags(
            self.run_id, owner, self.started_at + timedelta(hours=self.options.max_hours) + EXPIRY_MARGIN
        )
        self.resources = _Resources()
        self.cancel = threading.Event()
        self.outcomes: dict[str, TargetOutcome] = {}
        self.fetch_failed = False
        self.problems: list[str] = []
        self.subnets: list[Subnet] = []
        self.ship = ship
        #: Zones each instance type is offered in, from preflight; launches try only those subnets.
        self.zones: dict[str, tuple[str, ...]] = {}
        #: Set by the first stop signal, and as teardown begins: later signals are dropped.
        self.stopping = False

    # -- events -------------------------------------------------------------------------------
    def emit(self, instance_type: str, state: str, detail: str = "", instance_id: str | None = None) -> None:
        if self.t._progress is not None:
            self.t._progress(Event(instance_type, state, detail, instance_id))

    # -- the whole run ------------------------------------------------------------------------
    def on_stop_signal(self, signum: int, frame: Any) -> None:
        """The main thread's handler for the whole run, teardown included: the first stop signal
        interrupts the run; any later one is dropped, since raising it would cut the teardown short.

        One handler, not a second one installed once teardown begins: of two signals that come
        together (Ctrl-C pressed again; systemd's stop, SIGTERM then SIGHUP) CPython runs the
        second handler at its next check after the first raised, which can fall while the first is
        still being handled, before a teardown handler is in place: that skipped the teardown.
        ``stopping`` is set where no handler can run first (docs/aws-assumptions.md).
        """
        if self.stopping:
            return
        self.stopping = True
        raise Interrupted(signum)

    def execute(self) -> list[TargetOutcome]:
        workers: list[_Worker] = []
        in_main = threading.current_thread() is threading.main_thread()
        previous = {sig: signal.signal(sig, self.on_stop_signal) for sig in STOP_SIGNALS} if in_main else None
        interrupted = False
        signum = int(signal.SIGINT)
        try:
            self.setup()
            for plan in self.plans:
                worker = _Worker(plan.instance_type)
                thread = threading.Thread(
                    target=self.run_instance,
                    args=(plan, worker.done),
                    daemon=True,
                    name=f"siliconbench-{plan.instance_type}",
                )
                workers.append(worker)
                thread.start()
            for worker in workers:
                # Event.wait, not Thread.join: a Ctrl-C inside join can leave the thread looking finished.
                while not worker.done.wait(timeout=0.2):
                    pass
        except KeyboardInterrupt as exc:
            self.stopping = True
            interrupted = True
            signum = int(getattr(exc, "signum", signal.SIGINT))
        finally:
            # Nothing may interrupt the teardown: from here on stop signals are dropped (the first
            # statement: no handler runs before it).
            self.stopping = True
            try:
                self.cancel.set()
                self.teardown(workers)
            finally:
                for sig, handler in (previous or {}).items():
                    signal.signal(sig, handler)
        results = []
        for plan in self.plans:
            outcome = self.outcomes.get(plan.instance_type)
            if outcome is None:
                status = "interrupted" if interrupted else "failed"
                outcome = TargetOutcome(
                    plan.instance_type, status, None, "interrupted before launch" if interrupted else "never started"
                )
            results.append(outcome)
        if interrupted:
            raise InterruptedRun(results, signum)
        return results

    def setup(self) -> None:
        """Bucket, instance profile, security group, wheel: each recorded before its create call is
        sent (the names are the run's own), and each create call made with stop signals deferred
        (``signals_deferred``): a signal waits for the call to return and its result to be
        recorded, then interrupts. Whatever moment a signal comes, teardown knows all that exists."""
        s3, ec2 = self.factory.client("s3"), self.factory.client("ec2")
        if self.options.bucket:
            aws_call(f"checking bucket {self.options.bucket}", s3.head_bucket, Bucket=self.options.bucket)
            self.resources.bucket = self.options.bucket
        else:
            name = storage.run_bucket_name(self.run_id)
            # Recorded first: if tagging or encrypting fails after creation, teardown still deletes it.
            self.resources.bucket, self.resources.bucket_created = name, True
            with signals_deferred():
                storage.create_bucket(s3, name, self.region, self.tags)
        if self.options.create_instance_profile:
            model = self.options.engine_model
            self.resources.created_profile = run_profile(self.run_id)  # teardown deletes what of it exists
            self.resources.profile_name = self.resources.created_profile.name
            with signals_deferred():
                create_instance_profile(
                    self.factory.client("iam"),
                    self.run_id,
                    self.resources.bucket,
                    storage.run_prefix(self.run_id),
                    self.tags,
                    token=parse_token_source(self.options.model_token_from),
                    weights=model if model and model.startswith("s3://") else None,
                    region=self.region,
                    account=self.account,
                )
        else:
            self.resources.profile_name = self.options.instance_profile
        if self.options.subnet_id:
            vpc_id, self.subnets = given_subnet(ec2, self.options.subnet_id)
        else:
            vpc_id, self.subnets = default_subnets(ec2)
        self.resources.security_group_wanted = True  # tagged as created: teardown finds it by the run id
        with signals_deferred():
            self.resources.security_group = create_security_group(ec2, vpc_id, self.run_id, self.tags)
        with signals_deferred():
            self.run_store().put_file(BUNDLE, self.ship.bundle)

    def run_store(self) -> storage.RunStore:
        assert self.resources.bucket is not None
        return storage.RunStore(self.factory.client("s3"), self.resources.bucket, storage.run_prefix(self.run_id))

    def presigned(self, store: storage.RunStore) -> PresignedUrls:
        """URLs for the bootstrap's first minutes, before boto3 is installed on the instance.

        They last as long as bootstrapping may (presigned URLs made with temporary credentials end
        sooner, with the session; the bootstrap uses them only until siliconbench is installed).
        """
        expires = int(self.timing.running_timeout_s + self.timing.bootstrap_timeout_s + 600)
        return PresignedUrls(
            bundle=self.run_store().presign(BUNDLE, "get", expires),
            heartbeat=store.presign(storage.HEARTBEAT, "put", expires),
            error=store.presign(storage.ERROR, "put", expires),
            log=store.presign(storage.BOOTSTRAP_LOG, "put", expires),
        )

    # -- one instance -------------------------------------------------------------------------
    def check_cancel(self) -> None:
        if self.cancel.is_set():
            raise _Cancelled()

    def run_instance(self, plan: InstancePlan, done: threading.Event) -> None:
        """Launch, follow and end one instance; records its outcome whatever happens."""
        try:
            self._run_instance(plan)
        finally:
            done.set()

    def _run_instance(self, plan: InstancePlan) -> None:
        it = plan.instance_type
        ec2, s3 = self.factory.client("ec2"), self.factory.client("s3")
        assert self.resources.bucket is not None and self.resources.security_group is not None
        store = storage.RunStore(s3, self.resources.bucket, storage.instance_prefix(self.run_id, it))
        instance_id: str | None = None
        price = plan.price
        status, error = "failed", None
        heartbeat: dict[str, Any] | None = None
        try:
            self.check_cancel()
            store.put_json(storage.JOB, self.job(plan))
            user_data = render_user_data(
                Bootstrap(
                    bucket=self.resources.bucket,
                    prefix=store.prefix,
                    region=self.region,
                    kind=plan.kind,
                    run_id=self.run_id,
                    instance_type=it,
                    urls=self.presigned(store),
                    probe=environment_probe(it),
                    watchdog_minutes=math.ceil(self.options.max_hours * 60) + WATCHDOG_MARGIN_MIN,
                    engine=plan.engine.family if plan.engine else None,
                    engine_requirement=plan.engine.requirement if plan.engine else None,
                )
            )
            assert plan.ami is not None
            spec = LaunchSpec(
                run_id=self.run_id,
                instance_type=it,
                kind=plan.kind,
                ami=plan.ami,
                user_data=user_data,
                security_group_id=self.resources.security_group,
                instance_profile=str(self.resources.profile_name),
                tags={**self.tags, TAG_INSTANCE_TYPE: it, "Name": f"siliconbench-{self.run_id}-{it}"},
                spot=self.options.spot,
            )
            self.emit(it, "launching", f"{plan.ami.image_id}, {price.purchase_option}")
            offered = self.zones.get(it)
            subnets = [s for s in self.subnets if offered is None or s.availability_zone in offered]
            instance = launch_instance(
                ec2,
                spec,
                subnets,
                profile_wait_s=self.timing.profile_wait_s,
                retry_s=self.timing.profile_retry_s,
                sleep=self.t._sleep,
            )
            instance_id = instance["InstanceId"]
            self.resources.add_instance(it, instance_id)
            self.emit(it, "pending", instance.get("Placement", {}).get("AvailabilityZone", ""), instance_id)
            self.check_cancel()
            if self.options.spot:
                price = price_for(ec2, self.region, it, True, instance.get("Placement", {}).get("AvailabilityZone"))
            heartbeat = InstanceWatch(
                ec2,
                store,
                it,
                instance_id,
                self.timing,
                self.options.max_hours,
                check_cancel=self.check_cancel,
                emit=self.emit,
                clock=self.t._clock,
                sleep=self.t._sleep,
            ).follow()
            status = "complete"
        except _Cancelled:
            status, error = "interrupted", _INTERRUPTED
        except Exception as exc:
            failure = str(exc) if isinstance(exc, SiliconbenchError) else f"{type(exc).__name__}: {exc}"
            # Once cancelled, the teardown itself makes things fail (a terminated instance): that is the interrupt.
            status, error = ("interrupted", _INTERRUPTED) if self.cancel.is_set() else ("failed", failure)
        finally:
            if instance_id is not None:
                try:
                    terminate_instances(ec2, [instance_id])
                    self.emit(it, "terminating", "", instance_id)
                except SiliconbenchError as exc:
                    self.problems.append(str(exc))
            run_file, cells = self.fetch(plan, store, instance_id, price)
            self.fetch_log(plan, store)
            done = int((heartbeat or {}).get("cells_done", cells))
            self.outcomes[it] = TargetOutcome(it, status, run_file, error, cells_done=done, cells_total=plan.cells)
            self.emit(it, status, error or (str(run_file) if run_file else ""), instance_id)

    def job(self, plan: InstancePlan) -> dict[str, Any]:
        """The handover: everything the instance needs, and nothing secret."""
        suite = plan.suite.to_dict()
        suite.pop("output", None)
        return {
            "schema": storage.JOB_SCHEMA,
            "version": 1,
            "siliconbench": __version__,
            "run_id": f"{self.run_id}-{plan.instance_type}",
            "group_run_id": self.run_id,
            "suite": suite,
            "target": asdict(self.target_facts(plan, plan.price, None)),
            "heartbeat_s": self.timing.heartbeat_s,
            **({"engine": self.engine_job(plan)} if plan.engine else {}),
        }

    def engine_job(self, plan: InstancePlan) -> dict[str, Any]:
        """What the agent needs of an engine run: the family, and where the token is (never the token)."""
        assert plan.engine is not None
        return {"family": plan.engine.family, "model_token_from": self.options.model_token_from}

    def target_facts(self, plan: InstancePlan, price: LaunchPrice, instance_id: str | None) -> TargetFacts:
        return TargetFacts(
            kind="aws",
            instance_type=plan.instance_type,
            region=self.region,
            purchase_option=price.purchase_option,
            price_per_hour=price.per_hour,
            price_source=price.source,
            price_as_of=price.as_of,
            instance_id=instance_id,
            ami_id=plan.ami.image_id if plan.ami else None,
            ami_parameter=plan.ami_parameter,
            group_run_id=self.run_id,
        )

    def fetch(
        self,
        plan: InstancePlan,
        store: storage.RunStore,
        instance_id: str | None,
        price: LaunchPrice,
    ) -> tuple[Path | None, int]:
        """Bring the instance's run file home, stamped with where and at what price it ran."""
        try:
            data = store.get_json(storage.RUN_FILE)
        except SiliconbenchError as exc:
            self.fetch_failed = True
            self.problems.append(f"{plan.instance_type}: could not fetch the run file: {exc}")
            return None, 0
        if data is None:
            return None, 0
        try:
            run = decode_run(data, f"{plan.instance_type}'s run file")
        except RunFileError as exc:
            self.problems.append(str(exc))
            return None, 0
        run = replace(run, target=self.target_facts(plan, price, instance_id))
        if run.status == "running":
            run = replace(run, status="interrupted", status_reason="the instance stopped before the run finished")
        try:
            self.output.mkdir(parents=True, exist_ok=True)
            path = self.output / f"run-{run.run_id}.json"
            save_run(path, run)
        except OSError as exc:
            self.fetch_failed = True
            self.problems.append(f"{plan.instance_type}: could not write the run file to {self.output}: {exc.strerror}")
            return None, 0
        return path, len(run.cells)

    def fetch_log(self, plan: InstancePlan, store: storage.RunStore) -> None:
        """Keep the instance's bootstrap log next to the run files, whether it succeeded or not."""
        try:
            body = store.get_bytes(storage.BOOTSTRAP_LOG)
            if body is not None:
                self.output.mkdir(parents=True, exist_ok=True)
                (self.output / f"bootstrap-{self.run_id}-{plan.instance_type}.log").write_bytes(body)
        except (SiliconbenchError, OSError) as exc:
            self.problems.append(f"{plan.instance_type}: could not fetch the bootstrap log: {exc}")

    # -- teardown -----------------------------------------------------------------------------
    def teardown(self, workers: list[_Worker]) -> None:
        """End every instance, then delete what the run created; problems are collected, not raised."""
        ec2 = self.factory.client("ec2")
        timing, clock, sleep = self.timing, self.t._clock, self.t._sleep

        def attempt(what: str, action: Callable[[], Any]) -> Any:
            try:
                return action()
            except SiliconbenchError as exc:
                self.problems.append(f"{what}: {exc}")
            except Exception as exc:
                self.problems.append(f"{what}: {type(exc).__name__}: {exc}")
            return None

        attempt("terminating instances", lambda: terminate_instances(ec2, self.resources.instance_ids()))
        for worker in workers:
            if not worker.done.wait(timeout=timing.teardown_timeout_s):
                self.problems.append(f"the {worker.instance_type} thread did not finish its teardown in time")
        leftovers = (
            attempt(
                "sweeping for run instances", lambda: [i["InstanceId"] for i in find_run_instances(ec2, self.run_id)]
            )
            or []
        )
        known = set(self.resources.instance_ids())
        strays = [i for i in leftovers if i not in known]
        if strays:
            attempt("terminating stray instances", lambda: terminate_instances(ec2, strays))
        everything = sorted(known | set(leftovers))
        not_gone = (
            attempt(
                "waiting for termination",
                lambda: wait_terminated(
                    ec2, everything, timing.teardown_timeout_s, timing.teardown_poll_s, clock, sleep
                ),
            )
            or []
        )
        if not_gone:
            self.problems.append(
                f"not yet terminated: {', '.join(not_gone)} (they will be; "
                "'siliconbench aws cleanup' removes what is left)"
            )
        groups = [self.resources.security_group] if self.resources.security_group else []
        if self.resources.security_group_wanted:  # a create call that was cut off may still have made it
            found = attempt("sweeping for the run's security group", lambda: find_run_security_groups(ec2, self.run_id))
            groups += [g for g in found or [] if g not in groups]
        for group in groups:
            if not_gone:
                self.problems.append(f"kept security group {group}: instances still hold it")
                continue
            attempt(
                f"deleting security group {group}",
                lambda group=group: delete_security_group(  # type: ignore[misc]
                    ec2, group, timing.teardown_timeout_s, timing.teardown_poll_s, clock, sleep
                ),
            )
        created = self.resources.created_profile
        if created is not None:
            self.problems.extend(delete_instance_profile(self.factory.client("iam"), created))
        bucket = self.resources.bucket
        if bucket and not self.resources.bucket_created:
            # A bucket the user gave keeps the run's small files, not the bundle of wheels.
            attempt(f"deleting the bundle from bucket {bucket}", lambda: self.run_store().delete(BUNDLE))
        if bucket and self.resources.bucket_created:
            if self.fetch_failed:
                self.problems.append(f"kept bucket {bucket}: a run file could not be brought home")
            else:
                attempt(f"deleting bucket {bucket}", lambda: storage.delete_bucket(self.factory.client("s3"), bucket))


class InterruptedRun(TargetInterrupted):
    """Ctrl-C or SIGTERM ended the run after teardown; carries what each instance produced."""
