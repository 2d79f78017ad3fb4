"""moto in server mode on 127.0.0.1, and a fleet that plays the instances moto cannot boot.

Every boto3 call in these tests goes to the moto server through the production ``ClientFactory``
(only its ``endpoint_url`` differs), or, from a subprocess, through botocore's own
``AWS_ENDPOINT_URL`` variable.
"""

from __future__ import annotations

import logging
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.harness.targets.aws.fleet import ACCOUNT_ID, REGION, FakeFleet, seed_public_parameter

__all__ = ["ACCOUNT_ID", "REGION"]


@pytest.fixture(scope="session")
def moto_endpoint() -> Iterator[str]:
    """One moto server for the session; each test resets its state."""
    from moto.server import ThreadedMotoServer

    logging.getLogger("werkzeug").setLevel(logging.ERROR)
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    yield f"http://{host}:{port}"
    server.stop()


@pytest.fixture(scope="session")
def wheel_cache(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One cache of repacked wheels for the session: each run ships a bundle, built once here."""
    return tmp_path_factory.mktemp("wheel-cache")


@pytest.fixture(scope="session")
def siliconbench_wheel(wheel_cache: Path) -> Path:
    """A real wheel of this checkout, as ``--wheel`` would be given one."""
    from harness.targets.aws import ship

    root = ship._source_root()
    assert root is not None, "the tests run from a source tree"
    return ship._build_from_source(root, wheel_cache)


@pytest.fixture
def aws_env(moto_endpoint: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, wheel_cache: Path) -> dict[str, str]:
    """Fake credentials, no user AWS config, a clean moto; returns the environment for subprocesses."""
    request = urllib.request.Request(f"{moto_endpoint}/moto-api/reset", method="POST")
    urllib.request.urlopen(request, timeout=10).close()
    env = {
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_SESSION_TOKEN": "testing",
        "AWS_DEFAULT_REGION": REGION,
        "AWS_CONFIG_FILE": str(tmp_path / "no-aws-config"),
        "AWS_SHARED_CREDENTIALS_FILE": str(tmp_path / "no-aws-credentials"),
        "AWS_ENDPOINT_URL": moto_endpoint,
    }
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    monkeypatch.delenv("AWS_PROFILE", raising=False)
    monkeypatch.setenv("SILICONBENCH_WHEEL_CACHE", str(wheel_cache))
    return env


@pytest.fixture
def factory(aws_env: dict[str, str], moto_endpoint: str):  # type: ignore[no-untyped-def]
    """The production client factory, pointed at moto, with no retries (faults must be immediate)."""
    from harness.targets.aws.session import ClientFactory

    return ClientFactory(REGION, endpoint_url=moto_endpoint, max_attempts=1)


@pytest.fixture
def public_amis(factory) -> dict[str, str]:  # type: ignore[no-untyped-def]
    """AWS's public AMI parameters for every kind, pointing at images moto knows.

    moto refuses writes under /aws/ (as AWS does) and preloads only the Amazon Linux ones, so the
    Neuron and DLAMI parameters are seeded into moto's parameter store directly.
    """
    from harness.targets.aws.ami import DEFAULT_PARAMETERS

    ssm = factory.client("ssm")
    by_arch = {
        arch: ssm.get_parameter(Name=DEFAULT_PARAMETERS[("cpu", arch)])["Parameter"]["Value"]
        for arch in ("x86_64", "arm64")
    }
    seeded = {}
    for (kind, arch), name in DEFAULT_PARAMETERS.items():
        if kind != "cpu":
            seed_public_parameter(name, by_arch[arch])
        seeded[f"{kind}/{arch}"] = ssm.get_parameter(Name=name)["Parameter"]["Value"]
    return seeded


@pytest.fixture
def instance_profile(factory) -> str:  # type: ignore[no-untyped-def]
    """An instance profile made by hand, as a user would with the documented instance policy."""
    iam = factory.client("iam")
    iam.create_role(RoleName="bench-role", Path="/siliconbench/", AssumeRolePolicyDocument="{}")
    iam.create_instance_profile(InstanceProfileName="bench-profile", Path="/siliconbench/")
    iam.add_role_to_instance_profile(InstanceProfileName="bench-profile", RoleName="bench-role")
    return "bench-profile"


@pytest.fixture
def fleet(factory, aws_env: dict[str, str], moto_endpoint: str, tmp_path: Path) -> Iterator[FakeFleet]:  # type: ignore[no-untyped-def]
    """Plays every instance moto launches; stopped (and its processes killed) after the test.

    It has its own EC2 client: what it asks is not what siliconbench asks.
    """
    import boto3

    ec2 = boto3.client("ec2", region_name=REGION, endpoint_url=moto_endpoint)
    played = FakeFleet(ec2, aws_env, tmp_path / "instances")
    played.start()
    yield played
    played.stop()
