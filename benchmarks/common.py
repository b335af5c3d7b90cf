"""What every benchmark shares: results files, machine info, percentiles, AWS request counting, quiet handlers."""

from __future__ import annotations

import contextlib
import datetime as dt
import json
import math
import os
import platform
import subprocess
import sys
import threading
import time
import uuid
from collections import Counter, defaultdict
from collections.abc import Iterator, Mapping, Sequence
from concurrent.futures import Executor
from dataclasses import dataclass, field
from importlib import metadata
from pathlib import Path
from typing import Any

from botocore.exceptions import ClientError
from tests.support.aws import batch_write
from tests.support.calls import PATCHED, ApiCall, ApiCallCounter, Block, calls_by_operation

from reclift.data.expiring_cache import item_size

ROOT = Path(__file__).resolve().parents[1]
RESULTS_DIR = Path(__file__).resolve().parent / "results"
REGION = "us-east-1"
ACCOUNT_ID = "123456789012"
PACKAGES = ("boto3", "botocore", "pynamodb", "aws-lambda-powertools", "moto", "pydantic", "requests")


# ---------------------------------------------------------------------------------------------------- results
def machine_info() -> dict[str, Any]:
    """Where and when the figures were measured."""
    versions: dict[str, str] = {}
    for package in PACKAGES:
        try:
            versions[package] = metadata.version(package)
        except metadata.PackageNotFoundError:
            versions[package] = "absent"
    return {
        "python": platform.python_version(),
        "implementation": platform.python_implementation(),
        "platform": platform.platform(terse=True),
        "machine": platform.machine(),
        "cpu_count": os.cpu_count(),
        "date": dt.datetime.now(dt.UTC).replace(microsecond=0).isoformat(),
        "git_commit": _git("rev-parse", "--short", "HEAD"),
        "packages": versions,
    }


def _git(*args: str) -> str | None:
    try:
        done = subprocess.run(["git", *args], cwd=ROOT, capture_output=True, text=True, timeout=10, check=False)
    except (OSError, subprocess.SubprocessError):
        return None
    return done.stdout.strip() or None


