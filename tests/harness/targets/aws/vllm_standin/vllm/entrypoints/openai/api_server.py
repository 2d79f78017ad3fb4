"""The stand-in's ``python -m vllm.entrypoints.openai.api_server`` (see ``vllm/__init__.py``).

``STANDIN_LOG`` (a file) gets one JSON line per start: the argv and the variables the engine was
given; ``STANDIN_START_S`` delays listening, as a long start does.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import sys
import time
from importlib.metadata import entry_points
from pathlib import Path

from aiohttp import web

from backends.engine.scripted import Script, ScriptedServer


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--model", required=True)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8000)
    args, _ = parser.parse_known_args()
    log = os.environ.get("STANDIN_LOG")
    if log:
        names = ("NEURON_COMPILED_ARTIFACTS", "VLLM_CACHE_ROOT", "VLLM_NEURON_FRAMEWORK", "HF_TOKEN")
        line = {"argv": sys.argv[1:], "pid": os.getpid(), "env": {k: os.environ.get(k) for k in names}}
        with open(log, "a") as handle:
            handle.write(json.dumps(line) + "\n")
    artifact = _compiled_artifact(args.model)
    if artifact is not None and not artifact.exists():
        time.sleep(float(os.environ.get("STANDIN_COMPILE_S", "0")))
        artifact.parent.mkdir(parents=True, exist_ok=True)
        artifact.write_bytes(b"compiled by the stand-in")
    time.sleep(float(os.environ.get("STANDIN_START_S", "0")))
    scripted = ScriptedServer(Script(ttft_s=0.005, itl_s=0.001))

    async def health(request: web.Request) -> web.Response:
        return web.Response(status=200)

    async def version(request: web.Request) -> web.Response:
        # The stand-in's own package, imported here: the GPU image's import scan reads module-level
        # imports, and no distribution there provides a ``vllm``.
        import vllm

        return web.json_response({"version": vllm.__version__})

    async def models(request: web.Request) -> web.Response:
        return web.json_response({"object": "list", "data": [{"id": args.model, "object": "model"}]})

    app = web.Application()
    app.router.add_get("/health", health)
    app.router.add_get("/version", version)
    app.router.add_get("/v1/models", models)
    app.router.add_post("/v1/completions", scripted._completions)
    web.run_app(app, host=args.host, port=args.port, print=None, access_log=None)


def _compiled_artifact(model: str) -> Path | None:
    """Where the played Neuron stack keeps its compiled model (``vllm/__init__.py``), None off Neuron."""
    if os.environ.get("VLLM_NEURON_FRAMEWORK") == "neuronx-distributed-inference":
        artifacts = os.environ.get("NEURON_COMPILED_ARTIFACTS")
        return Path(artifacts) / "model.pt" if artifacts else None
    if not any(e.name == "neuron" for e in entry_points(group="vllm.platform_plugins")):
        return None
    root = os.environ.get("VLLM_CACHE_ROOT") or os.path.expanduser("~/.cache/vllm")
    argv = sys.argv[1:]
    served = [
        a
        for i, a in enumerate(argv)
        if a not in ("--host", "--port") and argv[i - 1 : i] not in (["--host"], ["--port"])
    ]
    key = hashlib.md5(json.dumps([model, served]).encode()).hexdigest()  # where it serves compiles nothing
    return Path(root) / "neuron" / "compile_cache" / key / "model.neff"


if __name__ == "__main__":
    main()
