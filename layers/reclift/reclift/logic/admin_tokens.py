"""A fresh Admin API access token for whoever calls the Admin API (the backfill), from the shop's stored grant.

An expiring access token is refreshed when it expires within a few minutes, and at once when the Admin API answers
401 (the client asks for that once per request). The rotated grant — the new refresh token replaces the old one — is
stored before the new access token is used. When storing fails after Shopify answered, the stored refresh token is
still good: Shopify keeps a used refresh token valid until its replacement is first used, so the next attempt
refreshes with it again.

A refresh Shopify refuses (`invalid_grant`: the refresh token expired, was revoked or retired), a refresh token
expired by the stored expiry, or a legacy non-expiring token refused with 401 cannot be mended here: the shop's item
is marked `refresh_failed`, so the next admin visit exchanges a session token again (install.py), and the caller
gets TokenUnavailable (the backfill's message fails, is retried by its queue, and lands in the DLQ, to be re-driven,
if no admin visit came first). A refresh that failed for a transient reason (network, 429, 5xx) is an AdminApiError
retried the same way, with the grant untouched.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Protocol

from reclift import config
from reclift.offline_grants import EXPIRING, OfflineGrant, can_refresh, grant_from, needs_refresh
from reclift.shopify_admin import (
    AdminAccessDenied,
    AdminApiError,
    OfflineToken,
    TokenExchangeError,
    refresh_offline_token,
)

Refresh = Callable[[str, str], OfflineToken]  # (shop, refresh token) → the new pair


class TokenUnavailable(AdminAccessDenied):
    """The shop has no usable grant until a session token is exchanged again (its next admin visit)."""


class Grants(Protocol):
    """Where grants are kept (TokenVault on AWS)."""

    def grant(self, shop: str) -> OfflineGrant | None: ...
    def put_grant(self, shop: str, grant: OfflineGrant) -> None: ...


class RefreshFailures(Protocol):
    """Where a refused refresh is recorded (InstallRegistry on AWS)."""

    def mark_refresh_failed(self, shop: str) -> None: ...


def shopify_refresh(shop: str, refresh_token: str) -> OfflineToken:
    """The refresh with Shopify, with the app's own credentials (the current secret)."""
    return refresh_offline_token(
        shop, refresh_token, api_key=config.required("SHOPIFY_API_KEY"), api_secret=config.current_api_secret()
    )


def _utc_now() -> datetime:
    return datetime.now(UTC)


@dataclass
class ShopAccessTokens:
    """The shop's access token for an AdminClient (its `tokens`): read once, refreshed as needed."""

    shop: str
    grants: Grants
    failures: RefreshFailures
    refresh: Refresh = shopify_refresh
    clock: Callable[[], datetime] = _utc_now
    refreshes: int = 0
    _grant: OfflineGrant | None = field(default=None, repr=False)

    def access_token(self) -> str:
        grant = self._current()
        if needs_refresh(grant, self.clock()):
            grant = self._refreshed(grant)
        return grant.access_token

    def renewed_access_token(self) -> str:
        """After a 401: a new access token, or TokenUnavailable when the grant cannot give one."""
        return self._refreshed(self._current()).access_token

    def _current(self) -> OfflineGrant:
        if self._grant is None:
            self._grant = self.grants.grant(self.shop)
            if self._grant is None:
                raise TokenUnavailable(f"no Admin API access grant is stored for {self.shop}")
        return self._grant

    def _unavailable(self, why: str) -> TokenUnavailable:
        self.failures.mark_refresh_failed(self.shop)
        return TokenUnavailable(f"the Admin API access of {self.shop} needs a new token exchange: {why}")

    def _refreshed(self, grant: OfflineGrant) -> OfflineGrant:
        now = self.clock()
        if grant.kind != EXPIRING:
            raise self._unavailable("the non-expiring token was refused")
        # Another invocation may have rotated the grant since it was read: its refresh token is the live one.
        stored = self.grants.grant(self.shop)
        if stored is not None and stored.refresh_token != grant.refresh_token:
            self._grant = grant = stored
            if not needs_refresh(stored, now):
                return stored
        if not can_refresh(grant, now):
            raise self._unavailable("the refresh token has expired")
        assert grant.refresh_token is not None  # can_refresh
        try:
            token = self.refresh(self.shop, grant.refresh_token)
        except TokenExchangeError as exc:
            if exc.retryable:
                raise AdminApiError(f"refreshing the access token of {self.shop} failed ({exc.code})") from exc
            raise self._unavailable(f"Shopify refused the refresh ({exc.code})") from exc
        fresh = grant_from(token, now=now)
        if not fresh.scopes:
            fresh = OfflineGrant(
                fresh.access_token, grant.scopes, fresh.expires_at, fresh.refresh_token, fresh.refresh_token_expires_at
            )
        self.grants.put_grant(self.shop, fresh)  # before its access token is used: the old refresh token is spent
        self._grant = fresh
        self.refreshes += 1
        return fresh
