"""A shop's installation: its state in the shops table, its offline access token in SSM Parameter Store (a
SecureString, encrypted with KMS), and the backfill queued for it.

The installation lives on the shop's registry item (pk = the shop domain) beside the settings and the registration
written elsewhere, each writer setting only its own attributes: `install_state` (`installing` | `installed` |
`failed` | `uninstalled`; absent for a shop known only from webhooks and storefront events), the granted `scopes`,
`installed_at`, `uninstalled_at`, and while an exchange runs, its `install_claim`. Every state change is a
conditional update, so two admin requests racing on a new shop exchange its session token once.

The item also says what kind of grant the SSM parameter holds (`token_kind`: `expiring`; `refresh_failed` once a
refresh was refused; absent for a legacy non-expiring token) and when its refresh token expires, so an admin request
knows without reading SSM whether the grant must be replaced by exchanging a session token again (a "cycle", claimed
with the same `install_claim` while the shop stays installed). The grant itself (JSON: both tokens, their expiries,
the scopes) is the SecureString `{prefix}{shop}`.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from functools import cache
from typing import TYPE_CHECKING, Any

import boto3
from botocore.exceptions import BotoCoreError, ClientError
from pynamodb.attributes import UnicodeAttribute, UnicodeSetAttribute, UTCDateTimeAttribute
from pynamodb.exceptions import PynamoDBException
from pynamodb.expressions.condition import Condition
from pynamodb.models import Model

from reclift import config
from reclift.data.models import region
from reclift.data.store import StoreError, update_if
from reclift.offline_grants import EXPIRING, GrantError, OfflineGrant, grant_json, parse_grant

if TYPE_CHECKING:
    from mypy_boto3_sqs import SQSClient
    from mypy_boto3_ssm import SSMClient

INSTALLING = "installing"
INSTALLED = "installed"
FAILED = "failed"
UNINSTALLED = "uninstalled"
REFRESH_FAILED = "refresh_failed"  # token_kind once Shopify refused the refresh token


@dataclass(frozen=True)
class GrantRecord:
    """What the shop's item records of its stored grant (so an admin request needs no SSM read to decide)."""

    kind: str  # expiring | non-expiring
    refresh_token_expires_at: datetime | None = None

    @classmethod
    def of(cls, grant: OfflineGrant) -> GrantRecord:
        return cls(grant.kind, grant.refresh_token_expires_at)


def _grant_actions(grant: GrantRecord) -> list[Any]:
    expires = grant.refresh_token_expires_at
    return [
        InstallItem.token_kind.set(EXPIRING) if grant.kind == EXPIRING else InstallItem.token_kind.remove(),
        InstallItem.token_refresh_expires_at.set(expires) if expires else InstallItem.token_refresh_expires_at.remove(),
    ]


class InstallItem(Model):
    """The installation's attributes of the shop's registry item (the shops table, pk = the shop domain)."""

    class Meta:
        table_name = "SHOPS_TABLE"

    pk = UnicodeAttribute(hash_key=True)
    install_state = UnicodeAttribute(null=True)
    scopes = UnicodeSetAttribute(null=True)
    installed_at = UTCDateTimeAttribute(null=True)
    uninstalled_at = UTCDateTimeAttribute(null=True)
    install_claim = UnicodeAttribute(null=True)  # the exchange under way: its id …
    install_claimed_at = UTCDateTimeAttribute(null=True)  # … and since when (a stale claim may be taken over)
    install_error = UnicodeAttribute(null=True)  # the last failed exchange's reason (no token, no secret)
    install_retry_at = UTCDateTimeAttribute(null=True)  # a failed exchange is tried again from then on
    token_kind = UnicodeAttribute(null=True)  # expiring | refresh_failed; absent: a legacy non-expiring token
    token_refresh_expires_at = UTCDateTimeAttribute(null=True)  # the stored refresh token's expiry
    shop_id = UnicodeAttribute(null=True)  # the shop's numeric id, read at installation; its privacy topics name it
    # The registration the scheduled jobs fan out over (written by the registry too).
    first_seen = UTCDateTimeAttribute(null=True)
    last_seen = UTCDateTimeAttribute(null=True)


