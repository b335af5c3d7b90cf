"""`make backfill SHOP=… [TOKEN=…] [WHAT=orders|products|all]`: the backfill run on this machine, with a progress
bar, into the tables of the running local stack (`make run`) — or of the AWS account the shell's credentials reach
with `--aws`.

The access token comes from `TOKEN` (the environment variable `RECLIFT_ADMIN_TOKEN`, never a command-line
argument, so it shows in no process list) for local use, else from SSM as on AWS. `--admin-url` (or
`RECLIFT_ADMIN_API_URL`) points it at the fake Admin API (`python -m reclift_local fake-admin`).
"""

from __future__ import annotations

import os
import sys
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TextIO

from .emulator import FAKE_CREDENTIALS
from .stack import read_state
from .template import load_template
from .worker import function_env

TOKEN_VARIABLE = "RECLIFT_ADMIN_TOKEN"  # noqa: S105 - the variable's name, not a token
BAR_WIDTH = 30


class BackfillCommandError(Exception):
    pass


@dataclass
class ProgressBar:
    """One line per backfill, redrawn in place on a terminal; a line every ten pages elsewhere."""

    stream: TextIO
    what: str = ""
    total: int | None = None
    _drawn: bool = False
    _pending: str = ""  # the last line, not yet written (not a terminal)

    def begin(self, what: str, total: int | None) -> None:
        self.finish()
        self.what, self.total, self._drawn = what, total, False

    def update(self, pages: int, fetched: int, stored: int) -> None:
        if self.total:
            share = min(1.0, fetched / self.total)
            filled = int(share * BAR_WIDTH)
            bar = f"[{'#' * filled}{'.' * (BAR_WIDTH - filled)}] {share:4.0%} {fetched}/{self.total}"
        else:
            bar = f"{fetched} fetched"
        text = f"{self.what:<8} {bar}  {stored} stored, {pages} pages"
        if self.stream.isatty():
            self.stream.write("\r" + text)
            self._drawn = True
        elif pages % 10 == 0:
            self.stream.write(text + "\n")
            self._pending = ""
        else:
            self._pending = text
        self.stream.flush()

    def finish(self) -> None:
        if self._drawn or self._pending:
            self.stream.write(self._pending + "\n")
            self.stream.flush()
        self._drawn, self._pending = False, ""


def stack_environment(state: Mapping[str, Any]) -> dict[str, str]:
    """What the BackfillFunction gets in the running stack: its endpoints, region, table names and parameters."""
    template = load_template(Path(str(state["template"])))
    resources: dict[str, str] = dict(state.get("resources") or {})
    parameters = template.get("Parameters") or {}
    globals_env = (((template.get("Globals") or {}).get("Function") or {}).get("Environment") or {}).get("Variables")
    own = template["Resources"]["BackfillFunction"]["Properties"].get("Environment", {}).get("Variables", {})
    env: dict[str, str] = {
        **FAKE_CREDENTIALS,
        "AWS_REGION": str(state["region"]),
        "AWS_DEFAULT_REGION": str(state["region"]),
        "AWS_ENDPOINT_URL": str(state["moto_endpoint"]),
        "AWS_ENDPOINT_URL_DYNAMODB": str(state["dynamodb_endpoint"]),
    }
    for name, value in {**(globals_env or {}), **own}.items():
        target = value.get("Ref") if isinstance(value, dict) else None
        if isinstance(target, str) and target in resources:
            env[name] = resources[target]
        elif isinstance(target, str) and target in parameters:
            env[name] = str(parameters[target].get("Default", ""))
        elif isinstance(value, str | int):
            env[name] = str(value)
    return env


def run_command(
    *,
    shop: str,
    what: str,
    state_file: Path,
    use_aws: bool,
    admin_url: str | None,
    days: int,
    restart: bool,
    stream: TextIO | None = None,
) -> dict[str, Any]:
    """Run the backfill in this process against the local stack's tables (or AWS's) and return its result."""
    env: dict[str, str] = {}
    if not use_aws:
        state = read_state(state_file)
        if state is None:
            raise BackfillCommandError(f"the local stack is not running (no {state_file}); start it with `make run`")
        env = stack_environment(state)
    if admin_url:
        env["RECLIFT_ADMIN_API_URL"] = admin_url
    with function_env(env):
        from reclift import config
        from reclift.data.backfill import BackfillProgress, BackfillStore
        from reclift.data.store import DynamoStore
        from reclift.ids import shop_domain
        from reclift.logic.backfill import expected_count, parse_what, run_backfill
        from reclift.shopify_admin import AdminClient

        try:
            domain = shop_domain(shop)
            whats = parse_what(what)
        except ValueError as exc:
            raise BackfillCommandError(str(exc)) from exc
        token = os.environ.get(TOKEN_VARIABLE) or config.shop_admin_token(domain)
        client = AdminClient(domain, token)
        now = datetime.now(UTC)
        bar = ProgressBar(stream or sys.stderr)  # the stream of the moment, not of import time
        totals: dict[str, int | None] = {item: expected_count(client, item, now=now, days=days) for item in whats}

        def on_progress(progress: BackfillProgress) -> None:
            if progress.what != bar.what:
                bar.begin(progress.what, totals.get(progress.what))
            bar.update(progress.pages, progress.fetched, progress.stored)

        try:
            return run_backfill(
                domain,
                whats,
                client,
                BackfillStore(),
                DynamoStore(),
                now=now,
                days=days,
                restart=restart,
                on_progress=on_progress,
            )
        finally:
            bar.finish()
