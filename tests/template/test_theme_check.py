"""The theme app extension passes Shopify's theme check (the pinned `@shopify/theme-check-node`, run by
extensions/theme-check.mjs), and its shipped script is the minified build of extensions/src/reclift.js.

`make test` installs the tools with npm from extensions/package-lock.json; these tests skip only without Node.js."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest

from tests.support.storefront import EXTENSION

TOOLS = EXTENSION.parent  # extensions/: package.json, build.mjs, theme-check.mjs, src/
SOURCE = TOOLS / "src" / "reclift.js"
ASSET = EXTENSION / "assets" / "reclift.js"
APP_BLOCK_SCRIPT_LIMIT = 10_000  # bytes: theme check's AssetSizeAppBlockJavaScript for a theme app extension


@pytest.fixture(scope="module")
def node() -> str:
    node = shutil.which("node")
    if node is None:
        pytest.skip("Node.js is not installed")
    if not (TOOLS / "node_modules" / ".installed").is_file():
        pytest.fail("the widget's npm tools are missing: `make widget` (or `make test`) installs them")
    return node


def theme_check(node: str, extension: Path) -> list[dict[str, Any]]:
    run = subprocess.run(
        [node, str(TOOLS / "theme-check.mjs"), str(extension)],
        cwd=TOOLS,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert run.returncode in (0, 1), run.stderr
    offenses: list[dict[str, Any]] = json.loads(run.stdout)
    assert (run.returncode == 1) == bool(offenses), run.stderr
    return offenses


def test_given_the_extension_then_shopify_s_theme_check_reports_no_offense(node: str) -> None:
    assert theme_check(node, EXTENSION) == []


def test_given_the_readable_source_shipped_as_the_asset_then_theme_check_reports_its_size(
    node: str, tmp_path: Path
) -> None:
    """The check above can fail: the unminified source is over Shopify's limit for an app block's script."""
    unbuilt = tmp_path / EXTENSION.name
    shutil.copytree(EXTENSION, unbuilt)
    shutil.copyfile(SOURCE, unbuilt / "assets" / ASSET.name)

    offenses = theme_check(node, unbuilt)

    assert SOURCE.stat().st_size > APP_BLOCK_SCRIPT_LIMIT
    assert [(o["check"], o["file"]) for o in offenses] == [
        ("AssetSizeAppBlockJavaScript", "blocks/recommendations.liquid")
    ]
    assert f"({SOURCE.stat().st_size} B)" in offenses[0]["message"]


def test_given_the_source_then_the_committed_asset_is_its_fresh_build(node: str) -> None:
    built = subprocess.run(
        [node, str(TOOLS / "build.mjs"), "--stdout"], cwd=TOOLS, capture_output=True, timeout=120, check=False
    )

    assert built.returncode == 0, built.stderr.decode()
    assert built.stdout == ASSET.read_bytes(), "the asset is stale: `make widget` rebuilds it from extensions/src"
    assert len(built.stdout) <= APP_BLOCK_SCRIPT_LIMIT
