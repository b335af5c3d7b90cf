"""Shopify request authentication: webhook HMACs, app proxy signatures and App Bridge session tokens.

Pure functions over bytes and strings (no AWS, no I/O). Each verifier takes the app secrets in order of preference
(the current one, then the one before a rotation) and raises `SignatureError` with a short reason that is safe to log
and to return: it never contains a secret, a signature or a token.

Every comparison of a signature is made with `hmac.compare_digest` on the canonical text Shopify sends, so a signature
that differs only in unused base64 padding bits is still rejected.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
import math
import re
import uuid
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any
from urllib.parse import parse_qsl, urlencode

from reclift.ids import is_shop_domain

_STANDARD_BASE64 = re.compile(r"(?:[A-Za-z0-9+/]{4})*(?:[A-Za-z0-9+/]{2}==|[A-Za-z0-9+/]{3}=)?")
_URLSAFE_BASE64 = re.compile(r"[A-Za-z0-9_-]*")
_HEX_SHA256 = re.compile(r"[0-9a-f]{64}")
_TIMESTAMP = re.compile(r"[0-9]{1,15}")
_HTTPS_URL = re.compile(r"https://(?P<host>[^/?#]+)(?P<rest>[/?#].*)?", re.DOTALL)

# Shopify's app proxy adds these itself; everything else in the query belongs to the storefront request.
_APP_PROXY_RESERVED = frozenset({"signature", "shop", "logged_in_customer_id", "path_prefix", "timestamp"})
_MAX_TOKEN_LENGTH = 8192


BAD_SIGNATURE = "bad signature"


class SignatureError(Exception):
    """A request's signature, token or signed parameters are missing, invalid or stale."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason

    @property
    def mismatched(self) -> bool:
        """A well-formed signature that no configured secret produces. Every request Shopify signs gets this when
        the secret in configuration is not the one it signs with (a rotation without the previous secret, another
        app's configuration pointing here); so does a forgery. A missing or malformed signature is not Shopify's."""
        return self.reason == BAD_SIGNATURE


def _usable_secrets(secrets: Sequence[str]) -> tuple[str, ...]:
    usable = tuple(secret for secret in secrets if secret)
    if not usable:
        raise ValueError("at least one non-empty app secret is required")
    return usable


def _hmac_sha256(secret: str, message: bytes) -> bytes:
    return hmac.new(secret.encode("utf-8"), message, hashlib.sha256).digest()


def _matches_any(provided: bytes, candidates: Iterable[bytes]) -> bool:
    """Constant-time comparison against every candidate, without stopping at the first match."""
    matched = False
    for candidate in candidates:
        matched |= hmac.compare_digest(provided, candidate)
    return matched


# --- Webhooks ---------------------------------------------------------------------------------------------------


def sign_webhook(raw_body: bytes, secret: str) -> str:
    """The `X-Shopify-Hmac-Sha256` value for a body: base64 of its HMAC-SHA256 with the app secret."""
    return base64.b64encode(_hmac_sha256(secret, raw_body)).decode("ascii")


def verify_webhook(raw_body: bytes, header_value: str | None, secrets: Sequence[str]) -> None:
    """Check a webhook's `X-Shopify-Hmac-Sha256` header against the exact bytes received.

    Finding the header (its name is case-insensitive) is the caller's job; pass None when it is absent.
    """
    usable = _usable_secrets(secrets)
    if not header_value:
        raise SignatureError("missing signature")
    if _STANDARD_BASE64.fullmatch(header_value) is None:
        raise SignatureError("malformed signature")
    expected = [sign_webhook(raw_body, secret).encode("ascii") for secret in usable]
    if not _matches_any(header_value.encode("ascii"), expected):
        raise SignatureError(BAD_SIGNATURE)


# --- App proxy --------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class AppProxyRequest:
    """What Shopify's app proxy vouches for, once its signature has been checked."""

    shop: str
    logged_in_customer_id: str | None
    path_prefix: str | None
    timestamp: int
    params: Mapping[str, str] = field(default_factory=dict)


def app_proxy_params(raw_query_string: str) -> dict[str, list[str]]:
    """A raw query string, URL-decoded, with the values of each key in the order they came."""
    grouped: dict[str, list[str]] = {}
    for key, value in parse_qsl(raw_query_string, keep_blank_values=True):
        grouped.setdefault(key, []).append(value)
    return grouped


def _as_values(value: str | Sequence[str]) -> list[str]:
    return [value] if isinstance(value, str) else list(value)


