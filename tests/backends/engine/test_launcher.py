"""The engine launcher against a stand-in engine process: ready, never ready, dead, deaf to SIGTERM.

What the real vLLM CPU engine does with the same launcher is in ``test_vllm_cpu.py`` (the engine
stage of CI); here the process-level guarantees are checked in a second each: the cold start is
recorded, an engine that never becomes ready fails in one line after the bounded wait, and no
process of the engine's group is left, checked by pid.
"""

from __future__ import annotations

import os
import sys
import time
from pathlib import Path

import pytest

from backends.engine.launcher import (
    CPU_MEMORY_UTILIZATION,
    VLLM_SERVER_MODULE,
    EngineCommand,
    EngineProcess,
    attach,
    free_port,
    launch,
    process_group_members,
    vllm_command,
)
from backends.engine.serving import engine_dtype, engine_python, open_engine
from harness.errors import CellFailedError, ConfigError
from harness.runfile.engine import EngineSpec

FAKE = str(Path(__file__).with_name("fake_engine.py"))


def fake_command(tmp_path: Path, *flags: str) -> EngineCommand:
    port = free_port()
    argv = (sys.executable, FAKE, "--port", str(port), "--pid-file", str(tmp_path / "pids"), *flags)
    return EngineCommand("fake", "cpu", argv, {"FAKE_ENGINE": "1"}, "127.0.0.1", port)


def pids(tmp_path: Path) -> list[int]:
    deadline = time.monotonic() + 10
    while not (tmp_path / "pids").exists() and time.monotonic() < deadline:
        time.sleep(0.05)
    return [int(p) for p in (tmp_path / "pids").read_text().split()]


def alive(pid: int) -> bool:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat[stat.rfind(")") + 2 :].split()[0] != "Z"


pytestmark = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="process groups are read from /proc")


def test_launch_records_cold_start_version_argv_and_stops_every_process(tmp_path: Path) -> None:
    command = fake_command(tmp_path, "--ready-after", "0.6")
    with launch(command, ready_timeout_s=20, log_dir=tmp_path) as engine:
        leader, child = pids(tmp_path)
        assert alive(leader) and alive(child)
        assert set(process_group_members(leader)) >= {leader, child}
        record = engine.record()
        assert record.cold_start_s is not None and record.cold_start_s >= 0.6
        assert record.version == "0.0.fake" and record.model == "fake-model"
        assert record.argv == command.argv and record.env == {"FAKE_ENGINE": "1"}
        assert record.mode == "launched" and record.url == command.url
    assert not alive(leader) and not alive(child)
    assert engine.record().stopped_clean is True


def test_never_ready_fails_in_one_line_after_the_bounded_wait_and_leaves_nothing(tmp_path: Path) -> None:
    command = fake_command(tmp_path, "--ready-after", "never")
    started = time.monotonic()
    with pytest.raises(CellFailedError) as info:
        with launch(command, ready_timeout_s=1.5, log_dir=tmp_path):
            pytest.fail("an engine that is never ready must not be yielded")
    assert time.monotonic() - started >= 1.5
    message = str(info.value)
    assert "\n" not in message and "not ready within 1.5 s" in message
    assert not any(alive(pid) for pid in pids(tmp_path))


def test_an_engine_that_exits_fails_at_once_with_its_error_line(tmp_path: Path) -> None:
    command = fake_command(tmp_path, "--exit", "3")
    started = time.monotonic()
    with pytest.raises(CellFailedError, match=r"exited with code 3 .*Engine core initialization failed"):
        with launch(command, ready_timeout_s=60, log_dir=tmp_path):
            pass
    assert time.monotonic() - started < 30  # not the whole ready timeout
    assert not any(alive(pid) for pid in pids(tmp_path))


def test_an_engine_deaf_to_sigterm_is_killed_and_recorded_unclean(tmp_path: Path) -> None:
    command = fake_command(tmp_path, "--ignore-term")
    with launch(command, ready_timeout_s=20, log_dir=tmp_path, grace_s=0.5) as engine:
        leader, child = pids(tmp_path)
    assert not alive(leader) and not alive(child)
    assert engine.stopped_clean is False


def test_stop_after_a_failure_inside_the_block(tmp_path: Path) -> None:
    command = fake_command(tmp_path)
    with pytest.raises(RuntimeError, match="boom"), launch(command, ready_timeout_s=20, log_dir=tmp_path):
        raise RuntimeError("boom")
    assert not any(alive(pid) for pid in pids(tmp_path))


def test_a_missing_engine_program_is_one_line(tmp_path: Path) -> None:
    command = EngineCommand("vllm", "cpu", (str(tmp_path / "no-python"), "-m", "x"), {}, "127.0.0.1", free_port())
    process = EngineProcess(command, tmp_path / "log")
    with pytest.raises(CellFailedError, match="cannot start"):
        process.start()


