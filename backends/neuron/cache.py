"""The on-disk cache of compiled Neuron artifacts: one per input shape, reused across runs.

A traced Neuron model accepts only the shapes and dtypes it was compiled for, and compiling takes
seconds to many minutes, so each distinct (model, input shapes, compiler flags, toolchain) gets
its own artifact, saved once with ``torch.jit.save`` and loaded with ``torch.jit.load`` on every
later run. The key hashes everything that changes the compiled binary: the model's structure, the
source of its module classes and every weight; the example inputs' shapes and dtypes; the mode;
the neuronx-cc flags (including ``NEURON_CC_FLAGS``, which torch-neuronx adds to them); and the
torch, torch-neuronx and neuronx-cc versions.

Writes are atomic (temporary file, fsync, rename) and each artifact's SHA-256 is kept beside it,
so a run killed mid-write or a damaged file is noticed on load and recompiled, never fatal.
"""

from __future__ import annotations

import contextlib
import hashlib
import inspect
import json
import os
import shutil
import tempfile
import warnings
from collections.abc import Collection, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from backends.neuron.failures import is_device_memory_error

if TYPE_CHECKING:
    import torch

__all__ = ["CACHE_ENV", "ArtifactCache", "CacheEntry", "cache_key", "default_cache_dir", "model_fingerprint"]

CACHE_ENV = "SILICONBENCH_NEURON_CACHE"
#: Bump when the key's recipe or the file layout changes, so old entries are simply not found.
CACHE_FORMAT = 1
_CHUNK = 1 << 20


def default_cache_dir(env: Mapping[str, str] | None = None) -> Path:
    """``$SILICONBENCH_NEURON_CACHE``, else ``$XDG_CACHE_HOME/siliconbench/neuron`` (~/.cache by default)."""
    env = os.environ if env is None else env
    if env.get(CACHE_ENV):
        return Path(env[CACHE_ENV]).expanduser()
    base = Path(env["XDG_CACHE_HOME"]).expanduser() if env.get("XDG_CACHE_HOME") else Path.home() / ".cache"
    return base / "siliconbench" / "neuron"


@contextlib.contextmanager
def torchscript_io() -> Iterator[None]:
    """Silence newer torch's deprecation of ``torch.jit`` for our own save/load calls.

    TorchScript is the artifact format torch-neuronx's trace API produces, and the Neuron stack runs
    on a torch (2.9 on Inf2/Trn1) where it is not deprecated; the warning tells us nothing we can act on.
    """
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", category=DeprecationWarning, message=r".*torch\.jit")
        yield


def _class_sources(model: torch.nn.Module) -> list[str]:
    """Source of every module class in the model, so editing ``forward`` invalidates the cache."""
    seen: dict[str, str] = {}
    for module in model.modules():
        cls = type(module)
        name = f"{cls.__module__}.{cls.__qualname__}"
        if name in seen:
            continue
        try:
            seen[name] = inspect.getsource(cls)
        except (OSError, TypeError):
            seen[name] = ""
    return [f"{name}\n{source}" for name, source in sorted(seen.items())]


def model_fingerprint(model: torch.nn.Module, state: Collection[str] = ()) -> str:
    """SHA-256 of the model's structure, class sources and every parameter and buffer.

    Tensors named in ``state`` (a decoder's aliased state) count by name, dtype and shape only:
    their values change with every request and are not compiled into the binary.
    """
    import torch

    digest = hashlib.sha256()
    digest.update(repr(model).encode())
    for source in _class_sources(model):
        digest.update(source.encode())
    for name, tensor in sorted(model.state_dict(keep_vars=False).items()):
        data = tensor.detach().to("cpu").contiguous()
        digest.update(f"{name}|{data.dtype}|{tuple(data.shape)}".encode())
        if data.numel() and name not in state:
            digest.update(data.reshape(-1).view(torch.uint8).numpy())  # the buffer itself, no copy
    return digest.hexdigest()


def cache_key(components: Mapping[str, Any]) -> str:
    """A stable key from JSON-able components (sorted, so dict order never matters)."""
    text = json.dumps({"format": CACHE_FORMAT, **components}, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(text.encode()).hexdigest()[:40]


def _file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        while block := handle.read(_CHUNK):
            digest.update(block)
    return digest.hexdigest()


def _atomic_write(path: Path, write: Any) -> None:
    """Write through ``write(handle)`` to a temporary file beside ``path``, then rename over it."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as handle:
            write(handle)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise


@dataclass(frozen=True)
class CacheEntry:
    """Where one compiled artifact lives."""

    key: str
    artifact: Path
    meta: Path


class ArtifactCache:
    """Compiled artifacts under ``root/<key[:2]>/<key>.pt`` with a ``.json`` of what they are."""

    def __init__(self, root: Path | None = None) -> None:
        self.root = root if root is not None else default_cache_dir()

    def entry(self, key: str) -> CacheEntry:
        folder = self.root / key[:2]
        return CacheEntry(key, folder / f"{key}.pt", folder / f"{key}.json")

    def workdir(self, key: str) -> Path:
        """A fresh neuronx-cc work directory for this key (its logs explain a failed compile)."""
        path = self.root / "workdir" / key
        shutil.rmtree(path, ignore_errors=True)
        path.mkdir(parents=True, exist_ok=True)
        return path

    def load(self, key: str) -> tuple[Any | None, str | None]:
        """The cached module, or None and why it could not be used (None reason: simply absent).

        Anything wrong with an entry (missing metadata, checksum mismatch, a file torch cannot
        load) deletes it, so the caller recompiles and the next run finds a good one.
        """
        import torch

        entry = self.entry(key)
        if not entry.artifact.exists():
            return None, None
        try:
            meta = json.loads(entry.meta.read_text())
            if meta.get("sha256") != _file_sha256(entry.artifact):
                raise ValueError("checksum mismatch (the file was damaged or partly written)")
            with torchscript_io():
                module = torch.jit.load(str(entry.artifact))  # type: ignore[no-untyped-call,unused-ignore]
        except Exception as exc:  # any unreadable entry is recompiled, whatever failed
            if is_device_memory_error(exc):
                raise  # loading puts the model on a NeuronCore: a full device is no fault of the file
            self.discard(key)
            first = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
            return None, f"cached artifact {entry.artifact.name} was unusable and is recompiled: {first[:200]}"
        return module, None

    def store(self, key: str, module: Any, meta: Mapping[str, Any]) -> CacheEntry:
        """Save ``module`` atomically, then its metadata with the artifact's checksum."""
        import torch

        entry = self.entry(key)

        def save(handle: Any) -> None:
            with torchscript_io():
                torch.jit.save(module, handle)

        _atomic_write(entry.artifact, save)
        record = {**meta, "key": key, "format": CACHE_FORMAT, "sha256": _file_sha256(entry.artifact)}
        _atomic_write(entry.meta, lambda h: h.write(json.dumps(record, indent=1, sort_keys=True).encode()))
        return entry

    def discard(self, key: str) -> None:
        entry = self.entry(key)
        for path in (entry.artifact, entry.meta):
            with contextlib.suppress(FileNotFoundError):
                path.unlink()

    def artifacts(self) -> list[Path]:
        """Every stored artifact (for tests and housekeeping)."""
        return sorted(p for p in self.root.glob("??/*.pt") if p.is_file())
