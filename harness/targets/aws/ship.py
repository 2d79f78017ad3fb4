"""The code an instance installs: a wheel of the running siliconbench and its pure-Python dependencies.

siliconbench is not on the package index, and an instance in a private subnet has no index at all,
so the launcher always ships what it is running: one ``bundle.tar.gz`` in the run's S3 folder with

- ``wheels/siliconbench-<version>-py3-none-any.whl``: built from the source tree this process
  runs from (``pip wheel --no-deps --no-build-isolation``), or repacked from the installed
  distribution's ``RECORD`` when siliconbench was installed from a wheel, or ``--wheel`` as given;
- ``wheels/<dependency>.whl``: every *pure-Python* distribution in the closure of
  ``siliconbench[aws,torch]``'s requirements (``INSTANCE_EXTRAS``: an instance measures, so it
  needs the torch extra's transformers beside the AMI's torch), repacked from this machine's
  installed copy (no download);
- ``manifest.json``: the wheel's file name and the ``compiled`` requirements (torch, numpy,
  rpds-py, tokenizers, ...) that cannot be shipped as platform-independent wheels and so must
  already be in the instance's environment.

The instance installs with ``pip install --no-index --find-links wheels``: pip keeps what the AMI's
environment already satisfies and takes the rest from the bundle; nothing reaches an index. The one
exception is the plain CPU image (Amazon Linux 2023), which has no PyTorch: its bootstrap installs
torch and the compiled requirements from the PyTorch CPU index (``TORCH_CPU_INDEX``) in one pip call.
"""

from __future__ import annotations

import base64
import csv
import hashlib
import io
import json
import os
import re
import shutil
import subprocess
import sys
import tarfile
import tempfile
import zipfile
from collections.abc import Iterable
from dataclasses import dataclass
from email.parser import Parser
from importlib import metadata
from pathlib import Path

from harness.errors import ConfigError

__all__ = [
    "AMI_PROVIDED",
    "BUNDLE",
    "INSTANCE_EXTRAS",
    "MANIFEST",
    "TORCH_CPU_INDEX",
    "Shipment",
    "build_shipment",
    "wheel_cache_dir",
]

BUNDLE = "bundle.tar.gz"
MANIFEST = "manifest.json"
#: Where the plain CPU image gets PyTorch: PyTorch's own CPU-only wheel index (the one index access).
TORCH_CPU_INDEX = "https://download.pytorch.org/whl/cpu"
#: The AMI's PyTorch stack: never shipped, never walked into (their dependencies belong to the AMI).
#: The extras an instance installs siliconbench with (the userdata's pip line names the same).
INSTANCE_EXTRAS = ("aws", "torch")
AMI_PROVIDED = frozenset({"torch", "torchvision", "torchaudio", "torch-neuronx", "torch-xla", "neuronx-cc", "triton"})
_NAME = re.compile(r"^([A-Za-z0-9][A-Za-z0-9._-]*)")


