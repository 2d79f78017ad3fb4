"""The inputs of engine cells, checked here before anything is started, sent or measured.

An engine cell takes its bad input late: the model folder when the tokenizer is loaded, the
prompt file when the request set is built, the engine's python when the engine is started, the
endpoint when it is attached to; each was a failed cell (exit 1) after the run file existed, and
with a concurrency sweep the same failure once per cell. ``check_engine_inputs`` does each of
those steps once, up front, and turns what is wrong into one ``ConfigError`` (one line, exit 2)
that names the fix:

- the model: a path must be a folder with a readable ``config.json`` that transformers knows, and a
  tokenizer (a hub id is left to the tokenizer's own loading, which says when it is unknown; an
  ``s3://`` model, and the request set made with its tokenizer, are checked by the cell that
  fetches it: before the fetch there is no folder to load);
- the request set: built as the cells will build it (``workloads.request_sets.request_set``):
  the prompt file readable, text, not empty nor enormous, each line a request; the token-count
  distributions drawable; every request within the engine's context;
- a started engine: its python an executable Python that has vLLM (asked without importing it);
- an attached server: an ``http(s)://host[:port]`` URL that answers ``GET /v1/models`` now.
"""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path
from urllib.parse import urlsplit

from harness.errors import CellFailedError, ConfigError
from harness.runfile.engine import EngineParams, EngineSpec

__all__ = ["check_endpoint_url", "check_engine_inputs", "check_engine_python", "check_model"]

#: How long the engine's python may take to say whether it has vLLM (a cold disk, a slow NFS home).
PROBE_TIMEOUT_S = 60.0
#: Files of which a model folder has at least one when it carries a tokenizer (fast, slow, sentencepiece, BPE).
_TOKENIZER_FILES = (
    "tokenizer.json",
    "tokenizer_config.json",
    "tokenizer.model",
    "vocab.json",
    "vocab.txt",
    "spiece.model",
)
_PROBE = "import importlib.util as u; print('siliconbench-probe', u.find_spec('vllm') is not None)"


def _looks_like_path(model: str) -> bool:
    return model.startswith(("/", "./", "../", "~")) or model in (".", "..") or Path(model).exists()


def check_model(model: str) -> None:
    """A model folder the engine and the reference can load, with its tokenizer."""
    from workloads.request_sets import load_tokenizer

    if _looks_like_path(model):
        folder = Path(model).expanduser()
        if not folder.exists():
            raise ConfigError(f"model folder {model!r} does not exist; give a folder with config.json or a hub id")
        if not folder.is_dir():
            raise ConfigError(f"model {model!r} is a file, not a folder; give the folder that holds config.json")
        config = folder / "config.json"
        try:
            payload = json.loads(config.read_text(encoding="utf-8"))
        except FileNotFoundError:
            raise ConfigError(f"model folder {model!r} has no config.json; it is not a transformers model") from None
        except OSError as exc:
            raise ConfigError(f"cannot read {str(config)!r}: {exc.strerror or exc}") from None
        except (ValueError, UnicodeDecodeError) as exc:
            detail = exc.msg if isinstance(exc, json.JSONDecodeError) else str(exc)
            raise ConfigError(f"{str(config)!r} is corrupt (not JSON: {detail}); restore the model folder") from None
        if not isinstance(payload, dict) or "model_type" not in payload:
            raise ConfigError(f"{str(config)!r} has no model_type; it is not a transformers model config")
        try:
            from transformers import AutoConfig

            AutoConfig.from_pretrained(str(folder))
        except (OSError, ValueError, KeyError, TypeError) as exc:
            detail = " ".join(str(exc).split())[:200]
            raise ConfigError(f"{str(config)!r} cannot be loaded: {detail}") from None
        if not any((folder / name).exists() for name in _TOKENIZER_FILES):
            raise ConfigError(
                f"model folder {model!r} has no tokenizer ({', '.join(_TOKENIZER_FILES[:2])}, ...); "
                "copy the tokenizer files beside config.json"
            )
    load_tokenizer(model)


def check_engine_python(spec: EngineSpec) -> str:
    """The engine's python (``serving.engine_python``), checked to be a Python that has vLLM."""
    from backends.engine.serving import engine_python

    python = engine_python(spec.silicon, spec.python)
    try:
        done = subprocess.run(
            [python, "-c", _PROBE],
            capture_output=True,
            text=True,
            timeout=PROBE_TIMEOUT_S,
            stdin=subprocess.DEVNULL,
            env={**os.environ, **dict(spec.extra_env)},
        )
    except OSError as exc:
        raise ConfigError(f"the engine's python {python!r} cannot be run: {exc.strerror or exc}") from None
    except subprocess.TimeoutExpired:
        raise ConfigError(f"the engine's python {python!r} did not answer within {PROBE_TIMEOUT_S:g} s") from None
    answer = [line for line in done.stdout.splitlines() if line.startswith("siliconbench-probe ")]
    if done.returncode != 0 or not answer:
        raise ConfigError(
            f"the engine's python {python!r} is not a Python interpreter; give --engine-python PATH/bin/python"
        )
    if answer[-1].split()[-1] != "True":
        raise ConfigError(
            f"the engine's python {python!r} has no vLLM; give the python of a vLLM environment with "
            "--engine-python (scripts/vllm-cpu.sh builds one for the CPU)"
        )
    return python


def check_endpoint_url(url: str) -> str:
    """``url`` as ``http(s)://host[:port]``, checked to be one (the form, not the server)."""
    parts = urlsplit(url.strip())
    form = "give --endpoint http://HOST:PORT (the server's base URL, with or without /v1)"
    if parts.scheme not in ("http", "https"):
        raise ConfigError(f"--endpoint {url!r} is not an http:// or https:// URL; {form}")
    try:
        port = parts.port
    except ValueError:
        raise ConfigError(f"--endpoint {url!r} has no valid port; {form}") from None
    if not parts.hostname:
        raise ConfigError(f"--endpoint {url!r} names no host; {form}")
    if parts.query or parts.fragment:
        raise ConfigError(f"--endpoint {url!r} has a query or fragment; {form}")
    del port
    return url


def check_engine_inputs(params: EngineParams) -> None:
    """Every input of the suite's engine cells, checked in the order a cell would meet them."""
    spec = params.spec
    if spec.endpoint is not None:
        check_endpoint_url(spec.endpoint)
    else:
        check_engine_python(spec)
    # An s3:// model is a folder only once the cell has fetched it (timed, as the cold start's
    # download): its tokenizer, and so the request set, can only be checked there.
    if not spec.model.startswith("s3://"):
        check_model(spec.model)
        from workloads.request_sets import request_set

        request_set(params)
    if spec.endpoint is not None:
        from backends.engine.launcher import attach

        try:
            attach(spec.endpoint)
        except CellFailedError as exc:
            raise ConfigError(f"{exc}; start the server or correct --endpoint") from None
