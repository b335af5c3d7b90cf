"""A shop's offline grant as stored (JSON, or a legacy bare token), the expiry decisions, the refresh request, and
the token source the backfill's client uses: refreshed before its expiry, once after a 401, the rotated grant stored
before use, and a refused refresh marking the shop for a new exchange."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

import pytest

from reclift.logic.admin_tokens import ShopAccessTokens, TokenUnavailable
from reclift.offline_grants import (
    EXPIRING,
    NON_EXPIRING,
    GrantError,
    OfflineGrant,
    can_refresh,
    grant_from,
    grant_json,
    needs_cycling,
    needs_refresh,
    parse_grant,
)
from reclift.shopify_admin import (
    AdminApiError,
    OfflineToken,
    TokenExchangeError,
    parse_token_response,
    refresh_token_body,
)

SHOP = "demo.myshopify.com"
NOW = datetime(2026, 12, 2, 12, 0, tzinfo=UTC)
SCOPES = frozenset({"read_orders", "read_products"})


def expiring(access: str = "shpat_a", refresh: str = "shprt_a", *, at: datetime = NOW) -> OfflineGrant:
    return OfflineGrant(access, SCOPES, at + timedelta(hours=1), refresh, at + timedelta(days=90))


# ---------------------------------------------------------------- the grant as stored
def test_a_grant_is_stored_whole_as_json_and_read_back_the_same() -> None:
    grant = expiring()

    stored = grant_json(grant)

    assert json.loads(stored) == {
        "access_token": "shpat_a",
        "expires_at": "2026-12-02T13:00:00+00:00",
        "refresh_token": "shprt_a",
        "refresh_token_expires_at": "2027-03-02T12:00:00+00:00",
        "scopes": ["read_orders", "read_products"],
    }
    assert parse_grant(stored) == grant
    assert "shpat_a" not in repr(grant)
    assert "shprt_a" not in repr(grant)


def test_a_bare_token_string_as_stored_before_is_read_as_a_legacy_non_expiring_grant() -> None:
    grant = parse_grant("shpat_legacy\n")

    assert (grant.access_token, grant.kind, grant.refresh_token, grant.expires_at) == (
        "shpat_legacy",
        NON_EXPIRING,
        None,
        None,
    )


@pytest.mark.parametrize(
    "stored",
    [
        "",
        "   ",
        "{not json",
        json.dumps({"refresh_token": "r"}),
        json.dumps({"access_token": "a", "expires_at": "soon"}),
    ],
)
def test_what_is_no_grant_is_refused_without_quoting_it(stored: str) -> None:
    with pytest.raises(GrantError) as raised:
        parse_grant(stored)
    assert "shprt" not in str(raised.value)


def test_shopifys_expiring_answer_becomes_a_grant_with_times_counted_from_the_request() -> None:
    raw = json.dumps(
        {
            "access_token": "shpat_b",
            "expires_in": 3600,
            "refresh_token": "shprt_b",
            "refresh_token_expires_in": 7776000,
            "scope": "read_orders,read_products",
        }
    ).encode()

    grant = grant_from(parse_token_response(200, raw), now=NOW)

    assert grant == OfflineGrant("shpat_b", SCOPES, NOW + timedelta(hours=1), "shprt_b", NOW + timedelta(days=90))
    assert grant.kind == EXPIRING


def test_the_refresh_request_is_the_refresh_token_grant_with_the_apps_credentials() -> None:
    assert refresh_token_body("shprt_a", api_key="key", api_secret="secret") == {
        "client_id": "key",
        "client_secret": "secret",
        "grant_type": "refresh_token",
        "refresh_token": "shprt_a",
    }


# ---------------------------------------------------------------- expiry decisions
@pytest.mark.parametrize(
    ("minutes_left", "refresh"),
    [(60, False), (6, False), (5, True), (1, True), (-10, True)],
)
def test_an_access_token_is_refreshed_within_five_minutes_of_its_expiry(minutes_left: int, refresh: bool) -> None:
    grant = expiring(at=NOW - timedelta(hours=1) + timedelta(minutes=minutes_left))

    assert needs_refresh(grant, NOW) is refresh


def test_a_legacy_token_is_never_refreshed_and_cannot_be() -> None:
    assert needs_refresh(OfflineGrant("shpat_legacy"), NOW) is False
    assert can_refresh(OfflineGrant("shpat_legacy"), NOW) is False
    assert can_refresh(expiring(at=NOW - timedelta(days=91)), NOW) is False
    assert can_refresh(expiring(), NOW) is True


@pytest.mark.parametrize(
    ("kind", "refresh_days_left", "cycle"),
    [
        (EXPIRING, 60, False),
        (EXPIRING, None, False),
        (EXPIRING, 6, True),
        (None, 60, True),
        ("refresh_failed", 60, True),
    ],
)
def test_an_installed_shops_grant_is_cycled_when_legacy_refused_or_its_refresh_token_nears_expiry(
    kind: str | None, refresh_days_left: int | None, cycle: bool
) -> None:
    expires = NOW + timedelta(days=refresh_days_left) if refresh_days_left is not None else None

    assert needs_cycling(kind, expires, NOW) is cycle


# ---------------------------------------------------------------- the backfill's token source
@dataclass
class Grants:
    stored: dict[str, OfflineGrant] = field(default_factory=dict)
    reads: int = 0
    writes: list[OfflineGrant] = field(default_factory=list)

    def grant(self, shop: str) -> OfflineGrant | None:
        self.reads += 1
        return self.stored.get(shop)

    def put_grant(self, shop: str, grant: OfflineGrant) -> None:
        self.writes.append(grant)
        self.stored[shop] = grant


@dataclass
class Failures:
    marked: list[str] = field(default_factory=list)

    def mark_refresh_failed(self, shop: str) -> None:
        self.marked.append(shop)


@dataclass
class Refresher:
    """Shopify's refresh: a new pair per call, or the error it is told to raise."""

    refuse: TokenExchangeError | None = None
    calls: list[str] = field(default_factory=list)

    def __call__(self, shop: str, refresh_token: str) -> OfflineToken:
        self.calls.append(refresh_token)
        if self.refuse is not None:
            raise self.refuse
        n = len(self.calls)
        return OfflineToken(f"shpat_{n}", SCOPES, 3600, f"shprt_{n}", 7776000)


