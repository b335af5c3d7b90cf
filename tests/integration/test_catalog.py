"""The catalog through the signed webhook path (WebhookFunction → queue → AttributionFunction → CatalogTable), in and
out of order, with bad input; read back as the serving path will read it (one BatchGetItem with `catalog_keys`)."""

from __future__ import annotations

import copy
import json
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from aws_lambda_powertools.utilities.batch.exceptions import BatchProcessingError

from reclift.catalog import Listing
from reclift.data.catalog import catalog_keys, listings_from_items
from tests.support.aws import EmulatedAws, process_queue
from tests.support.shopify import fresh_sample, new_shop, webhook_event

SAMPLE = json.loads(
    (Path(__file__).resolve().parents[1] / "fixtures" / "shopify" / "products_update_sample.json").read_text()
)
PRODUCT = "788032119674292922"


def product(updated_at: datetime, **fields: Any) -> dict[str, Any]:
    payload: dict[str, Any] = copy.deepcopy(SAMPLE)
    payload["updated_at"] = updated_at.isoformat()
    payload.update(fields)
    return payload


def deliver(aws: EmulatedAws, shop: str, topic: str, payload: Any) -> None:
    response = aws.invoke("WebhookFunction", webhook_event(shop, json.dumps(payload).encode(), topic=topic))
    assert response["statusCode"] == 200, response


def catalog(aws: EmulatedAws, shop: str, product_ids: list[str]) -> dict[str, Listing]:
    """What the recommendation path will read: one BatchGetItem of the shop's products."""
    table = aws.resource("CatalogTable")
    response = aws.client("dynamodb").batch_get_item(
        RequestItems={table: {"Keys": catalog_keys(shop, product_ids), "ConsistentRead": True}}
    )
    return listings_from_items(response["Responses"][table])


T0 = datetime(2026, 11, 26, 9, 0, tzinfo=UTC)


def test_given_a_product_created_then_updated_when_processed_then_the_catalog_has_the_latest_listing(
    aws: EmulatedAws, sqs: Any, webhook_queue: str
) -> None:
    shop = new_shop()
    deliver(aws, shop, "products/create", product(T0, title="First title"))
    deliver(aws, shop, "products/update", product(T0 + timedelta(minutes=5)))

    assert process_queue(aws, sqs, webhook_queue) == {"batchItemFailures": []}

    listing = catalog(aws, shop, [PRODUCT])[PRODUCT]
    assert listing.recommendable
    assert listing.render_fields() == {
        "title": "Example T-Shirt",
        "url": "/products/example-t-shirt",
        "price": "19.99",
        "image": "https://cdn.shopify.com/s/files/1/0005/4838/0009/products/example-t-shirt.jpg",
    }


def test_given_an_update_older_than_the_stored_one_when_it_arrives_late_then_it_changes_nothing(
    aws: EmulatedAws, sqs: Any, webhook_queue: str
) -> None:
    shop = new_shop()
    deliver(aws, shop, "products/update", product(T0 + timedelta(minutes=10), status="draft"))
    process_queue(aws, sqs, webhook_queue)
    deliver(aws, shop, "products/update", product(T0, status="active", title="Stale"))

    assert process_queue(aws, sqs, webhook_queue) == {"batchItemFailures": []}

    listing = catalog(aws, shop, [PRODUCT])[PRODUCT]
    assert (listing.title, listing.recommendable) == ("Example T-Shirt", False)
    assert listing.updated_at == T0 + timedelta(minutes=10)


def test_given_a_sold_out_update_then_the_product_is_no_longer_recommendable_and_keeps_its_price(
    aws: EmulatedAws, sqs: Any, webhook_queue: str
) -> None:
    shop = new_shop()
    deliver(aws, shop, "products/update", product(T0))
    sold_out = product(T0 + timedelta(minutes=1))
    for variant in sold_out["variants"]:
        variant["inventory_quantity"] = 0
    deliver(aws, shop, "products/update", sold_out)

    process_queue(aws, sqs, webhook_queue)

    listing = catalog(aws, shop, [PRODUCT])[PRODUCT]
    assert (listing.available, listing.recommendable, listing.price) == (False, False, Decimal("17.50"))


