"""Backfills from the Shopify Admin GraphQL API for a newly installed shop: products into the catalog, and recent
orders' baskets into the orders table (then co-purchase similarity).

Each backfill pages through its connection with cursors and saves the cursor and its counts after every stored
page, so a run that fails (the API keeps failing, the Lambda runs out of time) resumes at the next page: nothing
stored is fetched again and nothing fetched is lost. Writes are the webhooks' own, so a replay changes nothing
and a newer webhook always wins.

Not done: Shopify's bulk operations (`bulkOperationRunQuery`, polled, then a JSONL download) would fetch a very
large shop's history in one job; the paginated queries here fetch it page by page, resumably, within the rate limit.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Iterable
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from typing import Any, Literal, Protocol

from reclift.catalog import CatalogPayloadError, Listing, parse_graphql_product
from reclift.data.backfill import BackfillProgress
from reclift.orders import Basket, OrderPayloadError, parse_graphql_order
from reclift.shopify_admin import AdminApiError, AdminClient, Page, connection_page

What = Literal["orders", "products"]
DEFAULT_ORDER_DAYS = 180
# Page sizes keep each query's requested cost under Shopify's 1,000-point ceiling for one query.
ORDERS_PER_PAGE = 10
LINES_PER_ORDER = 40
PRODUCTS_PER_PAGE = 10
VARIANTS_PER_PRODUCT = 40
FOLLOW_UP_PAGE = 100
SIMILARITY_MODULE = "reclift.logic.similarity"

PAGE_INFO = "pageInfo { hasNextPage endCursor }"
ORDER_LINE_FIELDS = "product { id }"
VARIANT_FIELDS = "price inventoryQuantity inventoryPolicy inventoryItem { tracked }"

ORDERS_QUERY = f"""
query BackfillOrders($first: Int!, $after: String, $query: String, $lines: Int!) {{
  orders(first: $first, after: $after, query: $query, sortKey: CREATED_AT) {{
    {PAGE_INFO}
    nodes {{
      id createdAt test currencyCode
      lineItems(first: $lines) {{ {PAGE_INFO} nodes {{ {ORDER_LINE_FIELDS} }} }}
    }}
  }}
}}"""

ORDER_LINES_QUERY = f"""
query BackfillOrderLines($id: ID!, $after: String, $lines: Int!) {{
  order(id: $id) {{ lineItems(first: $lines, after: $after) {{ {PAGE_INFO} nodes {{ {ORDER_LINE_FIELDS} }} }} }}
}}"""

PRODUCTS_QUERY = f"""
query BackfillProducts($first: Int!, $after: String, $variants: Int!) {{
  products(first: $first, after: $after, sortKey: ID) {{
    {PAGE_INFO}
    nodes {{
      id title handle status updatedAt featuredImage {{ url }}
      variants(first: $variants) {{ {PAGE_INFO} nodes {{ {VARIANT_FIELDS} }} }}
    }}
  }}
}}"""

PRODUCT_VARIANTS_QUERY = f"""
query BackfillProductVariants($id: ID!, $after: String, $variants: Int!) {{
  product(id: $id) {{ variants(first: $variants, after: $after) {{ {PAGE_INFO} nodes {{ {VARIANT_FIELDS} }} }} }}
}}"""


COUNT_QUERIES = {
    "orders": "query BackfillOrdersCount($query: String) { ordersCount(query: $query, limit: null) { count } }",
    "products": "query BackfillProductsCount { productsCount(limit: null) { count } }",
}


def order_search(now: datetime, days: int) -> str:
    """The orders backfill's search filter: orders created in the last `days` days."""
    return f"created_at:>={(now - timedelta(days=days)).date().isoformat()}"


def expected_count(client: AdminClient, what: What, *, now: datetime, days: int = DEFAULT_ORDER_DAYS) -> int | None:
    """How many orders or products the backfill will fetch (for a progress bar); None when the API does not say."""
    variables = {"query": order_search(now, days)} if what == "orders" else {}
    data = client.execute(COUNT_QUERIES[what], variables)
    count = data.get(f"{what}Count")
    value = count.get("count") if isinstance(count, dict) else None
    return value if isinstance(value, int) and not isinstance(value, bool) else None