def test_attach_to_a_running_server_and_to_nothing(tmp_path: Path) -> None:
    command = fake_command(tmp_path)
    with launch(command, ready_timeout_s=20, log_dir=tmp_path):
        record = attach(command.url + "/v1/")
        assert record.mode == "attached" and record.url == command.url
        assert record.version == "0.0.fake" and record.cold_start_s is None and record.argv == ()
        spec = EngineSpec(model="m", endpoint=command.url)
        with open_engine(spec) as serving:
            assert serving.endpoint.base_url == command.url + "/v1"
            assert serving.endpoint.model == "fake-model"
    with pytest.raises(CellFailedError, match="nothing answered"):
        attach(f"http://127.0.0.1:{free_port()}", timeout_s=1)
    with pytest.raises(ConfigError, match="http"):
        attach("localhost:8000")


def test_cpu_command_is_the_documented_one() -> None:
    command = vllm_command("cpu", "/models/tiny", python="/venv/bin/python", port=8123)
    argv = list(command.argv)
    assert argv[:3] == ["/venv/bin/python", "-m", VLLM_SERVER_MODULE]
    assert argv[argv.index("--model") + 1] == "/models/tiny"
    assert argv[argv.index("--dtype") + 1] == "float32"
    assert argv[argv.index("--max-model-len") + 1] == "512"
    assert argv[argv.index("--gpu-memory-utilization") + 1] == str(CPU_MEMORY_UTILIZATION)
    assert argv[argv.index("--host") + 1] == "127.0.0.1" and argv[argv.index("--port") + 1] == "8123"
    assert command.url == "http://127.0.0.1:8123"


def test_cuda_and_neuron_differ_only_in_arguments_and_environment() -> None:
    cpu, cuda, neuron = (
        vllm_command(s, "/m", port=9000, python="/py", tensor_parallel_size=2, instance_type="inf2.xlarge")
        for s in ("cpu", "cuda", "neuron")
    )
    assert type(cpu) is type(cuda) is type(neuron)
    assert cpu.argv[:3] == cuda.argv[:3] == neuron.argv[:3]
    assert cuda.argv[cuda.argv.index("--dtype") + 1] == "bfloat16"
    assert "--gpu-memory-utilization" not in cuda.argv and cuda.env == {}
    assert "--no-enable-chunked-prefill" in neuron.argv and "--no-enable-prefix-caching" in neuron.argv
    assert neuron.env["NEURON_COMPILED_ARTIFACTS"].startswith("/m")
    assert neuron.argv[neuron.argv.index("--tensor-parallel-size") + 1] == "2"


def test_bad_engine_choices_are_config_errors(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="available: cpu, cuda, neuron"):
        vllm_command("tpu", "/m")
    with pytest.raises(ConfigError, match="exactly one"):
        EngineSpec(model="m")
    with pytest.raises(ConfigError, match="exactly one"):
        EngineSpec(model="m", engine="vllm", endpoint="http://x")
    with pytest.raises(ConfigError, match="unknown engine 'sglang'; available: vllm"):
        EngineSpec(model="m", engine="sglang")
    with pytest.raises(ConfigError, match="not an executable"):
        engine_python("cpu", str(tmp_path / "missing"))
    assert engine_python("cuda", sys.executable) == sys.executable
    with pytest.raises(ConfigError, match="positive"), launch(fake_command(tmp_path), ready_timeout_s=0):
        pass


def test_process_group_members_sees_this_process() -> None:
    assert os.getpid() in process_group_members(os.getpgrp())


def test_cell_dtypes_become_vllm_dtypes() -> None:
    assert [engine_dtype(d) for d in ("fp32", "bf16", "fp16", "float32", None)] == [
        "float32",
        "bfloat16",
        "float16",
        "float32",
        None,
    ]
    with pytest.raises(ConfigError, match="available: fp32, bf16, fp16"):
        engine_dtype("int8")


def test_a_harness_killed_outright_takes_its_engine_with_it(tmp_path: Path) -> None:
    """SIGKILL gives the harness no ``finally``: the engine's leader dies with it (PDEATHSIG), and
    its forked child (vLLM's engine core), which no death signal reaches, is stopped by the leash."""
    import signal
    import subprocess

    command = fake_command(tmp_path)
    script = (
        "import sys, time\n"
        "from backends.engine.launcher import EngineCommand, launch\n"
        f"command = EngineCommand('fake', 'cpu', {command.argv!r}, {{}}, '127.0.0.1', {command.port})\n"
        f"with launch(command, ready_timeout_s=20, log_dir={str(tmp_path)!r}):\n"
        "    print('ready', flush=True)\n"
        "    time.sleep(600)\n"
    )
    harness = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE, text=True, cwd=os.getcwd())
    try:
        assert harness.stdout is not None and harness.stdout.readline().strip() == "ready"
        leader, child = pids(tmp_path)
        assert alive(leader) and alive(child)
        harness.send_signal(signal.SIGKILL)
        harness.wait(timeout=10)
        deadline = time.monotonic() + 10
        while (alive(leader) or alive(child)) and time.monotonic() < deadline:
            time.sleep(0.05)
        assert not alive(leader)
        assert not alive(child), "the engine's child outlived the harness"
    finally:
        harness.kill()
        harness.wait(timeout=10)
        if harness.stdout is not None:
            harness.stdout.close()
        for pid in pids(tmp_path):  # the stand-in's forked child has no death signal of its own
            if alive(pid):
                os.kill(pid, signal.SIGKILL)