@dataclass(frozen=True)
class Installation:
    shop: str
    state: str | None  # None: never installed through the managed installation (a shop known from its webhooks)
    scopes: frozenset[str] = frozenset()
    installed_at: datetime | None = None
    uninstalled_at: datetime | None = None
    claimed_at: datetime | None = None
    error: str | None = None
    retry_at: datetime | None = None
    token_kind: str | None = None
    refresh_token_expires_at: datetime | None = None
    claim: str | None = None
    shop_id: str | None = None


_bound_to: tuple[str, ...] | None = None


def _bind() -> None:
    """Point the model at the shops table of the current environment (again when the endpoint changed, as in tests
    that move between emulators), once per execution environment otherwise."""
    global _bound_to
    key = (
        config.tables().shops,
        region(),
        os.environ.get("AWS_ENDPOINT_URL_DYNAMODB", ""),
        os.environ.get("AWS_ENDPOINT_URL", ""),
    )
    if key != _bound_to:
        meta: Any = InstallItem.Meta
        meta.table_name, meta.region = key[0], key[1]
        InstallItem._connection = None
        _bound_to = key


def _installation(item: InstallItem) -> Installation:
    return Installation(
        shop=item.pk,
        state=item.install_state,
        scopes=frozenset(item.scopes or ()),
        installed_at=item.installed_at,
        uninstalled_at=item.uninstalled_at,
        claimed_at=item.install_claimed_at,
        error=item.install_error,
        retry_at=item.install_retry_at,
        token_kind=item.token_kind,
        refresh_token_expires_at=item.token_refresh_expires_at,
        claim=item.install_claim,
        shop_id=item.shop_id,
    )


def still_installed() -> Condition:
    """A registry filter: the shop has not uninstalled reclift (a shop never installed through the managed
    installation counts as installed). What the scheduled fan-outs scan with."""
    condition: Condition = InstallItem.install_state.does_not_exist() | (InstallItem.install_state != UNINSTALLED)
    return condition


def uninstalled_in(raw_items: Iterable[dict[str, Any]]) -> bool:
    """Whether raw shop items (a BatchGetItem's, as serving reads them) say the shop uninstalled reclift."""
    return any((item.get("install_state") or {}).get("S") == UNINSTALLED for item in raw_items)