class BackfillStores(Protocol):
    """What a backfill writes: its progress, catalog listings and baskets (the webhooks' own writes)."""

    def backfill_progress(self, shop: str, what: str) -> BackfillProgress | None: ...
    def save_backfill_progress(self, progress: BackfillProgress) -> None: ...
    def save_backfilled_basket(self, shop: str, basket: Basket) -> bool: ...
    def save_listing(self, shop: str, listing: Listing) -> bool: ...


@dataclass(frozen=True)
class BackfillOutcome:
    what: str
    complete: bool
    resumed: bool
    pages: int
    fetched: int
    stored: int
    skipped: int  # nodes that could not be parsed (counted, not fatal)

    def as_dict(self) -> dict[str, Any]:
        return dict(vars(self))


ProgressListener = Callable[[BackfillProgress], None]


def _rest_of(client: AdminClient, query: str, node_id: str, path: tuple[str, ...], first: Page) -> list[dict[str, Any]]:
    """The nodes of a nested connection beyond its first page (an order's lines, a product's variants)."""
    nodes: list[dict[str, Any]] = []
    page = first
    while page.has_next_page and page.end_cursor:
        variables = {"id": node_id, "after": page.end_cursor, "lines": FOLLOW_UP_PAGE, "variants": FOLLOW_UP_PAGE}
        page = client.page(query, variables, path)
        nodes += page.nodes
    return nodes


def _nested_first_page(node: dict[str, Any], key: str) -> Page:
    try:
        return connection_page(node, (key,))
    except AdminApiError:
        return Page(nodes=[], end_cursor=None, has_next_page=False)


def _store_products(client: AdminClient, shop: str, stores: BackfillStores, nodes: Iterable[dict[str, Any]]) -> int:
    stored = 0
    for node in nodes:
        extra = _rest_of(
            client,
            PRODUCT_VARIANTS_QUERY,
            str(node.get("id")),
            ("product", "variants"),
            _nested_first_page(node, "variants"),
        )
        try:
            listing = parse_graphql_product(node, extra)
        except CatalogPayloadError:
            continue
        stores.save_listing(shop, listing)
        stored += 1
    return stored


def _store_orders(client: AdminClient, shop: str, stores: BackfillStores, nodes: Iterable[dict[str, Any]]) -> int:
    stored = 0
    for node in nodes:
        extra = _rest_of(
            client,
            ORDER_LINES_QUERY,
            str(node.get("id")),
            ("order", "lineItems"),
            _nested_first_page(node, "lineItems"),
        )
        try:
            basket = parse_graphql_order(node, extra)
        except OrderPayloadError:
            continue
        stores.save_backfilled_basket(shop, basket)
        stored += 1
    return stored


def _start(
    stores: BackfillStores, shop: str, what: str, query: str | None, now: datetime, restart: bool
) -> tuple[BackfillProgress, bool]:
    """The run's progress: the stored one when it can be resumed (same query, not done), else a fresh one."""
    saved = stores.backfill_progress(shop, what)
    if saved is not None and not restart and saved.status != "done" and saved.search == query:
        return replace(saved, status="running", error=None, updated_at=now), True
    fresh = BackfillProgress(
        shop=shop,
        what=what,
        status="running",
        search=query,
        cursor=None,
        pages=0,
        fetched=0,
        stored=0,
        started_at=now,
        updated_at=now,
    )
    return fresh, False


