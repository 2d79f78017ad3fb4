"""Is a folder of wheels exactly what the GPU machine lacks? Checked by pip's own resolver.

The GPU machine cannot reach a registry, and its image already holds torch and most of what
siliconbench needs (``scripts/gpu-image-packages.txt``). ``scripts/gpu-wheels.sh`` fills
``.whl/`` with the rest; this check says whether that set is right, before it travels:

1. every wheel installs on CPython 3.12, manylinux x86-64 (pip's tag check, not ours);
2. one version per project, and no project the image already has (two versions of a project
   stop the whole ``--no-deps`` install there; a second copy of an image package would shadow it)
   unless ``scripts/gpu-wheels.txt`` marks it ``# over the image's``: carried on purpose, for a
   version the image may not have;
3. complete: ``pip install --dry-run --no-index`` of siliconbench with its ``cuda`` and ``plot``
   extras and the test runner, resolving for Python 3.12 from the wheels plus one empty
   placeholder wheel per image package, needs nothing else;
4. nothing extra: every carried wheel is in that resolution;
5. small enough to travel: wheels plus the working tree under the 64 MiB the device tool carries;
6. what ``pytest -m gpu`` collects can be imported there: every third-party module that the
   packages, tests and benchmarks import at module level comes from the image or the wheels
   (pytest imports every test module to collect it, GPU-marked or not).

Image packages whose version the list does not give get a placeholder at the lowest version the
carried wheels accept: the resolver then checks names, not those versions, and ``pip check`` on
the machine (stage ``install`` of ``scripts/gpu-check.sh``) is the final word on them.

Usage: ``python scripts/gpu_wheels_check.py [.whl]``; exit status 0 when the set is right, 1 with
one line per problem otherwise.
"""

from __future__ import annotations

import argparse
import ast
import importlib.metadata
import json
import os
import subprocess
import sys
import tempfile
import zipfile
from collections.abc import Iterable
from dataclasses import dataclass
from email.parser import Parser
from pathlib import Path

from packaging.markers import default_environment
from packaging.requirements import Requirement
from packaging.specifiers import SpecifierSet
from packaging.utils import canonicalize_name, parse_wheel_filename
from packaging.version import InvalidVersion, Version

REPO_ROOT = Path(__file__).resolve().parent.parent
IMAGE_LIST = REPO_ROOT / "scripts" / "gpu-image-packages.txt"
WHEEL_LIST = REPO_ROOT / "scripts" / "gpu-wheels.txt"
#: A gpu-wheels.txt line with this comment carries a package the image has, on purpose.
OVERRIDE_MARK = "# over the image's"

#: What ``scripts/gpu-check.sh`` installs and runs: siliconbench with the extras the GPU stages
#: use (NVML energy, the HTML report's figures), and the test runner with the plugins that
#: ``pyproject.toml``'s pytest settings need (``timeout``) and the tests import.
ROOTS = ("siliconbench[cuda,plot]", "pytest", "pytest-timeout", "pytest-benchmark")

#: The image's interpreter and platform. Its Python is 3.12.3; manylinux tags up to 2_28 are the
#: ones the device notes name for wheels carried there.
PYTHON_VERSION = "3.12"
PLATFORMS = (
    "manylinux_2_28_x86_64",
    "manylinux_2_27_x86_64",
    "manylinux_2_17_x86_64",
    "manylinux2014_x86_64",
    "manylinux1_x86_64",
)

#: The device tool carries the working tree and the carried paths up to this size, in all.
TRAVEL_LIMIT_BYTES = 64 * 2**20


#: What pytest and the GPU stages import: the packages, their tests, the benchmark and the helper.
SCANNED = ("harness", "backends", "workloads", "tests", "benchmarks", "scripts")
FIRST_PARTY = frozenset({"harness", "backends", "workloads", "tests", "scripts", "benchmarks", "neuron_double_runtime"})


@dataclass(frozen=True)
class Wheel:
    """One wheel file: its project, version and requirements (from its METADATA)."""

    path: Path
    name: str
    version: Version
    requires: tuple[Requirement, ...]


