"""`invoke` and the other commands that talk to a running stack through its `/_local/` control routes."""

from __future__ import annotations

import json
import sys
import time
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TextIO

from .stack import read_state

EXIT_OK = 0
EXIT_FAILED = 1
EXIT_USAGE = 2


class ClientError(Exception):
    def __init__(self, message: str, code: int = EXIT_USAGE) -> None:
        super().__init__(message)
        self.code = code


@dataclass
class StackClient:
    url: str
    state: dict[str, Any]

    @classmethod
    def connect(cls, state_file: Path) -> StackClient:
        state = read_state(state_file)
        if state is None:
            raise ClientError(f"the local stack is not running (no {state_file}); start it with `make run`")
        client = cls(str(state["url"]), state)
        try:
            client.request("GET", "/_local/health", timeout=5)
        except ClientError:
            raise ClientError(
                f"the local stack is not running ({state_file} is stale: nothing answers on "
                f"{client.url}); start it with `make run`"
            ) from None
        return client

    def request(self, method: str, path: str, payload: Any = None, timeout: float = 960) -> tuple[int, Any]:
        data = None if payload is None else json.dumps(payload).encode()
        req = urllib.request.Request(  # noqa: S310 - the stack's own loopback URL
            self.url + path, data=data, method=method, headers={"content-type": "application/json"}
        )
        try:
            with urllib.request.urlopen(req, timeout=timeout) as response:  # noqa: S310
                return int(response.status), json.loads(response.read() or b"null")
        except urllib.error.HTTPError as exc:
            body = exc.read()
            try:
                return exc.code, json.loads(body or b"null")
            except ValueError:
                return exc.code, {"message": body.decode("utf-8", "replace")}
        except (urllib.error.URLError, OSError) as exc:
            raise ClientError(f"cannot reach the local stack at {self.url}: {exc}") from exc

    def functions(self) -> dict[str, Any]:
        functions = self.state.get("functions") or {}
        return functions if isinstance(functions, dict) else {}


@dataclass(frozen=True)
class WorkScope:
    """What a scheduled run sets in motion: the function, the queues it fans out to (and theirs, in turn), their
    consumers and their DLQs. Traffic elsewhere in the stack neither delays nor fails the run."""

    functions: frozenset[str]
    queues: frozenset[str]

    @classmethod
    def of(cls, function: str, functions: dict[str, Any]) -> WorkScope:
        names, queues, pending = {function}, set(), [function]
        while pending:
            for queue in functions.get(pending.pop(), {}).get("sends_to", []):
                if queue in queues:
                    continue
                queues.add(queue)
                for consumer, described in functions.items():
                    if queue in described.get("sqs", []) and consumer not in names:
                        names.add(consumer)
                        pending.append(consumer)
        return cls(frozenset(names), frozenset(queues))


def _totals(status: dict[str, Any], scope: WorkScope) -> tuple[dict[str, tuple[int, int, int]], dict[str, int]]:
    functions = {
        name: (int(s.get("invocations", 0)), int(s.get("errors", 0)), int(s.get("failed_records", 0)))
        for name, s in (status.get("functions") or {}).items()
        if name in scope.functions
    }
    queues = status.get("queues") or {}
    dlqs = {queues[name]["dlq"] for name in scope.queues if queues.get(name, {}).get("dlq")}
    depths = {
        name: int(q["visible"]) + int(q["inFlight"]) + int(q["delayed"]) for name, q in queues.items() if name in dlqs
    }
    return functions, depths


def _idle(status: dict[str, Any], scope: WorkScope) -> bool:
    return all(
        not q.get("busy") and q["visible"] == 0 and q["inFlight"] == 0 and q["delayed"] == 0
        for name, q in (status.get("queues") or {}).items()
        if name in scope.queues
    )


