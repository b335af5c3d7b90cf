"""PynamoDB models of reclift's tables. Every key begins with the shop domain.

Table names are bound at call time from validated configuration (`bind_tables`), never at import, and
`Meta.host` stays unset so the standard `AWS_ENDPOINT_URL…` variables choose moto, DynamoDB Local or AWS.
"""

from __future__ import annotations

import os
import zlib
from decimal import Decimal
from functools import cache
from typing import Any

from pynamodb.attributes import (
    Attribute,
    BooleanAttribute,
    ListAttribute,
    NumberAttribute,
    TTLAttribute,
    UnicodeAttribute,
    UnicodeSetAttribute,
    UTCDateTimeAttribute,
    VersionAttribute,
)
from pynamodb.constants import NUMBER
from pynamodb.indexes import AllProjection, GlobalSecondaryIndex, IncludeProjection, KeysOnlyProjection
from pynamodb.models import Model

from reclift import config


class DecimalAttribute(Attribute[Decimal]):
    """A DynamoDB number read and written as Decimal, so money never passes through float."""

    attr_type = NUMBER

    def serialize(self, value: Decimal) -> str:
        return str(Decimal(value))

    def deserialize(self, value: str) -> Decimal:
        return Decimal(value)


# A shop's way in to the tables whose partition keys cannot be derived from the shop alone (a visitor's events and
# profiles, a customer's data exports): the sparse `by_shop` index, keys only, partitioned `{shop}#{bucket}`
# (SHOP_BUCKETS of them, by a hash of the partition key) so that no index partition takes a whole shop's writes.
# `shop/redact` queries it; nothing on a request path reads it. An item enters the index when it is created and
# leaves when it is deleted: updates that keep the key cost the index nothing.
SHOP_BUCKETS = 16


def shop_bucket_key(shop: str, pk: str) -> str:
    """The `by_shop` partition of the item whose partition key is `pk`."""
    return f"{shop}#{zlib.crc32(pk.encode()) % SHOP_BUCKETS:02d}"


def shop_bucket_keys(shop: str) -> list[str]:
    return [f"{shop}#{bucket:02d}" for bucket in range(SHOP_BUCKETS)]


# ---------------------------------------------------------------- events
class EventsByCustomer(GlobalSecondaryIndex["EventItem"]):
    class Meta:
        index_name = "by_customer"
        projection = AllProjection()

    customer_pk = UnicodeAttribute(hash_key=True)
    sk = UnicodeAttribute(range_key=True)


class EventsByRec(GlobalSecondaryIndex["EventItem"]):
    class Meta:
        index_name = "by_rec"
        projection = AllProjection()

    rec_pk = UnicodeAttribute(hash_key=True)
    sk = UnicodeAttribute(range_key=True)


class EventsByShop(GlobalSecondaryIndex["EventItem"]):
    class Meta:
        index_name = "by_shop"
        projection = KeysOnlyProjection()

    shop_pk = UnicodeAttribute(hash_key=True)
    sk = UnicodeAttribute(range_key=True)


