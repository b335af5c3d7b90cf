"""The data-access port and its DynamoDB implementation (PynamoDB).

Callers hand in and get back plain domain values; SDK errors become `StoreError`; raw items and pagination keys
never leave this module.
"""

from __future__ import annotations

import json
import random
import re
import time
import zlib
from collections import defaultdict
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from functools import cache
from typing import Any, Protocol

from pynamodb.attributes import NumberAttribute
from pynamodb.connection import Connection
from pynamodb.exceptions import DoesNotExist, PutError, PynamoDBException, TransactWriteError, UpdateError
from pynamodb.expressions.condition import Condition
from pynamodb.models import Model
from pynamodb.transactions import TransactWrite

from reclift.adjustments import Adjustment, AttributedLine
from reclift.attribution import (
    Channel,
    LineAttribution,
    MissedOpportunity,
    OrderAttribution,
    Touch,
    TouchKind,
    page_purchases,
)
from reclift.data import day_totals
from reclift.data.models import (
    CounterItem,
    EventItem,
    OrderRecord,
    ProfileItem,
    ShopItem,
    SimilarityItem,
    bind_tables,
    region,
    shop_bucket_key,
)
from reclift.data.neighbours import neighbours_from_json, scores_from_json, scores_json, similarity_sk
from reclift.orders import Basket, OrderLine
from reclift.profiles import (
    LINKED_VISITORS_LIMIT,
    PROFILE_RETENTION_DAYS,
    ProfileLists,
    day_views,
    neighbours_stale,
    push_recent,
    views_within_cap,
)
from reclift.recids import REC_ID_LIFETIME, page_of
from reclift.roi_totals import (
    ProductFigures,
    VisitorDayKey,
    adjustment_delta,
    adjustment_visitor_days,
    order_delta,
    order_visitor_days,
    product_increments,
)
from reclift.rules import MerchantRules, stored_form, stored_rules
from reclift.settings import EVENT_RETENTION_DAYS, ShopSettings, stored_settings
from reclift.tracking import PageCounts, ProductCounts, ProfileChange, TrackedEvent

COUNTER_RETENTION_DAYS = 400
SHOP_COUNTER = "_shop"
# A day's page item, sk `P#{page product}` in the day's partition: per candidate shown in the product widget of that
# page, `i{candidate}` its impressions and `p{candidate}` its attributed purchases (top-level numbers, since ADD
# takes top-level attributes only). It sorts after the product counters (digits) and before the shop's own items
# (`_…`), so the nightly read of the products (`sk < "_"`) reads the pages with them, in the same Query.
PAGE_PREFIX = "P#"
PAIR_IMPRESSIONS = "i"
PAIR_PURCHASES = "p"
PAIR_CLICKS = "c"
PAIR_EXPOSURE = "x"  # the impressions' exposure (reclift.tracking.exposure); absent in items counted before it
# candidates per UpdateItem of a page item: up to three ADD actions each (impressions, exposure, clicks), some 75 bytes
# of the 4 KB an update expression may take (its attribute names counted in full, `i`, `x` or `c` and a 13-digit
# product id)
PAGE_UPDATE_CANDIDATES = 40
# A transaction holds at most 100 actions: a marker, per line an attribution, a counter and the ROI's product day and
# month (reclift.data.day_totals), the shop's, the hour's, the ROI's day, its two arms and their visitor-days.
LINES_PER_TRANSACTION = 23
TRANSACTION_ACTIONS = 100  # DynamoDB's limit on one transaction
# An attributed line keeps the ids of at most this many of the buyer's events about its product (the latest; the
# credited one apart): a buyer's long history must not make every order of theirs cost more write units.
EVENT_IDS_PER_LINE = 10
TRANSACTION_ATTEMPTS = 8
PROFILE_ATTEMPTS = 4
REGISTRATION_INTERVAL = timedelta(hours=1)
# Before the counting moved to the events stream, sk `_arm#{arm}#{shard}` counted an arm's distinct visitors of the
# day in shards (and before that held them as sets): still read for those days.
ARM_COUNTER = "_arm#"
ARM_SEEN = "_seen#"  # sk `_seen#{arm}#{visitor}`: the visitor counted in the arm that day (a small marker item)
# A marker only has to outlive its day (the day is UTC; a request can land a few seconds after midnight).
ARM_SEEN_RETENTION = timedelta(days=2)
# The markers are spread over this many partition keys a day (`{shop}#{day}#v{nn}`): on a busy day every new visitor
# writes one, more than one partition key takes.
MARKER_SHARDS = 16
ORDERS_PART = "o"  # `{shop}#{day}#o`: the day's order totals
HOUR_COUNTER = "_hour#"  # sk `_hour#HH[#part]` in the day's partition: the shop's totals of that hour (UTC)
# The hour's totals are kept in parts, so that an order's transaction never contends with the events' updates: the
# events' (`_hour#HH#e`: impressions, and the arms' new visitors, written by the counting function once per stream
# batch), the orders' (`_hour#HH#o`), the served tally's and errors' (`_hour#HH`). Readers sum the parts. (Events
# once drew one of 8 parts `_hour#HH#e{n}`; readers sum those too.)
EVENTS_HOUR_PART = "e"
# An arm's visitors of the hour, on the events' part of the hour (a visitor counts in the first hour of the day the
# arm showed them something).
ARM_VISITOR_FIELDS = {"learning": "visitors_learning", "holdout": "visitors_holdout"}


class StoreError(RuntimeError):
    """DynamoDB refused or failed a request; the caller's unit of work should be retried."""


class ConcurrentChange(StoreError):
    """An item a transaction's conditional update read before (a line, a visitor-day's ROI revenue) changed since."""


def _written_if(write: Callable[[], object], what: str) -> bool:
    """Run a conditional write: False where its condition does not hold (nothing written), StoreError naming `what`
    on any other failure."""
    try:
        write()
    except (PutError, UpdateError) as exc:
        if exc.cause_response_code == "ConditionalCheckFailedException":
            return False
        raise StoreError(f"{what} failed: {exc.msg}") from exc
    except PynamoDBException as exc:
        raise StoreError(f"{what} failed: {exc.msg}") from exc
    return True


def save_if(item: Model, condition: Condition, what: str) -> bool:
    """Save `item` where `condition` holds; False where it does not (nothing written)."""
    return _written_if(lambda: item.save(condition=condition), what)


