"""The installation against the emulator and the fake Admin API: AdminFunction exchanges a new shop's session token
once, stores the offline token in SSM and queues the backfill; BackfillFunction works that queue; `app/uninstalled`
through the webhook path stops the storefront and the scheduled jobs and deletes the token; a reinstall resumes."""

from __future__ import annotations

import inspect
import json
import threading
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from aws_lambda_powertools.utilities.batch.exceptions import BatchProcessingError

from reclift.data.installs import backfill_queue, install_registry, token_vault
from reclift.data.learning import LearningStore
from reclift.logic.admin_tokens import TokenUnavailable
from reclift.logic.install import ensure_installed, forget_cached, shopify_exchange
from reclift.offline_grants import EXPIRING, OfflineGrant, parse_grant
from reclift.shopify_admin import AdminAccessDenied, AdminClient
from reclift_local.fake_admin import FakeAdminApi, seeded_catalog
from reclift_local.pollers import sqs_record
from reclift_local.worker import function_env
from tests.support.aws import EmulatedAws, process_queue, queued
from tests.support.calls import ApiCall, ApiCallCounter
from tests.support.shopify import (
    admin_event,
    fixture,
    new_shop,
    proxy_event,
    proxy_query,
    session_token,
    webhook_event,
)

PREFIX = "/reclift/admin-tokens/"
REGION = "us-east-1"


@pytest.fixture
def shopify(aws: EmulatedAws, monkeypatch: pytest.MonkeyPatch) -> Iterator[FakeAdminApi]:
    """A new shop in the fake Admin API (the exchange and the GraphQL API both), its queues empty."""
    orders, products = seeded_catalog(orders=12, products=6, seed=3)
    with FakeAdminApi(new_shop(), "shpat_first", orders=orders, products=products, restore_rate=20000.0) as api:
        monkeypatch.setenv("RECLIFT_ADMIN_API_URL", api.url)
        aws.empty_queues("BackfillQueue", "WebhookQueue")
        yield api
        aws.empty_queues("BackfillQueue", "WebhookQueue")


def body_of(response: dict[str, Any]) -> Any:
    return json.loads(response["body"])


def install_route(aws: EmulatedAws, shop: str) -> dict[str, Any]:
    response = aws.invoke("AdminFunction", admin_event("GET", "/admin/install", shop))
    assert response["statusCode"] == 200, response
    answer: dict[str, Any] = body_of(response)
    return answer


def stored_grant(aws: EmulatedAws, shop: str) -> OfflineGrant | None:
    ssm = aws.client("ssm")
    try:
        parameter = ssm.get_parameter(Name=f"{PREFIX}{shop}", WithDecryption=True)["Parameter"]
    except ssm.exceptions.ParameterNotFound:
        return None
    assert parameter["Type"] == "SecureString"
    return parse_grant(parameter["Value"])


def stored_token(aws: EmulatedAws, shop: str) -> str | None:
    grant = stored_grant(aws, shop)
    return grant.access_token if grant is not None else None


def shop_item(aws: EmulatedAws, shop: str) -> dict[str, Any]:
    found = aws.client("dynamodb").get_item(
        TableName=aws.resource("ShopsTable"), Key={"pk": {"S": shop}}, ConsistentRead=True
    )
    item: dict[str, Any] = found.get("Item", {})
    return item


def backfill_jobs(aws: EmulatedAws) -> list[dict[str, Any]]:
    return [json.loads(message["Body"]) for message in queued(aws.client("sqs"), aws.resource("BackfillQueue"))]


def uninstall(aws: EmulatedAws, shop: str, triggered_at: datetime | None = None) -> dict[str, Any]:
    """`app/uninstalled` as Shopify delivers it: signed, queued by WebhookFunction, worked by AttributionFunction."""
    body = json.dumps(fixture("shopify/app_uninstalled_sample.json")).encode()
    event = webhook_event(shop, body, topic="app/uninstalled", triggered_at=triggered_at)
    accepted = aws.invoke("WebhookFunction", event)
    assert accepted["statusCode"] == 200, accepted
    return process_queue(aws, aws.client("sqs"), aws.resource("WebhookQueue"))


