"""A small client of Shopify's Admin GraphQL API, shared by the backfills.

`POST https://{shop}/admin/api/{version}/graphql.json` with the shop's access token in `X-Shopify-Access-Token`.
Shopify limits by calculated query cost (a leaky bucket per app and shop): every answer carries
`extensions.cost` — `requestedQueryCost`, `actualQueryCost` and `throttleStatus {maximumAvailable,
currentlyAvailable, restoreRate}`. A `THROTTLED` error is waited out at the restore rate and retried; when the
bucket is low the client paces itself before the next request instead of being throttled. Network errors, 429 and
5xx answers are retried with exponential backoff and jitter; then `AdminApiError` says what failed. The token never
appears in an error or a log line.

The base URL is `https://{shop}` unless `RECLIFT_ADMIN_API_URL` names another (`{shop}` in it is replaced): the local
stack and the tests point it at the fake Admin API. It is never set on AWS.
"""

from __future__ import annotations

import json
import os
import random
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

from reclift.ids import shopify_id

ADMIN_API_VERSION = "2025-10"  # the same version as the webhook subscriptions in shopify.app.toml
ADMIN_URL_VARIABLE = "RECLIFT_ADMIN_API_URL"
THROTTLED = "THROTTLED"
RETRIED_STATUSES = frozenset({429, 500, 502, 503, 504})


class AdminApiError(RuntimeError):
    """The Admin API could not answer a query (after the retries it deserved)."""


class AdminAccessDenied(AdminApiError):
    """The access token was refused (401/403): retrying cannot help."""


class AccessTokenSource(Protocol):
    """Where the client takes a shop's access token: a fresh one before each request (an expiring token is
    refreshed when it nears its expiry), and a renewed one when the Admin API refused the last (401)."""

    def access_token(self) -> str: ...
    def renewed_access_token(self) -> str: ...


@dataclass(frozen=True)
class ThrottleStatus:
    maximum_available: float
    currently_available: float
    restore_rate: float


@dataclass(frozen=True)
class QueryCost:
    requested: float | None
    actual: float | None
    throttle: ThrottleStatus | None


def _number(value: object) -> float | None:
    return float(value) if isinstance(value, int | float) and not isinstance(value, bool) else None


def parse_cost(extensions: object) -> QueryCost | None:
    """`extensions.cost` of an answer, if it has one."""
    cost = extensions.get("cost") if isinstance(extensions, dict) else None
    if not isinstance(cost, dict):
        return None
    status = cost.get("throttleStatus")
    throttle = None
    if isinstance(status, dict):
        maximum = _number(status.get("maximumAvailable"))
        current = _number(status.get("currentlyAvailable"))
        rate = _number(status.get("restoreRate"))
        if maximum is not None and current is not None and rate is not None:
            throttle = ThrottleStatus(maximum, current, rate)
    return QueryCost(
        requested=_number(cost.get("requestedQueryCost")),
        actual=_number(cost.get("actualQueryCost")),
        throttle=throttle,
    )


def throttle_wait_seconds(cost: QueryCost | None, needed: float | None = None, *, fallback: float = 1.0) -> float:
    """Seconds until the bucket holds `needed` points (default: the query's requested cost) at the restore rate.
    A need above the bucket's size waits for a full bucket. Without cost data, `fallback`."""
    if cost is None or cost.throttle is None or cost.throttle.restore_rate <= 0:
        return fallback
    throttle = cost.throttle
    need = needed if needed is not None else cost.requested if cost.requested is not None else 0.0
    deficit = min(need, throttle.maximum_available) - throttle.currently_available
    return max(0.0, deficit) / throttle.restore_rate


@dataclass(frozen=True)
class RetryPolicy:
    attempts: int = 5  # per request, for network errors, 429 and 5xx
    base_delay: float = 0.5
    max_delay: float = 30.0
    throttled_attempts: int = 20  # THROTTLED answers waited out before giving up
    max_throttle_wait: float = 60.0


@dataclass(frozen=True)
class Page:
    nodes: list[dict[str, Any]]
    end_cursor: str | None
    has_next_page: bool