def sign_app_proxy(params: Mapping[str, str | Sequence[str]], secret: str) -> str:
    """Shopify's app proxy signature: hex HMAC-SHA256 of the sorted `key=value` pairs, concatenated.

    Values are the decoded ones; a key's repeated values are joined with commas; `signature` itself is left out.
    """
    pairs = sorted(f"{key}={','.join(_as_values(value))}" for key, value in params.items() if key != "signature")
    return hmac.new(secret.encode("utf-8"), "".join(pairs).encode("utf-8"), hashlib.sha256).hexdigest()


def signed_app_proxy_query(params: Mapping[str, str | Sequence[str]], secret: str) -> str:
    """A URL-encoded query string for `params` with its `signature` appended, as Shopify would forward it."""
    pairs = [(key, value) for key, values in params.items() if key != "signature" for value in _as_values(values)]
    pairs.append(("signature", sign_app_proxy(params, secret)))
    return urlencode(pairs)


def verify_app_proxy(
    raw_query_string: str, secrets: Sequence[str], *, now: float, max_skew_seconds: int
) -> AppProxyRequest:
    """Check an app proxy request's `signature`, then its `shop` and `timestamp` (0 skew switches that check off)."""
    usable = _usable_secrets(secrets)
    if max_skew_seconds < 0:
        raise ValueError("max_skew_seconds must be 0 (off) or more")
    try:
        grouped = app_proxy_params(raw_query_string)
    except ValueError as exc:
        raise SignatureError("malformed query") from exc

    provided = grouped.get("signature", [])
    if not provided or not provided[0]:
        raise SignatureError("missing signature")
    if len(provided) != 1 or _HEX_SHA256.fullmatch(provided[0]) is None:
        raise SignatureError("malformed signature")
    expected = [sign_app_proxy(grouped, secret).encode("ascii") for secret in usable]
    if not _matches_any(provided[0].encode("ascii"), expected):
        raise SignatureError(BAD_SIGNATURE)

    joined = {key: ",".join(values) for key, values in grouped.items() if key != "signature"}
    shop = joined.get("shop", "")
    if not is_shop_domain(shop):
        raise SignatureError("missing or invalid shop")
    raw_timestamp = joined.get("timestamp", "")
    if _TIMESTAMP.fullmatch(raw_timestamp) is None:
        raise SignatureError("missing or invalid timestamp")
    timestamp = int(raw_timestamp)
    if max_skew_seconds and abs(now - timestamp) > max_skew_seconds:
        raise SignatureError("stale timestamp")

    return AppProxyRequest(
        shop=shop.lower(),
        logged_in_customer_id=joined.get("logged_in_customer_id") or None,
        path_prefix=joined.get("path_prefix"),
        timestamp=timestamp,
        params=MappingProxyType({key: value for key, value in joined.items() if key not in _APP_PROXY_RESERVED}),
    )


# --- Session tokens ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class SessionToken:
    """The verified claims of a Shopify App Bridge session token."""

    shop: str
    user_id: str | None
    session_id: str | None
    expires_at: int
    claims: Mapping[str, Any] = field(default_factory=dict)


