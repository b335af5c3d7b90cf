"""A shop's offline access grant, as stored (JSON in an SSM SecureString) and the decisions about its expiry.

An expiring offline token lasts an hour and comes with a refresh token (which also expires, after 90 days, and is
replaced on every refresh). The grant is stored whole — access token, its expiry, refresh token, its expiry, scopes —
so whoever uses the Admin API can refresh it. A value that is not JSON is a legacy non-expiring token, as stored
before: still used until the shop's next admin visit exchanges a session token again (cycles it).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from reclift.shopify_admin import OfflineToken

EXPIRING = "expiring"  # the grant's kind: an expiring token with its refresh token
NON_EXPIRING = "non-expiring"  # a legacy token (Shopify refuses these for public apps from January 1, 2027)
REFRESH_BEFORE = timedelta(minutes=5)  # an access token this close to its expiry is refreshed before it is used
CYCLE_BEFORE = timedelta(days=7)  # a refresh token this close to its expiry is replaced at the next admin visit


class GrantError(ValueError):
    """The stored value is no grant (never its content in the message)."""


@dataclass(frozen=True)
class OfflineGrant:
    access_token: str = field(repr=False)
    scopes: frozenset[str] = frozenset()
    expires_at: datetime | None = None  # None: a non-expiring token
    refresh_token: str | None = field(default=None, repr=False)
    refresh_token_expires_at: datetime | None = None

    @property
    def kind(self) -> str:
        return EXPIRING if self.refresh_token is not None and self.expires_at is not None else NON_EXPIRING


def grant_from(token: OfflineToken, *, now: datetime) -> OfflineGrant:
    """What a token exchange or a refresh answered, with its lifetimes turned into times (from `now`, the time the
    request was sent, so the expiries are never later than Shopify's)."""
    return OfflineGrant(
        access_token=token.access_token,
        scopes=token.scopes,
        expires_at=now + timedelta(seconds=token.expires_in) if token.expires_in is not None else None,
        refresh_token=token.refresh_token,
        refresh_token_expires_at=(
            now + timedelta(seconds=token.refresh_token_expires_in)
            if token.refresh_token_expires_in is not None
            else None
        ),
    )


def grant_json(grant: OfflineGrant) -> str:
    """The grant as stored."""
    return json.dumps(
        {
            "access_token": grant.access_token,
            "expires_at": grant.expires_at.isoformat() if grant.expires_at else None,
            "refresh_token": grant.refresh_token,
            "refresh_token_expires_at": (
                grant.refresh_token_expires_at.isoformat() if grant.refresh_token_expires_at else None
            ),
            "scopes": sorted(grant.scopes),
        },
        separators=(",", ":"),
    )


def _time(raw: dict[str, object], key: str) -> datetime | None:
    value = raw.get(key)
    if value is None:
        return None
    try:
        moment = datetime.fromisoformat(str(value))
    except ValueError as exc:
        raise GrantError(f"the stored grant's {key} is not an ISO 8601 time") from exc
    if moment.tzinfo is None:
        raise GrantError(f"the stored grant's {key} has no time zone")
    return moment


def parse_grant(stored: str) -> OfflineGrant:
    """The stored grant: JSON as `grant_json` writes it, or a bare legacy token string. GrantError otherwise."""
    text = stored.strip()
    if not text:
        raise GrantError("the stored grant is empty")
    if not text.startswith("{"):
        return OfflineGrant(access_token=text)  # a legacy non-expiring token, stored bare
    try:
        raw = json.loads(text)
    except ValueError as exc:
        raise GrantError("the stored grant is not JSON") from exc
    if not isinstance(raw, dict) or not isinstance(raw.get("access_token"), str) or not raw["access_token"]:
        raise GrantError("the stored grant has no access token")
    refresh = raw.get("refresh_token")
    scopes = raw.get("scopes")
    return OfflineGrant(
        access_token=raw["access_token"],
        scopes=frozenset(s for s in scopes if isinstance(s, str)) if isinstance(scopes, list) else frozenset(),
        expires_at=_time(raw, "expires_at"),
        refresh_token=refresh if isinstance(refresh, str) and refresh else None,
        refresh_token_expires_at=_time(raw, "refresh_token_expires_at"),
    )


def needs_refresh(grant: OfflineGrant, now: datetime, *, before: timedelta = REFRESH_BEFORE) -> bool:
    """Whether the access token should be refreshed before it is used: an expiring one expiring within `before`."""
    return grant.kind == EXPIRING and grant.expires_at is not None and grant.expires_at - before <= now


def can_refresh(grant: OfflineGrant, now: datetime) -> bool:
    """Whether the grant has a refresh token still valid now (an unknown expiry counts as valid: Shopify decides)."""
    if grant.refresh_token is None:
        return False
    return grant.refresh_token_expires_at is None or grant.refresh_token_expires_at > now


def needs_cycling(kind: str | None, refresh_token_expires_at: datetime | None, now: datetime) -> bool:
    """Whether an installed shop's grant should be replaced by exchanging a session token again (what its next
    admin visit does): a legacy non-expiring token, a refresh that failed (kind recorded otherwise), or a refresh
    token about to expire. Decided from the shop's item, with no SSM read."""
    if kind != EXPIRING:
        return True
    return refresh_token_expires_at is not None and refresh_token_expires_at - CYCLE_BEFORE <= now
