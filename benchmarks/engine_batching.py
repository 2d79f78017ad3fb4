"""Benchmark of continuous batching through the CLI: do four users get more output tokens/s than one?

A serving engine batches concurrent requests into each decode step, so output tokens per second
should rise with the number of closed-loop users (about 3x from one to four on an idle core of
the tiny Llama). This runs ``siliconbench run --scenario generate --concurrency 1 --concurrency 4``
against vLLM's CPU build, ``--repeats`` times, and prints each repeat's rates from its run file.

Not a test: on a shared machine other work can slow one cell's window several fold, so a repeat
that shows no rise says little about the engine; the figures are this machine's, now. The exit
status is 1 when no repeat shows the rise, 0 otherwise. (It was a test with retries; a comparison
of throughputs belongs here, where a reader reruns it and reads the figures.)

Run:  python benchmarks/engine_batching.py [--endpoint URL --model NAME] [--repeats 3]
      [--prompt-tokens 32] [--output-tokens 48] [--requests 16] [--max-time 8] [--json out.json]

Without ``--endpoint`` it sets the engine up with ``scripts/vllm-cpu.sh`` (which honours
``SILICONBENCH_VLLM_VENV``), starts it with the harness's launcher and stops it at the end.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from harness.runfile.files import load_run  # noqa: E402


@contextlib.contextmanager
def _engine(endpoint: str | None, model: str | None) -> Iterator[tuple[str, str]]:
    """(url, model) of the engine to measure: the one given, or one started here and stopped after."""
    if endpoint is not None:
        if model is None:
            sys.exit("engine_batching: --endpoint needs --model (the name the server serves)")
        yield endpoint, model
        return
    from benchmarks.vllm_cpu_engine import vllm_cpu_engine

    with vllm_cpu_engine(600) as (cpu, serving):
        yield serving.record().url, cpu.model


def sweep(url: str, model: str, folder: Path, args: argparse.Namespace) -> tuple[float, float]:
    """One ``siliconbench run`` at 1 and 4 users; their output tokens/s, from the run file."""
    command = [
        sys.executable, "-m", "harness", "run", "--endpoint", url, "--model", model, "--scenario", "generate",
        "--concurrency", "1", "--concurrency", "4", "--prompt-dist", str(args.prompt_tokens),
        "--output-dist", str(args.output_tokens), "--requests", str(args.requests),
        "--max-time", str(args.max_time), "--min-samples", "12", "--target-ci", "0.02",
        "--output", str(folder), "--quiet",
    ]  # fmt: skip
    done = subprocess.run(command, capture_output=True, text=True, cwd=REPO)
    if done.returncode != 0:
        sys.exit(f"siliconbench run failed ({done.returncode}): {done.stderr.strip()}")
    (path,) = folder.glob("run-*.json")
    rates = []
    for cell in load_run(path).cells:
        if cell.measurement is None or cell.measurement.output_tokens_per_s is None:
            sys.exit(f"cell {cell.id} has no output tokens/s: {cell.error}")
        rates.append(cell.measurement.output_tokens_per_s)
    one, four = rates
    return one, four


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--endpoint", default=None, help="attach to this OpenAI-compatible server")
    parser.add_argument("--model", default=None, help="the model the endpoint serves (with --endpoint)")
    parser.add_argument("--repeats", type=int, default=3, help="sweeps to run (default 3)")
    parser.add_argument("--prompt-tokens", type=int, default=32)
    parser.add_argument("--output-tokens", type=int, default=48)
    parser.add_argument("--requests", type=int, default=16, help="requests per concurrency step")
    parser.add_argument("--max-time", type=float, default=8.0, help="sampling budget per cell, seconds")
    parser.add_argument("--json", default=None, help="also write the figures here")
    args = parser.parse_args()
    if args.repeats < 1:
        parser.error("--repeats must be 1 or more")

    sweeps = []
    with _engine(args.endpoint, args.model) as (url, model), tempfile.TemporaryDirectory() as tmp:
        print(f"engine {url} serving {model}; {args.repeats} sweeps of 1 and 4 users")
        print("| repeat | 1 user, output tok/s | 4 users, output tok/s | 4 / 1 |")
        print("| --- | --- | --- | --- |")
        for repeat in range(1, args.repeats + 1):
            one, four = sweep(url, model, Path(tmp) / str(repeat), args)
            sweeps.append({"repeat": repeat, "one_user": one, "four_users": four})
            print(f"| {repeat} | {one:.1f} | {four:.1f} | {four / one:.2f} |", flush=True)
    rises = sum(s["four_users"] > s["one_user"] for s in sweeps)
    verdict = "PASS" if rises else "FAIL"
    print(f"# four users faster than one in {rises} of {len(sweeps)} sweeps: {verdict}")
    if args.json:
        Path(args.json).write_text(json.dumps({"sweeps": sweeps, "rises": rises}, indent=2) + "\n")
    sys.exit(0 if rises else 1)


if __name__ == "__main__":
    main()