class EventItem(Model):
    """A proven storefront recommendation event. pk `{shop}#v#{visitor}`.
    - An impression: one item per rec id, sk `{issue time of its rec id}#{rec id's tag}#impression`, its products in
      the set `product_set`. A later impression of the same rec id adds the products that came into view since; a
      product already in the set adds nothing, so each (rec id, product) is counted once.
    - A click or an add to cart: one item per (rec id, type, product), sk `{issue time}#{tag}#{type}#{product}`,
      written only where absent; only these carry `rec_pk` (the sparse `by_rec` index), what an order line's
      `_rec_id` is looked up by.
    (Items from before: impressions per product, sk `…#impression#{product}`, or, before rec ids were signed,
    sk `{time}#{event id}` with several products; both keep `product_ids`.)
    The table's stream (new and old images) is what the counting function adds to the counters."""

    class Meta:
        table_name = "EVENTS_TABLE"

    pk = UnicodeAttribute(hash_key=True)
    sk = UnicodeAttribute(range_key=True)
    shop_pk = UnicodeAttribute(null=True)  # `by_shop`: shop_bucket_key(shop, pk)
    customer_pk = UnicodeAttribute(null=True)
    rec_pk = UnicodeAttribute(null=True)
    event_id = UnicodeAttribute()
    type = UnicodeAttribute()
    at = UTCDateTimeAttribute()
    visitor_id = UnicodeAttribute()
    customer_id = UnicodeAttribute(null=True)
    rec_id = UnicodeAttribute(null=True)
    placement = UnicodeAttribute(null=True)
    arm = UnicodeAttribute(null=True)  # the arm its recommendation was served in (from the rec id)
    source_product_id = UnicodeAttribute(null=True)
    product_ids = ListAttribute[str](default=list)
    positions = ListAttribute[int](default=list)
    # an impression item's: the products its rec id listed, in their signed order (their places, for counting)
    listed = ListAttribute[str](null=True)
    product_set = UnicodeSetAttribute(null=True)  # an impression's products, as sets: `ADD` merges, duplicates vanish
    expires_at = TTLAttribute()

    @property
    def products(self) -> tuple[str, ...]:
        """The products the event is about, whichever way the item keeps them."""
        return tuple(sorted(self.product_set)) if self.product_set else tuple(self.product_ids)

    by_customer = EventsByCustomer()
    by_rec = EventsByRec()
    by_shop = EventsByShop()


# ---------------------------------------------------------------- counters
class CounterItem(Model):
    """Per shop and day: one item per product (sk = product id), one for the shop (sk `_shop`) and the shop's
    totals per hour (sk `_hour#HH`: impressions, purchases, orders, served recommendations and processing errors,
    what the hourly health check reads)."""

    class Meta:
        table_name = "COUNTERS_TABLE"

    pk = UnicodeAttribute(hash_key=True)  # {shop}#{YYYY-MM-DD}
    sk = UnicodeAttribute(range_key=True)
    impressions = NumberAttribute(default=0)
    # product items: the impressions' exposure (reclift.tracking.exposure); absent in items counted before it
    exposure = NumberAttribute(null=True)
    clicks = NumberAttribute(default=0)
    add_to_carts = NumberAttribute(default=0)
    purchases = NumberAttribute(default=0)
    units = NumberAttribute(default=0)
    revenue = DecimalAttribute(default=Decimal)
    sold = NumberAttribute(default=0)  # product items: orders containing the product, attributed or not (best sellers)
    orders = NumberAttribute(default=0)
    test_orders = NumberAttribute(default=0)
    attributed_orders = NumberAttribute(default=0)
    attributed_revenue = DecimalAttribute(default=Decimal)
    visitors = UnicodeSetAttribute(null=True)  # `_arm#…` items written before visitor_count: the visitors as a set
    visitor_count = NumberAttribute(null=True)  # `_arm#{arm}#{shard}` items: distinct visitors the arm served that day
    # `_hour#HH#e` items: the visitors each arm showed something to first that hour (of the day)
    visitors_learning = NumberAttribute(null=True)
    visitors_holdout = NumberAttribute(null=True)
    served = NumberAttribute(default=0)  # `_hour#…` items: recommendation responses served
    errors = NumberAttribute(default=0)  # `_hour#…` items: failed processing attempts of the shop's deliveries
    expires_at = TTLAttribute(null=True)


# ---------------------------------------------------------------- orders, attributions, baskets
# What the queries through `by_shop_date_v2` read besides the keys (table's and index's): the attribution lines
# (`{shop}#attr`: the ROI's rebuild and reports), the baskets (`{shop}#basket`: basket, test) and the missed
# opportunities (`{shop}#missed`: product_id, shown_instead) of the similarity job. Nothing else is projected: a line's
# credited event, rec id and event ids, the order's shop and attributed revenue are read from the table (by its key).
# An attribute left out here reads as None (or its default) through the index, whatever the model says of it: a query
# that needs one must add it here and in template.yaml (a new index: a projection cannot change in place).
ORDERS_BY_SHOP_DATE_ATTRIBUTES = [
    "order_id",
    "created_at",
    "currency",
    "visitor_id",
    "line_id",
    "product_id",
    "quantity",
    "revenue",
    "channel",
    "arm",
    "basket",
    "test",
    "shown_instead",
]