def read_wheel(path: Path) -> Wheel:
    """Name, version and ``Requires-Dist`` of a wheel, without installing it."""
    name, version, _, _ = parse_wheel_filename(path.name)
    with zipfile.ZipFile(path) as archive:
        metadata_name = next(n for n in archive.namelist() if n.endswith(".dist-info/METADATA"))
        metadata = Parser().parsestr(archive.read(metadata_name).decode())
    requires = tuple(Requirement(r) for r in metadata.get_all("Requires-Dist") or [])
    return Wheel(path, canonicalize_name(name), version, requires)


def read_image_list(path: Path = IMAGE_LIST) -> dict[str, Version | None]:
    """The image's packages: canonical name -> version, or None where the list gives none."""
    packages: dict[str, Version | None] = {}
    for raw in path.read_text().splitlines():
        line = raw.split("#", 1)[0].strip()
        if not line:
            continue
        name, _, version = line.partition("==")
        packages[canonicalize_name(name)] = Version(version) if version else None
    return packages


def read_wheel_list(path: Path = WHEEL_LIST) -> tuple[dict[str, str], frozenset[str]]:
    """The pinned wheels (canonical name -> version) and those carried over the image's own."""
    pins: dict[str, str] = {}
    overrides: set[str] = set()
    for raw in path.read_text().splitlines():
        line = raw.split("#", 1)[0].strip()
        if not line:
            continue
        name, _, version = line.partition("==")
        pins[canonicalize_name(name)] = version
        if OVERRIDE_MARK in raw:
            overrides.add(canonicalize_name(name))
    return pins, frozenset(overrides)


def _environment() -> dict[str, str]:
    """Marker values for the image: CPython 3.12 on Linux x86-64."""
    env: dict[str, str] = {k: str(v) for k, v in default_environment().items()}
    env.update(
        python_version=PYTHON_VERSION,
        python_full_version=f"{PYTHON_VERSION}.3",
        implementation_name="cpython",
        platform_python_implementation="CPython",
        sys_platform="linux",
        platform_system="Linux",
        platform_machine="x86_64",
        os_name="posix",
    )
    return env


def placeholder_version(specifiers: Iterable[SpecifierSet]) -> Version | None:
    """The lowest version that every specifier accepts, among 0 and each bound (and just above it)."""
    sets = list(specifiers)
    candidates = {Version("0")}
    for spec_set in sets:
        for spec in spec_set:
            try:
                bound = Version(spec.version.rstrip(".*"))
            except InvalidVersion:
                continue
            candidates |= {bound, Version(f"{bound.base_version}.1")}
    for candidate in sorted(candidates):
        if all(spec_set.contains(candidate, prereleases=True) for spec_set in sets):
            return candidate
    return None


def _write_placeholder(folder: Path, name: str, version: Version) -> None:
    """An empty wheel that stands for an image package: name and version, no requirements."""
    dist_info = f"{name.replace('-', '_')}-{version}.dist-info"
    with zipfile.ZipFile(folder / f"{name.replace('-', '_')}-{version}-py3-none-any.whl", "w") as archive:
        archive.writestr(f"{dist_info}/METADATA", f"Metadata-Version: 2.1\nName: {name}\nVersion: {version}\n")
        archive.writestr(f"{dist_info}/WHEEL", "Wheel-Version: 1.0\nRoot-Is-Purelib: true\nTag: py3-none-any\n")
        archive.writestr(f"{dist_info}/RECORD", "")


def tree_bytes(root: Path) -> int | None:
    """Size of what the device tool carries besides the wheels: tracked and untracked-not-ignored files."""
    try:
        listing = subprocess.run(
            ["git", "-C", str(root), "ls-files", "-co", "--exclude-standard", "-z"],
            capture_output=True,
            check=True,
            timeout=60,
        ).stdout
    except (OSError, subprocess.SubprocessError):
        return None
    files = (root / name for name in listing.decode().split("\0") if name)
    return sum(f.stat().st_size for f in files if f.is_file())


