"""The plan's alerts as CloudWatch alarms: CVR below 0.5 %, each function's error rate (once it has enough
invocations to be a rate), failed deliveries inside batches, requests signed with another secret, throttled requests,
no recommendation served in 24 h, a DLQ or the failed-runs queue not empty, a queue's oldest message too old — each
notifying the alerts topic when it fires and when it clears, each in the runbook with its threshold — and the loop's
dashboard."""

from __future__ import annotations

import ast
import json
import operator
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from aws_lambda_powertools.metrics import EphemeralMetrics, MetricUnit

from tests.template.test_template import getatt_target, ref_target, resources

ROOT = Path(__file__).resolve().parents[2]
RUNBOOK = ROOT / "docs" / "operations.md"
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
    """The metric math the alarm returns, as written (`${Parameter}` left in where `!Sub` puts a parameter)."""
    returned = [q for q in alarm.get("Metrics", []) if q.get("ReturnData", True) and "Expression" in q]
    assert len(returned) == 1, "a metric-math alarm returns exactly one expression"
    text = returned[0]["Expression"]
    if isinstance(text, dict) and set(text) == {"Fn::Sub"}:
        text = text["Fn::Sub"]
    assert isinstance(text, str), text
    return text


Value = float | None  # None: no datapoint in the period

_ARITHMETIC: dict[type[ast.operator], Callable[[float, float], float]] = {
    ast.Add: operator.add,
    ast.Sub: operator.sub,
    ast.Mult: operator.mul,
}
_COMPARISONS: dict[type[ast.cmpop], Callable[[float, float], bool]] = {
    ast.Gt: operator.gt,
    ast.GtE: operator.ge,
    ast.Lt: operator.lt,
    ast.LtE: operator.le,
    ast.Eq: operator.eq,
}


def evaluate(alarm: dict[str, Any], data: dict[str, Value], parameters: dict[str, Any]) -> Value:
    """The alarm's metric math for one period, as CloudWatch computes it on single values: `data` gives each metric
    id's datapoint (None where the period has none), `parameters` the values `!Sub` puts into the expression. IF,
    FILL, + - * / and comparisons; arithmetic on a missing datapoint or a division by zero gives no value."""
    text = re.sub(r"\$\{(\w+)\}", lambda match: str(parameters[match.group(1)]), expression(alarm))

    def value(node: ast.expr) -> Value:
        if isinstance(node, ast.Constant) and isinstance(node.value, int | float):
            return float(node.value)
        if isinstance(node, ast.Name):
            return data[node.id]
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Name):
            args = node.args
            if node.func.id == "IF":
                condition = value(args[0])
                return None if condition is None else value(args[1] if condition else args[2])
            if node.func.id == "FILL":
                filled = value(args[0])
                return value(args[1]) if filled is None else filled
        if isinstance(node, ast.BinOp):
            left, right = value(node.left), value(node.right)
            if left is None or right is None:
                return None
            if isinstance(node.op, ast.Div):
                return None if right == 0 else left / right
            return _ARITHMETIC[type(node.op)](left, right)
        if isinstance(node, ast.Compare) and len(node.ops) == 1:
            left, right = value(node.left), value(node.comparators[0])
            if left is None or right is None:
                return None
            return 1.0 if _COMPARISONS[type(node.ops[0])](left, right) else 0.0
        raise AssertionError(f"metric math this test cannot evaluate: {ast.unparse(node)}")

    return value(ast.parse(text.replace("\n", " "), mode="eval").body)


def fires(alarm: dict[str, Any], data: dict[str, Value], parameters: dict[str, Any]) -> bool:
    """Whether one period with these datapoints breaches the alarm (missing data treated as not breaching)."""
    result = evaluate(alarm, data, parameters)
    if result is None:
        return False
    threshold = float(alarm["Threshold"])
    return {
        "GreaterThanThreshold": result > threshold,
        "GreaterThanOrEqualToThreshold": result >= threshold,
        "LessThanThreshold": result < threshold,
        "LessThanOrEqualToThreshold": result <= threshold,
    }[alarm["ComparisonOperator"]]


def defaults(template: dict[str, Any]) -> dict[str, Any]:
    return {name: spec.get("Default") for name, spec in template["Parameters"].items()}


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


