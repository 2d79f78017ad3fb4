"""The rule that keeps schema v2 frozen while its records grow.

Keys added to version 2 after its fixtures were frozen are left out of the JSON while unset (None,
an empty tuple or mapping), so a file that never had them re-encodes to the very same bytes
(``tests/harness/runfile/test_frozen_v2.py``). Every record module marks such fields with
``Annotated[T, OMIT_UNSET]``.
"""

from __future__ import annotations

from pydantic import Field

__all__ = ["OMIT_UNSET"]

OMIT_UNSET = Field(exclude_if=lambda value: value is None or value == () or value == {})
