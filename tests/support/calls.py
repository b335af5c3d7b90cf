"""AWS requests counted where botocore makes them: boto3, PynamoDB and the Powertools idempotency layer all end in
`BaseClient._make_api_call`. Shared by the tests and the benchmarks."""

from __future__ import annotations

import contextlib
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator, Mapping
from contextvars import ContextVar
from dataclasses import dataclass, field
from typing import Any

from botocore.client import BaseClient

PATCHED = "_make_api_call"  # the botocore method every AWS request goes through
# The counter whose `counting()` block the current context is in.
_COUNTING: ContextVar[ApiCallCounter | None] = ContextVar("api_call_counter", default=None)


@dataclass(frozen=True)
class ApiCall:
    service: str
    operation: str
    target: str  # the table (logical id) or queue a request names; "-" when it names none


@dataclass
class ApiCallCounter:
    """Counts every AWS request made through botocore inside its `counting()` block, by the thread that entered it
    and by the threads that run in a copy of its context (the learning read's pages read ahead, `read_ahead`); not by
    the local stack's own threads (its pollers), which run in theirs.

    boto3, PynamoDB 6 and the Powertools idempotency layer all end in `BaseClient._make_api_call` (one call per
    logical request; botocore's own retries happen below it, PynamoDB's above it and are counted).
    """

    names: Mapping[str, str] = field(default_factory=dict)  # physical table name or queue URL → logical id
    calls: Counter[ApiCall] = field(default_factory=Counter)
    items: Counter[ApiCall] = field(default_factory=Counter)  # items returned by Query, Scan and batch/transact gets
    seconds: float = 0.0  # time spent inside the counted requests
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def record(self, service: str, operation: str, params: Mapping[str, Any], response: Any, seconds: float) -> None:
        if _COUNTING.get() is not self:
            return
        with self._lock:
            self._record(ApiCall(service, operation, self._target(params)), response, seconds)

    def _record(self, call: ApiCall, response: Any, seconds: float) -> None:
        self.calls[call] += 1
        self.seconds += seconds
        if isinstance(response, Mapping):
            if isinstance(response.get("Count"), int):
                self.items[call] += response["Count"]
            elif isinstance(response.get("Responses"), Mapping):
                self.items[call] += sum(len(rows) for rows in response["Responses"].values())
            elif isinstance(response.get("Responses"), list):
                self.items[call] += len(response["Responses"])
            elif isinstance(response.get("Item"), Mapping):
                self.items[call] += 1

    def _target(self, params: Mapping[str, Any]) -> str:
        names: set[str] = set()
        if "TableName" in params:
            names.add(str(params["TableName"]))
        if "QueueUrl" in params:
            names.add(str(params["QueueUrl"]))
        for key in ("RequestItems",):
            if isinstance(params.get(key), Mapping):
                names.update(str(table) for table in params[key])
        for item in params.get("TransactItems") or []:
            for action in item.values():
                if isinstance(action, Mapping) and "TableName" in action:
                    names.add(str(action["TableName"]))
        return "+".join(sorted(self.names.get(name, name) for name in names)) or "-"

    @contextlib.contextmanager
    def counting(self) -> Iterator[Block]:
        """Count the calls made inside the block; yields what the block alone made (filled in at its end)."""
        original: Callable[..., Any] = vars(BaseClient)[PATCHED]
        counter = self

        def counted(client: Any, operation_name: str, api_params: Mapping[str, Any]) -> Any:
            response = None
            started = time.perf_counter()
            try:
                response = original(client, operation_name, api_params)
                return response
            finally:
                elapsed = time.perf_counter() - started
                service = client.meta.service_model.service_name
                counter.record(service, operation_name, api_params, response, elapsed)

        calls_before, items_before, seconds_before = Counter(self.calls), Counter(self.items), self.seconds
        token = _COUNTING.set(self)
        setattr(BaseClient, PATCHED, counted)
        block = Block()
        try:
            yield block
        finally:
            setattr(BaseClient, PATCHED, original)
            _COUNTING.reset(token)
            block.calls.update(self.calls - calls_before)
            block.items.update(self.items - items_before)
            block.aws_seconds = self.seconds - seconds_before


@dataclass
class Block:
    """The AWS requests of one counted block, and the items they returned."""

    calls: Counter[ApiCall] = field(default_factory=Counter)
    items: Counter[ApiCall] = field(default_factory=Counter)
    aws_seconds: float = 0.0  # time spent waiting on those requests (botocore call to response)


def calls_by_operation(calls: Counter[ApiCall], service: str | None = None) -> dict[str, int]:
    """`{"dynamodb:Query@EventsTable": 1, ...}`, sorted, for a results file."""
    out: dict[str, int] = {}
    for call, count in sorted(calls.items(), key=lambda item: (item[0].service, item[0].target, item[0].operation)):
        if service is None or call.service == service:
            out[f"{call.service}:{call.operation}@{call.target}"] = count
    return out