def update_if(item: Model, actions: list[Any], condition: Condition | None, what: str) -> bool:
    """Apply `actions` to `item` where `condition` holds (always, without one); False where it does not."""
    return _written_if(lambda: item.update(actions=actions, condition=condition), what)


# ---------------------------------------------------------------- keys
def visitor_key(shop: str, visitor_id: str) -> str:
    return f"{shop}#v#{visitor_id}"


def customer_key(shop: str, customer_id: str) -> str:
    return f"{shop}#c#{customer_id}"


def rec_key(shop: str, rec_id: str) -> str:
    return f"{shop}#r#{rec_id}"


def day_key(shop: str, day: date | str) -> str:
    return f"{shop}#{day if isinstance(day, str) else day.isoformat()}"


def page_sk(page: str) -> str:
    """The sort key of a page's item in a day's partition."""
    return f"{PAGE_PREFIX}{page}"


def pair_counter(kind: str, product: str) -> NumberAttribute:
    """The page item's number of `kind` (PAIR_IMPRESSIONS, PAIR_EXPOSURE, PAIR_CLICKS or PAIR_PURCHASES) for the
    candidate `product`."""
    return NumberAttribute(attr_name=f"{kind}{product}")


def orders_day_key(shop: str, day: date | str) -> str:
    """The partition of a day's order totals (`_shop`, `_hour#HH#o`), apart from the day's product counters so that a
    busy day's orders and events do not share one partition key's write limit."""
    return f"{day_key(shop, day)}#{ORDERS_PART}"


def marker_key(shop: str, day: date | str, visitor_id: str) -> str:
    """The partition of a visitor's day markers: one of MARKER_SHARDS beside the day's counters, by the visitor id."""
    return marker_keys(shop, day)[zlib.crc32(visitor_id.encode()) % MARKER_SHARDS]


def marker_keys(shop: str, day: date | str) -> list[str]:
    """Every partition of a day's markers (what the shop's erasure reads)."""
    return [f"{day_key(shop, day)}#v{shard:02d}" for shard in range(MARKER_SHARDS)]


_DAY_IN_KEY = re.compile(r"#(\d{4}-\d{2}-\d{2})(?:#|$)")


def day_of_key(pk: str) -> str:
    """The day of a day's counter partition key, whichever part it is."""
    found = _DAY_IN_KEY.search(pk)
    if found is None:
        raise ValueError(f"not a day's counter key: {pk!r}")
    return found.group(1)


def hour_key(moment: datetime, part: str | None = None) -> tuple[str, str]:
    """The day partition's date and the sort key of the shop's totals for the hour `moment` falls in (UTC), in
    `part` of them when given."""
    utc = moment.astimezone(UTC)
    return utc.date().isoformat(), f"{HOUR_COUNTER}{utc.hour:02d}" + (f"#{part}" if part else "")


def hour_of(sk: str) -> int:
    """The hour (UTC) of an hour's totals item, whichever part it is."""
    return int(sk.removeprefix(HOUR_COUNTER).split("#", 1)[0])


def order_key(shop: str, order_id: str) -> str:
    return f"{shop}#{order_id}"


def _stamp(moment: datetime) -> str:
    """Fixed-width UTC time, so that sort keys order by time."""
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


# ---------------------------------------------------------------- values returned
@dataclass(frozen=True)
class OrderWriteOutcome:
    chunks_written: int
    chunks_already_written: int

    @property
    def duplicate(self) -> bool:
        return self.chunks_written == 0


@dataclass(frozen=True)
class AttributionRow:
    order_id: str
    line_id: str
    product_id: str
    quantity: int
    revenue: Decimal
    channel: Channel
    created_at: datetime
    currency: str
    arm: str | None = None  # the arm of the credited recommendation
    visitor_id: str | None = None  # the buyer's visitor id, when the order carried it


@dataclass(frozen=True)
class ArmVisitors:
    total: dict[str, int]  # arm → visitor-days over the period (each day's distinct visitors, summed)
    by_day: dict[str, dict[str, int]]  # day → arm → distinct visitors that day


@dataclass(frozen=True)
class ShopDayTotals:
    day: str
    orders: int
    test_orders: int


class Store(Protocol):
    def get_settings(self, shop: str) -> ShopSettings: ...
    def put_settings(self, shop: str, settings: ShopSettings) -> None: ...
    def get_rules(self, shop: str) -> MerchantRules: ...
    def put_rules(self, shop: str, rules: MerchantRules) -> None: ...
    def register_shop(self, shop: str, *, currency: str | None = None) -> None: ...
    def put_events(self, shop: str, events: Sequence[TrackedEvent]) -> list[TrackedEvent]: ...
    def add_counts(self, shop: str, increments: dict[tuple[str, str], ProductCounts]) -> None: ...
    def add_pair_counts(self, shop: str, increments: Mapping[tuple[str, str], PageCounts]) -> None: ...
    def add_hour_counts(self, shop: str, at: datetime, counts: dict[str, int], *, part: str | None = None) -> None: ...
    def update_profile(
        self,
        shop: str,
        key: str,
        change: ProfileChange,
        *,
        merge: ProfileLists | None = None,
        linked_visitor: str | None = None,
        now: datetime | None = None,
    ) -> ProfileLists: ...
    def touches(
        self,
        shop: str,
        *,
        visitor_id: str | None,
        customer_id: str | None,
        rec_ids: Iterable[str],
        since: datetime,
        until: datetime,
    ) -> list[Touch]: ...
    def record_order(self, shop: str, attribution: OrderAttribution) -> OrderWriteOutcome: ...
    def attributed_lines(self, shop: str, order_id: str) -> list[AttributedLine] | None: ...
    def apply_adjustment(self, shop: str, adjustment: Adjustment, order_revenue_before: Decimal) -> bool: ...
    def attributions(self, shop: str, first_day: date, last_day: date) -> list[AttributionRow]: ...
    def add_event_totals(
        self, shop: str, hour: datetime, impressions: int, visitors: Mapping[str, set[str]]
    ) -> int: ...
    def arm_visitors(self, shop: str, first_day: date, last_day: date) -> ArmVisitors: ...
    def shop_day_totals(self, shop: str, first_day: date, last_day: date) -> list[ShopDayTotals]: ...


def _days(first_day: date, last_day: date) -> Iterator[date]:
    day = first_day
    while day <= last_day:
        yield day
        day += timedelta(days=1)