def backfill(
    what: What,
    shop: str,
    client: AdminClient,
    stores: BackfillStores,
    *,
    now: datetime | None = None,
    days: int = DEFAULT_ORDER_DAYS,
    restart: bool = False,
    keep_going: Callable[[], bool] = lambda: True,
    on_progress: ProgressListener | None = None,
) -> BackfillOutcome:
    """Fetch and store one connection page by page, saving the cursor after each page. Raises AdminApiError (the
    progress then says `failed`, with the error) when the API keeps failing; stops early, resumably, as soon as
    `keep_going()` is false."""
    started = now or datetime.now(UTC)
    if what == "orders":
        search: str | None = order_search(started, days)
        query, path = ORDERS_QUERY, ("orders",)
        variables: dict[str, Any] = {"first": ORDERS_PER_PAGE, "lines": LINES_PER_ORDER, "query": search}
    else:
        search = None
        query, path = PRODUCTS_QUERY, ("products",)
        variables = {"first": PRODUCTS_PER_PAGE, "variants": VARIANTS_PER_PRODUCT}
    progress, resumed = _start(stores, shop, what, search, started, restart)
    if resumed and progress.search is not None:
        variables["query"] = progress.search
    stores.save_backfill_progress(progress)
    skipped = 0
    try:
        while keep_going():
            page = client.page(query, {**variables, "after": progress.cursor}, path)
            store = _store_orders if what == "orders" else _store_products
            stored = store(client, shop, stores, page.nodes)
            skipped += len(page.nodes) - stored
            done = not page.has_next_page or page.end_cursor is None
            progress = replace(
                progress,
                status="done" if done else "running",
                cursor=page.end_cursor or progress.cursor,
                pages=progress.pages + 1,
                fetched=progress.fetched + len(page.nodes),
                stored=progress.stored + stored,
                updated_at=datetime.now(UTC),
            )
            stores.save_backfill_progress(progress)
            if on_progress is not None:
                on_progress(progress)
            if done:
                break
    except AdminApiError as exc:
        stores.save_backfill_progress(replace(progress, status="failed", error=str(exc), updated_at=datetime.now(UTC)))
        raise
    return BackfillOutcome(
        what=what,
        complete=progress.status == "done",
        resumed=resumed,
        pages=progress.pages,
        fetched=progress.fetched,
        stored=progress.stored,
        skipped=skipped,
    )


def compute_similarity_after_backfill(shop: str, now: datetime) -> Any:
    """The one call point from a completed orders backfill to the co-purchase similarity job: it runs
    `reclift.logic.similarity.compute_shop(shop, now)` when that module exists, and does nothing (returns None)
    while it does not."""
    try:
        module = importlib.import_module(SIMILARITY_MODULE)
    except ModuleNotFoundError as exc:
        if exc.name == SIMILARITY_MODULE:
            return None
        raise
    compute = getattr(module, "compute_shop", None)
    return compute(shop, now) if callable(compute) else None


class ShopRegistry(Protocol):
    def register_shop(self, shop: str, *, currency: str | None = None) -> None: ...


def parse_what(value: object) -> tuple[What, ...]:
    """`orders`, `products` or `all` (products first: the catalog is what ranking needs soonest)."""
    choices: dict[str, tuple[What, ...]] = {
        "orders": ("orders",),
        "products": ("products",),
        "all": ("products", "orders"),
    }
    if not isinstance(value, str) or value.strip().lower() not in choices:
        raise ValueError(f"what must be one of orders, products, all; not {str(value)[:40]!r}")
    return choices[value.strip().lower()]


def run_backfill(
    shop: str,
    whats: Iterable[What],
    client: AdminClient,
    stores: BackfillStores,
    registry: ShopRegistry,
    *,
    now: datetime | None = None,
    days: int = DEFAULT_ORDER_DAYS,
    restart: bool = False,
    keep_going: Callable[[], bool] = lambda: True,
    on_progress: ProgressListener | None = None,
) -> dict[str, Any]:
    """The backfills in order, stopping at the first that could not finish; after a complete orders backfill, the
    shop's similarity. The shop is registered first, so the scheduled jobs fan out to it from now on."""
    started = now or datetime.now(UTC)
    registry.register_shop(shop)
    result: dict[str, Any] = {"shop": shop}
    for what in whats:
        outcome = backfill(
            what,
            shop,
            client,
            stores,
            now=started,
            days=days,
            restart=restart,
            keep_going=keep_going,
            on_progress=on_progress,
        )
        result[what] = outcome.as_dict()
        if not outcome.complete:
            result["complete"] = False
            return result
        if what == "orders":
            computed = compute_similarity_after_backfill(shop, started)
            result["similarity"] = "not available" if computed is None else "computed"
    result["complete"] = True
    result["admin_requests"] = client.requests
    result["throttled"] = client.throttled
    return result