def rounded(value: Any, digits: int = 3) -> Any:
    """Floats rounded (recursively), so results files stay small and diff well: to `digits` decimals, and a float
    under 1 to `digits` significant ones (a price per capacity unit, $0.000000125, is not 0)."""
    if isinstance(value, float):
        if not math.isfinite(value):
            return None
        if value == 0 or abs(value) >= 1:
            return round(value, digits)
        return round(value, max(digits, digits - 1 - math.floor(math.log10(abs(value)))))
    if isinstance(value, Mapping):
        return {str(k): rounded(v, digits) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [rounded(v, digits) for v in value]
    return value


def write_results(name: str, *, description: str, config: Mapping[str, Any], figures: Mapping[str, Any]) -> Path:
    RESULTS_DIR.mkdir(parents=True, exist_ok=True)
    path = RESULTS_DIR / f"{name}.json"
    document = {
        "benchmark": name,
        "description": description,
        "config": rounded(dict(config)),
        "machine": machine_info(),
        "figures": rounded(dict(figures)),
    }
    path.write_text(json.dumps(document, indent=2, sort_keys=False) + "\n", encoding="utf-8")
    return path


def read_results(name: str) -> dict[str, Any]:
    """A benchmark's saved results (`write_results`): what another benchmark builds on."""
    saved: dict[str, Any] = json.loads((RESULTS_DIR / f"{name}.json").read_text(encoding="utf-8"))
    return saved


def plot_path(name: str) -> Path:
    RESULTS_DIR.mkdir(parents=True, exist_ok=True)
    return RESULTS_DIR / f"{name}.png"


def pyplot() -> Any:
    """matplotlib's pyplot on the Agg backend (no display needed)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def save_figure(fig: Any, name: str) -> Path:
    path = plot_path(name)
    fig.tight_layout()
    # No timestamp or software version in the PNG's metadata: the file only changes when the figures do.
    fig.savefig(path, dpi=90, metadata={"Software": None})
    pyplot().close(fig)
    return path


# ---------------------------------------------------------------------------------------------------- statistics
def percentile(values: Sequence[float], q: float) -> float:
    """The q-th percentile (0–100), linear between closest ranks (numpy's default)."""
    if not values:
        return math.nan
    ordered = sorted(values)
    position = (len(ordered) - 1) * q / 100
    low = math.floor(position)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (position - low)


def latency_summary(values_ms: Sequence[float]) -> dict[str, Any]:
    return {
        "n": len(values_ms),
        "p50_ms": percentile(values_ms, 50),
        "p90_ms": percentile(values_ms, 90),
        "p99_ms": percentile(values_ms, 99),
        "max_ms": max(values_ms) if values_ms else math.nan,
        "mean_ms": sum(values_ms) / len(values_ms) if values_ms else math.nan,
    }


def median(values: Sequence[float]) -> float:
    return percentile(values, 50)


def ratio(numerator: float, denominator: float) -> float:
    return numerator / denominator if denominator > 0 else math.nan


# ---------------------------------------------------------------------------------------------------- AWS requests
# Counted where botocore makes them; the same counter serves the tests (tests/support/calls.py).

__all__ = ["ApiCall", "ApiCallCounter", "Block", "calls_by_operation"]


# ---------------------------------------------------------------------------------------------------- handlers
@contextlib.contextmanager
def quiet_stdout() -> Iterator[None]:
    """Send the handlers' JSON logs and EMF metrics to /dev/null at the file-descriptor level.

    Powertools' Logger binds `sys.stdout` when it is created, so swapping `sys.stdout` would not silence it;
    the writes still happen (and cost what they cost on Lambda), they just do not reach the terminal.
    """
    sys.stdout.flush()
    saved = os.dup(1)
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, 1)
    try:
        yield
    finally:
        sys.stdout.flush()
        os.dup2(saved, 1)
        os.close(saved)
        os.close(devnull)


class WarmFunction:
    """One function's handler loaded once, then invoked like a warm Lambda execution environment.

    Unlike `EmulatedAws.invoke` (which loads the module on each call) this keeps the handler module, so the
    time of an invocation is the handler's own: what a warm Lambda bills.
    """

    def __init__(self, aws: Any, logical_id: str) -> None:
        from reclift_local.worker import function_env, load_handler

        self._function_env = function_env
        self.spec = aws.stack.specs[logical_id]
        self.env: dict[str, str] = aws.environment(logical_id)
        with function_env(self.env):
            self.handler = load_handler(self.spec.code_dir, self.spec.handler, self.spec.name)

    def __call__(self, event: Any) -> tuple[Any, float]:
        """The handler's response and the seconds the handler took."""
        from reclift_local.worker import LambdaContext

        context = LambdaContext(
            request_id=str(uuid.uuid4()),
            invoked_function_arn=f"arn:aws:lambda:{REGION}:{ACCOUNT_ID}:function:{self.spec.name}",
            deadline_ms=int(time.time() * 1000) + self.spec.timeout * 1000,
        )
        with self._function_env(self.env):
            started = time.perf_counter()
            response = self.handler(event, context)
            return response, time.perf_counter() - started


def logical_names(aws: Any) -> dict[str, str]:
    """Physical table names and queue URLs of the emulated stack → their logical ids."""
    return {physical: logical for logical, physical in aws.stack.resources().items()}


def job_event(job: Mapping[str, Any]) -> dict[str, Any]:
    """An SQS batch of one queued job, as Lambda's poller hands it to the function."""
    from reclift_local.pollers import sqs_record

    message = {"MessageId": "bench", "ReceiptHandle": "r", "Body": json.dumps(job), "Attributes": {}}
    return {"Records": [sqs_record(message, f"arn:aws:sqs:{REGION}:{ACCOUNT_ID}:q", REGION)]}


def run_job(
    function: WarmFunction, counter: ApiCallCounter, meter: CapacityMeter, job: Mapping[str, Any]
) -> tuple[Block, Capacity, float]:
    """One shop's queued job through the warm function, with its AWS requests counted, their DynamoDB capacity
    units metered and its logs silenced: the block of requests, the units and the handler's seconds. The job must
    succeed."""
    with counted_and_metered(counter, meter) as (block, capacity), quiet_stdout():
        response, seconds = function(job_event(job))
    assert response == {"batchItemFailures": []}, response
    return block, capacity, seconds


# ---------------------------------------------------------------------------------------------------- seeding
def seeding_client(aws: Any) -> Any:
    """A DynamoDB client on the emulated stack with a connection for each seeding thread."""
    import boto3
    from botocore.config import Config

    return boto3.client(
        "dynamodb",
        endpoint_url=aws.stack.dynamodb_endpoint,
        region_name=REGION,
        config=Config(max_pool_connections=16),
    )


def put_items(pool: Executor, dynamodb: Any, table: str, items: Sequence[dict[str, Any]]) -> int:
    """`items` (DynamoDB JSON) written to `table` 25 to a request across the pool's threads, what DynamoDB leaves
    unprocessed sent again; returns how many were written."""
    puts = [{"PutRequest": {"Item": item}} for item in items]
    chunks = [puts[start : start + 25] for start in range(0, len(puts), 25)]
    list(pool.map(lambda chunk: batch_write(dynamodb, table, chunk), chunks))
    return len(puts)


# ---------------------------------------------------------------------------------------------------- capacity units
# What AWS bills DynamoDB: read and write capacity units, asked of the engine (ReturnConsumedCapacity INDEXES) on every
# request. DynamoDB Local undercounts transactions, so a TransactWriteItems is costed as AWS bills it: per item
# written, its size in 1 KB units (and each index it lands in), times 2.
READ_OPERATIONS = frozenset({"GetItem", "Query", "Scan", "BatchGetItem", "TransactGetItems"})
WRITE_OPERATIONS = frozenset({"PutItem", "UpdateItem", "DeleteItem", "BatchWriteItem", "TransactWriteItems"})
TRANSACTION_FACTOR = 2


@dataclass
class Capacity:
    """The DynamoDB requests of one metered block and the capacity units they consumed, per `Operation@table`."""

    requests: Counter[str] = field(default_factory=Counter)
    rcu: defaultdict[str, float] = field(default_factory=lambda: defaultdict(float))
    wcu: defaultdict[str, float] = field(default_factory=lambda: defaultdict(float))
    # Write units landing on each item's table partition (`table|pk|sk`; index writes are not in it): what a hot key is.
    item_wcu: defaultdict[str, float] = field(default_factory=lambda: defaultdict(float))
    # Seconds spent waiting on DynamoDB (here DynamoDB Local): a handler's time less this is its own compute.
    dynamodb_seconds: float = 0.0

    @property
    def read_units(self) -> float:
        return sum(self.rcu.values())

    @property
    def write_units(self) -> float:
        return sum(self.wcu.values())

    def summary(self) -> dict[str, Any]:
        return {
            "requests": sum(self.requests.values()),
            "rcu": self.read_units,
            "wcu": self.write_units,
            "by_request": dict(sorted(self.requests.items())),
            "rcu_by_request": {k: v for k, v in sorted(self.rcu.items()) if v},
            "wcu_by_request": {k: v for k, v in sorted(self.wcu.items()) if v},
            "dynamodb_seconds": self.dynamodb_seconds,
            "wcu_by_item": dict(sorted(self.item_wcu.items())),
        }

    def units(self, operations: int = 1) -> dict[str, Any]:
        """Read and write units per operation when the block ran `operations` of them, in total and by
        `Request@table`: the fields a benchmark's results row gains."""
        return {
            "rcu": self.read_units / operations,
            "wcu": self.write_units / operations,
            "rcu_by_request": {k: v / operations for k, v in sorted(self.rcu.items()) if v},
            "wcu_by_request": {k: v / operations for k, v in sorted(self.wcu.items()) if v},
        }


class CapacityMeter:
    """Meters every DynamoDB request made through botocore (any thread) while `metering()` is active."""

    def __init__(self, names: Mapping[str, str] | None = None) -> None:
        self.names = dict(names or {})
        self._tables: dict[str, Any] = {}
        self._lock = threading.Lock()

    def _label(self, operation: str, tables: str) -> str:
        return f"{operation}@{'+'.join(self.names.get(table, table) for table in tables.split('+'))}"

    def _describe(self, original: Any, client: Any, table: str) -> Any:
        if table not in self._tables:
            self._tables[table] = original(client, "DescribeTable", {"TableName": table})["Table"]
        return self._tables[table]

    def _key(self, original: Any, client: Any, table: str, body: Mapping[str, Any]) -> dict[str, Any]:
        return dict(body.get("Key") or {}) or {
            name["AttributeName"]: body["Item"][name["AttributeName"]]
            for name in self._describe(original, client, table)["KeySchema"]
        }

    def _item_label(self, table: str, key: Mapping[str, Any]) -> str:
        return "|".join([self.names.get(table, table), *(str(next(iter(v.values()))) for _, v in sorted(key.items()))])

    def _transaction_units(
        self, original: Any, client: Any, actions: Sequence[Mapping[str, Any]], capacity: Capacity
    ) -> dict[str, float]:
        """Write units of a committed transaction as AWS bills it: each item (read back, unmetered) in 1 KB units,
        plus the indexes it is projected into, times 2."""
        units: dict[str, float] = {}
        for action in actions:
            ((kind, body),) = action.items()
            table = str(body["TableName"])
            key = self._key(original, client, table, body)
            item = original(client, "GetItem", {"TableName": table, "Key": key, "ConsistentRead": True}).get("Item")
            size = item_size(item) if item else 0
            cost = float(max(1, -(-size // 1024)))
            capacity.item_wcu[self._item_label(table, key)] += TRANSACTION_FACTOR * cost
            for index in self._describe(original, client, table).get("GlobalSecondaryIndexes", []) if item else []:
                index_keys = [part["AttributeName"] for part in index["KeySchema"]]
                if all(name in item for name in index_keys):
                    projection = index["Projection"]["ProjectionType"]
                    if projection == "ALL":
                        cost += max(1, -(-size // 1024))
                    else:
                        kept = {*index_keys, *key, *index["Projection"].get("NonKeyAttributes", [])}
                        cost += max(1, -(-item_size({n: v for n, v in item.items() if n in kept}) // 1024))
            label = self._label(f"TransactWriteItems:{kind}", table)
            units[label] = units.get(label, 0.0) + TRANSACTION_FACTOR * cost
        return units

    @contextlib.contextmanager
    def metering(self) -> Iterator[Capacity]:
        from botocore.client import BaseClient

        original: Any = vars(BaseClient)[PATCHED]
        meter = self
        capacity = Capacity()

        def metered(client: Any, operation: str, params: Mapping[str, Any]) -> Any:
            if client.meta.service_model.service_name != "dynamodb" or operation not in (
                READ_OPERATIONS | WRITE_OPERATIONS
            ):
                return original(client, operation, params)
            single = operation in ("PutItem", "UpdateItem", "DeleteItem")
            started = time.perf_counter()
            try:
                response = original(client, operation, {**params, "ReturnConsumedCapacity": "INDEXES"})
            except ClientError as exc:
                with meter._lock:
                    capacity.dynamodb_seconds += time.perf_counter() - started
                # A refused conditional write is billed too: one unit for the small items the functions condition.
                if single and exc.response.get("Error", {}).get("Code") == "ConditionalCheckFailedException":
                    table = str(params["TableName"])
                    with meter._lock:
                        capacity.requests[meter._label(operation, table)] += 1
                        capacity.wcu[meter._label(f"{operation}:refused", table)] += 1.0
                        key = meter._key(original, client, table, params)
                        capacity.item_wcu[meter._item_label(table, key)] += 1.0
                raise
            tables = sorted(
                {str(params["TableName"])}
                if "TableName" in params
                else {str(t) for t in params.get("RequestItems") or {}}
                | {str(next(iter(a.values()))["TableName"]) for a in params.get("TransactItems") or []}
            )
            with meter._lock:
                capacity.dynamodb_seconds += time.perf_counter() - started
                capacity.requests[meter._label(operation, "+".join(tables))] += 1
                if operation == "TransactWriteItems":
                    actions = params["TransactItems"]
                    for label, units in meter._transaction_units(original, client, actions, capacity).items():
                        capacity.wcu[label] += units
                    return response
                consumed = response.get("ConsumedCapacity") or []
                for entry in consumed if isinstance(consumed, list) else [consumed]:
                    label = meter._label(operation, str(entry.get("TableName", "+".join(tables))))
                    units = float(entry.get("CapacityUnits") or 0.0)
                    if operation in READ_OPERATIONS:
                        capacity.rcu[label] += units
                    else:
                        capacity.wcu[label] += units
                    if single:
                        table = str(params["TableName"])
                        on_table = float((entry.get("Table") or {}).get("CapacityUnits") or units)
                        capacity.item_wcu[meter._item_label(table, meter._key(original, client, table, params))] += (
                            on_table
                        )
            return response

        setattr(BaseClient, PATCHED, metered)
        try:
            yield capacity
        finally:
            setattr(BaseClient, PATCHED, original)


@contextlib.contextmanager
def counted_and_metered(counter: ApiCallCounter, meter: CapacityMeter) -> Iterator[tuple[Block, Capacity]]:
    """The AWS requests of a block counted and its DynamoDB capacity units metered at once. The meter goes inside
    the counter, so the reads it makes itself to cost a transaction are neither counted nor billed."""
    with meter.metering() as capacity, counter.counting() as block:
        yield block, capacity