class DynamoStore:
    """`Store` on DynamoDB through PynamoDB."""

    def __init__(self) -> None:
        bind_tables()
        self._connection: Connection | None = None
        self._registered: dict[str, tuple[datetime, str | None]] = {}  # shop → when last written, its currency

    def _transactions(self) -> Connection:
        if self._connection is None:
            self._connection = Connection(region=region())
        return self._connection

    # ------------------------------------------------------------ shops and settings
    def get_settings(self, shop: str) -> ShopSettings:
        try:
            item = ShopItem.get(shop, attributes_to_get=["settings"])
        except DoesNotExist:
            return ShopSettings()
        except PynamoDBException as exc:
            raise StoreError(f"reading the settings failed: {exc.msg}") from exc
        return stored_settings(json.loads(item.settings) if item.settings else None)

    def put_settings(self, shop: str, settings: ShopSettings) -> None:
        changed = settings.model_dump(exclude_defaults=True)
        try:
            ShopItem(shop).update(
                actions=[
                    ShopItem.settings.set(json.dumps(changed, sort_keys=True)),
                    ShopItem.settings_updated_at.set(datetime.now(UTC)),
                    ShopItem.first_seen.set(ShopItem.first_seen | datetime.now(UTC)),
                ]
            )
        except PynamoDBException as exc:
            raise StoreError(f"saving the settings failed: {exc.msg}") from exc

    def get_rules(self, shop: str) -> MerchantRules:
        """The merchant's rules (reclift.rules), kept in the shop's item beside its settings: the recommendation
        request reads them with the settings, in its first round trip."""
        try:
            item = ShopItem.get(shop, attributes_to_get=["rules"])
        except DoesNotExist:
            return MerchantRules()
        except PynamoDBException as exc:
            raise StoreError(f"reading the rules failed: {exc.msg}") from exc
        return stored_rules(json.loads(item.rules) if item.rules else None)

    def put_rules(self, shop: str, rules: MerchantRules) -> None:
        stored = stored_form(rules)
        try:
            ShopItem(shop).update(
                actions=[
                    ShopItem.rules.set(json.dumps(stored, separators=(",", ":")))
                    if stored
                    else ShopItem.rules.remove(),
                    ShopItem.rules_updated_at.set(datetime.now(UTC)),
                    ShopItem.first_seen.set(ShopItem.first_seen | datetime.now(UTC)),
                ]
            )
        except PynamoDBException as exc:
            raise StoreError(f"saving the rules failed: {exc.msg}") from exc

    def register_shop(self, shop: str, *, currency: str | None = None) -> None:
        """Keep the shop in the registry the scheduled jobs fan out over. Without news (a currency it did not have)
        a shop is re-registered at most once an hour per execution environment, so neither tracking nor attribution
        pays a write per request or per order."""
        now = datetime.now(UTC)
        written, known_currency = self._registered.get(shop, (None, None))
        news = currency is not None and currency != known_currency
        if not news and written is not None and now - written < REGISTRATION_INTERVAL:
            return
        self._registered[shop] = (now, currency or known_currency)
        actions: list[Any] = [ShopItem.first_seen.set(ShopItem.first_seen | now), ShopItem.last_seen.set(now)]
        if currency:
            actions.append(ShopItem.currency.set(currency))
        try:
            ShopItem(shop).update(actions=actions)
        except PynamoDBException as exc:
            raise StoreError(f"registering the shop failed: {exc.msg}") from exc

    def shop_currency(self, shop: str) -> str | None:
        try:
            return ShopItem.get(shop, attributes_to_get=["currency"]).currency
        except DoesNotExist:
            return None
        except PynamoDBException as exc:
            raise StoreError(f"reading the shop failed: {exc.msg}") from exc

    # ------------------------------------------------------------ tracking
    def put_events(self, shop: str, events: Sequence[TrackedEvent]) -> list[TrackedEvent]:
        """Store each proven event unless it is already stored, and return those that were new: what the stream
        then counts. An impression is kept per rec id (one UpdateItem that adds its products to the rec id's set and
        returns the set as it was, so a product shown again is no news); a click or an add to cart per (rec id,
        type, product), by a PutItem only where absent. Either way a repeat writes nothing new, and one impression
        request costs one write unit, plus its `by_shop` index entry when the rec id is new."""
        for event in events:
            if event.issued_at is None or event.rec_tag is None:
                raise ValueError("only proven events are stored")
        written: list[TrackedEvent] = []
        impressions: dict[tuple[str, str], list[TrackedEvent]] = defaultdict(list)
        for event in events:
            if event.type == "impression":
                impressions[(event.visitor_id, event.rec_tag or "")].append(event)
            elif save_if(_event_item(shop, event), EventItem.sk.does_not_exist(), "storing an event"):
                written.append(event)
        for group in impressions.values():
            written.extend(_add_impression(shop, group))
        return written

    def add_counts(self, shop: str, increments: dict[tuple[str, str], ProductCounts]) -> None:
        expires = datetime.now(UTC) + timedelta(days=COUNTER_RETENTION_DAYS)
        try:
            for (day, product), counts in sorted(increments.items()):
                actions: list[Any] = [
                    getattr(CounterItem, name).add(value) for name, value in counts.as_increments().items()
                ]
                if actions:
                    CounterItem(day_key(shop, day), product).update(
                        actions=[*actions, CounterItem.expires_at.set(expires)]
                    )
        except PynamoDBException as exc:
            raise StoreError(f"updating counters failed: {exc.msg}") from exc

    def add_pair_counts(self, shop: str, increments: Mapping[tuple[str, str], PageCounts]) -> None:
        """Add each (day, page)'s impressions, their exposure and the clicks per candidate to the page's item: one
        UpdateItem per page and day, whatever the number of candidates (its write units grow with the item's size,
        1 KB a unit)."""
        expires = datetime.now(UTC) + timedelta(days=COUNTER_RETENTION_DAYS)
        try:
            for (day, page), shown in sorted(increments.items()):
                counted = [
                    (product, counts)
                    for product, counts in sorted(shown.items())
                    if counts.impressions or counts.clicks
                ]
                # An update expression holds at most 4 KB: a busy page's batch updates its item in chunks.
                for start in range(0, len(counted), PAGE_UPDATE_CANDIDATES):
                    actions: list[Any] = [
                        pair_counter(kind, product).add(value)
                        for product, counts in counted[start : start + PAGE_UPDATE_CANDIDATES]
                        for kind, value in (
                            (PAIR_IMPRESSIONS, counts.impressions),
                            (PAIR_EXPOSURE, counts.exposure),
                            (PAIR_CLICKS, counts.clicks),
                        )
                        if value
                    ]
                    CounterItem(day_key(shop, day), page_sk(page)).update(
                        actions=[*actions, CounterItem.expires_at.set(expires)]
                    )
        except PynamoDBException as exc:
            raise StoreError(f"updating a page's counters failed: {exc.msg}") from exc

    def add_hour_counts(self, shop: str, at: datetime, counts: dict[str, int], *, part: str | None = None) -> None:
        """Add to the shop's totals of the hour `at` falls in (`impressions`, `served`, `errors`), in `part` of them
        when given: one UpdateItem, whatever the number of products."""
        actions: list[Any] = [getattr(CounterItem, name).add(value) for name, value in sorted(counts.items()) if value]
        if not actions:
            return
        day, sk = hour_key(at, part)
        expires = datetime.now(UTC) + timedelta(days=COUNTER_RETENTION_DAYS)
        try:
            CounterItem(day_key(shop, day), sk).update(actions=[*actions, CounterItem.expires_at.set(expires)])
        except PynamoDBException as exc:
            raise StoreError(f"updating the hour's totals failed: {exc.msg}") from exc

    def add_event_totals(self, shop: str, hour: datetime, impressions: int, visitors: Mapping[str, set[str]]) -> int:
        """Add a batch's impressions of the hour to the events' part of the hour's totals, and each arm's visitors
        not yet counted that day: a visitor is new where a conditional PutItem of its small marker
        (`_seen#{arm}#{visitor}`, kept two days) succeeds. One UpdateItem for the hour, one PutItem per visitor;
        returns the new visitors."""
        now = datetime.now(UTC)
        day, sk = hour_key(hour, EVENTS_HOUR_PART)
        new: dict[str, int] = defaultdict(int)
        try:
            for arm, ids in sorted(visitors.items()):
                for visitor in sorted(ids):
                    marker = CounterItem(
                        marker_key(shop, day, visitor),
                        f"{ARM_SEEN}{arm}#{visitor}",
                        expires_at=now + ARM_SEEN_RETENTION,
                    )
                    if save_if(marker, CounterItem.sk.does_not_exist(), "counting an arm's visitor"):
                        new[arm] += 1
            actions: list[Any] = [CounterItem.impressions.add(impressions)] if impressions else []
            actions += [
                getattr(CounterItem, ARM_VISITOR_FIELDS[arm]).add(count)
                for arm, count in sorted(new.items())
                if arm in ARM_VISITOR_FIELDS
            ]
            if actions:
                expires = now + timedelta(days=COUNTER_RETENTION_DAYS)
                CounterItem(day_key(shop, day), sk).update(actions=[*actions, CounterItem.expires_at.set(expires)])
        except PynamoDBException as exc:
            raise StoreError(f"adding the hour's events failed: {exc.msg}") from exc
        return sum(new.values())

    def arm_visitors(self, shop: str, first_day: date, last_day: date) -> ArmVisitors:
        """Each arm's distinct visitors of each day, and their sum over the days: visitor-days, the unit the lift is
        measured in (a visitor seen on three days counts three times, as the revenue of each of those days counts
        apart). One query per day of the shop's small totals between `_arm#` and `_hour#…` (the hours' parts, and
        the `_arm#` counts and sets of the days before the counting moved to the stream), never the markers."""
        total: dict[str, int] = defaultdict(int)
        by_day: dict[str, dict[str, int]] = defaultdict(lambda: defaultdict(int))
        try:
            for day in _days(first_day, last_day):
                for item in CounterItem.query(
                    day_key(shop, day),
                    CounterItem.sk.between(ARM_COUNTER, f"{HOUR_COUNTER}~"),
                    attributes_to_get=["sk", "visitor_count", "visitors", *ARM_VISITOR_FIELDS.values()],
                ):
                    counts: dict[str, int] = {}
                    if item.sk.startswith(ARM_COUNTER):
                        arm = item.sk.removeprefix(ARM_COUNTER).split("#", 1)[0]
                        counts[arm] = int(item.visitor_count or 0) + len(item.visitors or ())
                    for arm, name in ARM_VISITOR_FIELDS.items():
                        if value := getattr(item, name):
                            counts[arm] = counts.get(arm, 0) + int(value)
                    for arm, count in counts.items():
                        by_day[day.isoformat()][arm] += count
                        total[arm] += count
        except PynamoDBException as exc:
            raise StoreError(f"reading the arms' visitors failed: {exc.msg}") from exc
        return ArmVisitors(
            total=dict(total),
            by_day={day: dict(arms) for day, arms in by_day.items()},
        )

    def update_profile(
        self,
        shop: str,
        key: str,
        change: ProfileChange,
        *,
        merge: ProfileLists | None = None,
        linked_visitor: str | None = None,
        now: datetime | None = None,
    ) -> ProfileLists:
        """Read, push the change (and `merge`, a logged-in visitor's lists, in front), refresh the neighbours of
        its recent products when they changed, write back with an optimistic version check (retried on a
        concurrent write). Views count on the day of `now` (the request's time; None: the clock). A customer's
        profile also remembers `linked_visitor`, the visitor id that logged in as them or carried their order
        (bounded, newest first: in the item it already writes, so no extra request). Returns the lists as written."""
        for attempt in range(PROFILE_ATTEMPTS):
            try:
                try:
                    profile = ProfileItem.get(key, consistent_read=True)
                except DoesNotExist:
                    profile = ProfileItem(key, shop=shop, shop_pk=shop_bucket_key(shop, key))
                lists = ProfileLists(tuple(profile.viewed), tuple(profile.carted), tuple(profile.purchased))
                viewed = list(change.viewed)
                if viewed:
                    today = (now or datetime.now(UTC)).astimezone(UTC).date().isoformat()
                    counted = int(profile.views_taken or 0)
                    viewed, taken = views_within_cap(viewed, day=today, counted_day=profile.views_day, counted=counted)
                    if not (viewed or change.carted or change.purchased or merge is not None or linked_visitor):
                        return lists  # only views, over the day's cap: nothing to write
                    if key.startswith(visitor_key(shop, "")):  # a customer's merges its visitors': no session
                        before = int(profile.day_views or 0) if profile.views_day == today else 0
                        profile.day_views = day_views(lists.viewed, before, viewed)
                    profile.views_day, profile.views_taken = today, taken
                lists = lists.pushed(viewed, change.carted, change.purchased)
                if merge is not None:
                    lists = lists.merged_under(merge)
                now = datetime.now(UTC)
                profile.viewed, profile.carted, profile.purchased = (
                    list(lists.viewed),
                    list(lists.carted),
                    list(lists.purchased),
                )
                seeds = lists.seeds()
                if neighbours_stale(seeds, profile.seeds, profile.neighbours_at, now):
                    neighbours, catalog = lists.home_neighbours(*self._neighbour_lists(shop, seeds))
                    profile.seeds, profile.neighbours_at = seeds, now
                    profile.neighbours, profile.catalog_neighbours = scores_json(neighbours), scores_json(catalog)
                if linked_visitor:
                    profile.visitors = push_recent(profile.visitors or [], [linked_visitor], LINKED_VISITORS_LIMIT)
                profile.shop_pk = profile.shop_pk or shop_bucket_key(shop, key)
                profile.updated_at = now
                profile.expires_at = now + timedelta(days=PROFILE_RETENTION_DAYS)
                profile.save()
                return lists
            except PutError as exc:
                if exc.cause_response_code != "ConditionalCheckFailedException" or attempt == PROFILE_ATTEMPTS - 1:
                    raise StoreError(f"updating a profile failed: {exc.msg}") from exc
            except PynamoDBException as exc:
                raise StoreError(f"updating a profile failed: {exc.msg}") from exc
        raise StoreError("updating a profile kept conflicting with other writes")

    @staticmethod
    def _neighbour_lists(
        shop: str, seeds: Sequence[str]
    ) -> tuple[list[list[tuple[str, float]]], list[list[tuple[str, float]]]]:
        """The seeds' co-purchase neighbour lists and their catalog neighbour lists (one BatchGetItem of their
        similarity items, which hold both)."""
        if not seeds:
            return [], []
        now = datetime.now(UTC)
        items = [
            item
            for item in SimilarityItem.batch_get([(shop, similarity_sk(p)) for p in seeds])
            if item.expires_at is None or item.expires_at > now
        ]
        copurchased = [[(n.product_id, n.jaccard) for n in neighbours_from_json(item.neighbours)] for item in items]
        catalog = [scores_from_json(item.catalog) for item in items if item.catalog]
        return copurchased, catalog

    # ------------------------------------------------------------ attribution
    def touches(
        self,
        shop: str,
        *,
        visitor_id: str | None,
        customer_id: str | None,
        rec_ids: Iterable[str],
        since: datetime,
        until: datetime,
    ) -> list[Touch]:
        """Every recommendation event reachable through any of the buyer's keys in [since, until]. An event's sort
        key starts with its rec id's issue time, up to REC_ID_LIFETIME before the event: the keys are read from that
        much earlier and the events kept by their own time."""
        low, high = _stamp(since - REC_ID_LIFETIME), _stamp(until) + "~"
        found: dict[str, Touch] = {}
        try:
            if visitor_id:
                for item in EventItem.query(visitor_key(shop, visitor_id), EventItem.sk.between(low, high)):
                    found[item.event_id] = _touch(item)
            if customer_id:
                for item in EventItem.by_customer.query(
                    customer_key(shop, customer_id), EventItem.sk.between(low, high)
                ):
                    found[item.event_id] = _touch(item)
            known_recs = {touch.rec_id for touch in found.values()}
            for rec_id in sorted(set(rec_ids) - known_recs):
                for item in EventItem.by_rec.query(rec_key(shop, rec_id), EventItem.sk.between(low, high)):
                    found[item.event_id] = _touch(item)
        except PynamoDBException as exc:
            raise StoreError(f"reading events failed: {exc.msg}") from exc
        return [touch for touch in found.values() if since <= touch.at <= until]

    def record_order(self, shop: str, attribution: OrderAttribution) -> OrderWriteOutcome:
        """Write the order, its attributions, missed opportunities and counter increments exactly once: a line
        credited to a touch with a page (a product page's widget) also adds its purchase to that page's item of the
        order's day, once per (page, product).

        Each chunk of lines is one transaction whose every item is written only if absent, so a chunk that
        was already applied (a redelivery, the same order under a new webhook id) changes nothing.
        """
        for attempt in range(TRANSACTION_ATTEMPTS):
            # The ROI's visitor-days as they are now: the first chunk writes them only if they still are (another
            # order of the same visitor and day may land in between: then it is read again).
            before = day_totals.visitor_days_before(shop, order_visitor_days(attribution))
            written = already = 0
            try:
                for chunk in _order_chunks(shop, attribution, before):
                    if self._apply_chunk(chunk):
                        written += 1
                    else:
                        already += 1
            except ConcurrentChange:
                if attempt == TRANSACTION_ATTEMPTS - 1:
                    raise
                continue
            return OrderWriteOutcome(chunks_written=written, chunks_already_written=already)
        raise StoreError("recording the order kept conflicting with other orders of its visitor")

    def attributed_lines(self, shop: str, order_id: str) -> list[AttributedLine] | None:
        """The order's attribution lines; None while the order itself has not been recorded."""
        try:
            items = list(OrderRecord.query(order_key(shop, order_id)))
        except PynamoDBException as exc:
            raise StoreError(f"reading the order's attributions failed: {exc.msg}") from exc
        if not any(item.sk == "order" for item in items):
            return None
        return [
            AttributedLine(
                line_id=item.line_id or "",
                product_id=item.product_id or "",
                day=(item.created_at or datetime.now(UTC)).date(),
                quantity=int(item.quantity or 0),
                original_revenue=item.original_revenue
                if item.original_revenue is not None
                else item.revenue or Decimal(0),
                revenue=item.revenue or Decimal(0),
                refunded_quantity=int(item.refunded_quantity or 0),
                channel=item.channel,
                arm=item.arm,
                visitor_id=item.visitor_id,
            )
            for item in items
            if item.sk.startswith("line#")
        ]

    def apply_adjustment(self, shop: str, adjustment: Adjustment, order_revenue_before: Decimal) -> bool:
        """Take a refund's or cancellation's revenue back from the lines and the counters, once (False: it was
        applied before). Purchases stay counted, the products' as the pages' pairs': a refund takes back revenue,
        not the conversion."""
        pk = order_key(shop, adjustment.order_id)
        applied = False
        changes = list(adjustment.changes)
        roi = adjustment_delta(
            adjustment,
            order_revenue_before,
            day_totals.visitor_days_before(shop, adjustment_visitor_days(adjustment)),
        )
        for start in range(0, max(len(changes), 1), LINES_PER_TRANSACTION):
            part = changes[start : start + LINES_PER_TRANSACTION]
            index = start // LINES_PER_TRANSACTION
            marker = OrderRecord(
                pk=pk,
                sk=adjustment.marker if index == 0 else f"{adjustment.marker}#{index}",
                shop=shop,
                order_id=adjustment.order_id,
            )
            line_updates: list[tuple[Model, list[Any], Any]] = [
                (
                    OrderRecord(pk, f"line#{change.line.line_id}"),
                    [
                        OrderRecord.revenue.set(change.revenue_after),
                        OrderRecord.refunded_quantity.set(change.refunded_quantity_after),
                        OrderRecord.original_revenue.set(OrderRecord.original_revenue | change.line.original_revenue),
                    ],
                    OrderRecord.revenue == change.line.revenue,
                )
                for change in part
            ]
            removed: dict[tuple[date, str], Decimal] = defaultdict(Decimal)
            for change in part:
                removed[(change.line.day, change.line.product_id)] += change.removed
            counters: list[tuple[Model, list[Any]]] = [
                (CounterItem(day_key(shop, day), product), [CounterItem.revenue.add(-amount)])
                for (day, product), amount in sorted(removed.items())
                if amount
            ]
            for (day, product), amount in sorted(removed.items()):
                counters += day_totals.product_updates(
                    shop, day.isoformat(), {product: ProductFigures(revenue=-amount)}
                )
            if index == 0 and adjustment.changes:
                after = order_revenue_before - adjustment.removed
                shop_actions: list[Any] = [CounterItem.attributed_revenue.add(-adjustment.removed)]
                if order_revenue_before > 0 >= after:
                    shop_actions.append(CounterItem.attributed_orders.add(-1))
                counters.append(
                    (CounterItem(orders_day_key(shop, adjustment.changes[0].line.day), SHOP_COUNTER), shop_actions)
                )
                line_updates.append((OrderRecord(pk, "order"), [OrderRecord.attributed_revenue.set(after)], None))
                if roi is not None:
                    counters += day_totals.day_updates(shop, roi)
                    line_updates += day_totals.visitor_day_updates(shop, roi.visitor_days)
            applied = (
                self._apply_chunk(_Chunk(records=[marker], counter_updates=counters, line_updates=line_updates))
                or applied
            )
        return applied

    def _apply_chunk(self, chunk: _Chunk) -> bool:
        for attempt in range(TRANSACTION_ATTEMPTS):
            try:
                with TransactWrite(connection=self._transactions()) as transaction:
                    for record in chunk.records:
                        # A basket the backfill stored ahead of the order's webhook is replaced by the full record.
                        transaction.save(
                            record,
                            condition=OrderRecord.pk.does_not_exist() | (OrderRecord.backfilled == True),  # noqa: E712
                        )
                    for line, actions, condition in chunk.line_updates:
                        transaction.update(line, actions=actions, condition=condition)
                    for counter, actions in chunk.counter_updates:
                        transaction.update(counter, actions=actions)
                return True
            except TransactWriteError as exc:
                reasons = [reason.code if reason is not None else None for reason in exc.cancellation_reasons]
                codes = set(reasons)
                if "ConditionalCheckFailed" in reasons[: len(chunk.records)]:
                    return False  # its items exist: this chunk was applied before
                if "ConditionalCheckFailed" in codes:
                    raise ConcurrentChange(
                        "an item changed while it was being updated; the delivery is retried"
                    ) from exc
                if "TransactionConflict" in codes and attempt < TRANSACTION_ATTEMPTS - 1:
                    # Another order is updating the same counters right now: back off and try again.
                    time.sleep(random.uniform(0, 0.05 * 2**attempt))  # noqa: S311 - jitter, not security
                    continue
                raise StoreError(f"writing the order failed: {exc.msg}") from exc
            except PynamoDBException as exc:
                raise StoreError(f"writing the order failed: {exc.msg}") from exc
        raise StoreError("writing the order kept conflicting with other writes")

    # ------------------------------------------------------------ reporting
    def attributions(self, shop: str, first_day: date, last_day: date) -> list[AttributionRow]:
        low = first_day.isoformat()
        high = (last_day + timedelta(days=1)).isoformat()
        rows: list[AttributionRow] = []
        try:
            # The upper bound is the next day's date alone, which sorts before any of that day's timestamps.
            for item in OrderRecord.by_shop_date.query(f"{shop}#attr", OrderRecord.gsi1sk.between(low, high)):
                rows.append(
                    AttributionRow(
                        order_id=item.order_id,
                        line_id=item.line_id or "",
                        product_id=item.product_id or "",
                        quantity=int(item.quantity or 0),
                        revenue=item.revenue or Decimal(0),
                        channel=Channel(item.channel),
                        created_at=item.created_at or datetime.min.replace(tzinfo=UTC),
                        currency=item.currency or "",
                        arm=item.arm,
                        visitor_id=item.visitor_id,
                    )
                )
        except PynamoDBException as exc:
            raise StoreError(f"reading attributions failed: {exc.msg}") from exc
        return rows

    def shop_day_totals(self, shop: str, first_day: date, last_day: date) -> list[ShopDayTotals]:
        """Each day's orders and test orders: the `_shop` item of the day's orders partition, and of the day's own
        partition for the days recorded before the orders' totals had their own."""
        return shop_day_totals(shop, [day.isoformat() for day in _days(first_day, last_day)])


