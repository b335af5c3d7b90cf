"""StorefrontFunction: the widget's endpoints behind Shopify's app proxy (signed query, fresh timestamp)."""

from __future__ import annotations

import random
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from functools import cache
from typing import Any

from aws_lambda_powertools.event_handler import APIGatewayHttpResolver, Response
from aws_lambda_powertools.logging import correlation_paths
from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.typing import LambdaContext

from reclift.data.health import served_tally
from reclift.data.installs import install_registry
from reclift.data.serving import serving_reader
from reclift.data.store import StoreError, dynamo_store
from reclift.http import BadRequest, error_response, json_body
from reclift.logic.auth import app_proxy_caller, server_rec_ids
from reclift.logic.install import ShopNotInstalled, require_serving
from reclift.logic.recommendations import parse_query, recommend
from reclift.logic.tracking import track_events
from reclift.observability import logger, metrics
from reclift.signatures import SignatureError
from reclift.tracking import EventBatchError

app = APIGatewayHttpResolver()


@app.post("/apps/proxy/events")
def post_events() -> dict[str, int]:
    caller = app_proxy_caller(app.current_event.raw_query_string)
    require_serving(caller.shop, install_registry())
    body = json_body(app.current_event.raw_event)
    result = track_events(
        caller.shop,
        caller.logged_in_customer_id,
        body,
        dynamo_store(),
        now=datetime.now(UTC),
        rec_ids=server_rec_ids(),
    )
    metrics.add_metric(name="EventsTracked", unit=MetricUnit.Count, value=result.received)
    metrics.add_metric(name="EventsIgnored", unit=MetricUnit.Count, value=result.ignored)
    metrics.add_metric(name="Impressions", unit=MetricUnit.Count, value=result.impressions)
    metrics.add_metric(name="Clicks", unit=MetricUnit.Count, value=result.clicks)
    return result.response()


@cache
def _alongside() -> ThreadPoolExecutor:
    """One thread for the served tally's write, which runs while the recommendation reads, not after them."""
    return ThreadPoolExecutor(max_workers=1, thread_name_prefix="served-tally")


@app.get("/apps/proxy/recommendations")
def get_recommendations() -> dict[str, Any]:
    caller = app_proxy_caller(app.current_event.raw_query_string)
    query = parse_query(dict(caller.params))
    # The shop's served tally (the health check's "nothing served in 24 h") is written at most once a minute; that
    # write overlaps the request's own two round trips instead of adding a third, and is taken back if the request
    # fails.
    tally, now = served_tally(), datetime.now(UTC)
    counted = _alongside().submit(tally.record, caller.shop, now)
    try:
        result = recommend(
            caller.shop,
            caller.logged_in_customer_id,
            query,
            serving_reader(),
            random.Random(),  # noqa: S311 - exploration, not security
            rec_ids=server_rec_ids(),
            now=now,
        )
    except Exception:
        tally.retract(caller.shop, now)
        raise
    finally:
        try:
            counted.result()
        except StoreError:
            logger.warning("the served recommendation could not be counted for its shop")
    metrics.add_metric(name="RecommendationsServed", unit=MetricUnit.Count, value=1)
    metrics.add_metric(name="RecommendedProducts", unit=MetricUnit.Count, value=len(result["products"]))
    return result


@app.exception_handler(SignatureError)
def unauthorized(exc: SignatureError) -> Response[str]:
    metrics.add_metric(name="ProxyRequestsRejected", unit=MetricUnit.Count, value=1)
    if exc.mismatched:  # what ProxySignatureMismatchAlarm reads
        metrics.add_metric(name="SignaturesMismatched", unit=MetricUnit.Count, value=1)
    logger.warning("app proxy request rejected", extra={"reason": exc.reason})
    return error_response(401, "invalid app proxy signature")


@app.exception_handler(ShopNotInstalled)
def not_installed(exc: ShopNotInstalled) -> Response[str]:
    # Shopify stops proxying an uninstalled app's storefront requests; one that still arrives is answered clearly.
    metrics.add_metric(name="ProxyRequestsNotInstalled", unit=MetricUnit.Count, value=1)
    return error_response(403, "reclift is not installed on this shop", "shop")


@app.exception_handler(BadRequest)
def bad_request(exc: BadRequest) -> Response[str]:
    metrics.add_metric(name="ProxyRequestsInvalid", unit=MetricUnit.Count, value=1)
    return error_response(exc.status, exc.message, exc.field)


@app.exception_handler(EventBatchError)
def bad_events(exc: EventBatchError) -> Response[str]:
    metrics.add_metric(name="ProxyRequestsInvalid", unit=MetricUnit.Count, value=1)
    return error_response(400, exc.message, exc.field)


@logger.inject_lambda_context(correlation_id_path=correlation_paths.API_GATEWAY_HTTP, clear_state=True)
@metrics.log_metrics
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    return app.resolve(event, context)
