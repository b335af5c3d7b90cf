"""DynamoDB stream event sources in the local runner, against a tiny template and handler of its own, on moto and on
DynamoDB Local: Lambda's event shape, order, partial batch failures, bisection, retries and the OnFailure queue,
in-process (`process_stream`) and in the running stack (its poller threads and worker processes).
"""

from __future__ import annotations

import base64
import datetime as dt
import json
import os
import re
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any

import boto3
import pytest
import requests

from reclift_local.output import Output
from reclift_local.streams import StreamConsumer
from reclift_local.template import Resolver, StreamSource, function_specs, load_template
from reclift_local.workers import Outcome
from tests.support.aws import EmulatedAws, emulated_aws, process_stream, queued, skip_streams
from tests.support.stack import wait_for, wait_for_value

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "aws"

TEMPLATE = """\
AWSTemplateFormatVersion: "2010-09-09"
Transform: AWS::Serverless-2016-10-31
Parameters:
  LogFile:
    Type: String
    Default: ""
Globals:
  Function:
    Runtime: python3.11
    Timeout: 5
    Environment:
      Variables:
        LOG_FILE: !Ref LogFile
Resources:
  Events:
    Type: AWS::DynamoDB::Table
    Properties:
      BillingMode: PAY_PER_REQUEST
      AttributeDefinitions: [{AttributeName: pk, AttributeType: S}]
      KeySchema: [{AttributeName: pk, KeyType: HASH}]
      StreamSpecification: {StreamViewType: NEW_AND_OLD_IMAGES}
  Poison:
    Type: AWS::DynamoDB::Table
    Properties:
      BillingMode: PAY_PER_REQUEST
      AttributeDefinitions: [{AttributeName: pk, AttributeType: S}]
      KeySchema: [{AttributeName: pk, KeyType: HASH}]
      StreamSpecification: {StreamViewType: NEW_IMAGE}
  CountingFailureQueue:
    Type: AWS::SQS::Queue
  PoisonFailureQueue:
    Type: AWS::SQS::Queue
  Counting:
    Type: AWS::Serverless::Function
    Properties:
      CodeUri: fn/
      Handler: app.count
      Environment:
        Variables:
          STREAM_ARN: !GetAtt Events.StreamArn
      Events:
        EventsStream:
          Type: DynamoDB
          Properties:
            Stream: !GetAtt Events.StreamArn
            StartingPosition: TRIM_HORIZON
            BatchSize: 1000
            MaximumBatchingWindowInSeconds: 1
            BisectBatchOnFunctionError: true
            MaximumRetryAttempts: 10
            FunctionResponseTypes: [ReportBatchItemFailures]
            DestinationConfig:
              OnFailure:
                Destination: !GetAtt CountingFailureQueue.Arn
  Failing:
    Type: AWS::Serverless::Function
    Properties:
      CodeUri: fn/
      Handler: app.fail
      Events:
        PoisonStream:
          Type: DynamoDB
          Properties:
            Stream: !GetAtt Poison.StreamArn
            StartingPosition: LATEST
            BatchSize: 10
            BisectBatchOnFunctionError: true
            MaximumRetryAttempts: 1
            DestinationConfig:
              OnFailure:
                Destination: !GetAtt PoisonFailureQueue.Arn
"""

HANDLER = """\
import json, os

_failed = set()


def log(**fields):
    if os.environ.get("LOG_FILE"):
        with open(os.environ["LOG_FILE"], "a") as fh:
            fh.write(json.dumps(fields) + "\\n")


def first_failure(event_id):
    # Worker processes come and go in the running stack: the mark is a file there.
    if os.environ.get("LOG_FILE"):
        mark = f"{os.environ['LOG_FILE']}.{event_id}"
        if os.path.exists(mark):
            return False
        open(mark, "w").close()
        return True
    if event_id in _failed:
        return False
    _failed.add(event_id)
    return True


def count(event, context):
    failures = []
    for record in event["Records"]:
        image = record["dynamodb"].get("NewImage") or {}
        log(kind="record", key=record["dynamodb"]["Keys"]["pk"]["S"], name=record["eventName"],
            seq=record["dynamodb"]["SequenceNumber"], invocation=context.aws_request_id)
        if image.get("fail", {}).get("S") == "once" and first_failure(record["eventID"]):
            failures.append({"itemIdentifier": record["dynamodb"]["SequenceNumber"]})
    return {"batchItemFailures": failures}


def fail(event, context):
    log(kind="failing", size=len(event["Records"]))
    raise RuntimeError("this function fails every batch")
"""


