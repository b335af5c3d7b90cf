"""`reclift-local` / `python -m reclift_local`: run the local stack, and invoke its functions."""

from __future__ import annotations

import argparse
import json
import os
import signal
import sys
import threading
from pathlib import Path
from types import FrameType

from . import app_config, client, smoke, traffic
from .output import Output
from .stack import DEFAULT_STATE_FILE, LocalStack, StackError, StackOptions
from .template import DEFAULT_REGION, TemplateError


def _port(value: str) -> int:
    port = int(value)
    if not 0 <= port <= 65535:
        raise argparse.ArgumentTypeError(f"not a port: {value}")
    return port


def _override(value: str) -> tuple[str, str]:
    key, sep, val = value.partition("=")
    if not sep or not key:
        raise argparse.ArgumentTypeError(f"expected Name=Value, got {value!r}")
    return key, val


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="reclift-local",
        description="The Docker-free local stack: moto server, the template's tables, queues, routes and functions.",
    )
    sub = parser.add_subparsers(dest="command", required=True)

    state = argparse.ArgumentParser(add_help=False)
    state.add_argument(
        "--state-file",
        type=Path,
        default=DEFAULT_STATE_FILE,
        help=f"where the running stack describes itself (default {DEFAULT_STATE_FILE})",
    )

    run = sub.add_parser("run", parents=[state], help="start the local stack and serve until Ctrl-C or SIGTERM")
    run.add_argument(
        "--template", type=Path, default=Path("template.yaml"), help="SAM template (default template.yaml)"
    )
    run.add_argument(
        "--port", type=_port, default=None, help="HTTP port on 127.0.0.1 (default $PORT or 3000; 0 picks a free one)"
    )
    run.add_argument(
        "--retry-delay",
        type=int,
        default=None,
        help="seconds before a failed SQS message is retried locally, instead of the queue's visibility "
        "timeout (default $RECLIFT_LOCAL_RETRY_DELAY or 1)",
    )
    run.add_argument(
        "--max-concurrency",
        type=int,
        default=10,
        help="execution environments per function under concurrent load (default 10)",
    )
    run.add_argument(
        "--parameter-overrides",
        type=_override,
        nargs="*",
        default=[],
        metavar="NAME=VALUE",
        help="template parameter values, as with `sam deploy`",
    )
    run.add_argument("--region", default=None, help=f"AWS region (default $AWS_DEFAULT_REGION or {DEFAULT_REGION})")
    run.add_argument("--quiet", action="store_true", help="no REPORT line per invocation")
    run.add_argument(
        "--db",
        choices=("moto", "dynamodb-local"),
        default=os.environ.get("DB") or "moto",
        help="the tables' engine: moto's DynamoDB, or AWS's DynamoDB Local on Java (default $DB or moto)",
    )
    run.add_argument(
        "--db-data",
        type=Path,
        default=None,
        metavar="DIR",
        help="with --db dynamodb-local: keep the tables in DIR across restarts (default: in memory, as moto's are)",
    )

    inv = sub.add_parser(
        "invoke", parents=[state], help="run one function in the running stack (the Docker-free `sam local invoke`)"
    )
    inv.add_argument("function", metavar="FN", help="the function's logical id in the template")
    inv.add_argument("--event", "-e", default=None, help="JSON event file ('-' for stdin)")
    inv.add_argument(
        "--wait-timeout",
        type=float,
        default=900,
        help="for a scheduled run: how long to wait for its fan-out to finish (default 900 s)",
    )

    fill = sub.add_parser(
        "backfill",
        parents=[state],
        help="fetch a shop's products and recent orders from the Shopify Admin API into the running stack's tables",
    )
    fill.add_argument("--shop", required=True, help="the shop's myshopify.com domain")
    fill.add_argument(
        "--what", default="all", choices=("all", "orders", "products"), help="what to fetch (default all)"
    )
    fill.add_argument("--days", type=int, default=180, help="how many days of orders (default 180)")
    fill.add_argument("--restart", action="store_true", help="start over instead of resuming an unfinished run")
    fill.add_argument(
        "--admin-url", default=None, help="the Admin API's base URL (default https://<shop>; the fake's URL locally)"
    )
    fill.add_argument("--aws", action="store_true", help="write to AWS (the shell's credentials), not the local stack")

    fake = sub.add_parser("fake-admin", help="serve a seeded fake Shopify Admin GraphQL API until Ctrl-C")
    fake.add_argument("--shop", default="reclift-demo.myshopify.com")
    fake.add_argument(
        "--token", default="shpat_local_fake", help="the access token it accepts (default shpat_local_fake)"
    )
    fake.add_argument("--orders", type=int, default=500)
    fake.add_argument("--products", type=int, default=200)
    fake.add_argument("--seed", type=int, default=1)
    fake.add_argument("--restore-rate", type=float, default=100.0, help="cost points restored per second (default 100)")

    smoke.add_arguments(
        sub.add_parser(
            "smoke",
            help="the README walk-through as one command against a deployment (local or AWS); the secret and API key "
            "from $SHOPIFY_API_SECRET and $SHOPIFY_API_KEY",
        )
    )

    traffic.add_arguments(
        sub.add_parser(
            "traffic",
            help="signed storefront traffic (recommendations, impressions, clicks, orders) against a deployment, until "
            "the ROI report measures the lift; the secret and API key from $SHOPIFY_API_SECRET and $SHOPIFY_API_KEY, "
            "else the local stack's",
        )
    )

    app_config.add_arguments(
        sub.add_parser(
            "app-config",
            help="write the deployed stack's URLs (ApiUrl, AppProxyUrl, WebhookUrl outputs) and $SHOPIFY_API_KEY "
            "into shopify.app.toml",
        )
    )

    sub.add_parser("status", parents=[state], help="invocation counts and queue depths of the running stack")
    sub.add_parser("redrive", parents=[state], help="move every DLQ's messages back to their source queue")
    return parser


