"""Which dtypes the silicon runs natively: probed, never assumed.

A CPU without AVX-512 BF16 or AMX (Zen 3, older Xeons, many laptops) runs bf16 by converting to
fp32 in software, 10-40x slower than fp32 itself; a benchmark that measures it by default
measures the emulation. So the default suite plans only the dtypes the silicon runs natively
(``harness.run.dtypes``), and a dtype asked for explicitly still runs, marked ``emulated``.

What counts is what *this process* will dispatch to, not what ``/proc/cpuinfo`` lists:

- **oneDNN** (convolutions, linear layers, bf16/fp16 matmul) picks its kernels by the ISA it
  detects, capped by ``ONEDNN_MAX_CPU_ISA`` (older name ``DNNL_MAX_CPU_ISA``). It prints the ISA
  it settled on in its verbose header (``onednn_verbose,...,cpu,isa:Intel AVX2``; oneDNN
  ``src/common/verbose.cpp`` and ``cpu_isa_traits.hpp``, whose names this module reads by keyword:
  "bfloat16", "float16", "DL Boost"/"8-bit integer", "AMX"). The header is printed once per
  process, at the first primitive, so it is read from a child process started with this
  process's environment and ``ONEDNN_VERBOSE=1``.
- **ATen**'s vectorized kernels (element-wise ops, reductions) dispatch by
  ``torch.backends.cpu.get_cpu_capability()``, capped by ``ATEN_CPU_CAPABILITY``.

On x86 a dtype is native when oneDNN's ISA has instructions for it: bf16 from AVX512_CORE_BF16
(``avx512_bf16``) or AMX-BF16, fp16 from AVX512_CORE_FP16 or AMX-FP16, int8 from VNNI (AVX-512
VNNI or AVX-VNNI) or AMX-INT8. On Arm (oneDNN through the Arm Compute Library) bf16 needs
FEAT_BF16 (``bf16`` in the cpuinfo Features), fp16 FEAT_FP16 (``fphp``/``asimdhp``), int8 the dot
product (``asimddp``) or ``i8mm``. On CUDA the compute capability decides (CUDA C++ Programming
Guide, "Arithmetic Instructions" throughput table; bf16 and TF32 tensor cores from 8.0). On
Neuron every NeuronCore version runs fp32, bf16 and fp16 on its tensor engine (AWS Neuron docs,
"NeuronCore-v2 architecture": FP32, TF32, BF16, FP16, UINT8, FP8).

The CPU probe costs a child process (about a second with torch cached), so its answer is cached
per machine, torch version and ISA limits under the peak cache's folder.
"""

from __future__ import annotations

import json
import os
import platform
import re
import subprocess
import sys
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from harness.runfile.silicon import Capability, DtypeSupport

__all__ = [
    "ISA_LIMIT_VARIABLES",
    "cpu_capability",
    "cuda_capability",
    "neuron_capability",
    "probe_cpu",
    "probe_neuron",
    "probe_onednn_isa",
    "read_cpu_flags",
]

#: Environment variables that cap the ISA oneDNN or ATen dispatch to in this process.
ISA_LIMIT_VARIABLES = ("ONEDNN_MAX_CPU_ISA", "DNNL_MAX_CPU_ISA", "ATEN_CPU_CAPABILITY")
_ISA_LINE = re.compile(r"^(?:onednn|dnnl)_verbose,.*?\bisa:(.+?)\s*$", re.MULTILINE)
_OLD_ISA_LINE = re.compile(r"^dnnl_verbose,info,Detected ISA is (.+?)\s*$", re.MULTILINE)
#: A reorder into oneDNN's layout: the cheapest call that creates a oneDNN primitive, which is
#: when oneDNN prints its header.
_PROBE = "import torch; torch.randn(4, 4).to_mkldnn()"
_PROBE_TIMEOUT_S = 120.0


def read_cpu_flags(text: str | None = None) -> tuple[str, set[str]]:
    """(architecture, flags) from ``/proc/cpuinfo`` text: x86 ``flags`` or Arm ``Features``."""
    if text is None:
        try:
            text = Path("/proc/cpuinfo").read_text()
        except OSError:
            text = ""
    flags: set[str] = set()
    for line in text.splitlines():
        key, _, value = line.partition(":")
        if key.strip() in ("flags", "Features") and value.strip():
            flags = set(value.split())
            break
    return platform.machine(), flags


