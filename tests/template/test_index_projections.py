"""The orders table's `by_shop_date_v2` index projects what its queries read, as the model declares it; the index it
replaces is in the template only for the one deploy of an upgrade (KeepPreviousOrdersIndex)."""

from __future__ import annotations

from typing import Any

import pytest

from reclift.data.models import ORDERS_BY_SHOP_DATE_ATTRIBUTES, OrderRecord
from reclift_local.template import Resolver


def orders_indexes(sam_template: dict[str, Any], **parameters: str) -> dict[str, dict[str, Any]]:
    resolver = Resolver(sam_template, region="us-east-1", parameter_overrides=parameters)
    table = resolver.resolve(sam_template["Resources"]["OrdersTable"]["Properties"])
    return {index["IndexName"]: index for index in table["GlobalSecondaryIndexes"]}


def test_the_template_projects_what_the_model_reads_through_the_index(sam_template: dict[str, Any]) -> None:
    """Given the model's index, then the template's index of that name projects exactly the model's attributes:
    an attribute a query needs that the template leaves out would read as None."""
    index = orders_indexes(sam_template)[OrderRecord.by_shop_date.Meta.index_name]
    assert index["Projection"]["ProjectionType"] == "INCLUDE"
    assert index["Projection"]["NonKeyAttributes"] == ORDERS_BY_SHOP_DATE_ATTRIBUTES
    assert OrderRecord.by_shop_date.Meta.projection.non_key_attributes == ORDERS_BY_SHOP_DATE_ATTRIBUTES


def test_what_the_lines_keep_for_the_table_alone_is_not_projected() -> None:
    """A line's event ids, credited event and rec id, the order's attributed revenue: what no index query reads."""
    kept_out = {"event_ids", "credited_event_id", "rec_id", "touched_at", "attributed_revenue", "shop", "customer_id"}
    assert kept_out.isdisjoint(ORDERS_BY_SHOP_DATE_ATTRIBUTES)
    assert set(ORDERS_BY_SHOP_DATE_ATTRIBUTES) <= set(OrderRecord.get_attributes())


@pytest.mark.parametrize(
    ("keep", "names"), [("false", ["by_shop_date_v2"]), ("true", ["by_shop_date_v2", "by_shop_date"])]
)
def test_the_previous_index_is_kept_only_when_asked(sam_template: dict[str, Any], keep: str, names: list[str]) -> None:
    """Given KeepPreviousOrdersIndex, then the orders table has the old ALL index beside the new one only when it is
    "true" (CloudFormation creates or deletes one index per table update); by default it has the new one alone."""
    indexes = orders_indexes(sam_template, KeepPreviousOrdersIndex=keep)
    assert list(indexes) == names
    if "by_shop_date" in indexes:
        assert indexes["by_shop_date"]["Projection"] == {"ProjectionType": "ALL"}
    assert sam_template["Parameters"]["KeepPreviousOrdersIndex"]["Default"] == "false"
