"""The HTTP side: the template's HttpApi routes, served like API Gateway (payload format 2.0), plus `/_local/` control.

Functions get the event API Gateway would send: raw path and query string exactly as received, lower-cased headers
with repeated ones comma-joined, cookies split out, a base64 body for anything that is not text.
"""

from __future__ import annotations

import base64
import json
import re
import secrets
import socket
import threading
import time
from collections.abc import Iterable
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Protocol
from urllib.parse import unquote

from .template import ACCOUNT_ID, LOCAL_API_ID, HttpRoute
from .workers import Outcome

MAX_REQUEST_BYTES = 10 * 1024 * 1024  # API Gateway's payload limit for HTTP APIs
CONTROL_PREFIX = "/_local/"
REQUEST_TOO_LARGE = {"message": "Request Entity Too Large"}


def _cross_origin_refusal(header_items: list[tuple[str, str]]) -> str | None:
    """Why a request to the control routes comes from a web page rather than from this machine's tools, if it does.

    The control routes run functions and re-drive queues. A page open in the developer's browser can send a "simple"
    cross-origin POST (text/plain, no preflight) to 127.0.0.1; browsers mark such requests with `Origin` and
    `Sec-Fetch-Site`, which the project's own client (and curl) never send unless asked to.
    """
    headers = {name.lower(): value.strip() for name, value in header_items}
    fetch_site = headers.get("sec-fetch-site", "").lower()
    if fetch_site and fetch_site not in {"same-origin", "none"}:
        return f"the control routes refuse requests from other sites (Sec-Fetch-Site: {fetch_site})"
    origin = headers.get("origin")
    if origin is not None and origin.lower() != f"http://{headers.get('host', '').lower()}":
        return "the control routes refuse requests from other origins"
    return None


_MONTHS = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")
_TEXT_TYPES = {"application/json", "application/xml", "application/x-www-form-urlencoded", "application/javascript"}


class ControlPlane(Protocol):
    """What the gateway needs from the stack."""

    def function_names(self) -> list[str]: ...

    def invoke(self, logical_id: str, event: Any) -> Outcome: ...

    def scheduled_event(self, logical_id: str) -> Any: ...

    def status(self) -> dict[str, Any]: ...

    def redrive(self) -> dict[str, Any]: ...


# ------------------------------------------------------------------------------------------------------------ routes


@dataclass(frozen=True)
class CompiledRoute:
    route: HttpRoute
    pattern: re.Pattern[str]
    params: tuple[str, ...]
    sort_key: tuple[int, int, int, int]


def compile_routes(routes: Iterable[HttpRoute]) -> list[CompiledRoute]:
    compiled: list[CompiledRoute] = []
    for route in routes:
        if route.path == "$default":
            compiled.append(CompiledRoute(route, re.compile(r".*"), (), (1, 1, 0, 1)))
            continue
        parts: list[str] = []
        params: list[str] = []
        greedy = 0
        literals = 0
        for segment in route.path.strip("/").split("/"):
            match = re.fullmatch(r"\{([^}+]+)(\+?)\}", segment)
            if match is None:
                parts.append(re.escape(segment))
                literals += 1
            elif match.group(2):
                parts.append("(.+)")  # a greedy variable spans the rest of the path, slashes included
                params.append(match.group(1))
                greedy = 1
            else:
                parts.append("([^/]+)")
                params.append(match.group(1))
        pattern = re.compile("/" + "/".join(parts) if parts != [""] else "/")
        # API Gateway picks the most specific route: exact paths before variables, greedy variables last,
        # an explicit method before ANY, and $default only when nothing else matches.
        key = (0, greedy, -literals if params else -1000, 1 if route.method == "ANY" else 0)
        compiled.append(CompiledRoute(route, pattern, tuple(params), key))
    compiled.sort(key=lambda c: c.sort_key)
    return compiled


def match_route(routes: list[CompiledRoute], method: str, raw_path: str) -> tuple[HttpRoute, dict[str, str]] | None:
    for candidate in routes:
        if candidate.route.method not in {"ANY", method}:
            continue
        match = candidate.pattern.fullmatch(raw_path)
        if match is not None:
            values = {name: unquote(value) for name, value in zip(candidate.params, match.groups(), strict=True)}
            return candidate.route, values
    return None


# ------------------------------------------------------------------------------------------------------------ events


def is_text(content_type: str | None) -> bool:
    if not content_type:
        return False
    media = content_type.split(";", 1)[0].strip().lower()
    return media.startswith("text/") or media in _TEXT_TYPES or media.endswith(("+json", "+xml"))


def api_request_id() -> str:
    # API Gateway's request ids look like "JKJaXmPLvHcESHA=".
    return base64.b64encode(secrets.token_bytes(10)).decode()


def clf_time(epoch: float) -> str:
    t = time.gmtime(epoch)
    return f"{t.tm_mday:02d}/{_MONTHS[t.tm_mon - 1]}/{t.tm_year}:{t.tm_hour:02d}:{t.tm_min:02d}:{t.tm_sec:02d} +0000"


