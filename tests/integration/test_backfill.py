"""The Admin API client and the backfills against the fake Admin API (a real HTTP server): cursors, the cost-based
rate limit, retries, a failure mid-run and its resume; BackfillFunction and `make backfill` writing into the emulator.
"""

from __future__ import annotations

import json
import math
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from reclift.data.backfill import BackfillStore
from reclift.data.store import landing_of
from reclift.logic import backfill as backfills
from reclift.logic.backfill import ORDERS_PER_PAGE, PRODUCTS_PER_PAGE
from reclift.orders import landing_handle
from reclift.shopify_admin import AdminAccessDenied, AdminApiError, AdminClient, RetryPolicy
from reclift_local import cli
from reclift_local.fake_admin import FakeAdminApi, FakeProduct, FakeVariant, seeded_catalog
from reclift_local.worker import function_env
from tests.support.aws import EmulatedAws, forget_execution_environment, process_queue
from tests.support.shopify import new_shop, order_payload, webhook_event

TOKEN = "shpat_test_token"
PRODUCTS_QUERY = (
    "query P($first: Int!, $after: String, $variants: Int!) { products(first: $first, after: $after) { x } }"
)
TOKEN_PREFIX = "/reclift/admin-tokens/"  # the template parameter's default


@pytest.fixture
def fake() -> Iterator[FakeAdminApi]:
    orders, products = seeded_catalog(orders=45, products=23, seed=7)
    # A fast restore rate keeps the tests' throttle waits short; the arithmetic is the same as Shopify's.
    with FakeAdminApi("fake.myshopify.com", TOKEN, orders=orders, products=products, restore_rate=20000.0) as api:
        yield api


def client_for(fake: FakeAdminApi, waits: list[float] | None = None, **kwargs: Any) -> AdminClient:
    def sleep(seconds: float) -> None:
        if waits is not None:
            waits.append(seconds)

    return AdminClient(fake.shop, fake.token, base_url=fake.url, sleep=sleep, jitter=lambda: 1.0, **kwargs)


VARIABLES = {"first": 5, "variants": 3}


# ---------------------------------------------------------------- the client against the fake
def test_given_throttled_answers_then_the_client_waits_by_the_restore_rate_and_gets_the_page(
    fake: FakeAdminApi,
) -> None:
    waits: list[float] = []

    def sleep(seconds: float) -> None:  # really waits: the fake's bucket refills with time, as Shopify's does
        waits.append(seconds)
        time.sleep(seconds)

    client = AdminClient(fake.shop, fake.token, base_url=fake.url, sleep=sleep)
    fake.throttle_next(2)

    data = client.execute(PRODUCTS_QUERY, VARIABLES)

    assert len(data["products"]["nodes"]) == 5
    assert client.throttled == 2
    requested = 2 + 5 * (2 + 2 + 2 * 3)
    # The bucket was empty: each wait is the requested cost at the restore rate (plus a small margin).
    assert waits[:2] == [pytest.approx(requested / fake.restore_rate + 0.05, abs=0.01)] * 2
    assert [r.outcome for r in fake.requests] == ["throttled", "throttled", "ok"]


def test_given_a_drained_bucket_then_the_client_paces_itself_before_the_next_request(fake: FakeAdminApi) -> None:
    fake.restore_rate = 1000.0
    client = AdminClient(fake.shop, fake.token, base_url=fake.url)
    client.execute(PRODUCTS_QUERY, VARIABLES)
    fake.drain(fake.maximum_available)
    client.execute(PRODUCTS_QUERY, VARIABLES)  # throttled once: the client learns the bucket is empty
    throttled = client.throttled

    client.execute(PRODUCTS_QUERY, VARIABLES)

    assert client.throttled == throttled  # the third request waited instead of being throttled


def test_given_server_errors_then_the_request_is_retried_with_growing_backoff(fake: FakeAdminApi) -> None:
    waits: list[float] = []
    fake.fail_next(3, status=502)

    data = client_for(fake, waits).execute(PRODUCTS_QUERY, VARIABLES)

    assert data["products"]["nodes"]
    assert waits == [0.5, 1.0, 2.0]