def shop_day_totals(shop: str, days: Iterable[str]) -> list[ShopDayTotals]:
    """The days' `_shop` totals, the orders' partition and the day's own (days before the split) summed."""
    keys = [(key(shop, day), SHOP_COUNTER) for day in sorted(set(days)) for key in (orders_day_key, day_key)]
    sums: dict[str, tuple[int, int]] = {}
    try:
        for item in CounterItem.batch_get(keys, attributes_to_get=["pk", "orders", "test_orders"]):
            orders, tests = sums.get(day_of_key(item.pk), (0, 0))
            sums[day_of_key(item.pk)] = (orders + int(item.orders), tests + int(item.test_orders))
    except PynamoDBException as exc:
        raise StoreError(f"reading shop totals failed: {exc.msg}") from exc
    return [ShopDayTotals(day=day, orders=orders, test_orders=tests) for day, (orders, tests) in sorted(sums.items())]


def _event_item(shop: str, event: TrackedEvent, *, sk: str | None = None) -> EventItem:
    assert event.issued_at is not None  # put_events admits proven events only
    pk = visitor_key(shop, event.visitor_id)
    return EventItem(
        pk=pk,
        sk=sk or f"{_stamp(event.issued_at)}#{event.rec_tag}#{event.type}#{','.join(event.product_ids)}",
        shop_pk=shop_bucket_key(shop, pk),
        customer_pk=customer_key(shop, event.customer_id) if event.customer_id else None,
        rec_pk=rec_key(shop, event.rec_id) if event.rec_id and event.type != "impression" else None,
        event_id=event.event_id,
        type=event.type,
        at=event.at,
        visitor_id=event.visitor_id,
        customer_id=event.customer_id,
        rec_id=event.rec_id,
        placement=event.placement,
        arm=event.arm,
        source_product_id=event.source_product_id,
        product_ids=list(event.product_ids),
        positions=list(event.positions),
        listed=list(event.listed) or None,
        expires_at=event.at + timedelta(days=EVENT_RETENTION_DAYS),
    )


