"""The installation's domain: the token exchange's request and answers, the scopes the code needs, the install state
machine (claimed once, retried after a failure, taken over when stale) and `app/uninstalled`'s payload."""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta

import pytest

from reclift.data.backfill import BackfillProgress
from reclift.data.installs import FAILED, INSTALLED, INSTALLING, REFRESH_FAILED, UNINSTALLED, GrantRecord, Installation
from reclift.logic import install
from reclift.logic.install import (
    CLAIM_SECONDS,
    INSTALLED_CACHE_SECONDS,
    RETRY_SECONDS,
    SERVING_CACHE_SECONDS,
    ShopNotInstalled,
    ensure_installed,
    install_status,
    missing_scopes,
    needs_exchange,
    parse_backfill_job,
    parse_uninstalled_shop,
    require_serving,
    uninstall,
)
from reclift.offline_grants import EXPIRING, OfflineGrant
from reclift.shopify_admin import (
    OfflineToken,
    TokenExchangeError,
    parse_scopes,
    parse_token_response,
    token_exchange_body,
    token_exchange_url,
)
from reclift.signatures import mint_session_token
from reclift_local.fake_admin import FakeAdminApi
from reclift_local.sign import DEV_API_KEY, DEV_API_SECRET
from tests.support.shopify import fixture

SHOP = "demo.myshopify.com"
NOW = datetime(2026, 12, 2, 12, 0, tzinfo=UTC)
GRANTED = OfflineToken(
    access_token="shpat_new",
    scopes=frozenset({"read_orders", "read_products"}),
    expires_in=3600,
    refresh_token="shprt_new",
    refresh_token_expires_in=90 * 86400,
)


# ---------------------------------------------------------------- the exchange's request and answers
def test_the_exchange_asks_for_an_offline_token_with_the_session_token_as_subject() -> None:
    body = token_exchange_body("the.session.token", api_key="key", api_secret="secret")

    assert body == {
        "client_id": "key",
        "client_secret": "secret",
        "grant_type": "urn:ietf:params:oauth:grant-type:token-exchange",
        "subject_token": "the.session.token",
        "subject_token_type": "urn:ietf:params:oauth:token-type:id_token",
        "requested_token_type": "urn:shopify:params:oauth:token-type:offline-access-token",
        "expiring": "1",  # an expiring offline token: Shopify refuses non-expiring ones from 2027
    }


