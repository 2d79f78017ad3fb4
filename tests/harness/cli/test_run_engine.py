"""Engine cells end to end: ``siliconbench run --endpoint`` against the scripted server.

The scripted server stands in for the engine here (it streams at known times and reports usage);
the real engine's run of the same path is the ``engine`` stage's business. The CLI runs in a child
process, the server on a thread of this one.

The tests marked ``engine`` (and ``slow``) run ``siliconbench run`` on the real vLLM CPU engine,
in ``.ci/run``'s engine stage (``--run-engine``): one starts its own engine through the CLI
(``--engine vllm``), the other attaches to the session's engine (``--endpoint``). Every figure is
recomputed from what the run file keeps per request and per token. Whether four users get more
tokens/s than one is a comparison of throughputs: ``benchmarks/engine_batching.py``."""

from __future__ import annotations

import json
import random
import statistics
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from backends.engine.launcher import process_group_members
from backends.engine.scripted import Script, ScriptedServer
from backends.engine.serving import ServingEngine
from harness.runfile.files import load_run
from harness.runfile.records import CellRecord, EngineLoadRecord, Measurement, Summary
from tests.cli import CliRunner, one_line_error
from tests.vllm_cpu import VllmCpu


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A tokenizer folder: all the scripted engine's cells need of a model (it sends no token ids)."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, processors, trainers
    from transformers import LlamaConfig, PreTrainedTokenizerFast

    rng = random.Random(2)
    words = ["".join(rng.choice("abcdefghij") for _ in range(rng.randint(2, 6))) for _ in range(200)]
    tok = Tokenizer(models.BPE(unk_token="<unk>"))
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=400,
        special_tokens=["<unk>", "<s>", "</s>"],
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    tok.train_from_iterator([" ".join(rng.choice(words) for _ in range(10)) for _ in range(300)], trainer=trainer)
    tok.post_processor = processors.TemplateProcessing(single="<s> $A", special_tokens=[("<s>", 1)])
    folder = tmp_path_factory.mktemp("engine-model")
    # A model folder is a transformers model: its config beside the tokenizer (no weights needed).
    LlamaConfig(
        vocab_size=400, hidden_size=8, intermediate_size=16, num_hidden_layers=1, num_attention_heads=2
    ).save_pretrained(folder)
    PreTrainedTokenizerFast(tokenizer_object=tok, unk_token="<unk>", bos_token="<s>", eos_token="</s>").save_pretrained(
        folder
    )
    return folder


@pytest.fixture
def server(request: pytest.FixtureRequest) -> Iterator[ScriptedServer]:
    script = getattr(request, "param", Script(ttft_s=0.005, itl_s=0.002))
    with ScriptedServer.in_thread(script) as running:
        yield running


def _run_file(folder: Path) -> dict[str, Any]:
    (path,) = folder.glob("*.json")
    data: dict[str, Any] = json.loads(path.read_text())
    return data


FAST = ["--max-time", "1", "--min-samples", "5", "--target-ci", "0.5", "--quiet"]