def _add_impression(shop: str, group: Sequence[TrackedEvent]) -> list[TrackedEvent]:
    """One UpdateItem for a request's impressions of one rec id: its fields set where absent, its products added to
    the set; the products that were not in the set before are the new impressions."""
    first = group[0]
    assert first.issued_at is not None  # put_events admits proven events only
    item = _event_item(shop, first, sk=f"{_stamp(first.issued_at)}#{first.rec_tag}#impression")
    products = {product for event in group for product in event.product_ids}
    actions: list[Any] = [
        attribute.set(attribute | value)  # if_not_exists: the first impression's fields stay
        for attribute, value in (
            (EventItem.shop_pk, item.shop_pk),
            (EventItem.customer_pk, item.customer_pk),
            (EventItem.event_id, f"{first.rec_tag}.impression"),
            (EventItem.type, item.type),
            (EventItem.at, item.at),
            (EventItem.visitor_id, item.visitor_id),
            (EventItem.customer_id, item.customer_id),
            (EventItem.rec_id, item.rec_id),
            (EventItem.placement, item.placement),
            (EventItem.arm, item.arm),
            (EventItem.source_product_id, item.source_product_id),
            (EventItem.listed, item.listed),
            (EventItem.expires_at, item.expires_at),
        )
        if value is not None
    ]
    actions.append(EventItem.product_set.add(products))
    try:
        answer = EventItem._get_connection().update_item(  # Model.update returns ALL_NEW only
            item.pk, item.sk, actions=actions, return_values="ALL_OLD"
        )
    except PynamoDBException as exc:
        raise StoreError(f"storing an impression failed: {exc.msg}") from exc
    before = set((answer.get("Attributes") or {}).get("product_set", {}).get("SS", []))
    return [event for event in group if not set(event.product_ids) <= before]


