"""Runtime configuration, read from the environment at call time (never at import) and validated once.

Secrets: a shop's offline Admin API access token is the SSM SecureString `{SHOPIFY_ADMIN_TOKEN_PARAM_PREFIX}{shop}`.
`SHOPIFY_API_SECRET` / `SHOPIFY_API_SECRET_PREVIOUS` when set in the environment (tests, a developer's
shell); otherwise the SSM Parameter Store names in `SHOPIFY_API_SECRET_PARAM` / `SHOPIFY_API_SECRET_PREVIOUS_PARAM`,
read as SecureStrings through Powertools Parameters and cached for five minutes.
"""

from __future__ import annotations

import os
from functools import cache

from pydantic import BaseModel, Field, ValidationError

SECRET_CACHE_SECONDS = 300


class ConfigurationError(RuntimeError):
    """The function's environment is missing or has an invalid setting."""


class Tables(BaseModel):
    events: str = Field(min_length=1)
    counters: str = Field(min_length=1)
    orders: str = Field(min_length=1)
    profiles: str = Field(min_length=1)
    shops: str = Field(min_length=1)
    learning: str = Field(min_length=1)
    catalog: str = Field(min_length=1)


@cache
def tables() -> Tables:
    try:
        return Tables(
            events=os.environ.get("EVENTS_TABLE", ""),
            counters=os.environ.get("COUNTERS_TABLE", ""),
            orders=os.environ.get("ORDERS_TABLE", ""),
            profiles=os.environ.get("PROFILES_TABLE", ""),
            shops=os.environ.get("SHOPS_TABLE", ""),
            learning=os.environ.get("LEARNING_TABLE", ""),
            catalog=os.environ.get("CATALOG_TABLE", ""),
        )
    except ValidationError as exc:
        missing = ", ".join(str(err["loc"][0]).upper() + "_TABLE" for err in exc.errors())
        raise ConfigurationError(f"table names missing from the environment: {missing}") from exc


def required(name: str) -> str:
    value = os.environ.get(name, "")
    if not value:
        raise ConfigurationError(f"{name} is not set")
    return value


def _seconds(name: str, default: int) -> int:
    """A duration setting in whole seconds, where 0 switches its check off."""
    raw = os.environ.get(name, str(default))
    try:
        value = int(raw)
    except ValueError as exc:
        raise ConfigurationError(f"{name} must be a whole number of seconds, not {raw!r}") from exc
    if value < 0:
        raise ConfigurationError(f"{name} must be 0 (off) or more")
    return value


def app_proxy_max_skew_seconds() -> int:
    return _seconds("APP_PROXY_MAX_SKEW_SECONDS", 90)


def webhook_max_age_seconds() -> int:
    """How old a delivery's `X-Shopify-Triggered-At` may be at intake (Shopify stops retrying after 4 hours)."""
    return _seconds("WEBHOOK_MAX_AGE_SECONDS", 48 * 3600)


def catalog_cache_seconds() -> int:
    """How long a recommendation may serve a catalog listing (price, availability, status, title) from its execution
    environment's memory before reading it again; 0 reads it on every request."""
    return _seconds("CATALOG_CACHE_SECONDS", 120)


def learning_cache_seconds() -> int:
    """How long a recommendation may serve what the nightly jobs wrote (the learned model, performance, a product's
    neighbours) from its execution environment's memory before reading it again; 0 reads it on every request."""
    return _seconds("LEARNING_CACHE_SECONDS", 600)


def _secret(env_name: str) -> str | None:
    direct = os.environ.get(env_name)
    if direct:
        return direct
    parameter_name = os.environ.get(f"{env_name}_PARAM")
    if not parameter_name:
        return None
    from aws_lambda_powertools.utilities import parameters

    value = parameters.get_parameter(parameter_name, decrypt=True, max_age=SECRET_CACHE_SECONDS)
    return str(value) if value else None


def api_secrets() -> tuple[str, ...]:
    """The app secrets a signature may be made with: the current one first, then the one before a rotation."""
    current = _secret("SHOPIFY_API_SECRET")
    if not current:
        raise ConfigurationError("no app secret: set SHOPIFY_API_SECRET or SHOPIFY_API_SECRET_PARAM")
    previous = _secret("SHOPIFY_API_SECRET_PREVIOUS")
    return (current, previous) if previous and previous != current else (current,)


def current_api_secret() -> str:
    """The current app secret only (what the app authenticates to Shopify with, as in a token refresh): a function
    that needs no other may be allowed to read this one parameter."""
    current = _secret("SHOPIFY_API_SECRET")
    if not current:
        raise ConfigurationError("no app secret: set SHOPIFY_API_SECRET or SHOPIFY_API_SECRET_PARAM")
    return current


def admin_token_parameter(shop: str) -> str:
    """The SSM name of the shop's offline Admin API access token: `{SHOPIFY_ADMIN_TOKEN_PARAM_PREFIX}{shop}`."""
    prefix = os.environ.get("SHOPIFY_ADMIN_TOKEN_PARAM_PREFIX", "")
    if not prefix:
        raise ConfigurationError("SHOPIFY_ADMIN_TOKEN_PARAM_PREFIX is not set")
    return f"{prefix}{shop}"


def shop_admin_token(shop: str) -> str:
    """The shop's offline Admin API access token as stored, from the SSM SecureString named by the prefix and the
    shop domain (decrypted, read afresh), for a local run against the fake; it is not refreshed (the backfill's
    ShopAccessTokens is). ConfigurationError, never the token, when it cannot be read."""
    from aws_lambda_powertools.utilities import parameters
    from aws_lambda_powertools.utilities.parameters.exceptions import GetParameterError

    from reclift.offline_grants import GrantError, parse_grant

    name = admin_token_parameter(shop)
    try:
        value = parameters.get_parameter(name, decrypt=True, force_fetch=True)
    except GetParameterError as exc:
        raise ConfigurationError(f"no Admin API access token could be read from SSM parameter {name}") from exc
    try:
        return parse_grant(str(value or "")).access_token
    except GrantError as exc:
        raise ConfigurationError(f"SSM parameter {name} holds no Admin API access token") from exc


def slack_webhook_url() -> str | None:
    """The Slack incoming webhook's URL (`SLACK_WEBHOOK_URL`, else the SSM parameter `SLACK_WEBHOOK_URL_PARAM`
    names); None when Slack alerts are off."""
    return _secret("SLACK_WEBHOOK_URL")
