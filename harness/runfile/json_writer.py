"""JSON that is JSON: Python's ``json`` writes ``NaN`` and ``Infinity`` by default, and JSON has
neither, so a report or export with one figure that is not finite would be unreadable by every
strict parser. ``dumps_json`` writes such a figure as null.
"""

from __future__ import annotations

import json
import math
from typing import Any

__all__ = ["dumps_json", "finite_or_null"]


def finite_or_null(value: Any) -> Any:
    """``value`` with every NaN or infinite float replaced by None (JSON null)."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {k: finite_or_null(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [finite_or_null(v) for v in value]
    return value


def dumps_json(value: Any, **kwargs: Any) -> str:
    """Valid JSON, always: a figure that is not finite is written as null, never as NaN."""
    return json.dumps(finite_or_null(value), allow_nan=False, **kwargs)
