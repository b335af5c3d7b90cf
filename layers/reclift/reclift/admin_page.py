"""The embedded admin page: one HTML document with its own small script and inline SVG chart (no CDN but Shopify's
App Bridge), served without authentication because the browser loads it; every data call it makes carries the
session token (`Authorization: Bearer`), from App Bridge inside the Shopify admin or Shopify's `id_token` URL
parameter otherwise."""

from __future__ import annotations

import html
import json
import secrets
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Literal, get_args, get_origin

from reclift.ids import is_shop_domain
from reclift.settings import ShopSettings

SHOPIFY_ADMIN = "https://admin.shopify.com"
APP_BRIDGE_ORIGIN = "https://cdn.shopify.com"


@dataclass(frozen=True)
class Page:
    body: str
    headers: dict[str, str]


@cache
def _template(path: Path) -> str:
    return path.read_text(encoding="utf-8").replace("{{CHOICES}}", setting_choices())


def setting_choices() -> str:
    """The settings whose values are a fixed list (`policy`, `objective`), each with its list in the model's order,
    as a JSON object for the page's script: the selects offer what the API accepts, from the one place that says it."""
    choices = {
        name: list(get_args(field.annotation))
        for name, field in ShopSettings.model_fields.items()
        if get_origin(field.annotation) is Literal
    }
    # inside a <script>: no "</" may close it early (the values are identifiers, but the page should not rely on that)
    return json.dumps(choices).replace("<", "\\u003c")


def admin_page(template: Path, *, api_key: str, shop: str | None) -> Page:
    """The page with a fresh script nonce, and a CSP that lets only the Shopify admin (and the shop's own admin) frame
    it, as Shopify requires of embedded apps."""
    nonce = secrets.token_urlsafe(16)
    body = _template(template).replace("{{API_KEY}}", html.escape(api_key, quote=True)).replace("{{NONCE}}", nonce)
    ancestors = SHOPIFY_ADMIN + (f" https://{shop}" if shop and is_shop_domain(shop) else "")
    policy = "; ".join(
        [
            "default-src 'none'",
            f"script-src 'nonce-{nonce}' {APP_BRIDGE_ORIGIN}",
            f"style-src 'nonce-{nonce}'",
            "connect-src 'self' https://*.shopify.com",
            "img-src 'self' data:",
            "base-uri 'none'",
            "form-action 'none'",
            f"frame-ancestors {ancestors}",
        ]
    )
    headers = {
        "Content-Type": "text/html; charset=utf-8",
        "Content-Security-Policy": policy,
        "Cache-Control": "no-store",
        "X-Content-Type-Options": "nosniff",
        "Referrer-Policy": "no-referrer",
    }
    return Page(body=body, headers=headers)
