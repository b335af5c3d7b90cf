"""Who is calling: the storefront through Shopify's signed app proxy, or the merchant with a session token."""

from __future__ import annotations

import re
import time
from collections.abc import Mapping

from reclift import config
from reclift.http import BadRequest
from reclift.recids import RecIds
from reclift.signatures import AppProxyRequest, SessionToken, SignatureError, verify_app_proxy, verify_session_token

# Shopify's customer ids are positive integers; the app proxy sends an empty value for a guest.
_CUSTOMER_ID = re.compile(r"[1-9][0-9]{0,19}")


def app_proxy_caller(raw_query_string: str) -> AppProxyRequest:
    """SignatureError (→ 401) unless the query carries Shopify's app-proxy signature and a fresh timestamp;
    BadRequest (→ 400) when the signed `logged_in_customer_id` is not a customer id, since it becomes a profile key."""
    caller = verify_app_proxy(
        raw_query_string,
        config.api_secrets(),
        now=time.time(),
        max_skew_seconds=config.app_proxy_max_skew_seconds(),
    )
    customer_id = caller.logged_in_customer_id
    if customer_id is not None and _CUSTOMER_ID.fullmatch(customer_id) is None:
        raise BadRequest("logged_in_customer_id", "expected a numeric Shopify customer id")
    return caller


def server_rec_ids() -> RecIds:
    """The keys of the rec ids this deployment issues: derived from the app secret (and the previous one during a
    rotation), so they rotate with it."""
    return RecIds.of_secrets(config.api_secrets())


def bearer_token(headers: Mapping[str, str]) -> str:
    """The token of `Authorization: Bearer <token>` (not yet verified); SignatureError (→ 401) when there is none."""
    authorization = next((value for key, value in headers.items() if key.lower() == "authorization"), "")
    scheme, _, token = authorization.strip().partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise SignatureError("missing bearer session token")
    return token.strip()


def session_caller(headers: Mapping[str, str]) -> SessionToken:
    """SignatureError (→ 401) unless `Authorization: Bearer <session token>` is valid for this app."""
    return verify_session_token(
        bearer_token(headers), config.api_secrets(), api_key=config.required("SHOPIFY_API_KEY"), now=time.time()
    )