def connection_page(data: Mapping[str, Any], path: Sequence[str]) -> Page:
    """The connection at `path` in a query's data (`("orders",)`, `("order", "lineItems")`) as a page."""
    value: Any = data
    for key in path:
        value = value.get(key) if isinstance(value, dict) else None
    if not isinstance(value, dict):
        raise AdminApiError(f"the answer has no {'.'.join(path)} connection")
    raw_info = value.get("pageInfo")
    info: dict[str, Any] = raw_info if isinstance(raw_info, dict) else {}
    nodes = value.get("nodes")
    if not isinstance(nodes, list):
        edges = value.get("edges")
        nodes = [edge.get("node") for edge in (edges if isinstance(edges, list) else []) if isinstance(edge, dict)]
    cursor = info.get("endCursor")
    return Page(
        nodes=[node for node in nodes if isinstance(node, dict)],
        end_cursor=cursor if isinstance(cursor, str) and cursor else None,
        has_next_page=info.get("hasNextPage") is True,
    )


def admin_base_url(shop: str) -> str:
    override = os.environ.get(ADMIN_URL_VARIABLE, "").strip()
    return override.replace("{shop}", shop).rstrip("/") if override else f"https://{shop}"


@dataclass
class AdminClient:
    """One shop's Admin GraphQL API. `sleep` and `jitter` are injectable so tests can observe the waits."""

    shop: str
    token: str = field(repr=False)  # the access token, when no `tokens` source gives it
    base_url: str | None = None
    tokens: AccessTokenSource | None = field(default=None, repr=False)
    version: str = ADMIN_API_VERSION
    timeout: float = 30.0
    retry: RetryPolicy = field(default_factory=RetryPolicy)
    sleep: Callable[[float], None] = time.sleep
    jitter: Callable[[], float] = random.random
    last_cost: QueryCost | None = None
    requests: int = 0
    throttled: int = 0
    waited_seconds: float = 0.0

    @property
    def endpoint(self) -> str:
        return f"{self.base_url or admin_base_url(self.shop)}/admin/api/{self.version}/graphql.json"

    def pause(self, seconds: float) -> None:
        """Wait (through the injectable `sleep`), counting the time waited."""
        if seconds > 0:
            self.waited_seconds += seconds
            self.sleep(seconds)

    def _post(self, body: bytes) -> tuple[int, bytes]:
        request = urllib.request.Request(  # noqa: S310 - https, or the configured fake's URL
            self.endpoint,
            data=body,
            method="POST",
            headers={
                "Content-Type": "application/json",
                "Accept": "application/json",
                "X-Shopify-Access-Token": self.tokens.access_token() if self.tokens else self.token,
            },
        )
        self.requests += 1
        try:
            with urllib.request.urlopen(request, timeout=self.timeout) as response:  # noqa: S310
                return int(response.status), response.read()
        except urllib.error.HTTPError as exc:
            return exc.code, exc.read()

    def _send(self, body: bytes) -> dict[str, Any]:
        """One request, retried on network errors, 429 and 5xx with exponential backoff; after a 401, once with a
        renewed access token when the client has a token source (an expiring token may have expired meanwhile)."""
        problem = ""
        renewed = False
        for attempt in range(self.retry.attempts):
            if attempt:
                delay = min(self.retry.max_delay, self.retry.base_delay * 2 ** (attempt - 1))
                self.pause(delay * (0.5 + self.jitter() / 2))
            try:
                status, raw = self._post(body)
                if status == 401 and self.tokens is not None and not renewed:
                    renewed = True
                    self.tokens.renewed_access_token()
                    status, raw = self._post(body)
            except (urllib.error.URLError, TimeoutError, ConnectionError) as exc:
                problem = f"network error: {getattr(exc, 'reason', exc)}"
                continue
            if status in (401, 403):
                raise AdminAccessDenied(f"the Admin API of {self.shop} refused the access token (HTTP {status})")
            if status in RETRIED_STATUSES:
                problem = f"HTTP {status}"
                continue
            if status != 200:
                raise AdminApiError(f"the Admin API of {self.shop} answered HTTP {status}")
            try:
                answer = json.loads(raw)
            except ValueError as exc:
                raise AdminApiError(f"the Admin API of {self.shop} answered something that is not JSON") from exc
            if not isinstance(answer, dict):
                raise AdminApiError(f"the Admin API of {self.shop} answered something that is not a JSON object")
            return answer
        raise AdminApiError(
            f"the Admin API of {self.shop} failed {self.retry.attempts} times in a row (last: {problem})"
        )

    def execute(self, query: str, variables: Mapping[str, Any] | None = None) -> dict[str, Any]:
        """The query's `data`; THROTTLED answers are waited out by the restore rate and retried."""
        body = json.dumps({"query": query, "variables": dict(variables or {})}).encode()
        for _ in range(self.retry.throttled_attempts):
            self._pace()
            answer = self._send(body)
            cost = parse_cost(answer.get("extensions"))
            self.last_cost = cost or self.last_cost
            errors = answer.get("errors")
            if errors:
                if _is_throttled(errors):
                    self.throttled += 1
                    self.pause(min(self.retry.max_throttle_wait, throttle_wait_seconds(cost) + 0.05))
                    self.last_cost = None  # waited for it: the next answer says where the bucket is
                    continue
                raise AdminApiError(f"the Admin API of {self.shop} answered with errors: {_messages(errors)}")
            data = answer.get("data")
            if not isinstance(data, dict):
                raise AdminApiError(f"the Admin API of {self.shop} answered without data")
            return data
        raise AdminApiError(
            f"the Admin API of {self.shop} kept throttling the query ({self.retry.throttled_attempts} times)"
        )

    def _pace(self) -> None:
        """Before a request, wait until the bucket holds what the previous query cost, so Shopify need not throttle."""
        cost = self.last_cost
        if cost is None or cost.throttle is None:
            return
        need = cost.actual if cost.actual is not None else cost.requested
        if need is not None and cost.throttle.currently_available < need:
            self.pause(min(self.retry.max_throttle_wait, throttle_wait_seconds(cost, need)))
            self.last_cost = None  # waited for it: the next answer says where the bucket is

    def page(self, query: str, variables: Mapping[str, Any], path: Sequence[str]) -> Page:
        return connection_page(self.execute(query, variables), path)

    def pages(
        self, query: str, variables: Mapping[str, Any], path: Sequence[str], after: str | None = None
    ) -> Iterator[Page]:
        """Every page of the connection at `path`, from the cursor `after` on."""
        while True:
            page = self.page(query, {**variables, "after": after}, path)
            yield page
            if not page.has_next_page or page.end_cursor is None:
                return
            after = page.end_cursor