def module_level_imports(source: str) -> set[str]:
    """Top-level names imported when a module is imported: its body's imports, not functions'.

    Imports under ``if TYPE_CHECKING:`` never run; those under ``try:`` are optional by design.
    """
    names: set[str] = set()
    for node in ast.parse(source).body:
        if isinstance(node, ast.Import):
            names.update(alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names.add(node.module.split(".")[0])
    return names


def unmet_imports(root: Path, provided: set[str]) -> list[str]:
    """Module-level third-party imports under ``root``'s SCANNED folders that ``provided`` lacks.

    ``provided`` holds canonical distribution names; an import maps to its distribution through
    this environment's metadata (where the test extra is installed).
    """
    distributions = {
        module: {canonicalize_name(d) for d in dists}
        for module, dists in importlib.metadata.packages_distributions().items()
    }
    problems: list[str] = []
    for folder in SCANNED:
        for path in sorted((root / folder).rglob("*.py")):
            for name in sorted(module_level_imports(path.read_text()) - set(sys.stdlib_module_names) - FIRST_PARTY):
                where = path.relative_to(root)
                owners = distributions.get(name)
                if not owners:
                    problems.append(f"{where} imports {name}, which no installed distribution here provides")
                elif not owners & provided:
                    owned = ", ".join(sorted(owners))
                    problems.append(f"{where} imports {name} ({owned}): not on the image nor carried")
    return problems


def _pip_resolve(wheel_dir: Path, placeholders: Path, roots: Iterable[str]) -> tuple[list[dict[str, object]], str]:
    """pip's dry-run resolution for the image's interpreter: (installed items, error text)."""
    with tempfile.TemporaryDirectory() as scratch:
        report = Path(scratch) / "report.json"
        command = [
            sys.executable,
            "-m",
            "pip",
            "install",
            "--dry-run",
            "--no-index",
            "--no-cache-dir",
            "--disable-pip-version-check",
            "--ignore-installed",
            "--find-links",
            str(wheel_dir),
            "--find-links",
            str(placeholders),
            "--only-binary=:all:",
            "--python-version",
            PYTHON_VERSION,
            "--implementation",
            "cp",
            "--abi",
            f"cp{PYTHON_VERSION.replace('.', '')}",
            *(arg for platform in PLATFORMS for arg in ("--platform", platform)),
            "--target",
            str(Path(scratch) / "target"),
            "--report",
            str(report),
            *roots,
        ]
        env = {**os.environ, "PIP_CONFIG_FILE": os.devnull, "PYTHONWARNINGS": "ignore"}
        done = subprocess.run(command, capture_output=True, text=True, timeout=300, env=env)
        if done.returncode != 0:
            output = (done.stdout + "\n" + done.stderr).splitlines()
            why = [line.strip() for line in output if "ERROR" in line or " depends on " in line]
            return [], " / ".join(why) or output[-1]
        return list(json.loads(report.read_text())["install"]), ""


def check(
    wheel_dir: Path,
    image: dict[str, Version | None],
    roots: Iterable[str] = ROOTS,
    scan: Path | None = REPO_ROOT,
    overrides: frozenset[str] = frozenset(),
    assumed: list[str] | None = None,
) -> list[str]:
    """Every problem with the wheel set, one line each; an empty list means it is right.

    ``scan``: the checkout whose module-level imports must be met too (None: skip that part).
    ``overrides``: image packages carried on purpose. ``assumed`` collects what was taken on
    trust: image packages of unknown version that the carried wheels need at some minimum.
    """
    problems: list[str] = []
    wheels = [read_wheel(p) for p in sorted(wheel_dir.glob("*.whl"))]
    if not wheels:
        return [f"no wheels in {wheel_dir}: run scripts/gpu-wheels.sh"]
    by_name: dict[str, list[Wheel]] = {}
    for wheel in wheels:
        by_name.setdefault(wheel.name, []).append(wheel)
    for name, versions in sorted(by_name.items()):
        if len(versions) > 1:
            listed = ", ".join(sorted(w.path.name for w in versions))
            problems.append(f"{name}: {len(versions)} wheels ({listed}); keep one version each")
        if name in image and name not in overrides:
            problems.append(f"{name}: the image already has it; carry a package only where it is missing")

    # Placeholders for image packages, at the version the image list gives or the lowest one
    # that the carried wheels' requirements accept.
    environment = _environment()
    wanted: dict[str, list[SpecifierSet]] = {}
    for wheel in wheels:
        for requirement in wheel.requires:
            extra_free = requirement.marker is None or requirement.marker.evaluate({**environment, "extra": ""})
            wanted_extras = {"cuda", "plot"} if wheel.name == "siliconbench" else set()
            with_extra = any(
                requirement.marker is not None and requirement.marker.evaluate({**environment, "extra": extra})
                for extra in wanted_extras
            )
            if extra_free or with_extra:
                wanted.setdefault(canonicalize_name(requirement.name), []).append(requirement.specifier)
    with tempfile.TemporaryDirectory() as scratch:
        placeholders = Path(scratch)
        for name, known in image.items():
            if name in overrides and name in by_name:
                continue  # the carried wheel stands in for the image's
            version = known if known is not None else placeholder_version(wanted.get(name, []))
            if version is None:
                specs = " and ".join(str(s) for s in wanted[name])
                problems.append(f"{name}: no single version meets the carried wheels' {specs}")
                continue
            if known is None and version != Version("0") and assumed is not None:
                assumed.append(f"{name}>={version}")
            _write_placeholder(placeholders, name, version)
        items, error = _pip_resolve(wheel_dir, placeholders, roots)
    if error:
        problems.append(f"pip cannot resolve {' '.join(roots)} from the wheels and the image: {error}")
        return problems

    carried = {w.path.name for w in wheels}
    used = set()
    for item in items:
        metadata = item["metadata"]
        assert isinstance(metadata, dict)
        download = item["download_info"]
        assert isinstance(download, dict)
        filename = str(download["url"]).rsplit("/", 1)[-1]
        if filename in carried:
            used.add(filename)
        elif canonicalize_name(str(metadata["name"])) not in image:
            problems.append(f"{metadata['name']}: resolved to {filename}, which is neither carried nor on the image")
    for name in sorted(carried - used):
        problems.append(f"{name}: carried but nothing needs it")

    if scan is not None:
        problems += unmet_imports(scan, set(image) | set(by_name))
    size = sum(w.path.stat().st_size for w in wheels)
    tree = (tree_bytes(scan) or 0) if scan is not None else 0
    if size + tree >= TRAVEL_LIMIT_BYTES:
        problems.append(
            f"wheels {size / 2**20:.1f} MiB + working tree {tree / 2**20:.1f} MiB: over the "
            f"{TRAVEL_LIMIT_BYTES / 2**20:.0f} MiB the device tool carries"
        )
    return problems


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="gpu_wheels_check", description=__doc__.split("\n\n")[0] if __doc__ else None)
    parser.add_argument("wheels", nargs="?", type=Path, default=REPO_ROOT / ".whl", help="folder of wheels (.whl)")
    parser.add_argument("--image", type=Path, default=IMAGE_LIST, help="the image's package list")
    parser.add_argument("--list", type=Path, default=WHEEL_LIST, help="the pinned wheels (for overrides)")
    args = parser.parse_args(argv)
    assumed: list[str] = []
    _, overrides = read_wheel_list(args.list)
    problems = check(args.wheels, read_image_list(args.image), overrides=overrides, assumed=assumed)
    for problem in problems:
        print(f"gpu_wheels_check: {problem}", file=sys.stderr)
    if problems:
        return 1
    wheels = sorted(args.wheels.glob("*.whl"))
    size = sum(p.stat().st_size for p in wheels)
    print(
        f"gpu_wheels_check: {len(wheels)} wheels, {size / 2**20:.2f} MiB, complete for Python {PYTHON_VERSION} "
        f"manylinux x86-64 with the image's {len(read_image_list(args.image))} packages: "
        + ", ".join(p.name for p in wheels)
    )
    if assumed:
        print(
            "gpu_wheels_check: taken on trust (the image list gives no version; `pip check` there decides): "
            + ", ".join(sorted(assumed))
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
