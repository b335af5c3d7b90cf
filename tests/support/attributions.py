"""Order attributions built directly (no storefront events), for tests of what the store and the ROI do with them."""

from __future__ import annotations

from datetime import datetime, timedelta
from decimal import Decimal

from reclift.attribution import Channel, LineAttribution, OrderAttribution, Touch, TouchKind
from reclift.orders import Order, OrderLine

# A line: (product id, quantity, unit price in cents, channel, arm of the credited recommendation).
Line = tuple[str, int, int, Channel, str]


def attribution(
    order_id: str, at: datetime, visitor: str | None, lines: list[Line], *, test: bool = False
) -> OrderAttribution:
    """An order placed at `at` by `visitor`, every line attributed to a recommendation of its arm an hour before."""
    order_lines = [
        OrderLine(f"{order_id}-{n}", product, quantity, Decimal(cents).scaleb(-2), Decimal(0), None)
        for n, (product, quantity, cents, _, _) in enumerate(lines)
    ]
    order = Order(order_id, at, "USD", test, None, visitor, tuple(order_lines))
    attributed = tuple(
        LineAttribution(
            line=line,
            channel=channel,
            credited=Touch(
                f"e-{line.line_id}", TouchKind.CLICK, at - timedelta(hours=1), (line.product_id or "",), None, arm
            ),
            conversion_minutes=60,
            event_ids=(),
        )
        for line, (_, _, _, channel, arm) in zip(order_lines, lines, strict=True)
    )
    return OrderAttribution(order, attributed, (), skipped_as_test=test)