def test_given_a_delete_then_a_late_update_from_before_it_then_the_tombstone_wins(
    aws: EmulatedAws, sqs: Any, webhook_queue: str
) -> None:
    shop = new_shop()
    deliver(aws, shop, "products/update", product(T0))
    deliver(aws, shop, "products/delete", {"id": int(PRODUCT)})
    process_queue(aws, sqs, webhook_queue)
    deliver(aws, shop, "products/update", product(T0 + timedelta(seconds=30)))  # sent before the deletion

    assert process_queue(aws, sqs, webhook_queue) == {"batchItemFailures": []}

    listing = catalog(aws, shop, [PRODUCT])[PRODUCT]
    assert listing.deleted
    assert not listing.recommendable


def test_given_bad_products_and_a_delete_of_one_never_seen_then_the_batch_succeeds_and_each_is_stored_sensibly(
    aws: EmulatedAws, sqs: Any, webhook_queue: str
) -> None:
    shop = new_shop()
    many = [
        dict(SAMPLE["variants"][0], id=index, price=f"{50 + index}.00", inventory_quantity=0) for index in range(300)
    ]
    many[250]["inventory_quantity"] = 4
    deliver(aws, shop, "products/create", product(T0, id=1, variants=[]))
    deliver(aws, shop, "products/create", product(T0, id=2, variants=[dict(SAMPLE["variants"][0], price="0.00")]))
    deliver(aws, shop, "products/create", product(T0, id=3, image=None, images=[]))
    deliver(aws, shop, "products/create", product(T0, id=4, variants=many))
    deliver(aws, shop, "products/delete", {"id": 999})

    assert process_queue(aws, sqs, webhook_queue) == {"batchItemFailures": []}

    found = catalog(aws, shop, ["1", "2", "3", "4", "999"])
    assert (found["1"].available, found["1"].price) == (False, None)
    assert (found["2"].recommendable, found["2"].price) == (True, None)  # valued at the shop's median by ranking
    assert "image" not in found["3"].render_fields()
    assert found["3"].recommendable
    assert found["4"].price == Decimal("300.00")
    assert found["999"].deleted


def test_given_a_product_without_an_id_beside_good_ones_then_only_it_fails_and_stays_on_the_queue(
    aws: EmulatedAws, sqs: Any, webhook_queue: str
) -> None:
    shop = new_shop()
    deliver(aws, shop, "products/update", product(T0))
    deliver(aws, shop, "products/update", {"title": "no id"})

    result = process_queue(aws, sqs, webhook_queue)

    assert len(result["batchItemFailures"]) == 1
    assert PRODUCT in catalog(aws, shop, [PRODUCT])


def test_given_only_an_unprocessable_product_then_the_whole_batch_fails(
    aws: EmulatedAws, sqs: Any, webhook_queue: str
) -> None:
    deliver(aws, new_shop(), "products/delete", {"id": "not-a-number"})
    with pytest.raises(BatchProcessingError):
        process_queue(aws, sqs, webhook_queue)


def test_given_the_sample_product_events_then_the_webhook_queues_it_and_the_worker_stores_it(
    aws: EmulatedAws, webhook_queue: str
) -> None:
    events = Path(__file__).resolve().parents[2] / "events"
    webhook = fresh_sample("webhook-products-update.json")  # as `make events` makes it now: a fresh trigger time
    batch = json.loads((events / "attribution-sqs-products-update.json").read_text())

    assert aws.invoke("WebhookFunction", webhook)["statusCode"] == 200
    assert aws.invoke("AttributionFunction", batch) == {"batchItemFailures": []}
    assert catalog(aws, "reclift-demo.myshopify.com", [PRODUCT])[PRODUCT].title == "Example T-Shirt"
