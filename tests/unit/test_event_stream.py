"""The events table's stream read back as the events it adds: an impression item's new products, a click's insert,
and nothing for removals or rewrites that add nothing."""

from __future__ import annotations

import copy
import json
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from reclift.data.event_stream import new_events
from reclift.data.models import EventItem

FIXTURE = Path(__file__).resolve().parents[1] / "fixtures" / "aws" / "dynamodb-stream-update.json"
SHOP = "stream-test.myshopify.com"
AT = datetime(2026, 12, 2, 10, 30, tzinfo=UTC)


def envelope(name: str) -> dict[str, Any]:
    """A record as Lambda delivers it (the SAM CLI's sample), its images to be replaced."""
    records = json.loads(FIXTURE.read_text(encoding="utf-8"))["Records"]
    record: dict[str, Any] = copy.deepcopy(next(r for r in records if r["eventName"] == name))
    record["dynamodb"].pop("NewImage", None)
    record["dynamodb"].pop("OldImage", None)
    return record


def impression(
    products: set[str], *, visitor: str = "v-1", arm: str = "learning", listed: list[str] | None = None
) -> dict[str, Any]:
    item = EventItem(
        pk=f"{SHOP}#v#{visitor}",
        sk="2026-12-02T10:29:58.000000Z#tag1#impression",
        event_id="tag1.impression",
        type="impression",
        at=AT,
        visitor_id=visitor,
        rec_id="rec-1",
        placement="product",
        arm=arm,
        product_set=products,
        listed=listed,
        expires_at=AT + timedelta(days=90),
    )
    return item.serialize()


def click(product: str) -> dict[str, Any]:
    item = EventItem(
        pk=f"{SHOP}#v#v-1",
        sk=f"2026-12-02T10:29:58.000000Z#tag1#click#{product}",
        event_id=f"tag1.click.{product}",
        type="click",
        at=AT,
        visitor_id="v-1",
        rec_id="rec-1",
        rec_pk=f"{SHOP}#r#rec-1",
        placement="product",
        arm="learning",
        product_ids=[product],
        positions=[2],
        expires_at=AT + timedelta(days=90),
    )
    return item.serialize()


def record(name: str, new: dict[str, Any] | None, old: dict[str, Any] | None = None) -> dict[str, Any]:
    out = envelope("MODIFY" if name == "MODIFY" else "INSERT")
    out["eventName"] = name
    if new is not None:
        out["dynamodb"]["NewImage"] = new
    if old is not None:
        out["dynamodb"]["OldImage"] = old
    return out


def test_an_inserted_impression_adds_each_of_its_products() -> None:
    (event,) = new_events([record("INSERT", impression({"111", "112"}))])[SHOP]
    assert (event.type, event.product_ids, event.visitor_id, event.arm, event.at) == (
        "impression",
        ("111", "112"),
        "v-1",
        "learning",
        AT,
    )


def test_a_modified_impression_adds_only_the_products_its_update_added() -> None:
    (event,) = new_events([record("MODIFY", impression({"111", "112", "113"}), impression({"111", "112"}))])[SHOP]
    assert event.product_ids == ("113",)


def test_a_rewrite_that_added_nothing_removals_and_foreign_items_are_not_events() -> None:
    same = impression({"111"})
    removed = record("REMOVE", None, impression({"111"}))
    foreign = record("INSERT", {"pk": {"S": f"{SHOP}#2026-12-02"}, "sk": {"S": "111"}})
    assert new_events([record("MODIFY", same, same), removed, foreign]) == {}


def test_a_click_is_counted_once_on_insert_and_never_on_a_rewrite() -> None:
    (event,) = new_events([record("INSERT", click("114"))])[SHOP]
    assert (event.type, event.product_ids) == ("click", ("114",))
    assert new_events([record("MODIFY", click("114"), click("114"))]) == {}


def test_events_are_grouped_by_shop_in_stream_order() -> None:
    other = impression({"9"})
    other["pk"] = {"S": "other.myshopify.com#v#v-9"}
    found = new_events([record("INSERT", impression({"1"})), record("INSERT", other), record("INSERT", click("2"))])
    assert [e.product_ids for e in found[SHOP]] == [("1",), ("2",)]
    assert [e.product_ids for e in found["other.myshopify.com"]] == [("9",)]


def test_an_impression_that_keeps_its_signed_list_gives_each_added_product_its_place_in_it() -> None:
    listed = ["113", "111", "112"]
    new = impression({"111", "112", "113"}, listed=listed)
    (event,) = new_events([record("MODIFY", new, impression({"111"}, listed=listed))])[SHOP]
    assert (event.product_ids, event.positions) == (("112", "113"), (3, 1))


def test_an_impression_stored_before_it_kept_its_list_has_unknown_places() -> None:
    (event,) = new_events([record("INSERT", impression({"111", "112"}))])[SHOP]
    assert event.positions == (0, 0)
