"""A shop's installation through Shopify's managed installation, and its uninstallation.

Shopify installs the app with the scopes of shopify.app.toml and opens its embedded page; the page's first request
carries a session token, which is exchanged for the shop's offline access token (token exchange). That exchange
happens once per installation: the first request claims the shop with a conditional write, exchanges, stores the
token in SSM, queues the products+orders backfill and marks the shop installed; a request racing it finds the claim
and goes on without exchanging. A failed exchange is recorded and tried again by a later request.

States (absent: a shop known only from its webhooks and storefront events, served as before):

    (absent | uninstalled) ─claim→ installing ─exchange ok→ installed ─app/uninstalled→ uninstalled
                                        └─exchange failed→ failed ─retry time, claim→ installing

An uninstalled shop is not served (recommendations and events answer 403), and the scheduled jobs skip it; a new
session token (a reinstall) installs it again, and its backfill runs again to catch up on what it missed. An
`app/uninstalled` triggered before the current installation (a failed delivery retried after a reinstall) is ignored.

The exchange asks for an expiring offline token (an hour, with a refresh token) and stores the whole grant. An
installed shop whose grant must be replaced — a legacy non-expiring token, a refresh Shopify refused, or a refresh
token near its expiry, all read from the shop's item — is "cycled" by its next admin request: the same exchange
again, claimed so that one request does it, the shop staying installed and served meanwhile (Shopify's migration
path: tokens cycle the next time the merchant opens the app).
"""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any, Protocol

from pydantic import BaseModel, ConfigDict, ValidationError, field_validator, model_validator

from reclift import config
from reclift.data.backfill import BackfillProgress
from reclift.data.installs import FAILED, INSTALLED, INSTALLING, UNINSTALLED, GrantRecord, Installation
from reclift.ids import shop_domain, shopify_id
from reclift.offline_grants import OfflineGrant, grant_from, needs_cycling
from reclift.shopify_admin import (
    AdminApiError,
    AdminClient,
    OfflineToken,
    RetryPolicy,
    TokenExchangeError,
    exchange_session_token,
    fetch_shop_id,
)

if TYPE_CHECKING:
    from reclift.logic.backfill import What

# What the code reads: orders (attribution, the orders backfill, similarity) and products (the catalog).
REQUIRED_SCOPES = frozenset({"read_orders", "read_products"})
CLAIM_SECONDS = 60  # an exchange not completed by then is presumed dead, and the next request takes it over
RETRY_SECONDS = 30  # after a failed exchange, the next attempt waits this long
INSTALLED_CACHE_SECONDS = 60  # an admin request trusts a shop found installed this long (per execution environment)
SERVING_CACHE_SECONDS = 10  # the storefront trusts a shop's served-or-not this long (per execution environment)

Exchange = Callable[[str, str], OfflineToken]  # (shop, session token) → the offline token


class ShopNotInstalled(Exception):
    """The shop uninstalled reclift: the storefront answers 403 and stores nothing."""

    def __init__(self, shop: str) -> None:
        super().__init__(f"reclift is not installed on {shop}")
        self.shop = shop


class InstallFailed(RuntimeError):
    """The installation could not be recorded (a store, SSM or SQS failure); a later request tries again."""


class Installations(Protocol):
    """The installation's state (InstallRegistry on AWS)."""

    def installation(self, shop: str, *, consistent: bool = False) -> Installation | None: ...
    def claim_installation(self, shop: str, claim: str, *, now: datetime, stale_before: datetime) -> bool: ...
    def complete_installation(
        self,
        shop: str,
        claim: str,
        *,
        scopes: frozenset[str],
        now: datetime,
        grant: GrantRecord,
        shop_id: str | None = None,
    ) -> bool: ...
    def fail_installation(self, shop: str, claim: str, *, error: str, retry_at: datetime) -> bool: ...
    def mark_uninstalled(self, shop: str, *, now: datetime, triggered_at: datetime | None = None) -> bool: ...
    def claim_token_cycle(self, shop: str, claim: str, *, now: datetime, stale_before: datetime) -> bool: ...
    def complete_token_cycle(self, shop: str, claim: str, *, scopes: frozenset[str], grant: GrantRecord) -> bool: ...
    def fail_token_cycle(self, shop: str, claim: str, *, error: str, retry_at: datetime) -> bool: ...


class BackfillProgressReader(Protocol):
    """Where a backfill's progress is read (BackfillStore on AWS)."""

    def backfill_progress(self, shop: str, what: str) -> BackfillProgress | None: ...


class Tokens(Protocol):
    """Where offline grants are kept (TokenVault on AWS: SSM SecureStrings)."""

    def put_grant(self, shop: str, grant: OfflineGrant) -> None: ...
    def delete_token(self, shop: str) -> bool: ...


