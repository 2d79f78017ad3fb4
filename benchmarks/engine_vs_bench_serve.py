"""siliconbench's engine client side by side with vLLM's own ``vllm bench serve``, on one server.

One vLLM CPU server (the tiny Llama, started by the harness's launcher through
``benchmarks/vllm_cpu_engine.py``, or ``--endpoint``) serves both clients, interleaved at each
number of closed-loop users (siliconbench, bench serve; then bench serve, siliconbench; ...: ABBA),
so drift of a shared machine falls on both alike. Both clients run in the engine's own venv (the
same interpreter and aiohttp) and send the same shape of load: ``--prompt-tokens`` prompt tokens
as the server counts them (bench serve's random dataset draws ``input_len`` minus the tokenizer's
special tokens and the server adds the BOS back; siliconbench fits its text to the count with the
BOS), ``--output-tokens`` generated with EOS ignored, greedy, the model folder's tokenizer, at
most ``users`` in flight (bench serve: ``--request-rate inf --max-concurrency users``;
siliconbench: ``run --endpoint --scenario generate --concurrency users``), each after a warmup of
its own. Printed per users and round: each client's TTFT, TPOT and ITL p50, output tokens/s and
the load's shape (with the share of requests sent within 1 ms of another, which sets the TTFT
median at several users: ``side_by_side.sent_together``), then per users the ratios siliconbench /
bench serve and whether every TTFT p50 ratio is within 0.9-1.1; the 1-minute load average before
each run stands beside it.

bench serve runs as ``vllm.benchmarks.serve``'s own ``add_cli_args``/``main``: vLLM's CLI entry
point looks up the version of a distribution named ``vllm``, which vllm-cpu is not.

Run:  flock /work/engine.lock python benchmarks/engine_vs_bench_serve.py [--users 1,4] [--rounds 2]
      [--prompt-tokens 128] [--output-tokens 64] [--requests 12] [--endpoint URL --model NAME]
      [--json out.json] [--keep DIR]
"""

from __future__ import annotations

import argparse
import datetime
import importlib.util
import json
import os
import shlex
import subprocess
import sys
import tempfile
import urllib.error
import urllib.request
from dataclasses import asdict
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from backends.engine.metrics import parse_metrics  # noqa: E402
from benchmarks.side_by_side import (  # noqa: E402
    COMPARED,
    ClientFigures,
    Pair,
    from_bench_serve,
    from_run_file,
    hit_rate,
    summary_lines,
)
from benchmarks.vllm_cpu_engine import READY_TIMEOUT_S, stop_line, vllm_cpu_engine  # noqa: E402
from harness.measure.environment import cpu_facts  # noqa: E402

#: ``vllm bench serve`` without vLLM's CLI entry point: the same ``add_cli_args`` and ``main``.
BENCH_SERVE = (
    "import sys; from vllm.utils.argparse_utils import FlexibleArgumentParser; "
    "from vllm.benchmarks.serve import add_cli_args, main; "
    "p = FlexibleArgumentParser(); add_cli_args(p); main(p.parse_args(sys.argv[1:]))"
)


def siliconbench(python: str, url: str, model: str, users: int, args: argparse.Namespace, out: Path) -> ClientFigures:
    """One siliconbench generate cell at ``users``, run in the engine's venv, read from its run file."""
    count = args.requests * users
    command = [
        python, "-m", "harness", "run", "--endpoint", url, "--model", model, "--scenario", "generate",
        "--concurrency", str(users), "--prompt-dist", str(args.prompt_tokens), "--output-dist",
        str(args.output_tokens), "--requests", str(max(64, count)), "--max-time", str(args.time_s),
        "--min-samples", str(count), "--max-samples", str(count), "--target-ci", "0.99", "--output", str(out),
        "--quiet",
    ]  # fmt: skip
    done = subprocess.run(command, capture_output=True, text=True, cwd=REPO, env=_engine_venv_env(out.parent / "path"))
    if done.returncode != 0:
        sys.exit(f"siliconbench run failed ({done.returncode}): {done.stderr[-2000:]}")
    (path,) = out.glob("run-*.json")
    return from_run_file(path)