def run(args: argparse.Namespace) -> int:
    env_port = os.environ.get("PORT")
    port = args.port if args.port is not None else int(env_port) if env_port else 3000
    retry = args.retry_delay if args.retry_delay is not None else int(os.environ.get("RECLIFT_LOCAL_RETRY_DELAY", "1"))
    options = StackOptions(
        template=args.template,
        port=port,
        state_file=args.state_file,
        region=args.region or os.environ.get("AWS_DEFAULT_REGION") or DEFAULT_REGION,
        retry_delay=max(0, retry),
        max_concurrency=max(1, args.max_concurrency),
        parameter_overrides=dict(args.parameter_overrides),
        report=not args.quiet,
        database=args.db,
        dynamodb_data_dir=args.db_data,
    )
    output = Output()
    stop = threading.Event()

    def on_signal(signum: int, frame: FrameType | None) -> None:
        stop.set()

    for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
        signal.signal(sig, on_signal)
    stack = LocalStack(options, output)
    try:
        stack.start()
    except (StackError, TemplateError) as exc:
        output.info(f"reclift-local: {exc}")
        stack.stop()
        return 1
    except BaseException:
        stack.stop()
        raise
    try:
        while not stop.wait(0.5):
            pass
    finally:
        output.info("reclift local stack stopping")
        stack.stop()
    return 0


def backfill(args: argparse.Namespace) -> int:
    from reclift.config import ConfigurationError
    from reclift.data.store import StoreError
    from reclift.shopify_admin import AdminApiError

    from .backfill import BackfillCommandError, run_command

    try:
        result = run_command(
            shop=args.shop,
            what=args.what,
            state_file=args.state_file,
            use_aws=args.aws,
            admin_url=args.admin_url,
            days=args.days,
            restart=args.restart,
        )
    except (BackfillCommandError, ConfigurationError) as exc:
        print(f"backfill: {exc}", file=sys.stderr)
        return 2
    except (AdminApiError, StoreError) as exc:
        print(f"backfill: {exc}", file=sys.stderr)
        print("backfill: what was fetched is kept; run the same command again to resume", file=sys.stderr)
        return 1
    print(json.dumps(result, indent=2))
    return 0


def fake_admin(args: argparse.Namespace) -> int:
    from .fake_admin import FakeAdminApi, seeded_catalog

    orders, products = seeded_catalog(orders=args.orders, products=args.products, seed=args.seed)
    stop = threading.Event()
    signal.signal(signal.SIGINT, lambda signum, frame: stop.set())
    signal.signal(signal.SIGTERM, lambda signum, frame: stop.set())
    with FakeAdminApi(args.shop, args.token, orders=orders, products=products, restore_rate=args.restore_rate) as api:
        print(f"fake Admin API of {args.shop}: {api.url} ({len(orders)} orders, {len(products)} products)", flush=True)
        print(f"try: make backfill SHOP={args.shop} TOKEN=<its token> ADMIN_URL={api.url}", flush=True)
        while not stop.wait(0.5):
            pass
    return 0


def main(argv: list[str] | None = None) -> None:
    args = build_parser().parse_args(argv)
    if args.command == "run":
        code = run(args)
    elif args.command == "backfill":
        code = backfill(args)
    elif args.command == "fake-admin":
        code = fake_admin(args)
    elif args.command == "invoke":
        code = client.invoke(args.function, args.event, args.state_file, wait_timeout=args.wait_timeout)
    elif args.command == "smoke":
        code = smoke.command(args)
    elif args.command == "traffic":
        code = traffic.command(args)
    elif args.command == "app-config":
        code = app_config.command(args)
    elif args.command == "status":
        code = client.simple_command("/_local/status", "GET", args.state_file)
    else:
        code = client.simple_command("/_local/redrive", "POST", args.state_file)
    sys.exit(code)
