"""A fake Shopify Admin GraphQL API for one shop, on a real HTTP port: what the backfill is tested and tried against.

It answers the backfill's queries — `orders`, `order { lineItems }`, `products`, `product { variants }`,
and the order replay's (`orders` listed by update, `order` whole with its lines' prices, discounts and attributes,
`refund`),
`ordersCount`, `productsCount`, and bulk operations (`bulkOperationRunQuery`, polled through `node`, its JSONL
result served on the same port, running for `bulk_polls` polls) — in
Shopify's shapes (`nodes`, `pageInfo {hasNextPage endCursor}`, opaque cursors, `gid://shopify/…` ids) from a seeded
set of orders and products, reading the page sizes, cursors and search filter from the query's variables (it is not
a GraphQL engine: the root field is the first field of the operation). It keeps Shopify's cost-based leaky bucket —
`extensions.cost` with `requestedQueryCost`, `actualQueryCost` and `throttleStatus` on every answer, `THROTTLED` when
the bucket cannot pay, `MAX_COST_EXCEEDED` above 1,000 points — checks `X-Shopify-Access-Token` (401 otherwise),
and on demand answers THROTTLED or fails with a 5xx, now or after a number of good answers.

It also answers the token exchange of Shopify's managed installation, `POST /admin/oauth/access_token`, as Shopify
does: the subject token must be a session token of this shop signed with the app's secret (`aud` = the API key,
`dest` = `https://{shop}`), the client id and secret the app's; a bad subject token gets 400 `invalid_subject_token`.
It answers with the shop's offline token and the granted scopes; `uninstall()` revokes that token, so a reinstall's
exchange gets a new one. Asked for an expiring token (`expiring: "1"`), it issues a new access token lasting
`access_lifetime` seconds (3600, as Shopify; shorter for tests) with a refresh token lasting `refresh_lifetime`, and
answers the refresh grant (`grant_type: refresh_token`) with a new pair. As Shopify does, a used refresh token keeps
working until its replacement is first used, then it is retired; a retired, expired or unknown one gets 400
`invalid_grant`, and an expired access token gets 401 on GraphQL. `expire_access_tokens_after(n)` makes the issued
access tokens expire after n more answers (an hour passing mid-run), `revoke_refresh_tokens()` makes every refresh
fail. Every request is recorded, so a test can count what an installation spends.

`python -m reclift_local fake-admin --shop … --token … --orders 500 --products 200` serves a seeded shop until
Ctrl-C; point the backfill at it with `RECLIFT_ADMIN_API_URL=<the printed URL>`.
"""

from __future__ import annotations

import base64
import json
import random
import re
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from time import monotonic
from typing import Any

from reclift.shopify_admin import (
    ADMIN_API_VERSION,
    ID_TOKEN_TYPE,
    OFFLINE_TOKEN_TYPE,
    REFRESH_GRANT,
    TOKEN_EXCHANGE_GRANT,
)
from reclift.signatures import SignatureError, verify_session_token
from reclift_local.sign import DEV_API_KEY, DEV_API_SECRET

MAX_QUERY_COST = 1000.0
TOKEN_EXCHANGE_ROOT = "token_exchange"  # noqa: S105 - how a token exchange is recorded among the requests
TOKEN_REFRESH_ROOT = "token_refresh"  # noqa: S105 - how a refresh is recorded among the requests
MAX_PAGE_SIZE = 250
ROOT_FIELD = re.compile(r"^\s*(?:(?:query|mutation)\b[^{]*)?\{\s*(\w+)", re.DOTALL)
_CREATED_SINCE = re.compile(r"created_at:>=(\d{4}-\d{2}-\d{2})")
_UPDATED_SINCE = re.compile(r"updated_at:>='?(\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}Z)")


def gid(kind: str, number: int | str) -> str:
    return f"gid://shopify/{kind}/{number}"


def _cursor(index: int) -> str:
    return base64.b64encode(json.dumps({"last": index}).encode()).decode()


def _position(cursor: object) -> int:
    """The index after which a page starts; -1 for the first page."""
    if not isinstance(cursor, str) or not cursor:
        return -1
    try:
        return int(json.loads(base64.b64decode(cursor))["last"])
    except (ValueError, KeyError, TypeError) as exc:
        raise ValueError(f"invalid cursor {cursor[:40]!r}") from exc


