"""`make smoke`'s synthetic order and options, without a stack: what attribution will read from the order."""

from __future__ import annotations

import argparse
from datetime import UTC, datetime
from decimal import Decimal

import pytest

from reclift.orders import parse_order
from reclift_local.smoke import UsageError, add_arguments, options_from, smoke_order

NOW = datetime(2026, 12, 2, 12, 0, tzinfo=UTC)


def test_the_order_carries_what_attribution_needs_and_no_customer() -> None:
    """Given a shop in euros, when smoke builds its order, then attribution reads one line of the recommended
    product at the given price in the shop's currency, through the visitor id and the rec_id, as a real order with
    no customer."""
    payload = smoke_order(
        order_id=9_123_456_789_012_345,
        product_id="8001",
        price=Decimal("2.50"),
        currency="EUR",
        visitor_id="smoke-v1",
        rec_id="l-abc",
        now=NOW,
    )

    order = parse_order(payload)

    assert order.order_id == "9123456789012345"
    assert order.created_at == NOW
    assert order.currency == "EUR"
    assert order.test is False
    assert order.customer_id is None
    assert order.visitor_id == "smoke-v1"
    assert [(line.product_id, line.rec_id, line.quantity) for line in order.lines] == [("8001", "l-abc", 1)]
    assert "USD" not in str(payload)
    assert payload["email"] is None
    assert payload["billing_address"] is None
    assert payload["tags"] == "reclift-smoke"


def parse(*argv: str) -> argparse.Namespace:
    parser = argparse.ArgumentParser()
    add_arguments(parser)
    return parser.parse_args(["--base-url", "https://x.execute-api.us-east-1.amazonaws.com", *argv])


def test_the_secret_and_key_come_only_from_the_environment() -> None:
    args = parse("--shop", "Demo.myshopify.com")

    with pytest.raises(UsageError, match="SHOPIFY_API_SECRET"):
        options_from(args, {"SHOPIFY_API_KEY": "k"})
    options = options_from(args, {"SHOPIFY_API_SECRET": "s3cret", "SHOPIFY_API_KEY": "k"})
    assert options.shop == "demo.myshopify.com"
    assert "s3cret" not in repr(options)


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--shop", "demo.example.com"], "--shop"),
        (["--shop", "demo.myshopify.com", "--product-id", "gid://shopify/Product/1"], "--product-id"),
    ],
)
def test_bad_options_are_usage_errors(argv: list[str], message: str) -> None:
    with pytest.raises(UsageError, match=message):
        options_from(parse(*argv), {"SHOPIFY_API_SECRET": "s", "SHOPIFY_API_KEY": "k"})


def test_the_price_is_a_positive_amount_in_cents() -> None:
    assert parse("--shop", "d.myshopify.com", "--price", "0.5").price == Decimal("0.50")
    with pytest.raises(SystemExit):
        parse("--shop", "d.myshopify.com", "--price", "0")
