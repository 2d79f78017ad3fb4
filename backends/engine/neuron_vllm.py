"""vLLM on Neuron: which of its two stacks an instance runs, where its Python is, and what it needs.

Two integrations serve vLLM on Neuron, and which one depends on the NeuronCore generation
(aws-neuron-sdk, checked 2026-12-03):

- ``nxd-inference`` (inf2, trn1, trn1n; NeuronCore-v2): vLLM with the NxD Inference plugin, in
  maintenance on Neuron 2.31 ("On Inf2 and Trn1 instances, NxD Inference and the NxD Core inference
  APIs stay in maintenance mode": announce-no-support-nxdi-nxd-core-inference-trn, 2.34). Its
  quickstart exports ``VLLM_NEURON_FRAMEWORK=neuronx-distributed-inference``
  (libraries/nxd-inference/vllm/quickstart-vllm-online-serving.rst). Chunked prefill is not
  supported, and with neither chunked prefill nor prefix caching NxDI lays the KV cache out
  contiguously, so ``--num-gpu-blocks-override`` must be exactly ``--max-num-seqs`` or the engine
  indexes out of bounds (libraries/nxd-inference/developer_guides/vllm-user-guide-v1.rst, Known
  Issues 1 and 2). Compiled artifacts go to ``NEURON_COMPILED_ARTIFACTS`` (the offline quickstart).
- ``vllm-neuron`` (trn2, trn2u, trn3, and later Trainium): the vLLM Neuron plugin on TorchNeuron,
  generally available in Neuron 2.34, where NxD Inference ends on Trn2/Trn3
  (announce-no-support-nxdi-nxd-core-inference-trn). It needs no ``VLLM_NEURON_FRAMEWORK``,
  enables prefix caching by default and sizes the KV cache itself: "Drop
  ``--num-gpu-blocks-override`` and ``--block-size``" (vllm-neuron/docs/getting-started/
  migration-nxdi-to-vllm-neuron.md).

Each stack keeps what it compiled in its own place (``COMPILE_CACHES``), which the launcher sets
explicitly so that the run file can say where it was and whether the start found it there:

- NxD Inference: the folder ``NEURON_COMPILED_ARTIFACTS`` names, loaded as it is when it holds a
  compiled model, else compiled into (vllm-neuron 0.2.x ``neuronx_distributed_model_loader.py``,
  ``_get_compiled_model_path``: without the variable it uses ``<model>/neuron-compiled-artifacts/
  <hash>`` and empties it first, so nothing is ever reused). It takes the named folder as it is,
  whichever configuration compiled it, so the launcher gives each configuration (its argv) a folder
  of its own beside the model: a sweep's second configuration does not load the first's.
- vllm-neuron on TorchNeuron (Trn2/Trn3, 2.33+): a two-tier compile cache that is on by default;
  the local tier is ``$VLLM_CACHE_ROOT/neuron/compile_cache/<32-hex key>/``, one entry per
  compiled graph keyed on the FX graph, input shapes, torch-neuronx/neuronx-cc/NKI versions,
  compiler flags and platform, with ``VLLM_CACHE_ROOT`` defaulting to ``~/.cache/vllm`` (and to
  ``/tmp/vllm_neuron_wdir_$USER`` when the home is on NFS or Lustre and the variable is unset);
  the compile runs during warm-up, before the server answers (aws-neuron-sdk
  vllm-neuron/docs/design/compilation/compilation_cache.md, date_updated 2026-06-22, and
  .../compilation/index.md: "every model goes through this pipeline before serving requests";
  the setup guide, 2026-07-23, says to set ``VLLM_CACHE_ROOT`` to local storage; all read
  2026-12-03 at aws-neuron-sdk 81ce03a). So a cache entry written during the start is a compile,
  and a start that writes none found every graph there. The features guide (2026-08-13) also
  names ``NEURON_COMPILED_ARTIFACTS`` for "pre-compiled models"; the cache design page and the
  plugin's cache resolver (``vllm_neuron.envs.get_neuron_compile_cache_dir``, which reads only
  ``VLLM_CACHE_ROOT``) do not, so the launcher does not rely on it there (a belief hardware settles).

Both ship in DLAMI virtual environments whose names change with every release
(``/opt/aws_neuronx_venv_pytorch_inference_vllm_0_16`` on 2.31, ``..._vllm_0_24_0_1_1_0`` on
2.32: deploy/environments/dlami.rst), so the environment is found by what it can do: a Python
that imports ``vllm`` and sees its Neuron platform, either registered as the ``neuron`` entry
point of group ``vllm.platform_plugins`` (how vLLM discovers out-of-tree platforms; the vllm-neuron
plugin's setup.py declares ``neuron = ...:register`` there) or built in as ``vllm.platforms.neuron``
(vLLM releases before the plugin).
"""

