"""DynamoDB stream event sources: what Lambda's event source mapping does, on a thread per source, against the
emulator's streams (moto server, or DynamoDB Local with `--db dynamodb-local`).

Lambda's rules, as documented for DynamoDB event source mappings: shards are read parents before children, each in
sequence order, one batch at a time; a batch is up to BatchSize records, gathered for up to
MaximumBatchingWindowInSeconds; a failed batch is retried (ReportBatchItemFailures: from the lowest failed sequence
number on) until MaximumRetryAttempts or MaximumRecordAgeInSeconds; BisectBatchOnFunctionError splits a batch whose
invocation failed in two, and one that reported a partial failure at the failed record, neither split counting as a
retry; what is given up on is described on the OnFailure destination (Lambda's invocation record, without the
records: they stay in the stream) and the shard moves on.

What the emulators' Streams APIs do differently from DynamoDB Streams (probed on moto 5.2.5 and DynamoDB Local
2026-01-16), and what this module does about it:
- Both have one shard per table that never closes or splits (no lineage to follow: the code follows it anyway),
  its iterators never expire and can be reused; both cap GetRecords at 1,000 records by default.
- moto gives every table the same shard id and starting sequence number, stamps every record `eventVersion` "1.0"
  and `awsRegion` "us-east-1" whatever the region, sizes `SizeBytes` from its own JSON, accepts any stream ARN that
  names the table (even a made-up label), answers DescribeStream with a 500 once the stream is disabled, and keeps
  every shard iterator it ever issued (one more per GetRecords): an idle shard is polled again with the same
  iterator, which is equivalent on every backend, instead of the new one each empty answer carries.
- moto writes a MODIFY record for a PutItem or UpdateItem that changes nothing; DynamoDB and DynamoDB Local write
  none.
- DynamoDB Local's stream ARNs are `arn:aws:dynamodb:ddblocal:000000000000:...` whatever the region, and it only
  accepts those; its records say `awsRegion` "ddblocal" and round ApproximateCreationDateTime down to the minute (a
  record can look up to 59 s older than it is to MaximumRecordAgeInSeconds); its sequence numbers are 21 zero-padded
  digits, moto's 22 digits: they are compared as numbers.
- boto3 returns ApproximateCreationDateTime as a datetime and binary attributes as bytes: Lambda's events carry
  epoch seconds and base64 text.
Records reach the function as Lambda builds them: `eventVersion` "1.1", the stack's region, the stream ARN the
mapping names (the emulator's own, as `!GetAtt Table.StreamArn` resolves locally).
"""

from __future__ import annotations

import base64
import datetime as dt
import json
import threading
import time
import uuid
from collections import deque
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import boto3
from botocore.exceptions import BotoCoreError, ClientError

from .emulator import AwsClients, Provisioner, client_config
from .output import Output
from .template import ResourceAttrs, StreamSource, TemplateError
from .workers import MAX_PAYLOAD_BYTES, Outcome

GET_RECORDS_LIMIT = 1000  # DynamoDB Streams' own maximum per GetRecords
POLL_INTERVAL = 0.25  # Lambda polls each shard four times a second
SHARD_REFRESH_SECONDS = 10.0
# Lambda's order of a record's keys (as in its sample events), with the stream record's fields in theirs.
_DYNAMODB_KEYS = (
    "ApproximateCreationDateTime",
    "Keys",
    "NewImage",
    "OldImage",
    "SequenceNumber",
    "SizeBytes",
    "StreamViewType",
)

Invoke = Callable[[str, Any], Outcome]
SendFailure = Callable[[str, dict[str, Any]], None]


def streams_client(clients: AwsClients) -> Any:
    """A DynamoDB Streams client on the tables' engine (no type stubs for it in the dev dependencies)."""
    return boto3.client(
        "dynamodbstreams",
        endpoint_url=clients.dynamodb_endpoint or clients.endpoint,
        region_name=clients.region,
        config=client_config(),
    )


# ---------------------------------------------------------------------------------------------- stream ARNs


