"""The S3 layout shared by the launcher and the instance: the only channel between them.

Each instance of a run owns the folder ``siliconbench/<run-id>/<instance-type>/`` in the bucket:

- ``job.json``       written by the launcher before launch: the suite, the run id, the target facts
- ``heartbeat.json`` rewritten by the instance: state, cells done/total, a sequence number
- ``run.json``       the run file, uploaded after every cell and at the end
- ``error.json``     written by the instance when bootstrap or the agent fails: phase and message
- ``bootstrap.log``  the bootstrap script's output, uploaded by the agent before it reports the end,
                     and by the script when it fails

and the run's folder ``siliconbench/<run-id>/`` holds ``bundle.tar.gz``, the code every instance installs.

S3 puts are atomic, so a reader sees an old object or the new one, never a torn one.
"""

from __future__ import annotations

import json
from datetime import datetime
from pathlib import Path
from typing import Any

from harness.errors import CloudError
from harness.targets.aws.session import aws_call, error_code

__all__ = [
    "BOOTSTRAP_LOG",
    "ERROR",
    "EXIT_REPORTED",
    "HEARTBEAT",
    "JOB",
    "JOB_SCHEMA",
    "RUN_FILE",
    "RunStore",
    "create_bucket",
    "delete_bucket",
    "instance_prefix",
    "run_bucket_name",
    "run_prefix",
]

JOB, HEARTBEAT, RUN_FILE, ERROR, BOOTSTRAP_LOG = "job.json", "heartbeat.json", "run.json", "error.json", "bootstrap.log"
JOB_SCHEMA = "siliconbench/aws-job"
#: The agent exits with this code after it has written error.json itself, so the bootstrap script
#: must not overwrite that richer report with its generic one.
EXIT_REPORTED = 3
ROOT = "siliconbench"


def run_prefix(run_id: str) -> str:
    return f"{ROOT}/{run_id}"


def instance_prefix(run_id: str, instance_type: str) -> str:
    return f"{run_prefix(run_id)}/{instance_type}"


def run_bucket_name(run_id: str) -> str:
    """A per-run bucket name: lowercase, 3-63 characters, globally unique thanks to the run id."""
    return f"siliconbench-{run_id.lower()}"[:63].rstrip("-")


class RunStore:
    """One instance's folder in S3, read and written as small JSON objects."""

    def __init__(self, s3: Any, bucket: str, prefix: str) -> None:
        self.s3 = s3
        self.bucket = bucket
        self.prefix = prefix.strip("/")

    def key(self, name: str) -> str:
        return f"{self.prefix}/{name}"

    def uri(self, name: str = "") -> str:
        return f"s3://{self.bucket}/{self.key(name) if name else self.prefix + '/'}"

    def presign(self, name: str, method: str, expires_s: int) -> str:
        """A URL that reads (``get``) or writes (``put``) the object without AWS credentials or tools."""
        operation = {"get": "get_object", "put": "put_object"}[method]
        url: str = aws_call(
            f"presigning {method.upper()} {self.uri(name)}",
            self.s3.generate_presigned_url,
            ClientMethod=operation,
            Params={"Bucket": self.bucket, "Key": self.key(name)},
            ExpiresIn=min(int(expires_s), 7 * 24 * 3600),  # SigV4 allows at most seven days
        )
        return url

    def put_bytes(self, name: str, body: bytes, content_type: str = "application/octet-stream") -> None:
        aws_call(
            f"writing {self.uri(name)}",
            self.s3.put_object,
            Bucket=self.bucket,
            Key=self.key(name),
            Body=body,
            ContentType=content_type,
        )

    def put_json(self, name: str, data: dict[str, Any]) -> None:
        self.put_bytes(name, json.dumps(data, indent=1, default=_json_default).encode(), "application/json")

    def put_file(self, name: str, path: Path) -> None:
        self.put_bytes(
            name, path.read_bytes(), "application/json" if path.suffix == ".json" else "application/octet-stream"
        )

    def delete(self, name: str) -> None:
        aws_call(f"deleting {self.uri(name)}", self.s3.delete_object, Bucket=self.bucket, Key=self.key(name))

    def get_bytes(self, name: str) -> bytes | None:
        """The object's bytes, or None when it does not exist (yet)."""
        try:
            response = aws_call(f"reading {self.uri(name)}", self.s3.get_object, Bucket=self.bucket, Key=self.key(name))
        except CloudError as exc:
            if error_code(exc.__cause__) in ("NoSuchKey", "404", "NotFound"):
                return None
            raise
        body: bytes = response["Body"].read()
        return body

    def get_json(self, name: str) -> dict[str, Any] | None:
        """The object as JSON, or None when absent; unreadable JSON is a CloudError."""
        body = self.get_bytes(name)
        if body is None:
            return None
        try:
            data = json.loads(body)
        except json.JSONDecodeError as exc:
            raise CloudError(f"{self.uri(name)} is not valid JSON: {exc.msg}") from None
        if not isinstance(data, dict):
            raise CloudError(f"{self.uri(name)} holds {type(data).__name__}, not a JSON object")
        return data


def _json_default(value: Any) -> Any:
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, Path):
        return str(value)
    raise TypeError(f"cannot store {type(value).__name__} as JSON")


def create_bucket(s3: Any, name: str, region: str, tags: dict[str, str]) -> None:
    """A private, encrypted, tagged bucket for one run."""
    kwargs: dict[str, Any] = {"Bucket": name}
    if region != "us-east-1":
        kwargs["CreateBucketConfiguration"] = {"LocationConstraint": region}
    aws_call(f"creating bucket {name}", s3.create_bucket, **kwargs)
    aws_call(
        f"blocking public access to bucket {name}",
        s3.put_public_access_block,
        Bucket=name,
        PublicAccessBlockConfiguration={
            "BlockPublicAcls": True,
            "IgnorePublicAcls": True,
            "BlockPublicPolicy": True,
            "RestrictPublicBuckets": True,
        },
    )
    aws_call(
        f"encrypting bucket {name}",
        s3.put_bucket_encryption,
        Bucket=name,
        ServerSideEncryptionConfiguration={
            "Rules": [{"ApplyServerSideEncryptionByDefault": {"SSEAlgorithm": "AES256"}}]
        },
    )
    aws_call(
        f"tagging bucket {name}",
        s3.put_bucket_tagging,
        Bucket=name,
        Tagging={"TagSet": [{"Key": k, "Value": v} for k, v in tags.items()]},
    )


def delete_bucket(s3: Any, name: str) -> None:
    """Delete every object in the bucket, then the bucket (run buckets are not versioned); a bucket
    that does not exist counts as deleted."""
    token: dict[str, Any] = {}
    while True:
        try:
            page = aws_call(f"listing bucket {name}", s3.list_objects_v2, Bucket=name, **token)
        except CloudError as exc:
            if error_code(exc.__cause__) == "NoSuchBucket":
                return
            raise
        keys = [{"Key": item["Key"]} for item in page.get("Contents", [])]
        if keys:
            aws_call(f"emptying bucket {name}", s3.delete_objects, Bucket=name, Delete={"Objects": keys, "Quiet": True})
        if not page.get("IsTruncated"):
            break
        token = {"ContinuationToken": page["NextContinuationToken"]}
    aws_call(f"deleting bucket {name}", s3.delete_bucket, Bucket=name)
