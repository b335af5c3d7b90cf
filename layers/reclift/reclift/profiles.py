"""User profiles: bounded lists of recently viewed, carted and purchased products, newest first."""

from __future__ import annotations

from collections.abc import Sequence

PROFILE_LIST_LIMIT = 50
PROFILE_RETENTION_DAYS = 180


def push_recent(current: Sequence[str], newest_last: Sequence[str], limit: int = PROFILE_LIST_LIMIT) -> list[str]:
    """`current` (newest first) with `newest_last` pushed to the front, deduplicated, at most `limit` long."""
    merged = list(dict.fromkeys([*reversed(newest_last), *current]))
    return merged[:limit]