def test_given_a_new_shop_when_its_first_session_token_arrives_then_it_is_installed_and_its_backfill_queued(
    aws: EmulatedAws, shopify: FakeAdminApi
) -> None:
    status = install_route(aws, shopify.shop)

    assert (status["installed"], status["state"]) == (True, "installed")
    assert status["scopes"] == ["read_orders", "read_products"]
    assert status["missing_scopes"] == []
    assert status["backfill"]["complete"] is False
    grant = stored_grant(aws, shopify.shop)
    assert grant is not None
    assert (grant.kind, grant.scopes) == (EXPIRING, frozenset({"read_orders", "read_products"}))
    assert shopify.accepts(grant.access_token)
    item = shop_item(aws, shopify.shop)
    assert item["token_kind"]["S"] == "expiring"
    assert "token_refresh_expires_at" in item
    assert item["install_state"]["S"] == "installed"
    assert set(item["scopes"]["SS"]) == {"read_orders", "read_products"}
    assert {"installed_at", "first_seen"} <= set(item)  # registered: the scheduled jobs fan out to it
    assert item["shop_id"]["S"] == str(shopify.shop_id)  # read with the new token: what privacy topics must name
    assert "install_claim" not in item
    assert backfill_jobs(aws) == [{"shop": shopify.shop, "what": "all", "restart": False}]
    assert [record.status for record in shopify.exchanges] == [200]
    # Later requests of the page exchange nothing more.
    roi = aws.invoke("AdminFunction", admin_event("GET", "/admin/roi", shopify.shop))
    assert roi["statusCode"] == 200
    assert install_route(aws, shopify.shop)["installed"] is True
    assert len(shopify.exchanges) == 1
    assert backfill_jobs(aws) == []


def test_given_an_installed_shop_then_its_admin_requests_cost_no_ssm_call_and_no_installation_read(
    aws: EmulatedAws, shopify: FakeAdminApi
) -> None:
    """The common path: the installation check of an installed shop is remembered per execution environment, so
    the page's data calls make exactly the requests they made before installations existed."""
    install_route(aws, shopify.shop)
    counter = ApiCallCounter(names={aws.resource("ShopsTable"): "ShopsTable"})

    with counter.counting() as block:
        for _ in range(5):
            assert aws.invoke("AdminFunction", admin_event("GET", "/admin/settings", shopify.shop))["statusCode"] == 200

    assert block.calls[ApiCall("dynamodb", "GetItem", "ShopsTable")] == 5  # the settings themselves
    assert block.calls[ApiCall("dynamodb", "BatchGetItem", "ShopsTable")] == 0  # no installation read
    assert not [call for call in block.calls if call.service == "ssm"]
    assert len(shopify.exchanges) == 1