def test_the_exchange_goes_to_the_shops_oauth_endpoint_or_the_configured_fake(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("RECLIFT_ADMIN_API_URL", raising=False)
    assert token_exchange_url(SHOP) == f"https://{SHOP}/admin/oauth/access_token"
    monkeypatch.setenv("RECLIFT_ADMIN_API_URL", "http://127.0.0.1:9999/")
    assert token_exchange_url(SHOP) == "http://127.0.0.1:9999/admin/oauth/access_token"


def test_given_shopifys_answer_then_the_token_and_its_scopes_are_read() -> None:
    raw = json.dumps({"access_token": "shpat_abc", "scope": "read_orders,read_products"}).encode()

    token = parse_token_response(200, raw)

    assert token.access_token == "shpat_abc"
    assert token.scopes == {"read_orders", "read_products"}
    assert (token.expires_in, token.refresh_token) == (None, None)
    assert "shpat_abc" not in repr(token)


def test_given_an_expiring_token_then_its_lifetime_and_refresh_token_are_kept() -> None:
    raw = json.dumps(
        {"access_token": "shpat_a", "scope": "read_orders", "expires_in": 3600, "refresh_token": "shprt_b"}
    ).encode()

    token = parse_token_response(200, raw)

    assert (token.expires_in, token.refresh_token) == (3600, "shprt_b")
    assert "shprt_b" not in repr(token)


@pytest.mark.parametrize(
    ("status", "body", "code", "retryable"),
    [
        (400, {"error": "invalid_subject_token", "error_description": "…"}, "invalid_subject_token", False),
        (401, {"error": "invalid_client"}, "invalid_client", False),
        (429, None, "http_429", True),
        (503, b"<html>unavailable</html>", "http_503", True),
        (200, {"scope": "read_orders"}, "malformed_response", True),
        (200, b"not json", "malformed_response", True),
    ],
)
def test_given_a_refusal_then_the_error_says_shopifys_code_and_whether_to_retry(
    status: int, body: object, code: str, retryable: bool
) -> None:
    raw = body if isinstance(body, bytes) else json.dumps(body).encode() if body is not None else b""

    with pytest.raises(TokenExchangeError) as raised:
        parse_token_response(status, raw)

    assert (raised.value.code, raised.value.retryable) == (code, retryable)


def tampered(token: str) -> str:
    """The token with its signature's first character changed: the claims as they were, the signature no longer
    theirs."""
    header, claims, signature = token.split(".")
    return f"{header}.{claims}.{'B' if signature[0] == 'A' else 'A'}{signature[1:]}"


BAD_SUBJECT_TOKENS: dict[str, Callable[[float], str]] = {
    "another shop's": lambda now: mint_session_token(
        "other.myshopify.com", DEV_API_SECRET, api_key=DEV_API_KEY, now=now
    ),
    "signed with another secret": lambda now: mint_session_token(SHOP, "not-the-secret", api_key=DEV_API_KEY, now=now),
    "for another app": lambda now: mint_session_token(SHOP, DEV_API_SECRET, api_key="another-app", now=now),
    "expired": lambda now: mint_session_token(SHOP, DEV_API_SECRET, api_key=DEV_API_KEY, now=now - 600),
    "tampered": lambda now: tampered(mint_session_token(SHOP, DEV_API_SECRET, api_key=DEV_API_KEY, now=now)),
    "not a token": lambda now: "not-a-session-token",
}


@pytest.mark.parametrize("kind", BAD_SUBJECT_TOKENS)
def test_the_fake_admin_api_refuses_a_bad_subject_token_as_shopify_does_and_issues_nothing(kind: str) -> None:
    """The local fake answers the token exchange as Shopify does: the shop's own valid session token gets an offline
    token pair; any other subject token gets 400 `invalid_subject_token`, which the app reads as a refusal not to
    retry at once, and no token."""
    api = FakeAdminApi(SHOP, "shpat_legacy")
    now = time.time()

    def exchange(subject: str) -> tuple[int, dict[str, object]]:
        fields = token_exchange_body(subject, api_key=DEV_API_KEY, api_secret=DEV_API_SECRET)
        return api.exchange(json.dumps(fields).encode())

    status, body = exchange(BAD_SUBJECT_TOKENS[kind](now))

    assert (status, body["error"]) == (400, "invalid_subject_token")
    assert "access_token" not in body
    with pytest.raises(TokenExchangeError) as raised:
        parse_token_response(status, json.dumps(body).encode())
    assert (raised.value.code, raised.value.retryable) == ("invalid_subject_token", False)
    # The same fake exchanges the shop's own session token.
    status, body = exchange(mint_session_token(SHOP, DEV_API_SECRET, api_key=DEV_API_KEY, now=now))
    assert status == 200
    assert api.accepts(str(body["access_token"]))
    assert [record.status for record in api.exchanges] == [400, 200]


def test_scopes_are_shopifys_comma_separated_text() -> None:
    assert parse_scopes(" read_orders, read_products ,") == {"read_orders", "read_products"}
    assert parse_scopes(None) == frozenset()


@pytest.mark.parametrize(
    ("granted", "missing"),
    [
        ({"read_orders", "read_products"}, set()),
        ({"write_orders", "write_products"}, set()),  # a write scope implies its read scope
        ({"read_products"}, {"read_orders"}),
        (set(), {"read_orders", "read_products"}),
    ],
)
def test_the_scopes_the_code_needs_are_checked_against_those_granted(granted: set[str], missing: set[str]) -> None:
    assert missing_scopes(frozenset(granted)) == missing


# ---------------------------------------------------------------- the state machine
@dataclass
class Registry:
    """The installation port in memory, with DynamoDB's conditions."""

    items: dict[str, Installation] = field(default_factory=dict)
    claims: dict[str, str] = field(default_factory=dict)
    progress: dict[str, BackfillProgress] = field(default_factory=dict)

    def installation(self, shop: str, *, consistent: bool = False) -> Installation | None:
        return self.items.get(shop)

    def claim_installation(self, shop: str, claim: str, *, now: datetime, stale_before: datetime) -> bool:
        current = self.items.get(shop)
        state = current.state if current else None
        free = (
            state in (None, UNINSTALLED)
            or (state == FAILED and current is not None and current.retry_at is not None and current.retry_at <= now)
            or (state == INSTALLING and current is not None and (current.claimed_at or now) < stale_before)
        )
        if not free:
            return False
        self.items[shop] = replace(current or Installation(shop, None), state=INSTALLING, claimed_at=now)
        self.claims[shop] = claim
        return True

    def complete_installation(
        self,
        shop: str,
        claim: str,
        *,
        scopes: frozenset[str],
        now: datetime,
        grant: GrantRecord,
        shop_id: str | None = None,
    ) -> bool:
        if self.claims.get(shop) != claim:
            return False
        del self.claims[shop]
        self.items[shop] = Installation(
            shop,
            INSTALLED,
            scopes=scopes,
            installed_at=now,
            shop_id=shop_id,
            token_kind=EXPIRING if grant.kind == EXPIRING else None,
            refresh_token_expires_at=grant.refresh_token_expires_at,
        )
        return True

    def claim_token_cycle(self, shop: str, claim: str, *, now: datetime, stale_before: datetime) -> bool:
        current = self.items[shop]
        if current.state != INSTALLED or (shop in self.claims and (current.claimed_at or now) >= stale_before):
            return False
        if current.retry_at is not None and current.retry_at > now:
            return False
        self.claims[shop] = claim
        self.items[shop] = replace(current, claimed_at=now, claim=claim)
        return True

    def complete_token_cycle(self, shop: str, claim: str, *, scopes: frozenset[str], grant: GrantRecord) -> bool:
        if self.claims.get(shop) != claim:
            return False
        del self.claims[shop]
        self.items[shop] = replace(
            self.items[shop],
            scopes=scopes,
            token_kind=EXPIRING if grant.kind == EXPIRING else None,
            refresh_token_expires_at=grant.refresh_token_expires_at,
            claim=None,
            claimed_at=None,
            error=None,
            retry_at=None,
        )
        return True

    def fail_token_cycle(self, shop: str, claim: str, *, error: str, retry_at: datetime) -> bool:
        if self.claims.get(shop) != claim:
            return False
        del self.claims[shop]
        self.items[shop] = replace(self.items[shop], error=error, retry_at=retry_at, claim=None, claimed_at=None)
        return True

    def fail_installation(self, shop: str, claim: str, *, error: str, retry_at: datetime) -> bool:
        if self.claims.get(shop) != claim:
            return False
        del self.claims[shop]
        self.items[shop] = replace(self.items[shop], state=FAILED, error=error, retry_at=retry_at, claimed_at=None)
        return True

    def mark_uninstalled(self, shop: str, *, now: datetime, triggered_at: datetime | None = None) -> bool:
        current = self.items.get(shop) or Installation(shop, None)
        if triggered_at is not None and current.installed_at is not None and current.installed_at > triggered_at:
            return False
        self.claims.pop(shop, None)
        self.items[shop] = replace(current, state=UNINSTALLED)
        return True

    def backfill_progress(self, shop: str, what: str) -> BackfillProgress | None:
        return self.progress.get(what)


@dataclass
class Vault:
    grants: dict[str, OfflineGrant] = field(default_factory=dict)

    @property
    def tokens(self) -> dict[str, str]:
        return {shop: grant.access_token for shop, grant in self.grants.items()}

    def put_grant(self, shop: str, grant: OfflineGrant) -> None:
        self.grants[shop] = grant

    def delete_token(self, shop: str) -> bool:
        return self.grants.pop(shop, None) is not None


@dataclass
class Queue:
    jobs: list[tuple[str, str]] = field(default_factory=list)

    def queue_backfill(self, shop: str, *, what: str = "all") -> None:
        self.jobs.append((shop, what))


@dataclass
class Shopify:
    """The exchange: each call recorded; answers the token, or raises what it is told to."""

    token: OfflineToken = GRANTED
    refuse: TokenExchangeError | None = None
    calls: list[tuple[str, str]] = field(default_factory=list)

    def __call__(self, shop: str, session_token: str) -> OfflineToken:
        self.calls.append((shop, session_token))
        if self.refuse is not None:
            raise self.refuse
        return self.token


@dataclass
class Clock:
    now: float = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture(autouse=True)
def _forget_cache() -> None:
    install.forget_cached()


def run(
    registry: Registry, vault: Vault, queue: Queue, shopify: Shopify, *, at: datetime = NOW, **kwargs: object
) -> install.InstallOutcome:
    return ensure_installed(SHOP, "session.token", registry, vault, queue, shopify, now=at, **kwargs)  # type: ignore[arg-type]


def test_given_a_new_shop_then_its_session_token_is_exchanged_the_token_stored_and_the_backfill_queued() -> None:
    registry, vault, queue, shopify = Registry(), Vault(), Queue(), Shopify()

    outcome = run(registry, vault, queue, shopify)

    assert (outcome.state, outcome.exchanged, outcome.backfill_queued) == (INSTALLED, True, True)
    assert shopify.calls == [(SHOP, "session.token")]
    assert vault.tokens == {SHOP: "shpat_new"}
    assert queue.jobs == [(SHOP, "all")]
    installed = registry.items[SHOP]
    assert (installed.state, installed.scopes, installed.installed_at) == (INSTALLED, GRANTED.scopes, NOW)


def test_given_an_installed_shop_then_later_requests_exchange_nothing_and_the_cache_spares_the_read() -> None:
    registry, vault, queue, shopify, clock = Registry(), Vault(), Queue(), Shopify(), Clock()
    run(registry, vault, queue, shopify, clock=clock)
    reads: list[str] = []
    read = registry.installation

    def counted(shop: str, *, consistent: bool = False) -> Installation | None:
        reads.append(shop)
        return read(shop)

    registry.installation = counted  # type: ignore[method-assign]

    for _ in range(5):
        assert run(registry, vault, queue, shopify, clock=clock).state == INSTALLED
    assert reads == []
    clock.now += INSTALLED_CACHE_SECONDS + 1
    assert run(registry, vault, queue, shopify, clock=clock).state == INSTALLED
    assert reads == [SHOP]
    assert run(registry, vault, queue, shopify, clock=clock, fresh=True).state == INSTALLED
    assert reads == [SHOP, SHOP]
    assert len(shopify.calls) == 1
    assert len(queue.jobs) == 1


def test_given_an_exchange_under_way_then_a_racing_request_neither_exchanges_nor_waits() -> None:
    registry, vault, queue, shopify = Registry(), Vault(), Queue(), Shopify()
    assert registry.claim_installation(SHOP, "first", now=NOW, stale_before=NOW - timedelta(seconds=60))

    outcome = run(registry, vault, queue, shopify, at=NOW + timedelta(seconds=2))

    assert (outcome.state, outcome.exchanged) == (INSTALLING, False)
    assert shopify.calls == []
    assert vault.tokens == {}
    assert queue.jobs == []


def test_given_a_claim_left_stale_by_a_crashed_request_then_a_later_request_takes_it_over() -> None:
    registry, vault, queue, shopify = Registry(), Vault(), Queue(), Shopify()
    registry.claim_installation(SHOP, "crashed", now=NOW, stale_before=NOW)

    outcome = run(registry, vault, queue, shopify, at=NOW + timedelta(seconds=CLAIM_SECONDS + 1))

    assert (outcome.state, outcome.exchanged) == (INSTALLED, True)


def test_given_a_claim_taken_over_meanwhile_then_the_slow_request_does_not_mark_the_shop_installed() -> None:
    registry, vault, queue = Registry(), Vault(), Queue()

    def slow_exchange(shop: str, session_token: str) -> OfflineToken:
        later = NOW + timedelta(seconds=CLAIM_SECONDS + 1)
        assert registry.claim_installation(shop, "newer", now=later, stale_before=later - timedelta(seconds=60))
        return GRANTED

    outcome = ensure_installed(SHOP, "t", registry, vault, queue, slow_exchange, now=NOW)

    assert (outcome.state, outcome.exchanged) == (INSTALLING, True)
    assert registry.claims[SHOP] == "newer"


def test_given_a_refused_exchange_then_it_is_recorded_and_tried_again_only_after_the_retry_time() -> None:
    registry, vault, queue = Registry(), Vault(), Queue()
    refusing = Shopify(refuse=TokenExchangeError("http_503", "unavailable", retryable=True))

    failed = run(registry, vault, queue, refusing)
    soon = run(registry, vault, queue, refusing, at=NOW + timedelta(seconds=RETRY_SECONDS - 1))
    later = run(registry, vault, queue, Shopify(), at=NOW + timedelta(seconds=RETRY_SECONDS))

    assert (failed.state, failed.error, failed.attempted) == (FAILED, "http_503", True)
    assert (soon.state, soon.error, soon.attempted) == (FAILED, "http_503", False)
    assert len(refusing.calls) == 1
    assert (later.state, later.exchanged) == (INSTALLED, True)
    assert vault.tokens == {SHOP: "shpat_new"}


def test_given_missing_scopes_then_the_shop_is_installed_but_no_backfill_is_queued() -> None:
    registry, vault, queue = Registry(), Vault(), Queue()
    shopify = Shopify(token=OfflineToken(access_token="t", scopes=frozenset({"read_products"})))

    outcome = run(registry, vault, queue, shopify)

    assert (outcome.state, outcome.backfill_queued) == (INSTALLED, False)
    assert outcome.missing_scopes == {"read_orders"}
    assert queue.jobs == []


def test_given_the_token_cannot_be_stored_then_the_failure_is_recorded_for_an_immediate_retry() -> None:
    registry, queue, shopify = Registry(), Queue(), Shopify()

    class BrokenVault(Vault):
        def put_grant(self, shop: str, grant: OfflineGrant) -> None:
            raise RuntimeError("SSM is down")

    with pytest.raises(install.InstallFailed):
        run(registry, BrokenVault(), queue, shopify)

    assert registry.items[SHOP].state == FAILED
    assert needs_exchange(registry.items[SHOP], NOW)
    assert queue.jobs == []


def test_given_an_uninstalled_shop_then_a_new_session_token_installs_it_again_and_backfills_again() -> None:
    registry, vault, queue, shopify, clock = Registry(), Vault(), Queue(), Shopify(), Clock()
    run(registry, vault, queue, shopify, clock=clock)

    uninstall(SHOP, fixture("shopify/app_uninstalled_sample.json"), registry, vault, now=NOW)
    assert vault.tokens == {}
    assert registry.items[SHOP].state == UNINSTALLED
    again = run(registry, vault, queue, Shopify(token=replace(GRANTED, access_token="shpat_2")), clock=clock)

    assert (again.state, again.exchanged) == (INSTALLED, True)  # the uninstall forgot the cached "installed"
    assert vault.tokens == {SHOP: "shpat_2"}
    assert queue.jobs == [(SHOP, "all"), (SHOP, "all")]


@pytest.mark.parametrize(
    ("installation", "exchange"),
    [
        (None, True),
        (Installation(SHOP, None), True),  # known from webhooks, never installed through the managed installation
        (Installation(SHOP, UNINSTALLED), True),
        (Installation(SHOP, INSTALLED), False),
        (Installation(SHOP, INSTALLING, claimed_at=NOW - timedelta(seconds=5)), False),
        (Installation(SHOP, INSTALLING, claimed_at=NOW - timedelta(seconds=CLAIM_SECONDS + 1)), True),
        (Installation(SHOP, FAILED, retry_at=NOW + timedelta(seconds=1)), False),
        (Installation(SHOP, FAILED, retry_at=NOW), True),
    ],
)
def test_which_states_try_the_exchange(installation: Installation | None, exchange: bool) -> None:
    assert needs_exchange(installation, NOW) is exchange


def test_the_status_reports_the_installation_and_each_backfills_progress() -> None:
    registry = Registry()
    registry.items[SHOP] = Installation(SHOP, INSTALLED, scopes=GRANTED.scopes, installed_at=NOW)
    registry.progress["products"] = BackfillProgress(SHOP, "products", "done", None, None, 2, 15, 15, NOW, NOW)
    registry.progress["orders"] = BackfillProgress(
        SHOP, "orders", "running", "q", "c", 3, 30, 29, NOW, NOW, expected=444
    )

    status = install_status(SHOP, install.InstallOutcome(INSTALLED), registry, registry)

    assert (status["installed"], status["state"], status["scopes"]) == (True, INSTALLED, sorted(GRANTED.scopes))
    assert status["backfill"]["products"]["complete"] is True
    assert status["backfill"]["products"]["expected"] is None  # a run that did not ask how many there were
    orders = status["backfill"]["orders"]
    assert (orders["pages"], orders["fetched"], orders["stored"], orders["expected"]) == (3, 30, 29, 444)
    assert status["backfill"]["complete"] is False


def test_a_backfill_done_before_a_reinstall_is_reported_as_still_to_come() -> None:
    registry = Registry()
    before = NOW - timedelta(days=2)
    registry.items[SHOP] = Installation(SHOP, INSTALLED, scopes=GRANTED.scopes, installed_at=NOW)
    registry.progress["products"] = BackfillProgress(SHOP, "products", "done", None, None, 2, 15, 15, before, before)

    status = install_status(SHOP, install.InstallOutcome(INSTALLED), registry, registry)

    assert (status["backfill"]["products"]["status"], status["backfill"]["products"]["complete"]) == ("pending", False)


# ---------------------------------------------------------------- serving, uninstalling, backfill jobs
def test_the_storefront_refuses_an_uninstalled_shop_and_remembers_its_answer_for_a_few_seconds() -> None:
    registry, clock = Registry(), Clock()
    require_serving(SHOP, registry, clock=clock)  # unknown shops are served
    registry.mark_uninstalled(SHOP, now=NOW)

    require_serving(SHOP, registry, clock=clock)  # still the remembered answer
    clock.now += SERVING_CACHE_SECONDS + 0.1
    with pytest.raises(ShopNotInstalled):
        require_serving(SHOP, registry, clock=clock)


def test_shopifys_published_app_uninstalled_sample_is_read_as_the_shop_object_it_is() -> None:
    sample = fixture("shopify/app_uninstalled_sample.json")

    assert parse_uninstalled_shop(SHOP, sample) == 548380009
    with pytest.raises(ValueError, match="another shop"):
        parse_uninstalled_shop(SHOP, {**sample, "myshopify_domain": "other.myshopify.com"})
    bad_bodies: list[object] = [[], {"id": "548380009"}, {"id": True}, {}]
    for bad in bad_bodies:
        with pytest.raises(ValueError, match="Shop object"):
            parse_uninstalled_shop(SHOP, bad)


def test_backfill_jobs_are_read_from_a_queued_body_or_an_event_and_named_when_wrong() -> None:
    assert parse_backfill_job(json.dumps({"shop": "Demo.myshopify.com"})).whats == ("products", "orders")
    assert parse_backfill_job({"shop": SHOP, "what": "orders", "restart": True}).restart is True
    with pytest.raises(ValueError, match="what"):
        parse_backfill_job({"shop": SHOP, "what": "customers"})
    with pytest.raises(ValueError, match="shop"):
        parse_backfill_job({"shop": "not a shop"})
    with pytest.raises(ValueError, match="JSON object"):
        parse_backfill_job("{not json")


# ---------------------------------------------------------------- expiring grants: stored whole, cycled when legacy
def test_given_a_new_shop_then_the_whole_expiring_grant_is_stored_and_its_kind_recorded_on_the_item() -> None:
    registry, vault, queue, shopify = Registry(), Vault(), Queue(), Shopify()

    run(registry, vault, queue, shopify)

    grant = vault.grants[SHOP]
    assert (grant.kind, grant.access_token, grant.refresh_token) == (EXPIRING, "shpat_new", "shprt_new")
    assert grant.expires_at == NOW + timedelta(hours=1)
    assert grant.refresh_token_expires_at == NOW + timedelta(days=90)
    item = registry.items[SHOP]
    assert (item.token_kind, item.refresh_token_expires_at) == (EXPIRING, NOW + timedelta(days=90))


@pytest.mark.parametrize(
    ("kind", "refresh_expires"),
    [(None, None), (REFRESH_FAILED, NOW + timedelta(days=60)), (EXPIRING, NOW + timedelta(days=2))],
    ids=["legacy non-expiring", "refresh refused", "refresh token near its expiry"],
)
def test_given_an_installed_shop_whose_grant_must_be_replaced_then_its_next_admin_request_exchanges_again(
    kind: str | None, refresh_expires: datetime | None
) -> None:
    registry, vault, queue, shopify, clock = Registry(), Vault(), Queue(), Shopify(), Clock()
    registry.items[SHOP] = Installation(
        SHOP,
        INSTALLED,
        scopes=GRANTED.scopes,
        installed_at=NOW - timedelta(days=100),
        token_kind=kind,
        refresh_token_expires_at=refresh_expires,
    )
    vault.grants[SHOP] = OfflineGrant("shpat_legacy")

    outcome = run(registry, vault, queue, shopify, clock=clock)

    assert (outcome.state, outcome.cycled, outcome.exchanged) == (INSTALLED, True, True)
    assert shopify.calls == [(SHOP, "session.token")]
    assert vault.grants[SHOP].kind == EXPIRING
    assert registry.items[SHOP].token_kind == EXPIRING
    assert registry.items[SHOP].installed_at == NOW - timedelta(days=100)  # the same installation
    assert queue.jobs == []  # a cycle replaces the grant, it does not backfill again
    assert run(registry, vault, queue, shopify, clock=clock).cycled is False  # cycled once
    assert len(shopify.calls) == 1


def test_given_a_cycle_shopify_refuses_then_the_shop_stays_installed_on_its_old_grant_until_the_retry_time() -> None:
    registry, vault, queue, clock = Registry(), Vault(), Queue(), Clock()
    shopify = Shopify(refuse=TokenExchangeError("http_503", "down", retryable=True))
    registry.items[SHOP] = Installation(SHOP, INSTALLED, scopes=GRANTED.scopes, installed_at=NOW)
    vault.grants[SHOP] = OfflineGrant("shpat_legacy")

    outcome = run(registry, vault, queue, shopify, clock=clock)

    assert (outcome.state, outcome.error, outcome.cycled) == (INSTALLED, "http_503", False)
    assert vault.tokens == {SHOP: "shpat_legacy"}
    assert run(registry, vault, queue, shopify, clock=clock).attempted is False  # waiting for the retry time
    shopify.refuse = None
    later = run(registry, vault, queue, shopify, clock=clock, at=NOW + timedelta(seconds=RETRY_SECONDS))
    assert later.cycled is True
    assert vault.grants[SHOP].kind == EXPIRING


def test_a_late_app_uninstalled_triggered_before_a_reinstall_changes_nothing() -> None:
    registry, vault = Registry(), Vault()
    registry.items[SHOP] = Installation(SHOP, INSTALLED, scopes=GRANTED.scopes, installed_at=NOW)
    vault.grants[SHOP] = OfflineGrant("shpat_new")
    sample = fixture("shopify/app_uninstalled_sample.json")

    late = uninstall(SHOP, sample, registry, vault, now=NOW, triggered_at=NOW - timedelta(minutes=5))
    assert late["uninstalled"] is False
    assert (registry.items[SHOP].state, vault.tokens) == (INSTALLED, {SHOP: "shpat_new"})

    current = uninstall(SHOP, sample, registry, vault, now=NOW, triggered_at=NOW + timedelta(minutes=5))
    assert (current["uninstalled"], current["token_deleted"]) == (True, True)
    assert registry.items[SHOP].state == UNINSTALLED
