"""`reclift-local` / `python -m reclift_local`: run the local stack, and invoke its functions."""

from __future__ import annotations

import argparse
import os
import signal
import sys
import threading
from pathlib import Path
from types import FrameType

from . import client
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


def main(argv: list[str] | None = None) -> None:
    args = build_parser().parse_args(argv)
    if args.command == "run":
        code = run(args)
    elif args.command == "invoke":
        code = client.invoke(args.function, args.event, args.state_file, wait_timeout=args.wait_timeout)
    elif args.command == "status":
        code = client.simple_command("/_local/status", "GET", args.state_file)
    else:
        code = client.simple_command("/_local/redrive", "POST", args.state_file)
    sys.exit(code)
