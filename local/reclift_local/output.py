"""The runner's console: one writer, whole lines, so concurrent workers' logs never interleave mid-line."""

from __future__ import annotations

import sys
import threading
from typing import TextIO


class Output:
    def __init__(self, stream: TextIO | None = None) -> None:
        self._stream = stream or sys.stdout
        self._lock = threading.Lock()

    def line(self, source: str, text: str) -> None:
        """A line from a function (or a part of the stack), prefixed with where it came from."""
        self._write(f"[{source}] {text}")

    def info(self, text: str) -> None:
        """A line about the stack itself."""
        self._write(text)

    def _write(self, text: str) -> None:
        with self._lock:
            try:
                self._stream.write(text + "\n")
                self._stream.flush()
            except (OSError, ValueError):
                pass  # a closed console must not take the stack down