class Backfills(Protocol):
    """Where a backfill is started (BackfillQueue on AWS)."""

    def queue_backfill(self, shop: str, *, what: str = "all") -> None: ...


def shopify_exchange(shop: str, session_token: str) -> OfflineToken:
    """The token exchange with Shopify, with the app's own credentials (the current secret), then the shop's
    numeric id read with the new token: the `shop_id` its privacy webhooks must name. Without it (the read failed)
    the installation goes on, and those webhooks are bound by their shop domain alone."""
    token = exchange_session_token(
        shop, session_token, api_key=config.required("SHOPIFY_API_KEY"), api_secret=config.api_secrets()[0]
    )
    try:
        shop_id = fetch_shop_id(AdminClient(shop, token.access_token, retry=RetryPolicy(attempts=1)))
    except (AdminApiError, OSError):
        return token
    return replace(token, shop_id=shop_id)


def missing_scopes(granted: frozenset[str]) -> frozenset[str]:
    """The scopes the code needs that were not granted (`write_x` implies `read_x`)."""
    implied = granted | {f"read_{scope.removeprefix('write_')}" for scope in granted if scope.startswith("write_")}
    return REQUIRED_SCOPES - implied


def needs_exchange(installation: Installation | None, now: datetime) -> bool:
    """Whether a request for this shop should try the exchange: not installed, and no exchange under way or
    waiting for its retry time."""
    if installation is None or installation.state in (None, UNINSTALLED):
        return True
    if installation.state == INSTALLING:
        return installation.claimed_at is None or installation.claimed_at < now - timedelta(seconds=CLAIM_SECONDS)
    if installation.state == FAILED:
        return installation.retry_at is None or installation.retry_at <= now
    return False


def serves(installation: Installation | None) -> bool:
    """Whether the storefront serves the shop: every shop but one that uninstalled reclift."""
    return installation is None or installation.state != UNINSTALLED


@dataclass(frozen=True)
class InstallOutcome:
    state: str  # installed | installing | failed
    exchanged: bool = False  # this request exchanged the session token
    attempted: bool = False  # this request asked Shopify for the exchange (whatever the answer)
    backfill_queued: bool = False
    missing_scopes: frozenset[str] = frozenset()
    error: str | None = None
    cycled: bool = False  # this request replaced an installed shop's grant by a new exchange


_installed_until: dict[str, float] = {}  # shop → monotonic time until which "installed" is trusted
_serving_until: dict[str, tuple[float, bool]] = {}  # shop → (until when, served)


def forget_cached(shop: str | None = None) -> None:
    """Forget what this execution environment remembers of a shop's installation (of every shop without one)."""
    for cache in (_installed_until, _serving_until):
        if shop is None:
            cache.clear()
        else:
            cache.pop(shop, None)


def ensure_installed(
    shop: str,
    session_token: str,
    installations: Installations,
    tokens: Tokens,
    backfills: Backfills,
    exchange: Exchange,
    *,
    now: datetime,
    fresh: bool = False,
    clock: Callable[[], float] = time.monotonic,
) -> InstallOutcome:
    """Install the shop if it is not: what every authenticated admin request does first. A shop found installed
    in the last minute costs nothing (`fresh` reads the table anyway); otherwise one read of its item, and for a
    shop to install, the exchange. InstallFailed when the outcome could not be recorded."""
    if not fresh and _installed_until.get(shop, 0.0) > clock():
        return InstallOutcome(INSTALLED)
    current = installations.installation(shop)
    if current is not None and current.state == INSTALLED:
        if needs_cycling(current.token_kind, current.refresh_token_expires_at, now):
            if cycle_due(current, now):
                return _cycle(shop, session_token, installations, tokens, exchange, now=now, clock=clock)
            return InstallOutcome(INSTALLED, missing_scopes=missing_scopes(current.scopes), error=current.error)
        _installed_until[shop] = clock() + INSTALLED_CACHE_SECONDS
        return InstallOutcome(INSTALLED, missing_scopes=missing_scopes(current.scopes))
    if current is not None and current.state is not None and not needs_exchange(current, now):
        return InstallOutcome(current.state, error=current.error)
    claim = uuid.uuid4().hex
    if not installations.claim_installation(shop, claim, now=now, stale_before=now - timedelta(seconds=CLAIM_SECONDS)):
        return InstallOutcome(INSTALLING)  # another request got there first
    try:
        token = exchange(shop, session_token)
    except TokenExchangeError as exc:
        installations.fail_installation(shop, claim, error=exc.code, retry_at=now + timedelta(seconds=RETRY_SECONDS))
        return InstallOutcome(FAILED, attempted=True, error=exc.code)
    missing = missing_scopes(token.scopes)
    grant = grant_from(token, now=now)
    try:
        tokens.put_grant(shop, grant)
        # Without the scopes it reads, the backfill could only fail: the page says which are missing instead.
        if not missing:
            backfills.queue_backfill(shop)
    except Exception as exc:
        installations.fail_installation(shop, claim, error="storing the installation failed", retry_at=now)
        raise InstallFailed(f"the installation of {shop} could not be stored") from exc
    completed = installations.complete_installation(
        shop, claim, scopes=token.scopes, now=now, grant=GrantRecord.of(grant), shop_id=token.shop_id
    )
    if not completed:
        return InstallOutcome(INSTALLING, exchanged=True, attempted=True)  # the claim went stale, taken over
    _installed_until[shop] = clock() + INSTALLED_CACHE_SECONDS
    return InstallOutcome(
        INSTALLED, exchanged=True, attempted=True, backfill_queued=not missing, missing_scopes=missing
    )