def test_generate_sweeps_concurrency_on_an_endpoint(
    run_cli: CliRunner, server: ScriptedServer, model_dir: Path, tmp_path: Path
) -> None:
    base = server.base_url.removesuffix("/v1")
    result = run_cli(
        "run", "--endpoint", base, "--model", str(model_dir), "--scenario", "generate",
        "--concurrency", "1", "--concurrency", "3", "--prompt-dist", "uniform:6:20", "--output-dist", "5",
        "--requests", "8", "--output", str(tmp_path), *FAST,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    cells = _run_file(tmp_path)["cells"]
    assert [c["status"] for c in cells] == ["ok", "ok"]
    assert [c["config"]["params"]["concurrency"] for c in cells] == [1, 3]
    for cell in cells:
        measured = cell["measurement"]
        engine = measured["engine"]
        assert engine["engine"]["mode"] == "attached" and engine["engine"]["model"] == "scripted"
        load = engine["load"]
        requests = load["request_records"]
        assert load["failed"] == 0 and len(requests) == load["requests"] >= 5
        # Counts are the server's: every request reports 5 output tokens, and the cell's totals add up.
        assert {r["output_tokens"] for r in requests} == {5}
        assert load["output_tokens"] == 5 * len(requests)
        assert measured["generation"]["output_tokens"] == 5
        # The scripted server sends no token ids: measured, correctness unchecked, and said so.
        assert engine["agreement"]["agreement"] == 0 and "no token ids" in engine["agreement"]["unchecked"]
        assert measured["correctness"]["passed"] is False
        assert any("correctness not checked" in w for w in measured["warnings"])
        # Every figure is the server's timeline as the file keeps it.
        ttft = sorted(r["token_ns"][0] for r in requests)
        assert measured["generation"]["tokens"]["ttft_ns"]["min"] == ttft[0]
        assert measured["generation"]["tokens"]["ttft_ns"]["max"] == ttft[-1]
    assert "endpoint" in result.stdout or "scripted" in result.stdout


def test_engine_flags_are_checked_before_anything_runs(run_cli: CliRunner, model_dir: Path, tmp_path: Path) -> None:
    url = "http://127.0.0.1:9"
    cases = [
        (["--prompt-dist", "uniform:1:5"], "applies to serving engines"),
        (["--endpoint", url, "--model", str(model_dir), "--scenario", "latency"], "generate and server"),
        (["--endpoint", url, "--engine", "vllm", "--model", "m", "--scenario", "generate"], "exactly one"),
        (["--endpoint", url, "--scenario", "generate"], "need --model"),
        (["--endpoint", url, "--model", "m", "--scenario", "generate", "--processes", "2"], "--processes repeats"),
        (["--endpoint", url, "--model", "m", "--scenario", "server", "--rate", "2", "--concurrency", "2"], "open loop"),
        (["--endpoint", url, "--model", "m", "--scenario", "generate", "--prompt-dist", "x"], "token count"),
    ]
    for args, message in cases:
        result = run_cli("run", *args, "--output", str(tmp_path), "--quiet")
        assert result.returncode == 2, (args, result.stderr)
        assert message in result.stderr and len(result.stderr.strip().splitlines()) == 1, (args, result.stderr)


def test_an_endpoint_that_does_not_answer_is_bad_input_before_any_cell(
    run_main: CliRunner, model_dir: Path, tmp_path: Path
) -> None:
    # Was exit 1 with a failed cell per concurrency: the server is a precondition the user must
    # fix (``EngineUnreachable``), so it is one line and exit 2, and no run file is started.
    result = run_main(
        "run", "--endpoint", "http://127.0.0.1:9", "--model", str(model_dir), "--scenario", "generate",
        "--concurrency", "1", "--concurrency", "2", "--output", str(tmp_path), *FAST,
    )  # fmt: skip
    one_line_error(result, "GET /v1/models failed", "start the server or correct --endpoint")
    assert list(tmp_path.iterdir()) == []


@pytest.mark.slow
@pytest.mark.parametrize("server", [Script(ttft_s=0.01, itl_s=0.004, max_running=2)], indirect=True)
def test_server_capacity_under_an_slo_on_an_endpoint(
    run_cli: CliRunner, server: ScriptedServer, model_dir: Path, tmp_path: Path
) -> None:
    result = run_cli(
        "run", "--endpoint", server.base_url, "--model", str(model_dir), "--scenario", "server",
        "--slo-ttft", "60", "--prompt-dist", "8", "--output-dist", "4", "--max-time", "6", "--min-samples", "20",
        "--output", str(tmp_path), "--quiet",
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    (cell,) = _run_file(tmp_path)["cells"]
    measured = cell["measurement"]
    server_part = measured["server"]
    assert server_part["mode"] == "capacity_search" and server_part["capacity_rps"] > 0
    assert measured["capacity_rps"] == server_part["capacity_rps"]
    probes = measured["engine"]["probes"]
    assert len(probes) == len(server_part["probes"]) >= 2
    best = [p for p in probes if p["rate_rps"] == server_part["capacity_rps"]]
    assert best and best[-1]["slo_met"] is True and best[-1]["ttft_ns"]["p99"] <= 60e6
    failing = server_part["search"]["lowest_failing_rps"]
    if failing is not None:
        above = [p for p in probes if p["rate_rps"] == failing]
        assert above and above[0]["slo_met"] is False


PROMPT_TOKENS, OUTPUT_TOKENS = 32, 48


def _cells(folder: Path) -> list[CellRecord]:
    (path,) = folder.glob("*.json")
    return list(load_run(path).cells)


def _measured(cell: CellRecord) -> Measurement:
    assert cell.status == "ok" and cell.measurement is not None, cell.error
    return cell.measurement


def _same(summary: Summary | None, values: list[float]) -> None:
    assert summary is not None and summary.count == len(values)
    assert summary.p50 == pytest.approx(statistics.median(values))
    assert summary.p99 == pytest.approx(float(np.percentile(values, 99)))
    assert summary.min == pytest.approx(min(values)) and summary.max == pytest.approx(max(values))


def _check_load(load: EngineLoadRecord) -> None:
    """Every summary of a load recomputed from its per-request token times; the server's counts."""
    ok = [r for r in load.request_records if r.failure is None]
    assert ok and len(ok) == load.ok == load.requests and load.failed == 0
    _same(load.ttft_ns, [float(r.token_ns[0]) for r in ok])
    _same(load.e2e_ns, [float(r.end_ns) for r in ok])
    _same(load.tpot_ns, [(r.token_ns[-1] - r.token_ns[0]) / (r.output_tokens - 1) for r in ok if r.output_tokens])
    _same(load.itl_ns, [float(b - a) for r in ok for a, b in zip(r.token_ns, r.token_ns[1:], strict=False)])
    for r in ok:
        assert list(r.token_ns) == sorted(r.token_ns) and 0 <= r.sent_ns <= r.token_ns[0] <= r.end_ns
        # The server's counts: what was forced (ignore_eos) and what the request set built.
        assert r.output_tokens == r.max_tokens == OUTPUT_TOKENS
        assert r.input_tokens == r.expected_input_tokens == PROMPT_TOKENS
        # vLLM sends a token per event while its API server keeps up and coalesces when it lags.
        assert 1 <= len(r.token_ns) <= r.output_tokens
    assert load.output_tokens == sum(r.output_tokens or 0 for r in ok)
    assert load.input_tokens == sum(r.input_tokens or 0 for r in ok)
    assert load.output_tokens_per_s == pytest.approx(load.output_tokens / load.duration_s)
    assert load.output_short == 0 and load.input_mismatched == 0


@pytest.mark.engine
@pytest.mark.slow
def test_generate_sweep_on_a_started_engine(run_cli: CliRunner, vllm_cpu: VllmCpu, tmp_path: Path) -> None:
    result = run_cli(
        "run", "--engine", "vllm", "--engine-python", vllm_cpu.python, "--model", vllm_cpu.model,
        "--scenario", "generate", "--concurrency", "1", "--concurrency", "4",
        "--prompt-dist", str(PROMPT_TOKENS), "--output-dist", str(OUTPUT_TOKENS), "--requests", "16",
        "--max-time", "6", "--min-samples", "12", "--target-ci", "0.05", "--output", str(tmp_path), "--quiet",
        timeout=900,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    one, four = (_measured(c) for c in _cells(tmp_path))
    for measured in (one, four):
        engine = measured.engine
        assert engine is not None and engine.metrics is not None
        record = engine.engine
        # The launcher's record: version, every argument, the cold start; one engine for the sweep.
        assert record.mode == "launched" and record.silicon == "cpu" and record.version
        assert record.argv[record.argv.index("--model") + 1] == vllm_cpu.model
        assert record.argv[record.argv.index("--dtype") + 1] == "float32"
        assert record.cold_start_s is not None and record.cold_start_s > 0 and measured.compile_s == record.cold_start_s
        # Correctness before timing: greedy tokens equal to transformers fp32 on the same folder.
        assert engine.agreement.passed and engine.agreement.agreement == 1.0, engine.agreement
        assert measured.correctness.passed
        _check_load(engine.load)
        generation = measured.generation
        assert generation is not None
        assert (generation.prompt_tokens, generation.output_tokens) == (PROMPT_TOKENS, OUTPUT_TOKENS)
        assert generation.tokens.ttft_ns == engine.load.ttft_ns and generation.tokens.itl_ns == engine.load.itl_ns
        assert measured.output_tokens_per_s == pytest.approx(engine.load.output_tokens_per_s)
        assert list(measured.samples_ns) == [r.end_ns for r in engine.load.request_records]
        # The engine's own view, sampled during the load.
        assert len(engine.metrics.samples) >= 2 and engine.metrics.preemptions == 0
    assert one.engine is not None and four.engine is not None and four.engine.metrics is not None
    assert one.engine.engine.pid == four.engine.engine.pid  # the sweep paid one cold start
    # The engine never ran more requests than there were users (a load shorter than the sampling
    # interval may show none: the batch itself is seen in tests/backends/engine/test_vllm_cpu.py).
    assert one.engine.metrics is not None and (one.engine.metrics.peak_running or 0) <= 1
    assert (four.engine.metrics.peak_running or 0) <= 4
    # The run is over: the engine it started is gone, its whole process group with it.
    pid = one.engine.engine.pid
    assert pid is not None and not Path(f"/proc/{pid}").exists() and process_group_members(pid) == []


@pytest.mark.engine
@pytest.mark.slow
def test_server_capacity_lands_between_a_passing_and_a_failing_rate(
    run_cli: CliRunner, vllm_server: ServingEngine, vllm_cpu: VllmCpu, tmp_path: Path
) -> None:
    result = run_cli(
        "run", "--endpoint", vllm_server.record().url, "--model", vllm_cpu.model, "--scenario", "server",
        "--slo-ttft", "300", "--prompt-dist", str(PROMPT_TOKENS), "--output-dist", str(OUTPUT_TOKENS),
        "--requests", "16", "--max-time", "16", "--min-samples", "20", "--output", str(tmp_path), "--quiet",
        timeout=900,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    (cell,) = _cells(tmp_path)
    measured = _measured(cell)
    server, engine = measured.server, measured.engine
    assert server is not None and engine is not None and server.search is not None
    assert server.mode == "capacity_search" and server.capacity_rps is not None and server.capacity_rps > 0
    assert engine.engine.mode == "attached" and engine.agreement.passed
    by_rate = {p.rate_rps: p for p in engine.probes if p.rate_rps is not None}
    assert len(by_rate) == len(engine.probes) >= 2
    # At the capacity the measured p99 TTFT meets the SLO ...
    at = by_rate[server.capacity_rps]
    assert at.slo_met is True and at.ttft_ns is not None and at.ttft_ns.p99 <= 300e6
    _check_load(at)
    assert engine.load == at
    # ... and at the next rate up, the lowest that failed, it does not.
    above = sorted(rate for rate in by_rate if rate > server.capacity_rps)
    assert above, "the search never probed above the capacity"
    assert server.search.lowest_failing_rps == above[0]
    failing = by_rate[above[0]]
    assert failing.slo_met is False
    assert failing.failed > 0 or (failing.ttft_ns is not None and failing.ttft_ns.p99 > 300e6)


def _engine_child(parent: int) -> int | None:
    """The pid of the vLLM server ``parent`` started, if it has."""
    from backends.engine.launcher import VLLM_SERVER_MODULE

    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
            cmdline = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
        except OSError:
            continue
        if int(stat[stat.rfind(")") + 2 :].split()[1]) == parent and VLLM_SERVER_MODULE in cmdline:
            return int(entry.name)
    return None


def _served(port: int) -> float:
    """Requests the engine has finished (its ``vllm:request_success_total``), 0 while it cannot say."""
    import urllib.request

    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as response:
            text = response.read().decode()
    except OSError:
        return 0.0
    return sum(float(line.split()[-1]) for line in text.splitlines() if line.startswith("vllm:request_success_total"))


def _wait_served(run: subprocess.Popen[str], port: int, count: float, deadline: float) -> float:
    """Wait until the engine has finished ``count`` requests (or the run ends, or the deadline)."""
    import time

    while (served := _served(port)) < count and run.poll() is None and time.monotonic() < deadline:
        time.sleep(0.1)
    return served


@pytest.mark.engine
@pytest.mark.slow
@pytest.mark.timeout(1500)  # an engine's start alone takes minutes on a busy 2-core machine
def test_an_engine_killed_mid_run_keeps_its_cell_and_fails_the_rest_at_once(vllm_cpu: VllmCpu, tmp_path: Path) -> None:
    """The engine SIGKILLed during the first cell's measured load: that cell keeps what it measured
    (and says the engine exited), the next fails at once naming the exit, and no process is left."""
    import os
    import signal
    import time

    from tests.cli import start_cli

    run = start_cli(
        "run", "--engine", "vllm", "--engine-python", vllm_cpu.python, "--model", vllm_cpu.model,
        "--scenario", "generate", "--concurrency", "1", "--concurrency", "2",
        "--prompt-dist", "16", "--output-dist", "16", "--requests", "8",
        "--max-time", "60", "--min-samples", "10000", "--target-ci", "0.0001", "--output", str(tmp_path), "--quiet",
    )  # fmt: skip
    try:
        deadline = time.monotonic() + 1200
        leader = None
        while leader is None and run.poll() is None and time.monotonic() < deadline:
            leader = _engine_child(run.pid)
            time.sleep(0.5)
        assert leader is not None, run.communicate(timeout=30)
        cmdline = Path(f"/proc/{leader}/cmdline").read_bytes().split(b"\0")
        port = int(cmdline[cmdline.index(b"--port") + 1])
        # The check's 4 requests, a pause before the load (2 s seen: the check compares the
        # engine's tokens with the model's, then the load is set up), then the
        # warm-up: at least 3 requests *and* 1 s (the policy's warm-up time at --max-time 60),
        # which is 16 requests on a fast machine; then measured ones. Killed at a count alone (12),
        # the engine once died in the warm-up; here the count starts at the warm-up's first answer.
        _wait_served(run, port, 4 + 1, deadline)
        time.sleep(2.0)
        _wait_served(run, port, _served(port) + 3, deadline)
        assert run.poll() is None, run.communicate(timeout=30)
        os.killpg(leader, signal.SIGKILL)
        _, err = run.communicate(timeout=300)
    finally:
        if run.poll() is None:
            run.kill()
            run.wait(timeout=30)
    assert run.returncode == 1, err
    first, second = _cells(tmp_path)
    measured = _measured(first)
    assert measured.engine is not None and measured.engine.load.ok >= 1
    assert any("engine exited with code -9" in w for w in measured.warnings), measured.warnings
    assert second.status == "failed" and second.error is not None
    assert second.error.phase == "engine" and "exited with code -9 during the run" in second.error.message
    assert process_group_members(leader) == [] and not Path(f"/proc/{leader}").exists()


@pytest.mark.slow  # a CLI run in a subprocess: about 10 s on the busy 2-core machine
def test_conversations_on_an_endpoint_without_tokenize_say_why_no_designed_reuse(
    run_cli: CliRunner, server: ScriptedServer, model_dir: Path, tmp_path: Path
) -> None:
    """The scripted server has no ``POST /tokenize`` (as an OpenAI-compatible server other than
    vLLM may not): the conversations are measured, and the run file says why they have no designed
    reuse instead of a rate."""
    prompts = tmp_path / "chats.jsonl"
    chat = {"messages": [{"role": "user", "content": "hello"}, {"role": "user", "content": "again"}]}
    prompts.write_text(json.dumps(chat) + "\n" + json.dumps(chat) + "\n")
    out = tmp_path / "out"
    result = run_cli(
        "run", "--endpoint", server.base_url.removesuffix("/v1"), "--model", str(model_dir), "--scenario", "generate",
        "--api", "chat", "--prompts", str(prompts), "--multi-turn", "--output-dist", "3", "--output", str(out), *FAST,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    (cell,) = _run_file(out)["cells"]
    assert cell["status"] == "ok", cell.get("error")
    engine = cell["measurement"]["engine"]
    assert [(r["conversation"], r["turn"]) for r in engine["load"]["request_records"]] == [
        (0, 0),
        (0, 1),
        (1, 0),
        (1, 1),
    ]
    assert "reuse" not in engine
    assert engine["reuse_unknown"].startswith("each turn's prompt ids are unknown: the engine has no POST /tokenize")
    assert "HTTP 404" in engine["reuse_unknown"]
