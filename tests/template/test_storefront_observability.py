"""What the storefront's busiest route costs in logs and traces: the function behind `POST /apps/proxy/events` logs
JSON without Lambda's START/END/REPORT records (a parameter brings them back), keeps its own lines and EMF metrics
at INFO, and is not sampled for X-Ray; every other function keeps Lambda's records and active tracing."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from tests.template.test_template import ref_target, resources

ROOT = Path(__file__).resolve().parents[2]
RUNBOOK = ROOT / "docs" / "operations.md"
EVENTS_ROUTE = ("POST", "/apps/proxy/events")
# Lambda's levels, most detailed first; an application line without a `level` (an EMF metrics line) is INFO.
APPLICATION_LEVELS = ["TRACE", "DEBUG", "INFO", "WARN", "ERROR", "FATAL"]


def events_function(sam_template: dict[str, Any]) -> str:
    """The logical id of the function that serves the storefront's events, found by its HttpApi event."""
    (function_id,) = [
        function_id
        for function_id, properties in resources(sam_template, "AWS::Serverless::Function")
        for event in (properties.get("Events") or {}).values()
        if event["Type"] == "HttpApi"
        and (event["Properties"]["Method"].upper(), event["Properties"]["Path"]) == EVENTS_ROUTE
    ]
    return function_id


def test_the_events_function_logs_json_without_lambdas_own_records_by_default(
    sam_template: dict[str, Any], cfn_template: dict[str, Any]
) -> None:
    function_id = events_function(sam_template)
    logging = cfn_template["Resources"][function_id]["Properties"]["LoggingConfig"]
    # Level filtering works only on JSON logs.
    assert logging["LogFormat"] == "JSON"
    parameter = ref_target(logging["SystemLogLevel"])
    assert parameter, "SystemLogLevel is a parameter, so an operator can bring the REPORT records back"
    spec = cfn_template["Parameters"][parameter]
    assert spec["Default"] == "WARN"
    assert "INFO" in spec["AllowedValues"]


def test_the_events_function_keeps_its_info_lines_and_emf_metrics(
    sam_template: dict[str, Any], cfn_template: dict[str, Any]
) -> None:
    """An EMF line has no `level`: Lambda files it as INFO, so an ApplicationLogLevel above INFO would drop the
    storefront's metrics (Impressions feeds ConversionRateAlarm)."""
    logging = cfn_template["Resources"][events_function(sam_template)]["Properties"]["LoggingConfig"]
    level = logging.get("ApplicationLogLevel", "INFO")
    assert APPLICATION_LEVELS.index(level) <= APPLICATION_LEVELS.index("INFO")


def test_only_the_storefront_stops_being_traced(sam_template: dict[str, Any], cfn_template: dict[str, Any]) -> None:
    storefront = events_function(sam_template)
    modes = {
        function_id: (properties.get("TracingConfig") or {}).get("Mode", "PassThrough")
        for function_id, properties in resources(cfn_template, "AWS::Lambda::Function")
    }
    assert modes.pop(storefront) == "PassThrough"
    assert modes, "the template has other functions"
    assert set(modes.values()) == {"Active"}, modes


def test_only_the_storefront_leaves_out_lambdas_records(
    sam_template: dict[str, Any], cfn_template: dict[str, Any]
) -> None:
    storefront = events_function(sam_template)
    filtered = [
        function_id
        for function_id, properties in resources(cfn_template, "AWS::Lambda::Function")
        if (properties.get("LoggingConfig") or {}).get("SystemLogLevel") is not None
    ]
    assert filtered == [storefront]


def test_the_runbook_says_how_to_bring_the_storefront_report_records_back(cfn_template: dict[str, Any]) -> None:
    """The runbook's trail from the access log to a function's REPORT record must say that the storefront writes
    none by default, and which parameter restores them."""
    runbook = RUNBOOK.read_text(encoding="utf-8")
    section = runbook.split("### Follow a failed request from the access log to the function", 1)[1].split("\n### ")[0]
    assert "StorefrontSystemLogLevel=INFO" in section
    assert "StorefrontSystemLogLevel" in cfn_template["Parameters"]
