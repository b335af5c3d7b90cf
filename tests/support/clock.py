"""The wall clock in tests that write now and then read back the hour or the UTC day they wrote in."""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta

HOUR = timedelta(hours=1)
DAY = timedelta(days=1)


def clear_of_turn(margin: timedelta, period: timedelta = HOUR) -> datetime:
    """Now, at least `margin` before the next UTC hour (or day, `period`): called within `margin` of its end, it
    sleeps into the next one first. Writes and reads that then take less than `margin` fall in one hour (day)."""
    seconds = period.total_seconds()
    left = seconds - datetime.now(UTC).timestamp() % seconds
    if left < margin.total_seconds():
        time.sleep(left + 1.0)
    return datetime.now(UTC)
