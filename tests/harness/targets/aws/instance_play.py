"""Play one instance for real, inside a network namespace with no route out (``unshare -n``).

Run as ``unshare -n python -m tests.harness.targets.aws.instance_play SPEC.json``. It brings up the
namespace's loopback, starts moto on it (the only thing reachable), does what the launcher does
for one instance (bucket, job, the shipped bundle, presigned URLs, the rendered user data), then
runs that user data with bash against the AMI root laid out by ``amis.lay_out``, as root, with the
environment cloud-init gives it plus the ``SILICONBENCH_*`` overrides that point it at the root.
It writes what S3 holds afterwards to SPEC's ``result`` path.

With ``engine`` in SPEC (``{"family": ..., "requirement": ...}``) the job is an engine run of
``model`` (``generate`` cells at concurrency 1 and 2) and the user data sets up that engine family;
``sigterm_agent_on`` names a file (the vLLM stand-in's ``STANDIN_LOG``) whose first line makes this
script send SIGTERM to the agent, as a spot interruption would while the engine starts. Every
engine process the stand-in logged that is still alive after the script ends is in ``survivors``.

pip's default index is replaced by a trap on the namespace's loopback (``PIP_INDEX_URL``) that
records every request and answers 404: without a network, pip treats an unreachable index as a
warning and goes on with what else it has, so only the trap can show that an index was tried. The
same trap is every client's HTTP(S) proxy (``https_proxy`` and the rest, with ``no_proxy`` for the
loopback, which pip, curl, botocore, huggingface_hub and vLLM's own requests all honour): a
request for any host but the loopback reaches it as ``CONNECT host:port`` (or an absolute URL)
instead of failing quietly on DNS, and is in ``outbound_requests``.

With ``wheelhouse`` in SPEC (a folder of wheels), a PEP 503 index of it (``simple_index``) is
served on the loopback too and the bootstrap is pointed at it as a user with a private mirror
would: ``SILICONBENCH_ENGINE_SOURCE=--index-url URL``. What it was asked is in ``wheelhouse_requests``,
the requests it could not answer in ``wheelhouse_misses``. ``sigterm_agent_on`` may instead be
``"engine"``: SIGTERM goes to the agent once a real vLLM server process of this root runs, and the
survivors are the live processes of that engine's session (its engine core and workers rename
themselves, so they are found by session, not by command line).
"""

from __future__ import annotations

import contextlib
import json
import os
import subprocess
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, ClassVar

REGION = "us-east-1"


class _Trap(BaseHTTPRequestHandler):
    seen: ClassVar[list[str]] = []
    outbound: ClassVar[list[str]] = []

    def do_GET(self) -> None:
        if self.path.startswith("/"):
            _Trap.seen.append(self.path)
        else:  # an absolute URL: a plain-HTTP request for another host, sent to its proxy
            _Trap.outbound.append(f"GET {self.path}")
        self.send_error(404)

    def do_CONNECT(self) -> None:  # an HTTPS request for another host, tunnelled through its proxy
        _Trap.outbound.append(f"CONNECT {self.path}")
        self.send_error(403)

    do_POST = do_PUT = do_HEAD = do_GET

    def log_message(self, *args: Any) -> None:
        pass


def main(spec_path: str) -> int:
    spec: dict[str, Any] = json.loads(Path(spec_path).read_text())
    subprocess.run(["ip", "link", "set", "lo", "up"], check=True, timeout=30)
    from moto.server import ThreadedMotoServer

    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    endpoint = f"http://{host}:{port}"
    credentials = {
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_SESSION_TOKEN": "testing",
        "AWS_DEFAULT_REGION": REGION,
        "AWS_ENDPOINT_URL": endpoint,
        "AWS_EC2_METADATA_DISABLED": "true",
    }
    os.environ.update(credentials)
    trap = ThreadingHTTPServer(("127.0.0.1", 0), _Trap)
    threading.Thread(target=trap.serve_forever, daemon=True).start()
    trap_url = f"http://127.0.0.1:{trap.server_address[1]}"
    proxies = {name: trap_url for name in ("http_proxy", "https_proxy", "HTTP_PROXY", "HTTPS_PROXY")}
    network = {
        **credentials,
        "PIP_INDEX_URL": f"{trap_url}/simple/",
        **proxies,
        "no_proxy": "127.0.0.1,localhost",
        "NO_PROXY": "127.0.0.1,localhost",
    }
    with contextlib.ExitStack() as stack:
        wheelhouse = None
        if spec.get("wheelhouse"):
            from tests.harness.targets.aws.simple_index import SimpleIndex

            wheelhouse = stack.enter_context(SimpleIndex(Path(spec["wheelhouse"])))
            network["SILICONBENCH_ENGINE_SOURCE"] = f"--index-url {wheelhouse.url}"
        try:
            result = play(spec, endpoint, network)
            result["index_requests"] = list(_Trap.seen)
            result["outbound_requests"] = list(_Trap.outbound)
            if wheelhouse is not None:
                result["wheelhouse_requests"] = [f"{m} {p}: {c}" for m, p, c in wheelhouse.requests]
                result["wheelhouse_misses"] = wheelhouse.misses()
        finally:
            trap.shutdown()
            server.stop()
    Path(spec["result"]).write_text(json.dumps(result, indent=1))
    return 0


