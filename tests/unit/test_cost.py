"""The cost model prices what the template deploys: each function's Lambda records and X-Ray traces come from its
`LoggingConfig` and `Tracing`, not from constants, so a change to either shows in the dollars."""

from __future__ import annotations

import copy
from functools import cache
from typing import Any

import pytest
from benchmarks import cost
from benchmarks.common import read_results, rounded

from reclift_local.template import load_template

LOG_BYTES = {"recommendations": 300, "events": 400}  # what the handlers print, fixed here (measured by the benchmark)
ACCESS_LOG_BYTES = 360


@cache
def _template() -> dict[str, Any]:
    return load_template(cost.TEMPLATE)


@pytest.fixture
def template() -> dict[str, Any]:
    return copy.deepcopy(_template())


def storefront(template: dict[str, Any]) -> dict[str, Any]:
    properties: dict[str, Any] = template["Resources"][cost.STOREFRONT]["Properties"]
    return properties


def capacity() -> dict[str, Any]:
    return read_results("capacity")


def learning_job() -> dict[str, Any]:
    return read_results("learning_job")


def test_the_storefront_as_deployed_writes_no_lambda_records_and_no_traces(template: dict[str, Any]) -> None:
    """Given template.yaml, the storefront (both routes) adds nothing to its own lines; the webhook, attribution and
    counting functions keep Lambda's START/END/REPORT and the global active tracing."""
    functions = cost.observability(template)
    assert functions[cost.STOREFRONT] == cost.Observability(platform_log_bytes=0, xray_sampled=0.0)
    for function_id in (cost.COUNTING, *cost.ORDER_FUNCTIONS.values()):
        assert functions[function_id] == cost.Observability(
            platform_log_bytes=cost.LAMBDA_PLATFORM_LOG_BYTES, xray_sampled=cost.LAMBDA_XRAY_SAMPLED
        )


@pytest.mark.parametrize(
    ("change", "expected"),
    [
        # The parameter an operator raises while investigating brings the records back.
        (lambda t, s: t["Parameters"]["StorefrontSystemLogLevel"].update(Default="INFO"), (450, 0.0)),
        # In text format Lambda filters nothing: the level is ignored.
        (lambda t, s: s["LoggingConfig"].update(LogFormat="Text"), (450, 0.0)),
        (lambda t, s: s.pop("LoggingConfig"), (450, 0.0)),
        (lambda t, s: s.update(Tracing="Active"), (0, 0.05)),
        # Without a Tracing of its own the function inherits Globals' Active.
        (lambda t, s: s.pop("Tracing"), (0, 0.05)),
    ],
    ids=["system-level-info", "text-format", "no-logging-config", "tracing-active", "tracing-from-globals"],
)
def test_the_model_reads_the_storefront_settings_from_the_template(
    template: dict[str, Any], change: Any, expected: tuple[int, float]
) -> None:
    change(template, storefront(template))
    assert cost.function_observability(template, cost.STOREFRONT) == cost.Observability(*expected)


def test_the_storefront_settings_reach_the_dollars_of_both_routes(template: dict[str, Any]) -> None:
    """Given the saved capacity figures, restoring Lambda's records and traces on the storefront adds their price to
    every events and recommendation request: 450 bytes of logs and 5 % of a trace each."""
    deployed = cost.model(capacity(), learning_job(), LOG_BYTES, ACCESS_LOG_BYTES, cost.observability(template))
    storefront(template)["LoggingConfig"]["LogFormat"] = "Text"
    storefront(template)["Tracing"] = "Active"
    restored = cost.model(capacity(), learning_job(), LOG_BYTES, ACCESS_LOG_BYTES, cost.observability(template))

    logs = 450 / 1e9 * cost.PRICE["logs_gb"] * 1e6
    xray = 0.05 * cost.PRICE["xray_trace"] * 1e6
    pairs = [
        (deployed["recommendations_per_million"]["warm"], restored["recommendations_per_million"]["warm"]),
        (
            deployed["shops_per_month"]["large"]["events_per_million"],
            restored["shops_per_month"]["large"]["events_per_million"],
        ),
        (deployed["black_friday_day"]["events_per_million"], restored["black_friday_day"]["events_per_million"]),
    ]
    for now, before in pairs:
        assert before["logs"] - now["logs"] == pytest.approx(logs)
        assert before["xray"] - now["xray"] == pytest.approx(xray)
        assert before["total"] - now["total"] == pytest.approx(logs + xray)
    # Orders run on other functions: unchanged.
    assert restored["orders_per_thousand"] == deployed["orders_per_thousand"]


def test_the_large_shops_events_within_the_target_as_deployed(template: dict[str, Any]) -> None:
    """The verdict the benchmark gives, on the saved capacity figures and the template as it is."""
    figures = cost.model(capacity(), learning_job(), LOG_BYTES, ACCESS_LOG_BYTES, cost.observability(template))
    assert cost.verdicts(figures) == []


def test_a_shops_learning_is_priced_as_the_default_policy_learns_its_catalogue(template: dict[str, Any]) -> None:
    """The nightly learning a shop pays for is the measured night of its catalogue's size under the policy a shop
    is given by default (`context`), not another policy's or another size's; without that night there is no price."""

    def night(products: int, policy: str, run: float) -> dict[str, Any]:
        return {"products": products, "policy": policy, "rcu": 1.0, "wcu": 2.0, "dollars": {"run": run}}

    products = capacity()["config"]["products"]
    nights = {
        "figures": {
            "end_to_end": [
                night(products, "bayes", 0.001),
                night(products, "context", 0.003),
                night(10 * products, "context", 0.03),
            ]
        }
    }
    figures = cost.model(capacity(), nights, LOG_BYTES, ACCESS_LOG_BYTES, cost.observability(template))
    assert [shop["learning"] for shop in figures["shops_per_month"].values()] == pytest.approx([30 * 0.003] * 2)
    nights["figures"]["end_to_end"] = [night(products, "bayes", 0.001)]
    with pytest.raises(SystemExit, match="context"):
        cost.model(capacity(), nights, LOG_BYTES, ACCESS_LOG_BYTES, cost.observability(template))


def test_the_results_files_keep_the_prices_and_the_small_figures() -> None:
    """Results are rounded so that they diff well, never to nothing: a float under 1 keeps three significant digits
    (AWS's price of a write unit, $0.000000625, is not written as 0), one of 1 or more three decimals."""
    prices = rounded(dict(cost.PRICE))
    assert all(value > 0 for value in prices.values())
    assert prices["wcu"] == 6.25e-07
    assert prices["lambda_gb_second"] == pytest.approx(cost.PRICE["lambda_gb_second"], rel=5e-3)
    assert rounded([0.0023312, -0.00045678, 0.12345, 24066.4567, 0.0, float("nan")]) == [
        0.00233,
        -0.000457,
        0.123,
        24066.457,
        0.0,
        None,
    ]