def test_given_an_api_that_keeps_failing_then_a_clear_error_after_the_retries(fake: FakeAdminApi) -> None:
    fake.fail_next(100, status=503)
    client = client_for(fake, retry=RetryPolicy(attempts=4))

    with pytest.raises(AdminApiError, match=r"failed 4 times in a row .*HTTP 503") as caught:
        client.execute(PRODUCTS_QUERY, VARIABLES)

    assert TOKEN not in str(caught.value)
    assert len(fake.requests) == 4


def test_given_a_network_failure_then_it_is_retried_and_reported(fake: FakeAdminApi) -> None:
    url = fake.url
    fake.stop()
    client = AdminClient(fake.shop, TOKEN, base_url=url, sleep=lambda s: None, retry=RetryPolicy(attempts=2))
    with pytest.raises(AdminApiError, match="network error"):
        client.execute(PRODUCTS_QUERY, VARIABLES)


def test_given_a_wrong_token_then_access_is_denied_at_once(fake: FakeAdminApi) -> None:
    client = AdminClient(fake.shop, "shpat_wrong", base_url=fake.url, sleep=lambda s: None)
    with pytest.raises(AdminAccessDenied, match="401"):
        client.execute(PRODUCTS_QUERY, VARIABLES)
    assert len(fake.requests) == 1


def test_given_cursors_then_pages_walk_the_whole_connection_once(fake: FakeAdminApi) -> None:
    pages = list(client_for(fake).pages(PRODUCTS_QUERY, VARIABLES, ("products",)))
    numbers = [node["id"] for page in pages for node in page.nodes]
    assert len(pages) == math.ceil(len(fake.products) / 5)
    assert numbers == [f"gid://shopify/Product/{p.number}" for p in fake.products]


# ---------------------------------------------------------------- the backfills into the emulator
@pytest.fixture
def admin(aws: EmulatedAws, fake: FakeAdminApi, monkeypatch: pytest.MonkeyPatch) -> Iterator[FakeAdminApi]:
    """The fake serves a new shop, whose token is stored in SSM as on AWS."""
    fake.shop = new_shop()
    ssm = aws.client("ssm")
    ssm.put_parameter(Name=f"{TOKEN_PREFIX}{fake.shop}", Value=TOKEN, Type="SecureString")
    monkeypatch.setenv("RECLIFT_ADMIN_API_URL", fake.url)
    yield fake
    ssm.delete_parameter(Name=f"{TOKEN_PREFIX}{fake.shop}")


def catalog_items(aws: EmulatedAws, shop: str) -> dict[str, dict[str, Any]]:
    response = aws.client("dynamodb").query(
        TableName=aws.resource("CatalogTable"),
        KeyConditionExpression="pk = :shop",
        ExpressionAttributeValues={":shop": {"S": shop}},
    )
    return {item["sk"]["S"]: item for item in response["Items"]}


def baskets(aws: EmulatedAws, shop: str) -> dict[str, dict[str, Any]]:
    """The baskets the similarity job finds (the by_shop_date_v2 index under `{shop}#basket`), each as its order item
    holds it in the table (the index projects only what the job reads, not `backfilled`)."""
    found: dict[str, dict[str, Any]] = {}
    client, table = aws.client("dynamodb"), aws.resource("OrdersTable")
    for page in client.get_paginator("query").paginate(
        TableName=table,
        IndexName="by_shop_date_v2",
        KeyConditionExpression="gsi1pk = :pk",
        ExpressionAttributeValues={":pk": {"S": f"{shop}#basket"}},
    ):
        for entry in page["Items"]:
            key = {"pk": entry["pk"], "sk": entry["sk"]}
            found[entry["order_id"]["S"]] = client.get_item(TableName=table, Key=key, ConsistentRead=True)["Item"]
    return found


def progress_of(aws: EmulatedAws, shop: str, what: str) -> dict[str, Any]:
    item = aws.client("dynamodb").get_item(
        TableName=aws.resource("ShopsTable"), Key={"pk": {"S": f"{shop}#backfill#{what}"}}, ConsistentRead=True
    )
    found: dict[str, Any] = item["Item"]
    return found