class OrdersByShopDate(GlobalSecondaryIndex["OrderRecord"]):
    class Meta:
        index_name = "by_shop_date_v2"
        projection = IncludeProjection(ORDERS_BY_SHOP_DATE_ATTRIBUTES)

    gsi1pk = UnicodeAttribute(hash_key=True)
    gsi1sk = UnicodeAttribute(range_key=True)


class OrderRecord(Model):
    """pk `{shop}#{order id}`; sk `order` (the order and its basket), `line#{id}` (an attribution),
    `missed#{id}` (a missed opportunity), `chunk#{n}` (a marker of a large order's later write)."""

    class Meta:
        table_name = "ORDERS_TABLE"

    pk = UnicodeAttribute(hash_key=True)
    sk = UnicodeAttribute(range_key=True)
    gsi1pk = UnicodeAttribute(null=True)  # {shop}#attr | {shop}#missed | {shop}#basket
    # {created_at}#{order id}[#{line id}]; an order's own item (its basket): [#{landing handle}], the handle of the
    # product page its buyer's visit landed on, in the key because the index projects a fixed list of attributes
    # (ORDERS_BY_SHOP_DATE_ATTRIBUTES) that cannot change in place, and the similarity job reads it with the basket
    gsi1sk = UnicodeAttribute(null=True)
    shop = UnicodeAttribute()
    order_id = UnicodeAttribute()
    created_at = UTCDateTimeAttribute(null=True)
    currency = UnicodeAttribute(null=True)
    # the order
    test = BooleanAttribute(null=True)
    customer_id = UnicodeAttribute(null=True)
    visitor_id = UnicodeAttribute(null=True)
    basket = ListAttribute[str](null=True)
    backfilled = BooleanAttribute(null=True)  # a basket from the Admin API backfill; the webhook's record replaces it
    attributed_revenue = DecimalAttribute(null=True)
    # a line
    line_id = UnicodeAttribute(null=True)
    product_id = UnicodeAttribute(null=True)
    quantity = NumberAttribute(null=True)
    revenue = DecimalAttribute(null=True)
    original_revenue = DecimalAttribute(null=True)  # before refunds and cancellation; absent until the first
    refunded_quantity = NumberAttribute(null=True)
    channel = UnicodeAttribute(null=True)
    rec_id = UnicodeAttribute(null=True)
    arm = UnicodeAttribute(null=True)
    credited_event_id = UnicodeAttribute(null=True)
    touched_at = UTCDateTimeAttribute(null=True)
    conversion_minutes = NumberAttribute(null=True)
    event_ids = ListAttribute[str](null=True)
    shown_instead = ListAttribute[str](null=True)
    expires_at = TTLAttribute(null=True)

    by_shop_date = OrdersByShopDate()


# ---------------------------------------------------------------- profiles
class ProfilesByShop(GlobalSecondaryIndex["ProfileItem"]):
    class Meta:
        index_name = "by_shop"
        projection = KeysOnlyProjection()

    shop_pk = UnicodeAttribute(hash_key=True)