from __future__ import annotations

import os
import subprocess
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from harness.errors import ConfigError

__all__ = [
    "COMPILE_CACHES",
    "DMI_PRODUCT_NAME",
    "NEURON_STACKS",
    "NXDI_DEFAULT_MAX_NUM_SEQS",
    "NXDI_FRAMEWORK",
    "OPT_ENV",
    "VLLM_NEURON_PROBE",
    "CompileCache",
    "find_neuron_vllm_python",
    "instance_type_here",
    "neuron_engine_options",
    "neuron_stack",
]

#: The two vLLM-on-Neuron stacks (see the module docstring).
NEURON_STACKS = ("nxd-inference", "vllm-neuron")
#: NeuronCore-v2 families, which run vLLM through NxD Inference.
_NXDI_FAMILIES = frozenset({"inf2", "trn1", "trn1n"})
#: The value of ``VLLM_NEURON_FRAMEWORK`` that selects NxD Inference.
NXDI_FRAMEWORK = "neuronx-distributed-inference"
#: ``--max-num-seqs`` when a cell gives none on NxD Inference, where the KV cache is compiled for
#: exactly that many sequences: the value the NxDI online-serving quickstart uses.
NXDI_DEFAULT_MAX_NUM_SEQS = 4
#: Where the DLAMI's environments live; ``SILICONBENCH_OPT`` overrides it, as in the bootstrap.
OPT_ENV = "SILICONBENCH_OPT"
#: On EC2 Nitro instances the DMI product name is the instance type (e.g. ``inf2.xlarge``).
DMI_PRODUCT_NAME = Path("/sys/devices/virtual/dmi/id/product_name")
#: Exits 0 in a Python that imports vLLM and has its Neuron platform (see the module docstring).
VLLM_NEURON_PROBE = (
    "import sys, importlib.util\n"
    "from importlib.metadata import entry_points\n"
    "import vllm\n"
    "plugin = any(e.name == 'neuron' for e in entry_points(group='vllm.platform_plugins'))\n"
    "try:\n"
    " builtin = importlib.util.find_spec('vllm.platforms.neuron') is not None\n"
    "except ImportError:\n"
    " builtin = False\n"
    "sys.exit(0 if plugin or builtin else 1)"
)
#: Seconds one candidate may take to import vLLM (a cold import on a fresh EBS volume is slow).
PROBE_TIMEOUT_S = 600.0

Runner = Callable[[Sequence[str], float], int]


@dataclass(frozen=True)
class CompileCache:
    """Where one stack keeps its compiled artifacts (see the module docstring).

    ``variable`` names the folder; the cache proper is ``below`` it. Its value is the folder
    ``beside_model/<configuration key>`` inside the model's folder, else the caller's own
    ``variable``, else ``fallback`` (``~`` expanded on the engine's host).
    """

    variable: str
    below: str = ""
    beside_model: str | None = None
    fallback: str = ""

    def value(self, model: str, key: str, environ: Mapping[str, str], home: str | None = None) -> str:
        """What ``variable`` is set to for ``model`` in configuration ``key``; ``home`` stands for
        ``~`` (default: this user's home)."""
        if self.beside_model is not None:
            return str(Path(model) / self.beside_model / key)
        chosen = environ.get(self.variable) or self.fallback
        if home is not None and chosen.startswith("~"):
            return home + chosen[1:]
        return os.path.expanduser(chosen)

    def folder(self, value: str) -> str:
        """The cache folder itself, given ``variable``'s value."""
        return str(Path(value) / self.below) if self.below else value


