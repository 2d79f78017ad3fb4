"""The statistical-validity verdict every cell carries."""

from __future__ import annotations

from harness.scenarios.validity import MIN_DURATION_S, MIN_SAMPLES_FOR_P99, validity


def test_enough_samples_and_time_is_valid() -> None:
    verdict = validity({"requests": 368, "ITL gaps": 10_000}, 2.0)
    assert verdict.valid is True and verdict.reasons == ()
    assert verdict.samples == {"requests": 368, "ITL gaps": 10_000}


def test_each_shortfall_is_named() -> None:
    verdict = validity({"requests": 367, "ITL gaps": 5000}, MIN_DURATION_S / 2)
    assert verdict.valid is False
    assert len(verdict.reasons) == 2
    assert verdict.reasons[0].startswith("requests: 367 samples")
    assert str(MIN_SAMPLES_FOR_P99) in verdict.reasons[0]
    assert MIN_SAMPLES_FOR_P99 == 368  # the p99's two-sided 95% order-statistic interval
    assert "at least 1 s" in verdict.reasons[1]


def test_extra_reasons_make_it_invalid() -> None:
    verdict = validity({"queries": 500}, 5.0, extra_reasons=["LoadGen: INVALID"])
    assert verdict.valid is False and verdict.reasons == ("LoadGen: INVALID",)
