"""Shared helpers for the unit tests: the real Shopify payloads under tests/fixtures/shopify/."""

from __future__ import annotations

import copy
import json
from collections.abc import Callable
from functools import cache
from pathlib import Path
from typing import Any

import pytest

SHOPIFY_FIXTURES = Path(__file__).resolve().parent.parent / "fixtures" / "shopify"

LoadFixture = Callable[[str], dict[str, Any]]


@cache
def _read(name: str) -> dict[str, Any]:
    path = SHOPIFY_FIXTURES / (name if name.endswith(".json") else f"{name}.json")
    payload = json.loads(path.read_text(encoding="utf-8"))
    assert isinstance(payload, dict), f"{path} is not a JSON object"
    return payload


def _load(name: str) -> dict[str, Any]:
    """A fresh deep copy of a real payload, free for a test to edit (`orders_create_sample` or with `.json`)."""
    return copy.deepcopy(_read(name))


@pytest.fixture(scope="session")
def load_fixture() -> LoadFixture:
    """Session-scoped so hypothesis tests may use it too; every call returns a new deep copy."""
    return _load