def _touch(item: EventItem) -> Touch:
    return Touch(
        event_id=item.event_id,
        kind=TouchKind(item.type),
        at=item.at,
        product_ids=item.products,
        rec_id=item.rec_id,
        arm=item.arm,
        page=page_of(item.rec_id),  # stored events were proven: their rec ids verified when they were stored
    )


# ---------------------------------------------------------------- the order's writes, in chunks
def basket_index_key(basket: Basket) -> str:
    """The basket's `by_shop_date_v2` sort key: `{created_at}#{order id}`, then `#{landing handle}` when its buyer
    landed on a product page (`orders.landing_handle` keeps no handle with a `#`)."""
    key = f"{_stamp(basket.created_at)}#{basket.order_id}"
    return f"{key}#{basket.landing}" if basket.landing else key


def landing_of(index_key: str | None) -> str | None:
    """The landing handle a basket's sort key carries (`basket_index_key`), None when it carries none."""
    parts = (index_key or "").split("#", 2)
    return parts[2] if len(parts) == 3 and parts[2] else None


def basket_record(shop: str, basket: Basket, **fields: Any) -> OrderRecord:
    """The order's own item (sk `order`), which carries its basket and is found by the similarity job through the
    `by_shop_date_v2` index under `{shop}#basket`. Attribution adds the buyer's keys and the attributed revenue; the
    backfill marks it `backfilled`."""
    return OrderRecord(
        pk=order_key(shop, basket.order_id),
        sk="order",
        gsi1pk=f"{shop}#basket",
        gsi1sk=basket_index_key(basket),
        shop=shop,
        order_id=basket.order_id,
        created_at=basket.created_at,
        currency=basket.currency,
        test=basket.test,
        basket=list(basket.product_ids),
        **fields,
    )


