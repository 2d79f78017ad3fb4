"""Where an engine's weights come from: fetched once per process, before the engine starts, and timed.

``--model`` is a folder, a Hugging Face hub id, or ``s3://bucket/prefix/`` (a folder of weights in
S3). The fetch is kept apart from the engine's start so that the cold start splits into download
and ready (``harness.runfile.engine.ColdStart``):

- ``s3://``: every object under the prefix is copied to ``$SILICONBENCH_MODEL_DIR/<bucket>/<prefix>``
  with boto3 (on an instance, its role); the engine, the tokenizer and the correctness reference
  are given that folder.
- a hub id, when ``$SILICONBENCH_PREFETCH_HUB`` is set (the AWS bootstrap sets it): downloaded into
  the Hugging Face cache with ``huggingface_hub.snapshot_download`` (the token, if any, from
  ``$HF_TOKEN``, which the agent sets from SSM or Secrets Manager and which never reaches the run
  file); the engine is still given the hub id and finds it cached. Without the variable, vLLM
  fetches it itself and the download is part of its ready time.
- a folder: used as it is.
"""

from __future__ import annotations

import os
import re
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from harness.errors import CellFailedError, ConfigError

__all__ = [
    "MODEL_DIR_ENV",
    "PREFETCH_HUB_ENV",
    "LocalModel",
    "forget_fetched",
    "is_hub_id",
    "local_model",
    "s3_local_dir",
]

MODEL_DIR_ENV = "SILICONBENCH_MODEL_DIR"
PREFETCH_HUB_ENV = "SILICONBENCH_PREFETCH_HUB"


@dataclass(frozen=True)
class LocalModel:
    """A model as the engine is given it: ``path`` (a folder, or the hub id once cached)."""

    name: str
    path: str
    source: str | None = None
    download_s: float | None = None


def model_dir() -> Path:
    override = os.environ.get(MODEL_DIR_ENV)
    return Path(override) if override else Path.home() / ".cache" / "siliconbench" / "models"


def _split_s3(uri: str) -> tuple[str, str]:
    rest = uri.removeprefix("s3://")
    bucket, _, prefix = rest.partition("/")
    if not bucket or not prefix.strip("/"):
        raise ConfigError(f"--model {uri!r}: give s3://BUCKET/PREFIX/, the folder holding the weights")
    return bucket, prefix.strip("/")


def s3_local_dir(uri: str, base: str | Path | None = None) -> Path:
    """Where an ``s3://`` model is copied to."""
    bucket, prefix = _split_s3(uri)
    return (Path(base) if base is not None else model_dir()) / bucket / prefix


#: A hub repository id: ``namespace/name`` (huggingface_hub's rule: letters, digits, ``-_.``).
_HUB_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]*/[A-Za-z0-9][A-Za-z0-9_.-]*$")


def is_hub_id(model: str) -> bool:
    """Whether ``model`` is written as a hub id (``Qwen/Qwen2.5-0.5B-Instruct``), not a path."""
    return bool(_HUB_ID.fullmatch(model))


_FETCHED: dict[str, LocalModel] = {}
_LOCK = threading.Lock()


def forget_fetched() -> None:
    """Forget what this process fetched (tests)."""
    with _LOCK:
        _FETCHED.clear()


def local_model(model: str, *, s3_client: Any = None, clock: Callable[[], float] = time.monotonic) -> LocalModel:
    """The model as the engine is given it, fetched (and timed) on first use in this process."""
    with _LOCK:
        if model in _FETCHED:
            return _FETCHED[model]
        if model.startswith("s3://"):
            fetched = _from_s3(model, s3_client, clock)
        elif os.environ.get(PREFETCH_HUB_ENV) and is_hub_id(model) and not Path(model).exists():
            fetched = _from_hub(model, clock)
        else:
            fetched = LocalModel(model, model)
        _FETCHED[model] = fetched
        return fetched


def _from_s3(uri: str, s3: Any, clock: Callable[[], float]) -> LocalModel:
    bucket, prefix = _split_s3(uri)
    target = s3_local_dir(uri)
    started = clock()
    try:
        import boto3
        from botocore.exceptions import BotoCoreError, ClientError
    except ImportError:
        raise ConfigError(f"--model {uri} needs boto3: pip install 'siliconbench[aws]'") from None
    try:
        client = s3 if s3 is not None else boto3.client("s3")
        pages = client.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=f"{prefix}/")
        keys = [item["Key"] for page in pages for item in page.get("Contents", []) if not item["Key"].endswith("/")]
        if not keys:
            raise CellFailedError(f"--model {uri}: no objects under that prefix (copy the model folder there first)")
        for key in keys:
            path = target / key[len(prefix) + 1 :]
            path.parent.mkdir(parents=True, exist_ok=True)
            client.download_file(Bucket=bucket, Key=key, Filename=str(path))
    except (BotoCoreError, ClientError) as exc:
        raise CellFailedError(f"--model {uri}: cannot copy it from S3: {exc}") from None
    return LocalModel(uri, str(target), source=uri, download_s=clock() - started)


def _from_hub(repo_id: str, clock: Callable[[], float]) -> LocalModel:
    try:
        from huggingface_hub import snapshot_download
    except ImportError:
        return LocalModel(repo_id, repo_id)
    started = clock()
    try:
        snapshot_download(repo_id, token=os.environ.get("HF_TOKEN") or None)
    except Exception as exc:
        raise CellFailedError(f"--model {repo_id}: cannot download it from the Hugging Face Hub: {exc}") from None
    return LocalModel(repo_id, repo_id, source="hub", download_s=clock() - started)
