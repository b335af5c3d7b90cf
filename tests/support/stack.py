"""The real local stack (`python -m reclift_local run`) in a subprocess, as `make run` starts it."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import boto3
import requests

from reclift_local.sign import DEV_API_SECRET
from tests.support.shopify import session_token, webhook_request

ROOT = Path(__file__).resolve().parents[2]


class StackFailed(RuntimeError):
    pass


@dataclass
class RunningStack:
    url: str
    state: dict[str, Any]
    log: Path
    process: subprocess.Popen[bytes]

    def client(self, service: Any) -> Any:
        return boto3.client(
            service,
            endpoint_url=self.state["dynamodb_endpoint" if service == "dynamodb" else "moto_endpoint"],
            region_name=self.state["region"],
            aws_access_key_id="testing",
            aws_secret_access_key="testing",
        )

    def resource(self, logical_id: str) -> str:
        return str(self.state["resources"][logical_id])

    def command(self, *args: str, timeout: float = 60) -> subprocess.CompletedProcess[str]:
        """`python -m reclift_local <args>` against this stack (what `make invoke` and `make redrive` run)."""
        return subprocess.run(
            [sys.executable, "-m", "reclift_local", *args, "--state-file", str(self.log.with_name("stack.json"))],
            cwd=ROOT,
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )

    def status(self) -> dict[str, Any]:
        response = requests.get(f"{self.url}/_local/status", timeout=10)
        response.raise_for_status()
        status: dict[str, Any] = response.json()
        return status

    def queue_depth(self, logical_id: str) -> int:
        attributes = self.client("sqs").get_queue_attributes(
            QueueUrl=self.resource(logical_id),
            AttributeNames=["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"],
        )["Attributes"]
        return int(attributes["ApproximateNumberOfMessages"]) + int(attributes["ApproximateNumberOfMessagesNotVisible"])


@contextmanager
def running_stack(
    state_dir: Path, *, extra_env: dict[str, str] | None = None, startup_seconds: float = 90, database: str = "moto"
) -> Iterator[RunningStack]:
    """`database="dynamodb-local"` runs the stack's tables on AWS's DynamoDB Local (`make run DB=dynamodb-local`)."""
    state_file = state_dir / "stack.json"
    log = state_dir / "stack.log"
    env = {**os.environ, "SHOPIFY_API_SECRET": DEV_API_SECRET, **(extra_env or {})}
    with log.open("wb") as out:
        process = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "reclift_local",
                "run",
                "--port",
                "0",
                "--state-file",
                str(state_file),
                "--quiet",
                "--db",
                database,
            ],
            cwd=ROOT,
            stdout=out,
            stderr=subprocess.STDOUT,
            env=env,
        )
    try:
        deadline = time.monotonic() + startup_seconds
        while not state_file.exists():  # written only once everything is ready
            if process.poll() is not None or time.monotonic() > deadline:
                raise StackFailed(f"the local stack did not start:\n{log.read_text()[-4000:]}")
            time.sleep(0.05)
        state = json.loads(state_file.read_text())
        yield RunningStack(url=state["url"], state=state, log=log, process=process)
    finally:
        if process.poll() is None:
            process.send_signal(signal.SIGTERM)
            try:
                process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()


def deliver_webhook(
    stack: RunningStack, shop: str, body: bytes, *, topic: str = "orders/create", timeout: float = 10
) -> None:
    """`body` delivered as Shopify delivers a webhook (signed), and accepted."""
    headers, signed = webhook_request(shop, body, topic=topic)
    response = requests.post(f"{stack.url}/webhooks/{topic}", data=signed, headers=dict(headers), timeout=timeout)
    assert response.status_code == 200, response.text


def admin_get(stack: RunningStack, shop: str, path: str, *, timeout: float = 10) -> dict[str, Any]:
    """An admin route's answer, asked with the shop's session token as the embedded app asks it."""
    response = requests.get(
        f"{stack.url}{path}", headers={"authorization": f"Bearer {session_token(shop)}"}, timeout=timeout
    )
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


def process_alive(pid: int, *, running: bytes = b"") -> bool:
    """True while the process exists and is not a zombie (an orphan's zombie may linger in a container), and, given
    `running`, its command line contains it (a pid may have been reused by another process)."""
    try:
        status = Path(f"/proc/{pid}/status").read_text()
        command = Path(f"/proc/{pid}/cmdline").read_bytes() if running else b""
    except FileNotFoundError:
        return False
    except OSError:
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return False
        return True  # it exists; unreadable, its command line cannot tell a reused pid apart
    state = next((line.split()[1] for line in status.splitlines() if line.startswith("State:")), "")
    return state not in {"Z", "X"} and running in command


T = TypeVar("T")


def wait_for_value(
    read: Callable[[], T], expected: object, timeout: float = 30, *, interval: float = 0.1, message: str = "the value"
) -> T:
    """Poll until `read()` equals `expected`; return it. On time out the assertion shows what was read last beside
    what was expected (for mappings, only the keys that differ), so a run that failed says how."""
    deadline = time.monotonic() + timeout
    while True:
        value = read()
        if value == expected:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout} s waiting for {message}: {difference(value, expected)}")
        time.sleep(interval)


def difference(read: object, expected: object) -> str:
    if isinstance(read, Mapping) and isinstance(expected, Mapping):
        absent = "<absent>"
        keys = sorted(set(read) | set(expected), key=str)
        pairs = {key: (read.get(key, absent), expected.get(key, absent)) for key in keys}
        return f"(read, expected) differ at { ({key: pair for key, pair in pairs.items() if pair[0] != pair[1]}) }"
    return f"read {read!r}, expected {expected!r}"


def wait_for(condition: Any, timeout: float = 30, *, interval: float = 0.1, message: str = "condition") -> Any:
    """Poll until `condition()` returns something truthy; return it."""
    deadline = time.monotonic() + timeout
    while True:
        value = condition()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout} s waiting for {message}")
        time.sleep(interval)
