"""Facts about the machine and software a run was measured on.

Recorded once per run so a comparison can refuse or warn when it compares unlike with unlike.
"""

from __future__ import annotations

import getpass
import os
import platform
import socket
import subprocess
import sys
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path

from harness.runfile.records import CpuFacts, Environment, TorchFacts, utc_now

__all__ = ["collect_environment", "cpu_facts", "git_commit", "package_versions"]

#: Packages whose versions change results; absent ones are recorded as None.
TRACKED_PACKAGES = ("siliconbench", "torch", "numpy", "transformers", "torch-neuronx", "neuronx-cc")

#: CPU flags that decide which kernels PyTorch can use; the full list is long and uninformative.
INTERESTING_FLAGS = (
    "avx",
    "avx2",
    "fma",
    "avx512f",
    "avx512bw",
    "avx512_vnni",
    "avx512_bf16",
    "avx512_fp16",
    "amx_tile",
    "amx_bf16",
    "amx_int8",
    "asimd",
    "sve",
    "sve2",
    "bf16",
    "i8mm",
)


def package_versions() -> dict[str, str | None]:
    found: dict[str, str | None] = {}
    for name in TRACKED_PACKAGES:
        try:
            found[name] = version(name)
        except PackageNotFoundError:
            found[name] = None
    return found


def cpu_facts() -> CpuFacts:
    """CPU model, logical and usable cores, and the SIMD/matrix flags that matter to kernels."""
    model = platform.processor() or platform.machine()
    flags: set[str] = set()
    physical: set[tuple[str, str]] = set()
    try:
        text = Path("/proc/cpuinfo").read_text()
    except OSError:
        text = ""
    phys_id = core_id = ""
    for line in text.splitlines():
        key, _, value = line.partition(":")
        key, value = key.strip(), value.strip()
        if key in ("model name", "Model") and value:
            model = value
        elif key in ("flags", "Features") and not flags:
            flags = set(value.split())
        elif key == "physical id":
            phys_id = value
        elif key == "core id":
            core_id = value
            physical.add((phys_id, core_id))
    try:
        usable = len(os.sched_getaffinity(0))
    except AttributeError:
        usable = os.cpu_count() or 1
    return CpuFacts(
        model=model,
        arch=platform.machine(),
        logical_cores=os.cpu_count(),
        physical_cores=len(physical) or None,
        usable_cores=usable,
        flags=tuple(sorted(f for f in INTERESTING_FLAGS if f in flags)),
    )


def git_commit(path: Path) -> str | None:
    """The commit of the git checkout containing ``path`` (with '+dirty' if modified), if any."""
    try:
        commit = subprocess.run(
            ["git", "-C", str(path), "rev-parse", "HEAD"],
            capture_output=True,
            text=True,
            timeout=5,
            check=True,
        ).stdout.strip()
        dirty = subprocess.run(
            ["git", "-C", str(path), "status", "--porcelain", "--untracked-files=no"],
            capture_output=True,
            text=True,
            timeout=5,
            check=True,
        ).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return None
    return f"{commit}+dirty" if dirty else commit or None


def collect_environment(argv: list[str] | None = None) -> Environment:
    """Everything about this process's environment that a comparison needs."""
    torch_facts = None
    try:
        import torch

        torch_facts = TorchFacts(
            num_threads=torch.get_num_threads(),
            num_interop_threads=torch.get_num_interop_threads(),
            cuda_build=torch.version.cuda,
        )
    except ImportError:
        pass
    from backends.nvml import gpu_inventory

    return Environment(
        host=socket.gethostname(),
        user=getpass.getuser() if hasattr(os, "getuid") else None,
        os=platform.platform(),
        python=sys.version.split()[0],
        cpu=cpu_facts(),
        # From NVML, which needs no CUDA context: the harness process stays off the GPU.
        gpus=gpu_inventory(),
        packages=package_versions(),
        torch=torch_facts,
        env_threads={k: os.environ[k] for k in ("OMP_NUM_THREADS", "MKL_NUM_THREADS") if k in os.environ},
        git_commit=git_commit(Path(__file__).resolve().parent),
        command=tuple(sys.argv if argv is None else argv),
        time_utc=utc_now(),
    )
