"""boto3 clients for one region, made in one place.

Everything that talks to AWS gets its clients from a ``ClientFactory``, so tests can point the very
same code at a local moto server by giving ``endpoint_url`` (botocore also honours the standard
``AWS_ENDPOINT_URL`` variable, which is how a CLI subprocess under test is redirected). boto3 is
imported here and only here, lazily, so ``siliconbench --help`` and local runs never pay for it.

Every call is bounded: ``CONNECT_TIMEOUT_S`` to open a connection, ``READ_TIMEOUT_S`` for each
read of a response, and at most ``MAX_ATTEMPTS`` attempts, the first included (botocore's
``standard`` retry mode, exponential backoff capped at 20 s). botocore's defaults (its
``config.py``, 1.44) are 60 s to connect and 60 s per read, and ``retries: max_attempts`` counts
retries after the first request, so the old ``max_attempts: 5`` meant six attempts: an endpoint
that accepts connections and never answers held a command for about six minutes. With these, a
call gives up within about
``MAX_ATTEMPTS × (CONNECT_TIMEOUT_S + READ_TIMEOUT_S)`` plus the backoff. Listings go through
``paginate``, which fetches every page inside the same error handling as a single call.

S3 clients sign with SigV4 against the bucket's regional virtual-hosted endpoint
(``https://BUCKET.s3.REGION.amazonaws.com``), because their presigned URLs are fetched by ``curl``
on an instance that has nothing else. botocore 1.44's default signs presigned URLs with SigV2 on
the global host ``BUCKET.s3.amazonaws.com`` (its ``S3_SIGNING_NAMES``/``auto`` addressing): regions
opened after January 2014 (us-east-2 among them) accept SigV4 only, and a bucket younger than a day
answers the global host with a 307 to its regional one. The host is part of the SigV4 signature, so
following that redirect is no fix; signing against the regional host is (Amazon S3 User Guide,
"Virtual hosting of buckets" and "Authenticating Requests (AWS Signature Version 4)"; botocore
``Config`` docs: ``signature_version``, ``s3.addressing_style``, ``s3.us_east_1_regional_endpoint``).
Where S3 is somewhere else (``endpoint_url``, ``AWS_ENDPOINT_URL[_S3]``: moto, MinIO) the host is
left to botocore, which uses path-style for an IP address.
"""

from __future__ import annotations

import contextlib
import os
import threading
from collections.abc import Iterator
from typing import Any

from harness import __version__
from harness.errors import CloudError, ConfigError

__all__ = [
    "CONNECT_TIMEOUT_S",
    "MAX_ATTEMPTS",
    "READ_TIMEOUT_S",
    "ClientFactory",
    "aws_call",
    "aws_errors",
    "error_code",
    "paginate",
    "require_boto3",
    "s3_options",
]

#: Seconds to open a connection to an AWS endpoint.
CONNECT_TIMEOUT_S = 5.0
#: Seconds to wait for each read of a response (AWS answers API calls in well under a second).
READ_TIMEOUT_S = 20.0
#: Attempts per call, the first included.
MAX_ATTEMPTS = 3

INSTALL_HINT = "the aws target needs boto3: pip install 'siliconbench[aws]'"


def s3_options(custom_endpoint: bool) -> dict[str, Any]:
    """botocore ``Config`` arguments for S3 clients (see the module docstring for why).

    SigV4 always; virtual-hosted addressing on the regional endpoint (us-east-1 included, whose
    default is the global host) unless S3 is at a custom endpoint.
    """
    if custom_endpoint:
        return {"signature_version": "s3v4"}
    return {
        "signature_version": "s3v4",
        "s3": {"addressing_style": "virtual", "us_east_1_regional_endpoint": "regional"},
    }


def _custom_s3_endpoint(endpoint_url: str | None) -> bool:
    """Whether S3 is reached somewhere other than AWS (botocore honours these variables too)."""
    return bool(endpoint_url or os.environ.get("AWS_ENDPOINT_URL_S3") or os.environ.get("AWS_ENDPOINT_URL"))