class ProfileItem(Model):
    """pk `{shop}#v#{visitor id}` or `{shop}#c#{customer id}` (the plan's MLUserProfile)."""

    class Meta:
        table_name = "PROFILES_TABLE"

    pk = UnicodeAttribute(hash_key=True)
    shop = UnicodeAttribute()
    shop_pk = UnicodeAttribute(null=True)  # `by_shop`: shop_bucket_key(shop, pk)
    viewed = ListAttribute[str](default=list)
    carted = ListAttribute[str](default=list)
    purchased = ListAttribute[str](default=list)
    updated_at = UTCDateTimeAttribute()
    version = VersionAttribute()
    expires_at = TTLAttribute(null=True)
    # The home placement's candidates, kept with the profile so that serving reads them in its first round trip:
    # the combined neighbours (JSON [[product, score], …]) of `seeds`, the profile's most recent products.
    seeds = ListAttribute[str](null=True)
    neighbours = UnicodeAttribute(null=True)
    # the seeds' catalog neighbours combined (same type, vendor or tags): home's candidates when co-purchase has few
    catalog_neighbours = UnicodeAttribute(null=True)
    neighbours_at = UTCDateTimeAttribute(null=True)
    views_day = UnicodeAttribute(null=True)  # the UTC day `views_taken` counts (profiles.VIEWS_PER_DAY)
    views_taken = NumberAttribute(null=True)
    # a visitor's profile: how many of `viewed`'s first products were viewed on views_day, the visitor's session of
    # that day, which the similarity job reads for co-view neighbours (kept in this item, so no write of its own)
    day_views = NumberAttribute(null=True)
    # A customer's profile: the visitor ids that logged in as them or carried their orders (`_reclift_vid`), newest
    # first and bounded, so that their redaction or data request finds those visitors without a scan.
    visitors = ListAttribute[str](null=True)

    by_shop = ProfilesByShop()


# ---------------------------------------------------------------- shops
class ShopItem(Model):
    """pk = the shop domain: the registry scheduled jobs fan out over, and the shop's settings."""

    class Meta:
        table_name = "SHOPS_TABLE"

    pk = UnicodeAttribute(hash_key=True)
    first_seen = UTCDateTimeAttribute(null=True)
    last_seen = UTCDateTimeAttribute(null=True)
    currency = UnicodeAttribute(null=True)
    settings = UnicodeAttribute(null=True)  # JSON of the changed settings; defaults are not stored
    settings_updated_at = UTCDateTimeAttribute(null=True)
    rules = UnicodeAttribute(null=True)  # JSON of the merchant's rules' non-empty lists (reclift.rules)
    rules_updated_at = UTCDateTimeAttribute(null=True)


class BackfillItem(Model):
    """In the shops table, pk `{shop}#backfill#{orders|products}`: a backfill's cursor and progress, saved after
    every page so a failed or interrupted run resumes where it stopped. (The registry's scans skip it: it has no
    `first_seen`.)"""

    class Meta:
        table_name = "SHOPS_TABLE"

    pk = UnicodeAttribute(hash_key=True)
    shop = UnicodeAttribute()
    what = UnicodeAttribute()
    status = UnicodeAttribute()  # running | done | failed
    search = UnicodeAttribute(null=True)  # the search filter the cursor belongs to
    cursor = UnicodeAttribute(null=True)  # the endCursor of the last page stored, or `bulk:{operation id}`
    bulk_lines = NumberAttribute(default=0)  # a bulk result's lines stored, so a resume skips them
    expected = NumberAttribute(null=True)  # the count the API announced when the run began (for a progress bar)
    pages = NumberAttribute(default=0)
    fetched = NumberAttribute(default=0)
    stored = NumberAttribute(default=0)
    started_at = UTCDateTimeAttribute()
    updated_at = UTCDateTimeAttribute()
    error = UnicodeAttribute(null=True)


class ShopsByShop(GlobalSecondaryIndex["PrivacyRequestItem"]):
    class Meta:
        index_name = "by_shop"
        projection = KeysOnlyProjection()

    shop_pk = UnicodeAttribute(hash_key=True)


class PrivacyRequestItem(Model):
    """In the shops table, pk `{shop}#privacy#{request id}`: a customer's data, kept for the merchant to fetch for 30
    days. (The registry's scans skip it: it has no `first_seen`.)"""

    class Meta:
        table_name = "SHOPS_TABLE"

    pk = UnicodeAttribute(hash_key=True)
    shop = UnicodeAttribute()
    shop_pk = UnicodeAttribute(null=True)  # `by_shop`: shop_bucket_key(shop, pk)
    customer_id = UnicodeAttribute()
    data = UnicodeAttribute()  # JSON
    created_at = UTCDateTimeAttribute()
    expires_at = TTLAttribute(null=True)  # read as expired from then on, whenever DynamoDB deletes it

    by_shop = ShopsByShop()


