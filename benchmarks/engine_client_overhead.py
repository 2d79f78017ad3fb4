"""Benchmark of the engine client itself (not a test): does it measure what the server did?

A scripted OpenAI-compatible server (``backends.engine.scripted``), in a process of its own, streams
each request's tokens at known times: the first ``--ttft-ms`` after the request arrives, then one
every ``--itl-ms``. The client measures TTFT and every inter-token gap as it would against an engine,
and the error is measured minus scripted:

* TTFT error: measured TTFT - scripted TTFT (so it includes connecting, sending the request and the
  server parsing it: everything the client would add to a real engine's figure);
* ITL error: each measured gap - the scripted gap.

Each token's text carries its scripted time and the time the server wrote it, so the error splits
into the server's lateness (write - scripted) and the client's delivery lag (read - write), all on
one ``CLOCK_MONOTONIC``. The server's event loop waits whole milliseconds and polls the rest
(``punctual_event_loop``) so that the reference is not the noisiest part of the measurement.

Two loads: one stream at a time, and ``--streams`` (1,000)
concurrent streams of 10 tokens/s each whose starts are spread over ``--ramp-s``.

Bounds: median |error| <= 1 ms at one stream; at 1,000 streams median |error| <= 2 ms and
p99 |error| <= 10 ms. The exit status is 1 when a bound is missed.

Run:  python benchmarks/engine_client_overhead.py [--streams 1000] [--tokens 40] [--itl-ms 100]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import gc
import os
import resource
import statistics
import subprocess
import sys
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from backends.engine import ClientTimeouts, Endpoint, EngineRequest, RequestOutcome
from backends.engine.client import OpenAIClient
from backends.engine.scripted import Script, ScriptedServer, punctual_event_loop, token_times
from harness.measure.environment import cpu_facts
from harness.scenarios.engine_load import run_sync


@dataclass(frozen=True)
class Errors:
    """Absolute errors (ms) of one load, with the client's share."""

    label: str
    streams: int
    ok: int
    failed: int
    peak_open: int
    ttft_ms: list[float]
    itl_ms: list[float]
    client_lag_ms: list[float]
    server_late_ms: list[float]
    client_delay_ms: list[float]
    request_way_in_ms: list[float]


def _pct(values: Sequence[float], q: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(q * len(ordered)) - 1))]


def errors_of(label: str, outcomes: Sequence[RequestOutcome], script: Script) -> Errors:
    ttft, itl, lag, late, delay, way_in = [], [], [], [], [], []
    ok = [o for o in outcomes if o.ok]
    for outcome in ok:
        if outcome.ttft_s is not None:
            # From the send, not the schedule: the ramp's own lateness is reported apart (delay).
            ttft.append(abs((outcome.events[0].t_ns - outcome.sent_ns) / 1e6 - script.ttft_s * 1e3))
        itl.extend(abs(gap * 1e3 - script.itl_s * 1e3) for gap in outcome.itl_s)
        for event in outcome.events:
            due, written = token_times(event.text)
            lag.append((event.t_ns - written) / 1e6)
            late.append((written - due) / 1e6)
        delay.append(outcome.client_delay_s * 1e3)
        if outcome.events:
            # The first token was due ttft after the server saw the request: arrival - send is the
            # request's way in (the client writing it, the server reading and parsing it).
            first_due, _ = token_times(outcome.events[0].text)
            way_in.append((first_due - script.ttft_s * 1e9 - outcome.sent_ns) / 1e6)
    marks = sorted([(o.sent_ns, 1) for o in outcomes] + [(o.end_ns, -1) for o in outcomes])
    open_now = peak = 0
    for _, step in marks:
        open_now += step
        peak = max(peak, open_now)
    return Errors(label, len(outcomes), len(ok), len(outcomes) - len(ok), peak, ttft, itl, lag, late, delay, way_in)


async def run_load(
    endpoint: Endpoint, *, streams: int, tokens: int, ramp_s: float, sequential: bool
) -> list[RequestOutcome]:
    """``streams`` requests of ``tokens`` tokens: one after another, or started across ``ramp_s``."""
    timeouts = ClientTimeouts(first_token=60.0, idle=60.0, total=600.0)
    async with OpenAIClient(endpoint, timeouts) as client:
        requests = [EngineRequest(f"r{i}", max_tokens=tokens, prompt="scripted") for i in range(streams)]
        await client.measure(EngineRequest("warmup", max_tokens=2, prompt="scripted"))
        await client.open_connections(1 if sequential else streams)
        if sequential:
            return [await client.measure(request) for request in requests]
        start_ns = time.monotonic_ns() + 50_000_000
        pending = []
        for i, request in enumerate(requests):
            at_ns = start_ns + int(i * ramp_s * 1e9 / streams)
            delay = (at_ns - time.monotonic_ns()) / 1e9
            if delay > 0:
                await asyncio.sleep(delay)
            pending.append(client.submit(request, scheduled_ns=at_ns))
        return [await stream.outcome() for stream in pending]