def _b64url_encode(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def _b64url_decode(segment: str) -> bytes:
    if _URLSAFE_BASE64.fullmatch(segment) is None:
        raise SignatureError("malformed")
    try:
        return base64.urlsafe_b64decode(segment + "=" * (-len(segment) % 4))
    except (binascii.Error, ValueError) as exc:
        raise SignatureError("malformed") from exc


def _json_object(data: bytes) -> dict[str, Any]:
    try:
        value = json.loads(data)
    except (ValueError, RecursionError) as exc:
        raise SignatureError("malformed") from exc
    if not isinstance(value, dict):
        raise SignatureError("malformed")
    return value


def _hs256_signature(signing_input: str, secret: str) -> str:
    return _b64url_encode(_hmac_sha256(secret, signing_input.encode("ascii")))


def encode_hs256_jwt(claims: Mapping[str, Any], secret: str) -> str:
    """A compact HS256 JWT for `claims`."""
    header = _b64url_encode(json.dumps({"alg": "HS256", "typ": "JWT"}, separators=(",", ":")).encode("utf-8"))
    payload = _b64url_encode(json.dumps(dict(claims), separators=(",", ":")).encode("utf-8"))
    signing_input = f"{header}.{payload}"
    return f"{signing_input}.{_hs256_signature(signing_input, secret)}"


def _numeric_claim(claims: Mapping[str, Any], name: str) -> float | None:
    value = claims.get(name)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise SignatureError(f"malformed {name}")
    return value


def _https_host(value: Any) -> str | None:
    if not isinstance(value, str):
        return None
    match = _HTTPS_URL.fullmatch(value)
    return match.group("host").lower() if match else None


def _shop_from_dest(dest: Any) -> str:
    match = _HTTPS_URL.fullmatch(dest) if isinstance(dest, str) else None
    if match is None or match.group("rest") not in (None, "/") or not is_shop_domain(match.group("host")):
        raise SignatureError("bad destination")
    return match.group("host").lower()


def _audience_matches(aud: Any, api_key: str) -> bool:
    if isinstance(aud, str):
        return aud == api_key
    return isinstance(aud, list) and api_key in aud


def _optional_text(value: Any) -> str | None:
    if value is None or value == "":
        return None
    if isinstance(value, str):
        return value
    if isinstance(value, int) and not isinstance(value, bool):
        return str(value)
    raise SignatureError("malformed")


# App Bridge's session tokens live one minute; a token claiming longer was not issued by Shopify for this use.
SESSION_TOKEN_LIFETIME_SECONDS = 60


def verify_session_token(
    token: str, secrets: Sequence[str], *, api_key: str, now: float, leeway_seconds: int = 5
) -> SessionToken:
    """Check an App Bridge session token (the bearer token of the embedded admin) and return its claims."""
    usable = _usable_secrets(secrets)
    if not token or len(token) > _MAX_TOKEN_LENGTH:
        raise SignatureError("malformed")
    parts = token.split(".")
    if len(parts) != 3:
        raise SignatureError("malformed")
    header_segment, payload_segment, signature_segment = parts
    header = _json_object(_b64url_decode(header_segment))
    payload_bytes = _b64url_decode(payload_segment)
    _b64url_decode(signature_segment)
    if header.get("alg") != "HS256":
        raise SignatureError("unsupported algorithm")

    signing_input = f"{header_segment}.{payload_segment}"
    expected = [_hs256_signature(signing_input, secret).encode("ascii") for secret in usable]
    if not _matches_any(signature_segment.encode("ascii"), expected):
        raise SignatureError(BAD_SIGNATURE)

    claims = _json_object(payload_bytes)
    expires_at = _numeric_claim(claims, "exp")
    if expires_at is None:
        raise SignatureError("malformed exp")
    if expires_at <= now - leeway_seconds:
        raise SignatureError("expired")
    not_before = _numeric_claim(claims, "nbf")
    if not_before is not None and not_before > now + leeway_seconds:
        raise SignatureError("not yet valid")
    if not _audience_matches(claims.get("aud"), api_key):
        raise SignatureError("wrong audience")
    issued_at = _numeric_claim(claims, "iat")
    lifetime = expires_at - (issued_at if issued_at is not None else now)
    if lifetime > SESSION_TOKEN_LIFETIME_SECONDS + leeway_seconds:
        raise SignatureError("lifetime longer than a session token's")
    shop = _shop_from_dest(claims.get("dest"))
    if "iss" not in claims:
        raise SignatureError("missing issuer")
    if _https_host(claims["iss"]) != shop:
        raise SignatureError("wrong issuer")

    return SessionToken(
        shop=shop,
        user_id=_optional_text(claims.get("sub")),
        session_id=_optional_text(claims.get("sid")),
        expires_at=int(expires_at),
        claims=MappingProxyType(claims),
    )


def mint_session_token(
    shop: str,
    secret: str,
    *,
    api_key: str,
    now: float,
    ttl_seconds: int = 60,
    user_id: str | None = "1",
    session_id: str | None = None,
    extra_claims: Mapping[str, Any] | None = None,
) -> str:
    """A session token shaped like the ones App Bridge issues, for tests and local development."""
    if not is_shop_domain(shop):
        raise ValueError(f"not a shop domain: {shop!r}")
    issued_at = int(now)
    claims: dict[str, Any] = {
        "iss": f"https://{shop}/admin",
        "dest": f"https://{shop}",
        "aud": api_key,
        "exp": issued_at + ttl_seconds,
        "nbf": issued_at,
        "iat": issued_at,
        "jti": str(uuid.uuid4()),
        "sid": session_id if session_id is not None else uuid.uuid4().hex,
    }
    if user_id is not None:
        claims["sub"] = user_id
    claims.update(extra_claims or {})
    return encode_hs256_jwt(claims, secret)