@dataclass(frozen=True)
class _Chunk:
    """One transaction: `records` are written only if absent (the first is the chunk's marker); `line_updates` only
    if the line is still as it was read; `counter_updates` unconditionally."""

    records: list[OrderRecord]
    counter_updates: list[tuple[Model, list[Any]]]
    line_updates: list[tuple[Model, list[Any], Any]] = field(default_factory=list)

    @property
    def size(self) -> int:
        """The transaction's actions."""
        return len(self.records) + len(self.counter_updates) + len(self.line_updates)


def _order_chunks(
    shop: str, attribution: OrderAttribution, visitor_days: Mapping[VisitorDayKey, Decimal | None] | None = None
) -> list[_Chunk]:
    """The order's transactions; `visitor_days` holds the revenue of its ROI visitor-days as read before."""
    order = attribution.order
    roi = order_delta(attribution, visitor_days or {})
    created = _stamp(order.created_at)
    day = order.created_at.date()
    expires = datetime.now(UTC) + timedelta(days=COUNTER_RETENTION_DAYS)
    pk = order_key(shop, order.order_id)

    def line_item(kind: str, line: OrderLine, **fields: Any) -> OrderRecord:
        """An order line's item: `line` (an attribution) or `missed` (a missed opportunity)."""
        return OrderRecord(
            pk=pk,
            sk=f"{kind}#{line.line_id}",
            gsi1pk=f"{shop}#{'attr' if kind == 'line' else kind}",
            gsi1sk=f"{created}#{order.order_id}#{line.line_id}",
            shop=shop,
            order_id=order.order_id,
            created_at=order.created_at,
            currency=order.currency,
            customer_id=order.customer_id,
            visitor_id=order.visitor_id,
            line_id=line.line_id,
            product_id=line.product_id,
            quantity=line.quantity,
            revenue=line.revenue,
            **fields,
        )

    def line_record(line: LineAttribution) -> OrderRecord:
        return line_item(
            "line",
            line.line,
            channel=line.channel.value,
            rec_id=line.credited.rec_id,
            arm=line.credited.arm,
            credited_event_id=line.credited.event_id,
            touched_at=line.credited.at,
            conversion_minutes=line.conversion_minutes,
            event_ids=list(line.event_ids[-EVENT_IDS_PER_LINE:]),  # the latest: a line's size stays bounded
        )

    def missed_record(missed: MissedOpportunity) -> OrderRecord:
        return line_item("missed", missed.line, shown_instead=list(missed.shown_instead))

    order_record = basket_record(
        shop,
        Basket(
            order_id=order.order_id,
            created_at=order.created_at,
            currency=order.currency,
            test=order.test,
            product_ids=order.product_ids,
            landing=order.landing,
        ),
        customer_id=order.customer_id,
        visitor_id=order.visitor_id,
        attributed_revenue=attribution.revenue,
    )
    shop_actions: list[Any] = [CounterItem.expires_at.set(expires)]
    if attribution.skipped_as_test:
        shop_actions.append(CounterItem.test_orders.add(1))
    else:
        shop_actions.append(CounterItem.orders.add(1))
        if attribution.revenue > 0:
            shop_actions += [
                CounterItem.attributed_orders.add(1),
                CounterItem.attributed_revenue.add(attribution.revenue),
            ]

    hour_sk = hour_key(order.created_at, "o")[1]
    records: list[OrderRecord] = [line_record(line) for line in attribution.attributed]
    records += [missed_record(missed) for missed in attribution.missed]
    by_line = {record.line_id: record for record in records}
    ordered_lines = [by_line[line.line_id] for line in order.lines if line.line_id in by_line]
    attributed_by_line = {line.line.line_id: line for line in attribution.attributed}

    chunks: list[_Chunk] = []
    for start in range(0, max(len(ordered_lines), 1), LINES_PER_TRANSACTION):
        part = ordered_lines[start : start + LINES_PER_TRANSACTION]
        index = start // LINES_PER_TRANSACTION
        marker = (
            order_record if index == 0 else OrderRecord(pk=pk, sk=f"chunk#{index}", shop=shop, order_id=order.order_id)
        )
        per_product: dict[str, list[LineAttribution]] = defaultdict(list)
        for record in part:
            line = attributed_by_line.get(record.line_id or "")
            if line is not None:
                per_product[line.product_id].append(line)
        updates: list[tuple[Model, list[Any]]] = [
            (
                CounterItem(day_key(shop, day), product),
                [
                    # An order converts a product once, however many of its lines carry it: CVR stays a rate.
                    CounterItem.purchases.add(1),
                    CounterItem.units.add(sum(line.line.quantity for line in lines)),
                    CounterItem.revenue.add(sum((line.revenue for line in lines), Decimal(0))),
                    CounterItem.expires_at.set(expires),
                ],
            )
            for product, lines in sorted(per_product.items())
        ]
        updates += day_totals.product_updates(
            shop, roi.day, product_increments(line for lines in per_product.values() for line in lines)
        )
        roi_visitors: list[tuple[Model, list[Any], Any]] = []
        if index == 0:
            updates.append((CounterItem(orders_day_key(shop, day), SHOP_COUNTER), shop_actions))
            updates.append((CounterItem(orders_day_key(shop, day), hour_sk), _hour_actions(attribution, expires)))
            updates += day_totals.day_updates(shop, roi)
            roi_visitors = day_totals.visitor_day_updates(shop, roi.visitor_days)
        chunks.append(_Chunk(records=[marker, *part], counter_updates=updates, line_updates=roi_visitors))
    for page, products in page_purchases(attribution.attributed).items():
        # A page's pair purchases: one update of its item of the order's day (the day the products' purchases go to).
        pair_actions: list[Any] = [pair_counter(PAIR_PURCHASES, product).add(1) for product in products]
        pair_actions.append(CounterItem.expires_at.set(expires))
        _place(chunks, shop, order.order_id, (CounterItem(day_key(shop, day), page_sk(page)), pair_actions))
    if not attribution.skipped_as_test:
        _add_sold(chunks, shop, order.order_id, day_key(shop, day), order.product_ids, expires)
    return chunks


