"""A stand-in engine *process* for the launcher's fault tests (never the check of a real engine).

It behaves like vLLM's API server where the launcher can tell: it forks a child (vLLM's engine
core) into its process group, answers ``/health`` 503 until ready and 200 after, and ``/version``
and ``/v1/models``. Flags make it misbehave: ``--ready-after S`` (``never``), ``--exit N`` (exit
with code N after printing an error line), ``--ignore-term`` (it and its child ignore SIGTERM, so
only SIGKILL ends them), ``--hang-posts`` (a completions request is read and never answered, so a
run stays busy on it). The child's pid goes to ``--pid-file`` so a test can check it is gone.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import sys
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--ready-after", default="0")
    parser.add_argument("--exit", type=int, default=None)
    parser.add_argument("--ignore-term", action="store_true")
    parser.add_argument("--pid-file", default=None)
    parser.add_argument("--hang-posts", action="store_true")
    args, _ = parser.parse_known_args()  # as vLLM's api_server, given every vLLM flag
    if args.ignore_term:
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
    child = os.fork()
    if child == 0:  # the "engine core": sleeps until killed, like a worker waiting for work
        while True:
            time.sleep(60)
    if args.pid_file:
        with open(args.pid_file, "w") as f:
            f.write(f"{os.getpid()} {child}\n")
    print("INFO fake engine starting", flush=True)
    if args.exit is not None:
        print("ERROR RuntimeError: Engine core initialization failed (fake)", flush=True)
        print("INFO shutting down", flush=True)
        os.kill(child, signal.SIGKILL)
        sys.exit(args.exit)
    ready_at = float("inf") if args.ready_after == "never" else time.monotonic() + float(args.ready_after)

    class Handler(BaseHTTPRequestHandler):
        def log_message(self, *a: object) -> None:
            pass

        def _json(self, status: int, body: object) -> None:
            data = json.dumps(body).encode()
            self.send_response(status)
            self.send_header("content-type", "application/json")
            self.send_header("content-length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def do_POST(self) -> None:
            if args.hang_posts:
                time.sleep(3600)
            self._json(501, {"error": "fake engine serves no completions"})

        def do_GET(self) -> None:
            if time.monotonic() < ready_at:
                self._json(503, {"error": "starting"})
            elif self.path == "/health":
                self._json(200, {})
            elif self.path == "/version":
                self._json(200, {"version": "0.0.fake"})
            elif self.path == "/v1/models":
                self._json(200, {"object": "list", "data": [{"id": "fake-model"}]})
            else:
                self._json(404, {})

    ThreadingHTTPServer(("127.0.0.1", args.port), Handler).serve_forever()


if __name__ == "__main__":
    main()
