"""AWS requests counted where botocore makes them: boto3, PynamoDB and Powertools all go through this point."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import botocore.client

_BASE: Any = botocore.client.BaseClient


@contextmanager
def aws_calls() -> Iterator[list[tuple[str, str]]]:
    """Every (service, operation) requested while inside, in order."""
    calls: list[tuple[str, str]] = []
    original = _BASE._make_api_call

    def counting(client: Any, operation: str, params: Any) -> Any:
        calls.append((client.meta.service_model.service_name, operation))
        return original(client, operation, params)

    _BASE._make_api_call = counting
    try:
        yield calls
    finally:
        _BASE._make_api_call = original
