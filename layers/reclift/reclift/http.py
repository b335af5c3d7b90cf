"""What the HTTP handlers share: the exact request body, JSON errors that name the problem."""

from __future__ import annotations

import base64
import binascii
import json
from typing import Any

from aws_lambda_powertools.event_handler import Response, content_types


class BadRequest(ValueError):
    """A request the caller must fix; `field` names where the problem is."""

    def __init__(self, field: str, message: str, status: int = 400) -> None:
        super().__init__(f"{field}: {message}")
        self.field = field
        self.message = message
        self.status = status


def raw_body(event: dict[str, Any]) -> bytes:
    """The body exactly as the client sent it (API Gateway base64-encodes what it does not treat as text)."""
    body = event.get("body") or ""
    if event.get("isBase64Encoded"):
        try:
            return base64.b64decode(body, validate=True)
        except (binascii.Error, ValueError) as exc:
            raise BadRequest("body", "the body is marked base64 but is not") from exc
    return body.encode("utf-8")


# The storefront's largest valid body (50 events of 20 products each, with their response's fields) is far below
# this; anything larger is refused before it is parsed.
MAX_JSON_BODY_BYTES = 256 * 1024


def json_body(event: dict[str, Any], *, max_bytes: int = MAX_JSON_BODY_BYTES) -> Any:
    """The request's JSON body; BadRequest with 400 when it is missing or not JSON, 413 when it is too large."""
    data = raw_body(event)
    if not data:
        raise BadRequest("body", "a JSON body is required")
    if len(data) > max_bytes:
        raise BadRequest("body", f"the body has {len(data)} bytes; at most {max_bytes} are accepted", status=413)
    try:
        return json.loads(data)
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise BadRequest("body", f"the body is not valid JSON ({exc.__class__.__name__})") from exc
    except (RecursionError, ValueError) as exc:  # nested too deep, or a number too long to convert
        raise BadRequest("body", "the body is JSON nested too deep or with a number too long") from exc


def json_response(status: int, payload: Any, headers: dict[str, str] | None = None) -> dict[str, Any]:
    """A payload-format-2.0 response for handlers that do not use a resolver."""
    return {
        "statusCode": status,
        "headers": {"Content-Type": content_types.APPLICATION_JSON, **(headers or {})},
        "body": json.dumps(payload, separators=(",", ":")),
    }


def error_response(status: int, message: str, field: str | None = None, **headers: str) -> Response[str]:
    payload: dict[str, Any] = {"error": message}
    if field:
        payload["field"] = field
    return Response(
        status_code=status,
        content_type=content_types.APPLICATION_JSON,
        body=json.dumps(payload),
        headers=headers or None,
    )
