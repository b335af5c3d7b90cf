"""`make events` writes a fresh set of sample events, made for the current time, that the verifiers accept now;
`--fixed` and `--check` keep the committed, reproducible set the tests rely on."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from reclift.signatures import SignatureError, verify_app_proxy, verify_session_token
from reclift.webhooks import delivery_time_problem
from reclift_local.sample_events import CATALOG_BODIES, EVENTS_DIR, FIXED_NOW, build_all, main
from reclift_local.sign import DEV_API_KEY, DEV_API_SECRET

NOW = datetime(2027, 3, 14, 9, 26, 53, 589793, tzinfo=UTC)
DEFAULT_SKEW_SECONDS = 90


def written(events_dir: Path, name: str) -> dict[str, Any]:
    event: dict[str, Any] = json.loads((events_dir / name).read_text())
    return event


def header(event: dict[str, Any], name: str) -> str:
    value: str = event["headers"][name]
    return value


def test_given_the_committed_set_when_make_events_runs_then_every_sample_is_rewritten_for_now(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["--fixed"], events_dir=tmp_path) == 0
    before = {path.name: path.read_text() for path in tmp_path.glob("*.json")}
    capsys.readouterr()

    assert main([], clock=lambda: NOW, events_dir=tmp_path) == 0

    unchanged = {name for name, text in before.items() if (tmp_path / name).read_text() == text}
    assert unchanged == {"backfill-shop.json"}  # the one sample without a time in it
    total = len(build_all(NOW))
    assert f"wrote {total - 1} of {total} sample events" in capsys.readouterr().out


def test_given_a_fresh_set_then_its_app_proxy_samples_pass_the_default_timestamp_check(tmp_path: Path) -> None:
    main([], clock=lambda: NOW, events_dir=tmp_path)
    moment = NOW.timestamp() + 60  # invoked a minute after make events

    for name in ("storefront-post-events.json", "storefront-get-recommendations.json"):
        query = written(tmp_path, name)["rawQueryString"]
        verified = verify_app_proxy(query, [DEV_API_SECRET], now=moment, max_skew_seconds=DEFAULT_SKEW_SECONDS)
        assert verified.shop == "reclift-demo.myshopify.com"


def test_given_the_committed_set_then_its_app_proxy_samples_fail_the_default_timestamp_check(
    tmp_path: Path,
) -> None:
    main(["--fixed"], events_dir=tmp_path)
    query = written(tmp_path, "storefront-post-events.json")["rawQueryString"]

    with pytest.raises(SignatureError, match="stale timestamp"):
        verify_app_proxy(query, [DEV_API_SECRET], now=NOW.timestamp(), max_skew_seconds=DEFAULT_SKEW_SECONDS)


def test_given_a_fresh_set_then_its_webhooks_and_session_tokens_are_current(tmp_path: Path) -> None:
    main([], clock=lambda: NOW, events_dir=tmp_path)

    for name in (
        "webhook-orders-create.json",
        "webhook-products-update.json",
        "webhook-products-create-ipod-nano.json",
    ):
        triggered = header(written(tmp_path, name), "x-shopify-triggered-at")
        assert delivery_time_problem(triggered, now=NOW + timedelta(hours=1), max_age_seconds=172800) is None
    bearer = header(written(tmp_path, "admin-get-roi.json"), "authorization").removeprefix("Bearer ")
    claims = verify_session_token(bearer, [DEV_API_SECRET], api_key=DEV_API_KEY, now=NOW.timestamp() + 30)
    assert claims.shop == "reclift-demo.myshopify.com"


def test_given_the_catalog_samples_then_each_is_a_signed_products_create_of_a_product_the_samples_name() -> None:
    events = build_all(FIXED_NOW)
    order = json.loads((EVENTS_DIR / "bodies" / "orders-create.json").read_text())
    bought = {str(line["product_id"]) for line in order["line_items"]}
    catalog = {handle: events[f"webhook-products-create-{handle}.json"] for handle in CATALOG_BODIES}

    products = {str(json.loads(event["body"])["id"]) for event in catalog.values()}
    assert all(header(event, "x-shopify-topic") == "products/create" for event in catalog.values())
    assert bought <= products
    assert all(json.loads(event["body"])["title"] for event in catalog.values())


def test_given_a_fresh_set_in_events_then_the_check_fails_and_names_the_way_back(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    main([], clock=lambda: NOW, events_dir=tmp_path)
    capsys.readouterr()

    assert main(["--check"], events_dir=tmp_path) == 1
    assert "--fixed" in capsys.readouterr().err
    main(["--fixed"], events_dir=tmp_path)
    assert main(["--check"], events_dir=tmp_path) == 0


def test_the_committed_events_directory_is_the_fixed_set() -> None:
    assert main(["--check"]) == 0
