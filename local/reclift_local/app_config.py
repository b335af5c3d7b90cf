"""`make app-config`: the deployed stack's URLs written into shopify.app.toml for `shopify app deploy`.

Reads the stack's `ApiUrl`, `AppProxyUrl` and `WebhookUrl` outputs (CloudFormation `DescribeStacks`) and sets:
`application_url` (the API's base URL), every `[auth] redirect_urls` entry (same path, the API's host),
`[app_proxy] url`, any absolute webhook subscription `uri` (`<WebhookUrl>/<topic>`; relative ones follow
`application_url` by themselves) and, when `SHOPIFY_API_KEY` is set, `client_id`. Only those values change: every
other byte of the file, comments and layout included, is kept. Run it again after a redeploy to another stack or
region; it replaces whatever URLs the file holds, placeholders or an earlier stack's.
"""

from __future__ import annotations

import argparse
import os
import re
import sys
import tomllib
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

PROJECT_ROOT = Path(__file__).resolve().parents[2]
APP_TOML = PROJECT_ROOT / "shopify.app.toml"
SAMCONFIG = PROJECT_ROOT / "samconfig.toml"
REQUIRED_OUTPUTS = ("ApiUrl", "AppProxyUrl", "WebhookUrl")

_TABLE_HEADER = re.compile(r"^\s*\[\[?\s*([A-Za-z0-9_.\-]+)\s*\]\]?")
# A `key = "value"` (or 'value') line: group 1 up to the opening quote, 2 the quote, 3 the value, 4 the rest.
_KEY_VALUE = r"^(\s*{key}\s*=\s*)([\"'])([^\"'\\\n]*)\2(.*)$"
_QUOTED = re.compile(r"([\"'])([^\"'\\\n]*)\1")


class AppConfigError(Exception):
    pass


@dataclass(frozen=True)
class AppUrls:
    api_url: str
    app_proxy_url: str
    webhook_url: str

    @classmethod
    def from_outputs(cls, outputs: Mapping[str, str]) -> AppUrls:
        missing = [name for name in REQUIRED_OUTPUTS if not outputs.get(name)]
        if missing:
            raise AppConfigError(f"the stack has no output {', '.join(missing)} (is it reclift's, and deployed?)")
        urls = {name: outputs[name].rstrip("/") for name in REQUIRED_OUTPUTS}
        for name, url in urls.items():
            parts = urlsplit(url)
            unsafe = any(char in url for char in "\"'\\ \n#")
            if parts.scheme != "https" or not parts.netloc or parts.query or parts.fragment or unsafe:
                raise AppConfigError(f"output {name} is not an https URL: {url!r}")
        return cls(api_url=urls["ApiUrl"], app_proxy_url=urls["AppProxyUrl"], webhook_url=urls["WebhookUrl"])


@dataclass(frozen=True)
class Change:
    key: str
    before: str
    after: str


def _rehosted(url: str, base: str) -> str:
    """`url`'s path (and query) on `base`'s scheme and host."""
    parts = urlsplit(url)
    rest = parts.path + (f"?{parts.query}" if parts.query else "")
    return base + (rest if rest != "/" else "")


def _webhook_uri(uri: str, webhook_url: str) -> str:
    """An absolute subscription URI pointed at this stack's webhook route; a relative one left as it is."""
    if not uri.startswith(("https://", "http://")):
        return uri
    path = urlsplit(uri).path
    marker = "/webhooks"
    topic = path[path.index(marker) + len(marker) :] if marker in path else path
    return webhook_url + topic


def configured(text: str, urls: AppUrls, client_id: str | None = None) -> tuple[str, list[Change]]:
    """`text` (a shopify.app.toml) with the stack's URLs and the client id in place, and what changed."""
    lines = text.splitlines(keepends=True)
    changes: list[Change] = []
    table: str | None = None
    in_redirects = False
    seen: set[str] = set()

    def replace(index: int, key: str, new_value: Callable[[str], str], label: str | None = None) -> None:
        match = re.match(_KEY_VALUE.format(key=re.escape(key)), lines[index].rstrip("\r\n"))
        if match is None:
            raise AppConfigError(f"line {index + 1}: {key} is not a plain quoted string; set it by hand")
        ending = lines[index][len(lines[index].rstrip("\r\n")) :]
        before = match.group(3)
        after = new_value(before)
        seen.add(key)
        if after != before:
            changes.append(Change(label or key, before, after))
        lines[index] = f"{match.group(1)}{match.group(2)}{after}{match.group(2)}{match.group(4)}{ending}"

    def rehost_strings(code: str) -> str:
        return _QUOTED.sub(lambda match: _rehost_match(match, urls, changes), code)

    for index, line in enumerate(lines):
        if in_redirects:
            code = line.partition("#")[0]
            lines[index] = rehost_strings(code) + line[len(code) :]
            in_redirects = "]" not in code
            continue
        header = _TABLE_HEADER.match(line)
        if header:
            table = header.group(1)
            continue
        key = line.split("=", 1)[0].strip() if "=" in line.partition("#")[0] else ""
        if table is None and key == "application_url":
            replace(index, key, lambda _: urls.api_url)
        elif table is None and key == "client_id" and client_id:
            replace(index, key, lambda _: client_id)
        elif table == "app_proxy" and key == "url":
            replace(index, key, lambda _: urls.app_proxy_url, "[app_proxy] url")
        elif table == "webhooks.subscriptions" and key == "uri":
            replace(index, key, lambda uri: _webhook_uri(uri, urls.webhook_url), "[[webhooks.subscriptions]] uri")
        elif table == "auth" and key == "redirect_urls":
            seen.add(key)
            head, _, value = line.partition("=")
            code = value.partition("#")[0]
            rest = value[len(code) :]
            lines[index] = head + "=" + rehost_strings(code) + rest
            in_redirects = "]" not in code

    for required in ("application_url", "url"):
        if required not in seen:
            where = "at the top" if required == "application_url" else "in [app_proxy]"
            raise AppConfigError(f"shopify.app.toml has no {required} {where}")
    result = "".join(lines)
    _check_only_urls_changed(text, result, urls, client_id)
    return result, changes