def write_project(root: Path) -> Path:
    (root / "fn").mkdir(parents=True)
    (root / "fn" / "app.py").write_text(HANDLER)
    template = root / "template.yaml"
    template.write_text(TEMPLATE)
    return template


@pytest.fixture(scope="module")
def streams_aws(tmp_path_factory: pytest.TempPathFactory, database: str) -> Iterator[EmulatedAws]:
    root = tmp_path_factory.mktemp("streams")
    with emulated_aws(root / "state", database=database, template=write_project(root)) as emulated:
        yield emulated


def key(record: dict[str, Any]) -> str:
    return str(record["dynamodb"]["Keys"]["pk"]["S"])


def seq(record: dict[str, Any]) -> int:
    return int(record["dynamodb"]["SequenceNumber"])


def stream_arn(aws: EmulatedAws, table: str) -> str:
    arn: str = aws.client("dynamodb").describe_table(TableName=aws.resource(table))["Table"]["LatestStreamArn"]
    return arn


# ------------------------------------------------------------------------------------------------- the template


def test_dynamodb_events_are_parsed_with_lambdas_defaults(tmp_path: Path) -> None:
    template = load_template(write_project(tmp_path))
    specs = {s.logical_id: s for s in function_specs(template, Resolver(template, region="eu-west-1"), tmp_path)}

    [counting] = specs["Counting"].stream_sources
    assert counting.stream_arn.startswith("arn:aws:dynamodb:eu-west-1:123456789012:table/reclift-Events/stream/")
    assert (counting.starting_position, counting.batch_size, counting.batching_window) == ("TRIM_HORIZON", 1000, 1)
    assert counting.bisect_on_error
    assert counting.report_batch_item_failures
    assert (counting.max_retries, counting.max_record_age) == (10, -1)
    assert counting.on_failure_arn == "arn:aws:sqs:eu-west-1:123456789012:reclift-CountingFailureQueue"
    assert specs["Counting"].ignored_events == []
    [failing] = specs["Failing"].stream_sources
    assert (failing.starting_position, failing.max_retries, failing.report_batch_item_failures) == ("LATEST", 1, False)


def test_the_stream_arn_is_the_tables_own_in_the_emulator(streams_aws: EmulatedAws) -> None:
    arn = stream_arn(streams_aws, "Events")
    spec = streams_aws.stack.specs["Counting"]

    assert spec.stream_sources[0].stream_arn == arn
    assert spec.environment["STREAM_ARN"] == arn


# ----------------------------------------------------------------------------------------------------- in order


