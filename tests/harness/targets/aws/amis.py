"""Root folders laid out the way each AMI the aws target boots is laid out, for playing an instance.

Each root has ``usr/bin`` with the commands the images have (bash, coreutils, tar, curl, util-linux's
``lscpu``, which vLLM's CPU build runs to bind its threads, and ``openssl``, which torch.compile runs to
hash what it compiles; no ``aws``),
a ``shutdown`` that records its arguments, and ``opt/`` as the image documents it:

- ``neuron-trace``: the last "Deep Learning AMI Neuron PyTorch 2.9 (Ubuntu 24.04)" (Neuron 2.31):
  ``/opt/aws_neuronx_venv_pytorch_2_9`` and ``/opt/aws_neuronx_venv_pytorch_2_9_nxd_inference``
  (deploy/environments/dlami.rst at aws-neuron-sdk 9d35260d, single-framework table), Python 3.12 on
  Ubuntu 24.04 (release-notes/components/dlamis.rst, 2.27.0: "Ubuntu 24.04 ... with Python 3.12").
- ``neuron-native``: the current multi-framework DLAMI (Neuron 2.32): ``/opt/aws_neuronx_venv_jax_0_10``
  and ``/opt/aws_neuronx_venv_pytorch_inference_vllm_0_24_0_1_1_0`` (deploy/environments/dlami.rst);
  no PyTorch 2.9 environments (release-notes/components/dlamis.rst, 2.32.0 callout).
- ``gpu``: the DLAMI GPU PyTorch image, ``/opt/pytorch`` (the DLAMI release notes' python_location).
- ``cpu``: Amazon Linux 2023: no PyTorch and no Python 3.11 until ``dnf install python3.11``
  (its system python3 is 3.9), and no C++ compiler until ``dnf install gcc-c++``; ``dnf`` here
  "installs" this machine's Python 3.11 and g++ (with the assembler and linker g++ runs).

The environments are real virtual environments of this machine's Python 3.11 (the images' own
3.12/3.10 are not here) that see, through a ``.pth`` file, only what the image ships: pip, torch and
its dependencies, numpy and the other compiled packages, and for Neuron the torch-neuronx test double
(tests/backends/neuron/double) as ``torch_neuronx``. siliconbench's pure-Python dependencies are
absent, so they can only come from the shipped bundle. In the native environment the TorchNeuron
double (tests/backends/neuron/double/torchneuron_double.py) registers the ``neuron`` torch.compile
backend when ``import torch`` autoloads it, through the entry-point group PyTorch autoloads
out-of-tree backends from (frameworks/torch/pytorch-native-overview.rst: "PyTorch introduced a
feature that allows custom backends to autoload their device").
"""

from __future__ import annotations

import base64
import hashlib
import shutil
import subprocess
import sys
from importlib import metadata
from pathlib import Path

from tests.harness.targets.aws.fleet import REPO_ROOT

__all__ = ["AMI_KINDS", "ENGINE_VENVS", "engine_index", "lay_out", "torch_index"]

AMI_KINDS = ("neuron-trace", "neuron-native", "gpu", "cpu")
#: The vLLM stand-in (tests/harness/targets/aws/vllm_standin/vllm), which cites the docs it plays.
VLLM_STANDIN = Path(__file__).parent / "vllm_standin" / "vllm"
#: The engine's environment each Neuron image has, under /opt, when laid out with ``engine=True``: a
#: release name the code never names (the probe must find it by what it imports). On the NxD
#: Inference image it sits beside the PyTorch 2.9 venvs, which have no vLLM.
ENGINE_VENVS = {
    "neuron-trace": "aws_neuronx_venv_pytorch_inference_vllm_0_16_0",
    "neuron-native": "aws_neuronx_venv_pytorch_inference_vllm_0_24_0_1_1_0",
}
#: What vLLM brings that siliconbench's engine client uses (vLLM's requirements/common.txt).
ENGINE_CLIENT = ("aiohttp", "prometheus_client")
DOUBLE = REPO_ROOT / "tests" / "backends" / "neuron" / "double"
BASE_PYTHON = Path(sys.base_prefix) / "bin" / f"python{sys.version_info.major}.{sys.version_info.minor}"
_TOOLS = (
    "bash sh env date tr cut mkdir grep sort tail head ls cat tar gzip curl timeout rm sed dirname basename "
    "sleep uname id cp mv chmod ln readlink touch wc find xargs lscpu openssl"
).split()
#: What ``dnf install gcc-c++`` puts on PATH (g++, its drivers, binutils' assembler and linker).
_COMPILER = ("g++", "c++", "gcc", "cc", "as", "ld")

