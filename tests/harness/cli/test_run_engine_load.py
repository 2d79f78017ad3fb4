"""Load as served, on the real vLLM CPU engine (the ``engine`` stage): a Mooncake trace whose
requests share blocks, conversations turn by turn, and a shared-prefix set, each measured against
the reuse it was designed with by the engine's own prefix cache counters.

One engine serves the module (prefix caching on, vLLM's default): the project's tiny Llama in a
folder of its own whose config allows 4096 positions (the published one says 2048; its rotary
embedding has no learned positions, so only the limit changes), started with ``--max-model-len
4096``. The CLI attaches to it with ``--endpoint``, so the module pays one cold start. Its block is
what the engine reports (``vllm:cache_config_info``: 128 tokens on the CPU platform), and the trace's
64-token blocks are designed against it."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

from backends.engine.serving import ServingEngine, open_engine
from harness.runfile.engine import EngineSpec
from harness.runfile.files import load_run
from harness.runfile.records import EnginePart
from tests.cli import CliRunner
from tests.vllm_cpu import VllmCpu

#: The first test's time includes the module's engine start (a minute on 2 idle cores, several on a
#: busy machine), beyond the suite's 300 s per test.
pytestmark = [pytest.mark.engine, pytest.mark.slow, pytest.mark.timeout(1800)]

CONTEXT = 4096


@pytest.fixture(scope="module")
def long_model(vllm_cpu: VllmCpu, tmp_path_factory: pytest.TempPathFactory) -> Path:
    source = Path(vllm_cpu.model)
    folder = tmp_path_factory.mktemp("tiny-llama-4k")
    for item in source.iterdir():
        if item.name != "config.json":
            (folder / item.name).symlink_to(item.resolve())
    config = json.loads((source / "config.json").read_text())
    config["max_position_embeddings"] = CONTEXT
    (folder / "config.json").write_text(json.dumps(config))
    return folder


@pytest.fixture(scope="module")
def engine(vllm_cpu: VllmCpu, long_model: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServingEngine]:
    spec = EngineSpec(
        model=str(long_model),
        engine="vllm",
        silicon="cpu",
        python=vllm_cpu.python,
        max_model_len=CONTEXT,
        ready_timeout_s=1200,
        # No torch.compile warm-up: at 4096 positions it compiled for over 6 minutes on the busy
        # 2-core machine, and these tests measure reuse and punctuality, not the engine's speed.
        extra_args=("--enforce-eager",),
    )
    with open_engine(spec, log_dir=tmp_path_factory.mktemp("engine-load-log")) as serving:
        yield serving
    assert serving.process is not None and serving.process.survivors() == []


def _engine_part(out: Path) -> EnginePart:
    (run_file,) = out.glob("run-*.json")
    (cell,) = load_run(run_file).cells
    assert cell.status == "ok", cell.error
    assert cell.measurement is not None and cell.measurement.engine is not None
    return cell.measurement.engine


def _attach(engine: ServingEngine, model: Path, out: Path, *args: str) -> list[str]:
    return [
        "run", "--endpoint", engine.record().url, "--model", str(model), "--max-model-len", str(CONTEXT),
        "--output", str(out), "--quiet", *args,
    ]  # fmt: skip


def test_a_mooncake_trace_is_replayed_on_time_with_the_reuse_it_records(
    run_cli: CliRunner, engine: ServingEngine, long_model: Path, tmp_path: Path
) -> None:
    # Four documents of 12 shared 64-token blocks; each request adds 4 blocks of its own and asks
    # 1000 tokens (the last block partial), one every 0.4 s: a request's prefill is long done when
    # the next of its document arrives, so the designed reuse is what an ample cache holds.
    rows, own = [], 10_000
    for i in range(24):
        shared = [100 * (i % 4) + b for b in range(12)]
        mine = list(range(own, own + 4))
        own += 4
        rows.append({"timestamp": 400 * i, "input_length": 1000, "output_length": 4, "hash_ids": shared + mine})
    trace = tmp_path / "mooncake.jsonl"
    trace.write_text("".join(json.dumps(r) + "\n" for r in rows))
    out = tmp_path / "out"
    result = run_cli(
        *_attach(engine, long_model, out, "--scenario", "server", "--trace", str(trace), "--trace-block-size", "64"),
        timeout=900,
    )
    assert result.returncode == 0, result.stderr
    part = _engine_part(out)
    reuse, replay, load = part.reuse, part.trace, part.load
    assert reuse is not None and replay is not None
    assert (replay.format, replay.replayed, replay.over_context, load.ok) == ("mooncake", 24, 0, 24)
    # Every prompt reached the engine as built: its count is the trace's input_length.
    assert load.input_mismatched == 0 and {r.input_tokens for r in load.request_records} == {1000}
    # Designed at the engine's 128-token block: 20 requests find their document's 1 + 768 tokens,
    # i.e. 6 whole blocks (768 tokens), the first of each document none.
    assert reuse.block_size == 128
    assert [r.designed_cached_tokens for r in load.request_records] == [0] * 4 + [768] * 20
    assert reuse.designed_rate == pytest.approx(20 * 768 / 24_000)
    assert reuse.measured_rate is not None
    print(f"prefix cache hit rate measured {reuse.measured_rate:.4f}, designed {reuse.designed_rate:.4f}")
    assert abs(reuse.measured_rate - reuse.designed_rate) <= 0.05
    # Each request left at its trace time: scheduled 0.4 s apart, sent within 10 ms of it at p99.
    scheduled = [r.scheduled_ns for r in load.request_records]
    assert np.allclose(np.diff(scheduled), 0.4e9, atol=1e3)
    lateness_ms = np.array([r.sent_ns for r in load.request_records]) / 1e6
    print(f"lateness p50 {np.percentile(lateness_ms, 50):.2f} ms, p99 {np.percentile(lateness_ms, 99):.2f} ms")
    assert np.percentile(lateness_ms, 99) <= 10.0
    assert replay.lateness_ns is not None and replay.lateness_ns.p99 / 1e6 == pytest.approx(
        np.percentile(lateness_ms, 99), rel=0.05, abs=0.05
    )


def test_conversations_run_turn_by_turn_and_later_turns_reuse_their_history(
    run_cli: CliRunner, engine: ServingEngine, long_model: Path, tmp_path: Path
) -> None:
    words = "the quick brown fox jumps over a lazy dog while seven wizards quietly hum".split()
    lines = []
    for c in range(4):
        turns = []
        for t in range(3):
            text = " ".join(words[(c + t + k) % len(words)] for k in range(120))
            turns += [{"from": "human", "value": f"conversation {c} turn {t}: {text}"}, {"from": "gpt", "value": "ok"}]
        lines.append({"conversations": turns})
    prompts = tmp_path / "sharegpt.jsonl"
    prompts.write_text("".join(json.dumps(line) + "\n" for line in lines))
    out = tmp_path / "out"
    result = run_cli(
        *_attach(
            engine, long_model, out, "--scenario", "generate", "--api", "chat", "--prompts", str(prompts),
            "--multi-turn", "--output-dist", "16", "--concurrency", "2",
        ),
        timeout=900,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    part = _engine_part(out)
    records = part.load.request_records
    assert len(records) == 12 and all(r.failure is None for r in records)
    by_conversation: dict[int, list[int]] = {}
    for r in records:
        assert r.conversation is not None and r.turn is not None and r.history_messages is not None
        assert r.history_messages == 2 * r.turn  # each earlier turn: its user message and the engine's reply
        by_conversation.setdefault(r.conversation, []).append(r.input_tokens or 0)
    # The history grows: each turn's prompt (the server's count) holds the last one and its reply.
    assert all(a < b < c for a, b, c in by_conversation.values())
    assert [(t.turn, t.requests, t.ok) for t in part.turns] == [(0, 4, 4), (1, 4, 4), (2, 4, 4)]
    assert part.metrics is not None and (part.metrics.prefix_cache_hit_rate or 0) > 0.2  # later turns hit


def test_a_shared_prefix_set_meets_its_designed_reuse(
    run_cli: CliRunner, engine: ServingEngine, long_model: Path, tmp_path: Path
) -> None:
    out = tmp_path / "out"
    result = run_cli(
        *_attach(
            engine, long_model, out, "--scenario", "generate", "--shared-prefix", "2:640", "--prompt-dist", "900",
            "--output-dist", "4", "--requests", "8", "--max-time", "3", "--min-samples", "8",
        ),
        timeout=900,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    reuse = _engine_part(out).reuse
    assert reuse is not None and reuse.measured_rate is not None and reuse.designed_rate > 0.5
    print(f"shared prefix: measured {reuse.measured_rate:.4f}, designed {reuse.designed_rate:.4f}")
    assert abs(reuse.measured_rate - reuse.designed_rate) <= 0.05