def _rehost_match(match: re.Match[str], urls: AppUrls, changes: list[Change]) -> str:
    before = match.group(2)
    after = _rehosted(before, urls.api_url) if before.startswith(("https://", "http://")) else before
    if after != before:
        changes.append(Change("[auth] redirect_urls", before, after))
    return f"{match.group(1)}{after}{match.group(1)}"


def _check_only_urls_changed(before: str, after: str, urls: AppUrls, client_id: str | None) -> None:
    """The edited file parses, holds the stack's URLs, and differs from the original in nothing else."""
    try:
        expected: dict[str, Any] = tomllib.loads(before)
        new = tomllib.loads(after)
    except tomllib.TOMLDecodeError as exc:
        raise AppConfigError(f"shopify.app.toml does not parse: {exc}") from exc
    expected["application_url"] = urls.api_url
    if client_id:
        expected["client_id"] = client_id
    expected["app_proxy"]["url"] = urls.app_proxy_url
    auth = expected.get("auth")
    if isinstance(auth, dict) and isinstance(auth.get("redirect_urls"), list):
        auth["redirect_urls"] = [
            _rehosted(url, urls.api_url) if isinstance(url, str) and url.startswith(("https://", "http://")) else url
            for url in auth["redirect_urls"]
        ]
    for subscription in (expected.get("webhooks") or {}).get("subscriptions") or []:
        if isinstance(subscription, dict) and isinstance(subscription.get("uri"), str):
            subscription["uri"] = _webhook_uri(subscription["uri"], urls.webhook_url)
    if new != expected:
        raise AppConfigError(
            "shopify.app.toml is laid out in a way this command cannot edit safely; set the URLs by hand"
        )


def samconfig_defaults(path: Path = SAMCONFIG) -> tuple[str, str | None]:
    """The stack name and region `sam deploy` uses by default (samconfig.toml)."""
    try:
        config = tomllib.loads(path.read_text())
    except (OSError, tomllib.TOMLDecodeError):
        return "reclift", None
    default = config.get("default") or {}
    stack = ((default.get("global") or {}).get("parameters") or {}).get("stack_name") or "reclift"
    region = ((default.get("deploy") or {}).get("parameters") or {}).get("region")
    return str(stack), str(region) if region else None


def stack_outputs(stack: str, region: str | None, *, cloudformation: Any = None) -> dict[str, str]:
    """The deployed stack's outputs, by key (CloudFormation DescribeStacks)."""
    import boto3
    from botocore.exceptions import BotoCoreError, ClientError

    try:
        client = cloudformation or boto3.client("cloudformation", region_name=region)
        stacks = client.describe_stacks(StackName=stack)["Stacks"]
    except (BotoCoreError, ClientError) as exc:
        raise AppConfigError(f"cannot read stack {stack!r}: {exc}") from exc
    if not stacks:
        raise AppConfigError(f"no stack {stack!r}")
    description = stacks[0]
    outputs = {str(item["OutputKey"]): str(item["OutputValue"]) for item in description.get("Outputs") or []}
    if not all(outputs.get(name) for name in REQUIRED_OUTPUTS):
        status = description.get("StackStatus", "unknown")
        raise AppConfigError(
            f"stack {stack!r} ({status}) lacks output(s) "
            f"{', '.join(name for name in REQUIRED_OUTPUTS if not outputs.get(name))}: is the deployment complete?"
        )
    return outputs


def write_app_config(path: Path, outputs: Mapping[str, str], client_id: str | None = None) -> list[Change]:
    """Edit `path` in place (written only when something changed); the changes made."""
    text = path.read_text()
    result, changes = configured(text, AppUrls.from_outputs(outputs), client_id)
    if result != text:
        path.write_text(result)
    return changes


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--stack", default=None, help="the stack's name (default: samconfig.toml's, reclift)")
    parser.add_argument(
        "--region",
        default=None,
        help="its region (default: samconfig.toml's, as sam deploy; else $AWS_REGION or $AWS_DEFAULT_REGION)",
    )
    parser.add_argument("--file", type=Path, default=APP_TOML, help="the app configuration (default shopify.app.toml)")


def command(args: argparse.Namespace, environ: Mapping[str, str] = os.environ) -> int:
    default_stack, default_region = samconfig_defaults()
    stack = args.stack or default_stack
    # sam deploy takes samconfig.toml's region over the environment's, so the stack is found there unless told.
    region = args.region or default_region or environ.get("AWS_REGION") or environ.get("AWS_DEFAULT_REGION")
    try:
        outputs = stack_outputs(stack, region)
        changes = write_app_config(args.file, outputs, environ.get("SHOPIFY_API_KEY") or None)
    except (AppConfigError, OSError) as exc:
        print(f"app-config: {exc}", file=sys.stderr)
        return 1
    if not changes:
        print(f"{args.file}: already matches stack {stack} ({region})")
    for change in changes:
        print(f"{args.file}: {change.key}: {change.before} → {change.after}")
    if not environ.get("SHOPIFY_API_KEY"):
        print("client_id left as it is (set SHOPIFY_API_KEY to write your app's client id)")
    return 0