def _connection(items: list[Any], first: int, after: object) -> tuple[dict[str, Any], list[Any]]:
    """A page of `items` as Shopify's connection (nodes filled in by the caller) and the page's items."""
    start = _position(after) + 1
    page = items[start : start + first]
    last = start + len(page) - 1
    info = {"hasNextPage": last + 1 < len(items), "endCursor": _cursor(last) if page else None}
    return {"pageInfo": info}, page


@dataclass
class FakeLine:
    number: int
    product: int | None  # None: a custom line without a product
    quantity: int = 1
    price: str = "10.00"
    discounts: list[str] = field(default_factory=list)
    properties: list[tuple[str, str]] = field(default_factory=list)  # customAttributes (`_rec_id`)


@dataclass
class FakeRefund:
    number: int
    created_at: datetime
    lines: list[tuple[int, int]]  # (line number, quantity)


@dataclass
class FakeOrder:
    number: int
    created_at: datetime
    product_numbers: list[int | None]  # None: a custom line without a product
    test: bool = False
    currency: str = "USD"
    landing_page: str | None = None  # the page the buyer's last visit before the order landed on
    updated_at: datetime | None = None  # None: when it was created
    cancelled_at: datetime | None = None
    customer: int | None = None
    attributes: list[tuple[str, str]] = field(default_factory=list)  # customAttributes (the note attributes)
    details: list[FakeLine] | None = None  # None: one unit of each product at 10.00
    refunds: list[FakeRefund] = field(default_factory=list)

    @property
    def lines(self) -> list[FakeLine]:
        if self.details is not None:
            return self.details
        return [FakeLine(self.number * 1000 + index, product) for index, product in enumerate(self.product_numbers)]

    @property
    def updated(self) -> datetime:
        return self.updated_at or self.created_at

    @classmethod
    def from_webhook(cls, payload: dict[str, Any], refunds: Sequence[dict[str, Any]] = ()) -> FakeOrder:
        """The order an `orders/create` body (and its `refunds/create` bodies) describes, as the Admin API holds it."""

        def pairs(values: object) -> list[tuple[str, str]]:
            return [(str(item["name"]), str(item["value"])) for item in values or []]  # type: ignore[attr-defined]

        def moment(value: object) -> datetime | None:
            return datetime.fromisoformat(str(value).replace("Z", "+00:00")).astimezone(UTC) if value else None

        lines = [
            FakeLine(
                number=int(line["id"]),
                product=None if line.get("product_id") is None else int(line["product_id"]),
                quantity=int(line["quantity"]),
                price=str(line["price_set"]["shop_money"]["amount"]),
                discounts=[str(item["amount_set"]["shop_money"]["amount"]) for item in line["discount_allocations"]],
                properties=pairs(line.get("properties")),
            )
            for line in payload["line_items"]
        ]
        created = moment(payload["created_at"])
        assert created is not None
        customer = payload.get("customer")
        return cls(
            number=int(payload["id"]),
            created_at=created,
            product_numbers=[line.product for line in lines],
            test=payload.get("test") is True,
            currency=str(payload.get("currency") or "USD"),
            landing_page=payload.get("landing_site") or None,
            updated_at=moment(payload.get("updated_at")),
            cancelled_at=moment(payload.get("cancelled_at")),
            customer=int(customer["id"]) if isinstance(customer, dict) and customer.get("id") else None,
            attributes=pairs(payload.get("note_attributes")),
            details=lines,
            refunds=[
                FakeRefund(
                    number=int(refund["id"]),
                    created_at=moment(refund["created_at"]) or created,
                    lines=[(int(item["line_item_id"]), int(item["quantity"])) for item in refund["refund_line_items"]],
                )
                for refund in refunds
            ],
        )


@dataclass
class FakeVariant:
    price: str
    inventory_quantity: int
    tracked: bool = True
    policy: str = "DENY"


@dataclass
class FakeProduct:
    number: int
    title: str
    handle: str
    status: str  # ACTIVE | DRAFT | ARCHIVED
    updated_at: datetime
    variants: list[FakeVariant]
    image: str | None = None
    product_type: str = ""
    vendor: str = ""
    tags: list[str] = field(default_factory=list)
    gift_card: bool = False


@dataclass
class RequestRecord:
    root: str
    variables: dict[str, Any]
    status: int
    outcome: str  # ok | throttled | failed | denied | error


@dataclass
class _BulkRun:
    number: int
    lines: list[dict[str, Any]]
    polls_left: int