def test_an_error_rate_counts_only_from_the_minimum_number_of_invocations(sam_template: dict[str, Any]) -> None:
    """Given ErrorRateMinInvocations (default 20), one error in one invocation, or in a quiet five minutes, is not a
    rate and does not fire; from the minimum on, more than 5 % does; a period with no errors reported is 0 %."""
    parameters = defaults(sam_template)
    minimum = int(parameters["ErrorRateMinInvocations"])
    assert minimum >= 10
    for alarm_id, alarm in reading(sam_template, "AWS/Lambda", "Errors").items():
        assert "${ErrorRateMinInvocations}" in expression(alarm), alarm_id
        assert not error_rate_fires(alarm, 1, 1, parameters), alarm_id
        assert not error_rate_fires(alarm, minimum - 1, minimum - 1, parameters), alarm_id
        assert error_rate_fires(alarm, minimum, minimum, parameters), alarm_id
        assert error_rate_fires(alarm, 2, minimum, parameters), alarm_id  # 10 % of 20
        assert not error_rate_fires(alarm, 1, minimum, parameters), alarm_id  # 5 % is not above 5 %
        assert not error_rate_fires(alarm, None, 10 * minimum, parameters), alarm_id
        assert not error_rate_fires(alarm, None, None, parameters), alarm_id
        # The minimum is the parameter's, not a number written into the expression.
        assert not error_rate_fires(alarm, 2, 5, parameters), alarm_id
        assert error_rate_fires(alarm, 2, 5, {**parameters, "ErrorRateMinInvocations": 5}), alarm_id


def error_rate_fires(alarm: dict[str, Any], errors: Value, invocations: Value, parameters: dict[str, Any]) -> bool:
    ids = metric_ids(alarm)
    return fires(alarm, {ids["Errors"]: errors, ids["Invocations"]: invocations}, parameters)


def emitted_metric(service: str, namespace: str, name: str, monkeypatch: pytest.MonkeyPatch) -> dict[str, Any]:
    """The EMF document Powertools Metrics writes for one count of `name` in a function with this environment."""
    monkeypatch.setenv("POWERTOOLS_SERVICE_NAME", service)
    monkeypatch.setenv("POWERTOOLS_METRICS_NAMESPACE", namespace)
    metrics = EphemeralMetrics()  # the same provider as the functions' `Metrics()`, without its shared state
    metrics.add_metric(name=name, unit=MetricUnit.Count, value=1)
    document: dict[str, Any] = json.loads(json.dumps(metrics.serialize_metric_set()))
    return document


def function_environment(sam_template: dict[str, Any], function_id: str) -> dict[str, Any]:
    globals_ = sam_template["Globals"]["Function"]["Environment"]["Variables"]
    own = sam_template["Resources"][function_id]["Properties"].get("Environment", {}).get("Variables", {})
    return {**globals_, **own}


def handler_metric_names(path: Path) -> set[str]:
    """The metric names a handler module adds with a literal name (`metrics.add_metric(name="X", ...)`)."""
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and node.func.attr == "add_metric":
            for keyword in node.keywords:
                if keyword.arg == "name" and isinstance(keyword.value, ast.Constant):
                    names.add(str(keyword.value.value))
    return names