def play(spec: dict[str, Any], endpoint: str, credentials: dict[str, str]) -> dict[str, Any]:
    from harness import __version__
    from harness.run.plan import Suite
    from harness.targets.aws import storage
    from harness.targets.aws.session import ClientFactory
    from harness.targets.aws.ship import BUNDLE, build_shipment
    from harness.targets.aws.userdata import Bootstrap, PresignedUrls, render_user_data

    root = Path(spec["root"])
    factory = ClientFactory(REGION, endpoint_url=endpoint, max_attempts=1)
    s3 = factory.client("s3")
    bucket, run_id = "siliconbench-played", "played-run"
    s3.create_bucket(Bucket=bucket)
    run_store = storage.RunStore(s3, bucket, storage.run_prefix(run_id))
    store = storage.RunStore(s3, bucket, storage.instance_prefix(run_id, spec["instance_type"]))
    engine = spec.get("engine")
    if engine:
        from harness.run.config import EngineConfig

        suite = Suite(
            engine=EngineConfig(engine="vllm", model=spec["model"], engine_silicon=spec["silicon"], max_model_len=256),
            scenario="generate",
            concurrency=(1, 2),
            prompt_tokens=16,
            output_tokens=8,
            max_time=0.2,
            min_samples=3,
        )
    else:
        suite = Suite(
            workloads=("mlp",), preset="tiny", backends=("cpu",), dtypes=("fp32",), max_time=0.05, min_samples=3
        )
    job_suite = suite.to_dict()
    job_suite.pop("output", None)
    store.put_json(
        storage.JOB,
        {
            "schema": storage.JOB_SCHEMA,
            "version": 1,
            "siliconbench": __version__,
            "run_id": f"{run_id}-{spec['instance_type']}",
            "group_run_id": run_id,
            "suite": job_suite,
            "target": {"kind": "aws", "instance_type": spec["instance_type"], "region": REGION},
            "heartbeat_s": 1.0,
            **({"engine": {"family": engine["family"], "model_token_from": None}} if engine else {}),
        },
    )
    shipment = build_shipment(Path(spec["scratch"]))
    run_store.put_file(BUNDLE, shipment.bundle)
    urls = PresignedUrls(
        bundle=run_store.presign(BUNDLE, "get", 3600),
        heartbeat=store.presign(storage.HEARTBEAT, "put", 3600),
        error=store.presign(storage.ERROR, "put", 3600),
        log=store.presign(storage.BOOTSTRAP_LOG, "put", 3600),
    )
    script = render_user_data(
        Bootstrap(
            bucket=bucket,
            prefix=store.prefix,
            region=REGION,
            kind=spec["kind"],
            run_id=run_id,
            instance_type=spec["instance_type"],
            watchdog_minutes=70,
            urls=urls,
            probe=spec["probe"],
            engine=engine["family"] if engine else None,
            engine_requirement=engine.get("requirement") if engine else None,
        )
    )
    for old, new in spec.get("mutate", {}).items():
        assert old in script, old
        script = script.replace(old, new)
    (root / "root").mkdir(exist_ok=True)
    user_data = root / "var" / "lib" / "cloud" / "user-data.sh"
    user_data.parent.mkdir(parents=True, exist_ok=True)
    user_data.write_text(script)
    # What cloud-init runs user data with, plus the overrides that point the script at this root.
    # No PIP_* settings of this machine leak in: the images configure no pip index or find-links.
    env = {
        "PATH": f"{root / 'usr' / 'bin'}",
        "HOME": str(root / "root"),
        "LANG": "C.UTF-8",
        "PIP_CONFIG_FILE": os.devnull,
        "PYTHONNOUSERSITE": "1",
        "SILICONBENCH_OPT": str(root / "opt"),
        "SILICONBENCH_HOME": str(root / "opt" / "siliconbench"),
        "SILICONBENCH_LOG": str(root / "var" / "log" / "siliconbench-bootstrap.log"),
        "OMP_NUM_THREADS": "1",
        **credentials,  # the instance role (as IMDS hands it to botocore), and the index trap
        **spec.get("env", {}),
    }
    started = time.monotonic()
    bootstrap = subprocess.Popen(["bash", str(user_data)], env=env, cwd=root)
    signalled: list[int] = []
    engines: list[int] = []  # the real engine's session, when SIGTERM waits for a real vLLM
    on = spec.get("sigterm_agent_on")
    if on:
        marker = None if on == "engine" else Path(on)
        threading.Thread(target=_sigterm_agent, args=(marker, root, signalled, engines), daemon=True).start()
    returncode = bootstrap.wait(timeout=spec.get("timeout_s", 500))
    elapsed = time.monotonic() - started
    time.sleep(0.5)  # a process that outlived the script has had time to show it

    def text(name: str) -> str | None:
        body = store.get_bytes(name)
        return None if body is None else body.decode(errors="replace")

    return {
        "returncode": returncode,
        "signalled": signalled,
        "survivors": (_session_members(engines) if on == "engine" else _survivors(Path(on))) if on else [],
        "engine_sessions": engines,
        "elapsed_s": elapsed,
        "run": store.get_json(storage.RUN_FILE),
        "error": store.get_json(storage.ERROR),
        "heartbeat": store.get_json(storage.HEARTBEAT),
        "bootstrap_log_s3": text(storage.BOOTSTRAP_LOG),
        "local_log": (root / "var" / "log" / "siliconbench-bootstrap.log").read_text(errors="replace"),
        "compiled": list(shipment.compiled),
        "dependencies": list(shipment.dependencies),
    }


