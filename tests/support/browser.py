"""Headless Chromium for the browser tests: Debian's `chromium` driven by Playwright, no browser download.

`make test` installs the system browser (`/usr/bin/chromium`); the flags keep it from reaching for Google's services,
which this closed network refuses. Playwright runs it headless with a fresh profile per launch.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from playwright.sync_api import Browser

CHROMIUM_FLAGS = (
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
)


def chromium_path() -> str:
    """The system Chromium (`RECLIFT_CHROMIUM` overrides); a missing browser is an error, never a skipped test."""
    path = os.environ.get("RECLIFT_CHROMIUM") or shutil.which("chromium") or shutil.which("chromium-browser")
    if not path:
        raise RuntimeError("Chromium is not installed: `make test` installs Debian's chromium package")
    return path


@contextmanager
def chromium() -> Iterator[Browser]:
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=chromium_path(), args=list(CHROMIUM_FLAGS))
        try:
            yield browser
        finally:
            browser.close()