def test_inserts_modifies_and_removes_reach_the_function_in_order_with_old_and_new_images(
    streams_aws: EmulatedAws,
) -> None:
    aws, ddb, table = streams_aws, streams_aws.client("dynamodb"), streams_aws.resource("Events")
    skip_streams(aws, "Counting")
    before = time.time()
    ddb.put_item(TableName=table, Item={"pk": {"S": "order-a"}, "n": {"N": "1"}})
    ddb.update_item(
        TableName=table,
        Key={"pk": {"S": "order-a"}},
        UpdateExpression="SET n = :n",
        ExpressionAttributeValues={":n": {"N": "2"}},
    )
    ddb.put_item(TableName=table, Item={"pk": {"S": "order-b"}, "blob": {"B": b"\x00\xff"}})
    ddb.delete_item(TableName=table, Key={"pk": {"S": "order-a"}})

    deliveries = process_stream(aws, "Counting")

    assert len(deliveries) == 1  # BatchSize 1000: one invocation
    assert deliveries[0].outcome.ok
    assert deliveries[0].outcome.result == {"batchItemFailures": []}
    records = deliveries[0].records
    assert [(r["eventName"], key(r)) for r in records] == [
        ("INSERT", "order-a"),
        ("MODIFY", "order-a"),
        ("INSERT", "order-b"),
        ("REMOVE", "order-a"),
    ]
    insert, modify, insert_b, remove = (r["dynamodb"] for r in records)
    assert insert["NewImage"] == {"pk": {"S": "order-a"}, "n": {"N": "1"}}
    assert "OldImage" not in insert
    assert modify["OldImage"]["n"] == {"N": "1"}
    assert modify["NewImage"]["n"] == {"N": "2"}
    assert insert_b["NewImage"]["blob"] == {"B": base64.b64encode(b"\x00\xff").decode()}
    assert remove["OldImage"]["n"] == {"N": "2"}
    assert "NewImage" not in remove
    numbers = [seq(r) for r in records]
    assert numbers == sorted(set(numbers))

    # Lambda's shape, as in the sample event
    sample = json.loads((FIXTURES / "dynamodb-stream-update.json").read_text())["Records"][1]
    arn = stream_arn(aws, "Events")
    for record in records:
        assert set(record) == set(sample)
        assert set(record["dynamodb"]) <= set(sample["dynamodb"])
        assert record["eventVersion"] == "1.1"
        assert record["eventSource"] == "aws:dynamodb"
        assert record["awsRegion"] == "us-east-1"
        assert record["eventSourceARN"] == arn
        assert record["dynamodb"]["StreamViewType"] == "NEW_AND_OLD_IMAGES"
        created = record["dynamodb"]["ApproximateCreationDateTime"]
        assert isinstance(created, int)
        assert before - 61 <= created <= time.time() + 1  # DynamoDB Local rounds down to the minute
    json.dumps(records)  # what the function gets is JSON, as on Lambda

    assert process_stream(aws, "Counting") == []  # nothing is delivered twice


def test_a_partial_batch_failure_is_retried_from_the_failed_record(streams_aws: EmulatedAws) -> None:
    aws, ddb, table = streams_aws, streams_aws.client("dynamodb"), streams_aws.resource("Events")
    skip_streams(aws, "Counting")
    for pk, extra in (("p1", {}), ("p2", {"fail": {"S": "once"}}), ("p3", {})):
        ddb.put_item(TableName=table, Item={"pk": {"S": pk}, **extra})

    deliveries = process_stream(aws, "Counting")

    assert [[key(r) for r in d.records] for d in deliveries] == [["p1", "p2", "p3"], ["p2", "p3"]]
    failed = deliveries[0].records[1]["dynamodb"]["SequenceNumber"]
    assert deliveries[0].outcome.result == {"batchItemFailures": [{"itemIdentifier": failed}]}
    assert deliveries[1].records == deliveries[0].records[1:]  # the very same records, again
    assert deliveries[1].outcome.result == {"batchItemFailures": []}
    assert queued(aws.client("sqs"), aws.resource("CountingFailureQueue")) == []


def test_a_function_that_always_fails_ends_in_the_failure_queue_record_by_record(streams_aws: EmulatedAws) -> None:
    aws, ddb, table = streams_aws, streams_aws.client("dynamodb"), streams_aws.resource("Poison")
    sqs, queue = aws.client("sqs"), aws.resource("PoisonFailureQueue")
    skip_streams(aws, "Failing")
    queued(sqs, queue)
    for pk in ("z1", "z2", "z3"):
        ddb.put_item(TableName=table, Item={"pk": {"S": pk}})

    deliveries = process_stream(aws, "Failing")

    # Bisected on each error ([z1] [z2 z3], then [z2] [z3]), each single record retried once (MaximumRetryAttempts 1)
    assert [[key(r) for r in d.records] for d in deliveries] == [
        ["z1", "z2", "z3"],
        ["z1"],
        ["z1"],
        ["z2", "z3"],
        ["z2"],
        ["z2"],
        ["z3"],
        ["z3"],
    ]
    assert not any(d.outcome.ok for d in deliveries)
    records = deliveries[0].records
    bodies = [json.loads(m["Body"]) for m in queued(sqs, queue)]
    arn = stream_arn(aws, "Poison")
    [shard] = aws.client("dynamodbstreams").describe_stream(StreamArn=arn)["StreamDescription"]["Shards"]
    assert [b["DDBStreamBatchInfo"]["startSequenceNumber"] for b in bodies] == [
        r["dynamodb"]["SequenceNumber"] for r in records
    ]
    for body in bodies:
        info = body["DDBStreamBatchInfo"]
        assert info["endSequenceNumber"] == info["startSequenceNumber"]
        assert (info["batchSize"], info["shardId"], info["streamArn"]) == (1, shard["ShardId"], arn)
        assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ", info["approximateArrivalOfFirstRecord"])
        context = body["requestContext"]
        assert context["condition"] == "RetryAttemptsExhausted"
        assert context["functionArn"] == "arn:aws:lambda:us-east-1:123456789012:function:Failing"
        assert context["approximateInvokeCount"] >= 2
        assert body["responseContext"]["functionError"] == "Unhandled"
        assert body["version"] == "1.0"
    # The stream has moved past them: nothing more is delivered
    assert process_stream(aws, "Failing") == []


