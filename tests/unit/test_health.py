"""The health rules at their thresholds, and the alert state machine: one alert, silence, one recovery."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from reclift.data.health import FLUSH_SECONDS, ServedTally
from reclift.health import (
    Check,
    Condition,
    ConditionState,
    HourTotals,
    Notification,
    Totals,
    cvr_check,
    error_rate_check,
    evaluate,
    message,
    served_check,
    totals_since,
    transition,
)

NOW = datetime(2026, 11, 26, 10, 30, tzinfo=UTC)


def hour(hours_ago: int, **counts: int) -> HourTotals:
    start = NOW.replace(minute=0) - timedelta(hours=hours_ago)
    return HourTotals(start=start, **counts)


# ---------------------------------------------------------------- rules at their thresholds
def test_given_a_cvr_of_exactly_half_a_percent_then_it_does_not_breach() -> None:
    check = cvr_check(Condition.CVR_24H, Totals(impressions=1000, purchases=5))
    assert (check.breaching, check.value) == (False, 0.005)


def test_given_a_cvr_just_below_half_a_percent_then_it_breaches() -> None:
    check = cvr_check(Condition.CVR_24H, Totals(impressions=1001, purchases=5))
    assert check.breaching is True


def test_given_zero_impressions_then_the_cvr_cannot_be_judged() -> None:
    check = cvr_check(Condition.CVR_7D, Totals())
    assert (check.breaching, check.value) == (None, None)


def test_given_99_impressions_and_no_purchase_then_too_few_to_judge_and_at_100_it_breaches() -> None:
    assert cvr_check(Condition.CVR_24H, Totals(impressions=99)).breaching is None
    assert cvr_check(Condition.CVR_24H, Totals(impressions=100)).breaching is True


def test_given_an_error_rate_of_exactly_five_percent_then_it_does_not_breach_and_above_it_does() -> None:
    assert error_rate_check(Totals(orders=19, errors=1)).breaching is False
    assert error_rate_check(Totals(orders=18, errors=1)).breaching is True


def test_given_no_orders_and_no_errors_then_the_error_rate_is_zero() -> None:
    assert error_rate_check(Totals()) == Check(Condition.ERROR_RATE, False, 0.0, 0.05)


def test_given_one_served_recommendation_then_the_shop_is_serving_and_none_breaches() -> None:
    assert served_check(Totals(served=1)).breaching is False
    assert served_check(Totals(served=0)).breaching is True


def test_given_hours_across_the_week_then_the_24_hour_window_keeps_the_last_24_hours_only() -> None:
    hours = [hour(0, served=1), hour(23, impressions=10), hour(24, impressions=100), hour(24 * 7, impressions=1000)]

    assert totals_since(hours, NOW - timedelta(hours=24)) == Totals(impressions=10, served=1)
    assert totals_since(hours, NOW - timedelta(days=7)).impressions == 110


def test_given_a_week_that_converts_and_a_day_that_does_not_then_only_the_24_hour_cvr_breaches() -> None:
    hours = [hour(2, impressions=200, served=3), hour(30, impressions=800, purchases=20)]

    checks = {check.condition: check for check in evaluate(hours, NOW)}

    assert checks[Condition.CVR_24H].breaching is True
    assert checks[Condition.CVR_7D].breaching is False  # 20 / 1000 = 2 %
    assert checks[Condition.CVR_7D].value == pytest.approx(0.02)
    assert checks[Condition.NOTHING_SERVED].breaching is False


# ---------------------------------------------------------------- the state machine
def run(
    states: dict[str, ConditionState], breaching: bool | None, at: datetime
) -> tuple[dict[str, ConditionState], list[str]]:
    check = Check(Condition.NOTHING_SERVED, breaching, 0.0, 1.0)
    new, notifications = transition(states, [check], at)
    return new, [n.kind for n in notifications]


def test_given_a_condition_that_starts_lasts_and_clears_then_one_alert_silence_and_one_recovery() -> None:
    states: dict[str, ConditionState] = {}
    sent: list[str] = []
    for hours, breaching in enumerate([False, True, True, True, False, False, True]):
        states, kinds = run(states, breaching, NOW + timedelta(hours=hours))
        sent += kinds

    assert sent == ["alert", "recovery", "alert"]
    assert states["no_recommendations_24h"].status == "alerting"
    assert states["no_recommendations_24h"].since == (NOW + timedelta(hours=6)).isoformat()


def test_given_an_alerting_condition_that_cannot_be_judged_then_it_stays_alerting_and_nothing_is_sent() -> None:
    states, first = run({}, True, NOW)
    states, second = run(states, None, NOW + timedelta(hours=1))

    assert (first, second) == (["alert"], [])
    assert states["no_recommendations_24h"].status == "alerting"
    assert states["no_recommendations_24h"].since == NOW.isoformat()  # unchanged since it started


def test_given_a_first_check_with_nothing_to_judge_then_insufficient_data_and_no_message() -> None:
    states, kinds = run({}, None, NOW)
    assert (states["no_recommendations_24h"].status, kinds) == ("insufficient_data", [])


def test_given_a_healthy_first_check_then_no_recovery_is_sent_for_what_never_alerted() -> None:
    assert run({}, False, NOW)[1] == []


def test_given_a_stored_state_when_read_back_then_it_round_trips_and_an_unknown_status_reads_as_no_data() -> None:
    state = ConditionState("alerting", NOW.isoformat(), 0.001, 0.005)
    assert ConditionState.from_dict(state.as_dict()) == state
    assert ConditionState.from_dict({"status": "weird"}).status == "insufficient_data"


def test_given_an_alert_then_its_message_names_the_shop_the_figure_and_the_threshold() -> None:
    subject, text = message("a.myshopify.com", run_alert(Check(Condition.CVR_24H, True, 0.0012, 0.005)))
    assert subject.startswith("reclift alert: a.myshopify.com")
    assert len(subject) <= 100  # SNS's limit for email subjects
    assert "value 0.12%, threshold 0.50%" in text


def run_alert(check: Check) -> Notification:
    return transition({}, [check], NOW)[1][0]


# ---------------------------------------------------------------- the served tally
class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_given_many_serves_in_a_minute_then_the_first_is_written_at_once_and_the_rest_together_a_minute_later() -> None:
    writes: list[tuple[str, datetime, dict[str, int]]] = []
    clock = Clock()
    tally = ServedTally(write=lambda shop, at, counts: writes.append((shop, at, counts)), clock=clock)
    at = datetime(2026, 11, 26, 10, 15, tzinfo=UTC)

    for _ in range(5):
        tally.record("a.myshopify.com", at)
    clock.now += FLUSH_SECONDS
    tally.record("a.myshopify.com", at)

    hour_start = datetime(2026, 11, 26, 10, tzinfo=UTC)
    assert writes == [
        ("a.myshopify.com", hour_start, {"served": 1}),
        ("a.myshopify.com", hour_start, {"served": 5}),
    ]


def test_given_a_serve_taken_back_after_its_write_then_the_next_flush_corrects_the_count() -> None:
    writes: list[tuple[str, datetime, dict[str, int]]] = []
    clock = Clock()
    tally = ServedTally(write=lambda shop, at, counts: writes.append((shop, at, counts)), clock=clock)
    at = datetime(2026, 11, 26, 10, 15, tzinfo=UTC)

    tally.record("a.myshopify.com", at)  # written at once
    tally.retract("a.myshopify.com", at)  # its request failed
    tally.record("a.myshopify.com", at)
    tally.retract("a.myshopify.com", at)  # failed too
    tally.record("a.myshopify.com", at)  # served
    tally.record("a.myshopify.com", at)  # served
    clock.now += FLUSH_SECONDS
    tally.record("a.myshopify.com", at)  # served, and the minute is up

    hour_start = datetime(2026, 11, 26, 10, tzinfo=UTC)
    assert writes == [
        ("a.myshopify.com", hour_start, {"served": 1}),
        ("a.myshopify.com", hour_start, {"served": 2}),  # three served, less the failed one already written
    ]
    assert sum(counts["served"] for _, _, counts in writes) == 3