class InstallRegistry:
    """The installation's state, on the shop's registry item."""

    def installation(self, shop: str, *, consistent: bool = False) -> Installation | None:
        """The shop's installation, read with one BatchGetItem (the storefront's role reads the shops table that
        way only)."""
        _bind()
        try:
            found = list(InstallItem.batch_get([shop], consistent_read=consistent))
        except PynamoDBException as exc:
            raise StoreError(f"reading the installation failed: {exc.msg}") from exc
        return _installation(found[0]) if found else None

    def _update(self, shop: str, actions: list[Any], condition: Condition | None, what: str) -> bool:
        _bind()
        return update_if(InstallItem(shop), actions, condition, what)

    def claim_installation(self, shop: str, claim: str, *, now: datetime, stale_before: datetime) -> bool:
        """Take the shop's installation for one exchange: only a shop not installed (never, no longer, or after a
        failure whose retry time has come) or whose last claim went stale. False when another request holds it."""
        state = InstallItem.install_state
        condition = (
            state.does_not_exist()
            | (state == UNINSTALLED)
            | ((state == FAILED) & (InstallItem.install_retry_at <= now))
            | ((state == INSTALLING) & (InstallItem.install_claimed_at < stale_before))
        )
        actions = [
            state.set(INSTALLING),
            InstallItem.install_claim.set(claim),
            InstallItem.install_claimed_at.set(now),
        ]
        return self._update(shop, actions, condition, "claiming the installation")

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
        """The exchange of `claim` succeeded: the shop is installed and registered (the scheduled jobs fan out to
        it), with its numeric id when it was read. False when the claim was taken over meanwhile."""
        actions: list[Any] = [
            *([InstallItem.shop_id.set(shop_id)] if shop_id else []),
            *_grant_actions(grant),
            InstallItem.install_state.set(INSTALLED),
            InstallItem.installed_at.set(now),
            InstallItem.first_seen.set(InstallItem.first_seen | now),
            InstallItem.last_seen.set(now),
            InstallItem.install_claim.remove(),
            InstallItem.install_claimed_at.remove(),
            InstallItem.install_error.remove(),
            InstallItem.install_retry_at.remove(),
            InstallItem.uninstalled_at.remove(),
        ]
        actions.append(InstallItem.scopes.set(set(scopes)) if scopes else InstallItem.scopes.remove())
        return self._update(shop, actions, InstallItem.install_claim == claim, "completing the installation")

    def fail_installation(self, shop: str, claim: str, *, error: str, retry_at: datetime) -> bool:
        """The exchange of `claim` failed: tried again from `retry_at`."""
        actions = [
            InstallItem.install_state.set(FAILED),
            InstallItem.install_error.set(error[:300]),
            InstallItem.install_retry_at.set(retry_at),
            InstallItem.install_claim.remove(),
            InstallItem.install_claimed_at.remove(),
        ]
        return self._update(shop, actions, InstallItem.install_claim == claim, "recording the failed installation")

    def mark_uninstalled(self, shop: str, *, now: datetime, triggered_at: datetime | None = None) -> bool:
        """Shopify says the app was uninstalled: the shop is served no more, unless it was installed again after
        the uninstallation was triggered (a late delivery, retried after a reinstall). False when ignored."""
        actions = [
            InstallItem.install_state.set(UNINSTALLED),
            InstallItem.uninstalled_at.set(now),
            InstallItem.install_claim.remove(),
            InstallItem.install_claimed_at.remove(),
        ]
        condition = None
        if triggered_at is not None:
            condition = InstallItem.installed_at.does_not_exist() | (InstallItem.installed_at <= triggered_at)
        return self._update(shop, actions, condition, "recording the uninstallation")

    def claim_token_cycle(self, shop: str, claim: str, *, now: datetime, stale_before: datetime) -> bool:
        """Take an installed shop's grant for one exchange that replaces it (the shop stays installed and served):
        no other cycle under way (or a stale one), and a failed one's retry time come. False otherwise."""
        condition = (
            (InstallItem.install_state == INSTALLED)
            & (InstallItem.install_claim.does_not_exist() | (InstallItem.install_claimed_at < stale_before))
            & (InstallItem.install_retry_at.does_not_exist() | (InstallItem.install_retry_at <= now))
        )
        actions = [InstallItem.install_claim.set(claim), InstallItem.install_claimed_at.set(now)]
        return self._update(shop, actions, condition, "claiming the token cycle")

    def complete_token_cycle(self, shop: str, claim: str, *, scopes: frozenset[str], grant: GrantRecord) -> bool:
        """The cycle's exchange succeeded and its grant is stored."""
        actions: list[Any] = [
            *_grant_actions(grant),
            InstallItem.install_claim.remove(),
            InstallItem.install_claimed_at.remove(),
            InstallItem.install_error.remove(),
            InstallItem.install_retry_at.remove(),
            InstallItem.scopes.set(set(scopes)) if scopes else InstallItem.scopes.remove(),
        ]
        return self._update(shop, actions, InstallItem.install_claim == claim, "completing the token cycle")

    def fail_token_cycle(self, shop: str, claim: str, *, error: str, retry_at: datetime) -> bool:
        """The cycle's exchange failed: the old grant stays (the shop installed), tried again from `retry_at`."""
        actions = [
            InstallItem.install_error.set(error[:300]),
            InstallItem.install_retry_at.set(retry_at),
            InstallItem.install_claim.remove(),
            InstallItem.install_claimed_at.remove(),
        ]
        return self._update(shop, actions, InstallItem.install_claim == claim, "recording the failed token cycle")

    def mark_refresh_failed(self, shop: str) -> None:
        """Shopify refused the stored refresh token: the next admin visit exchanges a session token again."""
        actions = [InstallItem.token_kind.set(REFRESH_FAILED), InstallItem.install_retry_at.remove()]
        self._update(shop, actions, InstallItem.install_state == INSTALLED, "recording the failed refresh")