def test_latest_starts_at_the_end_of_the_stream(streams_aws: EmulatedAws) -> None:
    """Given records written before a LATEST mapping starts, When it runs, Then it sees only later ones."""
    aws, ddb, table = streams_aws, streams_aws.client("dynamodb"), streams_aws.resource("Events")
    ddb.put_item(TableName=table, Item={"pk": {"S": "before-start"}})
    [counting] = aws.streams["Counting"]
    seen: list[str] = []

    def invoke(_: str, event: Any) -> Outcome:
        seen.extend(key(r) for r in event["Records"])
        return Outcome("local", 0.0)

    latest = StreamConsumer(
        replace(counting.source, starting_position="LATEST"),
        counting.reader.client,
        function_arn="arn:aws:lambda:us-east-1:123456789012:function:Counting",
        region="us-east-1",
        invoke=invoke,
        send_failure=lambda *_: None,
        retry_delay=0,
        output=counting.output,
    )
    latest.start()
    ddb.put_item(TableName=table, Item={"pk": {"S": "after-start"}})
    while latest.step(wait=False):
        pass

    assert seen == ["after-start"]


# ------------------------------------------------------------------------------ Lambda's rules, on a stream of shards


class FakeStreams:
    """DynamoDB Streams' API over shards given as (id, parent, sequence numbers, closed), one shard a page."""

    def __init__(self, *shards: tuple[str, str | None, list[int], bool], age: float = 0.0) -> None:
        self.shards = {shard_id: (parent, numbers, closed) for shard_id, parent, numbers, closed in shards}
        self.created = dt.datetime.now(dt.UTC) - dt.timedelta(seconds=age)

    def describe_stream(self, StreamArn: str, ExclusiveStartShardId: str = "") -> dict[str, Any]:
        ids = list(self.shards)
        index = ids.index(ExclusiveStartShardId) + 1 if ExclusiveStartShardId else 0
        shard_id = ids[index]
        parent, numbers, closed = self.shards[shard_id]
        described: dict[str, Any] = {"ShardId": shard_id, "SequenceNumberRange": {"StartingSequenceNumber": "1"}}
        if parent:
            described["ParentShardId"] = parent
        if closed:
            described["SequenceNumberRange"]["EndingSequenceNumber"] = str(numbers[-1])
        page: dict[str, Any] = {"StreamArn": StreamArn, "Shards": [described]}
        if index + 1 < len(ids):
            page["LastEvaluatedShardId"] = shard_id
        return {"StreamDescription": page}

    def get_shard_iterator(self, *, StreamArn: str, ShardId: str, ShardIteratorType: str, **kw: str) -> Any:
        numbers = self.shards[ShardId][1]
        if ShardIteratorType == "TRIM_HORIZON":
            position = 0
        elif ShardIteratorType == "LATEST":
            position = len(numbers)
        else:
            position = numbers.index(int(kw["SequenceNumber"])) + 1
        return {"ShardIterator": f"{ShardId}|{position}"}

    def get_records(self, *, ShardIterator: str, Limit: int) -> dict[str, Any]:
        shard_id, position = ShardIterator.split("|")
        _, numbers, closed = self.shards[shard_id]
        taken = numbers[int(position) : int(position) + Limit]
        following = int(position) + len(taken)
        records = [
            {
                "eventID": f"e{n}",
                "eventName": "INSERT",
                "eventVersion": "1.0",
                "awsRegion": "ddblocal",
                "dynamodb": {
                    "ApproximateCreationDateTime": self.created,
                    "Keys": {"pk": {"S": f"k{n}"}},
                    "NewImage": {"pk": {"S": f"k{n}"}, "raw": {"B": bytes([n % 256])}},
                    "SequenceNumber": str(n),
                    "SizeBytes": 10,
                    "StreamViewType": "NEW_IMAGE",
                },
            }
            for n in taken
        ]
        response: dict[str, Any] = {"Records": records}
        if not (closed and following >= len(numbers)):
            response["NextShardIterator"] = f"{shard_id}|{following}"
        return response