@dataclass
class _Faults:
    throttle: int = 0
    fail: int = 0
    fail_status: int = 503
    fail_after: int = 0  # good answers still to give before `fail` failures start


@dataclass
class _RefreshToken:
    expires: float  # wall-clock time
    replacement: str | None = None  # the refresh token issued when this one was used
    retired: bool = False


@dataclass
class FakeAdminApi:
    """The fake API of one shop. Start it with `start()` (or `with`), then use `url` as the Admin base URL."""

    shop: str
    token: str
    orders: list[FakeOrder] = field(default_factory=list)
    products: list[FakeProduct] = field(default_factory=list)
    maximum_available: float = 1000.0
    restore_rate: float = 50.0
    version: str = ADMIN_API_VERSION
    requests: list[RequestRecord] = field(default_factory=list)
    bulk_polls: int = 1  # polls that still find a bulk operation RUNNING
    downloads: int = 0  # bulk result downloads
    points_spent: float = 0.0  # the actual query cost of every answered query
    api_key: str = DEV_API_KEY  # the app whose session tokens the token exchange accepts
    api_secret: str = field(default=DEV_API_SECRET, repr=False)
    granted_scopes: str = "read_orders,read_products"
    shop_id: int = 548380009  # what `{ shop { id } }` answers, and what the shop's privacy webhooks name
    revoked: list[str] = field(default_factory=list, repr=False)  # tokens of earlier installations
    access_lifetime: int = 3600  # seconds an expiring access token lasts
    refresh_lifetime: int = 90 * 24 * 3600  # seconds a refresh token lasts
    _expiring: dict[str, float] = field(default_factory=dict, repr=False)  # access token → expiry (wall clock)
    _refresh_tokens: dict[str, _RefreshToken] = field(default_factory=dict, repr=False)
    _expire_after: int | None = None  # good answers before the issued access tokens expire
    _bulk: dict[str, _BulkRun] = field(default_factory=dict)
    _faults: _Faults = field(default_factory=_Faults)
    _available: float = 0.0
    _stamp: float = 0.0
    _lock: threading.Lock = field(default_factory=threading.Lock)
    _server: ThreadingHTTPServer | None = None
    _thread: threading.Thread | None = None

    # ------------------------------------------------------------ control
    def start(self) -> str:
        self._available, self._stamp = self.maximum_available, monotonic()
        api = self

        class Handler(BaseHTTPRequestHandler):
            # Headers and body leave in one write, without Nagle: no delayed-ACK stall on every answer.
            wbufsize = -1
            disable_nagle_algorithm = True

            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                raw = self.rfile.read(length)
                if self.path == "/admin/oauth/access_token":
                    status, body = api.exchange(raw)
                else:
                    status, body = api.answer(self.path, self.headers.get("X-Shopify-Access-Token"), raw)
                payload = json.dumps(body).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)

            def do_GET(self) -> None:
                status, text = api.download(self.path)
                payload = text.encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/jsonl")
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)

            def log_message(self, format: str, *args: Any) -> None:
                return

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._thread = threading.Thread(target=self._server.serve_forever, name="fake-admin", daemon=True)
        self._thread.start()
        return self.url

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None

    def __enter__(self) -> FakeAdminApi:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    @property
    def url(self) -> str:
        assert self._server is not None, "the fake Admin API is not started"
        return f"http://127.0.0.1:{self._server.server_address[1]}"

    def throttle_next(self, times: int = 1) -> None:
        """Answer the next `times` requests THROTTLED, with the bucket empty."""
        with self._lock:
            self._faults.throttle += times

    def fail_next(self, times: int = 1, *, status: int = 503, after: int = 0) -> None:
        """After `after` more good answers, fail the next `times` requests with HTTP `status`."""
        with self._lock:
            self._faults.fail, self._faults.fail_status, self._faults.fail_after = times, status, after

    def drain(self, points: float) -> None:
        """Spend bucket points, as another caller of the same app and shop would."""
        with self._lock:
            self._refill()
            self._available = max(0.0, self._available - points)

    # ------------------------------------------------------------ answering
    def _refill(self) -> None:
        now = monotonic()
        self._available = min(self.maximum_available, self._available + (now - self._stamp) * self.restore_rate)
        self._stamp = now

    def _cost(self, requested: float, actual: float | None) -> dict[str, Any]:
        return {
            "cost": {
                "requestedQueryCost": requested,
                "actualQueryCost": actual,
                "throttleStatus": {
                    "maximumAvailable": self.maximum_available,
                    "currentlyAvailable": round(self._available, 1),
                    "restoreRate": self.restore_rate,
                },
            }
        }

    def uninstall(self) -> None:
        """The merchant uninstalls the app: its offline tokens are revoked (401 from now on), and the next
        installation's token exchange issues another one."""
        with self._lock:
            self.revoked.append(self.token)
            self.token = f"shpat_{random.getrandbits(128):032x}"
            self._expiring.clear()
            self._refresh_tokens.clear()

    def expire_access_tokens_after(self, answers: int) -> None:
        """After `answers` more good GraphQL answers, every expiring access token issued so far has expired."""
        with self._lock:
            self._expire_after = answers

    def revoke_refresh_tokens(self) -> None:
        """Every refresh token issued so far is refused from now on (400 invalid_grant)."""
        with self._lock:
            for refresh in self._refresh_tokens.values():
                refresh.retired = True

    def accepts(self, token: str | None) -> bool:
        """Whether GraphQL requests with this access token are answered now."""
        with self._lock:
            return self._valid_access(token)

    @property
    def refreshes(self) -> list[RequestRecord]:
        return [record for record in self.requests if record.root == TOKEN_REFRESH_ROOT]

    def _issue_pair(self) -> dict[str, Any]:
        access, refresh = f"shpat_{random.getrandbits(128):032x}", f"shprt_{random.getrandbits(128):032x}"
        now = time.time()
        self._expiring[access] = now + self.access_lifetime
        self._refresh_tokens[refresh] = _RefreshToken(expires=now + self.refresh_lifetime)
        return {
            "access_token": access,
            "expires_in": self.access_lifetime,
            "refresh_token": refresh,
            "refresh_token_expires_in": self.refresh_lifetime,
            "scope": self.granted_scopes,
        }

    def _valid_access(self, token: str | None) -> bool:
        if token is None:
            return False
        if token == self.token:
            return True
        expires = self._expiring.get(token)
        return expires is not None and expires > time.time()

    @property
    def exchanges(self) -> list[RequestRecord]:
        return [record for record in self.requests if record.root == TOKEN_EXCHANGE_ROOT]

    def exchange(self, raw: bytes) -> tuple[int, dict[str, Any]]:
        """`POST /admin/oauth/access_token`: a session token exchanged for the shop's offline token."""
        with self._lock:
            try:
                request = json.loads(raw)
            except ValueError:
                request = None
            fields = request if isinstance(request, dict) else {}
            refreshing = fields.get("grant_type") == REFRESH_GRANT
            record = RequestRecord(
                root=TOKEN_REFRESH_ROOT if refreshing else TOKEN_EXCHANGE_ROOT, variables={}, status=200, outcome="ok"
            )
            self.requests.append(record)
            status, body = self._refresh(fields) if refreshing else self._exchange(fields)
            record.status, record.outcome = status, "ok" if status == 200 else "denied"
            return status, body

    def _exchange(self, request: dict[str, Any]) -> tuple[int, dict[str, Any]]:
        if request.get("client_id") != self.api_key or request.get("client_secret") != self.api_secret:
            return 401, {"error": "invalid_client", "error_description": "Client authentication failed."}
        if (
            request.get("grant_type") != TOKEN_EXCHANGE_GRANT
            or request.get("subject_token_type") != ID_TOKEN_TYPE
            or request.get("requested_token_type") != OFFLINE_TOKEN_TYPE
        ):
            return 400, {"error": "invalid_request", "error_description": "Unsupported token exchange parameters."}
        try:
            claims = verify_session_token(
                str(request.get("subject_token") or ""), (self.api_secret,), api_key=self.api_key, now=time.time()
            )
        except SignatureError:
            claims = None
        if claims is None or claims.shop != self.shop:
            return 400, {
                "error": "invalid_subject_token",
                "error_description": "Token exchange cannot be performed due to an invalid subject token.",
            }
        if str(request.get("expiring", "0")) == "1":
            return 200, self._issue_pair()
        return 200, {"access_token": self.token, "scope": self.granted_scopes}

    def _refresh(self, request: dict[str, Any]) -> tuple[int, dict[str, Any]]:
        if request.get("client_id") != self.api_key or request.get("client_secret") != self.api_secret:
            return 401, {"error": "invalid_client", "error_description": "Client authentication failed."}
        sent = str(request.get("refresh_token") or "")
        refresh = self._refresh_tokens.get(sent)
        if refresh is None or refresh.retired or refresh.expires <= time.time():
            return 400, {"error": "invalid_grant", "error_description": "The refresh token is invalid or expired."}
        # Using a refresh token retires the one it replaced (Shopify keeps a used one until its replacement is used).
        for earlier in self._refresh_tokens.values():
            if earlier.replacement == sent:
                earlier.retired = True
        pair = self._issue_pair()
        refresh.replacement = pair["refresh_token"]
        return 200, pair

    def answer(self, path: str, token: str | None, raw: bytes) -> tuple[int, dict[str, Any]]:
        if path != f"/admin/api/{self.version}/graphql.json":
            return 404, {"errors": "Not Found"}
        try:
            request = json.loads(raw)
            query, variables = str(request["query"]), dict(request.get("variables") or {})
        except (ValueError, KeyError, TypeError):
            return 400, {"errors": {"query": "Required parameter missing or invalid"}}
        match = ROOT_FIELD.match(query)
        root = match.group(1) if match else ""
        with self._lock:
            record = RequestRecord(root=root, variables=variables, status=200, outcome="ok")
            self.requests.append(record)
            if self._expire_after is not None and self._expire_after <= 0:
                self._expire_after = None
                self._expiring = dict.fromkeys(self._expiring, 0.0)
            if not self._valid_access(token):
                record.status, record.outcome = 401, "denied"
                return 401, {"errors": "[API] Invalid API key or access token (unrecognized login or wrong password)"}
            if self._expire_after is not None:
                self._expire_after -= 1
            if self._faults.fail and self._faults.fail_after <= 0:
                self._faults.fail -= 1
                record.status, record.outcome = self._faults.fail_status, "failed"
                return self._faults.fail_status, {"errors": "Internal Server Error"}
            try:
                data, requested, actual = self._resolve(root, variables)
            except ValueError as exc:
                record.outcome = "error"
                return 200, {"errors": [{"message": str(exc)}]}
            self._refill()
            if requested > MAX_QUERY_COST:
                record.outcome = "error"
                message = f"Query cost is {requested:.0f}, which exceeds the single query max cost limit (1000)."
                return 200, {
                    "errors": [{"message": message, "extensions": {"code": "MAX_COST_EXCEEDED"}}],
                    "extensions": self._cost(requested, None),
                }
            if self._faults.throttle or self._available < requested:
                if self._faults.throttle:
                    self._faults.throttle -= 1
                    self._available = 0.0
                record.outcome = "throttled"
                return 200, {
                    "errors": [
                        {
                            "message": "Throttled",
                            "extensions": {
                                "code": "THROTTLED",
                                "documentation": "https://shopify.dev/api/usage/rate-limits",
                            },
                        }
                    ],
                    "extensions": self._cost(requested, None),
                }
            self._available -= actual
            self.points_spent += actual
            if self._faults.fail:
                self._faults.fail_after -= 1
            return 200, {"data": data, "extensions": self._cost(requested, actual)}

    def _resolve(self, root: str, variables: dict[str, Any]) -> tuple[dict[str, Any], float, float]:
        if root == "orders":
            first = _page_size(variables.get("first"))
            orders = _created_since(self.orders, variables.get("query"))
            connection, page = _connection(orders, first, variables.get("after"))
            refunds = variables.get("refunds")
            if refunds is None:  # the backfill's query: an order's basket
                lines = _page_size(variables.get("lines"))
                connection["nodes"] = [self._order_node(order, lines) for order in page]
                returned = sum(1 + 2 + 2 * min(lines, len(order.product_numbers)) for order in page)
                return {"orders": connection}, 2 + first * (1 + 2 + 2 * lines), 2 + returned
            # the replay's list: per order what says whether anything of it is missing, and its refunds' ids
            refunds = _page_size(refunds)
            connection["nodes"] = [self._listed_node(order, refunds) for order in page]
            returned = sum(1 + min(refunds, len(order.refunds)) for order in page)
            return {"orders": connection}, 2 + first * (1 + refunds), 2 + returned
        if root == "products":
            first = _page_size(variables.get("first"))
            variants = _page_size(variables.get("variants"))
            connection, page = _connection(self.products, first, variables.get("after"))
            connection["nodes"] = [self._product_node(product, variants) for product in page]
            returned = sum(2 + 2 + 2 * min(variants, len(product.variants)) for product in page)
            return {"products": connection}, 2 + first * (2 + 2 + 2 * variants), 2 + returned
        if root == "shop":
            return {"shop": {"id": f"gid://shopify/Shop/{self.shop_id}"}}, 1, 1
        if root == "ordersCount":
            return {"ordersCount": {"count": len(_created_since(self.orders, variables.get("query")))}}, 1, 1
        if root == "productsCount":
            return {"productsCount": {"count": len(self.products)}}, 1, 1
        if root == "bulkOperationRunQuery":
            return {"bulkOperationRunQuery": self._start_bulk(str(variables.get("query") or ""))}, 10, 10
        if root == "node":
            return {"node": self._poll_bulk(variables.get("id"))}, 1, 1
        if root == "order" and variables.get("refunds") is not None and variables.get("lines") is None:
            order = self._find(self.orders, variables.get("id"), "Order")  # the replay's: an order's refund ids
            refunds = _page_size(variables.get("refunds"))
            node = (
                {"id": gid("Order", order.number), "refunds": self._listed_node(order, refunds)["refunds"]}
                if order
                else None
            )
            return {"order": node}, 1 + refunds, 1 + (min(refunds, len(order.refunds)) if order else 0)
        if root == "order" and variables.get("refunds") is not None:  # the replay's: one whole order
            order = self._find(self.orders, variables.get("id"), "Order")
            lines, refunds = _page_size(variables.get("lines")), _page_size(variables.get("refunds"))
            node = self._order_node(order, lines, refunds) if order else None
            returned = 5 + min(refunds, len(order.refunds)) + 2 + 6 * min(lines, len(order.lines)) if order else 0
            return {"order": node}, 5 + refunds + 2 + 6 * lines, 1 + returned
        if root == "order":
            order = self._find(self.orders, variables.get("id"), "Order")
            lines = _page_size(variables.get("lines"))
            nested = self._lines(order, lines, variables.get("after")) if order else None
            returned = len(nested["nodes"]) if nested else 0
            return {"order": {"lineItems": nested} if nested else None}, 1 + 2 + 2 * lines, 3 + 2 * returned
        if root == "refund":
            refund = self._find_refund(variables.get("id"))
            lines = _page_size(variables.get("lines"))
            nested = self._refund_lines(refund, lines, variables.get("after")) if refund else None
            returned = len(nested["nodes"]) if nested else 0
            node = {"id": gid("Refund", refund.number), "createdAt": _stamp(refund.created_at)} if refund else {}
            answer = {"refund": {**node, "refundLineItems": nested} if nested else None}
            return answer, 1 + 2 + 2 * lines, 3 + 2 * returned
        if root == "product":
            product = self._find(self.products, variables.get("id"), "Product")
            variants = _page_size(variables.get("variants"))
            nested = self._variants(product, variants, variables.get("after")) if product else None
            returned = len(nested["nodes"]) if nested else 0
            return {"product": {"variants": nested} if nested else None}, 1 + 2 + 2 * variants, 3 + 2 * returned
        raise ValueError(f"Field '{root}' doesn't exist on type 'QueryRoot'")

    # ------------------------------------------------------------ bulk operations
    def _start_bulk(self, query: str) -> dict[str, Any]:
        match = ROOT_FIELD.match(query)
        root = match.group(1) if match else ""
        if root not in ("orders", "products"):
            return {"bulkOperation": None, "userErrors": [{"field": ["query"], "message": "Invalid bulk query"}]}
        if any(run.polls_left > 0 for run in self._bulk.values()):  # one bulk query at a time per app and shop
            message = "A bulk query operation for this app and shop is already in progress"
            return {"bulkOperation": None, "userErrors": [{"field": None, "message": message}]}
        lines: list[dict[str, Any]] = []
        if root == "orders":
            for order in _created_since(self.orders, query):
                node = self._order_node(order, MAX_PAGE_SIZE)
                children = node.pop("lineItems")["nodes"]
                lines += [node, *({**child, "__parentId": node["id"]} for child in children)]
        else:
            for product in self.products:
                node = self._product_node(product, MAX_PAGE_SIZE)
                children = node.pop("variants")["nodes"]
                lines += [node, *({**child, "__parentId": node["id"]} for child in children)]
        number = len(self._bulk) + 1
        operation_id = gid("BulkOperation", number)
        self._bulk[operation_id] = _BulkRun(number=number, lines=lines, polls_left=self.bulk_polls)
        return {"bulkOperation": {"id": operation_id, "status": "CREATED"}, "userErrors": []}

    def _poll_bulk(self, operation_id: object) -> dict[str, Any] | None:
        run = self._bulk.get(str(operation_id))
        if run is None:
            return None
        if run.polls_left > 0:
            run.polls_left -= 1
            return {"id": operation_id, "status": "RUNNING", "errorCode": None, "objectCount": "0", "url": None}
        url = f"{self.url}/bulk/{run.number}.jsonl" if run.lines else None
        count = str(len(run.lines))
        return {"id": operation_id, "status": "COMPLETED", "errorCode": None, "objectCount": count, "url": url}

    def download(self, path: str) -> tuple[int, str]:
        """A bulk result file (no token: Shopify's result URLs are signed links)."""
        with self._lock:
            self.downloads += 1
            if self._faults.fail and self._faults.fail_after <= 0:
                self._faults.fail -= 1
                return self._faults.fail_status, "Internal Server Error"
            for run in self._bulk.values():
                if path == f"/bulk/{run.number}.jsonl":
                    return 200, "".join(json.dumps(line) + "\n" for line in run.lines)
        return 404, "Not Found"

    @staticmethod
    def _find(items: list[Any], node_id: object, kind: str) -> Any:
        for item in items:
            if gid(kind, item.number) == node_id:
                return item
        return None

    def _lines(self, order: FakeOrder, first: int, after: object) -> dict[str, Any]:
        connection, page = _connection(order.lines, first, after)
        connection["nodes"] = [
            {
                "id": gid("LineItem", line.number),
                "quantity": line.quantity,
                "product": None if line.product is None else {"id": gid("Product", line.product)},
                "customAttributes": [{"key": key, "value": value} for key, value in line.properties],
                "originalUnitPriceSet": {"shopMoney": {"amount": line.price, "currencyCode": order.currency}},
                "discountAllocations": [
                    {"allocatedAmountSet": {"shopMoney": {"amount": amount, "currencyCode": order.currency}}}
                    for amount in line.discounts
                ],
            }
            for line in page
        ]
        return connection

    def _refund_lines(self, refund: FakeRefund, first: int, after: object) -> dict[str, Any]:
        connection, page = _connection(refund.lines, first, after)
        connection["nodes"] = [
            {"lineItem": {"id": gid("LineItem", line)}, "quantity": quantity} for line, quantity in page
        ]
        return connection

    def _find_refund(self, refund_id: object) -> FakeRefund | None:
        for order in self.orders:
            for refund in order.refunds:
                if gid("Refund", refund.number) == refund_id:
                    return refund
        return None

    def _variants(self, product: FakeProduct, first: int, after: object) -> dict[str, Any]:
        connection, page = _connection(product.variants, first, after)
        connection["nodes"] = [
            {
                "price": variant.price,
                "inventoryQuantity": variant.inventory_quantity,
                "inventoryPolicy": variant.policy,
                "inventoryItem": {"tracked": variant.tracked},
            }
            for variant in page
        ]
        return connection

    def _order_node(self, order: FakeOrder, lines: int, refunds: int = MAX_PAGE_SIZE) -> dict[str, Any]:
        return {
            "id": gid("Order", order.number),
            "createdAt": _stamp(order.created_at),
            "updatedAt": _stamp(order.updated),
            "cancelledAt": _stamp(order.cancelled_at) if order.cancelled_at else None,
            "test": order.test,
            "currencyCode": order.currency,
            "customer": {"id": gid("Customer", order.customer)} if order.customer else None,
            "customAttributes": [{"key": key, "value": value} for key, value in order.attributes],
            "refunds": [{"id": gid("Refund", refund.number)} for refund in order.refunds[:refunds]],
            # null, as Shopify answers for an order whose visits it has not attributed (or that had none)
            "customerJourneySummary": (
                {"lastVisit": {"landingPage": order.landing_page}} if order.landing_page else None
            ),
            "lineItems": self._lines(order, lines, None),
        }

    @staticmethod
    def _listed_node(order: FakeOrder, refunds: int) -> dict[str, Any]:
        return {
            "id": gid("Order", order.number),
            "createdAt": _stamp(order.created_at),
            "updatedAt": _stamp(order.updated),
            "cancelledAt": _stamp(order.cancelled_at) if order.cancelled_at else None,
            "refunds": [{"id": gid("Refund", refund.number)} for refund in order.refunds[:refunds]],
        }

    def _product_node(self, product: FakeProduct, variants: int) -> dict[str, Any]:
        return {
            "id": gid("Product", product.number),
            "title": product.title,
            "handle": product.handle,
            "status": product.status,
            "updatedAt": product.updated_at.strftime("%Y-%m-%dT%H:%M:%SZ"),
            "productType": product.product_type,
            "vendor": product.vendor,
            "tags": list(product.tags),
            "isGiftCard": product.gift_card,
            "featuredImage": {"url": product.image} if product.image else None,
            "variants": self._variants(product, variants, None),
        }