_SHUTDOWN = """#!/bin/bash
echo "$*" >> "$(dirname "$0")/../../var/log/shutdown.log"
"""
_DNF = """#!/bin/bash
# Amazon Linux 2023's dnf, for the one package the bootstrap asks of it.
echo "$*" >> "$(dirname "$0")/../../var/log/dnf.log"
case " $* " in *" python3.11 "*) ln -sf @PYTHON@ "$(dirname "$0")/python3.11" ;; esac
# gcc-c++ brings g++ and, through binutils, the assembler and linker g++ runs from PATH.
case " $* " in *" gcc-c++ "*) for tool in @COMPILER@; do ln -sf "$tool" "$(dirname "$0")/"; done ;; esac
"""
_NATIVE_STANDIN = '''"""TorchNeuron's autoload, played by its double: ``import torch`` registers "neuron"."""


def autoload():
    import torchneuron_double  # noqa: F401  (registers the torch.compile backend "neuron" on import)
'''


def _top_levels(name: str) -> set[str]:
    """The entries a distribution put directly into site-packages (packages, modules, its .dist-info)."""
    return {file.parts[0] for file in metadata.distribution(name).files or () if not file.parts[0].startswith("..")}


def _closure(names: list[str], stop: frozenset[str] = frozenset()) -> list[str]:
    from packaging.requirements import Requirement

    seen: list[str] = []
    queue = list(names)
    while queue:
        name = queue.pop().lower().replace("_", "-")
        if name in seen or name in stop:
            continue
        try:
            dist = metadata.distribution(name)
        except metadata.PackageNotFoundError:
            continue
        seen.append(name)
        for line in dist.requires or []:
            requirement = Requirement(line)
            if requirement.marker is None or requirement.marker.evaluate({"extra": ""}):
                queue.append(requirement.name)
    return seen


def _site(folder: Path, distributions: list[str], extra: dict[str, Path] | None = None) -> Path:
    """A folder that makes exactly these installed distributions importable and visible to pip."""
    folder.mkdir(parents=True, exist_ok=True)
    for name in distributions:
        dist = metadata.distribution(name)
        base = Path(str(dist.locate_file("")))
        for top in _top_levels(name):
            target = folder / top
            if not target.exists() and (base / top).exists():
                target.symlink_to(base / top)
    for name, source in (extra or {}).items():
        (folder / name).symlink_to(source)
    return folder


def _venv(path: Path, site: Path) -> Path:
    """A virtual environment of this Python whose site-packages also reads ``site`` (the image's packages)."""
    subprocess.run([str(BASE_PYTHON), "-m", "venv", "--without-pip", str(path)], check=True, timeout=120)
    version = f"python{sys.version_info.major}.{sys.version_info.minor}"
    (path / "lib" / version / "site-packages" / "ami-packages.pth").write_text(f"{site}\n")
    return path / "bin" / "python"


def _root(root: Path) -> Path:
    bin_dir = root / "usr" / "bin"
    bin_dir.mkdir(parents=True)
    (root / "var" / "log").mkdir(parents=True)
    for tool in _TOOLS:
        found = shutil.which(tool, path="/usr/bin:/bin")
        if found:
            (bin_dir / tool).symlink_to(found)
    shutdown = bin_dir / "shutdown"
    shutdown.write_text(_SHUTDOWN)
    shutdown.chmod(0o755)
    return bin_dir