SOURCE = StreamSource(
    function="Fn",
    event="Stream",
    stream_arn="arn:aws:dynamodb:us-east-1:123456789012:table/t/stream/label",
    starting_position="TRIM_HORIZON",
    batch_size=3,
    batching_window=0,
    bisect_on_error=False,
    max_retries=-1,
    max_record_age=-1,
    report_batch_item_failures=True,
    on_failure_arn="arn:aws:sqs:us-east-1:123456789012:failures",
    enabled=True,
)


def drain(
    streams: FakeStreams, answer: Any, source: StreamSource = SOURCE
) -> tuple[list[list[int]], list[dict[str, Any]]]:
    """What the function was handed (its records' sequence numbers, batch by batch) and the failure records sent;
    `answer(numbers, attempt)` is the function: a result, or an exception to raise."""
    batches: list[list[int]] = []
    failures: list[dict[str, Any]] = []

    def invoke(_: str, event: Any) -> Outcome:
        numbers = [seq(r) for r in event["Records"]]
        batches.append(numbers)
        result = answer(numbers, len(batches))
        if isinstance(result, Exception):
            return Outcome("req", 1.0, error={"errorType": type(result).__name__, "errorMessage": str(result)})
        return Outcome("req", 1.0, result=result)

    consumer = StreamConsumer(
        source,
        streams,
        function_arn="arn:aws:lambda:us-east-1:123456789012:function:Fn",
        region="us-east-1",
        invoke=invoke,
        send_failure=lambda _, message: failures.append(message),
        retry_delay=0,
        output=Output(),
    )
    consumer.start()
    while consumer.step(wait=False):
        if len(batches) > 100:
            raise AssertionError(f"endless retries: {batches[:10]}")
    return batches, failures


def failing(*numbers: int) -> Any:
    def answer(batch: list[int], _: int) -> Any:
        return {"batchItemFailures": [{"itemIdentifier": str(n)} for n in batch if n in numbers]}

    return answer


def test_parents_are_read_before_their_children_each_shard_in_order() -> None:
    streams = FakeStreams(
        ("grandchild", "child", [30, 31], False),
        ("child", "parent", [20, 21, 22, 23], True),
        ("parent", None, [10, 11], True),
    )

    batches, failures = drain(streams, lambda *_: None)

    assert batches == [[10, 11], [20, 21, 22], [23], [30, 31]]
    assert failures == []


def test_records_reach_the_function_in_lambdas_shape() -> None:
    delivered: list[dict[str, Any]] = []

    def keep(_: str, event: Any) -> Outcome:
        delivered.extend(event["Records"])
        return Outcome("req", 1.0)

    consumer = StreamConsumer(
        SOURCE,
        FakeStreams(("s", None, [7], False)),
        function_arn="arn",
        region="eu-west-1",
        invoke=keep,
        send_failure=lambda *_: None,
        retry_delay=0,
        output=Output(),
    )
    consumer.start()
    consumer.step(wait=False)

    [record] = delivered
    assert record["eventVersion"] == "1.1"
    assert record["awsRegion"] == "eu-west-1"
    assert record["eventSourceARN"] == SOURCE.stream_arn
    assert record["dynamodb"]["NewImage"]["raw"] == {"B": base64.b64encode(b"\x07").decode()}
    assert isinstance(record["dynamodb"]["ApproximateCreationDateTime"], int)
    assert list(record["dynamodb"]) == [  # Lambda's order
        "ApproximateCreationDateTime",
        "Keys",
        "NewImage",
        "SequenceNumber",
        "SizeBytes",
        "StreamViewType",
    ]


