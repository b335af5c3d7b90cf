"""`python -m benchmarks [name ...] [--quick]`: run every benchmark, or those named.

A benchmark is a module of this package with a `NAME` and a `run(quick) -> list[str]` (its summary lines) that
writes `results/<NAME>.json` and `.png`; they are found without importing them.

Each benchmark runs in a fresh interpreter: the handlers cache their clients per process (as on Lambda), so two
benchmarks with two emulators must not share one.
"""

from __future__ import annotations

import argparse
import importlib
import re
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

FIRST = ("order_requests", "webhook_receiver", "burst")
_BENCHMARK = re.compile(r"^NAME = .*^def run\(quick: bool\) -> list\[str\]:", re.MULTILINE | re.DOTALL)


def benchmarks() -> list[str]:
    """Every module of this package with a `NAME` and a `run(quick)`, found without importing them."""
    found = {
        path.stem
        for path in Path(__file__).resolve().parent.glob("*.py")
        if not path.stem.startswith("_") and _BENCHMARK.search(path.read_text(encoding="utf-8"))
    }
    return [name for name in FIRST if name in found] + sorted(found - set(FIRST))


def run_here(name: str, quick: bool) -> None:
    module = importlib.import_module(f"benchmarks.{name}")
    run: Callable[[bool], list[str]] = module.run
    started = time.monotonic()
    summary = run(quick)
    print("\n".join(summary))
    print(f"  ({name} took {time.monotonic() - started:.0f} s; results in benchmarks/results/{name}.json and .png)")
    sys.stdout.flush()


def main(argv: list[str] | None = None) -> int:
    known = benchmarks()
    parser = argparse.ArgumentParser(prog="python -m benchmarks", description=__doc__)
    parser.add_argument("names", nargs="*", metavar="name", help=f"benchmarks to run (default: all of {known})")
    parser.add_argument("--quick", action="store_true", help="a smaller configuration, for a fast check")
    parser.add_argument("--in-process", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    unknown = [name for name in args.names if name not in known]
    if unknown:
        parser.error(f"unknown benchmark(s) {', '.join(unknown)}; choose from {', '.join(known)}")
    names = args.names or known
    if args.in_process:
        for name in names:
            run_here(name, args.quick)
        return 0

    started = time.monotonic()
    failed: list[str] = []
    for name in names:
        print(f"== {name}{' (quick)' if args.quick else ''}", flush=True)
        command = [sys.executable, "-m", "benchmarks", "--in-process", name, *(["--quick"] if args.quick else [])]
        if subprocess.run(command, check=False).returncode != 0:
            failed.append(name)
    print(f"== {len(names) - len(failed)}/{len(names)} benchmarks done in {time.monotonic() - started:.0f} s")
    if failed:
        print(f"failed: {', '.join(failed)}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