class TokenVault:
    """Shops' offline access grants in SSM Parameter Store, one SecureString each under the token prefix."""

    def put_grant(self, shop: str, grant: OfflineGrant) -> None:
        """Store the grant (JSON) as a SecureString (KMS-encrypted at rest), replacing the previous one whole."""
        name = config.admin_token_parameter(shop)
        try:
            _ssm().put_parameter(Name=name, Value=grant_json(grant), Type="SecureString", Overwrite=True)
        except (BotoCoreError, ClientError) as exc:
            raise StoreError(f"storing the access grant in SSM parameter {name} failed") from exc

    def grant(self, shop: str) -> OfflineGrant | None:
        """The stored grant, decrypted and read afresh (a refresh or a reinstall replaces it); None when there is
        none. StoreError, never the grant, when it cannot be read."""
        name = config.admin_token_parameter(shop)
        try:
            value = _ssm().get_parameter(Name=name, WithDecryption=True)["Parameter"].get("Value", "")
        except ClientError as exc:
            if exc.response.get("Error", {}).get("Code") == "ParameterNotFound":
                return None
            raise StoreError(f"reading SSM parameter {name} failed") from exc
        except BotoCoreError as exc:
            raise StoreError(f"reading SSM parameter {name} failed") from exc
        try:
            return parse_grant(value)
        except GrantError as exc:
            raise StoreError(f"SSM parameter {name} holds no access grant: {exc}") from None

    def delete_token(self, shop: str) -> bool:
        """Delete the offline token; False when there was none."""
        name = config.admin_token_parameter(shop)
        try:
            _ssm().delete_parameter(Name=name)
        except ClientError as exc:
            if exc.response.get("Error", {}).get("Code") == "ParameterNotFound":
                return False
            raise StoreError(f"deleting SSM parameter {name} failed") from exc
        except BotoCoreError as exc:
            raise StoreError(f"deleting SSM parameter {name} failed") from exc
        return True


class BackfillQueue:
    """The backfill queue, which BackfillFunction works."""

    def queue_backfill(self, shop: str, *, what: str = "all") -> None:
        """Queue the shop's backfill job (BackfillFunction works the queue)."""
        self.queue_job(json.dumps({"shop": shop, "what": what, "restart": False}))

    def queue_job(self, body: str) -> None:
        """Queue a backfill job's JSON (a replay's continuation carries more than the shop and what)."""
        try:
            _sqs().send_message(QueueUrl=config.required("BACKFILL_QUEUE_URL"), MessageBody=body)
        except (BotoCoreError, ClientError) as exc:
            raise StoreError(f"queueing the backfill failed: {exc}") from exc


def _ssm() -> SSMClient:
    client: SSMClient = _client("ssm", os.environ.get("AWS_ENDPOINT_URL", ""))
    return client


def _sqs() -> SQSClient:
    client: SQSClient = _client("sqs", os.environ.get("AWS_ENDPOINT_URL", ""))
    return client


@cache
def _client(service: str, endpoint: str) -> Any:
    """One client per service and endpoint, made once per execution environment (the endpoint is in the key so a
    test moving to another emulator gets a client of its own)."""
    return boto3.client(service)  # type: ignore[call-overload]


@cache
def install_registry() -> InstallRegistry:
    return InstallRegistry()


@cache
def token_vault() -> TokenVault:
    return TokenVault()


@cache
def backfill_queue() -> BackfillQueue:
    return BackfillQueue()