def test_the_lowest_reported_failure_is_where_the_retry_starts() -> None:
    once = {2, 3}

    def answer(batch: list[int], _: int) -> Any:
        failed = [n for n in batch if n in once]
        once.difference_update(failed)
        return {"batchItemFailures": [{"itemIdentifier": str(n)} for n in reversed(failed)]}

    batches, failures = drain(FakeStreams(("s", None, [1, 2, 3, 4], False)), answer)

    assert batches == [[1, 2, 3], [2, 3], [4]]
    assert failures == []


def test_an_unknown_item_identifier_fails_the_whole_batch() -> None:
    answers = iter([{"batchItemFailures": [{"itemIdentifier": "not-a-sequence-number"}]}, None])

    batches, _ = drain(FakeStreams(("s", None, [1, 2], False)), lambda *_: next(answers))

    assert batches == [[1, 2], [1, 2]]


def test_without_report_batch_item_failures_a_partial_answer_is_a_success() -> None:
    source = replace(SOURCE, report_batch_item_failures=False)

    batches, failures = drain(FakeStreams(("s", None, [1, 2], False)), failing(1), source)

    assert (batches, failures) == ([[1, 2]], [])


def test_without_bisection_the_whole_batch_is_retried_then_given_up() -> None:
    source = replace(SOURCE, max_retries=2)

    batches, failures = drain(FakeStreams(("s", None, [1, 2, 3, 4], False)), lambda *_: RuntimeError("no"), source)

    assert batches == [[1, 2, 3], [1, 2, 3], [1, 2, 3], [4], [4], [4]]
    assert [f["DDBStreamBatchInfo"]["startSequenceNumber"] for f in failures] == ["1", "4"]
    first = failures[0]
    assert first["DDBStreamBatchInfo"]["endSequenceNumber"] == "3"
    assert first["DDBStreamBatchInfo"]["batchSize"] == 3
    assert first["DDBStreamBatchInfo"]["shardId"] == "s"
    assert first["requestContext"]["approximateInvokeCount"] == 3
    assert first["responseContext"] == {"statusCode": 200, "executedVersion": "$LATEST", "functionError": "Unhandled"}


def test_a_partial_failure_retried_past_the_quota_sends_only_the_rest_of_the_batch() -> None:
    source = replace(SOURCE, max_retries=1)

    batches, failures = drain(FakeStreams(("s", None, [1, 2, 3], False)), failing(2), source)

    assert batches == [[1, 2, 3], [2, 3]]
    [failure] = failures
    assert failure["DDBStreamBatchInfo"]["startSequenceNumber"] == "2"
    assert failure["DDBStreamBatchInfo"]["batchSize"] == 2
    assert "functionError" not in failure["responseContext"]  # the function answered; it did not fail


def test_records_older_than_the_maximum_age_go_to_the_destination_unseen() -> None:
    source = replace(SOURCE, max_record_age=60)

    batches, failures = drain(FakeStreams(("s", None, [1, 2], False), age=3600), lambda *_: None, source)

    assert batches == []
    [failure] = failures
    assert failure["requestContext"]["condition"] == "RecordAgeExceeded"
    assert failure["DDBStreamBatchInfo"]["batchSize"] == 2
    assert "responseContext" not in failure


# --------------------------------------------------------------------------------------------- the running stack