class CustomerExportsItem(Model):
    """In the shops table, pk `{shop}#exports#{customer id}`: the request ids of the customer's data exports, so
    their redaction deletes the exports by key. It expires with the newest of them."""

    class Meta:
        table_name = "SHOPS_TABLE"

    pk = UnicodeAttribute(hash_key=True)
    shop = UnicodeAttribute()
    shop_pk = UnicodeAttribute(null=True)  # `by_shop`: shop_bucket_key(shop, pk)
    request_ids = UnicodeSetAttribute(null=True)
    expires_at = TTLAttribute(null=True)


class HealthItem(Model):
    """In the shops table, pk `{shop}#health`: the last health check and each condition's alert state.
    (The registry's scans skip it: it has no `first_seen`.)"""

    class Meta:
        table_name = "SHOPS_TABLE"

    pk = UnicodeAttribute(hash_key=True)
    shop = UnicodeAttribute()
    checked_at = UTCDateTimeAttribute()
    state = UnicodeAttribute()  # JSON: the conditions, their status, since when, and the last figures


# ---------------------------------------------------------------- learning
class LearningItem(Model):
    """pk = the shop; sk `p#{product}` (a product's performance, the plan's MLProductPerformance), `_model`
    (the run's prior, median price and best sellers with their posteriors: what serving reads first) or `c#{page}`
    (the context policy's pair ratios on a product's page, read with the model)."""

    class Meta:
        table_name = "LEARNING_TABLE"

    pk = UnicodeAttribute(hash_key=True)
    sk = UnicodeAttribute(range_key=True)
    run = UnicodeAttribute()  # the learning run (its date); serving ignores items of an older run
    policy = UnicodeAttribute()
    updated_at = UTCDateTimeAttribute()
    expires_at = TTLAttribute(null=True)
    # a product
    product_id = UnicodeAttribute(null=True)
    impressions = NumberAttribute(null=True)
    clicks = NumberAttribute(null=True)
    purchases = NumberAttribute(null=True)
    units = NumberAttribute(null=True)
    revenue = DecimalAttribute(null=True)
    ctr = NumberAttribute(null=True)
    cvr = NumberAttribute(null=True)
    confidence = NumberAttribute(null=True)
    blacklisted = BooleanAttribute(null=True)
    reason = UnicodeAttribute(null=True)
    alpha = NumberAttribute(null=True)
    beta = NumberAttribute(null=True)
    price = DecimalAttribute(null=True)
    explore_alpha = NumberAttribute(null=True)  # exploration's posterior (recent days); absent in older runs
    explore_beta = NumberAttribute(null=True)
    # the model
    prior_alpha = NumberAttribute(null=True)
    prior_beta = NumberAttribute(null=True)
    median_price = DecimalAttribute(null=True)
    best_sellers = UnicodeAttribute(null=True)  # JSON list of the best sellers' performance
    products = NumberAttribute(null=True)
    blacklisted_products = NumberAttribute(null=True)
    context = UnicodeAttribute(null=True)  # the context policy's ContextPrior as JSON (reclift.context)
    # sk `c#{page}`: the context policy's learned pair ratios of the page's candidates, JSON {product: ratio}
    pairs = UnicodeAttribute(null=True)


# ---------------------------------------------------------------- catalog
class CatalogItem(Model):
    """pk = the shop, sk = the product id: a product as ranking and the widget need it (or its deletion's
    tombstone, which no later-arriving update overwrites; it expires once no delivery can still be in flight)."""

    class Meta:
        table_name = "CATALOG_TABLE"

    pk = UnicodeAttribute(hash_key=True)
    sk = UnicodeAttribute(range_key=True)
    updated_at = UTCDateTimeAttribute()  # Shopify's `updated_at`: the write condition orders deliveries by it
    deleted = BooleanAttribute(default=False)
    title = UnicodeAttribute(null=True)
    handle = UnicodeAttribute(null=True)
    status = UnicodeAttribute(null=True)
    price = DecimalAttribute(null=True)
    available = BooleanAttribute(null=True)
    image = UnicodeAttribute(null=True)
    # what the merchant's rules and the catalog neighbours compare (case-folded); a gift card is never recommended
    tags = UnicodeSetAttribute(null=True)
    product_type = UnicodeAttribute(null=True)
    vendor = UnicodeAttribute(null=True)
    gift_card = BooleanAttribute(null=True)
    expires_at = TTLAttribute(null=True)  # tombstones only