def bench_serve(
    python: str, url: str, model: str, users: int, requests: int, seed: int, args: argparse.Namespace, out: Path
) -> ClientFigures:
    """The same load from ``vllm bench serve`` in the engine's venv, read from its saved result:
    ``requests`` requests, as many as siliconbench's run completes (``same_count``).

    ``seed`` differs per run: its random dataset draws the same prompts for the same seed, and a
    prompt of more than one KV block (128 tokens on the CPU; the dataset's decode and re-encode
    makes some 129) would hit the engine's prefix cache on a later round where siliconbench's,
    exactly 128 tokens, cannot.
    """
    out.mkdir(parents=True)
    command = [
        python, "-c", BENCH_SERVE, "--backend", "vllm", "--base-url", url, "--model", model,
        "--tokenizer", model, "--dataset-name", "random", "--random-input-len", str(args.prompt_tokens),
        "--random-output-len", str(args.output_tokens), "--random-range-ratio", "0",
        "--num-prompts", str(requests), "--max-concurrency", str(users),
        "--request-rate", "inf", "--ignore-eos", "--temperature", "0", "--num-warmups", str(users),
        "--seed", str(seed),
        "--disable-tqdm", "--save-result", "--save-detailed", "--result-dir", str(out),
        "--result-filename", "result.json",
    ]  # fmt: skip
    done = subprocess.run(command, capture_output=True, text=True)
    if done.returncode != 0:
        sys.exit(f"vllm bench serve failed ({done.returncode}): {done.stderr[-2000:]}")
    return from_bench_serve(json.loads((out / "result.json").read_text()))


def same_count(requests_per_user: int, users: int) -> int:
    """The requests siliconbench's closed loop completes with ``--min-samples`` = ``--max-samples``
    = ``requests_per_user * users``: it stops sending once that many have completed and lets the
    other ``users - 1`` in flight finish. bench serve is given this count, so both runs have the
    same tail (run by fewer users) and their output tok/s the same meaning, whichever runs first."""
    return requests_per_user * users + users - 1


def _engine_venv_env(folder: Path) -> dict[str, str]:
    """The environment that runs this checkout's harness on the engine's python.

    The engine's venv has every package the client needs (aiohttp, transformers, pydantic, ...)
    but ``tabulate``, which only the run's closing table uses: that one package is linked from
    this interpreter into ``folder``, which goes on the path with the checkout (the engine venv's
    own packages still come from its site-packages, never this venv's).
    """
    env = dict(os.environ)
    extra = [str(REPO)]
    spec = importlib.util.find_spec("tabulate")
    if spec is not None and spec.submodule_search_locations:
        link = folder / "tabulate"
        if not link.exists():
            folder.mkdir(parents=True, exist_ok=True)
            link.symlink_to(spec.submodule_search_locations[0], target_is_directory=True)
        extra.append(str(folder))
    env["PYTHONPATH"] = os.pathsep.join(p for p in (*extra, env.get("PYTHONPATH")) if p)
    return env


def _load() -> float:
    return os.getloadavg()[0]


def _prefix_counters(url: str) -> tuple[float, float] | None:
    """The engine's prefix-cache (queries, hits) counters in tokens; None where it exports none."""
    try:
        with urllib.request.urlopen(f"{url}/metrics", timeout=10) as response:
            sample = parse_metrics(response.read().decode("utf-8", errors="replace"))
    except (urllib.error.URLError, OSError, ValueError):
        return None
    if sample.prefix_cache_queries_total is None or sample.prefix_cache_hits_total is None:
        return None
    return sample.prefix_cache_queries_total, sample.prefix_cache_hits_total


