"""The embedded admin page as served: every placeholder filled, and the settings' choices those the API accepts."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import get_args

from reclift.admin_page import admin_page
from reclift.settings import ShopSettings

PAGE = Path(__file__).resolve().parents[2] / "functions" / "admin" / "page.html"


def served_choices(body: str) -> dict[str, list[str]]:
    match = re.search(r"const CHOICES = (\{.*?\});", body)
    assert match, "the page's script declares its choices"
    parsed: dict[str, list[str]] = json.loads(match.group(1))
    return parsed


def test_given_the_page_when_served_then_no_placeholder_is_left() -> None:
    body = admin_page(PAGE, api_key="key-123", shop="demo.myshopify.com").body
    assert re.findall(r"\{\{[A-Z_]+\}\}", body) == []
    assert 'content="key-123"' in body


def test_given_the_settings_model_when_the_page_is_served_then_each_select_offers_what_the_api_accepts() -> None:
    """The selects are built from the model, so a policy added to `ShopSettings` is offered without touching the page,
    and a value the API would refuse is never offered."""
    choices = served_choices(admin_page(PAGE, api_key="k", shop=None).body)
    assert choices == {
        "policy": list(get_args(ShopSettings.model_fields["policy"].annotation)),
        "objective": list(get_args(ShopSettings.model_fields["objective"].annotation)),
    }
    assert ShopSettings().policy in choices["policy"]
    assert ShopSettings().objective in choices["objective"]
