"""Who is calling: the storefront through Shopify's signed app proxy, or the merchant with a session token."""

from __future__ import annotations

import time
from collections.abc import Mapping

from reclift import config
from reclift.signatures import AppProxyRequest, SessionToken, SignatureError, verify_app_proxy, verify_session_token


def app_proxy_caller(raw_query_string: str) -> AppProxyRequest:
    """SignatureError (→ 401) unless the query carries Shopify's app-proxy signature and a fresh timestamp."""
    return verify_app_proxy(
        raw_query_string,
        config.api_secrets(),
        now=time.time(),
        max_skew_seconds=config.app_proxy_max_skew_seconds(),
    )


def session_caller(headers: Mapping[str, str]) -> SessionToken:
    """SignatureError (→ 401) unless `Authorization: Bearer <session token>` is valid for this app."""
    authorization = next((value for key, value in headers.items() if key.lower() == "authorization"), "")
    scheme, _, token = authorization.strip().partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise SignatureError("missing bearer session token")
    return verify_session_token(
        token.strip(), config.api_secrets(), api_key=config.required("SHOPIFY_API_KEY"), now=time.time()
    )