def _is_throttled(errors: object) -> bool:
    if not isinstance(errors, list):
        return False
    for error in errors:
        if isinstance(error, dict):
            extensions = error.get("extensions")
            code = extensions.get("code") if isinstance(extensions, dict) else None
            if code == THROTTLED or str(error.get("message", "")).lower() == "throttled":
                return True
    return False


def _messages(errors: object) -> str:
    if isinstance(errors, list):
        texts = [
            str(error.get("message", error))[:200] if isinstance(error, dict) else str(error)[:200] for error in errors
        ]
        return "; ".join(texts[:5])
    return str(errors)[:200]


# ---------------------------------------------------------------- bulk operations
BULK_RUN_MUTATION = """
mutation BulkRun($query: String!) {
  bulkOperationRunQuery(query: $query) { bulkOperation { id status } userErrors { field message } }
}"""
BULK_POLL_QUERY = """
query BulkPoll($id: ID!) {
  node(id: $id) { ... on BulkOperation { id status errorCode objectCount url } }
}"""
BULK_DONE = "COMPLETED"
BULK_FAILED = frozenset({"FAILED", "CANCELED", "CANCELING", "EXPIRED"})


@dataclass(frozen=True)
class BulkOperation:
    id: str
    status: str  # CREATED | RUNNING | COMPLETED | FAILED | CANCELED | EXPIRED …
    url: str | None = None
    error_code: str | None = None
    object_count: int = 0


def _bulk_operation(raw: object) -> BulkOperation:
    if not isinstance(raw, dict) or not isinstance(raw.get("id"), str):
        raise AdminApiError("the answer names no bulk operation")
    count = raw.get("objectCount")
    return BulkOperation(
        id=raw["id"],
        status=str(raw.get("status") or ""),
        url=raw["url"] if isinstance(raw.get("url"), str) else None,
        error_code=raw["errorCode"] if isinstance(raw.get("errorCode"), str) else None,
        object_count=int(count) if isinstance(count, int | str) and str(count).isdigit() else 0,
    )


def start_bulk_query(client: AdminClient, query: str) -> BulkOperation:
    """Start a bulk query (`bulkOperationRunQuery`); Shopify runs one per app and shop at a time."""
    data = client.execute(BULK_RUN_MUTATION, {"query": query})
    result = data.get("bulkOperationRunQuery")
    errors = result.get("userErrors") if isinstance(result, dict) else None
    if errors:
        raise AdminApiError(f"the bulk query of {client.shop} was refused: {_messages(errors)}")
    return _bulk_operation(result.get("bulkOperation") if isinstance(result, dict) else None)