class StreamArns:
    """`!GetAtt Table.StreamArn` as the emulator knows it (the table's LatestStreamArn), once the table exists.

    Wraps the provisioner's `attrs_of`: before its table is created a stream ARN resolves to a placeholder, which no
    event source can use (`table_of` does not know it).
    """

    def __init__(self, provisioner: Provisioner) -> None:
        self.provisioner = provisioner
        self._arns: dict[str, str | None] = {}  # logical id → LatestStreamArn (None: the table has no stream)

    def attrs_of(self, logical_id: str) -> ResourceAttrs:
        attrs = self.provisioner.attrs_of(logical_id)
        if "StreamArn" in attrs.attrs and logical_id in self.provisioner.tables:
            if logical_id not in self._arns:
                table = self.provisioner.clients.dynamodb.describe_table(TableName=self.provisioner.tables[logical_id])
                self._arns[logical_id] = table["Table"].get("LatestStreamArn")
            arn = self._arns[logical_id]
            if arn:
                attrs.attrs["StreamArn"] = arn
        return attrs

    def table_of(self, stream_arn: str) -> str | None:
        for logical_id, arn in self._arns.items():
            if arn == stream_arn:
                return logical_id
        return None


# --------------------------------------------------------------------------------------------- Lambda's shapes


def _lambda_json(value: Any) -> Any:
    """An attribute value as Lambda's JSON has it: binary as base64 text."""
    if isinstance(value, bytes | bytearray):
        return base64.b64encode(bytes(value)).decode()
    if isinstance(value, dict):
        return {k: _lambda_json(v) for k, v in value.items()}
    if isinstance(value, list | tuple | set):
        return [_lambda_json(v) for v in value]
    return value