def _canonical(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def wheel_cache_dir() -> Path:
    """Repacked wheels are kept here between runs (``SILICONBENCH_WHEEL_CACHE`` overrides)."""
    override = os.environ.get("SILICONBENCH_WHEEL_CACHE")
    if override:
        return Path(override)
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "siliconbench" / "wheels"


@dataclass(frozen=True)
class Shipment:
    """What a run uploads for its instances to install."""

    bundle: Path
    wheel_name: str
    dependencies: tuple[str, ...]
    compiled: tuple[str, ...]


# -- siliconbench's own wheel -------------------------------------------------------------------------
def _source_root() -> Path | None:
    """The source tree this process runs from, when it runs from one (a checkout, an editable install)."""
    import harness

    root = Path(harness.__file__).resolve().parent.parent
    pyproject = root / "pyproject.toml"
    if pyproject.is_file() and re.search(r'^name\s*=\s*"siliconbench"', pyproject.read_text(), re.M):
        return root
    return None


def _tree_key(root: Path) -> str:
    """Changes whenever a file that goes into the wheel changes (name, size or modification time)."""
    digest = hashlib.sha256()
    for folder in ("harness", "workloads", "backends"):
        for path in sorted((root / folder).rglob("*")):
            if path.is_file() and "__pycache__" not in path.parts:
                stat = path.stat()
                digest.update(f"{path.relative_to(root)}:{stat.st_size}:{stat.st_mtime_ns}\n".encode())
    digest.update((root / "pyproject.toml").read_bytes())
    return digest.hexdigest()[:16]


def _build_from_source(root: Path, cache: Path) -> Path:
    target = cache / f"source-{_tree_key(root)}"
    found = sorted(target.glob("siliconbench-*.whl"))
    if found:
        return found[0]
    with tempfile.TemporaryDirectory(prefix="siliconbench-wheel-") as scratch:
        # setuptools writes build/ and *.egg-info next to the sources: build from a copy, so the
        # user's tree is only read.
        copy = Path(scratch) / "src"
        ignore = shutil.ignore_patterns("__pycache__", "*.pyc")
        for folder in ("harness", "workloads", "backends"):
            shutil.copytree(root / folder, copy / folder, ignore=ignore)
        for name in ("pyproject.toml", "README.md", "LICENSE"):
            if (root / name).is_file():
                shutil.copy2(root / name, copy / name)
        result = subprocess.run(
            [sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "--no-build-isolation", "-w", scratch, str(copy)],
            capture_output=True,
            text=True,
            timeout=600,
        )
        built = sorted(Path(scratch).glob("siliconbench-*.whl"))
        if result.returncode != 0 or not built:
            last = (result.stderr.strip().splitlines() or ["no wheel was built"])[-1]
            raise ConfigError(
                f"cannot build a wheel of siliconbench from {root}: {last} "
                "(build one with 'pip wheel --no-deps .' and pass --wheel)"
            )
        target.mkdir(parents=True, exist_ok=True)
        final = target / built[0].name
        os.replace(built[0], final)
    return final


# -- repacking installed distributions ------------------------------------------------------------------
def _wheel_tags(dist: metadata.Distribution) -> list[str]:
    text = dist.read_text("WHEEL") or ""
    return [line.split(":", 1)[1].strip() for line in text.splitlines() if line.startswith("Tag:")]


def is_pure(dist: metadata.Distribution) -> bool:
    """Installed from a platform-independent wheel: every tag is ``<python>-none-any``."""
    tags = _wheel_tags(dist)
    purelib = "Root-Is-Purelib: true" in (dist.read_text("WHEEL") or "")
    return purelib and bool(tags) and all(tag.endswith("-none-any") for tag in tags)


def _dist_info_name(dist: metadata.Distribution) -> str:
    for file in dist.files or ():
        top = file.parts[0]
        if top.endswith(".dist-info"):
            return top
    raise ConfigError(f"{dist.metadata['Name']} is not installed from a wheel (no .dist-info); cannot ship it")


def repack(dist: metadata.Distribution, folder: Path) -> Path:
    """Rebuild the wheel a distribution was installed from, from the files its RECORD lists.

    Files outside site-packages (console scripts; pip recreates those from entry_points.txt) and
    the installer's own notes (INSTALLER, REQUESTED, direct_url.json) are left out; RECORD is
    written afresh with the files' hashes, as the wheel format asks.
    """
    info = _dist_info_name(dist)
    stem = info[: -len(".dist-info")]
    tags = _wheel_tags(dist)
    tag = next((t for t in tags if t.startswith("py3")), tags[0] if tags else "py3-none-any")
    path = folder / f"{stem}-{tag}.whl"
    if path.exists():
        return path
    skip = {f"{info}/{name}" for name in ("RECORD", "INSTALLER", "REQUESTED", "direct_url.json")}
    rows: list[tuple[str, str, str]] = []
    folder.mkdir(parents=True, exist_ok=True)
    partial = folder / f".{path.name}.partial"
    with zipfile.ZipFile(partial, "w", compression=zipfile.ZIP_DEFLATED, compresslevel=1) as archive:
        for file in dist.files or ():
            name = file.as_posix()
            if name.startswith("..") or "__pycache__" in file.parts or name.endswith(".pyc") or name in skip:
                continue
            source = Path(str(dist.locate_file(file)))
            if not source.is_file():
                continue
            data = source.read_bytes()
            archive.writestr(name, data)
            digest = base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=").decode()
            rows.append((name, f"sha256={digest}", str(len(data))))
        record = io.StringIO()
        writer = csv.writer(record, lineterminator="\n")
        writer.writerows([*rows, (f"{info}/RECORD", "", "")])
        archive.writestr(f"{info}/RECORD", record.getvalue())
    os.replace(partial, path)
    return path


# -- the dependency closure ---------------------------------------------------------------------------
def _requirements(requires: Iterable[str], extras: Iterable[str]) -> list[str]:
    """Requirement names whose markers hold here, for the given extras."""
    from packaging.requirements import Requirement

    names = []
    for line in requires:
        requirement = Requirement(line)
        if requirement.marker is not None and not any(
            requirement.marker.evaluate({"extra": extra}) for extra in (*extras, "")
        ):
            continue
        names.append(requirement.name)
    return names


def _wheel_requires(wheel: Path) -> tuple[str, list[str]]:
    """The version and Requires-Dist lines of a wheel, read from its METADATA."""
    try:
        with zipfile.ZipFile(wheel) as archive:
            names = [n for n in archive.namelist() if re.match(r"^[^/]+\.dist-info/METADATA$", n)]
            if not names:
                raise ConfigError(f"{wheel} is not a wheel: it has no .dist-info/METADATA")
            message = Parser().parsestr(archive.read(names[0]).decode())
    except zipfile.BadZipFile:
        raise ConfigError(f"{wheel} is not a wheel: not a zip archive") from None
    return str(message["Version"]), list(message.get_all("Requires-Dist") or [])


def dependency_closure(requires: Iterable[str], extras: Iterable[str]) -> tuple[list[metadata.Distribution], list[str]]:
    """(pure-Python distributions to ship, compiled requirement names the instance must have)."""
    pure: dict[str, metadata.Distribution] = {}
    compiled: set[str] = set()
    queue = _requirements(requires, extras)
    seen: set[str] = set()
    while queue:
        name = _canonical(queue.pop())
        if name in seen:
            continue
        seen.add(name)
        if name in AMI_PROVIDED:
            compiled.add(name)
            continue
        try:
            dist = metadata.distribution(name)
        except metadata.PackageNotFoundError:
            raise ConfigError(
                f"siliconbench needs {name!r}, which is not installed here, so it cannot be shipped "
                f"(pip install 'siliconbench[{','.join(INSTANCE_EXTRAS)}]' on this machine first)"
            ) from None
        if is_pure(dist):
            pure[name] = dist
        else:
            compiled.add(name)
        queue.extend(_requirements(dist.requires or [], ()))
    return sorted(pure.values(), key=lambda d: _canonical(d.metadata["Name"])), sorted(compiled)


def build_shipment(workdir: Path, wheel: Path | None = None) -> Shipment:
    """Build ``bundle.tar.gz`` in ``workdir``: siliconbench's wheel, its pure dependencies, the manifest."""
    cache = wheel_cache_dir()
    if wheel is None:
        root = _source_root()
        if root is not None:
            wheel = _build_from_source(root, cache)
        else:
            wheel = repack(metadata.distribution("siliconbench"), cache / "installed")
    _, requires = _wheel_requires(wheel)
    pure, compiled = dependency_closure(requires, INSTANCE_EXTRAS)
    wheels = [wheel] + [repack(dist, cache / "dependencies") for dist in pure]
    workdir.mkdir(parents=True, exist_ok=True)
    manifest = {"wheel": wheel.name, "compiled": compiled, "dependencies": [w.name for w in wheels[1:]]}
    bundle = workdir / BUNDLE
    with tarfile.open(bundle, "w:gz", compresslevel=1) as archive:
        for path in wheels:
            archive.add(path, arcname=f"wheels/{path.name}")
        data = json.dumps(manifest, indent=1).encode()
        info = tarfile.TarInfo(MANIFEST)
        info.size = len(data)
        archive.addfile(info, io.BytesIO(data))
    return Shipment(
        bundle=bundle, wheel_name=wheel.name, dependencies=tuple(manifest["dependencies"]), compiled=tuple(compiled)
    )