def _stamp(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _page_size(value: object) -> int:
    if not isinstance(value, int) or isinstance(value, bool) or not 1 <= value <= MAX_PAGE_SIZE:
        raise ValueError(f"first must be between 1 and {MAX_PAGE_SIZE}, not {value!r}")
    return value


def _created_since(orders: list[FakeOrder], search: object) -> list[FakeOrder]:
    """The orders the search filter selects, in its field's order: `created_at:>=<day>` (the backfill's) or
    `updated_at:>='<time>'` (the replay's, sorted by UPDATED_AT)."""
    updated = _UPDATED_SINCE.search(search) if isinstance(search, str) else None
    if updated is not None:
        since = datetime.fromisoformat(updated.group(1).replace("Z", "+00:00"))
        by_update = sorted(orders, key=lambda order: (order.updated, order.number))
        return [order for order in by_update if order.updated >= since]
    match = _CREATED_SINCE.search(search) if isinstance(search, str) else None
    ordered = sorted(orders, key=lambda order: (order.created_at, order.number))
    if match is None:
        return ordered
    since = datetime.fromisoformat(match.group(1)).replace(tzinfo=UTC)
    return [order for order in ordered if order.created_at >= since]


def seeded_catalog(
    *, orders: int, products: int, seed: int = 1, now: datetime | None = None
) -> tuple[list[FakeOrder], list[FakeProduct]]:
    """A deterministic shop: products with one to three variants (some drafts, archived, sold out, untracked or
    overselling; one with 130 variants), and orders of one to five lines over the last 200 days, a few with a
    custom line or marked test, one of yesterday with 120 lines."""
    rng = random.Random(seed)  # noqa: S311 - test data, not security
    moment = now or datetime.now(UTC)
    catalog: list[FakeProduct] = []
    for index in range(products):
        number = 1000 + index
        count = 130 if index == 7 else rng.randint(1, 3)
        variants = [
            FakeVariant(
                price=f"{rng.lognormvariate(3.4, 0.6):.2f}",
                inventory_quantity=rng.choice([0, 0, 3, 12, 40]),
                tracked=rng.random() > 0.1,
                policy="CONTINUE" if rng.random() < 0.1 else "DENY",
            )
            for _ in range(count)
        ]
        catalog.append(
            FakeProduct(
                number=number,
                title=f"Product {number}",
                handle=f"product-{number}",
                status=rng.choices(["ACTIVE", "DRAFT", "ARCHIVED"], weights=[8, 1, 1])[0],
                updated_at=moment - timedelta(days=rng.randint(0, 300)),
                variants=variants,
                image=None if index % 9 == 4 else f"https://cdn.example.com/p/{number}.jpg",
                # what merchants' rules and catalog neighbours compare (no draw: the catalog's other figures stay)
                product_type=f"Type {index % 5}",
                vendor=f"Vendor {index % 3}",
                tags=[f"Tag {index % 4}", "All"],
            )
        )
    history: list[FakeOrder] = []
    numbers = [product.number for product in catalog] or [1000]
    handles = {product.number: product.handle for product in catalog}
    for index in range(orders):
        size = 120 if index == 3 else rng.randint(1, 5)
        lines: list[int | None] = [rng.choice(numbers) for _ in range(size)]
        if index % 17 == 5:
            lines.append(None)
        history.append(
            FakeOrder(
                number=5000 + index,
                created_at=moment - timedelta(days=1 if index == 3 else rng.uniform(0, 200)),
                product_numbers=lines,
                test=index % 23 == 11,
                # every third order's buyer landed on its first product's page (no draw: the history stays)
                landing_page=(
                    f"https://shop.example/products/{handles[lines[0]]}?utm_source=ads"
                    if index % 3 == 0 and lines[0] in handles
                    else None
                ),
            )
        )
    return history, catalog
