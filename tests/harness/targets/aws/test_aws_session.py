"""Presigned URLs as the instance's ``curl`` will use them: SigV4, on the bucket's regional host.

botocore signs without any network, so these URLs are the very ones a real run would render into
user data. Why SigV2 on the global host breaks (a 307 from a new bucket; regions opened after 2014,
us-east-2 among them, accept SigV4 only) is in ``harness/targets/aws/session.py``'s docstring.
"""

from __future__ import annotations

import urllib.parse

import pytest

from harness.targets.aws.session import ClientFactory, s3_options

BUCKET = "siliconbench-20261203t120000-abcd"
KEY = "runs/r1/bundle.tar.gz"


@pytest.fixture
def offline(monkeypatch: pytest.MonkeyPatch, tmp_path) -> None:  # type: ignore[no-untyped-def]
    """Static credentials and no endpoint override: signing talks to nothing."""
    for name in ("AWS_ENDPOINT_URL", "AWS_ENDPOINT_URL_S3", "AWS_PROFILE", "AWS_SESSION_TOKEN"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "AKIDEXAMPLE")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY")
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "none"))
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "none"))


def _presign(client, method: str = "get_object") -> urllib.parse.SplitResult:  # type: ignore[no-untyped-def]
    url = client.generate_presigned_url(method, Params={"Bucket": BUCKET, "Key": KEY}, ExpiresIn=3600)
    return urllib.parse.urlsplit(url)


def _is_sigv4_regional(parts: urllib.parse.SplitResult, region: str) -> bool:
    query = urllib.parse.parse_qs(parts.query)
    credential = query.get("X-Amz-Credential", [""])[0]
    return (
        parts.scheme == "https"
        and parts.netloc == f"{BUCKET}.s3.{region}.amazonaws.com"
        and parts.path == f"/{KEY}"
        and query.get("X-Amz-Algorithm") == ["AWS4-HMAC-SHA256"]
        and credential.startswith("AKIDEXAMPLE/")
        and credential.endswith(f"/{region}/s3/aws4_request")
        and "Signature" not in query
        and "AWSAccessKeyId" not in query
    )


@pytest.mark.parametrize("region", ["us-east-2", "us-west-2", "us-east-1"])
@pytest.mark.parametrize("method", ["get_object", "put_object"])
def test_presigned_urls_are_sigv4_on_the_regional_host(offline: None, region: str, method: str) -> None:
    s3 = ClientFactory(region).client("s3")
    assert _is_sigv4_regional(_presign(s3, method), region)


@pytest.mark.parametrize("region", ["us-east-2", "us-west-2"])
def test_the_old_belief_fails_the_same_check(offline: None, region: str) -> None:
    """botocore's defaults (what the factory did before): SigV2 or SigV4, but on the global host."""
    import boto3
    from botocore.config import Config

    old = boto3.session.Session(region_name=region).client("s3", config=Config(region_name=region))
    parts = _presign(old)
    assert parts.netloc == f"{BUCKET}.s3.amazonaws.com"
    assert not _is_sigv4_regional(parts, region)
    if region == "us-west-2":  # botocore 1.44 still signs presigned URLs there with SigV2
        assert "AWSAccessKeyId" in urllib.parse.parse_qs(parts.query)


def test_a_custom_endpoint_keeps_its_host(offline: None, monkeypatch: pytest.MonkeyPatch) -> None:
    """moto or MinIO at an IP: SigV4 still, but the bucket goes in the path (no DNS name to host it)."""
    assert s3_options(custom_endpoint=True) == {"signature_version": "s3v4"}
    s3 = ClientFactory("us-west-2", endpoint_url="http://127.0.0.1:5999").client("s3")
    parts = _presign(s3)
    assert parts.netloc == "127.0.0.1:5999" and parts.path == f"/{BUCKET}/{KEY}"
    assert urllib.parse.parse_qs(parts.query)["X-Amz-Algorithm"] == ["AWS4-HMAC-SHA256"]
    monkeypatch.setenv("AWS_ENDPOINT_URL", "http://127.0.0.1:5998")
    parts = _presign(ClientFactory("us-west-2").client("s3"))
    assert parts.netloc == "127.0.0.1:5998" and parts.path == f"/{BUCKET}/{KEY}"