def bulk_operation(client: AdminClient, operation_id: str) -> BulkOperation:
    return _bulk_operation(client.execute(BULK_POLL_QUERY, {"id": operation_id}).get("node"))


def wait_for_bulk(
    client: AdminClient, operation_id: str, *, poll_seconds: float = 2.0, keep_going: Callable[[], bool] = lambda: True
) -> BulkOperation | None:
    """Poll the operation until it completes (None if `keep_going()` turned false first); AdminApiError if it
    failed or was canceled."""
    while keep_going():
        operation = bulk_operation(client, operation_id)
        if operation.status == BULK_DONE:
            return operation
        if operation.status in BULK_FAILED:
            raise AdminApiError(
                f"the bulk query of {client.shop} ended {operation.status} ({operation.error_code or 'no error code'})"
            )
        client.pause(poll_seconds)
    return None


def bulk_lines(client: AdminClient, url: str, *, skip: int = 0) -> Iterator[dict[str, Any]]:
    """The result file's JSON lines, streamed, from line `skip` on. The URL is a signed download link: the access
    token is not sent with it."""
    request = urllib.request.Request(url, method="GET")  # noqa: S310 - Shopify's signed https link, or the fake's
    try:
        with urllib.request.urlopen(request, timeout=client.timeout) as response:  # noqa: S310
            for number, line in enumerate(response):
                if number >= skip and line.strip():
                    record = json.loads(line)
                    if isinstance(record, dict):
                        yield record
    except urllib.error.HTTPError as exc:
        raise AdminApiError(f"downloading the bulk result of {client.shop} failed: HTTP {exc.code}") from exc
    except (urllib.error.URLError, TimeoutError, ConnectionError, ValueError) as exc:
        raise AdminApiError(f"downloading the bulk result of {client.shop} failed: {exc}") from exc


# ---------------------------------------------------------------- token exchange
# Shopify's managed installation: the embedded app's first session token is exchanged for the shop's offline
# access token (RFC 8693 token exchange) at `POST https://{shop}/admin/oauth/access_token`. The token is an expiring
# one (`expiring: "1"`, as Shopify's own libraries send it): it lasts an hour and comes with a refresh token, which
# the same endpoint exchanges (`grant_type: refresh_token`) for a new pair. Shopify rejects non-expiring offline
# tokens of public apps from January 1, 2027.
TOKEN_EXCHANGE_GRANT = "urn:ietf:params:oauth:grant-type:token-exchange"  # noqa: S105 - a grant type's name
ID_TOKEN_TYPE = "urn:ietf:params:oauth:token-type:id_token"  # noqa: S105 - a token type's name
OFFLINE_TOKEN_TYPE = "urn:shopify:params:oauth:token-type:offline-access-token"  # noqa: S105 - a token type's name
REFRESH_GRANT = "refresh_token"
TOKEN_EXCHANGE_TIMEOUT = 5.0  # seconds: it runs inside an admin request


class TokenExchangeError(RuntimeError):
    """Shopify did not exchange the session token (or the refresh token). `code` is Shopify's `error` (e.g.
    `invalid_subject_token`, `invalid_grant`), or `http_{status}` / `network` / `malformed_response`; `retryable` says
    whether a later attempt may succeed."""

    def __init__(self, code: str, message: str, *, retryable: bool) -> None:
        super().__init__(message)
        self.code = code
        self.retryable = retryable


@dataclass(frozen=True)
class OfflineToken:
    """What a token exchange or a refresh grants. `expires_in`, `refresh_token` and `refresh_token_expires_in` come
    only with an expiring token."""

    access_token: str = field(repr=False)
    scopes: frozenset[str]
    expires_in: int | None = None
    refresh_token: str | None = field(default=None, repr=False)
    refresh_token_expires_in: int | None = None
    shop_id: str | None = None  # the shop's numeric id, looked up with the new token (not part of Shopify's answer)


def token_exchange_url(shop: str) -> str:
    return f"{admin_base_url(shop)}/admin/oauth/access_token"


def token_exchange_body(session_token: str, *, api_key: str, api_secret: str) -> dict[str, str]:
    """The JSON body that exchanges a session token for the shop's offline access token."""
    return {
        "client_id": api_key,
        "client_secret": api_secret,
        "grant_type": TOKEN_EXCHANGE_GRANT,
        "subject_token": session_token,
        "subject_token_type": ID_TOKEN_TYPE,
        "requested_token_type": OFFLINE_TOKEN_TYPE,
        "expiring": "1",
    }


