"""Token agreement between an engine's greedy tokens and the reference's."""

from __future__ import annotations

import pytest

from backends.engine.records import EngineRequest, TokenEvent, Usage, build_outcome
from backends.engine.reference import TokenAgreement, compare_tokens, outcome_token_ids, threshold_for


def test_positional_agreement_and_where_each_sequence_parted() -> None:
    result = compare_tokens([[1, 2, 3, 4], [5, 6, 0, 0]], [[1, 2, 3, 4], [5, 6, 7, 8]], 0.9)
    assert result.agreement == pytest.approx(6 / 8)
    assert result.first_divergence == (None, 2)
    assert not result.passed and result.warning is not None and "75%" in result.warning
    assert TokenAgreement.from_dict(result.to_dict()) == result


def test_a_failed_or_short_sequence_counts_as_disagreeing() -> None:
    result = compare_tokens([None, [1, 2]], [[1, 2, 3], [1, 2, 3]], 0.5)
    assert result.agreement == pytest.approx(2 / 6)
    assert result.first_divergence == (0, 2)
    assert compare_tokens([[1, 2, 3]], [[1, 2, 3]], 0.9).warning is None


def test_thresholds_by_dtype() -> None:
    assert threshold_for("float32") == 0.9 and threshold_for(None) == 0.9
    assert threshold_for("bfloat16") < threshold_for("float32")


def _outcome(ids: list[tuple[int, ...] | None], ok: bool = True):  # type: ignore[no-untyped-def]
    request = EngineRequest("r", max_tokens=3, prompt=(1, 2))
    events = [TokenEvent(i, i, "x", t) for i, t in enumerate(ids)]
    usage = Usage(2, sum(len(t or ()) for t in ids)) if ok else None
    return build_outcome(
        request, scheduled_ns=0, sent_ns=0, end_ns=9, events=events, usage=usage, finish_reason="length", failure=None
    )


def test_token_ids_come_from_the_events_or_not_at_all() -> None:
    assert outcome_token_ids(_outcome([(7,), (8, 9)])) == [7, 8, 9]
    assert outcome_token_ids(_outcome([(7,), None])) is None
    assert outcome_token_ids(_outcome([(7,)], ok=False)) is None
