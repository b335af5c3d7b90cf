"""A small least-recently-used cache whose entries expire: what one execution environment keeps between invocations.

Bounded three ways: each entry lives `ttl_seconds` from when it was stored, at most `max_entries` are kept and their
sizes (as the caller measures them: `item_size` gives a DynamoDB item's) add up to at most `max_bytes`; past a bound
the least recently used entries go first. A ttl of 0 keeps nothing (the cache is off). The clock is injectable
(`time.monotonic` by default), so tests move time instead of waiting for it.
"""

from __future__ import annotations

import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Hashable, Mapping
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

K = TypeVar("K", bound=Hashable)
V = TypeVar("V")


@dataclass(frozen=True)
class _Entry(Generic[V]):
    value: V
    size: int
    expires: float


class ExpiringLru(Generic[K, V]):
    def __init__(
        self,
        *,
        ttl_seconds: float,
        max_entries: int,
        max_bytes: int,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if ttl_seconds < 0 or max_entries < 0 or max_bytes < 0:
            raise ValueError("a cache's ttl and bounds are 0 or more")
        self.ttl_seconds = ttl_seconds
        self.max_entries = max_entries
        self.max_bytes = max_bytes
        self._clock = clock
        self._entries: OrderedDict[K, _Entry[V]] = OrderedDict()
        self._bytes = 0
        self._lock = threading.Lock()

    @property
    def enabled(self) -> bool:
        return self.ttl_seconds > 0 and self.max_entries > 0 and self.max_bytes > 0

    def get(self, key: K) -> tuple[bool, V | None]:
        """(True, value) while the entry is stored and unexpired (it becomes the most recently used), else
        (False, None). A stored value may itself be None: the caller's "known to be absent"."""
        with self._lock:
            entry = self._entries.get(key)
            if entry is None:
                return False, None
            if entry.expires <= self._clock():
                self._drop(key)
                return False, None
            self._entries.move_to_end(key)
            return True, entry.value

    def put(self, key: K, value: V, size: int) -> None:
        """Store `value` for the cache's ttl; an entry bigger than the whole cache is not stored."""
        if not self.enabled or size > self.max_bytes:
            return
        with self._lock:
            if key in self._entries:
                self._drop(key)
            self._entries[key] = _Entry(value, size, self._clock() + self.ttl_seconds)
            self._bytes += size
            while len(self._entries) > self.max_entries or self._bytes > self.max_bytes:
                self._drop(next(iter(self._entries)))

    def clear(self) -> None:
        with self._lock:
            self._entries.clear()
            self._bytes = 0

    def __len__(self) -> int:
        return len(self._entries)

    @property
    def bytes(self) -> int:
        """The sizes of the entries stored, expired or not (an expired entry is dropped when next asked for, or
        when the bounds push it out)."""
        return self._bytes

    def _drop(self, key: K) -> None:
        self._bytes -= self._entries.pop(key).size


# ---------------------------------------------------------------------------------------------------- item sizes
def _value_size(value: Mapping[str, Any]) -> int:
    """An attribute value's size as DynamoDB counts it (names and strings in UTF-8 bytes)."""
    ((kind, raw),) = value.items()
    if kind == "S":
        return len(str(raw).encode())
    if kind == "N":
        return len(str(raw).lstrip("-").replace(".", "")) // 2 + 1
    if kind == "B":
        return len(raw)
    if kind in ("BOOL", "NULL"):
        return 1
    if kind == "SS":
        return sum(len(str(member).encode()) for member in raw)
    if kind == "NS":
        return sum(len(str(member).lstrip("-").replace(".", "")) // 2 + 1 for member in raw)
    if kind == "BS":
        return sum(len(member) for member in raw)
    if kind == "L":
        return 3 + sum(1 + _value_size(member) for member in raw)
    if kind == "M":
        return 3 + sum(1 + len(name.encode()) + _value_size(member) for name, member in raw.items())
    raise ValueError(f"unknown attribute type {kind}")


def item_size(item: Mapping[str, Any]) -> int:
    """A raw item's size (the low-level client's `{"name": {"S": …}}` form) as DynamoDB counts it for billing."""
    return sum(len(name.encode()) + _value_size(value) for name, value in item.items())
