"""The merchant's rules (`/admin/rules`): products, tags, product types and vendors never recommended, products
pinned first per placement, and products the nightly learning never blacklists. Gift cards are never recommended,
whatever the rules say.

Bounds keep the shop's item (read by every recommendation's first round trip) small: at most 500 product ids per
list of ids (about 10 KB), 100 tags, product types or vendors of at most 255 characters each (Shopify's own limit
on a tag, a type and a vendor), and 20 pins per placement (a widget shows at most 20 products). Tags, types and
vendors match without regard to case or surrounding spaces, as Shopify's own tag filters do.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable
from typing import Annotated, Any

from pydantic import AfterValidator, BaseModel, BeforeValidator, ConfigDict, Field, StringConstraints, ValidationError

from reclift.ids import shopify_id

MAX_PRODUCT_IDS = 500
MAX_NAMES = 100
MAX_NAME_LENGTH = 255
MAX_PINS = 20


def _product_id(value: object) -> str:
    if not isinstance(value, (str, int)) or isinstance(value, bool):
        raise ValueError("expected a Shopify product id (digits or gid://shopify/Product/N)")
    return shopify_id(value, "Product")


def _unique(values: list[str]) -> list[str]:
    return list(dict.fromkeys(values))


def _unique_names(values: list[str]) -> list[str]:
    return list(dict.fromkeys(normalised_name(value) for value in values if normalised_name(value)))


def normalised_name(value: str) -> str:
    """A tag, product type or vendor as rules compare it."""
    return " ".join(value.split()).casefold()


ProductIdText = Annotated[str, BeforeValidator(_product_id)]
Name = Annotated[str, StringConstraints(min_length=1, max_length=MAX_NAME_LENGTH)]
ProductIds = Annotated[list[ProductIdText], Field(max_length=MAX_PRODUCT_IDS), AfterValidator(_unique)]
Pins = Annotated[list[ProductIdText], Field(max_length=MAX_PINS), AfterValidator(_unique)]
Names = Annotated[list[Name], Field(max_length=MAX_NAMES), AfterValidator(_unique_names)]


class Exclusions(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    product_ids: ProductIds = Field(default_factory=list)
    tags: Names = Field(default_factory=list)
    product_types: Names = Field(default_factory=list)
    vendors: Names = Field(default_factory=list)


class Pinned(BaseModel):
    """Products shown first, in this order, per placement."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    product: Pins = Field(default_factory=list)
    cart: Pins = Field(default_factory=list)
    home: Pins = Field(default_factory=list)


class MerchantRules(BaseModel):
    """A shop's rules; every list present, possibly empty."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    exclude: Exclusions = Field(default_factory=Exclusions)
    pin: Pinned = Field(default_factory=Pinned)
    never_blacklist: ProductIds = Field(default_factory=list)

    def pinned(self, placement: str) -> list[str]:
        return list(getattr(self.pin, placement, []))

    @property
    def empty(self) -> bool:
        return self == MerchantRules()


class RulesError(ValueError):
    """A rules change naming an unknown key or a malformed value, with where it is (`exclude.product_ids[2]`)."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(f"{field}: {message}")
        self.field = field
        self.message = message


def _location(loc: Iterable[int | str]) -> str:
    text = ""
    for part in loc:
        if isinstance(part, int):
            text += f"[{part}]"
        elif not part.startswith(("function-", "constrained-")):  # pydantic's names of validator steps
            text += f".{part}" if text else part
    return text or "body"


def merge_rules(current: MerchantRules, changes: object) -> MerchantRules:
    """`current` with the lists `changes` names replaced (a partial object, nested: `{"exclude": {"tags": […]}}`
    replaces the excluded tags alone); RulesError names the first offending key or element."""
    if not isinstance(changes, dict):
        raise RulesError("body", "rules must be a JSON object")
    merged: dict[str, Any] = current.model_dump()
    for key, value in changes.items():
        if key in ("exclude", "pin") and isinstance(value, dict) and isinstance(merged.get(key), dict):
            merged[key] = merged[key] | value
        else:
            merged[key] = value
    try:
        return MerchantRules.model_validate(merged)
    except ValidationError as exc:
        first = exc.errors()[0]
        message = "unknown key" if first["type"] == "extra_forbidden" else str(first["msg"])
        raise RulesError(_location(first["loc"]), message.removeprefix("Value error, ")) from exc


def stored_rules(raw: dict[str, Any] | None) -> MerchantRules:
    """Rules as stored; a part that no longer validates (a bound lowered since) is dropped on its own, not fatal."""
    if not raw:
        return MerchantRules()
    try:
        return MerchantRules.model_validate(raw)
    except ValidationError:
        rules = MerchantRules()
        for key, value in raw.items():
            try:
                rules = merge_rules(rules, {key: value})
            except RulesError:
                continue
        return rules


def stored_form(rules: MerchantRules) -> dict[str, Any]:
    """What is stored: the non-empty lists only (an untouched shop stores nothing)."""
    return {
        key: {name: values for name, values in value.items() if values} if isinstance(value, dict) else value
        for key, value in rules.model_dump().items()
        if value and (not isinstance(value, dict) or any(value.values()))
    }


def excluded_by_rules(
    rules: MerchantRules,
    product_id: str,
    *,
    tags: Collection[str] = (),
    product_type: str | None = None,
    vendor: str | None = None,
    gift_card: bool = False,
) -> bool:
    """Whether the rules (or its being a gift card) keep a product out of every recommendation."""
    if gift_card or product_id in rules.exclude.product_ids:
        return True
    exclude = rules.exclude
    if product_type and exclude.product_types and normalised_name(product_type) in exclude.product_types:
        return True
    if vendor and exclude.vendors and normalised_name(vendor) in exclude.vendors:
        return True
    return bool(exclude.tags) and any(normalised_name(tag) in exclude.tags for tag in tags)
