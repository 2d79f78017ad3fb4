"""How the frozen version-2 fixtures were made (run once, by hand; never by the test suite).

Each fixture is a real ``siliconbench run`` of a tiny workload on this checkout's CPU, so it holds
what a real run writes. The engine fixture is a run against the scripted OpenAI-compatible server
(``backends.engine.scripted``), which has no ``/metrics`` and is attached rather than launched;
so that the frozen file also pins the shape of a launched engine's record and its metrics, its
first cell is given a launched engine and the metrics parsed from a real vLLM 0.32 CPU scrape
(``tests/backends/engine/data``). Usage: ``python -m tests.harness.runfile.make_v2_fixtures``.
"""

from __future__ import annotations

import random
import shutil
import subprocess
import sys
import tempfile
from dataclasses import replace
from pathlib import Path

from tests.conftest import REPO_ROOT, cli_env

FIXTURES = Path(__file__).parent / "fixtures"
TINY = ["--preset", "tiny", "--dtype", "fp32", "--quiet"]
DECODER = ["--prompt-tokens", "8", "--output-tokens", "4"]

RUNS: dict[str, list[str]] = {
    "latency": ["--workload", "mlp", "--batch-size", "1", "--batch-size", "2", "--max-time", "0.3",
                "--price-per-hour", "0.5", *TINY],
    "throughput": ["--workload", "mlp", "--scenario", "throughput", "--max-time", "0.3", *TINY],
    "generate": ["--workload", "llama", "--scenario", "generate", *DECODER, "--max-time", "0.5", *TINY],
    "server": ["--workload", "mlp", "--workload", "llama", "--scenario", "server", "--rate", "20", *DECODER,
               "--max-time", "0.5", *TINY],
    "server-capacity": ["--workload", "mlp", "--scenario", "server", "--slo-p99", "50", "--max-time", "0.3", *TINY],
    "offline": ["--workload", "mlp", "--scenario", "offline", "--max-time", "0.3", *TINY],
    "loadgen": ["--workload", "mlp", "--scenario", "latency", "--loadgen", "--max-time", "0.3", *TINY],
    "processes": ["--workload", "mlp", "--processes", "2", "--max-time", "0.3", *TINY],
    "failed": ["--workload", "mlp", "--workload", "tests.harness.fault_workloads:host_oom", "--max-time", "0.3",
               *TINY],
    "aborted": ["--workload", "mlp", "--workload", "tests.harness.fault_workloads:hang_in_sampling",
                "--max-time", "0.3", "--sampling-grace", "2", "--no-isolate", *TINY],
}  # fmt: skip


def _run(name: str, args: list[str]) -> None:
    with tempfile.TemporaryDirectory() as out:
        command = [sys.executable, "-m", "harness", "run", *args, "--output", out]
        result = subprocess.run(command, cwd=REPO_ROOT, env=cli_env(), capture_output=True, text=True, check=False)
        files = list(Path(out).glob("run-*.json"))
        if len(files) != 1:
            raise SystemExit(f"{name}: no run file (rc {result.returncode}): {result.stderr}")
        shutil.copy(files[0], FIXTURES / f"run-v2-{name}.json")
        print(name, result.returncode)


def _tokenizer(folder: Path) -> None:
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
    fast = PreTrainedTokenizerFast(  # type: ignore[no-untyped-call]
        tokenizer_object=tok, unk_token="<unk>", bos_token="<s>", eos_token="</s>"
    )
    fast.save_pretrained(folder)


def _engine() -> None:
    from backends.engine.metrics import parse_metrics
    from backends.engine.scripted import Script, ScriptedServer
    from harness.runfile.engine import EngineMetrics, EngineRecord
    from harness.runfile.files import load_run, save_run

    with tempfile.TemporaryDirectory() as model, ScriptedServer.in_thread(Script(ttft_s=0.005, itl_s=0.002)) as srv:
        _tokenizer(Path(model))
        base = srv.base_url.removesuffix("/v1")
        engine = ["--endpoint", base, "--model", model, "--max-time", "1", "--min-samples", "5", "--target-ci", "0.5"]
        load = ["--scenario", "generate", "--concurrency", "1", "--concurrency", "2", "--requests", "8"]
        _run("engine", [*engine, *load, "--prompt-dist", "uniform:6:20", "--output-dist", "5", "--quiet"])
    path = FIXTURES / "run-v2-engine.json"
    run = load_run(path)
    scrape = (REPO_ROOT / "tests/backends/engine/data/vllm-0.32.0-cpu-metrics.txt").read_text()
    metrics = EngineMetrics(
        url="http://127.0.0.1:8000/metrics",
        interval_s=0.5,
        samples=(parse_metrics(scrape, 0.0), parse_metrics(scrape, 0.5)),
        failed_samples=1,
        started_utc=run.started_utc,
    )
    first = run.cells[0]
    assert first.measurement is not None and first.measurement.engine is not None
    launched = EngineRecord(
        engine="vllm",
        mode="launched",
        url="http://127.0.0.1:8000",
        silicon="cpu",
        version="0.32.0",
        model=first.measurement.engine.engine.model,
        argv=("python", "-m", "vllm.entrypoints.openai.api_server", "--port", "8000"),
        env={"VLLM_CPU_KVCACHE_SPACE": "1"},
        started_utc=run.started_utc,
        cold_start_s=41.5,
        pid=4242,
        stopped_clean=True,
    )
    part = replace(first.measurement.engine, engine=launched, metrics=metrics)
    cell = replace(first, measurement=replace(first.measurement, engine=part))
    save_run(path, replace(run, cells=(cell, *run.cells[1:])))


def main() -> None:
    FIXTURES.mkdir(exist_ok=True)
    for name, args in RUNS.items():
        if len(sys.argv) < 2 or name in sys.argv[1:]:
            _run(name, args)
    if len(sys.argv) < 2 or "engine" in sys.argv[1:]:
        _engine()


if __name__ == "__main__":
    main()