def _plugin(folder: Path, nxdi: bool) -> dict[str, Path]:
    """The vllm-neuron plugin's entry point (and NxD Inference's package, on NeuronCore-v2)."""
    info = folder / "vllm_neuron-0.0.dist-info"
    info.mkdir(parents=True)
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: vllm-neuron\nVersion: 0.0\n")
    (info / "entry_points.txt").write_text("[vllm.platform_plugins]\nneuron = vllm_neuron:register\n")
    (folder / "vllm_neuron.py").write_text('def register():\n    return "vllm_neuron.platform.NeuronPlatform"\n')
    extra = {"vllm": VLLM_STANDIN, info.name: info, "vllm_neuron.py": folder / "vllm_neuron.py"}
    if nxdi:
        (folder / "neuronx_distributed_inference").mkdir()
        (folder / "neuronx_distributed_inference" / "__init__.py").write_text('"""NxD Inference, played."""\n')
        extra["neuronx_distributed_inference"] = folder / "neuronx_distributed_inference"
    return extra


def lay_out(kind: str, root: Path, compiled: list[str], engine: bool = False) -> Path:
    """Build the root of an image of ``kind``; returns its ``usr/bin``. ``compiled``: the packages
    the image itself must have (the bundle manifest's ``compiled``). ``engine``: the Neuron images
    also have their vLLM venv (``ENGINE_VENVS``) with the vLLM stand-in."""
    bin_dir = _root(root)
    opt = root / "opt"
    opt.mkdir()
    image = ["pip", *_closure(["torch"]), *[c for c in compiled if c != "torch"]]
    shared = root / "usr" / "lib" / "image-site"
    if kind == "cpu":
        dnf = bin_dir / "dnf"
        compiler = " ".join(filter(None, (shutil.which(tool, path="/usr/bin:/bin") for tool in _COMPILER)))
        dnf.write_text(_DNF.replace("@PYTHON@", str(BASE_PYTHON)).replace("@COMPILER@", compiler))
        dnf.chmod(0o755)
        return bin_dir
    if kind == "gpu":
        _venv(opt / "pytorch", _site(shared, image))
        return bin_dir
    (bin_dir / "python3").symlink_to(BASE_PYTHON)  # Ubuntu 24.04's own python3
    double = {
        "torch_neuronx": DOUBLE / "torch_neuronx",
        "neuron_double_runtime.py": DOUBLE / "neuron_double_runtime.py",
    }
    client = _closure(list(ENGINE_CLIENT)) if engine else []
    if kind == "neuron-trace":
        site = _site(shared, image, double)
        _venv(opt / "aws_neuronx_venv_pytorch_2_9", site)
        _venv(opt / "aws_neuronx_venv_pytorch_2_9_nxd_inference", site)
        if engine:
            extra = _plugin(root / "usr" / "lib" / "vllm-neuron", nxdi=True)
            _venv(
                opt / ENGINE_VENVS[kind], _site(root / "usr" / "lib" / "vllm-site", image + client, {**double, **extra})
            )
        return bin_dir
    # neuron-native: a JAX environment without torch, and the vLLM one with TorchNeuron.
    _venv(opt / "aws_neuronx_venv_jax_0_10", _site(root / "usr" / "lib" / "jax-site", ["pip"]))
    native = root / "usr" / "lib" / "torchneuron-standin"
    (native / "torchneuron_standin-0.0.dist-info").mkdir(parents=True)
    (native / "torchneuron_standin.py").write_text(_NATIVE_STANDIN)
    info = native / "torchneuron_standin-0.0.dist-info"
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: torchneuron-standin\nVersion: 0.0\n")
    (info / "entry_points.txt").write_text("[torch.backends]\nneuron = torchneuron_standin:autoload\n")
    site = _site(
        shared,
        image + client,
        {
            **double,
            "torchneuron_double.py": DOUBLE / "torchneuron_double.py",
            "torchneuron_standin.py": native / "torchneuron_standin.py",
            info.name: info,
            **(_plugin(root / "usr" / "lib" / "vllm-neuron", nxdi=False) if engine else {}),
        },
    )
    _venv(opt / "aws_neuronx_venv_pytorch_inference_vllm_0_24_0_1_1_0", site)
    return bin_dir