def require_boto3() -> Any:
    """The boto3 module, or a one-line ConfigError saying how to install it."""
    try:
        import boto3
    except ImportError:
        raise ConfigError(INSTALL_HINT) from None
    return boto3


def error_code(exc: BaseException | None) -> str:
    """The AWS error code of a botocore ClientError ('' for anything else)."""
    response = getattr(exc, "response", None)
    if isinstance(response, dict):
        return str(response.get("Error", {}).get("Code", ""))
    return ""


def _error_message(exc: BaseException) -> str:
    response = getattr(exc, "response", None)
    if isinstance(response, dict):
        message = str(response.get("Error", {}).get("Message", "")).strip()
        if message:
            return message
    return str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__


def aws_call(what: str, fn: Any, /, **kwargs: Any) -> Any:
    """Call ``fn(**kwargs)``; turn botocore failures into a one-line CloudError naming ``what``.

    Missing credentials become a ConfigError, since the user fixes those, not the cloud.
    """
    with aws_errors(what):
        return fn(**kwargs)


def paginate(what: str, client: Any, operation: str, /, **kwargs: Any) -> list[dict[str, Any]]:
    """Every page of a paginated ``operation``, each fetched inside ``aws_call``'s error handling
    (a paginator fetches lazily, as it is iterated, so wrapping only ``paginate()`` catches nothing)."""
    with aws_errors(what):
        return list(client.get_paginator(operation).paginate(**kwargs))


@contextlib.contextmanager
def aws_errors(what: str) -> Iterator[None]:
    """Within the block, botocore failures become one-line errors naming ``what``."""
    from botocore.exceptions import BotoCoreError, ClientError, NoCredentialsError, NoRegionError

    try:
        yield
    except NoCredentialsError:
        raise ConfigError(
            "no AWS credentials found; configure them (aws configure, AWS_PROFILE, or an assumed role)"
        ) from None
    except NoRegionError:
        raise ConfigError("no AWS region; pass --region or set AWS_DEFAULT_REGION") from None
    except ClientError as exc:
        code = error_code(exc)
        raise CloudError(f"{what} failed: {code}: {_error_message(exc)}") from exc
    except BotoCoreError as exc:
        raise CloudError(f"{what} failed: {exc}") from exc


class ClientFactory:
    """Thread-safe cache of boto3 clients for one region (clients are thread-safe; sessions are not)."""

    def __init__(
        self,
        region: str | None = None,
        *,
        endpoint_url: str | None = None,
        max_attempts: int = MAX_ATTEMPTS,
        session: Any = None,
        connect_timeout_s: float = CONNECT_TIMEOUT_S,
        read_timeout_s: float = READ_TIMEOUT_S,
    ) -> None:
        boto3 = require_boto3()
        from botocore.config import Config

        self._session = session or boto3.session.Session(region_name=region)
        resolved = region or self._session.region_name
        if not resolved:
            raise ConfigError("no AWS region; pass --region or set AWS_DEFAULT_REGION")
        self.region: str = resolved
        self.endpoint_url = endpoint_url
        self._config = Config(
            region_name=self.region,
            # total_max_attempts counts the first request; max_attempts would count retries only
            # (botocore/config.py, Config's ``retries`` docstring), one more than meant here.
            retries={"mode": "standard", "total_max_attempts": max_attempts},
            connect_timeout=connect_timeout_s,
            read_timeout=read_timeout_s,
            user_agent_extra=f"siliconbench/{__version__}",
        )
        self._clients: dict[str, Any] = {}
        self._lock = threading.Lock()

    def has_credentials(self) -> bool:
        """Whether boto3 finds credentials (for a plan that can still run offline without them)."""
        return self._session.get_credentials() is not None

    def client(self, service: str) -> Any:
        """The shared client for ``service`` in this factory's region."""
        with self._lock:
            if service not in self._clients:
                config = self._config
                if service == "s3":
                    from botocore.config import Config

                    config = config.merge(Config(**s3_options(_custom_s3_endpoint(self.endpoint_url))))
                self._clients[service] = self._session.client(
                    service, region_name=self.region, endpoint_url=self.endpoint_url, config=config
                )
            return self._clients[service]
