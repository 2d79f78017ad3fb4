"""The capability probe: native dtypes from the ISA this process dispatches to, on several machines.

Other machines are faked by their ``/proc/cpuinfo`` flags and the ISA name their oneDNN prints
(oneDNN ``cpu_isa_traits.hpp`` ``get_isa_info`` names); this machine's real oneDNN is asked in a
child process under ISA limits.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from harness.measure import capability
from harness.measure.capability import (
    cuda_capability,
    neuron_capability,
    parse_isa_header,
    probe_cpu,
    probe_neuron,
)
from harness.runfile.silicon import Capability

ZEN3_FLAGS = "fpu sse sse2 ssse3 sse4_1 sse4_2 avx f16c fma avx2 bmi1 bmi2"
COOPER_LAKE_FLAGS = ZEN3_FLAGS + " avx512f avx512dq avx512bw avx512vl avx512_vnni avx512_bf16"
SAPPHIRE_RAPIDS_FLAGS = COOPER_LAKE_FLAGS + " avx512_fp16 avx_vnni amx_bf16 amx_tile amx_int8"
#: Graviton3 (Neoverse V1) ``Features``, as its /proc/cpuinfo lists them.
GRAVITON3_FEATURES = (
    "fp asimd evtstrm aes pmull sha1 sha2 crc32 atomics fphp asimdhp cpuid asimdrdm jscvt fcma lrcpc "
    "dcpop sha3 sm3 sm4 asimddp sha512 sve asimdfhm dit uscat ilrcpc flagm ssbs paca pacg dcpodp svei8mm "
    "svebf16 i8mm bf16 dgh rng"
)
GRAVITON2_FEATURES = (
    "fp asimd evtstrm aes pmull sha1 sha2 crc32 atomics fphp asimdhp cpuid asimdrdm lrcpc dcpop asimddp ssbs"
)

AVX2 = "Intel AVX2"
AVX512_BF16 = "Intel AVX-512 with Intel DL Boost and bfloat16 support"
AMX = (
    "Intel AVX-512 with float16, Intel DL Boost and bfloat16 support and "
    "Intel AMX with bfloat16 and 8-bit integer support"
)


def _cpuinfo(flags: str, key: str = "flags") -> str:
    return f"processor\t: 0\nmodel name\t: test cpu\n{key}\t\t: {flags}\n\nprocessor\t: 1\n{key}\t\t: {flags}\n"


def _probe(flags: str, isa: str | None, aten: str, tmp_path: Path, key: str = "flags", **env: str) -> Capability:
    return probe_cpu(
        cpuinfo=_cpuinfo(flags, key),
        env=env,
        onednn=lambda _env: isa,
        aten=lambda: aten,
        cache=tmp_path / "capability.json",
    )


def _native(found: Capability) -> set[str]:
    return {s.dtype for s in found.dtypes if s.native}


def test_reads_both_forms_of_the_onednn_verbose_header() -> None:
    v3 = "onednn_verbose,v1,info,oneDNN v3.12.0 (commit 80af)\nonednn_verbose,v1,info,cpu,isa:Intel AVX2\n"
    assert parse_isa_header(v3) == AVX2
    old = "dnnl_verbose,info,DNNL v1.2.0 (commit x)\ndnnl_verbose,info,Detected ISA is Intel AVX2\n"
    assert parse_isa_header(old) == AVX2
    assert parse_isa_header("no header here") is None


def test_zen3_avx2_runs_only_fp32_natively(tmp_path: Path) -> None:
    found = _probe(ZEN3_FLAGS, AVX2, "AVX2", tmp_path)
    assert _native(found) == {"fp32"}
    bf16 = found.support("bf16")
    assert bf16 is not None and "no bf16 instructions" in bf16.why
    assert (found.onednn_isa, found.aten_capability, found.kind) == (AVX2, "AVX2", "cpu")
    assert "avx512_bf16" not in found.cpu_flags and "avx2" in found.cpu_flags


def test_avx512_bf16_machine_runs_bf16_and_int8(tmp_path: Path) -> None:
    found = _probe(COOPER_LAKE_FLAGS, AVX512_BF16, "AVX512", tmp_path)
    assert _native(found) == {"fp32", "bf16", "int8"}


def test_amx_machine_runs_bf16_fp16_and_int8(tmp_path: Path) -> None:
    found = _probe(SAPPHIRE_RAPIDS_FLAGS, AMX, "AVX512", tmp_path)
    assert _native(found) == {"fp32", "bf16", "fp16", "int8"}
    bf16 = found.support("bf16")
    assert bf16 is not None and "AMX" in bf16.why


def test_an_isa_limit_hides_what_cpuinfo_lists(tmp_path: Path) -> None:
    """An AMX machine with ONEDNN_MAX_CPU_ISA=AVX2: oneDNN runs AVX2 there, so bf16 is emulated."""
    found = _probe(SAPPHIRE_RAPIDS_FLAGS, AVX2, "AVX2", tmp_path, ONEDNN_MAX_CPU_ISA="AVX2", ATEN_CPU_CAPABILITY="avx2")
    assert _native(found) == {"fp32"}
    assert found.limits == {"ONEDNN_MAX_CPU_ISA": "AVX2", "ATEN_CPU_CAPABILITY": "avx2"}
    assert any("amx_bf16" in note and "ONEDNN_MAX_CPU_ISA=AVX2" in note for note in found.notes)


def test_without_onednn_the_flags_decide(tmp_path: Path) -> None:
    assert _native(_probe(COOPER_LAKE_FLAGS, None, "AVX512", tmp_path)) == {"fp32", "bf16", "int8"}
    assert _native(_probe(ZEN3_FLAGS, None, "AVX2", tmp_path)) == {"fp32"}


def test_arm_bf16_from_its_features(tmp_path: Path) -> None:
    g3 = _probe(GRAVITON3_FEATURES, "AArch64 SVE (256 bits)", "SVE256", tmp_path, key="Features")
    assert _native(g3) == {"fp32", "bf16", "fp16", "int8"}
    g2 = _probe(GRAVITON2_FEATURES, None, "DEFAULT", tmp_path, key="Features")
    assert _native(g2) == {"fp32", "fp16", "int8"}
    assert "aarch64" in g3.summary


def test_the_onednn_isa_is_cached_with_its_conditions(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    calls: list[dict[str, str]] = []

    def fake_probe(env: dict[str, str]) -> str:
        calls.append(dict(env))
        return AVX2 if env.get("ONEDNN_MAX_CPU_ISA") == "AVX2" else AMX

    monkeypatch.setattr(capability, "probe_onednn_isa", fake_probe)
    cache = tmp_path / "capability.json"
    for _ in range(2):
        found = probe_cpu(cpuinfo=_cpuinfo(SAPPHIRE_RAPIDS_FLAGS), env={}, aten=lambda: "AVX512", cache=cache)
        assert found.onednn_isa == AMX
    limited = probe_cpu(
        cpuinfo=_cpuinfo(SAPPHIRE_RAPIDS_FLAGS), env={"ONEDNN_MAX_CPU_ISA": "AVX2"}, aten=lambda: "AVX2", cache=cache
    )
    assert limited.onednn_isa == AVX2
    assert len(calls) == 2  # once per set of conditions
    assert len(json.loads(cache.read_text())) == 2


_CHILD = (
    "import json, sys, pathlib; from harness.measure.capability import probe_cpu; "
    "c = probe_cpu(cache=pathlib.Path(sys.argv[1])); "
    "print(json.dumps([c.onednn_isa, c.aten_capability, c.limits, [s.dtype for s in c.dtypes if s.native]]))"
)


def _in_child(tmp_path: Path, **limits: str) -> list[object]:
    env = {k: v for k, v in os.environ.items() if k not in capability.ISA_LIMIT_VARIABLES}
    env.update(limits)
    done = subprocess.run(
        [sys.executable, "-c", _CHILD, str(tmp_path / "c.json")],
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
        check=True,
    )
    found: list[object] = json.loads(done.stdout.strip().splitlines()[-1])
    return found


def _has_avx2() -> bool:
    _, flags = capability.read_cpu_flags()
    return "avx2" in flags


@pytest.mark.skipif(not _has_avx2(), reason="needs an x86 CPU with AVX2")
def test_a_child_under_avx2_limits_reports_avx2_and_no_native_bf16(tmp_path: Path) -> None:
    isa, aten, limits, native = _in_child(tmp_path, ONEDNN_MAX_CPU_ISA="AVX2", ATEN_CPU_CAPABILITY="avx2")
    assert isa == AVX2
    assert aten == "AVX2"
    assert limits == {"ONEDNN_MAX_CPU_ISA": "AVX2", "ATEN_CPU_CAPABILITY": "avx2"}
    assert native == ["fp32"]


@pytest.mark.slow
@pytest.mark.skipif(not _has_avx2(), reason="needs an x86 CPU with AVX2")
def test_a_child_under_lower_limits_reports_what_it_was_limited_to(tmp_path: Path) -> None:
    """Below this machine's own ISA, so the answer can only come from the limits being honoured."""
    isa, aten, _, _ = _in_child(tmp_path, ONEDNN_MAX_CPU_ISA="SSE41", ATEN_CPU_CAPABILITY="default")
    assert (isa, aten) == ("Intel SSE4.1", "DEFAULT")