class RunningStack:
    """`python -m reclift_local run` on the tiny template, its functions logging what they get to `log_file`."""

    def __init__(self, root: Path, database: str, *extra: str) -> None:
        self.root, self.output = root, root / "runner.log"
        self.state_file, self.log_file = root / "stack.json", root / "calls.jsonl"
        template = root / "template.yaml" if (root / "template.yaml").exists() else write_project(root)
        env = {k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "SHOPIFY_", "PORT", "DB"))}
        with self.output.open("ab") as out:
            self.process = subprocess.Popen(
                [
                    *(sys.executable, "-m", "reclift_local", "run", "--template", str(template), "--port", "0"),
                    *("--state-file", str(self.state_file), "--retry-delay", "0", "--db", database, *extra),
                    *("--parameter-overrides", f"LogFile={self.log_file}"),
                ],
                cwd=root,
                stdout=out,
                stderr=subprocess.STDOUT,
                env=env,
            )
        try:
            wait_for(
                lambda: self.state_file.exists() or self.process.poll() is not None, 60, message="the stack to start"
            )
            assert self.process.poll() is None, self.output.read_text()
        except BaseException:
            self.stop()
            raise
        self.state: dict[str, Any] = json.loads(self.state_file.read_text())

    def client(self, service: Any) -> Any:
        endpoint = self.state["dynamodb_endpoint"] if service == "dynamodb" else self.state["moto_endpoint"]
        return boto3.client(
            service,
            endpoint_url=endpoint,
            region_name="us-east-1",
            aws_access_key_id="testing",
            aws_secret_access_key="testing",
        )

    def put(self, table: str, item: dict[str, Any]) -> None:
        self.client("dynamodb").put_item(TableName=self.state["resources"][table], Item=item)

    def calls(self, kind: str) -> list[dict[str, Any]]:
        lines = self.log_file.read_text().splitlines() if self.log_file.exists() else []
        return [c for c in (json.loads(line) for line in lines) if c["kind"] == kind]

    def delivered_keys(self) -> list[str]:
        return [c["key"] for c in self.calls("record")]

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
        assert self.process.wait(timeout=30) == 0, self.output.read_text()


@pytest.fixture
def running(tmp_path: Path, database: str) -> Iterator[RunningStack]:
    stack = RunningStack(tmp_path, database)
    yield stack
    stack.stop()


@pytest.mark.stack
def test_the_running_stack_polls_the_stream_into_its_workers(running: RunningStack) -> None:
    assert running.state["functions"]["Counting"]["streams"] == ["Events"]
    running.put("Events", {"pk": {"S": "r1"}})
    running.put("Events", {"pk": {"S": "r2"}, "fail": {"S": "once"}})
    running.put("Poison", {"pk": {"S": "bad"}})

    wait_for_value(lambda: running.delivered_keys().count("r2"), 2, 30, message="r2 to be retried")
    by_invocation: dict[str, list[str]] = {}
    for call in running.calls("record"):
        by_invocation.setdefault(call["invocation"], []).append(call["key"])
    assert list(by_invocation.values())[-1] == ["r2"]  # the retry starts at the failed record
    assert running.delivered_keys() == ["r1", "r2", "r2"]

    sqs, queue = running.client("sqs"), running.state["resources"]["PoisonFailureQueue"]
    [message] = wait_for(lambda: queued(sqs, queue), 30, message="the poison record's failure record")
    body = json.loads(message["Body"])
    assert body["DDBStreamBatchInfo"]["batchSize"] == 1
    assert body["requestContext"]["condition"] == "RetryAttemptsExhausted"
    assert [c["size"] for c in running.calls("failing")] == [1, 1]  # tried, retried once, given up

    status = requests.get(f"http://127.0.0.1:{running.state['port']}/_local/status", timeout=10).json()
    assert set(status["streams"]) == {"Counting.EventsStream", "Failing.PoisonStream"}
    assert status["functions"]["Failing"]["failed_records"] == 1


@pytest.mark.stack
def test_a_restarted_stack_resumes_the_stream_where_it_stood(tmp_path: Path) -> None:
    """Given DynamoDB Local keeping its tables (and so their streams) across restarts, When the stack starts again,
    Then the TRIM_HORIZON mapping goes on after what it delivered, as Lambda's would, instead of from the start."""
    data = ("--db-data", str(tmp_path / "data"))
    first = RunningStack(tmp_path, "dynamodb-local", *data)
    try:
        first.put("Events", {"pk": {"S": "before-restart"}})
        wait_for_value(lambda: first.delivered_keys(), ["before-restart"], 30, message="the first record")
    finally:
        first.stop()
    second = RunningStack(tmp_path, "dynamodb-local", *data)
    try:
        second.put("Events", {"pk": {"S": "after-restart"}})
        wait_for(lambda: "after-restart" in second.delivered_keys(), 30, message="the second record")
        time.sleep(1.5)  # a batching window more: time for a wrongful redelivery to show
        assert second.delivered_keys() == ["before-restart", "after-restart"]
    finally:
        second.stop()
