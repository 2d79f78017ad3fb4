"""Engine cells end to end: ``siliconbench run --endpoint`` against the scripted server.

The scripted server stands in for the engine here (it streams at known times and reports usage);
the real engine's run of the same path is the ``engine`` stage's business. The CLI runs in a child
process, the server on a thread of this one.
"""

from __future__ import annotations

import json
import random
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from backends.engine.scripted import Script, ScriptedServer
from tests.conftest import CliRunner


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A tokenizer folder: all the scripted engine's cells need of a model (it sends no token ids)."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, processors, trainers
    from transformers import PreTrainedTokenizerFast

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


def test_an_endpoint_that_does_not_answer_fails_its_cells(run_cli: CliRunner, model_dir: Path, tmp_path: Path) -> None:
    result = run_cli(
        "run", "--endpoint", "http://127.0.0.1:9", "--model", str(model_dir), "--scenario", "generate",
        "--concurrency", "1", "--concurrency", "2", "--output", str(tmp_path), *FAST,
    )  # fmt: skip
    assert result.returncode == 1, result.stderr
    cells = _run_file(tmp_path)["cells"]
    assert [c["status"] for c in cells] == ["failed", "failed"]
    assert all("GET /v1/models failed" in c["error"]["message"] for c in cells)
    assert {c["error"]["phase"] for c in cells} == {"engine"}


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