def probe_onednn_isa(
    env: Mapping[str, str] | None = None,
    run: Callable[..., subprocess.CompletedProcess[str]] = subprocess.run,
) -> str | None:
    """The ISA oneDNN settles on under ``env`` (this process's by default), from its verbose header.

    None when oneDNN prints none (a torch built without it, or a child that failed).
    """
    child_env = dict(os.environ if env is None else env)
    child_env["ONEDNN_VERBOSE"] = "1"
    child_env.pop("DNNL_VERBOSE", None)
    try:
        done = run(
            [sys.executable, "-c", _PROBE],
            env=child_env,
            capture_output=True,
            text=True,
            timeout=_PROBE_TIMEOUT_S,
            check=False,
        )
    except (OSError, subprocess.SubprocessError):
        return None
    return parse_isa_header(done.stdout + done.stderr)


def parse_isa_header(text: str) -> str | None:
    """The ISA name of a oneDNN verbose header (both the v3 and the older v1 forms)."""
    found = _ISA_LINE.search(text) or _OLD_ISA_LINE.search(text)
    return found.group(1) if found else None


def _x86_support(isa: str | None, flags: set[str]) -> list[DtypeSupport]:
    """Native dtypes of an x86 CPU from oneDNN's ISA name, else (no oneDNN) from its flags."""
    if isa is not None:
        name = isa
        amx = "AMX" in name
        bf16 = "bfloat16" in name
        fp16 = re.search(r"(?<!b)float16", name) is not None
        int8 = "DL Boost" in name or "8-bit integer" in name
        where = f"oneDNN ISA {name!r}"
    else:
        amx = "amx_tile" in flags
        bf16 = "avx512_bf16" in flags or "amx_bf16" in flags
        fp16 = "avx512_fp16" in flags or "amx_fp16" in flags
        int8 = bool({"avx512_vnni", "avx_vnni", "amx_int8"} & flags)
        where = "CPU flags (no oneDNN ISA found)"
    return [
        DtypeSupport("fp32", True, f"{where}: FMA units run fp32"),
        DtypeSupport(
            "bf16",
            bf16,
            f"{where}: {'AMX-BF16 tiles' if amx and bf16 else 'AVX-512 BF16 dot products'}"
            if bf16
            else f"{where} has no bf16 instructions (AVX512_CORE_BF16 or AMX): bf16 is converted to fp32 in software",
        ),
        DtypeSupport(
            "fp16",
            fp16,
            f"{where}: AVX512-FP16 arithmetic"
            if fp16
            else f"{where} has no fp16 arithmetic (AVX512_CORE_FP16 or AMX-FP16): fp16 is converted to fp32",
        ),
        DtypeSupport(
            "int8",
            int8,
            f"{where}: VNNI int8 dot products"
            if int8
            else f"{where} has no VNNI: int8 dot products take several instructions each",
        ),
    ]


def _arm_support(flags: set[str]) -> list[DtypeSupport]:
    bf16 = "bf16" in flags
    fp16 = bool({"fphp", "asimdhp"} & flags)
    int8 = bool({"asimddp", "i8mm"} & flags)
    sve = "sve" in flags
    vector = "SVE" if sve else "Advanced SIMD"
    return [
        DtypeSupport("fp32", True, f"Arm {vector} fp32 FMA"),
        DtypeSupport(
            "bf16",
            bf16,
            f"Arm FEAT_BF16 (BFDOT/BFMMLA) with {vector}"
            if bf16
            else "no Arm FEAT_BF16 ('bf16' not in the CPU features): bf16 is converted to fp32",
        ),
        DtypeSupport(
            "fp16",
            fp16,
            "Arm FEAT_FP16 half-precision arithmetic" if fp16 else "no Arm FEAT_FP16 ('fphp'/'asimdhp')",
        ),
        DtypeSupport(
            "int8",
            int8,
            "Arm dot product (SDOT) or I8MM" if int8 else "no Arm dot product ('asimddp') or 'i8mm'",
        ),
    ]


