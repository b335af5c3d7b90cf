"""AdminFunction: the merchant's embedded admin API, authenticated by Shopify session tokens."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from aws_lambda_powertools.event_handler import APIGatewayHttpResolver, Response
from aws_lambda_powertools.logging import correlation_paths
from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.typing import LambdaContext

from reclift import config
from reclift.admin_page import admin_page
from reclift.data.backfill import BackfillStore
from reclift.data.catalog import catalog_store
from reclift.data.day_totals import DayTotalsStore
from reclift.data.health import health_store
from reclift.data.installs import backfill_queue, install_registry, token_vault
from reclift.data.learning import LearningStore
from reclift.data.privacy import privacy_store
from reclift.data.store import StoreError, dynamo_store
from reclift.http import BadRequest, error_response, json_body
from reclift.logic.auth import bearer_token, session_caller
from reclift.logic.health import health_report
from reclift.logic.install import InstallFailed, InstallOutcome, ensure_installed, install_status, shopify_exchange
from reclift.logic.performance import performance_report
from reclift.logic.roi import ReportRangeError, report_range, roi_report
from reclift.observability import logger, metrics
from reclift.rules import RulesError, merge_rules
from reclift.settings import SettingsError, merge_settings
from reclift.signatures import SignatureError

app = APIGatewayHttpResolver()
PAGE = Path(__file__).resolve().parent / "page.html"


def _shop() -> str:
    """The caller's shop, from its session token; a shop not installed yet is installed first (token exchange,
    once), without holding up the request's own answer if Shopify cannot be reached."""
    return _caller(fresh=False)[0]


def _caller(*, fresh: bool) -> tuple[str, InstallOutcome]:
    headers = app.current_event.headers
    shop = session_caller(headers).shop
    try:
        outcome = ensure_installed(
            shop,
            bearer_token(headers),
            install_registry(),
            token_vault(),
            backfill_queue(),
            shopify_exchange,
            now=datetime.now(UTC),
            fresh=fresh,
        )
    except (InstallFailed, StoreError) as exc:
        logger.warning("the shop could not be installed", extra={"reason": str(exc)})
        return shop, InstallOutcome("failed", error="the installation could not be stored")
    if outcome.cycled:
        # A legacy or refused grant replaced by an expiring one (the shop was installed all along).
        metrics.add_metric(name="AccessGrantsCycled", unit=MetricUnit.Count, value=1)
        logger.info("access grant cycled")
    elif outcome.exchanged:
        metrics.add_metric(name="ShopsInstalled", unit=MetricUnit.Count, value=1)
        logger.info("shop installed", extra={"missing_scopes": sorted(outcome.missing_scopes)})
    elif outcome.attempted and outcome.error:
        metrics.add_metric(name="TokenExchangesFailed", unit=MetricUnit.Count, value=1)
        logger.warning("the token exchange failed", extra={"reason": outcome.error})
    return shop, outcome


@app.get("/admin/install")
def get_install() -> dict[str, Any]:
    """The installation and its backfill's progress (what the page shows until the backfill is complete). It reads
    the installation afresh, so a reinstall is noticed at once."""
    shop, outcome = _caller(fresh=True)
    return install_status(shop, outcome, install_registry(), BackfillStore())


@app.get("/")
@app.get("/admin")
def get_page() -> Response[str]:
    """The embedded page itself: the browser loads it without a token; its data calls carry one."""
    shop = app.current_event.get_query_string_value("shop", "") or ""
    page = admin_page(PAGE, api_key=config.required("SHOPIFY_API_KEY"), shop=shop.strip().lower())
    return Response(status_code=200, body=page.body, headers=page.headers)


@app.get("/admin/roi")
def get_roi() -> dict[str, Any]:
    shop = _shop()
    query = app.current_event.query_string_parameters or {}
    period = report_range(query.get("from"), query.get("to"), today=datetime.now(UTC).date())
    store = dynamo_store()
    visitors = store.arm_visitors(shop, period.first, period.last)
    return roi_report(
        shop,
        period,
        DayTotalsStore().totals(shop, period.first, period.last),
        currency=store.shop_currency(shop),
        arm_visitors=visitors.total,
        daily_arm_visitors=visitors.by_day,
        holdout_share=store.get_settings(shop).holdout_share,
    )


@app.get("/admin/settings")
def get_settings() -> dict[str, Any]:
    return dynamo_store().get_settings(_shop()).model_dump()


@app.put("/admin/settings")
def put_settings() -> dict[str, Any]:
    shop = _shop()
    store = dynamo_store()
    updated = merge_settings(store.get_settings(shop), json_body(app.current_event.raw_event))
    store.put_settings(shop, updated)
    return updated.model_dump()


@app.get("/admin/rules")
def get_rules() -> dict[str, Any]:
    return dynamo_store().get_rules(_shop()).model_dump()


@app.put("/admin/rules")
def put_rules() -> dict[str, Any]:
    """A partial object replaces the lists it names (`{"exclude": {"tags": [...]}}` the excluded tags alone)."""
    shop = _shop()
    store = dynamo_store()
    updated = merge_rules(store.get_rules(shop), json_body(app.current_event.raw_event))
    store.put_rules(shop, updated)
    return updated.model_dump()


@app.get("/admin/performance")
def get_performance() -> dict[str, Any]:
    shop = _shop()
    blacklisted = app.current_event.get_query_string_value("blacklisted", "") or ""
    if blacklisted not in ("", "true", "false"):
        raise BadRequest("blacklisted", "expected true or false")
    # Titles from the catalog, so the merchant sees products, not ids.
    return performance_report(
        shop,
        LearningStore(),
        only_blacklisted=blacklisted == "true",
        catalog=catalog_store(),
        min_impressions=dynamo_store().get_settings(shop).min_impressions,
    )


@app.get("/admin/health")
def get_health() -> dict[str, Any]:
    return health_report(_shop(), health_store())


@app.get("/admin/privacy/requests/<request_id>")
def get_data_request(request_id: str) -> dict[str, Any]:
    found = privacy_store().data_request(_shop(), request_id)
    if found is None:
        raise BadRequest("request_id", f"no data request {request_id[:40]!r} for this shop", status=404)
    return found


@app.exception_handler(SignatureError)
def unauthorized(exc: SignatureError) -> Response[str]:
    metrics.add_metric(name="AdminRequestsRejected", unit=MetricUnit.Count, value=1)
    if exc.mismatched:
        metrics.add_metric(name="SignaturesMismatched", unit=MetricUnit.Count, value=1)
    logger.warning("admin request rejected", extra={"reason": exc.reason})
    # App Bridge fetches a fresh session token and retries when it sees this header.
    return error_response(401, "invalid session token", **{"X-Shopify-Retry-Invalid-Session-Request": "1"})


@app.exception_handler(BadRequest)
def bad_request(exc: BadRequest) -> Response[str]:
    return error_response(exc.status, exc.message, exc.field)


@app.exception_handler(SettingsError)
def bad_settings(exc: SettingsError) -> Response[str]:
    return error_response(400, exc.message, exc.field)


@app.exception_handler(RulesError)
def bad_rules(exc: RulesError) -> Response[str]:
    return error_response(400, exc.message, exc.field)


@app.exception_handler(ReportRangeError)
def bad_range(exc: ReportRangeError) -> Response[str]:
    return error_response(400, exc.message, exc.field)


@logger.inject_lambda_context(correlation_id_path=correlation_paths.API_GATEWAY_HTTP, clear_state=True)
@metrics.log_metrics
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    return app.resolve(event, context)