def _cmdline(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
    except OSError:
        return ""


def _alive(pid: int) -> bool:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat[stat.rfind(")") + 2 :].split()[0] != "Z"


def _stat_fields(pid: int) -> list[str]:
    """``/proc/PID/stat``'s fields after the command: state, ppid, pgrp, session, ..."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return []
    return stat[stat.rfind(")") + 2 :].split()


def _pids() -> list[int]:
    return [int(entry.name) for entry in Path("/proc").iterdir() if entry.name.isdigit()]


def _engine_started(marker: Path | None, root: Path, engines: list[int]) -> bool:
    """The stand-in logged a start (``marker``), or a real vLLM server of this root runs (its pid,
    the leader of the session the launcher starts it in, goes to ``engines``)."""
    if marker is not None:
        return marker.exists() and bool(marker.read_text().strip())
    if not engines:
        for pid in _pids():
            line = _cmdline(pid)
            if "vllm.entrypoints.openai.api_server" in line and str(root) in line:
                engines.append(pid)
                break
    # Started means its engine core is being spawned: the group has more than its leader, which is
    # what the launcher's stop must find and end (and the launcher holds the leader's pid by then).
    return bool(engines) and len(_session_members(engines)) >= 2


def _sigterm_agent(marker: Path | None, root: Path, signalled: list[int], engines: list[int]) -> None:
    """When the engine has started, SIGTERM the agent of this root."""
    import signal

    deadline = time.monotonic() + 600
    while time.monotonic() < deadline and not _engine_started(marker, root, engines):
        time.sleep(0.05)
    for pid in _pids():
        line = _cmdline(pid)
        if " -m harness agent " in line and str(root) in line:
            os.kill(pid, signal.SIGTERM)
            signalled.append(pid)


def _session_members(sessions: list[int]) -> list[str]:
    """The live processes of these sessions (the launcher starts an engine in a session of its own)."""
    found = []
    for pid in _pids():
        fields = _stat_fields(pid)
        if len(fields) >= 4 and fields[0] != "Z" and int(fields[3]) in sessions:
            found.append(f"{pid}: {_cmdline(pid)}")
    return found


def _survivors(marker: Path) -> list[str]:
    """Engine processes (the stand-ins that logged a start) still alive now."""
    if not marker.exists():
        return []
    pids = [json.loads(line)["pid"] for line in marker.read_text().splitlines() if line.strip()]
    return [f"{pid}: {_cmdline(pid)}" for pid in pids if _alive(pid)]


if __name__ == "__main__":
    sys.exit(main(sys.argv[1]))