def refresh_token_body(refresh_token: str, *, api_key: str, api_secret: str) -> dict[str, str]:
    """The JSON body that exchanges an expiring offline token's refresh token for a new token pair."""
    return {
        "client_id": api_key,
        "client_secret": api_secret,
        "grant_type": REFRESH_GRANT,
        "refresh_token": refresh_token,
    }


def parse_scopes(value: object) -> frozenset[str]:
    """Shopify's comma-separated `scope` text as a set."""
    if not isinstance(value, str):
        return frozenset()
    return frozenset(part.strip() for part in value.split(",") if part.strip())


def parse_token_response(status: int, raw: bytes) -> OfflineToken:
    """A token exchange's answer: the offline token, or TokenExchangeError with Shopify's error code. A 4xx other
    than 429 is final (the session token or the app's credentials were refused); 429, 5xx are worth retrying."""
    try:
        answer = json.loads(raw) if raw else None
    except ValueError:
        answer = None
    if status != 200:
        code = answer.get("error") if isinstance(answer, dict) else None
        retryable = status == 429 or status >= 500
        return_code = code if isinstance(code, str) and code else f"http_{status}"
        raise TokenExchangeError(
            return_code, f"the token exchange was refused (HTTP {status}, {return_code})", retryable=retryable
        )
    if not isinstance(answer, dict) or not isinstance(answer.get("access_token"), str) or not answer["access_token"]:
        raise TokenExchangeError("malformed_response", "the token exchange answered no access token", retryable=True)
    refresh_token = answer.get("refresh_token")
    return OfflineToken(
        access_token=answer["access_token"],
        scopes=parse_scopes(answer.get("scope")),
        expires_in=_seconds(answer.get("expires_in")),
        refresh_token=refresh_token if isinstance(refresh_token, str) and refresh_token else None,
        refresh_token_expires_in=_seconds(answer.get("refresh_token_expires_in")),
    )


def _seconds(value: object) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) and value >= 0 else None


def exchange_session_token(
    shop: str, session_token: str, *, api_key: str, api_secret: str, timeout: float = TOKEN_EXCHANGE_TIMEOUT
) -> OfflineToken:
    """One token exchange request (the caller decides when to try again). Neither token nor secret ever appears in
    an error."""
    return _token_request(shop, token_exchange_body(session_token, api_key=api_key, api_secret=api_secret), timeout)


def refresh_offline_token(
    shop: str, refresh_token: str, *, api_key: str, api_secret: str, timeout: float = TOKEN_EXCHANGE_TIMEOUT
) -> OfflineToken:
    """One refresh of an expiring offline token: the new access token and the new refresh token, which replaces the
    one sent (store both before using them). TokenExchangeError `invalid_grant` when the refresh token was refused."""
    return _token_request(shop, refresh_token_body(refresh_token, api_key=api_key, api_secret=api_secret), timeout)


def _token_request(shop: str, fields: dict[str, str], timeout: float) -> OfflineToken:
    body = json.dumps(fields).encode()
    request = urllib.request.Request(  # noqa: S310 - https, or the configured fake's URL
        token_exchange_url(shop),
        data=body,
        method="POST",
        headers={"Content-Type": "application/json", "Accept": "application/json"},
    )
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:  # noqa: S310
            status, raw = int(response.status), response.read()
    except urllib.error.HTTPError as exc:
        status, raw = exc.code, exc.read()
    except (urllib.error.URLError, TimeoutError, ConnectionError) as exc:
        reason = getattr(exc, "reason", exc)
        raise TokenExchangeError("network", f"the token request to {shop} failed: {reason}", retryable=True) from exc
    return parse_token_response(status, raw)


SHOP_ID_QUERY = "query ShopId { shop { id } }"


def fetch_shop_id(client: AdminClient) -> str:
    """The shop's numeric id (what its privacy webhooks name as `shop_id`). AdminApiError when it cannot be read."""
    data = client.execute(SHOP_ID_QUERY)
    shop = data.get("shop")
    try:
        return shopify_id(shop.get("id") if isinstance(shop, dict) else None, "Shop")
    except ValueError as exc:
        raise AdminApiError(f"the shop's id could not be read: {exc}") from exc