#: Each stack's compile cache, as its sources document it (module docstring).
COMPILE_CACHES: dict[str, CompileCache] = {
    "nxd-inference": CompileCache("NEURON_COMPILED_ARTIFACTS", beside_model="neuron-compiled-artifacts"),
    "vllm-neuron": CompileCache("VLLM_CACHE_ROOT", below="neuron/compile_cache", fallback="~/.cache/vllm"),
}


def _run(argv: Sequence[str], timeout_s: float) -> int:
    try:
        return subprocess.run(
            list(argv), stdin=subprocess.DEVNULL, capture_output=True, timeout=timeout_s, check=False
        ).returncode
    except (OSError, subprocess.TimeoutExpired):
        return -1


def neuron_stack(instance_type: str) -> str:
    """``nxd-inference`` for inf2/trn1/trn1n, ``vllm-neuron`` for trn2, trn2u, trn3 and later."""
    family = instance_type.split(".", 1)[0]
    if family in _NXDI_FAMILIES:
        return "nxd-inference"
    if family.startswith("trn"):
        return "vllm-neuron"
    raise ConfigError(f"{instance_type!r} is not a Neuron instance type vLLM serves on (inf2, trn1, trn2, trn3)")


def instance_type_here(dmi: Path = DMI_PRODUCT_NAME) -> str | None:
    """This instance's type from its DMI product name, or None off EC2."""
    try:
        value = dmi.read_text().strip()
    except OSError:
        return None
    return value if "." in value else None


def find_neuron_vllm_python(opt: str | Path | None = None, runner: Runner = _run) -> str:
    """The first DLAMI environment (newest name first) whose Python passes ``VLLM_NEURON_PROBE``.

    Raises a one-line ``ConfigError`` naming every environment it tried.
    """
    folder = Path(opt if opt is not None else os.environ.get(OPT_ENV, "/opt"))
    candidates = sorted(folder.glob("aws_neuronx_venv_*/bin/python"), key=lambda p: p.parent.parent.name, reverse=True)
    looked: list[str] = []
    for python in candidates:
        if not os.access(python, os.X_OK):
            continue
        looked.append(python.parent.parent.name)
        if runner([str(python), "-c", VLLM_NEURON_PROBE], PROBE_TIMEOUT_S) == 0:
            return str(python)
    tried = ", ".join(looked) if looked else "none there"
    raise ConfigError(
        f"no environment in {folder}/aws_neuronx_venv_* imports vLLM with its Neuron platform "
        f"(tried: {tried}); boot a Neuron DLAMI with vLLM or set $SILICONBENCH_VLLM_PYTHON"
    )


def neuron_engine_options(stack: str, max_num_seqs: int | None) -> tuple[list[str], dict[str, str]]:
    """The arguments and environment ``stack`` needs beyond vLLM's common ones (module docstring)."""
    if stack == "vllm-neuron":
        args = [] if max_num_seqs is None else ["--max-num-seqs", str(max_num_seqs)]
        return args, {}
    if stack != "nxd-inference":
        raise ConfigError(f"unknown Neuron vLLM stack {stack!r}; available: {', '.join(NEURON_STACKS)}")
    seqs = NXDI_DEFAULT_MAX_NUM_SEQS if max_num_seqs is None else max_num_seqs
    args = [
        "--no-enable-chunked-prefill",
        "--no-enable-prefix-caching",
        "--max-num-seqs",
        str(seqs),
        "--num-gpu-blocks-override",
        str(seqs),
    ]
    return args, {"VLLM_NEURON_FRAMEWORK": NXDI_FRAMEWORK}