def build_http_event(
    *,
    route: HttpRoute,
    method: str,
    target: str,
    header_items: list[tuple[str, str]],
    body: bytes,
    source_ip: str,
    path_parameters: dict[str, str],
    request_id: str,
    now: float | None = None,
) -> dict[str, Any]:
    """An API Gateway HTTP API payload format 2.0 event for one request."""
    now = time.time() if now is None else now
    raw_path, _, raw_query = target.partition("?")
    headers: dict[str, str] = {}
    cookies: list[str] = []
    for name, value in header_items:
        key = name.lower()
        if key == "cookie":
            cookies.extend(c.strip() for c in value.split(";") if c.strip())
            continue
        headers[key] = f"{headers[key]},{value}" if key in headers else value
    headers.setdefault("x-forwarded-for", source_ip)
    headers.setdefault("x-forwarded-proto", "http")
    query: dict[str, str] = {}
    for pair in raw_query.split("&"):
        if not pair:
            continue
        key, _, value = pair.partition("=")
        key, value = unquote(key), unquote(value)
        query[key] = f"{query[key]},{value}" if key in query else value
    host = headers.get("host", "127.0.0.1")
    event: dict[str, Any] = {
        "version": "2.0",
        "routeKey": route.route_key,
        "rawPath": raw_path,
        "rawQueryString": raw_query,
    }
    if cookies:
        event["cookies"] = cookies
    event["headers"] = headers
    if query:
        event["queryStringParameters"] = query
    event["requestContext"] = {
        "accountId": ACCOUNT_ID,
        "apiId": LOCAL_API_ID,
        "domainName": host,
        "domainPrefix": host.split(".", 1)[0],
        "http": {
            "method": method,
            "path": raw_path,
            "protocol": "HTTP/1.1",
            "sourceIp": source_ip,
            "userAgent": headers.get("user-agent", ""),
        },
        "requestId": request_id,
        "routeKey": route.route_key,
        "stage": "$default",
        "time": clf_time(now),
        "timeEpoch": int(now * 1000),
    }
    if path_parameters:
        event["pathParameters"] = path_parameters
    encoded = False
    if body:
        text: str | None = None
        if is_text(headers.get("content-type")):
            try:
                text = body.decode("utf-8")
            except UnicodeDecodeError:
                text = None
        encoded = text is None
        event["body"] = base64.b64encode(body).decode() if text is None else text
    event["isBase64Encoded"] = encoded
    return event


@dataclass
class HttpResponse:
    status: int
    headers: list[tuple[str, str]]
    body: bytes


def json_response(status: int, payload: Any) -> HttpResponse:
    return HttpResponse(status, [("content-type", "application/json")], json.dumps(payload).encode())


NOT_FOUND = {"message": "Not Found"}
INTERNAL_ERROR = {"message": "Internal Server Error"}


def map_result(result: Any) -> HttpResponse:
    """Turn a function's result into the HTTP response, following API Gateway's format 2.0 rules."""
    if not (isinstance(result, dict) and "statusCode" in result):
        # Any other valid JSON is the body of a 200 application/json response.
        return HttpResponse(200, [("content-type", "application/json")], json.dumps(result).encode())
    try:
        status = int(result["statusCode"])
        headers = [(str(k).lower(), _header_value(v)) for k, v in (result.get("headers") or {}).items()]
        for name, values in (result.get("multiValueHeaders") or {}).items():
            headers.append((str(name).lower(), ",".join(str(v) for v in values)))
        headers.extend(("set-cookie", str(cookie)) for cookie in result.get("cookies") or [])
        raw_body = result.get("body")
        body_text = "" if raw_body is None else raw_body if isinstance(raw_body, str) else json.dumps(raw_body)
        body = base64.b64decode(body_text) if result.get("isBase64Encoded") else body_text.encode()
    except (TypeError, ValueError, AttributeError):
        return json_response(500, INTERNAL_ERROR)
    if not 100 <= status <= 599:
        return json_response(500, INTERNAL_ERROR)
    return HttpResponse(status, headers, body)


def _header_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


# ------------------------------------------------------------------------------------------------------------ server


