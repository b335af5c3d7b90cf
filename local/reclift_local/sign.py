"""Sign requests the way Shopify would, for curl walk-throughs against the local stack.

    python -m reclift_local.sign webhook tests/fixtures/shopify/orders_create_sample.json
    python -m reclift_local.sign proxy 'shop=demo.myshopify.com&logged_in_customer_id=7&product_id=1'
    python -m reclift_local.sign session-token --shop demo.myshopify.com

Secrets come from `--secret`, else `SHOPIFY_API_SECRET`, else the development secret the local stack uses; the API key
(the session token's audience) from `--api-key`, else `SHOPIFY_API_KEY`, else the development key.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

from reclift.signatures import app_proxy_params, mint_session_token, sign_webhook, signed_app_proxy_query

# The documented development secret of the local stack; it signs nothing outside this machine.
DEV_API_SECRET = "reclift-dev-secret"  # noqa: S105
DEV_API_KEY = "reclift-dev-api-key"


def _default_secret() -> str:
    return os.environ.get("SHOPIFY_API_SECRET") or DEV_API_SECRET


def _default_api_key() -> str:
    return os.environ.get("SHOPIFY_API_KEY") or DEV_API_KEY


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m reclift_local.sign", description="Sign requests the way Shopify would."
    )
    commands = parser.add_subparsers(dest="command", required=True)

    webhook = commands.add_parser("webhook", help="print the X-Shopify-Hmac-Sha256 header value for a file's bytes")
    webhook.add_argument("file", type=Path)
    webhook.add_argument("--secret", help="app secret (default: $SHOPIFY_API_SECRET or the dev secret)")

    proxy = commands.add_parser("proxy", help="print a signed app proxy query string (adds a fresh timestamp)")
    proxy.add_argument("query", help="the query string to sign, e.g. 'shop=x.myshopify.com&product_id=1'")
    proxy.add_argument("--secret", help="app secret (default: $SHOPIFY_API_SECRET or the dev secret)")

    token = commands.add_parser("session-token", help="print an App Bridge session token for the admin routes")
    token.add_argument("--shop", required=True, help="the shop domain, e.g. x.myshopify.com")
    token.add_argument("--api-key", help="the app's API key (default: $SHOPIFY_API_KEY or the dev key)")
    token.add_argument("--secret", help="app secret (default: $SHOPIFY_API_SECRET or the dev secret)")
    token.add_argument("--ttl", type=int, default=60, help="lifetime in seconds (default: 60)")
    return parser


def _signed_proxy_query(query: str, secret: str, now: float) -> str:
    params = app_proxy_params(query.lstrip("?"))
    params.pop("signature", None)
    params.setdefault("timestamp", [str(int(now))])
    return signed_app_proxy_query(params, secret)


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    secret: str = args.secret or _default_secret()
    try:
        if args.command == "webhook":
            print(sign_webhook(args.file.read_bytes(), secret))
        elif args.command == "proxy":
            print(_signed_proxy_query(args.query, secret, time.time()))
        else:
            api_key: str = args.api_key or _default_api_key()
            print(mint_session_token(args.shop, secret, api_key=api_key, now=time.time(), ttl_seconds=args.ttl))
    except (OSError, ValueError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
