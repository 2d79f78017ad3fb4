"""``--engine-arg`` sweeps end to end: refused at planning in one line when the engine cannot take
them; on the real vLLM CPU engine (engine stage) each configuration gets its own engine, one cold
start each, and its own concurrency sweep, and the report draws their frontier."""

from __future__ import annotations

import json
import re
import subprocess
import tempfile
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

from harness.report.cache_effect import cache_effects
from harness.report.rows import cell_rows
from harness.runfile.files import load_run
from harness.runfile.records import EnginePart
from tests.cli import CliRunner
from tests.vllm_cpu import VllmCpu

CHROMIUM = Path("/usr/bin/chromium")


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--engine", "vllm", "--engine-arg", "max-num-seqz=2"], "unknown engine argument 'max-num-seqz'"),
        (["--engine", "vllm", "--engine-arg", "max-num-seqs=two"], "takes whole numbers"),
        (["--endpoint", "http://127.0.0.1:9", "--engine-arg", "max-num-seqs=2"], "configured by its owner"),
        (["--engine", "vllm", "--engine-silicon", "neuron", "--engine-arg", "enable-prefix-caching=true"], "neuron"),
    ],
)
def test_an_argument_the_engine_cannot_take_is_refused_at_planning(
    run_cli: CliRunner, tmp_path: Path, args: list[str], message: str
) -> None:
    result = run_cli("run", *args, "--model", "m", "--scenario", "generate", "--output", str(tmp_path), "--quiet")
    assert result.returncode == 2, result.stderr
    assert message in result.stderr and len(result.stderr.strip().splitlines()) == 1, result.stderr
    assert not list(tmp_path.glob("*.json"))  # nothing ran


def _svg_parts(html: str) -> ET.Element:
    match = re.search(r"<svg.*?</svg>", html, re.S)
    assert match, "the report has no inline SVG"
    return ET.fromstring(match.group(0))


