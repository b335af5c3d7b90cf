"""BackfillFunction: a newly installed shop's products (into the catalog) and recent orders (their baskets, then
similarity) from the Shopify Admin GraphQL API. Invoked with `{"shop": "<shop>.myshopify.com", "what":
"all" | "orders" | "products", "restart": false}`; the shop's offline access token is read from SSM.

A run stops a minute before the invocation's deadline with its cursor saved and answers `"complete": false`:
invoking it again resumes there. A failing Admin API fails the invocation, with the progress kept for the retry.
"""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.typing import LambdaContext

from reclift import config
from reclift.data.backfill import BackfillProgress, BackfillStore
from reclift.data.store import dynamo_store
from reclift.ids import shop_domain
from reclift.logic.backfill import parse_what, run_backfill
from reclift.observability import logger, metrics
from reclift.shopify_admin import AdminClient

STOP_BEFORE_DEADLINE_MS = 60_000


@logger.inject_lambda_context(clear_state=True)
@metrics.log_metrics
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    if not isinstance(event, dict) or not isinstance(event.get("shop"), str):
        raise ValueError('the event must be {"shop": "<shop>.myshopify.com", "what": "all" | "orders" | "products"}')
    shop = shop_domain(event["shop"])
    whats = parse_what(event.get("what", "all"))
    client = AdminClient(shop, config.shop_admin_token(shop))

    def report(progress: BackfillProgress) -> None:
        logger.info(
            "backfill page stored",
            extra={"what": progress.what, "pages": progress.pages, "stored": progress.stored},
        )

    result = run_backfill(
        shop,
        whats,
        client,
        BackfillStore(),
        dynamo_store(),
        restart=event.get("restart") is True,
        keep_going=lambda: context.get_remaining_time_in_millis() > STOP_BEFORE_DEADLINE_MS,
        on_progress=report,
    )
    metrics.add_metric(
        name="BackfillPages",
        unit=MetricUnit.Count,
        value=sum(result[what]["pages"] for what in whats if what in result),
    )
    logger.info("backfill finished" if result["complete"] else "backfill paused", extra={"result": result})
    return result
