"""`make app-config`: the deployed stack's URLs into shopify.app.toml, nothing else of the file changed."""

from __future__ import annotations

import difflib
import shutil
import tomllib
from pathlib import Path

import pytest

from reclift_local.app_config import AppConfigError, AppUrls, configured, write_app_config

ROOT = Path(__file__).resolve().parents[2]
API = "https://abc123defg.execute-api.eu-west-1.amazonaws.com"
OUTPUTS = {"ApiUrl": API, "AppProxyUrl": f"{API}/apps/proxy", "WebhookUrl": f"{API}/webhooks", "Other": "x"}
URLS = AppUrls.from_outputs(OUTPUTS)


@pytest.fixture
def app_toml(tmp_path: Path) -> Path:
    """A copy of the project's shopify.app.toml: the tests never write the real one."""
    copy = tmp_path / "shopify.app.toml"
    shutil.copyfile(ROOT / "shopify.app.toml", copy)
    return copy


def changed_lines(before: str, after: str) -> list[str]:
    """The lines of `after` that differ from `before`."""
    diff = difflib.ndiff(before.splitlines(keepends=True), after.splitlines(keepends=True))
    return [line[2:] for line in diff if line.startswith("+ ")]


def test_the_projects_file_gets_the_stacks_urls_and_client_id_and_nothing_else(app_toml: Path) -> None:
    """Given the project's shopify.app.toml and a stack's outputs, when app-config writes them with a client id,
    then the URLs and client_id hold the stack's values and every other line is byte for byte the same."""
    before = app_toml.read_bytes()

    changes = write_app_config(app_toml, OUTPUTS, client_id="0123456789abcdef")

    after = app_toml.read_bytes()
    config = tomllib.loads(after.decode())
    assert config["client_id"] == "0123456789abcdef"
    assert config["application_url"] == API
    assert config["app_proxy"]["url"] == f"{API}/apps/proxy"
    redirects = config.get("auth", {}).get("redirect_urls", [])
    assert all(url.startswith(f"{API}/") for url in redirects)
    assert "API_ID" not in after.decode()
    changed = changed_lines(before.decode(), after.decode())
    assert changed, "nothing was written"
    assert all(
        line.lstrip().startswith(("client_id", "application_url", "url =", "redirect_urls", '"')) for line in changed
    )
    assert len(before.splitlines()) == len(after.splitlines())
    assert {change.key for change in changes} >= {"client_id", "application_url", "[app_proxy] url"}


def test_without_a_client_id_the_files_client_id_stays(app_toml: Path) -> None:
    before = tomllib.loads(app_toml.read_text())["client_id"]

    changes = write_app_config(app_toml, OUTPUTS)

    assert tomllib.loads(app_toml.read_text())["client_id"] == before
    assert "client_id" not in {change.key for change in changes}


def test_a_second_run_changes_nothing_and_another_stack_replaces_the_first(app_toml: Path) -> None:
    """Given a file already written for one stack, when app-config runs again for it, then nothing changes and the
    file is not rewritten; when it runs for another stack, then that stack's URLs replace the first's."""
    write_app_config(app_toml, OUTPUTS)
    written = app_toml.read_bytes()

    assert write_app_config(app_toml, OUTPUTS) == []
    assert app_toml.read_bytes() == written

    other = "https://zzz999.execute-api.us-east-1.amazonaws.com"
    write_app_config(
        app_toml, {"ApiUrl": other, "AppProxyUrl": f"{other}/apps/proxy", "WebhookUrl": f"{other}/webhooks"}
    )
    text = app_toml.read_text()
    assert API not in text
    assert tomllib.loads(text)["app_proxy"]["url"] == f"{other}/apps/proxy"


HAND_WRITTEN = """\
# comment = "not a key" https://API_ID.execute-api.REGION.amazonaws.com
client_id = 'old-id'   # trailing comment stays
name = "reclift"
application_url   =   "https://old.example.com"  # where Shopify loads the app
scopes_note = "https://old.example.com/not-touched"

[auth]
redirect_urls = [
  "https://old.example.com/auth/callback",  # first
  "https://old.example.com/auth/shopify/callback?x=1",
]

[webhooks]
api_version = "2025-10"

  [[webhooks.subscriptions]]
  topics = ["orders/create"]
  uri = "https://old.example.com/webhooks/orders/create"

  [[webhooks.subscriptions]]
  topics = ["orders/cancelled"]
  uri = "/webhooks/orders/cancelled"

[app_proxy]
url = "https://old.example.com/apps/proxy"
subpath = "reclift"
"""


def test_layout_comments_multiline_arrays_and_absolute_webhook_uris() -> None:
    """Given a hand-laid-out file (odd spacing, single quotes, trailing comments, a multi-line redirect array, one
    absolute and one relative webhook uri), when configured, then each URL moves to the stack, the relative uri and
    every comment and other value stay, and the spacing is kept."""
    result, changes = configured(HAND_WRITTEN, URLS, client_id="new-id")

    expected = (
        HAND_WRITTEN.replace("client_id = 'old-id'", "client_id = 'new-id'")
        .replace('application_url   =   "https://old.example.com"', f'application_url   =   "{API}"')
        .replace('"https://old.example.com/auth/callback"', f'"{API}/auth/callback"')
        .replace('"https://old.example.com/auth/shopify/callback?x=1"', f'"{API}/auth/shopify/callback?x=1"')
        .replace('uri = "https://old.example.com/webhooks/orders/create"', f'uri = "{API}/webhooks/orders/create"')
        .replace('url = "https://old.example.com/apps/proxy"', f'url = "{API}/apps/proxy"')
    )
    assert result == expected
    assert len(changes) == 6


def test_crlf_line_endings_are_kept() -> None:
    text = HAND_WRITTEN.replace("\n", "\r\n")

    result, _ = configured(text, URLS)

    assert result.count("\r\n") == text.count("\r\n")
    assert tomllib.loads(result)["application_url"] == API


@pytest.mark.parametrize(
    ("outputs", "message"),
    [
        ({"ApiUrl": API, "WebhookUrl": f"{API}/webhooks"}, "AppProxyUrl"),
        ({**OUTPUTS, "ApiUrl": "http://abc.example.com"}, "ApiUrl is not an https URL"),
        ({**OUTPUTS, "AppProxyUrl": f'{API}/apps/proxy" # injected'}, "AppProxyUrl is not an https URL"),
    ],
)
def test_missing_or_unsafe_outputs_are_refused(outputs: dict[str, str], message: str) -> None:
    with pytest.raises(AppConfigError, match=message):
        AppUrls.from_outputs(outputs)


def test_a_file_without_application_url_is_refused_not_half_written(tmp_path: Path) -> None:
    path = tmp_path / "shopify.app.toml"
    path.write_text('client_id = "x"\n[app_proxy]\nurl = "https://old.example.com/apps/proxy"\n')
    before = path.read_bytes()

    with pytest.raises(AppConfigError, match="no application_url"):
        write_app_config(path, OUTPUTS, client_id="y")
    assert path.read_bytes() == before


def test_a_value_it_cannot_edit_safely_is_refused() -> None:
    """An inline table holding the proxy URL cannot be edited line by line: refused rather than left stale."""
    text = 'application_url = "https://old.example.com"\napp_proxy = { url = "https://old.example.com/apps/proxy" }\n'

    with pytest.raises(AppConfigError):
        configured(text, URLS)
