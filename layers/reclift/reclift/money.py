"""Money as reclift shows it: decimal strings in shop currency, never floats."""

from __future__ import annotations

from decimal import Decimal

CENT = Decimal("0.01")


def money_text(value: Decimal) -> str:
    """At least two decimal places (`0` → `"0.00"`), more only when the amount itself has them."""
    exponent = value.as_tuple().exponent
    if isinstance(exponent, int) and exponent >= -2:
        return format(value.quantize(CENT), "f")
    return format(value, "f")