def _row(users: int, round_: int, client: str, f: ClientFigures, load: float, hit: float | None) -> str:
    cached = "-" if hit is None else f"{hit:.1%}"
    together = "-" if f.together is None else f"{f.together:.0%}"
    return (
        f"| {users} | {round_} | {client} | {f.ttft_p50_ms:.1f} | {f.tpot_p50_ms:.2f} | {f.itl_p50_ms:.2f} "
        f"| {f.output_tokens_per_s:.1f} | {f.requests} | {f.input_tokens_per_request:.1f} "
        f"| {f.output_tokens_per_request:.1f} | {cached} | {together} | {load:.2f} |"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--users", default="1,4", help="closed-loop users, comma-separated")
    parser.add_argument("--rounds", type=int, default=2, help="interleaved rounds of both clients")
    parser.add_argument("--prompt-tokens", type=int, default=128)
    parser.add_argument("--output-tokens", type=int, default=64)
    parser.add_argument("--requests", type=int, default=12, help="measured requests per user of each run")
    parser.add_argument("--time-s", type=float, default=45.0, help="siliconbench's time budget per cell")
    parser.add_argument("--ready-timeout-s", type=float, default=READY_TIMEOUT_S, help="engine start limit")
    parser.add_argument("--endpoint", default=None, help="attach to this running server instead")
    parser.add_argument("--model", default=None, help="the model it serves (default: the tiny Llama's folder)")
    parser.add_argument("--json", default=None, help="also write the figures here")
    parser.add_argument("--keep", default=None, help="keep both clients' run files and results in this folder")
    args = parser.parse_args()
    if args.rounds < 1 or args.requests < 1:
        parser.error("--rounds and --requests must be 1 or more")
    try:
        users = [int(u) for u in args.users.split(",")]
    except ValueError:
        parser.error(f"--users takes whole numbers separated by commas, got {args.users!r}")
    sys.stdout.reconfigure(line_buffering=True)  # type: ignore[union-attr]  # progress as it goes, even piped

    started = datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%d %H:%M UTC")
    print(f"# siliconbench vs vllm bench serve, {started}")
    print(f"machine: {cpu_facts().model}, {os.cpu_count()} logical CPUs; load avg at start {_load():.2f}")
    print(f"command: {shlex.join([Path(sys.executable).name, *sys.argv])}")
    pairs: list[Pair] = []
    with (
        vllm_cpu_engine(args.ready_timeout_s, endpoint=args.endpoint, model=args.model) as (cpu, serving),
        tempfile.TemporaryDirectory() as tmp,
    ):
        record = serving.record()
        url = record.url
        ready = f", ready {record.cold_start_s:.0f} s after start" if record.cold_start_s is not None else ""
        print(f"vLLM {record.version} at {url}{ready}; both clients run {cpu.python}")
        print(f"model and tokenizer: {cpu.model}; {args.prompt_tokens} prompt tokens, {args.output_tokens} output")
        print("\n| users | round | client | TTFT p50 ms | TPOT p50 ms | ITL p50 ms | out tok/s | req | in/req "
              "| out/req | prefix cache hit | sent together | load 1 min |")  # fmt: skip
        print("| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |")
        base = Path(args.keep) if args.keep else Path(tmp)

        def measure(n: int, round_: int, client: str) -> tuple[ClientFigures, float, float | None]:
            load, before = _load(), _prefix_counters(url)
            if client == "siliconbench":
                figures = siliconbench(cpu.python, url, cpu.model, n, args, base / f"sb-{n}-{round_}")
            else:
                out = base / f"bs-{n}-{round_}"
                count = same_count(args.requests, n)
                figures = bench_serve(cpu.python, url, cpu.model, n, count, 1000 * round_ + n, args, out)
            hit = hit_rate(before, _prefix_counters(url))
            print(_row(n, round_, client, figures, load, hit))
            return figures, load, hit

        for round_ in range(1, args.rounds + 1):
            for n in users:
                # ABBA: siliconbench first in odd rounds, bench serve first in even ones, so a
                # steady drift of the machine's speed favours neither client over the rounds.
                if round_ % 2 == 1:
                    ours, load_ours, hit_ours = measure(n, round_, "siliconbench")
                    theirs, load_theirs, hit_theirs = measure(n, round_, "bench serve")
                else:
                    theirs, load_theirs, hit_theirs = measure(n, round_, "bench serve")
                    ours, load_ours, hit_ours = measure(n, round_, "siliconbench")
                pairs.append(Pair(n, round_, ours, theirs, load_ours, load_theirs, hit_ours, hit_theirs))
    print(f"\n{stop_line(serving)}; load avg at end {_load():.2f}")
    print("\nratios siliconbench / bench serve:")
    for line in summary_lines(pairs):
        print(f"  {line}")
    if args.json:
        rows = [{**asdict(p), "ratios": {key: p.ratio(key) for key, _ in COMPARED}} for p in pairs]
        Path(args.json).write_text(json.dumps({"started": started, "pairs": rows}, indent=2) + "\n")


if __name__ == "__main__":
    main()