@contextlib.contextmanager
def server_process(script: Script, stock_loop: bool = False) -> Iterator[Endpoint]:
    """The scripted server in a child process, so its work is not on the client's event loop."""
    command = [
        sys.executable,
        __file__,
        "--serve",
        "--ttft-ms",
        str(script.ttft_s * 1e3),
        "--itl-ms",
        str(script.itl_s * 1e3),
        *(["--stock-server-loop"] if stock_loop else []),
    ]
    process = subprocess.Popen(command, stdout=subprocess.PIPE, text=True)
    try:
        assert process.stdout is not None
        line = process.stdout.readline()
        if not line.startswith("listening on "):
            raise RuntimeError(f"scripted server did not start: {line!r}")
        yield Endpoint(f"http://127.0.0.1:{int(line.split()[-1])}/v1", model="scripted")
    finally:
        process.terminate()
        process.wait(timeout=10)


def serve(script: Script, stock_loop: bool) -> None:
    async def forever() -> None:
        gc.disable()  # as the client's run_sync does: no collector pauses in the reference
        async with ScriptedServer(script) as server:
            print(f"listening on {server.port}", flush=True)
            await asyncio.Event().wait()

    factory = asyncio.new_event_loop if stock_loop else punctual_event_loop
    with contextlib.suppress(KeyboardInterrupt), asyncio.Runner(loop_factory=factory) as runner:
        runner.run(forever())


def report(errors: Errors, median_bound_ms: float, p99_bound_ms: float | None) -> bool:
    print(
        f"## {errors.label}: {errors.ok}/{errors.streams} requests ok, {errors.failed} failed, "
        f"peak {errors.peak_open} streams open at once"
    )
    passed = errors.failed == 0
    for name, values in (("TTFT", errors.ttft_ms), ("ITL", errors.itl_ms)):
        median, p99 = statistics.median(values), _pct(values, 0.99)
        verdict = median <= median_bound_ms and (p99_bound_ms is None or p99 <= p99_bound_ms)
        passed = passed and verdict
        bound = f"median <= {median_bound_ms} ms" + ("" if p99_bound_ms is None else f", p99 <= {p99_bound_ms} ms")
        print(
            f"  {name:4s} |error| over {len(values):6d}: median {median:6.3f} ms  p99 {p99:7.3f} ms  "
            f"max {max(values):7.3f} ms   [{bound}: {'PASS' if verdict else 'FAIL'}]"
        )
    for name, values in (
        ("client's share: read - server write", errors.client_lag_ms),
        ("server's share: write - scripted time", errors.server_late_ms),
        ("request way in: server arrival - send", errors.request_way_in_ms),
        ("client start lateness vs schedule", errors.client_delay_ms),
    ):
        print(f"  {name:38s} median {statistics.median(values):6.3f} ms  p99 {_pct(values, 0.99):7.3f} ms")
    return passed


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--streams", type=int, default=1000, help="concurrent streams of the second load")
    parser.add_argument("--tokens", type=int, default=40, help="tokens per request (concurrent load)")
    parser.add_argument("--ttft-ms", type=float, default=50.0)
    parser.add_argument("--itl-ms", type=float, default=100.0, help="100 ms = 10 tokens/s per stream")
    parser.add_argument("--ramp-s", type=float, default=1.0, help="starts of the concurrent streams spread over")
    parser.add_argument("--single", type=int, default=10, help="requests of the one-stream load")
    parser.add_argument(
        "--stock-server-loop",
        action="store_true",
        help="the server's stock asyncio loop (timers up to 1 ms late, no polling): for a machine whose cores "
        "are shared, where the punctual loop's polling would take CPU from the client",
    )
    parser.add_argument("--serve", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    script = Script(args.ttft_ms / 1e3, args.itl_ms / 1e3)
    if args.serve:
        serve(script, args.stock_server_loop)
        return 0
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (max(soft, min(hard, 4 * args.streams + 256)), hard))
    cpu = cpu_facts()
    print(
        f"# engine client overhead: {cpu.model}, {os.cpu_count()} logical CPUs, "
        f"Python {sys.version.split()[0]}, loadavg {os.getloadavg()[0]:.1f}"
    )
    loop = "stock asyncio loop" if args.stock_server_loop else "punctual loop"
    print(f"# script: TTFT {args.ttft_ms} ms, ITL {args.itl_ms} ms; server in its own process ({loop})")
    with server_process(script, args.stock_server_loop) as endpoint:
        single = run_sync(lambda: run_load(endpoint, streams=args.single, tokens=10, ramp_s=0, sequential=True))
        ok = report(errors_of("1 stream", single, script), 1.0, None)
        many = run_sync(
            lambda: run_load(endpoint, streams=args.streams, tokens=args.tokens, ramp_s=args.ramp_s, sequential=False)
        )
        ok = report(errors_of(f"{args.streams} concurrent streams", many, script), 2.0, 10.0) and ok
    print(f"# overall: {'PASS' if ok else 'FAIL'}")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