def sellable(variant: FakeVariant) -> bool:
    return variant.inventory_quantity > 0 or not variant.tracked or variant.policy == "CONTINUE"


def test_given_a_shop_when_its_products_are_backfilled_with_throttling_then_every_product_is_in_the_catalog(
    aws: EmulatedAws, admin: FakeAdminApi
) -> None:
    admin.throttle_next(3)

    result = aws.invoke("BackfillFunction", {"shop": admin.shop, "what": "products"})

    assert result["complete"] is True
    assert result["throttled"] >= 3
    assert result["products"]["stored"] == len(admin.products)
    items = catalog_items(aws, admin.shop)
    assert set(items) == {str(p.number) for p in admin.products}
    big = next(p for p in admin.products if len(p.variants) == 130)  # variants beyond the first page count too
    prices = [Decimal(v.price) for v in big.variants if sellable(v)] or [Decimal(v.price) for v in big.variants]
    assert Decimal(items[str(big.number)]["price"]["N"]) == min(prices)
    for fake_product in admin.products:
        item = items[str(fake_product.number)]
        assert item["status"]["S"] == fake_product.status.lower()
        assert item["available"]["BOOL"] == any(sellable(v) for v in fake_product.variants)
        assert (item["product_type"]["S"], item["vendor"]["S"]) == (
            fake_product.product_type.lower(),
            fake_product.vendor.lower(),
        )
        assert set(item["tags"]["SS"]) == {tag.lower() for tag in fake_product.tags}
    assert progress_of(aws, admin.shop, "products")["status"]["S"] == "done"


def test_given_a_newer_webhook_listing_when_the_backfill_brings_an_older_one_then_the_webhook_wins(
    aws: EmulatedAws, admin: FakeAdminApi, sqs: Any, webhook_queue: str
) -> None:
    first: FakeProduct = admin.products[0]
    sample = json.loads(
        (Path(__file__).resolve().parents[1] / "fixtures" / "shopify" / "products_update_sample.json").read_text()
    )
    sample.update(
        id=first.number, title="From the webhook", updated_at=(first.updated_at + timedelta(hours=1)).isoformat()
    )
    aws.invoke("WebhookFunction", webhook_event(admin.shop, json.dumps(sample).encode(), topic="products/update"))
    process_queue(aws, sqs, webhook_queue)

    aws.invoke("BackfillFunction", {"shop": admin.shop, "what": "products"})

    assert catalog_items(aws, admin.shop)[str(first.number)]["title"]["S"] == "From the webhook"


def test_given_a_failure_mid_run_when_the_backfill_is_run_again_then_it_resumes_and_nothing_is_fetched_twice_or_lost(
    aws: EmulatedAws, admin: FakeAdminApi
) -> None:
    window = [o for o in admin.orders if o.created_at >= datetime.now(UTC) - timedelta(days=180)]
    admin.fail_next(50, status=503, after=3)  # fails from the fourth answer on, beyond the retries

    with pytest.raises(AdminApiError, match="HTTP 503"):
        aws.invoke("BackfillFunction", {"shop": admin.shop, "what": "orders"})

    failed = progress_of(aws, admin.shop, "orders")
    assert failed["status"]["S"] == "failed"
    assert "HTTP 503" in failed["error"]["S"]
    kept = baskets(aws, admin.shop)
    assert 0 < len(kept) == int(failed["stored"]["N"]) < len(window)

    admin.fail_next(0)
    result = aws.invoke("BackfillFunction", {"shop": admin.shop, "what": "orders"})

    assert result["complete"] is True
    assert result["orders"]["resumed"] is True
    # The completed backfill computed the shop's similarity at once, over every stored basket but test orders'.
    assert result["similarity"]["baskets"] == len([o for o in window if not o.test and any(o.product_numbers)])
    stored = baskets(aws, admin.shop)
    assert set(stored) == {str(order.number) for order in window}
    for order in window:
        expected = list(dict.fromkeys(str(number) for number in order.product_numbers if number is not None))
        assert [value["S"] for value in stored[str(order.number)]["basket"]["L"]] == expected
        assert stored[str(order.number)]["backfilled"]["BOOL"] is True
        # the page its buyer landed on, where it was a product's, as the similarity job reads it with the basket
        assert landing_of(stored[str(order.number)]["gsi1sk"]["S"]) == landing_handle(order.landing_page)
    assert any(order.landing_page for order in window)
    answered = [r.variables.get("after") for r in admin.requests if r.root == "orders" and r.outcome == "ok"]
    assert len(answered) == len(set(answered)) == math.ceil(len(window) / ORDERS_PER_PAGE)
    assert any(r.root == "order" and r.outcome == "ok" for r in admin.requests)  # the 120-line order's later lines