class SimilarityItem(Model):
    """In the learning table, pk = the shop, sk `s#{product}`: the product's co-purchase neighbours (the plan's
    MLProductSimilarity), best first, as JSON [[product, jaccard, support, lift], …]; its catalog and co-view
    neighbours beside them."""

    class Meta:
        table_name = "LEARNING_TABLE"

    pk = UnicodeAttribute(hash_key=True)
    sk = UnicodeAttribute(range_key=True)
    run = UnicodeAttribute()  # the similarity run (its date)
    product_id = UnicodeAttribute()
    neighbours = UnicodeAttribute()
    # the product's catalog neighbours (same type, vendor or tags, near in price) as [[product, score], …]: the
    # placement's candidates when co-purchase gives too few (a new shop's first days)
    catalog = UnicodeAttribute(null=True)
    orders = NumberAttribute()  # the product's baskets in the run's window
    # the product's co-view neighbours ("viewed together": product pairs from visitors' day sessions, no visitor id)
    # as [[product, jaccard, support, lift], …], and the shop's weight of them against co-purchase's (the same in
    # every item of a run): the first round trip reads them with the co-purchase neighbours
    viewed = UnicodeAttribute(null=True)
    viewed_weight = NumberAttribute(null=True)
    # what the orders that landed on the product's page bought of its co-purchase neighbours, as
    # [orders, the shop's pooled share, [orders holding the i-th neighbour, …]] (reclift.context.Landed): absent
    # where no order of the shop names a product page it landed on
    landed = UnicodeAttribute(null=True)
    # what the view sessions that began on the product's page went on to view of its co-view neighbours, as
    # [sessions, the shop's pooled share, [sessions viewing the i-th neighbour, …]]: absent without co-view neighbours
    viewed_after = UnicodeAttribute(null=True)
    updated_at = UTCDateTimeAttribute()
    expires_at = TTLAttribute(null=True)


ALL_MODELS: tuple[type[Model], ...] = (
    EventItem,
    CounterItem,
    OrderRecord,
    ProfileItem,
    ShopItem,
    PrivacyRequestItem,
    CustomerExportsItem,
    BackfillItem,
    HealthItem,
    LearningItem,
    CatalogItem,
    SimilarityItem,
)


def region() -> str:
    region = os.environ.get("AWS_REGION") or os.environ.get("AWS_DEFAULT_REGION")
    if not region:
        raise config.ConfigurationError("AWS_REGION or AWS_DEFAULT_REGION must be set")
    return region


@cache
def bind_tables() -> None:
    """Point every model at its table, named by the environment; once per execution environment."""
    names = config.tables()
    aws_region = region()
    bindings: dict[type[Model], str] = {
        EventItem: names.events,
        CounterItem: names.counters,
        OrderRecord: names.orders,
        ProfileItem: names.profiles,
        ShopItem: names.shops,
        PrivacyRequestItem: names.shops,
        CustomerExportsItem: names.shops,
        BackfillItem: names.shops,
        HealthItem: names.shops,
        LearningItem: names.learning,
        CatalogItem: names.catalog,
        SimilarityItem: names.learning,
    }
    for model, table_name in bindings.items():
        meta: Any = model.Meta
        meta.table_name = table_name
        meta.region = aws_region
        model._connection = None  # a connection made before binding would point at the placeholder name


def reset_bindings() -> None:
    """Forget the bound names (tests that switch environments between cases)."""
    bind_tables.cache_clear()
    config.tables.cache_clear()