def test_given_concurrent_first_requests_then_the_session_token_is_exchanged_once(
    aws: EmulatedAws, shopify: FakeAdminApi
) -> None:
    """Eight requests of a new shop at once (the page's first calls), each with its own session token: one
    exchange, one token stored, one backfill queued."""
    outcomes: list[str] = []
    start = threading.Barrier(8)

    def first_request() -> None:
        start.wait()
        outcome = ensure_installed(
            shopify.shop,
            session_token(shopify.shop),
            install_registry(),
            token_vault(),
            backfill_queue(),
            shopify_exchange,
            now=datetime.now(UTC),
        )
        outcomes.append(outcome.state)

    with function_env(aws.environment("AdminFunction")):
        threads = [threading.Thread(target=first_request) for _ in range(8)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()

    assert len(shopify.exchanges) == 1
    # One installed it; the others found it being installed, or (coming late) installed already.
    assert len(outcomes) == 8
    assert set(outcomes) <= {"installed", "installing"}
    assert "installed" in outcomes
    assert len(backfill_jobs(aws)) == 1
    assert shopify.accepts(stored_token(aws, shopify.shop))


def test_given_a_subject_token_shopify_refuses_then_nothing_is_stored_and_the_admin_routes_still_answer(
    aws: EmulatedAws, shopify: FakeAdminApi
) -> None:
    shop = new_shop()  # a session token of a shop the fake Admin API does not serve: Shopify refuses the subject

    status = install_route(aws, shop)

    assert (status["installed"], status["state"], status["error"]) == (False, "failed", "invalid_subject_token")
    assert [(record.status, record.outcome) for record in shopify.exchanges] == [(400, "denied")]
    assert stored_token(aws, shop) is None
    assert backfill_jobs(aws) == []
    assert shop_item(aws, shop)["install_state"]["S"] == "failed"
    assert "first_seen" not in shop_item(aws, shop)  # not registered for the scheduled jobs
    # The merchant's data routes do not depend on the offline token, and the failed exchange waits for its retry.
    assert (
        aws.invoke("AdminFunction", admin_event("PUT", "/admin/settings", shop, {"policy": "seed"}))["statusCode"]
        == 200
    )
    assert len(shopify.exchanges) == 1
    # A shop known otherwise (here by its settings) stays in the scheduled jobs while its installation is retried.
    with function_env(aws.environment("DailyLearningFunction")):
        assert shop in set(LearningStore().shops())


def test_given_the_backfill_queued_by_an_install_then_the_function_works_it_and_a_paused_run_queues_the_rest(
    aws: EmulatedAws, shopify: FakeAdminApi, monkeypatch: pytest.MonkeyPatch
) -> None:
    install_route(aws, shopify.shop)
    [job] = queued(aws.client("sqs"), aws.resource("BackfillQueue"))
    arn = f"arn:aws:sqs:{REGION}:123456789012:queue"
    with pytest.raises(ValueError, match="shop"):  # loads the handler, as a warm execution environment has it
        aws.invoke("BackfillFunction", {"shop": "not a shop"})
    module_globals = inspect.unwrap(aws.handlers["BackfillFunction"]).__globals__
    # Out of time at once: the run pauses before its first page.
    monkeypatch.setitem(module_globals, "STOP_BEFORE_DEADLINE_MS", 10**9)
    paused = aws.invoke("BackfillFunction", {"Records": [sqs_record(job, arn, REGION)]})
    monkeypatch.undo()
    monkeypatch.setenv("RECLIFT_ADMIN_API_URL", shopify.url)
    assert paused == {"batchItemFailures": []}
    [continuation] = queued(aws.client("sqs"), aws.resource("BackfillQueue"))
    assert json.loads(continuation["Body"])["shop"] == shopify.shop

    done = aws.invoke("BackfillFunction", {"Records": [sqs_record(continuation, arn, REGION)]})

    assert done == {"batchItemFailures": []}
    assert backfill_jobs(aws) == []
    status = install_route(aws, shopify.shop)
    assert status["backfill"]["complete"] is True
    assert status["backfill"]["products"]["stored"] == len(shopify.products)
    assert status["backfill"]["orders"]["stored"] > 0


def test_given_app_uninstalled_then_the_shop_is_not_served_nor_scheduled_its_token_deleted_and_a_reinstall_resumes(
    aws: EmulatedAws, shopify: FakeAdminApi
) -> None:
    shop = shopify.shop
    install_route(aws, shop)
    backfill_jobs(aws)
    recommendations = proxy_event("GET", "/apps/proxy/recommendations", proxy_query(shop, extra={"product_id": "1"}))
    assert aws.invoke("StorefrontFunction", recommendations)["statusCode"] == 200

    result = uninstall(aws, shop)

    assert result == {"batchItemFailures": []}
    assert stored_token(aws, shop) is None
    assert shop_item(aws, shop)["install_state"]["S"] == "uninstalled"
    refused = aws.invoke("StorefrontFunction", recommendations)
    assert (refused["statusCode"], body_of(refused)["field"]) == (403, "shop")
    forget_cached(shop)  # another execution environment, which has not seen the shop served a moment ago
    events = json.dumps({"events": [{"type": "view", "visitor_id": "v-1", "product_id": "1"}]}).encode()
    tracked = aws.invoke("StorefrontFunction", proxy_event("POST", "/apps/proxy/events", proxy_query(shop), events))
    assert tracked["statusCode"] == 403
    with function_env(aws.environment("DailyLearningFunction")):
        assert shop not in set(LearningStore().shops())
    # A redelivery changes nothing more.
    assert uninstall(aws, shop) == {"batchItemFailures": []}

    shopify.uninstall()  # Shopify revoked the token; a reinstall's exchange issues another
    status = install_route(aws, shop)

    assert (status["installed"], status["state"]) == (True, "installed")
    token = stored_token(aws, shop)
    assert token is not None
    assert shopify.accepts(token)
    assert backfill_jobs(aws) == [{"shop": shop, "what": "all", "restart": False}]
    assert aws.invoke("StorefrontFunction", recommendations)["statusCode"] == 200
    with function_env(aws.environment("DailyLearningFunction")):
        assert shop in set(LearningStore().shops())


# ---------------------------------------------------------------- expiring offline tokens
def test_given_a_backfill_running_across_the_access_tokens_expiry_then_it_refreshes_once_and_completes(
    aws: EmulatedAws, shopify: FakeAdminApi
) -> None:
    """An hour passes mid-run: the Admin API answers 401, the backfill refreshes once, stores the rotated grant and
    retries the page."""
    shop = shopify.shop
    install_route(aws, shop)
    backfill_jobs(aws)
    first = stored_grant(aws, shop)
    assert first is not None
    shopify.expire_access_tokens_after(2)

    result = aws.invoke("BackfillFunction", {"shop": shop, "what": "all"})

    assert result["complete"] is True
    assert [record.status for record in shopify.refreshes] == [200]
    assert [record.outcome for record in shopify.requests].count("denied") == 1
    grant = stored_grant(aws, shop)
    assert grant is not None
    assert grant.refresh_token != first.refresh_token
    assert shopify.accepts(grant.access_token)
    assert not shopify.accepts(first.access_token)
    assert result["products"]["stored"] == len(shopify.products)


def test_given_a_refresh_shopify_refuses_then_the_shop_is_marked_and_its_next_admin_request_exchanges_again(
    aws: EmulatedAws, shopify: FakeAdminApi
) -> None:
    shop = shopify.shop
    install_route(aws, shop)
    backfill_jobs(aws)
    shopify.revoke_refresh_tokens()
    shopify.expire_access_tokens_after(0)

    with pytest.raises(TokenUnavailable):
        aws.invoke("BackfillFunction", {"shop": shop, "what": "all"})

    assert [record.status for record in shopify.refreshes] == [400]
    assert shop_item(aws, shop)["token_kind"]["S"] == "refresh_failed"
    assert shop_item(aws, shop)["install_state"]["S"] == "installed"  # still served meanwhile
    forget_cached(shop)

    status = install_route(aws, shop)  # the merchant opens the app

    assert (status["installed"], status["state"]) == (True, "installed")
    assert len(shopify.exchanges) == 2
    assert shop_item(aws, shop)["token_kind"]["S"] == "expiring"
    assert shopify.accepts(stored_token(aws, shop))
    assert backfill_jobs(aws) == []  # the failed run's message is retried by its queue, not queued again
    assert aws.invoke("BackfillFunction", {"shop": shop, "what": "all"})["complete"] is True


def test_given_a_shop_installed_with_a_legacy_non_expiring_token_then_its_next_admin_visit_cycles_it(
    aws: EmulatedAws, shopify: FakeAdminApi
) -> None:
    """An installation from before expiring tokens: a bare token in SSM, no token kind on the item. The backfill
    still works with it; the next admin visit replaces it by an expiring grant, the shop installed throughout."""
    shop = shopify.shop
    install_route(aws, shop)
    backfill_jobs(aws)
    installed_at = shop_item(aws, shop)["installed_at"]
    aws.client("ssm").put_parameter(Name=f"{PREFIX}{shop}", Value=shopify.token, Type="SecureString", Overwrite=True)
    aws.client("dynamodb").update_item(
        TableName=aws.resource("ShopsTable"),
        Key={"pk": {"S": shop}},
        UpdateExpression="REMOVE token_kind, token_refresh_expires_at",
    )
    forget_cached(shop)
    assert aws.invoke("BackfillFunction", {"shop": shop, "what": "products"})["complete"] is True
    assert shopify.refreshes == []

    status = install_route(aws, shop)

    assert (status["installed"], status["state"]) == (True, "installed")
    assert len(shopify.exchanges) == 2
    grant = stored_grant(aws, shop)
    assert grant is not None
    assert grant.kind == EXPIRING
    item = shop_item(aws, shop)
    assert (item["token_kind"]["S"], item["installed_at"]) == ("expiring", installed_at)
    assert backfill_jobs(aws) == []
    install_route(aws, shop)
    assert len(shopify.exchanges) == 2  # cycled once


def test_given_a_late_app_uninstalled_triggered_before_a_reinstall_then_the_shop_stays_installed(
    aws: EmulatedAws, shopify: FakeAdminApi
) -> None:
    """A failed `app/uninstalled` delivery retried after the merchant reinstalled: it changes nothing."""
    shop = shopify.shop
    before = datetime.now(UTC) - timedelta(minutes=10)
    install_route(aws, shop)
    backfill_jobs(aws)
    token = stored_token(aws, shop)

    assert uninstall(aws, shop, triggered_at=before) == {"batchItemFailures": []}

    assert shop_item(aws, shop)["install_state"]["S"] == "installed"
    assert stored_token(aws, shop) == token
    forget_cached(shop)
    recommendations = proxy_event("GET", "/apps/proxy/recommendations", proxy_query(shop, extra={"product_id": "1"}))
    assert aws.invoke("StorefrontFunction", recommendations)["statusCode"] == 200
    # An uninstallation triggered after the installation still uninstalls.
    assert uninstall(aws, shop) == {"batchItemFailures": []}
    assert shop_item(aws, shop)["install_state"]["S"] == "uninstalled"
    assert stored_token(aws, shop) is None


@pytest.mark.parametrize(("named_id", "acted_on"), [(None, True), ("same", True), ("other", False)])
def test_given_an_installed_shop_when_a_privacy_topic_names_a_shop_id_then_it_must_be_the_installed_shops(
    aws: EmulatedAws, shopify: FakeAdminApi, named_id: str | None, acted_on: bool
) -> None:
    """The shop id read at installation binds the privacy topics too: a body whose `shop_id` is another shop's is
    unprocessable (it waits in the DLQ), even when its `shop_domain` is this shop's."""
    install_route(aws, shopify.shop)
    request = fixture("shopify/customers_data_request_sample.json")
    request["shop_domain"] = shopify.shop
    if named_id is None:
        del request["shop_id"]
    else:
        request["shop_id"] = shopify.shop_id if named_id == "same" else shopify.shop_id + 1
    accepted = aws.invoke(
        "WebhookFunction", webhook_event(shopify.shop, json.dumps(request).encode(), topic="customers/data_request")
    )
    assert accepted["statusCode"] == 200

    if acted_on:
        assert process_queue(aws, aws.client("sqs"), aws.resource("WebhookQueue")) == {"batchItemFailures": []}
    else:
        with pytest.raises(BatchProcessingError):  # its only record failed: it stays on the queue, then the DLQ
            process_queue(aws, aws.client("sqs"), aws.resource("WebhookQueue"))

    export = aws.invoke("AdminFunction", admin_event("GET", "/admin/privacy/requests/9999", shopify.shop))
    assert export["statusCode"] == (200 if acted_on else 404)


def test_the_admin_client_renews_a_refused_token_once_per_request_and_then_gives_up(shopify: FakeAdminApi) -> None:
    """A renewed token still refused (401) is not renewed again in a loop: the request fails as denied."""

    class Renewals:
        def __init__(self) -> None:
            self.renewed = 0

        def access_token(self) -> str:
            return "shpat_expired"

        def renewed_access_token(self) -> str:
            self.renewed += 1
            return "shpat_still_refused"

    renewals = Renewals()
    client = AdminClient(shopify.shop, "", base_url=shopify.url, tokens=renewals, sleep=lambda seconds: None)

    with pytest.raises(AdminAccessDenied):
        client.execute("query { productsCount { count } }")

    assert renewals.renewed == 1
    assert [record.status for record in shopify.requests] == [401, 401]
