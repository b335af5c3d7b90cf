"""The wall clock in tests that write now and then read back the hour or the UTC day they wrote in."""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta

HOUR_TURN_MARGIN = timedelta(seconds=90)  # longer than any test that uses it takes, on a busy 2-core machine


def clear_of_the_hour_turn(margin: timedelta = HOUR_TURN_MARGIN) -> datetime:
    """Now, at least `margin` before the next hour: called within `margin` of the hour's end, it sleeps into the
    next hour first. A test that then writes and reads within `margin` does both in one hour and one UTC day."""
    now = datetime.now(UTC)
    turn = now.replace(minute=0, second=0, microsecond=0) + timedelta(hours=1)
    if turn - now < margin:
        time.sleep((turn - now).total_seconds() + 1.0)
        now = datetime.now(UTC)
    return now
