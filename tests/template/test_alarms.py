"""The plan's alerts as CloudWatch alarms: CVR below 0.5 %, each function's error rate, no recommendation served in
24 h, a DLQ not empty, a queue's oldest message too old — each notifying the alerts topic when it fires and when it
clears, with its threshold documented in the README — and the loop's dashboard."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest

from tests.template.test_template import getatt_target, ref_target, resources

ROOT = Path(__file__).resolve().parents[2]
TOPIC = {"Ref": "AlertsTopic"}

Metric = tuple[str, str, tuple[tuple[str, Any], ...]]


def alarms(template: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return dict(resources(template, "AWS::CloudWatch::Alarm"))


def metrics_read(alarm: dict[str, Any]) -> list[Metric]:
    """(namespace, metric, dimensions) of every metric the alarm reads, directly or inside its metric math."""
    found: list[Metric] = []
    if "MetricName" in alarm:
        dims = tuple((d["Name"], d["Value"]) for d in alarm.get("Dimensions", []))
        found.append((alarm["Namespace"], alarm["MetricName"], dims))
    for query in alarm.get("Metrics", []):
        if "MetricStat" in query:
            metric = query["MetricStat"]["Metric"]
            dims = tuple((d["Name"], d["Value"]) for d in metric.get("Dimensions", []))
            found.append((metric["Namespace"], metric["MetricName"], dims))
    return found


def expression(alarm: dict[str, Any]) -> str:
    returned = [q for q in alarm.get("Metrics", []) if q.get("ReturnData", True) and "Expression" in q]
    assert len(returned) == 1, "a metric-math alarm returns exactly one expression"
    return str(returned[0]["Expression"])


def metric_ids(alarm: dict[str, Any]) -> dict[str, str]:
    """Metric name → its id in the alarm's metric math."""
    return {q["MetricStat"]["Metric"]["MetricName"]: q["Id"] for q in alarm.get("Metrics", []) if "MetricStat" in q}


def window_seconds(alarm: dict[str, Any]) -> int:
    period = alarm.get("Period") or alarm["Metrics"][0]["MetricStat"]["Period"]
    return int(period) * int(alarm["EvaluationPeriods"])


def reading(template: dict[str, Any], namespace: str, name: str) -> dict[str, dict[str, Any]]:
    return {
        alarm_id: alarm
        for alarm_id, alarm in alarms(template).items()
        if any(metric[:2] == (namespace, name) for metric in metrics_read(alarm))
    }


def test_every_alarm_notifies_the_alerts_topic_when_it_fires_and_when_it_clears(sam_template: dict[str, Any]) -> None:
    found = alarms(sam_template)
    assert len(found) >= 14
    for alarm_id, alarm in found.items():
        assert alarm["AlarmActions"] == [TOPIC], alarm_id
        assert alarm["OKActions"] == [TOPIC], alarm_id


def test_a_cvr_below_half_a_percent_over_a_day_raises_an_alarm_by_metric_math(sam_template: dict[str, Any]) -> None:
    (alarm,) = reading(sam_template, "Reclift", "AttributedPurchases").values()
    ids = metric_ids(alarm)

    assert f"FILL({ids['AttributedPurchases']}, 0) / {ids['Impressions']}" in expression(alarm)
    assert (alarm["ComparisonOperator"], float(alarm["Threshold"])) == ("LessThanThreshold", 0.005)
    assert window_seconds(alarm) == 86400


def test_each_function_has_an_error_rate_alarm_of_errors_over_invocations(sam_template: dict[str, Any]) -> None:
    functions = {function_id for function_id, _ in resources(sam_template, "AWS::Serverless::Function")}
    covered = set()
    for alarm in reading(sam_template, "AWS/Lambda", "Errors").values():
        (function_id,) = {ref_target(dict(dims)["FunctionName"]) for _, _, dims in metrics_read(alarm)}
        ids = metric_ids(alarm)
        assert f"{ids['Errors']}, 0) / {ids['Invocations']}" in expression(alarm)
        assert (alarm["ComparisonOperator"], float(alarm["Threshold"])) == ("GreaterThanThreshold", 0.05)
        covered.add(function_id)
    assert covered == functions


def test_no_recommendation_served_in_24_hours_raises_an_alarm_and_no_data_counts_as_none(
    sam_template: dict[str, Any],
) -> None:
    (alarm,) = reading(sam_template, "Reclift", "RecommendationsServed").values()

    assert alarm["TreatMissingData"] == "breaching"
    assert window_seconds(alarm) == 86400
    assert alarm["DatapointsToAlarm"] == alarm["EvaluationPeriods"]  # every hour of the day without one
    assert (alarm["ComparisonOperator"], float(alarm["Threshold"]), alarm["Statistic"]) == (
        "LessThanThreshold",
        1.0,
        "Sum",
    )


@pytest.mark.parametrize("queue_id", ["WebhookQueue", "LearningQueue", "HealthQueue"])
def test_each_worked_queue_alarms_on_its_oldest_message(sam_template: dict[str, Any], queue_id: str) -> None:
    watching = [
        alarm
        for alarm in reading(sam_template, "AWS/SQS", "ApproximateAgeOfOldestMessage").values()
        if any(getatt_target(dict(dims)["QueueName"], "QueueName") == queue_id for _, _, dims in metrics_read(alarm))
    ]
    assert len(watching) == 1
    assert watching[0]["ComparisonOperator"] == "GreaterThanThreshold"
    # Older than the queue's visibility timeout × redrives would already mean messages are stuck.
    assert 0 < float(watching[0]["Threshold"]) <= 3600


def test_every_queue_with_a_dead_letter_queue_is_one_an_age_alarm_watches(sam_template: dict[str, Any]) -> None:
    worked = {qid for qid, props in resources(sam_template, "AWS::SQS::Queue") if "RedrivePolicy" in props}
    watched = {
        getatt_target(dict(dims)["QueueName"], "QueueName")
        for alarm in reading(sam_template, "AWS/SQS", "ApproximateAgeOfOldestMessage").values()
        for _, _, dims in metrics_read(alarm)
    }
    assert worked == watched


def test_every_alarm_and_its_threshold_is_documented_in_the_readme(sam_template: dict[str, Any]) -> None:
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    rows = {line.split("|")[1].strip(" `"): line for line in readme.splitlines() if line.startswith("| `")}
    for alarm_id, alarm in alarms(sam_template).items():
        assert alarm_id in rows, f"README's alarm table lacks {alarm_id}"
        threshold = float(alarm["Threshold"])
        shown = {f"{threshold:g}", f"{threshold * 100:g} %", f"{threshold:g} s"}
        assert any(text in rows[alarm_id] for text in shown), f"{alarm_id}: threshold {threshold:g} not documented"


def test_the_dashboard_is_valid_json_and_shows_every_alarm(sam_template: dict[str, Any]) -> None:
    (dashboard,) = dict(resources(sam_template, "AWS::CloudWatch::Dashboard")).values()
    body = dashboard["DashboardBody"]["Fn::Sub"]
    substituted = re.sub(r"\$\{([\w:]+)(\.\w+)?\}", lambda m: m.group(1), body)

    widgets = json.loads(substituted)["widgets"]

    shown = {alarm for widget in widgets if widget["type"] == "alarm" for alarm in widget["properties"]["alarms"]}
    assert shown == set(alarms(sam_template))
    assert sum(widget["type"] == "metric" for widget in widgets) >= 6
