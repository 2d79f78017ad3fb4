"""The tags every resource of a run carries, so cleanup can find and judge it without local state.

``siliconbench:managed=true`` marks what this tool created; ``run-id`` groups a run's resources;
``owner`` says who launched it; ``expires-at`` (UTC, ISO 8601) is when cleanup may remove it.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import UTC, datetime

__all__ = [
    "TAG_EXPIRES",
    "TAG_INSTANCE_TYPE",
    "TAG_MANAGED",
    "TAG_OWNER",
    "TAG_RUN_ID",
    "format_expiry",
    "is_expired",
    "parse_expiry",
    "run_tags",
    "tag_dict",
    "tag_list",
]

TAG_RUN_ID = "siliconbench:run-id"
TAG_OWNER = "siliconbench:owner"
TAG_EXPIRES = "siliconbench:expires-at"
TAG_MANAGED = "siliconbench:managed"
TAG_INSTANCE_TYPE = "siliconbench:instance-type"

_FORMAT = "%Y-%m-%dT%H:%M:%SZ"


def format_expiry(when: datetime) -> str:
    return when.astimezone(UTC).strftime(_FORMAT)


def parse_expiry(text: str | None) -> datetime | None:
    """The expiry as an aware UTC datetime, or None when absent or unreadable."""
    if not text:
        return None
    try:
        return datetime.strptime(text, _FORMAT).replace(tzinfo=UTC)
    except ValueError:
        return None


def is_expired(tags: Mapping[str, str], now: datetime) -> bool:
    """Expired when the expiry has passed; a managed resource with no readable expiry counts as
    expired, because nothing else would ever remove it."""
    expiry = parse_expiry(tags.get(TAG_EXPIRES))
    return expiry is None or expiry <= now


def run_tags(run_id: str, owner: str, expires_at: datetime, **extra: str) -> dict[str, str]:
    tags = {TAG_MANAGED: "true", TAG_RUN_ID: run_id, TAG_OWNER: owner[:256], TAG_EXPIRES: format_expiry(expires_at)}
    tags.update(extra)
    tags.setdefault("Name", f"siliconbench-{run_id}")
    return tags


def tag_list(tags: Mapping[str, str]) -> list[dict[str, str]]:
    """AWS's ``[{"Key": ..., "Value": ...}]`` form."""
    return [{"Key": k, "Value": v} for k, v in tags.items()]


def tag_dict(tags: Iterable[Mapping[str, str]] | None) -> dict[str, str]:
    return {t["Key"]: t["Value"] for t in tags or ()}