def test_given_a_backfilled_basket_when_the_orders_webhook_arrives_then_attribution_records_the_order(
    aws: EmulatedAws, admin: FakeAdminApi, sqs: Any, webhook_queue: str
) -> None:
    aws.invoke("BackfillFunction", {"shop": admin.shop, "what": "orders"})
    order = max(admin.orders, key=lambda o: o.created_at)
    payload = order_payload(
        order_id=order.number, created_at=order.created_at, lines=[{"product_id": 1000, "price": "12.00"}]
    )
    aws.invoke("WebhookFunction", webhook_event(admin.shop, json.dumps(payload).encode()))

    assert process_queue(aws, sqs, webhook_queue) == {"batchItemFailures": []}

    record = baskets(aws, admin.shop)[str(order.number)]
    assert "backfilled" not in record  # replaced by the webhook's record
    assert record["attributed_revenue"]["N"] == "0"
    assert [value["S"] for value in record["basket"]["L"]] == ["1000"]


def test_given_the_backfill_command_then_it_fills_the_running_stacks_tables_with_a_progress_line(
    aws: EmulatedAws,
    admin: FakeAdminApi,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    state = tmp_path / "stack.json"
    state.write_text(
        json.dumps(
            {
                "template": str(Path(__file__).resolve().parents[2] / "template.yaml"),
                "region": "us-east-1",
                "moto_endpoint": aws.endpoint,
                "dynamodb_endpoint": aws.stack.dynamodb_endpoint or aws.endpoint,
                "resources": aws.stack.resources(),
            }
        )
    )
    monkeypatch.setenv("RECLIFT_ADMIN_TOKEN", TOKEN)
    forget_execution_environment()  # the command is a process of its own: nothing cached from another emulator
    with pytest.raises(SystemExit) as exited:
        cli.main(
            [
                "backfill",
                "--shop",
                admin.shop,
                "--what",
                "products",
                "--state-file",
                str(state),
                "--admin-url",
                admin.url,
            ]
        )

    assert exited.value.code == 0
    out, err = capsys.readouterr()
    assert json.loads(out)["products"]["stored"] == len(admin.products)
    pages = math.ceil(len(admin.products) / PRODUCTS_PER_PAGE)
    assert f"products [{'#' * 30}] 100% {len(admin.products)}/{len(admin.products)}" in err
    assert f"{pages} pages" in err
    assert TOKEN not in out + err
    assert len(catalog_items(aws, admin.shop)) == len(admin.products)


# ---------------------------------------------------------------- bulk operations
@pytest.fixture
def backfill_env(aws: EmulatedAws) -> Iterator[None]:
    """The BackfillFunction's environment in this process, for calling the backfill directly."""
    with function_env(aws.environment("BackfillFunction")):
        forget_execution_environment()
        yield
    forget_execution_environment()


def test_given_a_bulk_products_backfill_then_the_polled_operations_result_fills_the_catalog(
    aws: EmulatedAws, admin: FakeAdminApi, backfill_env: None
) -> None:
    admin.bulk_polls = 2

    outcome = backfills.backfill(
        "products", admin.shop, client_for(admin), BackfillStore(), bulk=True, bulk_poll_seconds=0
    )

    assert (outcome.complete, outcome.bulk, outcome.stored) == (True, True, len(admin.products))
    items = catalog_items(aws, admin.shop)
    big = next(p for p in admin.products if len(p.variants) == 130)
    prices = [Decimal(v.price) for v in big.variants if sellable(v)] or [Decimal(v.price) for v in big.variants]
    assert Decimal(items[str(big.number)]["price"]["N"]) == min(prices)
    assert [r.root for r in admin.requests] == ["bulkOperationRunQuery", "node", "node", "node"]


def test_given_a_bulk_orders_backfill_that_stops_midway_then_the_resume_stores_only_the_rest(
    aws: EmulatedAws, admin: FakeAdminApi, backfill_env: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    window = [o for o in admin.orders if o.created_at >= datetime.now(UTC) - timedelta(days=180)]
    monkeypatch.setattr(backfills, "BULK_SAVE_EVERY", 10)
    calls = iter(range(1000))
    stop_after_first_save = lambda: next(calls) < 2  # noqa: E731 - two polls, then stop once 10 are stored

    first = backfills.backfill(
        "orders",
        admin.shop,
        client_for(admin),
        BackfillStore(),
        bulk=True,
        bulk_poll_seconds=0,
        keep_going=stop_after_first_save,
    )
    assert (first.complete, first.stored) == (False, 10)

    admin.fail_next(1, status=503, after=1)  # after one poll, the download fails: the run fails, progress kept
    with pytest.raises(AdminApiError, match="503"):
        backfills.backfill("orders", admin.shop, client_for(admin), BackfillStore(), bulk_poll_seconds=0)
    resumed = backfills.backfill("orders", admin.shop, client_for(admin), BackfillStore(), bulk_poll_seconds=0)

    assert (resumed.complete, resumed.resumed, resumed.bulk) == (True, True, True)
    assert (resumed.fetched, resumed.stored) == (len(window), len(window))  # none stored twice, none lost
    assert set(baskets(aws, admin.shop)) == {str(order.number) for order in window}
    assert [r.root for r in admin.requests].count("bulkOperationRunQuery") == 1  # the same operation, found again
    assert admin.downloads == 3


@pytest.mark.parametrize("bulk", [False, True], ids=["pages", "bulk"])
def test_given_a_step_after_the_fetching_then_the_backfill_is_done_only_once_that_step_has_run(
    aws: EmulatedAws, admin: FakeAdminApi, backfill_env: None, bulk: bool
) -> None:
    """The orders backfill's last step is the similarity it feeds: until that is stored, the progress the admin page
    reads is not "done" (it says so when the storefront serves the backfilled co-purchases), and a step that failed
    runs again on the resume."""
    store = BackfillStore()
    seen: list[str | None] = []

    def failing() -> None:
        progress = store.backfill_progress(admin.shop, "orders")
        seen.append(progress.status if progress else None)
        raise RuntimeError("the step failed")

    with pytest.raises(RuntimeError, match="the step failed"):
        backfills.backfill("orders", admin.shop, client_for(admin), store, bulk=bulk, bulk_poll_seconds=0, then=failing)
    left = store.backfill_progress(admin.shop, "orders")
    assert seen == ["running"]  # everything fetched, and not yet done while the step runs
    assert left is not None
    assert left.status == "running"

    def step() -> None:
        progress = store.backfill_progress(admin.shop, "orders")
        seen.append(progress.status if progress else None)

    resumed = backfills.backfill("orders", admin.shop, client_for(admin), store, bulk_poll_seconds=0, then=step)

    assert (resumed.complete, resumed.resumed, resumed.fetched) == (True, True, left.fetched)  # nothing fetched twice
    assert seen == ["running", "running"]
    done = store.backfill_progress(admin.shop, "orders")
    assert done is not None
    assert done.status == "done"


def test_given_a_shop_with_no_orders_or_products_then_the_backfill_completes_with_nothing_stored(
    aws: EmulatedAws, admin: FakeAdminApi
) -> None:
    admin.orders, admin.products = [], []

    result = aws.invoke("BackfillFunction", {"shop": admin.shop, "what": "all"})

    assert result["complete"] is True
    assert (result["products"]["stored"], result["orders"]["stored"]) == (0, 0)
    assert baskets(aws, admin.shop) == {}
    assert catalog_items(aws, admin.shop) == {}
