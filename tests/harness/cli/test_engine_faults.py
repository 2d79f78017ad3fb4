"""The serving-engine path under fire: each server fault a failed request with its reason, the run
bounded in time, and every bad input one line and exit 2 before anything runs.

The server is ``tests.backends.engine.misbehaving_server`` on 127.0.0.1 (real sockets), cued by
its count of completions requests: the correctness check sends the first four, the warm-up the
next three (``SamplingPolicy.warmup_min_count``, as each request streams 3 tokens 5 ms apart,
longer than the 30 ms warm-up), so a fault cued at request 9 lands in the measured loop. The
runs go through ``main()`` in this process with budgets of a fraction of a second; the run file
is read back to see each request's failure. ``-k engine_fault`` selects them.
"""

from __future__ import annotations

import json
import os
import signal
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from tests.backends.engine.misbehaving_server import Fault, MisbehavingServer
from tests.cli import REPO_ROOT, CliRunner, cli_env, one_line_error, start_cli

#: Measured after the check (4 requests) and the warm-up (3): the 8th request on.
MEASURED = 8
FAST = ["--max-time", "0.3", "--min-samples", "3", "--target-ci", "0.01", "--quiet"]


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A model folder: a transformers config and a word-level tokenizer (no weights: the server
    sends no token ids, so no reference model is loaded)."""
    from tokenizers import Tokenizer, models, pre_tokenizers
    from transformers import LlamaConfig, PreTrainedTokenizerFast

    vocab = {"<unk>": 0, "<s>": 1, "</s>": 2, **{f"w{i}": i + 3 for i in range(300)}}
    tok = Tokenizer(models.WordLevel(vocab=vocab, unk_token="<unk>"))
    tok.pre_tokenizer = pre_tokenizers.WhitespaceSplit()
    folder = tmp_path_factory.mktemp("fault-model")
    LlamaConfig(
        vocab_size=len(vocab), hidden_size=8, intermediate_size=16, num_hidden_layers=1, num_attention_heads=2
    ).save_pretrained(folder)
    PreTrainedTokenizerFast(tokenizer_object=tok, unk_token="<unk>", bos_token="<s>", eos_token="</s>").save_pretrained(
        folder
    )
    return folder


def _run(
    run_main: CliRunner, server: MisbehavingServer, model: Path, out: Path, *extra: str
) -> tuple[int, list[dict[str, Any]], float]:
    started = time.monotonic()
    result = run_main(
        "run", "--endpoint", server.url, "--model", str(model), "--scenario", "generate",
        "--prompt-dist", "6", "--output-dist", "3", "--requests", "4", "--output", str(out), *FAST, *extra,
    )  # fmt: skip
    elapsed = time.monotonic() - started
    assert "Traceback" not in result.stderr, result.stderr
    (path,) = out.glob("*.json")
    return result.returncode, json.loads(path.read_text())["cells"], elapsed


def _requests(cell: dict[str, Any]) -> list[dict[str, Any]]:
    records: list[dict[str, Any]] = cell["measurement"]["engine"]["load"]["request_records"]
    return records


def test_engine_fault_429_then_recovering_is_failed_requests_and_the_cell_goes_on(
    run_main: CliRunner, model_dir: Path, tmp_path: Path
) -> None:
    with MisbehavingServer.running(Fault("status", first=MEASURED + 1, count=3, status=429)) as server:
        code, (cell,), _ = _run(run_main, server, model_dir, tmp_path)
    assert code == 0 and cell["status"] == "ok", cell.get("error")
    failed = [r for r in _requests(cell) if r["failure"] is not None]
    assert len(failed) == 3 and {r["http_status"] for r in failed} == {429}
    assert all(r["failure"] == "http_status" and "HTTP 429" in r["failure_detail"] for r in failed)
    assert any(r["failure"] is None for r in _requests(cell)[-2:]), "no request succeeded after the throttle"
    assert any("3 of" in w and "http status" in w for w in cell["measurement"]["warnings"])


@pytest.mark.parametrize(
    ("kind", "failure", "detail"),
    [
        ("malformed", "malformed_event", "not JSON"),
        ("truncated", "dropped_stream", "stream"),
        ("extra_tokens", "excess_tokens", "6 output tokens for max_tokens 3"),
        ("no_usage", "no_usage", "usage"),
    ],
)
def test_engine_fault_bad_streams_fail_their_requests_with_the_reason(
    run_main: CliRunner, model_dir: Path, tmp_path: Path, kind: str, failure: str, detail: str
) -> None:
    with MisbehavingServer.running(Fault(kind, first=MEASURED + 1, count=2)) as server:
        code, (cell,), _ = _run(run_main, server, model_dir, tmp_path)
    assert code == 0 and cell["status"] == "ok", cell.get("error")
    failed = [r for r in _requests(cell) if r["failure"] is not None]
    assert [r["failure"] for r in failed] == [failure, failure], failed
    assert all(detail in r["failure_detail"] for r in failed), failed
    assert sum(r["failure"] is None for r in _requests(cell)) >= 1


def test_engine_fault_500_to_everything_fails_the_cell_with_the_reason_in_its_budget(
    run_main: CliRunner, model_dir: Path, tmp_path: Path
) -> None:
    with MisbehavingServer.running(Fault("status", first=5, status=500)) as server:
        code, (cell,), elapsed = _run(run_main, server, model_dir, tmp_path)
        served = server.completions
    assert code == 1 and cell["status"] == "failed"
    assert "every measured request failed" in cell["error"]["message"] and "http_status" in cell["error"]["message"]
    # Backed off, not spun: a server answering 500 in microseconds gets a handful of requests.
    assert served < 40, served
    assert elapsed < 20


def test_engine_fault_silent_server_during_the_check_is_bounded_by_budget_and_grace(
    run_main: CliRunner, model_dir: Path, tmp_path: Path
) -> None:
    # The client would wait 300 s for a first token; the cell's limit (0.3 s budget + 3 s grace) ends it.
    with MisbehavingServer.running(Fault("silent")) as server:
        code, (cell,), elapsed = _run(run_main, server, model_dir, tmp_path, "--sampling-grace", "3")
    assert code == 1 and cell["status"] == "failed" and cell["error"]["phase"] == "correctness"
    assert "time limit" in cell["error"]["message"]
    assert elapsed < 30


def test_engine_fault_silent_server_during_the_load_is_bounded_by_budget_and_grace(
    run_main: CliRunner, model_dir: Path, tmp_path: Path
) -> None:
    # Accepted and never answered from the warm-up on: every request open at the cell's limit
    # (budget 0.3 s + 3 s grace) fails as cell_limit, and nothing is sent after it.
    with MisbehavingServer.running(Fault("silent", first=5)) as server:
        code, (cell,), elapsed = _run(run_main, server, model_dir, tmp_path, "--sampling-grace", "3")
        served = server.completions
    assert code == 1 and cell["status"] == "failed"
    assert "every measured request failed" in cell["error"]["message"] and "cell_limit" in cell["error"]["message"]
    assert served == 5
    assert elapsed < 30


def test_engine_fault_server_dying_mid_run_keeps_what_was_measured_and_the_run_goes_on(
    run_main: CliRunner, model_dir: Path, tmp_path: Path
) -> None:
    with MisbehavingServer.running(Fault("die", first=MEASURED + 3)) as server:
        code, cells, _ = _run(run_main, server, model_dir, tmp_path, "--concurrency", "1", "--concurrency", "2")
    assert code == 1
    first, second = cells
    # The cell it died in: recorded, with the requests measured before and the refusals after.
    assert first["status"] == "ok", first.get("error")
    records = _requests(first)
    kinds = [r["failure"] for r in records]
    assert kinds[0] is None and kinds[-2:] == ["connect", "connect"], kinds  # two refusals end the loop
    assert set(kinds) <= {None, "connect", "dropped_stream"}, kinds
    # The next cell fails at once, saying why; the run itself ended normally.
    assert second["status"] == "failed" and second["error"]["phase"] == "correctness"
    assert "Connect" in second["error"]["message"] or "connect" in second["error"]["message"]


def test_engine_fault_bad_inputs_are_one_line_and_exit_2_before_anything_runs(
    run_main: CliRunner, model_dir: Path, tmp_path: Path
) -> None:
    folder = tmp_path / "inputs"
    folder.mkdir()
    no_tokenizer = folder / "no-tokenizer"
    no_tokenizer.mkdir()
    (no_tokenizer / "config.json").write_text((model_dir / "config.json").read_text())
    corrupt = folder / "corrupt"
    corrupt.mkdir()
    for name in ("tokenizer.json", "tokenizer_config.json"):
        (corrupt / name).write_text((model_dir / name).read_text())
    (corrupt / "config.json").write_text("{not json")
    (folder / "binary.jsonl").write_bytes(bytes(range(256)) * 8)
    (folder / "empty.jsonl").write_text("\n\n")
    (folder / "malformed.jsonl").write_text('{"prompt": "w1 w2"\n')
    (folder / "huge-prompt.jsonl").write_text(json.dumps({"prompt": "w1 " * 5000}) + "\n")
    prompts = ["--output-dist", "3"]
    with MisbehavingServer.running() as server:
        ok = ["--endpoint", server.url]
        model = ["--model", str(model_dir)]
        cases = [
            ([*ok, "--model", str(folder / "missing")], "does not exist"),
            ([*ok, "--model", str(no_tokenizer)], "has no tokenizer"),
            ([*ok, "--model", str(corrupt)], "is corrupt"),
            ([*ok, *model, "--prompts", str(folder / "missing.jsonl"), *prompts], "does not exist"),
            ([*ok, *model, "--prompts", str(folder / "binary.jsonl"), *prompts], "is binary"),
            ([*ok, *model, "--prompts", str(folder / "empty.jsonl"), *prompts], "is empty"),
            ([*ok, *model, "--prompts", str(folder / "malformed.jsonl"), *prompts], "not a JSON line"),
            ([*ok, *model, "--prompts", str(folder / "huge-prompt.jsonl"), *prompts], "max model length"),
            ([*ok, *model, "--prompt-dist", "uniform:1.2:1.8"], "no whole number"),
            ([*ok, *model, "--prompt-dist", "normal:inf:4"], "finite"),
            ([*ok, *model, "--prompt-dist", "100000000"], "max model length"),
            ([*ok, *model, "--output-dist", "100000"], "max model length"),
            (["--engine", "vllm", "--engine-python", str(folder / "python"), *model], "not an executable"),
            (["--engine", "vllm", "--engine-python", "/bin/true", *model], "not a Python interpreter"),
            (["--endpoint", "ftp://127.0.0.1:1", *model], "http:// or https://"),
            (["--endpoint", "http://127.0.0.1:port", *model], "no valid port"),
            (["--endpoint", "http://", *model], "names no host"),
        ]
        wrong = []
        for args, fragment in cases:
            out = tmp_path / "out"
            result = run_main("run", *args, "--scenario", "generate", "--output", str(out), "--quiet")
            try:
                one_line_error(result, fragment)
            except AssertionError:
                wrong.append(f"{fragment!r}: exit {result.returncode}, {result.stderr.strip()!r}")
            assert not out.exists() or list(out.iterdir()) == [], args
        assert not wrong, "\n".join(wrong)
        assert server.completions == 0  # nothing was sent, let alone measured


_STUB_SERVER = """
import os, runpy, sys
fake = {fake!r}
sys.argv = [fake, *sys.argv[1:], "--pid-file", os.environ["FAKE_ENGINE_PIDS"], "--hang-posts"]
runpy.run_path(fake, run_name="__main__")
"""


def _alive(pid: int) -> bool:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat[stat.rfind(")") + 2 :].split()[0] != "Z"


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="process groups are read from /proc")
def test_engine_fault_sigkill_of_siliconbench_leaves_no_engine_process(model_dir: Path, tmp_path: Path) -> None:
    """``siliconbench run --engine vllm`` SIGKILLed while its engine serves: no process of it stays.

    The engine is the stand-in ``fake_engine.py`` (a leader that forks an "engine core") behind a
    stub ``vllm`` package on the path, so the launcher, the preflight's vLLM probe and the run are
    the real ones; its completions hang, so the run is busy in its correctness check when killed.
    """
    fake = str(REPO_ROOT / "tests" / "backends" / "engine" / "fake_engine.py")
    stub = tmp_path / "stub"
    server = stub / "vllm" / "entrypoints" / "openai"
    server.mkdir(parents=True)
    for folder in (stub / "vllm", stub / "vllm" / "entrypoints", server):
        (folder / "__init__.py").write_text("")
    (server / "api_server.py").write_text(_STUB_SERVER.format(fake=fake))
    pid_file = tmp_path / "engine.pids"
    env = cli_env({"PYTHONPATH": os.pathsep.join([str(REPO_ROOT), str(stub)]), "FAKE_ENGINE_PIDS": str(pid_file)})
    run = start_cli(
        "run", "--engine", "vllm", "--engine-python", sys.executable, "--model", str(model_dir),
        "--scenario", "generate", "--prompt-dist", "6", "--output-dist", "3", "--requests", "4",
        "--output", str(tmp_path / "out"), *FAST, environ=env, capture=False,
    )  # fmt: skip
    engine: list[int] = []
    try:
        deadline = time.monotonic() + 120
        while not pid_file.exists() and run.poll() is None and time.monotonic() < deadline:
            time.sleep(0.05)
        assert pid_file.exists(), f"the engine never started (siliconbench exit {run.poll()})"
        time.sleep(0.2)  # the pid file is written before the leader prints; let it finish
        engine = [int(p) for p in pid_file.read_text().split()]
        assert len(engine) == 2 and all(_alive(p) for p in engine)
        time.sleep(1.0)  # ready, and the run is waiting on the engine's answer
        assert run.poll() is None, "the run ended before it could be killed"
        run.kill()
        run.wait(timeout=10)
        deadline = time.monotonic() + 30
        while any(_alive(p) for p in engine) and time.monotonic() < deadline:
            time.sleep(0.1)
        assert [p for p in engine if _alive(p)] == [], "engine processes outlived siliconbench"
    finally:
        if run.poll() is None:
            run.kill()
            run.wait(timeout=10)
        for pid in engine:
            if _alive(pid):
                os.kill(pid, signal.SIGKILL)