def cpu_capability(
    arch: str,
    flags: set[str],
    onednn_isa: str | None,
    aten_capability: str | None,
    limits: Mapping[str, str],
) -> Capability:
    """The CPU's capability from what was probed (pure: tests feed it other machines' facts)."""
    arm = arch.lower() in ("aarch64", "arm64")
    dtypes = _arm_support(flags) if arm else _x86_support(onednn_isa, flags)
    sources = ["/proc/cpuinfo flags"]
    if onednn_isa is not None:
        sources.append("oneDNN verbose header (ONEDNN_VERBOSE=1, child process)")
    if aten_capability is not None:
        sources.append("torch.backends.cpu.get_cpu_capability()")
    native = [s.dtype for s in dtypes if s.native]
    notes = []
    if onednn_isa is not None and not arm:
        # A cap set below the hardware hides instructions cpuinfo lists: say so, it explains the verdict.
        hidden = sorted({"avx512_bf16", "amx_bf16"} & flags) if not dtypes[1].native else []
        if hidden:
            notes.append(
                f"the CPU has {', '.join(hidden)} but oneDNN runs {onednn_isa!r} in this process "
                f"({', '.join(f'{k}={v}' for k, v in limits.items()) or 'no ISA limit set'})"
            )
    summary = (
        f"{arch} {onednn_isa or 'oneDNN ISA unknown'}; ATen {aten_capability or 'unknown'}; native {', '.join(native)}"
    )
    relevant = sorted(f for f in flags if f in _REPORTED_FLAGS)
    return Capability(
        backend="cpu",
        kind="cpu",
        summary=summary,
        dtypes=tuple(dtypes),
        onednn_isa=onednn_isa,
        aten_capability=aten_capability,
        limits=dict(limits),
        cpu_flags=tuple(relevant),
        sources=tuple(sources),
        notes=tuple(notes),
    )


_REPORTED_FLAGS = frozenset(
    (
        "avx",
        "avx2",
        "fma",
        "f16c",
        "avx512f",
        "avx512bw",
        "avx512_vnni",
        "avx_vnni",
        "avx512_bf16",
        "avx512_fp16",
        "amx_tile",
        "amx_bf16",
        "amx_int8",
        "amx_fp16",
        "asimd",
        "asimdhp",
        "asimddp",
        "fphp",
        "sve",
        "sve2",
        "bf16",
        "i8mm",
    )
)


def _cache_file() -> Path:
    from harness.measure.peak import cache_path

    return cache_path().parent / "capability.json"


def _conditions(arch: str, flags: set[str], limits: Mapping[str, str]) -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        torch_version = version("torch")
    except PackageNotFoundError:
        torch_version = "none"
    limit_text = ",".join(f"{k}={v}" for k, v in sorted(limits.items())) or "no limits"
    return f"{arch} {'+'.join(sorted(flags & _REPORTED_FLAGS))} | torch {torch_version} | {limit_text}"


def probe_cpu(
    *,
    cpuinfo: str | None = None,
    env: Mapping[str, str] | None = None,
    onednn: Callable[[Mapping[str, str]], str | None] | None = None,
    aten: Callable[[], str | None] | None = None,
    cache: Path | None = None,
) -> Capability:
    """The CPU capability of this process: cpuinfo, oneDNN's ISA (cached) and ATen's dispatch level."""
    environ = dict(os.environ if env is None else env)
    limits = {k: environ[k] for k in ISA_LIMIT_VARIABLES if environ.get(k)}
    arch, flags = read_cpu_flags(cpuinfo)
    if cpuinfo is not None:  # another machine's cpuinfo: its architecture is in its flags
        arch = "aarch64" if "asimd" in flags else "x86_64"
    key = _conditions(arch, flags, limits)
    path = cache if cache is not None else _cache_file()
    stored = _read(path)
    isa = stored.get(key) if onednn is None else None
    if not isinstance(isa, str):
        isa = (onednn or probe_onednn_isa)(environ)
        if isa is not None and onednn is None:
            stored[key] = isa
            _write(path, stored)
    return cpu_capability(arch, flags, isa, (aten or _aten_capability)(), limits)