def test_every_reclift_metric_an_alarm_reads_is_one_a_function_emits_with_those_dimensions(
    sam_template: dict[str, Any], handler_files: dict[str, Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    """CloudWatch matches a metric by namespace, name and the exact set of dimensions. Given the function whose
    POWERTOOLS_SERVICE_NAME the alarm names, its handler adds that metric, and Powertools, in that function's
    environment, writes it to the alarm's namespace with exactly the alarm's dimensions."""
    services = {
        function_environment(sam_template, function_id)["POWERTOOLS_SERVICE_NAME"]: function_id
        for function_id in handler_files
    }
    read = [
        (alarm_id, metric)
        for alarm_id, alarm in alarms(sam_template).items()
        for metric in metrics_read(alarm)
        if not metric[0].startswith("AWS/")  # every metric of ours, whatever namespace it names
    ]
    assert {metric[1] for _, metric in read} >= {"DeliveriesFailed", "AttributedPurchases", "RecommendationsServed"}
    for alarm_id, (namespace, name, dims) in read:
        service = str(dict(dims).get("service"))
        assert service in services, f"{alarm_id}: {name} names no function's service: {dims}"
        function_id = services[service]
        assert name in handler_metric_names(handler_files[function_id]), f"{function_id} never emits {name}"
        environment = function_environment(sam_template, function_id)
        document = emitted_metric(service, environment["POWERTOOLS_METRICS_NAMESPACE"], name, monkeypatch)
        (directive,) = document["_aws"]["CloudWatchMetrics"]
        assert directive["Namespace"] == namespace, alarm_id
        (dimension_names,) = directive["Dimensions"]
        assert {key: document[key] for key in dimension_names} == dict(dims), alarm_id


def test_failed_deliveries_inside_a_batch_raise_an_alarm_from_the_minimum_on(sam_template: dict[str, Any]) -> None:
    """A delivery that fails inside a batch is a batch item failure, not a Lambda error. The worker counts
    DeliveriesFailed and DeliveriesProcessed; more than 5 % failed, once there are ErrorRateMinInvocations
    deliveries in five minutes, fires."""
    (alarm,) = reading(sam_template, "Reclift", "DeliveriesFailed").values()
    ids = metric_ids(alarm)
    failed, processed = ids["DeliveriesFailed"], ids["DeliveriesProcessed"]
    parameters = defaults(sam_template)
    minimum = int(parameters["ErrorRateMinInvocations"])

    assert fires(alarm, {failed: 2, processed: minimum - 2}, parameters)
    assert fires(alarm, {failed: minimum, processed: None}, parameters)  # every delivery failing
    assert not fires(alarm, {failed: 1, processed: minimum - 1}, parameters)
    assert not fires(alarm, {failed: 3, processed: None}, parameters)  # a quiet period: the DLQ alarm's to catch
    assert not fires(alarm, {failed: None, processed: 10 * minimum}, parameters)
    assert (alarm["TreatMissingData"], window_seconds(alarm)) == ("notBreaching", 300)


@pytest.mark.parametrize(
    ("alarm_id", "function_id", "service"),
    [
        ("WebhookSignatureMismatchAlarm", "WebhookFunction", "webhook"),
        ("ProxySignatureMismatchAlarm", "StorefrontFunction", "storefront"),
    ],
)
def test_requests_signed_with_another_secret_raise_an_alarm_once_they_are_most_of_the_functions(
    sam_template: dict[str, Any], alarm_id: str, function_id: str, service: str
) -> None:
    """A secret in SSM that is not the one Shopify signs with answers every request 401: no function errs and no
    queue grows. The handler counts each well-formed signature that matches no secret (SignaturesMismatched); more
    than half of the function's invocations over 15 minutes, from 3 such requests on, fires."""
    alarm = alarms(sam_template)[alarm_id]
    ids = metric_ids(alarm)
    mismatched, invocations = ids["SignaturesMismatched"], ids["Invocations"]
    read = {name: dict(dims) for _, name, dims in metrics_read(alarm)}
    assert read["SignaturesMismatched"] == {"service": service}
    assert ref_target(read["Invocations"]["FunctionName"]) == function_id

    assert fires(alarm, {mismatched: 3, invocations: 3}, {})  # every request of a quiet shop
    assert fires(alarm, {mismatched: 400, invocations: 400}, {})
    assert fires(alarm, {mismatched: 60, invocations: 100}, {})  # a rotation that reached part of the traffic
    assert not fires(alarm, {mismatched: 2, invocations: 2}, {})  # a request or two made by hand
    assert not fires(alarm, {mismatched: 40, invocations: 100}, {})  # forgeries among Shopify's own requests
    assert not fires(alarm, {mismatched: None, invocations: 500}, {})
    assert not fires(alarm, {mismatched: None, invocations: None}, {})
    assert (alarm["TreatMissingData"], window_seconds(alarm)) == ("notBreaching", 900)


def test_a_request_throttled_by_reserved_concurrency_raises_an_alarm(sam_template: dict[str, Any]) -> None:
    """Throttles are neither errors nor invocations. Every function behind the HTTP API is summed; one throttled
    request fires."""
    http_functions = {
        function_id
        for function_id, properties in resources(sam_template, "AWS::Serverless::Function")
        if any(event["Type"] == "HttpApi" for event in (properties.get("Events") or {}).values())
    }
    (alarm,) = reading(sam_template, "AWS/Lambda", "Throttles").values()
    ids = {
        ref_target(query["MetricStat"]["Metric"]["Dimensions"][0]["Value"]): query["Id"]
        for query in alarm["Metrics"]
        if "MetricStat" in query
    }
    assert set(ids) == http_functions
    for function_id in http_functions:
        data: dict[str, Value] = dict.fromkeys(ids.values())
        assert not fires(alarm, data, {}), function_id
        data[ids[function_id]] = 1
        assert fires(alarm, data, {}), function_id


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


def runbook_rows(text: str) -> dict[str, str]:
    """The runbook's table rows whose first cell is a `code` name: name → the whole row."""
    return {line.split("|")[1].strip(" `"): line for line in text.splitlines() if line.startswith("| `")}


def test_every_alarm_and_its_threshold_is_in_the_runbook(sam_template: dict[str, Any]) -> None:
    """docs/operations.md has a row for every alarm of template.yaml, with its threshold; an alarm added without
    its row, or a threshold changed without the runbook, fails here."""
    rows = runbook_rows(RUNBOOK.read_text(encoding="utf-8"))
    for alarm_id, alarm in alarms(sam_template).items():
        assert alarm_id in rows, f"docs/operations.md's alarm table lacks {alarm_id}"
        threshold = float(alarm["Threshold"])
        shown = {f"{threshold:g}", f"{threshold * 100:g} %", f"{threshold:g} s"}
        assert any(text in rows[alarm_id] for text in shown), f"{alarm_id}: threshold {threshold:g} not in the runbook"


def test_every_alarm_has_a_section_in_the_runbook_saying_what_to_do(sam_template: dict[str, Any]) -> None:
    """Each alarm's name appears in a heading of the runbook, not only in its table."""
    headings = [line for line in RUNBOOK.read_text(encoding="utf-8").splitlines() if line.startswith("#")]
    for alarm_id in alarms(sam_template):
        assert any(re.search(rf"\b{alarm_id}\b", heading) for heading in headings), f"no runbook section for {alarm_id}"


def github_anchor(heading: str) -> str:
    text = heading.lstrip("#").strip().lower()
    text = re.sub(r"[^\w\- ]", "", text)
    return text.replace(" ", "-")


def test_the_runbook_table_of_contents_links_every_section_and_nothing_else() -> None:
    text = RUNBOOK.read_text(encoding="utf-8")
    headings = [line for line in text.splitlines() if re.match(r"^#{2,3} ", line)]
    anchors = [github_anchor(heading) for heading in headings if github_anchor(heading) != "contents"]
    links = re.findall(r"^\s*[-*] \[[^\]]+\]\(#([^)]+)\)", text, flags=re.MULTILINE)
    assert links, "the runbook has no table of contents"
    assert sorted(set(links) - set(anchors)) == [], "links to no heading"
    assert [anchor for anchor in anchors if anchor not in links] == [], "sections missing from the contents"


def test_the_runbook_documents_every_operations_parameter(sam_template: dict[str, Any]) -> None:
    text = RUNBOOK.read_text(encoding="utf-8")
    operations = [
        name
        for name in sam_template["Parameters"]
        if name.endswith(("ReservedConcurrency", "MinInvocations")) or name.startswith("HttpApiThrottling")
    ]
    assert len(operations) >= 11
    assert [name for name in operations if f"`{name}`" not in text] == []


def test_the_dashboard_is_valid_json_and_shows_every_alarm(sam_template: dict[str, Any]) -> None:
    (dashboard,) = dict(resources(sam_template, "AWS::CloudWatch::Dashboard")).values()
    body = dashboard["DashboardBody"]["Fn::Sub"]
    substituted = re.sub(r"\$\{([\w:]+)(\.\w+)?\}", lambda m: m.group(1), body)

    widgets = json.loads(substituted)["widgets"]

    shown = {alarm for widget in widgets if widget["type"] == "alarm" for alarm in widget["properties"]["alarms"]}
    assert shown == set(alarms(sam_template))
    assert sum(widget["type"] == "metric" for widget in widgets) >= 6