def cycle_due(installation: Installation, now: datetime) -> bool:
    """Whether an installed shop's grant may be cycled now: no cycle under way (or a stale one), no failed one
    waiting for its retry time."""
    if installation.claim is not None and (
        installation.claimed_at is None or installation.claimed_at >= now - timedelta(seconds=CLAIM_SECONDS)
    ):
        return False
    return installation.retry_at is None or installation.retry_at <= now


def _cycle(
    shop: str,
    session_token: str,
    installations: Installations,
    tokens: Tokens,
    exchange: Exchange,
    *,
    now: datetime,
    clock: Callable[[], float],
) -> InstallOutcome:
    """Replace an installed shop's grant by exchanging the session token again; the shop stays installed whatever
    happens (a failure is tried again by a later request, after RETRY_SECONDS)."""
    claim = uuid.uuid4().hex
    if not installations.claim_token_cycle(shop, claim, now=now, stale_before=now - timedelta(seconds=CLAIM_SECONDS)):
        return InstallOutcome(INSTALLED)  # another request is cycling it
    try:
        token = exchange(shop, session_token)
    except TokenExchangeError as exc:
        installations.fail_token_cycle(shop, claim, error=exc.code, retry_at=now + timedelta(seconds=RETRY_SECONDS))
        return InstallOutcome(INSTALLED, attempted=True, error=exc.code)
    grant = grant_from(token, now=now)
    try:
        tokens.put_grant(shop, grant)
    except Exception as exc:
        installations.fail_token_cycle(shop, claim, error="storing the new grant failed", retry_at=now)
        raise InstallFailed(f"the new grant of {shop} could not be stored") from exc
    installations.complete_token_cycle(shop, claim, scopes=token.scopes, grant=GrantRecord.of(grant))
    _installed_until[shop] = clock() + INSTALLED_CACHE_SECONDS
    return InstallOutcome(
        INSTALLED, exchanged=True, attempted=True, cycled=True, missing_scopes=missing_scopes(token.scopes)
    )


def _progress(progress: BackfillProgress | None, installed_at: datetime | None) -> dict[str, Any]:
    """One backfill's progress; one last worked on before this installation (a reinstall's) is still to come."""
    if progress is None or (installed_at is not None and progress.updated_at < installed_at):
        return {"status": "pending", "pages": 0, "fetched": 0, "stored": 0, "expected": None, "complete": False}
    return {
        "status": progress.status,
        "pages": progress.pages,
        "fetched": progress.fetched,
        "stored": progress.stored,
        "expected": progress.expected,
        "complete": progress.status == "done",
        "updated_at": progress.updated_at.isoformat(),
    }


def install_status(
    shop: str, outcome: InstallOutcome, installations: Installations, progress: BackfillProgressReader
) -> dict[str, Any]:
    """`GET /admin/install`: the installation's state and the backfill's progress, for the admin page."""
    current = installations.installation(shop, consistent=True)
    installed_at = current.installed_at if current is not None else None
    backfill = {
        what: _progress(progress.backfill_progress(shop, what), installed_at) for what in ("products", "orders")
    }
    scopes = current.scopes if current is not None else frozenset()
    return {
        "shop": shop,
        "installed": current is not None and current.state == INSTALLED,
        "state": current.state if current is not None and current.state else outcome.state,
        "installed_at": current.installed_at.isoformat() if current and current.installed_at else None,
        "scopes": sorted(scopes),
        "missing_scopes": sorted(missing_scopes(scopes)) if current and current.state == INSTALLED else [],
        "error": outcome.error or (current.error if current else None),
        "backfill": {**backfill, "complete": all(part["complete"] for part in backfill.values())},
    }


def require_serving(shop: str, installations: Installations, *, clock: Callable[[], float] = time.monotonic) -> None:
    """ShopNotInstalled unless the storefront serves the shop; the answer is kept for a few seconds per execution
    environment, so a busy storefront reads the shop's item a few times a minute, not on every request."""
    until, served = _serving_until.get(shop, (0.0, True))
    if until <= clock():
        served = serves(installations.installation(shop))
        _serving_until[shop] = (clock() + SERVING_CACHE_SECONDS, served)
    if not served:
        raise ShopNotInstalled(shop)


