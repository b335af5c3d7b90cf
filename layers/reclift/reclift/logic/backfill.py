"""Backfills from the Shopify Admin GraphQL API for a newly installed shop: products into the catalog, and recent
orders' baskets into the orders table (then co-purchase similarity).

Each backfill pages through its connection with cursors and saves the cursor and its counts after every stored
page, so a run that fails (the API keeps failing, the Lambda runs out of time) resumes at the next page: nothing
stored is fetched again and nothing fetched is lost. Writes are the webhooks' own, so a replay changes nothing
and a newer webhook always wins.

A shop with more than `BULK_ABOVE` orders or products is fetched with a bulk operation instead: one
`bulkOperationRunQuery`, polled until it completes, then its JSONL result streamed (children follow their parent,
each with `__parentId`). Its id is kept as the cursor and the lines stored are counted, so a resume polls the same
operation and skips what was stored.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from typing import Any, Literal, Protocol

from reclift.catalog import CatalogPayloadError, Listing, parse_graphql_product
from reclift.data.backfill import BackfillProgress
from reclift.orders import Basket, OrderPayloadError, parse_graphql_order
from reclift.shopify_admin import (
    AdminApiError,
    AdminClient,
    Page,
    bulk_lines,
    connection_page,
    start_bulk_query,
    wait_for_bulk,
)

What = Literal["orders", "products"]
DEFAULT_ORDER_DAYS = 180
# Page sizes keep each query's requested cost under Shopify's 1,000-point ceiling for one query.
ORDERS_PER_PAGE = 10
LINES_PER_ORDER = 40
PRODUCTS_PER_PAGE = 10
VARIANTS_PER_PRODUCT = 40
FOLLOW_UP_PAGE = 100
BULK_ABOVE = 2500  # orders or products: more than this, and one bulk operation fetches them
BULK_SAVE_EVERY = 250  # parent objects stored between two saves of a bulk run's progress
BULK_CURSOR = "bulk:"

PAGE_INFO = "pageInfo { hasNextPage endCursor }"
ORDER_LINE_FIELDS = "product { id }"
# the page the buyer's last visit before the order landed on (reclift.orders.landing_handle)
ORDER_JOURNEY_FIELDS = "customerJourneySummary { lastVisit { landingPage } }"
VARIANT_FIELDS = "price inventoryQuantity inventoryPolicy inventoryItem { tracked }"

ORDERS_QUERY = f"""
query BackfillOrders($first: Int!, $after: String, $query: String, $lines: Int!) {{
  orders(first: $first, after: $after, query: $query, sortKey: CREATED_AT) {{
    {PAGE_INFO}
    nodes {{
      id createdAt test currencyCode {ORDER_JOURNEY_FIELDS}
      lineItems(first: $lines) {{ {PAGE_INFO} nodes {{ {ORDER_LINE_FIELDS} }} }}
    }}
  }}
}}"""

ORDER_LINES_QUERY = f"""
query BackfillOrderLines($id: ID!, $after: String, $lines: Int!) {{
  order(id: $id) {{ lineItems(first: $lines, after: $after) {{ {PAGE_INFO} nodes {{ {ORDER_LINE_FIELDS} }} }} }}
}}"""

# What the catalog keeps of a product: its listing, and what merchants' rules and catalog neighbours compare
# (scalar fields: they add nothing to a query's calculated cost).
PRODUCT_FIELDS = "id title handle status updatedAt productType vendor tags isGiftCard featuredImage { url }"

PRODUCTS_QUERY = f"""
query BackfillProducts($first: Int!, $after: String, $variants: Int!) {{
  products(first: $first, after: $after, sortKey: ID) {{
    {PAGE_INFO}
    nodes {{
      {PRODUCT_FIELDS}
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


BULK_QUERIES = {
    "orders": f"""{{ orders(query: "%s", sortKey: CREATED_AT) {{ edges {{ node {{
  id createdAt test currencyCode {ORDER_JOURNEY_FIELDS} lineItems {{ edges {{ node {{ product {{ id }} }} }} }}
}} }} }} }}""",
    "products": f"""{{ products(sortKey: ID) {{ edges {{ node {{
  {PRODUCT_FIELDS} variants {{ edges {{ node {{ {VARIANT_FIELDS} }} }} }}
}} }} }} }}""",
}


def bulk_groups(records: Iterable[dict[str, Any]]) -> Iterator[tuple[dict[str, Any], list[dict[str, Any]], int]]:
    """A bulk result's lines as (parent, its children, lines read up to and including them): children follow their
    parent, each naming it in `__parentId`."""
    parent: dict[str, Any] | None = None
    children: list[dict[str, Any]] = []
    read = 0
    for record in records:
        if "__parentId" in record:
            if parent is not None and record["__parentId"] == parent.get("id"):
                children.append(record)
        else:
            if parent is not None:
                yield parent, children, read
            parent, children = record, []
        read += 1
    if parent is not None:
        yield parent, children, read


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
    bulk: bool  # fetched with a bulk operation (pages: 1)
    pages: int
    fetched: int
    stored: int
    skipped: int  # nodes that could not be parsed (counted, not fatal)

    def as_dict(self) -> dict[str, Any]:
        return dict(vars(self))


ProgressListener = Callable[[BackfillProgress], None]


def rest_of(client: AdminClient, query: str, node_id: str, path: tuple[str, ...], first: Page) -> list[dict[str, Any]]:
    """The nodes of a nested connection beyond its first page (an order's lines, a product's variants)."""
    nodes: list[dict[str, Any]] = []
    page = first
    while page.has_next_page and page.end_cursor:
        variables = {"id": node_id, "after": page.end_cursor, "lines": FOLLOW_UP_PAGE, "variants": FOLLOW_UP_PAGE}
        page = client.page(query, variables, path)
        nodes += page.nodes
    return nodes


def nested_first_page(node: dict[str, Any], key: str) -> Page:
    try:
        return connection_page(node, (key,))
    except AdminApiError:
        return Page(nodes=[], end_cursor=None, has_next_page=False)


def _store_node(
    what: str, shop: str, stores: BackfillStores, node: dict[str, Any], extra: list[dict[str, Any]]
) -> bool:
    """Store one product or order (with its nested nodes beyond the first page); False when it cannot be parsed."""
    try:
        if what == "orders":
            stores.save_backfilled_basket(shop, parse_graphql_order(node, extra))
        else:
            stores.save_listing(shop, parse_graphql_product(node, extra))
    except (CatalogPayloadError, OrderPayloadError):
        return False
    return True


def _store_page(what: str, client: AdminClient, shop: str, stores: BackfillStores, nodes: list[dict[str, Any]]) -> int:
    query, path, nested = (
        (ORDER_LINES_QUERY, ("order", "lineItems"), "lineItems")
        if what == "orders"
        else (PRODUCT_VARIANTS_QUERY, ("product", "variants"), "variants")
    )
    stored = 0
    for node in nodes:
        extra = rest_of(client, query, str(node.get("id")), path, nested_first_page(node, nested))
        stored += _store_node(what, shop, stores, node, extra)
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


@dataclass
class _Run:
    """One backfill run's moving parts."""

    what: What
    shop: str
    client: AdminClient
    stores: BackfillStores
    progress: BackfillProgress
    keep_going: Callable[[], bool]
    on_progress: ProgressListener | None
    then: Callable[[], object] | None = None
    skipped: int = 0
    fetched_all: bool = False

    @property
    def last_status(self) -> str:
        """What the last page's save says: "done", unless a step still follows the fetching (`then`), which writes
        "done" itself, so the merchant never sees a backfill complete before what it feeds is ready."""
        return "running" if self.then is not None else "done"

    def save(self, **changes: Any) -> None:
        self.progress = replace(self.progress, **changes, updated_at=datetime.now(UTC))
        self.stores.save_backfill_progress(self.progress)
        if self.on_progress is not None and self.progress.status != "failed":
            self.on_progress(self.progress)

    def pages(self, variables: dict[str, Any]) -> None:
        """Page by page, the cursor saved after each stored page."""
        query, path = (ORDERS_QUERY, ("orders",)) if self.what == "orders" else (PRODUCTS_QUERY, ("products",))
        while self.keep_going():
            page = self.client.page(query, {**variables, "after": self.progress.cursor}, path)
            stored = _store_page(self.what, self.client, self.shop, self.stores, page.nodes)
            self.skipped += len(page.nodes) - stored
            done = not page.has_next_page or page.end_cursor is None
            self.fetched_all = done
            self.save(
                status=self.last_status if done else "running",
                cursor=page.end_cursor or self.progress.cursor,
                pages=self.progress.pages + 1,
                fetched=self.progress.fetched + len(page.nodes),
                stored=self.progress.stored + stored,
            )
            if done:
                return

    def bulk(self, poll_seconds: float) -> None:
        """One bulk operation: started (or, on a resume, found again by its id), polled, its result streamed."""
        cursor = self.progress.cursor or ""
        if not cursor.startswith(BULK_CURSOR):
            text = BULK_QUERIES[self.what]
            operation = start_bulk_query(self.client, text % self.progress.search if self.what == "orders" else text)
            self.save(cursor=BULK_CURSOR + operation.id, bulk_lines=0)
        operation_id = (self.progress.cursor or "").removeprefix(BULK_CURSOR)
        finished = wait_for_bulk(self.client, operation_id, poll_seconds=poll_seconds, keep_going=self.keep_going)
        if finished is None:
            return
        if finished.url is None:  # nothing matched
            self.fetched_all = True
            self.save(status=self.last_status, pages=self.progress.pages + 1)
            return
        base = self.progress.bulk_lines
        fetched = stored = read = 0
        lines = bulk_lines(self.client, finished.url, skip=base)
        for parent, children, read in bulk_groups(lines):
            fetched += 1
            stored += _store_node(self.what, self.shop, self.stores, parent, children)
            if fetched % BULK_SAVE_EVERY == 0:
                self.save(
                    bulk_lines=base + read,
                    fetched=self.progress.fetched + fetched,
                    stored=self.progress.stored + stored,
                )
                fetched = stored = 0
                if not self.keep_going():
                    return
        self.skipped += fetched - stored
        self.fetched_all = True
        self.save(
            status=self.last_status,
            bulk_lines=base + read,  # every line: a resume before "done" (a failed `then`) streams none again
            pages=self.progress.pages + 1,
            fetched=self.progress.fetched + fetched,
            stored=self.progress.stored + stored,
        )


def backfill(
    what: What,
    shop: str,
    client: AdminClient,
    stores: BackfillStores,
    *,
    now: datetime | None = None,
    days: int = DEFAULT_ORDER_DAYS,
    restart: bool = False,
    bulk: bool | None = None,
    bulk_poll_seconds: float = 2.0,
    keep_going: Callable[[], bool] = lambda: True,
    on_progress: ProgressListener | None = None,
    then: Callable[[], object] | None = None,
) -> BackfillOutcome:
    """Fetch and store one connection, saving the progress as it goes: page by page, or with a bulk operation
    (`bulk=None`: when a fresh run finds more than `BULK_ABOVE` objects to fetch; a resumed run keeps its way).
    Raises AdminApiError (the progress then says `failed`, with the error) when the API keeps failing; stops early,
    resumably, as soon as `keep_going()` is false. `then` runs once everything is fetched, before the progress says
    "done"; if it raises, the progress stays "running" and a resumed run fetches nothing more and runs it again."""
    started = now or datetime.now(UTC)
    search = order_search(started, days) if what == "orders" else None
    progress, resumed = _start(stores, shop, what, search, started, restart)
    if resumed:
        use_bulk = (progress.cursor or "").startswith(BULK_CURSOR)
    elif bulk is None:
        count = expected_count(client, what, now=started, days=days)
        use_bulk = count is not None and count > BULK_ABOVE
        progress = replace(progress, expected=count)  # the merchant's page shows how much of it is fetched
    else:
        use_bulk = bulk
    run = _Run(what, shop, client, stores, progress, keep_going, on_progress, then)
    stores.save_backfill_progress(progress)
    try:
        if use_bulk:
            run.bulk(bulk_poll_seconds)
        elif what == "orders":
            run.pages({"first": ORDERS_PER_PAGE, "lines": LINES_PER_ORDER, "query": progress.search})
        else:
            run.pages({"first": PRODUCTS_PER_PAGE, "variants": VARIANTS_PER_PRODUCT})
    except AdminApiError as exc:
        run.save(status="failed", error=str(exc))
        raise
    if run.fetched_all and then is not None:
        then()
        run.save(status="done")
    return BackfillOutcome(
        what=what,
        complete=run.progress.status == "done",
        resumed=resumed,
        bulk=use_bulk,
        pages=run.progress.pages,
        fetched=run.progress.fetched,
        stored=run.progress.stored,
        skipped=run.skipped,
    )


def compute_similarity_after_backfill(shop: str, now: datetime) -> dict[str, Any]:
    """A completed orders backfill computes the shop's co-purchase similarity at once, so a new install has
    neighbours before the first nightly run. numpy is imported only here, on the backfill's path."""
    from reclift.logic.similarity import compute_shop

    return compute_shop(shop, now)


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

    def similarity() -> None:
        result["similarity"] = compute_similarity_after_backfill(shop, started)

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
            # the orders are done only once the similarity they feed is stored: the admin page's "complete" means
            # the storefront serves the backfilled co-purchases
            then=similarity if what == "orders" else None,
        )
        result[what] = outcome.as_dict()
        if not outcome.complete:
            result["complete"] = False
            return result
    result["complete"] = True
    result["admin_requests"] = client.requests
    result["throttled"] = client.throttled
    return result
