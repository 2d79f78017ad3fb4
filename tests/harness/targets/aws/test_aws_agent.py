"""The on-instance agent, run in this process against moto's S3: the job in, heartbeats and the run
file out after every cell, an error report on failure; and only the instance policy's two actions."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from harness.run.plan import Suite
from harness.runfile.codec import decode_run
from harness.targets.aws.agent import run_agent
from harness.targets.aws.iam import instance_role_policy
from harness.targets.aws.storage import ERROR, EXIT_REPORTED, HEARTBEAT, JOB, JOB_SCHEMA, RUN_FILE, RunStore
from tests.harness.targets.aws.policy import assert_policy_allows, record_calls

BUCKET, PREFIX = "siliconbench-agent-test", "siliconbench/r1/c7i.xlarge"


@pytest.fixture
def store(factory) -> RunStore:  # type: ignore[no-untyped-def]
    factory.client("s3").create_bucket(Bucket=BUCKET)
    return RunStore(factory.client("s3"), BUCKET, PREFIX)


def job(suite: dict[str, Any]) -> dict[str, Any]:
    return {
        "schema": JOB_SCHEMA,
        "version": 1,
        "run_id": "r1-c7i.xlarge",
        "suite": suite,
        "heartbeat_s": 0.05,
        "target": {"kind": "aws", "instance_type": "c7i.xlarge", "region": "us-east-1"},
    }


def tiny(**changes: Any) -> dict[str, Any]:
    suite = Suite(
        workloads=("mlp",),
        preset="tiny",
        backends=("cpu",),
        dtypes=("fp32",),
        max_time=0.05,
        min_samples=3,
        isolate=False,
    ).to_dict()
    suite.update(changes)
    suite.pop("output")
    return suite


def test_runs_the_job_and_reports_through_s3(factory, store: RunStore, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    store.put_json(JOB, job(tiny(batch_sizes=[1, 2])))
    calls = record_calls(factory, ["s3"])
    seen: list[tuple[int, bool]] = []

    code = run_agent(store, tmp_path / "work", progress=lambda i, n, c, r: seen.append((i, r is None)))

    assert code == 0
    assert seen == [(1, True), (1, False), (2, True), (2, False)]
    heartbeat = store.get_json(HEARTBEAT)
    assert heartbeat is not None
    assert (heartbeat["state"], heartbeat["cells_done"], heartbeat["cells_total"]) == ("complete", 2, 2)
    data = store.get_json(RUN_FILE)
    assert data is not None
    run = decode_run(data, "uploaded run file")
    assert run.run_id == "r1-c7i.xlarge" and run.status == "complete"
    assert run.target.instance_type == "c7i.xlarge"
    assert [c.config.batch_size for c in run.cells] == [1, 2]
    assert store.get_json(ERROR) is None
    # Uploaded once up front, after each cell, and at the end; nothing but reads and writes of objects.
    assert set(calls) == {"s3:GetObject", "s3:PutObject"}
    assert_policy_allows(instance_role_policy(BUCKET, "siliconbench/r1"), calls)


def test_a_failure_is_reported_as_an_error_file(store: RunStore, tmp_path: Path) -> None:
    store.put_json(JOB, job(tiny(backends=["cpu", "no-such-backend"])))

    assert run_agent(store, tmp_path / "work") == EXIT_REPORTED

    error = store.get_json(ERROR)
    assert error is not None and error["phase"] == "agent" and error["type"] == "UnknownNameError"
    assert "unknown backend 'no-such-backend'" in error["message"]
    heartbeat = store.get_json(HEARTBEAT)
    assert heartbeat is not None and heartbeat["state"] == "failed"


def test_no_job_is_reported_too(store: RunStore, tmp_path: Path) -> None:
    assert run_agent(store, tmp_path / "work") == EXIT_REPORTED
    error = store.get_json(ERROR)
    assert error is not None and error["message"].startswith(f"no job at s3://{BUCKET}/{PREFIX}/job.json")


def test_a_foreign_job_file_is_refused(store: RunStore, tmp_path: Path) -> None:
    store.put_bytes(JOB, json.dumps({"schema": "something/else"}).encode())
    assert run_agent(store, tmp_path / "work") == EXIT_REPORTED
    error = store.get_json(ERROR)
    assert error is not None and "is not a siliconbench job" in error["message"]


@pytest.mark.parametrize("job_ok", [True, False])
def test_the_bootstrap_log_is_sent_before_the_end_is_reported(
    factory, store: RunStore, tmp_path: Path, job_ok: bool
) -> None:  # type: ignore[no-untyped-def]
    """The launcher terminates the instance as soon as it sees ``complete`` or ``error.json``: the log
    must already be in S3 by then, on success as on failure."""
    from harness.targets.aws.storage import BOOTSTRAP_LOG

    log = tmp_path / "bootstrap.log"
    log.write_text("siliconbench bootstrap starting\n")
    store.put_json(JOB, job(tiny()) if job_ok else {**job(tiny()), "schema": "something/else"})
    order: list[str] = []

    def note(params: dict[str, Any], **_: Any) -> None:
        key = params.get("Key", "")
        body = params.get("Body", b"")
        if key.endswith(HEARTBEAT) and b'"complete"' in body:
            order.append("complete")
        elif key.endswith((ERROR, BOOTSTRAP_LOG)):
            order.append(key.rsplit("/", 1)[1])

    factory.client("s3").meta.events.register("provide-client-params.s3.PutObject", note)
    code = run_agent(store, tmp_path / "work", bootstrap_log=log)

    assert code == (0 if job_ok else EXIT_REPORTED)
    assert store.get_bytes(BOOTSTRAP_LOG) == b"siliconbench bootstrap starting\n"
    assert order == (["bootstrap.log", "complete"] if job_ok else ["bootstrap.log", "error.json"]), order