def parse_uninstalled_shop(shop: str, payload: Any) -> int:
    """The `app/uninstalled` body — Shopify's Shop object, as `GET shop.json` returns it — checked to be one and
    to name no other shop; its id. ValueError otherwise."""
    if not isinstance(payload, Mapping):
        raise ValueError("the body is not a Shop object")
    shop_id = payload.get("id")
    if isinstance(shop_id, bool) or not isinstance(shop_id, int):
        raise ValueError("the Shop object has no numeric id")
    domain = payload.get("myshopify_domain")
    if isinstance(domain, str) and domain and domain.lower() != shop:
        raise ValueError("the Shop object names another shop")
    return shop_id


def uninstall(
    shop: str,
    payload: Any,
    installations: Installations,
    tokens: Tokens,
    *,
    now: datetime,
    triggered_at: datetime | None = None,
) -> dict[str, Any]:
    """`app/uninstalled`: the shop is served no more and its offline grant (revoked by Shopify anyway) is deleted.
    Its data stays until `shop/redact`, which Shopify sends 48 hours later, so a quick reinstall loses nothing. An
    uninstallation triggered before the current installation (a retried delivery arriving after a reinstall) is
    ignored: the new installation and its grant stay."""
    shop_id = parse_uninstalled_shop(shop, payload)
    if not installations.mark_uninstalled(shop, now=now, triggered_at=triggered_at):
        return {"uninstalled": False, "shop_id": shop_id, "ignored": "installed again since it was triggered"}
    deleted = tokens.delete_token(shop)
    forget_cached(shop)
    return {"uninstalled": True, "shop_id": shop_id, "token_deleted": deleted}


REPLAY = "replay"  # a backfill job's `what` that replays the order deliveries Shopify dropped (reclift.logic.replay)
REPLAY_ORDERS_PER_JOB = 100  # orders a replay job may name (one Admin API query each)


class BackfillJob(BaseModel):
    """A backfill to run: what the installation queues, and what BackfillFunction may be invoked with. A replay
    (`"what": "replay"`) names the moment from which to read the shop's orders back (`since`) and, when it
    continues a run that stopped, where that run stopped (`resume_from`); or, to read again orders a replay could not
    read, those orders' ids (`orders`), each read by itself."""

    model_config = ConfigDict(frozen=True, extra="ignore")

    shop: str
    what: str = "all"
    restart: bool = False
    since: datetime | None = None
    resume_from: datetime | None = None
    orders: tuple[str, ...] = ()

    @field_validator("shop")
    @classmethod
    def _shop(cls, value: str) -> str:
        return shop_domain(value)

    @field_validator("orders", mode="before")
    @classmethod
    def _orders(cls, value: object) -> object:
        if isinstance(value, list | tuple):
            return tuple(shopify_id(order, "Order") for order in value)  # "450789469" or its gid
        return value

    @field_validator("what")
    @classmethod
    def _what(cls, value: str) -> str:
        from reclift.logic.backfill import parse_what  # the backfill's modules load only where a job is read

        if value.strip().lower() != REPLAY:
            parse_what(value)
        return value.strip().lower()

    @model_validator(mode="after")
    def _replay_since(self) -> BackfillJob:
        if self.what == REPLAY and self.since is None:
            raise ValueError("a replay names since: the moment from which Shopify's deliveries were lost")
        if self.orders and self.what != REPLAY:
            raise ValueError("orders are named by a replay only")
        if len(self.orders) > REPLAY_ORDERS_PER_JOB:
            raise ValueError(f"a replay names at most {REPLAY_ORDERS_PER_JOB} orders")
        return self

    @property
    def replay(self) -> bool:
        return self.what == REPLAY

    @property
    def whats(self) -> tuple[What, ...]:
        from reclift.logic.backfill import parse_what

        return () if self.replay else parse_what(self.what)


def parse_backfill_job(raw: object) -> BackfillJob:
    """A queued message's body (JSON text) or an invocation's event, as a job; ValueError naming the problem."""
    try:
        value = json.loads(raw) if isinstance(raw, str | bytes) else raw
        return BackfillJob.model_validate(value)
    except ValidationError as exc:
        problem = exc.errors()[0]
        field = ".".join(str(part) for part in problem["loc"]) or "event"
        raise ValueError(
            f'a backfill job is {{"shop": "<shop>.myshopify.com", "what": "all" | "orders" | "products"}}, or '
            '{"shop": …, "what": "replay", "since": "<ISO-8601 time>"}: '
            f"{field}: {problem['msg']}"
        ) from None
    except ValueError as exc:
        raise ValueError("a backfill job must be a JSON object") from exc