def _record_hash(data: bytes) -> str:
    return "sha256=" + base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=").decode()


def torch_index(folder: Path, compiled: list[str]) -> Path:
    """A find-links folder standing in for the PyTorch CPU index (and PyPI) that Amazon Linux 2023's
    bootstrap uses: the compiled packages as their real wheels repacked from this machine, and torch
    as a small wheel whose ``.pth`` makes this machine's torch importable (a 700 MB wheel is not
    rebuilt for a test)."""
    import zipfile

    from harness.targets.aws.ship import repack

    folder.mkdir(parents=True, exist_ok=True)
    for name in compiled:
        if name != "torch":
            repack(metadata.distribution(name), folder)
    torch = metadata.distribution("torch")
    version = torch.version
    torch_site = _site(folder / "torch-site", [n for n in _closure(["torch"]) if n != "torch"])
    for top in _top_levels("torch"):
        if not top.endswith(".dist-info") and not (torch_site / top).exists():
            (torch_site / top).symlink_to(Path(str(torch.locate_file(""))) / top)
    info = f"torch-{version}.dist-info"
    files = {
        "torch-standin.pth": f"{torch_site}\n".encode(),
        f"{info}/METADATA": f"Metadata-Version: 2.1\nName: torch\nVersion: {version}\n".encode(),
        f"{info}/WHEEL": b"Wheel-Version: 1.0\nGenerator: siliconbench-tests\nRoot-Is-Purelib: true\n"
        b"Tag: py3-none-any\n",
    }
    record = "".join(f"{name},{_record_hash(data)},{len(data)}\n" for name, data in files.items())
    with zipfile.ZipFile(folder / f"torch-{version}-py3-none-any.whl", "w") as archive:
        for name, data in files.items():
            archive.writestr(name, data)
        archive.writestr(f"{info}/RECORD", record + f"{info}/RECORD,,\n")
    return folder


def engine_index(folder: Path, compiled: list[str]) -> Path:
    """A find-links folder standing in for PyPI where the GPU bootstrap installs vLLM into a new venv:
    ``torch_index``'s wheels, the engine client's packages repacked from this machine, and the vLLM
    stand-in as ``vllm-0.32.0``, requiring what vLLM requires of them (torch, aiohttp, ...)."""
    import zipfile

    from harness.targets.aws.ship import repack

    torch_index(folder, compiled)
    for name in _closure(list(ENGINE_CLIENT)):
        repack(metadata.distribution(name), folder)
    info = "vllm-0.32.0.dist-info"
    files = {
        f"{info}/METADATA": (
            b"Metadata-Version: 2.1\nName: vllm\nVersion: 0.32.0\nRequires-Dist: torch\n"
            b"Requires-Dist: aiohttp\nRequires-Dist: prometheus_client\n"
        ),
        f"{info}/WHEEL": (
            b"Wheel-Version: 1.0\nGenerator: siliconbench-tests\nRoot-Is-Purelib: true\nTag: py3-none-any\n"
        ),
    }
    for path in sorted(VLLM_STANDIN.rglob("*.py")):
        files[f"vllm/{path.relative_to(VLLM_STANDIN)}"] = path.read_bytes()
    record = "".join(f"{name},{_record_hash(data)},{len(data)}\n" for name, data in files.items())
    with zipfile.ZipFile(folder / "vllm-0.32.0-py3-none-any.whl", "w") as archive:
        for name, data in files.items():
            archive.writestr(name, data)
        archive.writestr(f"{info}/RECORD", record + f"{info}/RECORD,,\n")
    return folder
