"""The user's Hugging Face token for a gated model: named at launch, read on the instance, never shipped.

``--model-token-from ssm:NAME`` (an SSM Parameter Store parameter, a ``SecureString`` as a rule) or
``secretsmanager:NAME`` (a Secrets Manager secret whose value is the token). The name travels in
``job.json``; the value is read by the agent with the instance role (``GetParameter`` with
decryption; ``GetSecretValue``) and handed to the engine and the hub download as ``HF_TOKEN`` in
the agent's environment, which the run file does not record (only the engine command's own
variables are). It is never in user data, which anyone who can describe the instance can read.

The instance role may read that one parameter or secret and nothing else (``policy_statement``):
a parameter's ARN is ``arn:aws:ssm:REGION:ACCOUNT:parameter/NAME`` (the name's leading ``/``
dropped); a secret's is its name plus the six random characters Secrets Manager appends, so the
statement ends in ``-??????`` (Secrets Manager User Guide, "Resource: secret ARN" in the IAM
policy examples). A ``SecureString`` under the default ``aws/ssm`` key needs no KMS grant of its
own; one under a customer key does (docs/aws-assumptions.md).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from harness.errors import CloudError, ConfigError

__all__ = ["TOKEN_ENV", "TokenSource", "parse_token_source", "read_token"]

#: The variable huggingface_hub and vLLM read the token from.
TOKEN_ENV = "HF_TOKEN"
_KINDS = ("ssm", "secretsmanager")
_SSM_NAME = re.compile(r"^/?[A-Za-z0-9_.\-/]{1,1011}$")
_SECRET_NAME = re.compile(r"^[A-Za-z0-9/_+=.@\-]{1,512}$")


@dataclass(frozen=True)
class TokenSource:
    """Where the token is kept: ``ssm`` or ``secretsmanager``, and its name there."""

    kind: str
    name: str

    def __str__(self) -> str:
        return f"{self.kind}:{self.name}"

    def policy_statement(self, region: str, account: str = "*") -> dict[str, Any]:
        """The one IAM statement that lets the instance read this token and nothing else."""
        if self.kind == "ssm":
            return {
                "Sid": "ReadTheModelToken",
                "Effect": "Allow",
                "Action": ["ssm:GetParameter"],
                "Resource": [f"arn:aws:ssm:{region}:{account}:parameter/{self.name.lstrip('/')}"],
            }
        return {
            "Sid": "ReadTheModelToken",
            "Effect": "Allow",
            "Action": ["secretsmanager:GetSecretValue"],
            "Resource": [f"arn:aws:secretsmanager:{region}:{account}:secret:{self.name}-??????"],
        }


def parse_token_source(text: str | None) -> TokenSource | None:
    """``ssm:NAME`` or ``secretsmanager:NAME``; a ``ConfigError`` in one line otherwise."""
    if not text:
        return None
    kind, _, name = text.partition(":")
    if kind not in _KINDS or not name:
        raise ConfigError(
            f"--model-token-from {text!r}: give ssm:PARAMETER_NAME or secretsmanager:SECRET_NAME "
            "(the token stays there and is read on the instance)"
        )
    pattern = _SSM_NAME if kind == "ssm" else _SECRET_NAME
    if not pattern.fullmatch(name):
        raise ConfigError(f"--model-token-from {text!r}: {name!r} is not a valid {kind} name")
    return TokenSource(kind, name)


def read_token(factory: Any, source: TokenSource) -> str:
    """The token's value, read with the instance role; a ``CloudError`` names what to grant."""
    from harness.targets.aws.session import aws_call

    if source.kind == "ssm":
        ssm = factory.client("ssm")
        reply = aws_call(f"reading the model token {source}", ssm.get_parameter, Name=source.name, WithDecryption=True)
        value = str(reply["Parameter"]["Value"])
    else:
        secrets = factory.client("secretsmanager")
        reply = aws_call(f"reading the model token {source}", secrets.get_secret_value, SecretId=source.name)
        value = str(reply.get("SecretString") or "")
    if not value.strip():
        raise CloudError(f"the model token {source} is empty: put the Hugging Face token there")
    return value.strip()
