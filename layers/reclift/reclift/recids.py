"""Recommendation ids the server issues and the events that cite them can prove (DESIGN.md §2, "Proven events").

A rec id is `2{arm}p.{page}.{issued}.{nonce}.{digest}.{tag}` for the product placement (at most 93 characters of
`[A-Za-z0-9_.-]`, page ids of up to 20 digits) and `1{arm}{placement}.{issued}.{nonce}.{digest}.{tag}` (72
characters) for the cart and home placements:
- `arm` `l`|`h` and `placement` `p`|`c`|`h`, `issued` the Unix second it was issued, `nonce` 8 random bytes (one id
  per response);
- `page` (version 2 only) the numeric id of the product whose page the widget was served on: the page is signed, so
  what a product sells in the widget of one page (reclift.learning.PairDay) is learned from the server's word, never
  from the browser's `source_product_id`;
- `digest` SHA-256 (first 16 bytes) of the visitor id and the products the response listed, in their order: the
  listed products travel back in the events' `rec_products` (the response's `event_fields`), since twenty product
  ids do not fit in 128 characters;
- `tag` HMAC-SHA256 (first 16 bytes) of the shop and everything before it, under a key derived from the app secret
  with a domain-separation label: no new secret, and it rotates with the app secret.

So the MAC binds the shop, the visitor, the arm, the placement, the page, the listed products and the issue time,
and no state is kept: issuing costs no DynamoDB request. An event proves something only when its rec id verifies for
the shop, its visitor and listed products give the digest, and it is at most `REC_ID_LIFETIME` old. At attribution,
where only the id is known (an order line's `_rec_id`), the tag alone is checked for the shop. Version-1 ids of the
product placement (issued before the page was signed) stay valid for their lifetime and carry no page.

Rotation: the keys of the current and the previous app secret are both accepted for as long as the previous one is
configured; a rec id lives 24 hours, so keeping the previous secret one day after a rotation keeps every live rec
id valid. Pure functions: no AWS, no I/O.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import os
import re
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from functools import lru_cache
from typing import Literal

from reclift.ranking import Arm

Placement = Literal["product", "cart", "home"]

REC_ID_LIFETIME = timedelta(hours=24)
CLOCK_SKEW = timedelta(seconds=60)  # an id from another execution environment's clock, a moment ahead
KEY_LABEL = b"reclift rec_id v1"
VERSION = "1"  # cart and home ids, and product ids issued without a page
PAGE_VERSION = "2"  # product ids that sign their page
MAX_PAGE_DIGITS = 20  # Shopify's numeric ids (reclift.ids)
_ARMS: dict[Arm, str] = {"learning": "l", "holdout": "h"}
_PLACEMENTS: dict[Placement, str] = {"product": "p", "cart": "c", "home": "h"}
_ARM_OF = {code: arm for arm, code in _ARMS.items()}
_PLACEMENT_OF = {code: placement for placement, code in _PLACEMENTS.items()}
_PAGE = re.compile(rf"[0-9]{{1,{MAX_PAGE_DIGITS}}}")
_SIGNED = (
    r"\.(?P<issued>[0-9]{1,12})\.(?P<nonce>[A-Za-z0-9_-]{11})"
    r"\.(?P<digest>[A-Za-z0-9_-]{22})\.(?P<tag>[A-Za-z0-9_-]{22})"
)
_REC_IDS = (
    re.compile(r"1(?P<arm>[lh])(?P<placement>[pch])" + _SIGNED),
    re.compile(rf"2(?P<arm>[lh])(?P<placement>p)\.(?P<page>[0-9]{{1,{MAX_PAGE_DIGITS}}})" + _SIGNED),
)


@lru_cache(maxsize=8)
def _derived(secret: str) -> bytes:
    return hmac.new(secret.encode("utf-8"), KEY_LABEL, hashlib.sha256).digest()


def rec_id_keys(secrets: Sequence[str]) -> tuple[bytes, ...]:
    """The rec id keys of the app secrets (current first): HMAC(secret, "reclift rec_id v1")."""
    keys = tuple(_derived(secret) for secret in secrets if secret)
    if not keys:
        raise ValueError("at least one non-empty app secret is required")
    return keys


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).decode("ascii").rstrip("=")


def _digest(visitor_id: str | None, products: Sequence[str]) -> str:
    text = f"{visitor_id or ''}\n{','.join(products)}"
    return _b64(hashlib.sha256(text.encode("utf-8")).digest()[:16])


def _tag(key: bytes, shop: str, body: str) -> str:
    return _b64(hmac.new(key, f"{shop}\n{body}".encode(), hashlib.sha256).digest()[:16])


def _parsed(rec_id: str | None) -> re.Match[str] | None:
    if not rec_id:
        return None
    for pattern in _REC_IDS:
        if (match := pattern.fullmatch(rec_id)) is not None:
            return match
    return None


def page_of(rec_id: str | None) -> str | None:
    """The page a rec id says it was issued for, read without its tag: only for ids the server verified before it
    stored them (the events table holds proven events only). None for cart and home ids and for version-1 ids."""
    match = _parsed(rec_id)
    return match["page"] if match is not None and match.re is _REC_IDS[1] else None


@dataclass(frozen=True)
class IssuedRec:
    """A rec id whose tag verified: what the server put in it."""

    rec_id: str
    arm: Arm
    placement: Placement
    issued_at: datetime
    tag: str  # unique per rec id: events are keyed by it
    page: str | None = None  # the product whose page the widget was on (product placement, version 2), as signed


@dataclass(frozen=True)
class RecIds:
    """Issues and verifies rec ids under the keys of the app secrets (the first signs, every one verifies)."""

    keys: tuple[bytes, ...]

    @classmethod
    def of_secrets(cls, secrets: Sequence[str]) -> RecIds:
        return cls(rec_id_keys(secrets))

    def issue(
        self,
        *,
        shop: str,
        visitor_id: str | None,
        arm: Arm,
        placement: Placement,
        products: Sequence[str],
        now: datetime,
        nonce: bytes | None = None,
        page: str | None = None,
    ) -> str:
        """A rec id for one response; `page`, the product of the page a product-placement widget is on, is signed
        into it (version 2). ValueError for a page that is not a numeric product id or on another placement."""
        header = f"{VERSION}{_ARMS[arm]}{_PLACEMENTS[placement]}"
        if page is not None:
            if placement != "product" or _PAGE.fullmatch(page) is None:
                raise ValueError(f"a page is a product id of the product placement, got {page[:40]!r} on {placement}")
            header = f"{PAGE_VERSION}{_ARMS[arm]}{_PLACEMENTS[placement]}.{page}"
        nonce_text = _b64(nonce if nonce is not None else os.urandom(8))
        body = f"{header}.{int(now.timestamp())}.{nonce_text}.{_digest(visitor_id, products)}"
        return f"{body}.{_tag(self.keys[0], shop, body)}"

    def verified(self, rec_id: str | None, *, shop: str) -> IssuedRec | None:
        """The id as issued to `shop`, or None for anything the server did not issue to it (any age)."""
        match = _parsed(rec_id)
        if match is None or rec_id is None:
            return None
        body, _, tag = rec_id.rpartition(".")
        provided = tag.encode("ascii")
        matched = False
        for key in self.keys:  # every key is tried: the time taken does not say which one matched
            matched |= hmac.compare_digest(provided, _tag(key, shop, body).encode("ascii"))
        if not matched:
            return None
        return IssuedRec(
            rec_id=rec_id,
            arm=_ARM_OF[match["arm"]],
            placement=_PLACEMENT_OF[match["placement"]],
            issued_at=datetime.fromtimestamp(int(match["issued"]), UTC),
            tag=tag,
            page=match.groupdict().get("page"),
        )

    def proven(
        self, rec_id: str | None, *, shop: str, visitor_id: str, listed: Sequence[str], now: datetime
    ) -> IssuedRec | None:
        """The id when an event citing it proves what was shown: issued to `shop` and `visitor_id` with exactly the
        products `listed`, at most REC_ID_LIFETIME ago; else None."""
        issued = self.verified(rec_id, shop=shop)
        if issued is None or not hmac.compare_digest(
            issued.rec_id.split(".")[-2].encode("ascii"), _digest(visitor_id, listed).encode("ascii")
        ):
            return None
        if not now - REC_ID_LIFETIME <= issued.issued_at <= now + CLOCK_SKEW:
            return None
        return issued