def wait_until_idle(
    client: StackClient, timeout: float, scope: WorkScope, checks: int = 4, interval: float = 0.25
) -> dict[str, Any]:
    """Wait until the scope's queues are empty and not being processed, several checks in a row."""
    deadline = time.monotonic() + timeout
    streak = 0
    while True:
        status = client.request("GET", "/_local/status")[1]
        streak = streak + 1 if _idle(status, scope) else 0
        if streak >= checks:
            return dict(status)
        if time.monotonic() > deadline:
            raise ClientError(f"the work was not done after {timeout:.0f} s", EXIT_FAILED)
        time.sleep(interval)


def invoke(
    function: str,
    event_file: str | None,
    state_file: Path,
    *,
    wait_timeout: float = 900,
    out: TextIO = sys.stdout,
    err: TextIO = sys.stderr,
) -> int:
    try:
        return _invoke(function, event_file, state_file, wait_timeout, out, err)
    except ClientError as exc:
        print(f"reclift-local invoke: {exc}", file=err)
        return exc.code


def _invoke(
    function: str, event_file: str | None, state_file: Path, wait_timeout: float, out: TextIO, err: TextIO
) -> int:
    client = StackClient.connect(state_file)
    functions = client.functions()
    if function not in functions:
        names = ", ".join(sorted(functions))
        raise ClientError(f"unknown function {function!r}; the template's functions are: {names}")
    if event_file is not None:
        try:
            text = sys.stdin.read() if event_file == "-" else Path(event_file).read_text(encoding="utf-8")
            event = json.loads(text)
        except (OSError, ValueError) as exc:
            raise ClientError(f"cannot read the event {event_file}: {exc}") from exc
        status, payload = client.request("POST", f"/_local/invoke/{function}", event)
        return _print_outcome(payload, status, out, err)
    if not functions[function].get("scheduled"):
        raise ClientError(f"{function} needs --event (it is not a scheduled function)")

    started = time.monotonic()
    scope = WorkScope.of(function, functions)
    before_functions, before_dlqs = _totals(client.request("GET", "/_local/status")[1], scope)
    status, payload = client.request("POST", f"/_local/schedule/{function}")
    code = _print_outcome(payload, status, out, err)
    after = wait_until_idle(client, wait_timeout, scope)
    after_functions, after_dlqs = _totals(after, scope)

    failures: list[str] = []
    lines: list[str] = []
    for name, (invocations, errors, failed) in sorted(after_functions.items()):
        b_inv, b_err, b_failed = before_functions.get(name, (0, 0, 0))
        if invocations - b_inv:
            lines.append(
                f"  {name}: {invocations - b_inv} invocation(s), {errors - b_err} error(s), "
                f"{failed - b_failed} failed record(s)"
            )
        if errors - b_err or failed - b_failed:
            failures.append(f"{name} failed {errors - b_err} invocation(s) and {failed - b_failed} record(s)")
    for name, depth in sorted(after_dlqs.items()):
        if depth > before_dlqs.get(name, 0):
            failures.append(f"{name} gained {depth - before_dlqs.get(name, 0)} message(s)")
    print(f"{function}: scheduled run and its fan-out done in {time.monotonic() - started:.1f} s", file=err)
    for line in lines:
        print(line, file=err)
    for failure in failures:
        print(f"  FAILED: {failure}", file=err)
    return EXIT_FAILED if failures or code else EXIT_OK


def _print_outcome(payload: Any, status: int, out: TextIO, err: TextIO) -> int:
    if not isinstance(payload, dict) or ("result" not in payload and "error" not in payload):
        raise ClientError(f"unexpected answer from the stack ({status}): {payload}", EXIT_FAILED)
    if "error" in payload:
        print(json.dumps(payload["error"], indent=2), file=out)
        print(f"{payload.get('requestId')}: the function failed", file=err)
        return EXIT_FAILED
    print(json.dumps(payload["result"], indent=2), file=out)
    return EXIT_OK


def simple_command(path: str, method: str, state_file: Path, out: TextIO = sys.stdout, err: TextIO = sys.stderr) -> int:
    try:
        client = StackClient.connect(state_file)
        status, payload = client.request(method, path)
    except ClientError as exc:
        print(f"reclift-local: {exc}", file=err)
        return exc.code
    print(json.dumps(payload, indent=2), file=out)
    return EXIT_OK if status < 400 else EXIT_FAILED