@dataclass
class Clock:
    now: datetime = NOW

    def __call__(self) -> datetime:
        return self.now


def source(grant: OfflineGrant, refresher: Refresher, clock: Clock) -> tuple[ShopAccessTokens, Grants, Failures]:
    grants, failures = Grants({SHOP: grant}), Failures()
    return ShopAccessTokens(SHOP, grants, failures, refresh=refresher, clock=clock), grants, failures


def test_a_fresh_access_token_is_used_as_stored_with_one_read_and_no_refresh() -> None:
    refresher, clock = Refresher(), Clock()
    tokens, grants, _ = source(expiring(), refresher, clock)

    assert [tokens.access_token() for _ in range(3)] == ["shpat_a"] * 3
    assert (grants.reads, refresher.calls, grants.writes) == (1, [], [])


def test_near_its_expiry_the_token_is_refreshed_once_and_the_rotated_grant_stored_before_it_is_used() -> None:
    refresher, clock = Refresher(), Clock()
    tokens, grants, _ = source(expiring(), refresher, clock)
    tokens.access_token()
    clock.now = NOW + timedelta(minutes=56)

    assert tokens.access_token() == "shpat_1"
    assert tokens.access_token() == "shpat_1"
    assert refresher.calls == ["shprt_a"]
    assert [(g.access_token, g.refresh_token) for g in grants.writes] == [("shpat_1", "shprt_1")]
    assert grants.stored[SHOP].expires_at == clock.now + timedelta(hours=1)
    assert tokens.refreshes == 1


def test_after_a_401_the_token_is_renewed_even_before_its_expiry() -> None:
    refresher, clock = Refresher(), Clock()
    tokens, grants, _ = source(expiring(), refresher, clock)

    assert tokens.renewed_access_token() == "shpat_1"
    assert grants.stored[SHOP].refresh_token == "shprt_1"


def test_a_grant_rotated_meanwhile_by_another_run_is_taken_up_instead_of_refreshing_a_spent_token() -> None:
    refresher, clock = Refresher(), Clock()
    tokens, grants, _ = source(expiring(), refresher, clock)
    tokens.access_token()
    grants.stored[SHOP] = expiring("shpat_other", "shprt_other", at=NOW + timedelta(minutes=50))
    clock.now = NOW + timedelta(minutes=56)

    assert tokens.access_token() == "shpat_other"
    assert refresher.calls == []


def test_a_refused_refresh_marks_the_shop_for_a_new_exchange_and_leaves_the_grant() -> None:
    refresher, clock = Refresher(refuse=TokenExchangeError("invalid_grant", "no", retryable=False)), Clock()
    tokens, grants, failures = source(expiring(), refresher, clock)

    with pytest.raises(TokenUnavailable):
        tokens.renewed_access_token()

    assert failures.marked == [SHOP]
    assert grants.writes == []


def test_a_refresh_failing_for_a_transient_reason_is_retried_later_without_marking_the_shop() -> None:
    refresher, clock = Refresher(refuse=TokenExchangeError("http_503", "down", retryable=True)), Clock()
    tokens, grants, failures = source(expiring(at=NOW - timedelta(hours=1)), refresher, clock)

    with pytest.raises(AdminApiError) as raised:
        tokens.access_token()

    assert not isinstance(raised.value, TokenUnavailable)
    assert (failures.marked, grants.writes) == ([], [])


def test_an_expired_refresh_token_or_a_refused_legacy_token_needs_a_new_exchange() -> None:
    refresher, clock = Refresher(), Clock()
    old, _, old_failures = source(expiring(at=NOW - timedelta(days=91)), refresher, clock)
    legacy, _, legacy_failures = source(OfflineGrant("shpat_legacy"), refresher, clock)

    assert legacy.access_token() == "shpat_legacy"  # used as it is until Shopify refuses it
    for tokens in (old, legacy):
        with pytest.raises(TokenUnavailable):
            tokens.renewed_access_token()
    assert (old_failures.marked, legacy_failures.marked, refresher.calls) == ([SHOP], [SHOP], [])


def test_a_shop_with_no_stored_grant_has_no_token() -> None:
    tokens = ShopAccessTokens(SHOP, Grants(), Failures(), refresh=Refresher(), clock=Clock())

    with pytest.raises(TokenUnavailable):
        tokens.access_token()