def _place(chunks: list[_Chunk], shop: str, order_id: str, update: tuple[Model, list[Any]]) -> None:
    """Add an unconditional update to the first chunk with room for it, else to a chunk of its own (an order of very
    many lines), so that every transaction keeps under its limit."""
    room = [chunk for chunk in chunks if chunk.size < TRANSACTION_ACTIONS]
    if not room:
        marker = OrderRecord(pk=chunks[0].records[0].pk, sk=f"chunk#{len(chunks)}", shop=shop, order_id=order_id)
        room = [_Chunk(records=[marker], counter_updates=[])]
        chunks.append(room[0])
    room[0].counter_updates.append(update)


def _add_sold(
    chunks: list[_Chunk], shop: str, order_id: str, key: str, products: Sequence[str], expires: datetime
) -> None:
    """Every order adds 1 to `sold` of each product it contains, attributed or not (what best sellers rank by):
    merged into the product's update where the order already has one, else a small update in a chunk with room,
    else in a chunk of its own (an order of very many products), so that every transaction keeps under its limit."""
    pending: list[str] = []
    for product in dict.fromkeys(products):
        found = [
            actions
            for chunk in chunks
            for item, actions in chunk.counter_updates
            if isinstance(item, CounterItem) and item.pk == key and item.sk == product
        ]
        if found:
            found[0].append(CounterItem.sold.add(1))
        else:
            pending.append(product)
    for product in pending:
        _place(
            chunks,
            shop,
            order_id,
            (CounterItem(key, product), [CounterItem.sold.add(1), CounterItem.expires_at.set(expires)]),
        )


def _hour_actions(attribution: OrderAttribution, expires: datetime) -> list[Any]:
    """The order's share of its hour's totals: a non-test order, and the products it bought after a recommendation
    (once per product, as the product counters take them)."""
    if attribution.skipped_as_test:
        return [CounterItem.expires_at.set(expires)]
    products = {line.product_id for line in attribution.attributed}
    actions: list[Any] = [CounterItem.orders.add(1), CounterItem.expires_at.set(expires)]
    if products:
        actions.append(CounterItem.purchases.add(len(products)))
    return actions


@cache
def dynamo_store() -> DynamoStore:
    """The store for this execution environment, made on first use."""
    return DynamoStore()