class Gateway:
    def __init__(self, routes: Iterable[HttpRoute], control: ControlPlane, port: int) -> None:
        self.routes = compile_routes(routes)
        self.control = control
        self._server = ThreadingHTTPServer(("127.0.0.1", port), _make_handler(self))
        self._server.daemon_threads = True
        self._thread: threading.Thread | None = None

    @property
    def port(self) -> int:
        return int(self._server.server_address[1])

    def start(self) -> None:
        self._thread = threading.Thread(target=self._server.serve_forever, kwargs={"poll_interval": 0.2}, daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()
        if self._thread is not None:
            self._thread.join()

    # ------------------------------------------------------------------------------------------------ dispatching

    def handle(
        self, method: str, target: str, header_items: list[tuple[str, str]], body: bytes, source_ip: str
    ) -> HttpResponse:
        raw_path = target.partition("?")[0]
        if raw_path.startswith(CONTROL_PREFIX):
            refusal = _cross_origin_refusal(header_items)
            if refusal is not None:
                return json_response(403, {"message": refusal})
            return self._control(method, raw_path[len(CONTROL_PREFIX) :], body)
        matched = match_route(self.routes, method, raw_path)
        if matched is None:
            return json_response(404, NOT_FOUND)
        route, path_parameters = matched
        request_id = api_request_id()
        event = build_http_event(
            route=route,
            method=method,
            target=target,
            header_items=header_items,
            body=body,
            source_ip=source_ip,
            path_parameters=path_parameters,
            request_id=request_id,
        )
        outcome = self.control.invoke(route.function, event)
        if outcome.ok:
            response = map_result(outcome.result)
        elif (outcome.error or {}).get("errorType") == "RequestEntityTooLargeException":
            # A body within API Gateway's 10 MB but over Lambda's 6 MB invocation payload: the client's to fix.
            response = json_response(413, REQUEST_TOO_LARGE)
        else:
            response = json_response(500, INTERNAL_ERROR)
        response.headers.append(("apigw-requestid", request_id))
        return response

    def _control(self, method: str, path: str, body: bytes) -> HttpResponse:
        parts = path.strip("/").split("/")
        if parts == ["health"] and method in {"GET", "HEAD"}:
            return json_response(200, {"status": "ok"})
        if parts == ["status"] and method == "GET":
            return json_response(200, self.control.status())
        if parts == ["redrive"] and method == "POST":
            return json_response(200, self.control.redrive())
        if len(parts) == 2 and parts[0] in {"invoke", "schedule"} and method == "POST":
            name = parts[1]
            if name not in self.control.function_names():
                return json_response(
                    404, {"message": f"no function {name}", "functions": self.control.function_names()}
                )
            if parts[0] == "schedule":
                event = self.control.scheduled_event(name)
                if event is None:
                    return json_response(400, {"message": f"{name} has no Schedule event"})
            else:
                try:
                    event = json.loads(body) if body.strip() else {}
                except ValueError as exc:
                    return json_response(400, {"message": f"the event is not JSON: {exc}"})
            outcome = self.control.invoke(name, event)
            payload: dict[str, Any] = {"requestId": outcome.request_id, "durationMs": round(outcome.duration_ms, 2)}
            if outcome.ok:
                payload["result"] = outcome.result
            else:
                payload["error"] = outcome.error
            if parts[0] == "schedule":
                payload["event"] = event
            return json_response(200 if outcome.ok else 500, payload)
        return json_response(404, NOT_FOUND)


def _make_handler(gateway: Gateway) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"  # keep-alive, as clients of API Gateway get
        server_version = "reclift-local"
        sys_version = ""

        def setup(self) -> None:
            super().setup()
            # Headers and body leave in separate writes: without this, Nagle's algorithm and the client's delayed
            # ACK add about 40 ms to every keep-alive request.
            self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

        def log_message(self, format: str, *args: Any) -> None:
            pass  # functions log their own requests; an access log would drown them

        def _read_body(self) -> bytes | None:
            if "chunked" in (self.headers.get("Transfer-Encoding") or "").lower():
                chunks: list[bytes] = []
                total = 0
                while True:
                    size = int(self.rfile.readline().split(b";", 1)[0].strip() or b"0", 16)
                    if size == 0:
                        while self.rfile.readline() not in {b"\r\n", b"\n", b""}:
                            pass
                        return b"".join(chunks)
                    total += size
                    if total > MAX_REQUEST_BYTES:
                        return None
                    chunks.append(self.rfile.read(size))
                    self.rfile.readline()
            length = int(self.headers.get("Content-Length") or 0)
            if length > MAX_REQUEST_BYTES:
                return None
            return self.rfile.read(length) if length else b""

        def _serve(self) -> None:
            body = self._read_body()
            if body is None:
                response = json_response(413, REQUEST_TOO_LARGE)
                self.close_connection = True
            else:
                try:
                    response = gateway.handle(
                        self.command, self.path, list(self.headers.items()), body, self.client_address[0]
                    )
                except Exception as exc:  # a bug in the gateway must look like API Gateway's 500, not a reset
                    response = json_response(500, {"message": "Internal Server Error", "localError": repr(exc)})
            self.send_response(response.status)
            for name, value in response.headers:
                if name not in {"content-length", "connection", "transfer-encoding"}:
                    self.send_header(name, value)
            self.send_header("Content-Length", str(len(response.body)))
            self.end_headers()
            if self.command != "HEAD":
                self.wfile.write(response.body)

        do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = do_HEAD = do_OPTIONS = _serve

    return Handler