@pytest.mark.parametrize(
    ("cc", "native"),
    [
        ("6.1", {"fp32", "int8"}),
        ("6.0", {"fp32", "fp16"}),
        ("7.0", {"fp32", "fp16", "int8"}),
        ("7.5", {"fp32", "fp16", "int8"}),
        ("8.0", {"fp32", "tf32", "fp16", "bf16", "int8"}),
        ("9.0", {"fp32", "tf32", "fp16", "bf16", "int8"}),
    ],
)
def test_a_gpu_by_its_compute_capability(cc: str, native: set[str]) -> None:
    found = cuda_capability("cuda", cc, "Test GPU")
    assert _native(found) == native
    assert found.compute_capability == cc


def test_neuron_core_version_through_the_neuron_ls_double(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    from backends.neuron import facts

    double = Path(__file__).resolve().parents[2] / "backends" / "neuron" / "double"
    monkeypatch.setenv("PATH", f"{double}{os.pathsep}{os.environ.get('PATH', '')}")
    monkeypatch.setattr(facts, "DMI_PRODUCT_NAME", tmp_path / "absent")
    monkeypatch.setenv("NEURON_DOUBLE_CORES", "64")
    monkeypatch.setenv("NEURON_DOUBLE_INSTANCE", "trn2.48xlarge")
    found = probe_neuron()
    assert found.neuroncore_version == 3
    assert _native(found) == {"fp32", "bf16", "fp16"}
    assert neuron_capability("inf2.xlarge").neuroncore_version == 2
