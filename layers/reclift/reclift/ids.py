"""Identifiers as reclift keeps them: Shopify numeric ids as strings, shop domains in lower case."""

from __future__ import annotations

import re

_SHOP_DOMAIN = re.compile(r"[a-z0-9][a-z0-9-]*\.myshopify\.com")
_GID = re.compile(r"^gid://shopify/(?P<kind>[A-Za-z]+)/(?P<id>[0-9]{1,20})$")
_NUMERIC = re.compile(r"^[0-9]{1,20}$")


def is_shop_domain(value: str) -> bool:
    """Whether `value` is exactly a shop's permanent `*.myshopify.com` domain (in any case)."""
    return value.isascii() and _SHOP_DOMAIN.fullmatch(value.lower()) is not None


def shop_domain(value: str) -> str:
    """The shop's permanent `*.myshopify.com` domain, lower-cased; ValueError for anything else."""
    domain = value.strip().lower()
    if not is_shop_domain(domain):
        raise ValueError(f"not a myshopify.com shop domain: {value[:100]!r}")
    return domain


def shopify_id(value: object, kind: str = "Product") -> str:
    """A Shopify numeric id as a string; accepts ints, digit strings and `gid://shopify/<kind>/N`."""
    if isinstance(value, bool):
        raise ValueError("an id cannot be a boolean")
    if isinstance(value, int):
        if value < 0:
            raise ValueError("an id cannot be negative")
        return str(value)
    if isinstance(value, str):
        text = value.strip()
        match = _GID.match(text)
        if match:
            if match["kind"] != kind:
                raise ValueError(f"expected a {kind} id, got a {match['kind']} id")
            return str(int(match["id"]))
        if _NUMERIC.match(text):
            return str(int(text))
    raise ValueError(f"not a Shopify {kind} id: {str(value)[:60]!r}")