@pytest.mark.engine
@pytest.mark.slow
@pytest.mark.timeout(2700)  # two cold starts and six cells with their correctness checks, on a busy machine
def test_a_max_num_seqs_sweep_on_the_cpu_engine_draws_its_frontier(
    run_cli: CliRunner, vllm_cpu: VllmCpu, tmp_path: Path
) -> None:
    result = run_cli(
        "run", "--engine", "vllm", "--engine-python", vllm_cpu.python, "--model", vllm_cpu.model,
        "--scenario", "generate", "--engine-arg", "max-num-seqs=1,4",
        "--concurrency", "1", "--concurrency", "2", "--concurrency", "4",
        "--prompt-dist", "32", "--output-dist", "16", "--requests", "8",
        "--max-time", "1", "--min-samples", "6", "--target-ci", "0.5", "--output", str(tmp_path), "--quiet",
        timeout=2600,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    (path,) = tmp_path.glob("run-*.json")
    run = load_run(path)
    assert [c.status for c in run.cells] == ["ok"] * 6, [c.error for c in run.cells]
    by_config: dict[tuple[tuple[str, str], ...], list[int | None]] = {}
    for cell in run.cells:
        engine = cell.config.params.engine
        measured = cell.measurement
        assert engine is not None and measured is not None and measured.engine is not None
        record = measured.engine.engine
        seqs = dict(engine.spec.engine_args)["max-num-seqs"]
        # The configuration is recorded per cell and is what the engine was started with.
        assert record.argv[record.argv.index("--max-num-seqs") + 1] == seqs
        assert record.cold_start_s is not None and record.cold_start_s > 0
        by_config.setdefault(engine.spec.engine_args, []).append(record.pid)
    # One engine per configuration (one cold start each), serving its whole concurrency sweep.
    assert list(by_config) == [(("max-num-seqs", "1"),), (("max-num-seqs", "4"),)]
    pids = [set(p) for p in by_config.values()]
    assert all(len(p) == 1 for p in pids) and pids[0] != pids[1]
    # max-num-seqs=1 serves one request at a time: with 4 users the engine never ran more than one.
    first = [
        c
        for c in run.cells
        if c.config.params.engine and c.config.params.engine.spec.engine_args == (("max-num-seqs", "1"),)
    ]
    metrics = first[-1].measurement.engine.metrics if first[-1].measurement and first[-1].measurement.engine else None
    assert metrics is not None and (metrics.peak_running or 0) <= 1

    report = tmp_path / "report.html"
    done = run_cli("report", str(path), "--format", "html", "--price-per-hour", "0.1", "--output", str(report))
    assert done.returncode == 0, done.stderr
    html = report.read_text()
    svg = _svg_parts(html)
    ns = "{http://www.w3.org/2000/svg}"
    ids = [g.get("id", "") for g in svg.iter(f"{ns}g")]
    assert "pareto-front" in ids and "series-0" in ids and "series-1" in ids
    labels = [g for g in svg.iter(f"{ns}g") if g.get("id", "").startswith("point-label")]
    assert len(labels) == 6 and all("u $" in "".join(g.itertext()) for g in labels)
    texts = " ".join("".join(t.itertext()) for t in svg.iter(f"{ns}text"))
    assert "output tokens/s per user" in texts and "max-num-seqs=1" in texts and "max-num-seqs=4" in texts
    # The serving table: engine columns, none of the in-process ones.
    results = html[html.index('id="results"') : html.index('id="frontier"')]
    assert "engine config" in results and "out tok/s per user" in results
    for meaningless in ("<th>dtype</th>", "<th>mode</th>", "<th>batch</th>", "<th>thr</th>"):
        assert meaningless not in results
    if CHROMIUM.exists():  # the page as a reader opens it: no console errors, the figure in the DOM
        with tempfile.TemporaryDirectory() as profile:
            shown = subprocess.run(
                [str(CHROMIUM), "--headless", "--no-sandbox", "--disable-gpu", f"--user-data-dir={profile}",
                 "--dump-dom", report.resolve().as_uri()],
                capture_output=True, text=True, timeout=120,
            )  # fmt: skip
        assert shown.returncode == 0, shown.stderr[-2000:]
        assert 'id="pareto-front"' in shown.stdout
        assert not [line for line in shown.stderr.splitlines() if ":CONSOLE" in line or "Uncaught" in line]


@pytest.mark.engine
@pytest.mark.slow
@pytest.mark.timeout(2700)  # two cold starts, each configuration's check and load
def test_prefix_caching_on_and_off_in_one_run_hits_only_when_on(
    run_cli: CliRunner, vllm_cpu: VllmCpu, tmp_path: Path
) -> None:
    """``--engine-arg enable-prefix-caching=true,false``: two engines in one run, the same shared-
    prefix set on each. With caching on the engine's own counters meet the designed reuse; with it
    off they show none. The TTFT of the requests that reuse a prefix is printed on and off, not
    asserted (timings are never asserted: the engine stage runs on noisy 2-core machines)."""
    result = run_cli(
        "run", "--engine", "vllm", "--engine-python", vllm_cpu.python, "--model", vllm_cpu.model,
        "--scenario", "generate", "--engine-arg", "enable-prefix-caching=true,false",
        "--shared-prefix", "2:384", "--prompt-dist", "448", "--output-dist", "2", "--requests", "8",
        "--max-time", "2", "--min-samples", "8", "--target-ci", "0.5", "--output", str(tmp_path), "--quiet",
        timeout=2600,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    (path,) = tmp_path.glob("run-*.json")
    cells = load_run(path).cells
    assert [c.status for c in cells] == ["ok", "ok"], [c.error for c in cells]
    configs = [c.config.params.engine.spec.engine_args if c.config.params.engine else () for c in cells]
    assert configs == [(("enable-prefix-caching", "true"),), (("enable-prefix-caching", "false"),)]
    parts = [c.measurement.engine for c in cells if c.measurement is not None and c.measurement.engine is not None]
    assert len(parts) == 2
    on, off = parts
    assert "--no-enable-prefix-caching" in off.engine.argv and "--enable-prefix-caching" in on.engine.argv
    assert on.reuse is not None and on.reuse.measured_rate is not None and on.reuse.designed_rate > 0.5
    print(f"caching on: hit rate {on.reuse.measured_rate:.4f}, designed {on.reuse.designed_rate:.4f}")
    assert abs(on.reuse.measured_rate - on.reuse.designed_rate) <= 0.05
    off_rate = off.metrics.prefix_cache_hit_rate if off.metrics is not None else None
    print(f"caching off: hit rate {off_rate}")
    assert (off_rate or 0.0) == 0.0
    assert off.reuse is None or (off.reuse.measured_rate or 0.0) == 0.0

    def reused_ttft_ms(part: EnginePart) -> float:
        records = [r for r in part.load.request_records if r.failure is None and (r.designed_cached_tokens or 0) > 0]
        ttfts = sorted(t / 1e6 for r in records if (t := r.ttft_ns) is not None)
        assert ttfts, "no request that reuses a prefix was measured"
        return ttfts[len(ttfts) // 2]

    print(f"TTFT p50 of reusing requests: on {reused_ttft_ms(on):.2f} ms, off {reused_ttft_ms(off):.2f} ms")


#: Conversations whose later turns resend a long shared history: a first message of about 1100
#: tokens (the tiny model's tokenizer spends about 3.7 tokens a word), then short questions. With
#: the cache a later turn prefills only what its last whole block leaves (under 200 tokens), without
#: it all of its 1100-1300: the designed effect is several times the machine's noise, not a
#: threshold on a timing.
CONVERSATIONS, TURNS, FIRST_WORDS, LATER_WORDS = 8, 4, 300, 10


def _conversation_file(path: Path) -> Path:
    words = "the quick brown fox jumps over a lazy dog while seven wizards quietly hum".split()
    lines = []
    for c in range(CONVERSATIONS):
        turns = []
        for t in range(TURNS):
            count = FIRST_WORDS if t == 0 else LATER_WORDS
            text = " ".join(words[(c * 5 + t + k) % len(words)] for k in range(count))
            turns += [{"from": "human", "value": f"conversation {c} turn {t}: {text}"}, {"from": "gpt", "value": "ok"}]
        lines.append({"conversations": turns})
    path.write_text("".join(json.dumps(line) + "\n" for line in lines))
    return path


@pytest.mark.engine
@pytest.mark.slow
@pytest.mark.timeout(2700)  # two cold starts, each configuration's check and conversations
def test_later_turns_of_conversations_are_faster_with_prefix_caching_on(
    run_cli: CliRunner, vllm_cpu: VllmCpu, tmp_path: Path
) -> None:
    """``--engine-arg enable-prefix-caching=true,false`` with conversations: every later turn is
    recorded with its turn index and history, the report sets its TTFT with caching on against the
    same turn with it off, and the paired interval lies below 1; with caching on, the designed reuse
    comes from the engine's own ids of each turn (``/tokenize``), beside its measured hit rate."""
    prompts = _conversation_file(tmp_path / "sharegpt.jsonl")
    out = tmp_path / "out"
    result = run_cli(
        "run", "--engine", "vllm", "--engine-python", vllm_cpu.python, "--model", vllm_cpu.model,
        "--scenario", "generate", "--engine-arg", "enable-prefix-caching=true,false", "--api", "chat",
        "--prompts", str(prompts), "--multi-turn", "--output-dist", "16", "--concurrency", "1",
        "--max-model-len", "2048", "--max-time", "300", "--prepare-limit", "1200",
        "--output", str(out), "--quiet",
        timeout=2600,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    (path,) = out.glob("run-*.json")
    run = load_run(path)
    assert [c.status for c in run.cells] == ["ok", "ok"], [c.error for c in run.cells]
    parts = [c.measurement.engine for c in run.cells if c.measurement is not None and c.measurement.engine is not None]
    on, off = parts
    for cell in run.cells:  # the ready timeout followed --prepare-limit
        assert cell.config.params.engine is not None and cell.config.params.engine.spec.ready_timeout_s == 1200
    for part in parts:
        records = part.load.request_records
        assert len(records) == CONVERSATIONS * TURNS and all(r.failure is None for r in records)
        assert all(r.turn is not None and r.history_messages == 2 * r.turn for r in records)
        assert [t.turn for t in part.turns] == list(range(TURNS))
        histories = [t.history_tokens or 0 for t in part.turns]
        assert histories == sorted(histories) and histories[-1] > 1000  # long, growing histories
    # Designed reuse from the engine's ids of each turn, beside what its cache found.
    assert on.reuse is not None and on.reuse_unknown is None and on.reuse.designed_rate > 0.5
    measured = on.metrics.prefix_cache_hit_rate if on.metrics is not None else None
    print(f"caching on: hit rate {measured}, designed {on.reuse.designed_rate:.4f} (blocks of {on.reuse.block_size})")
    assert measured is not None and abs(measured - on.reuse.designed_rate) <= 0.05
    assert (off.metrics.prefix_cache_hit_rate if off.metrics is not None else 0.0) in (None, 0.0)
    (effect,) = cache_effects(cell_rows([run]))
    print(f"later turns' TTFT on/off: {effect.sentence()}")
    assert effect.pairs == CONVERSATIONS * (TURNS - 1) and effect.unpaired == 0
    assert effect.high is not None and effect.high < 1, effect.sentence()
    report = run_cli("report", str(path), timeout=300)
    assert report.returncode == 0, report.stderr
    assert "Prefix caching on later turns" in report.stdout and "paired turns" in report.stdout