def _aten_capability() -> str | None:
    try:
        import torch

        return str(torch.backends.cpu.get_cpu_capability())
    except (ImportError, AttributeError, RuntimeError):
        return None


def _read(path: Path) -> dict[str, Any]:
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


def _write(path: Path, data: dict[str, Any]) -> None:
    from harness.measure.peak import _write_cache

    _write_cache(path, data)


def cuda_capability(backend: str, compute_capability: str | None, name: str | None) -> Capability:
    """A GPU's native dtypes from its compute capability ("8.6"), as NVML reports it."""
    sources = ("NVML nvmlDeviceGetCudaComputeCapability",)
    if compute_capability is None:
        unknown = "compute capability unknown (no NVML): assumed native"
        return Capability(
            backend=backend,
            kind="cuda",
            summary=f"{name or 'GPU'}: compute capability unknown",
            dtypes=tuple(DtypeSupport(d, True, unknown) for d in ("fp32", "tf32", "fp16", "bf16", "int8")),
            sources=sources,
        )
    major, _, minor = compute_capability.partition(".")
    cc = (int(major), int(minor or 0))
    label = f"sm_{cc[0]}{cc[1]}"
    # CUDA C++ Programming Guide, arithmetic instruction throughput: fp16 runs at full or double
    # rate on 5.3, 6.0, 6.2 and 7.0+, at 1/64 on 6.1; TF32 and bf16 tensor cores from 8.0 (Ampere);
    # int8 dot products (dp4a) from 6.1, int8 tensor cores from 7.2.
    fp16 = cc in ((5, 3), (6, 0), (6, 2)) or cc >= (7, 0)
    dtypes = (
        DtypeSupport("fp32", True, f"{label}: fp32 CUDA cores"),
        DtypeSupport(
            "tf32", cc >= (8, 0), f"{label}: TF32 tensor cores" if cc >= (8, 0) else f"{label} < sm_80: no TF32"
        ),
        DtypeSupport(
            "fp16",
            fp16,
            f"{label}: {'fp16 tensor cores' if cc >= (7, 0) else 'fp16 arithmetic'}"
            if fp16
            else f"{label}: fp16 runs at 1/64 of the fp32 rate",
        ),
        DtypeSupport(
            "bf16",
            cc >= (8, 0),
            f"{label}: bf16 tensor cores" if cc >= (8, 0) else f"{label} < sm_80: bf16 is emulated through fp32",
        ),
        DtypeSupport(
            "int8", cc >= (6, 1), f"{label}: {'int8 dot products' if cc >= (6, 1) else 'no dp4a before sm_61'}"
        ),
    )
    native = [s.dtype for s in dtypes if s.native]
    return Capability(
        backend=backend,
        kind="cuda",
        summary=f"{name or 'GPU'} {label}; native {', '.join(native)}",
        dtypes=dtypes,
        compute_capability=compute_capability,
        sources=sources,
    )


def probe_neuron(runner: Any = None) -> Capability:
    """The Neuron capability of this machine, from ``neuron-ls`` (``backends.neuron.facts``)."""
    from backends.neuron.facts import device_facts

    facts = device_facts() if runner is None else device_facts(runner)
    instance_type = facts.get("instance_type")
    return neuron_capability(instance_type if isinstance(instance_type, str) else None)


def neuron_capability(instance_type: str | None) -> Capability:
    """A Neuron device's capability from its NeuronCore version (``backends.neuron.options``)."""
    from backends.neuron.options import neuroncore_version

    version = neuroncore_version(instance_type)
    core = f"NeuronCore-v{version}" if version is not None else "NeuronCore (version unknown)"
    why = f"{core} tensor engine: FP32, TF32, BF16, FP16, UINT8, FP8 (Neuron architecture docs)"
    return Capability(
        backend="neuron",
        kind="neuron",
        summary=f"{instance_type or 'Neuron instance'}: {core}",
        dtypes=tuple(DtypeSupport(d, True, why) for d in ("fp32", "bf16", "fp16")),
        neuroncore_version=version,
        sources=("neuron-ls instance type",),
    )