def _epoch_seconds(value: Any) -> int | None:
    if isinstance(value, dt.datetime):
        return int(value.timestamp() // 1)
    if isinstance(value, int | float):
        return int(value // 1)
    return None


def stream_record(raw: Mapping[str, Any], stream_arn: str, region: str) -> dict[str, Any]:
    """A GetRecords record as Lambda hands it to the function."""
    source = raw.get("dynamodb") or {}
    dynamodb: dict[str, Any] = {}
    for key in _DYNAMODB_KEYS:
        if key in source:
            dynamodb[key] = _lambda_json(source[key])
    created = _epoch_seconds(source.get("ApproximateCreationDateTime"))
    if created is not None:
        dynamodb["ApproximateCreationDateTime"] = created
    for key, value in source.items():  # anything newer the API adds
        dynamodb.setdefault(key, _lambda_json(value))
    record: dict[str, Any] = {
        "eventID": raw.get("eventID"),
        "eventName": raw.get("eventName"),
        "eventVersion": "1.1",
        "eventSource": "aws:dynamodb",
        "awsRegion": region,
        "dynamodb": dynamodb,
        "eventSourceARN": stream_arn,
    }
    if "userIdentity" in raw:  # deletions by TTL
        record["userIdentity"] = _lambda_json(raw["userIdentity"])
    return record


def sequence_number(record: Mapping[str, Any]) -> str:
    return str(record["dynamodb"]["SequenceNumber"])


def first_failed_index(source: StreamSource, records: list[dict[str, Any]], outcome: Outcome) -> int | None:
    """Where a batch must be retried from, by Lambda's rules (None: the batch succeeded)."""
    if not outcome.ok:
        return 0
    if not source.report_batch_item_failures:
        return None
    result = outcome.result
    if result is None or result == {}:
        return None
    failures = result.get("batchItemFailures") if isinstance(result, dict) else None
    if failures is None:
        return None
    if not isinstance(failures, list):
        return 0
    positions = {sequence_number(r): i for i, r in enumerate(records)}
    indexes: list[int] = []
    for failure in failures:
        identifier = failure.get("itemIdentifier") if isinstance(failure, dict) else None
        # An empty, missing or unknown identifier makes Lambda treat the whole batch as failed.
        if not isinstance(identifier, str) or identifier not in positions:
            return 0
        indexes.append(positions[identifier])
    # Lambda checkpoints at the lowest sequence number reported and retries everything after it.
    return min(indexes) if indexes else None


def _iso(epoch: Any) -> str | None:
    if not isinstance(epoch, int | float):
        return None
    return dt.datetime.fromtimestamp(epoch, dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def failure_record(
    *,
    function_arn: str,
    condition: str,
    shard_id: str,
    stream_arn: str,
    records: list[dict[str, Any]],
    invocations: int,
    outcome: Outcome | None,
) -> dict[str, Any]:
    """Lambda's invocation record for a batch it gave up on (the records themselves stay in the stream)."""
    message: dict[str, Any] = {
        "requestContext": {
            "requestId": outcome.request_id if outcome is not None else str(uuid.uuid4()),
            "functionArn": function_arn,
            "condition": condition,
            "approximateInvokeCount": invocations,
        },
    }
    if outcome is not None:
        response: dict[str, Any] = {"statusCode": 200, "executedVersion": "$LATEST"}
        if not outcome.ok:
            response["functionError"] = "Unhandled"
        message["responseContext"] = response
    now = dt.datetime.now(dt.UTC)
    message["version"] = "1.0"
    message["timestamp"] = now.strftime("%Y-%m-%dT%H:%M:%S.") + f"{now.microsecond // 1000:03d}Z"
    message["DDBStreamBatchInfo"] = {
        "shardId": shard_id,
        "startSequenceNumber": sequence_number(records[0]),
        "endSequenceNumber": sequence_number(records[-1]),
        "approximateArrivalOfFirstRecord": _iso(records[0]["dynamodb"].get("ApproximateCreationDateTime")),
        "approximateArrivalOfLastRecord": _iso(records[-1]["dynamodb"].get("ApproximateCreationDateTime")),
        "batchSize": len(records),
        "streamArn": stream_arn,
    }
    return message


class FailureDestinations:
    """OnFailure destinations of the template: its SQS queues and SNS topics, by ARN."""

    def __init__(self, provisioner: Provisioner) -> None:
        self.provisioner = provisioner

    def check(self, arn: str) -> None:
        if arn not in self.provisioner.topics.values():
            self.provisioner.queue_by_arn(arn)  # raises TemplateError for an ARN the template does not declare

    def send(self, arn: str, message: dict[str, Any]) -> None:
        body = json.dumps(message)
        clients = self.provisioner.clients
        if arn in self.provisioner.topics.values():
            clients.sns.publish(TopicArn=arn, Message=body)
        else:
            clients.sqs.send_message(QueueUrl=self.provisioner.queue_by_arn(arn).url, MessageBody=body)


# ----------------------------------------------------------------------------------------------- checkpoints


class Checkpoints:
    """Where each mapping stands in each shard (the last record settled), kept in a file across restarts.

    Lambda keeps a mapping's place in the stream; DynamoDB Local with a data directory keeps the streams across
    restarts (moto and an in-memory DynamoDB Local start empty): without this file a TRIM_HORIZON mapping would be
    handed the last day's records again at every start.
    """

    def __init__(self, path: Path) -> None:
        self.path = path
        self._lock = threading.Lock()
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
        except (FileNotFoundError, ValueError):
            data = {}
        self._data: dict[str, Any] = data if isinstance(data, dict) else {}

    @staticmethod
    def _key(source: StreamSource) -> str:
        return f"{source.function}.{source.event}"

    def get(self, source: StreamSource) -> dict[str, str]:
        """The shards' checkpoints of this mapping on its stream (none if the stream is another one now)."""
        with self._lock:
            entry = self._data.get(self._key(source)) or {}
            if entry.get("streamArn") != source.stream_arn:
                return {}
            return dict(entry.get("shards") or {})

    def set(self, source: StreamSource, shard_id: str, sequence: str) -> None:
        with self._lock:
            entry = self._data.get(self._key(source)) or {}
            if entry.get("streamArn") != source.stream_arn:
                entry = {"streamArn": source.stream_arn, "shards": {}}
            entry["shards"][shard_id] = sequence
            self._data[self._key(source)] = entry
            self.path.parent.mkdir(parents=True, exist_ok=True)
            tmp = self.path.with_name(self.path.name + ".tmp")
            tmp.write_text(json.dumps(self._data, indent=2) + "\n", encoding="utf-8")
            tmp.replace(self.path)  # atomic: a crash leaves the previous checkpoints, never half a file


# -------------------------------------------------------------------------------------------------- reading


@dataclass
class Shard:
    shard_id: str
    parent_id: str | None
    start: str  # the iterator type to begin with: TRIM_HORIZON or LATEST
    iterator: str | None = None
    last_read: str | None = None  # the sequence number of the last record read (buffered or delivered)
    exhausted: bool = False  # a closed shard read to its end
    buffer: list[dict[str, Any]] = field(default_factory=list)  # read, not yet delivered

    @property
    def done(self) -> bool:
        return self.exhausted and not self.buffer


class StreamReader:
    """A stream's shards, read in order: a child only once its parent is done, each shard in sequence."""

    def __init__(
        self,
        client: Any,
        stream_arn: str,
        starting_position: str,
        region: str,
        checkpoints: Mapping[str, str] | None = None,
    ) -> None:
        self.client = client
        self.stream_arn = stream_arn
        self.starting_position = starting_position
        self.region = region
        self.checkpoints = dict(checkpoints or {})  # shard id → the last sequence number settled before a restart
        self.shards: dict[str, Shard] = {}
        self._listed: set[str] = set()
        self._refreshed_at = 0.0

    def refresh(self) -> None:
        shards: list[dict[str, Any]] = []
        kwargs: dict[str, Any] = {"StreamArn": self.stream_arn}
        while True:
            description = self.client.describe_stream(**kwargs)["StreamDescription"]
            shards += description.get("Shards") or []
            last = description.get("LastEvaluatedShardId")
            if not last:
                break
            kwargs["ExclusiveStartShardId"] = last
        first_listing = not self._refreshed_at
        for shard in shards:
            shard_id = shard["ShardId"]
            if shard_id in self.shards:
                continue
            closed = "EndingSequenceNumber" in (shard.get("SequenceNumberRange") or {})
            # LATEST applies to the shards open when the mapping starts; shards found later are read from their
            # beginning, as their records are newer than the mapping.
            start = self.starting_position if first_listing else "TRIM_HORIZON"
            entry = Shard(shard_id, shard.get("ParentShardId"), start)
            if shard_id in self.checkpoints:  # the mapping resumes where it stood, whatever its starting position
                entry.last_read = self.checkpoints[shard_id]
            elif first_listing and start == "LATEST" and closed:
                entry.exhausted = True
            self.shards[shard_id] = entry
        self._listed = {s["ShardId"] for s in shards}
        self._refreshed_at = time.monotonic()

    def refresh_if_due(self) -> None:
        if not self._refreshed_at or time.monotonic() - self._refreshed_at >= SHARD_REFRESH_SECONDS:
            self.refresh()

    def ready(self) -> list[Shard]:
        """Shards that may be read now: not done, and whose parent is done or gone from the stream (trimmed)."""
        out: list[Shard] = []
        for shard in self.shards.values():
            if shard.done or (shard.shard_id not in self._listed and not shard.buffer):
                continue
            parent = self.shards.get(shard.parent_id) if shard.parent_id else None
            if parent is not None and not parent.done and parent.shard_id in self._listed:
                continue
            out.append(shard)
        return out

    def position(self, shard: Shard) -> None:
        """Take the shard's iterator now: for LATEST, the end of the shard at this moment (a shard resumed from a
        checkpoint takes its iterator when first read)."""
        if shard.iterator is None and not shard.exhausted and shard.last_read is None:
            shard.iterator = self._iterator(shard)

    def _iterator(self, shard: Shard) -> str:
        kwargs: dict[str, Any] = {"StreamArn": self.stream_arn, "ShardId": shard.shard_id}
        if shard.last_read is not None:
            kwargs |= {"ShardIteratorType": "AFTER_SEQUENCE_NUMBER", "SequenceNumber": shard.last_read}
        else:
            kwargs["ShardIteratorType"] = shard.start
        iterator: str = self.client.get_shard_iterator(**kwargs)["ShardIterator"]
        return iterator

    def fill(self, shard: Shard, wanted: int) -> int:
        """One GetRecords on the shard, for up to `wanted` more records; returns how many it read."""
        if shard.exhausted or wanted <= 0:
            return 0
        for attempt in range(2):
            try:
                if shard.iterator is None:
                    shard.iterator = self._iterator(shard)
                response = self.client.get_records(
                    ShardIterator=shard.iterator, Limit=max(1, min(GET_RECORDS_LIMIT, wanted))
                )
                break
            except ClientError as exc:
                code = exc.response.get("Error", {}).get("Code")
                if attempt or code not in {"ExpiredIteratorException", "TrimmedDataAccessException"}:
                    raise
                if code == "TrimmedDataAccessException":
                    shard.last_read, shard.start = None, "TRIM_HORIZON"
                shard.iterator = None
        records = response.get("Records") or []
        following = response.get("NextShardIterator")
        if following is None:
            shard.exhausted, shard.iterator = True, None
        elif records:
            shard.iterator = following
        # else: an empty answer from an open shard; its iterator is polled again (see the module's notes on moto).
        for raw in records:
            shard.buffer.append(stream_record(raw, self.stream_arn, self.region))
        if records:
            shard.last_read = str(records[-1]["dynamodb"]["SequenceNumber"])
        return len(records)


def take_batch(shard: Shard, batch_size: int) -> list[dict[str, Any]]:
    """The first records of the shard's buffer, up to the batch size and Lambda's 6 MB payload."""
    size = len('{"Records":[]}')
    count = 0
    for record in shard.buffer[:batch_size]:
        size += len(json.dumps(record)) + 1
        if count and size > MAX_PAYLOAD_BYTES:
            break
        count += 1
    batch, shard.buffer = shard.buffer[:count], shard.buffer[count:]
    return batch


# ------------------------------------------------------------------------------------------------- delivery


@dataclass
class Delivery:
    """One invocation of the function with a batch of the stream's records."""

    records: list[dict[str, Any]]
    outcome: Outcome


@dataclass
class _Attempt:
    records: list[dict[str, Any]]
    retries: int = 0
    invocations: int = 0


class StreamConsumer:
    """One event source mapping's progress on its stream: batches read, delivered, retried or given up on."""

    def __init__(
        self,
        source: StreamSource,
        client: Any,
        *,
        function_arn: str,
        region: str,
        invoke: Invoke,
        send_failure: SendFailure,
        retry_delay: float,
        output: Output,
        on_failed_records: Callable[[str, int], None] | None = None,
        on_delivery: Callable[[Delivery], None] | None = None,
        stop: threading.Event | None = None,
        checkpoints: Checkpoints | None = None,
    ) -> None:
        self.source = source
        self.checkpoints = checkpoints
        self.reader = StreamReader(
            client,
            source.stream_arn,
            source.starting_position,
            region,
            checkpoints.get(source) if checkpoints is not None else None,
        )
        self.function_arn = function_arn
        self.invoke = invoke
        self.send_failure = send_failure
        self.retry_delay = retry_delay
        self.output = output
        self.on_failed_records = on_failed_records
        self.on_delivery = on_delivery
        self.stop = stop or threading.Event()
        self.busy = False

    def start(self) -> None:
        """Where the mapping begins (LATEST is the end of the stream at this moment)."""
        self.reader.refresh()
        for shard in self.reader.ready():
            self.reader.position(shard)

    def step(self, *, wait: bool) -> int:
        """Deliver at most one batch from each shard that is ready; returns the records delivered.

        `wait`: gather records for the batching window as Lambda does; otherwise deliver what the shard holds now.
        """
        self.reader.refresh_if_due()
        delivered = 0
        for shard in self.reader.ready():
            batch = self._gather(shard, wait=wait)
            if not batch:
                if shard.done:
                    self.reader.refresh()  # its children, if any, are next
                continue
            self.busy = True
            try:
                settled = self.deliver(shard.shard_id, batch)
            except BaseException:
                shard.buffer[:0] = batch  # tried again from its first record: at least once, as Lambda delivers
                raise
            finally:
                self.busy = False
            if not settled:
                shard.buffer[:0] = batch
                return delivered
            if self.checkpoints is not None:
                self.checkpoints.set(self.source, shard.shard_id, sequence_number(batch[-1]))
            delivered += len(batch)
        return delivered

    def _gather(self, shard: Shard, *, wait: bool) -> list[dict[str, Any]]:
        size = self.source.batch_size
        if len(shard.buffer) < size:
            self.reader.fill(shard, size - len(shard.buffer))
        if not shard.buffer:
            return []
        deadline = time.monotonic() + (self.source.batching_window if wait else 0.0)
        while len(shard.buffer) < size and not shard.exhausted and not self.stop.is_set():
            remaining = deadline - time.monotonic()
            if wait and remaining <= 0:
                break
            if wait:
                self.stop.wait(min(POLL_INTERVAL, remaining))
            if not self.reader.fill(shard, size - len(shard.buffer)) and not wait:
                break  # nothing more in the shard right now
        return take_batch(shard, size)

    def deliver(self, shard_id: str, records: list[dict[str, Any]]) -> bool:
        """Invoke the function with the batch until it succeeds or Lambda's rules give it up, in order; False when
        stopped first (the batch is not settled)."""
        source = self.source
        pending: deque[_Attempt] = deque([_Attempt(records)])
        while pending:
            attempt = pending.popleft()
            if attempt.invocations and self.stop.wait(self.retry_delay):
                return False  # shutting down
            batch = self._drop_expired(shard_id, attempt)
            if batch is None:
                return False
            if not batch:
                continue
            outcome = self.invoke(source.function, {"Records": batch})
            attempt.invocations += 1
            if self.on_delivery is not None:
                self.on_delivery(Delivery(batch, outcome))
            failed_at = first_failed_index(source, batch, outcome)
            if failed_at is None:
                continue
            remainder = batch[failed_at:]
            if source.bisect_on_error and not outcome.ok and len(remainder) > 1:
                half = len(remainder) // 2
                pending.extendleft(
                    [
                        _Attempt(remainder[half:], attempt.retries, attempt.invocations),
                        _Attempt(remainder[:half], attempt.retries, attempt.invocations),
                    ]
                )
                continue
            if source.bisect_on_error and failed_at > 0:
                pending.appendleft(_Attempt(remainder, attempt.retries, attempt.invocations))
                continue
            if 0 <= source.max_retries <= attempt.retries:
                if not self._give_up(shard_id, remainder, "RetryAttemptsExhausted", attempt.invocations, outcome):
                    return False
                continue
            pending.appendleft(_Attempt(remainder, attempt.retries + 1, attempt.invocations))
        return True

    def _drop_expired(self, shard_id: str, attempt: _Attempt) -> list[dict[str, Any]] | None:
        """The attempt's records young enough to be delivered (None: stopped before the expired were recorded)."""
        max_age = self.source.max_record_age
        if max_age < 0:
            return attempt.records
        now = time.time()
        # A shard's records are in the order they were written: the expired ones lead.
        fresh = next(
            (
                i
                for i, r in enumerate(attempt.records)
                if now - float(r["dynamodb"].get("ApproximateCreationDateTime", now)) <= max_age
            ),
            len(attempt.records),
        )
        expired, kept = attempt.records[:fresh], attempt.records[fresh:]
        if expired and not self._give_up(shard_id, expired, "RecordAgeExceeded", attempt.invocations, None):
            return None
        return kept

    def _give_up(
        self, shard_id: str, records: list[dict[str, Any]], condition: str, invocations: int, outcome: Outcome | None
    ) -> bool:
        """Record what is given up on (OnFailure destination, or the log without one); False if stopped first."""
        source = self.source
        if self.on_failed_records is not None:
            self.on_failed_records(source.function, len(records))
        span = f"{sequence_number(records[0])}..{sequence_number(records[-1])}"
        if source.on_failure_arn is None:
            self.output.line(
                source.function,
                f"stream {source.event}: {len(records)} record(s) {span} discarded ({condition}, no OnFailure "
                "destination)",
            )
            return True
        message = failure_record(
            function_arn=self.function_arn,
            condition=condition,
            shard_id=shard_id,
            stream_arn=source.stream_arn,
            records=records,
            invocations=invocations,
            outcome=outcome,
        )
        # The destination is the only trace of these records once the shard moves on: it must get them.
        while True:
            try:
                self.send_failure(source.on_failure_arn, message)
                break
            except (BotoCoreError, ClientError) as exc:
                self.output.line(source.function, f"stream {source.event}: OnFailure destination failed: {exc}")
                if self.stop.wait(1.0):
                    return False
        self.output.line(
            source.function, f"stream {source.event}: {len(records)} record(s) {span} sent to OnFailure ({condition})"
        )
        return True

    def skip(self) -> int:
        """Move past every record in the stream now, delivering none; returns how many were passed over."""
        self.reader.refresh()
        skipped = 0
        while True:
            passed = 0
            for shard in self.reader.ready():
                while shard.buffer or self.reader.fill(shard, GET_RECORDS_LIMIT):
                    passed += len(shard.buffer)
                    shard.buffer.clear()
                if shard.done:
                    self.reader.refresh()
            skipped += passed
            if not passed:
                return skipped

    def pending(self) -> int:
        return sum(len(s.buffer) for s in self.reader.shards.values())


class StreamPoller:
    """Lambda's poller for one DynamoDB stream event source, on a thread of its own."""

    def __init__(self, consumer: StreamConsumer, output: Output) -> None:
        self.consumer = consumer
        self.source = consumer.source
        self.output = output
        self._stop = consumer.stop
        self._thread = threading.Thread(
            target=self._run, name=f"stream-{self.source.function}-{self.source.event}", daemon=True
        )

    @property
    def busy(self) -> bool:
        return self.consumer.busy

    def start(self) -> None:
        self.consumer.start()
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()

    def join(self, timeout: float | None = None) -> None:
        self._thread.join(timeout)

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                if not self.consumer.step(wait=True):
                    self._stop.wait(POLL_INTERVAL)
            except (BotoCoreError, ClientError, TemplateError) as exc:
                if self._stop.is_set():
                    break
                self.output.line(self.source.function, f"stream poller error on {self.source.stream_arn}: {exc}")
                self._stop.wait(1.0)
