"""The Docker-free local stack (`reclift_local`), against a tiny template and handler of its own.

The project's real functions are not used here: these tests pin down the runner itself - template resolution,
resources in the emulator, API Gateway's v2 events, SQS event-source semantics, DLQ and redrive, `invoke`, and a
clean shutdown with no orphan processes.
"""

from __future__ import annotations

import base64
import http.client
import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import boto3
import pytest
import requests

from reclift_local.gateway import compile_routes, match_route
from reclift_local.template import HttpRoute, Resolver, function_specs, load_template
from tests.support.stack import process_alive, wait_for, wait_for_value

pytestmark = pytest.mark.stack

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "aws"

TEMPLATE = """\
AWSTemplateFormatVersion: "2010-09-09"
Transform: AWS::Serverless-2016-10-31
Parameters:
  LogFile:
    Type: String
    Default: /nonexistent
  Greeting:
    Type: String
    Default: hello
  ShopifyApiSecretParameterName:
    Type: String
    Default: /tiny/secret
  ShopifyApiSecretPreviousParameterName:
    Type: String
    Default: ""
Conditions:
  IsHello: !Equals [!Ref Greeting, hello]
  HasPrevious: !Not [!Equals [!Ref ShopifyApiSecretPreviousParameterName, ""]]
Globals:
  Function:
    Runtime: python3.11
    Timeout: 5
    MemorySize: 256
    Layers: [!Ref Layer]
    Environment:
      Variables:
        LOG_FILE: !Ref LogFile
        ITEMS_TABLE: !Ref Items
Resources:
  Layer:
    Type: AWS::Serverless::LayerVersion
    Properties:
      LayerName: tiny
      ContentUri: layer/
  Items:
    Type: AWS::DynamoDB::Table
    Properties:
      BillingMode: PAY_PER_REQUEST
      AttributeDefinitions:
        - {AttributeName: pk, AttributeType: S}
        - {AttributeName: gk, AttributeType: S}
      KeySchema:
        - {AttributeName: pk, KeyType: HASH}
      GlobalSecondaryIndexes:
        - IndexName: by_g
          KeySchema: [{AttributeName: gk, KeyType: HASH}]
          Projection: {ProjectionType: ALL}
      TimeToLiveSpecification: {AttributeName: expires_at, Enabled: true}
  Jobs:
    Type: AWS::SQS::Queue
    Properties:
      VisibilityTimeout: 120
      MessageRetentionPeriod: 3600
      RedrivePolicy:
        deadLetterTargetArn: !GetAtt JobsDLQ.Arn
        maxReceiveCount: 2
  JobsDLQ:
    Type: AWS::SQS::Queue
  Echo:
    Type: AWS::Serverless::Function
    Properties:
      CodeUri: fn/
      Handler: app.echo
      Environment:
        Variables:
          WORD: !If [IsHello, greeted, ignored]
          JOBS_URL: !Ref Jobs
          DLQ_NAME: !GetAtt JobsDLQ.QueueName
          INDEX_ARN: !Sub "${Items.Arn}/index/by_g"
          JOINED: !Join ["-", [!Ref "AWS::Region", !Select [1, [a, b, c]]]]
          SECRET_PARAM: !Ref ShopifyApiSecretParameterName
          PREVIOUS_PARAM: !If [HasPrevious, !Ref ShopifyApiSecretPreviousParameterName, !Ref "AWS::NoValue"]
      Events:
        Any:
          Type: HttpApi
          Properties: {Method: ANY, Path: "/echo/{rest+}"}
        Item:
          Type: HttpApi
          Properties: {Method: GET, Path: "/items/{id}"}
        Exact:
          Type: HttpApi
          Properties: {Method: GET, Path: /items/special}
  Consumer:
    Type: AWS::Serverless::Function
    Properties:
      CodeUri: fn/
      Handler: app.consume
      Events:
        Jobs:
          Type: SQS
          Properties:
            Queue: !GetAtt Jobs.Arn
            BatchSize: 10
            FunctionResponseTypes: [ReportBatchItemFailures]
  Nightly:
    Type: AWS::Serverless::Function
    Properties:
      CodeUri: fn/
      Handler: app.nightly
      Environment:
        Variables:
          JOBS_URL: !Ref Jobs
      Events:
        Tick:
          Type: Schedule
          Properties: {Schedule: rate(1 day)}
  Slow:
    Type: AWS::Serverless::Function
    Properties:
      CodeUri: fn/
      Handler: app.slow
      Timeout: 3  # a second of CPU starvation must not time out the invocations meant to succeed
"""

HANDLER = """\
import base64, json, os, time

import boto3
import tinylayer

print("init", os.environ["AWS_LAMBDA_FUNCTION_NAME"])  # goes to the runner's log, never into the protocol


def log(kind, **fields):
    with open(os.environ["LOG_FILE"], "a") as fh:
        fh.write(json.dumps({"kind": kind, **fields}) + "\\n")


def echo(event, context):
    qs = event.get("queryStringParameters") or {}
    if "boom" in qs:
        raise ValueError("boom requested")
    if "plain" in qs:
        return {"plain": True, "n": 1}
    if "binary" in qs:
        return {"statusCode": 201, "headers": {"content-type": "image/png"}, "isBase64Encoded": True,
                "body": base64.b64encode(bytes(range(256))).decode(), "cookies": ["a=1", "b=2; Path=/"]}
    env = {k: v for k, v in os.environ.items()}
    ctx = {"function_name": context.function_name, "memory_limit_in_mb": context.memory_limit_in_mb,
           "invoked_function_arn": context.invoked_function_arn, "aws_request_id": context.aws_request_id,
           "remaining": context.get_remaining_time_in_millis()}
    return {"statusCode": 200, "headers": {"content-type": "application/json"},
            "body": json.dumps({"event": event, "env": env, "context": ctx, "layer": tinylayer.VALUE})}


def consume(event, context):
    failures = []
    for record in event["Records"]:
        body = record["body"]
        count = int(record["attributes"]["ApproximateReceiveCount"])
        log("record", body=body, count=count, record=record, invocation=context.aws_request_id)
        if body.startswith("flaky") and count == 1:
            failures.append({"itemIdentifier": record["messageId"]})
        if body.startswith("poison") and not os.path.exists(os.environ["LOG_FILE"] + ".cured"):
            failures.append({"itemIdentifier": record["messageId"]})
        if body.startswith("crash"):
            raise RuntimeError("the whole batch fails")
    return {"batchItemFailures": failures}


def nightly(event, context):
    sqs = boto3.client("sqs")
    log("nightly", event=event)
    bodies = [f"job-{event['id']}-{i}" for i in range(3)]
    if os.path.exists(os.environ["LOG_FILE"] + ".nightly-poison"):
        bodies.append(f"poison-nightly-{event['id']}")
    for body in bodies:
        sqs.send_message(QueueUrl=os.environ["JOBS_URL"], MessageBody=body)
    return {"queued": len(bodies)}


def slow(event, context):
    time.sleep(float(event.get("sleep", 0)))
    return {"pid": os.getpid()}
"""


# ------------------------------------------------------------------------------------------------------- helpers


def write_project(root: Path) -> Path:
    (root / "fn").mkdir(parents=True)
    (root / "layer").mkdir()
    (root / "fn" / "app.py").write_text(HANDLER)
    (root / "layer" / "tinylayer.py").write_text("VALUE = 'from the layer'\n")
    template = root / "template.yaml"
    template.write_text(TEMPLATE)
    return template


@dataclass
class Stack:
    process: subprocess.Popen[bytes]
    root: Path
    state_file: Path
    log_file: Path
    output: Path

    @property
    def state(self) -> dict[str, Any]:
        return dict(json.loads(self.state_file.read_text()))

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.state['port']}"

    def client(self, service: Any) -> Any:
        return boto3.client(
            service,
            endpoint_url=self.state["moto_endpoint"],
            region_name="us-east-1",
            aws_access_key_id="testing",
            aws_secret_access_key="testing",
        )

    def status(self) -> dict[str, Any]:
        return dict(requests.get(f"{self.url}/_local/status", timeout=10).json())

    def records(self, kind: str = "record") -> list[dict[str, Any]]:
        if not self.log_file.exists():
            return []
        lines = [json.loads(line) for line in self.log_file.read_text().splitlines() if line.strip()]
        return [line for line in lines if line["kind"] == kind]

    def wait_idle(self, timeout: float = 20) -> None:
        def idle() -> bool:
            status = self.status()
            jobs = status["queues"]["Jobs"]
            return bool(status["pollersBusy"] == 0 and jobs["visible"] == 0 and jobs["inFlight"] == 0)

        wait_for(lambda: all(idle() for _ in range(3)), timeout, message="the Jobs queue to drain")

    def drain(self, queue: str) -> None:
        """Empty a queue (PurgeQueue is allowed once a minute, too rarely for these tests)."""
        sqs, url = self.client("sqs"), self.state["resources"][queue]
        while messages := sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10).get("Messages"):
            for message in messages:
                sqs.delete_message(QueueUrl=url, ReceiptHandle=message["ReceiptHandle"])

    def cli(self, *args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "reclift_local", *args, "--state-file", str(self.state_file)],
            cwd=self.root,
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )

    def stop(self) -> int:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
        return self.process.wait(timeout=20)


def start_stack(root: Path, extra_env: dict[str, str] | None = None) -> Stack:
    template = write_project(root)
    state_file = root / ".reclift" / "stack.json"
    log_file = root / "calls.jsonl"
    output = root / "runner.log"
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "SHOPIFY_", "PORT"))}
    env.update(extra_env or {})
    with output.open("wb") as out:
        process = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "reclift_local",
                "run",
                "--template",
                str(template),
                "--port",
                "0",
                "--state-file",
                str(state_file),
                "--retry-delay",
                "0",
                "--parameter-overrides",
                f"LogFile={log_file}",
            ],
            cwd=root,
            stdout=out,
            stderr=subprocess.STDOUT,
            env=env,
        )
    stack = Stack(process, root, state_file, log_file, output)
    deadline = time.monotonic() + 40
    while not state_file.exists():
        if process.poll() is not None or time.monotonic() > deadline:
            stack.stop()
            pytest.fail(f"the local stack did not start:\n{output.read_text()}")
        time.sleep(0.05)
    return stack


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    running = start_stack(
        tmp_path_factory.mktemp("stack"),
        {"SHOPIFY_API_SECRET": "tiny-current-secret", "SHOPIFY_API_SECRET_PREVIOUS": "tiny-old-secret"},
    )
    yield running
    assert running.stop() == 0, running.output.read_text()


# ------------------------------------------------------------------------------------------ template resolution


def test_template_resolution_without_a_server(tmp_path: Path) -> None:
    template = load_template(write_project(tmp_path))
    resolver = Resolver(template, region="eu-west-1", parameter_overrides={"Greeting": "bye"})

    assert resolver.resolve({"Ref": "Items"}) == "reclift-Items"
    assert resolver.resolve({"Fn::GetAtt": ["JobsDLQ", "QueueName"]}) == "reclift-JobsDLQ"
    assert resolver.resolve({"Fn::Sub": "${Items.Arn}/x/${Greeting}/${AWS::Region}/${!Literal}"}) == (
        "arn:aws:dynamodb:eu-west-1:123456789012:table/reclift-Items/x/bye/eu-west-1/${Literal}"
    )
    assert resolver.condition("IsHello") is False
    assert resolver.condition("HasPrevious") is False
    # AWS::NoValue removes the key that holds it
    assert resolver.resolve({"a": 1, "b": {"Fn::If": ["HasPrevious", "x", {"Ref": "AWS::NoValue"}]}}) == {"a": 1}

    specs = {s.logical_id: s for s in function_specs(template, resolver, tmp_path)}
    assert set(specs) == {"Echo", "Consumer", "Nightly", "Slow"}
    echo = specs["Echo"]
    assert echo.code_dir == (tmp_path / "fn").resolve()
    assert echo.handler == "app.echo"
    assert (echo.timeout, echo.memory) == (5, 256)
    assert specs["Slow"].timeout == 3
    assert echo.environment["WORD"] == "ignored"  # Greeting was overridden
    assert echo.environment["ITEMS_TABLE"] == "reclift-Items"  # from Globals
    assert echo.environment["JOINED"] == "eu-west-1-b"
    assert echo.environment["INDEX_ARN"].endswith(":table/reclift-Items/index/by_g")
    assert "PREVIOUS_PARAM" not in echo.environment
    assert echo.layer_dirs == [(tmp_path / "layer").resolve()]
    assert {r.route_key for r in echo.routes} == {"ANY /echo/{rest+}", "GET /items/{id}", "GET /items/special"}
    [source] = specs["Consumer"].sqs_sources
    assert source.queue_arn == "arn:aws:sqs:eu-west-1:123456789012:reclift-Jobs"
    assert source.report_batch_item_failures
    assert specs["Nightly"].schedules[0].expression == "rate(1 day)"


def test_routes_prefer_the_most_specific_match() -> None:
    routes = compile_routes(
        [
            HttpRoute("A", "a", "ANY", "/items/{rest+}"),
            HttpRoute("B", "b", "GET", "/items/{id}"),
            HttpRoute("C", "c", "GET", "/items/special"),
            HttpRoute("D", "d", "ANY", "$default"),
        ]
    )

    def target(method: str, path: str) -> tuple[str, dict[str, str]] | None:
        found = match_route(routes, method, path)
        return None if found is None else (found[0].function, found[1])

    assert target("GET", "/items/special") == ("C", {})
    assert target("GET", "/items/42") == ("B", {"id": "42"})
    assert target("POST", "/items/42") == ("A", {"rest": "42"})
    assert target("GET", "/items/a/b%2Fc") == ("A", {"rest": "a/b/c"})
    assert target("GET", "/other") == ("D", {})


# --------------------------------------------------------------------------------------------- resources in moto


def test_tables_queues_and_secrets_exist_as_the_template_declares(stack: Stack) -> None:
    state = stack.state
    assert state["resources"]["Items"] == "reclift-Items"
    assert state["resources"]["Jobs"].endswith("/reclift-Jobs")
    assert state["pid"] == stack.process.pid

    dynamodb = stack.client("dynamodb")
    table = dynamodb.describe_table(TableName="reclift-Items")["Table"]
    assert [k["AttributeName"] for k in table["KeySchema"]] == ["pk"]
    assert [i["IndexName"] for i in table["GlobalSecondaryIndexes"]] == ["by_g"]
    ttl = dynamodb.describe_time_to_live(TableName="reclift-Items")["TimeToLiveDescription"]
    assert ttl == {"TimeToLiveStatus": "ENABLED", "AttributeName": "expires_at"}

    sqs = stack.client("sqs")
    attrs = sqs.get_queue_attributes(QueueUrl=state["resources"]["Jobs"], AttributeNames=["All"])["Attributes"]
    assert attrs["VisibilityTimeout"] == "120"
    assert attrs["MessageRetentionPeriod"] == "3600"
    assert json.loads(attrs["RedrivePolicy"]) == {
        "deadLetterTargetArn": "arn:aws:sqs:us-east-1:123456789012:reclift-JobsDLQ",
        "maxReceiveCount": 2,
    }

    ssm = stack.client("ssm")
    current = ssm.get_parameter(Name="/tiny/secret", WithDecryption=True)["Parameter"]
    assert (current["Type"], current["Value"]) == ("SecureString", "tiny-current-secret")
    previous = ssm.get_parameter(Name="/reclift/shopify-api-secret-previous", WithDecryption=True)["Parameter"]
    assert previous["Value"] == "tiny-old-secret"


# ------------------------------------------------------------------------------------------------------- HTTP API


def test_http_route_gets_an_api_gateway_v2_event(stack: Stack) -> None:
    port = stack.state["port"]
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    body = bytes(range(256))
    connection.putrequest("POST", "/echo/a/b%20c?z=1&a=2&a=3&sig=x%2By&empty=", skip_accept_encoding=True)
    connection.putheader("Content-Type", "application/octet-stream")
    connection.putheader("X-Repeated", "one")
    connection.putheader("X-Repeated", "two")
    connection.putheader("Cookie", "c1=v1; c2=v2")
    connection.putheader("Content-Length", str(len(body)))
    connection.endheaders(body)
    response = connection.getresponse()
    assert response.status == 200
    assert response.getheader("apigw-requestid")
    payload = json.loads(response.read())
    event, env, context = payload["event"], payload["env"], payload["context"]

    assert event["version"] == "2.0"
    assert event["routeKey"] == "ANY /echo/{rest+}"
    assert event["rawPath"] == "/echo/a/b%20c"
    assert event["rawQueryString"] == "z=1&a=2&a=3&sig=x%2By&empty="
    assert event["queryStringParameters"] == {"z": "1", "a": "2,3", "sig": "x+y", "empty": ""}
    assert event["pathParameters"] == {"rest": "a/b c"}
    assert event["cookies"] == ["c1=v1", "c2=v2"]
    assert event["headers"]["x-repeated"] == "one,two"
    assert event["headers"]["content-type"] == "application/octet-stream"
    assert "cookie" not in event["headers"]
    assert all(name == name.lower() for name in event["headers"])
    assert event["isBase64Encoded"] is True
    assert base64.b64decode(event["body"]) == body
    ctx = event["requestContext"]
    assert ctx["http"] == {
        "method": "POST",
        "path": "/echo/a/b%20c",
        "protocol": "HTTP/1.1",
        "sourceIp": "127.0.0.1",
        "userAgent": "",
    }
    assert ctx["stage"] == "$default"
    assert ctx["routeKey"] == "ANY /echo/{rest+}"
    assert {"accountId", "apiId", "domainName", "requestId", "time", "timeEpoch"} <= set(ctx)
    assert set(event) <= set(json.loads((FIXTURES / "apigw-http-api-proxy.json").read_text()))

    # The function's environment: resolved, pointed at the emulator, and free of secrets.
    assert env["AWS_LAMBDA_FUNCTION_NAME"] == "Echo"
    assert env["AWS_LAMBDA_FUNCTION_MEMORY_SIZE"] == "256"
    assert env["AWS_ENDPOINT_URL"] == stack.state["moto_endpoint"]
    assert env["POWERTOOLS_TRACE_DISABLED"] == "true"
    assert "POWERTOOLS_DEV" not in env
    assert env["WORD"] == "greeted"
    assert env["JOBS_URL"] == stack.state["resources"]["Jobs"]
    assert env["DLQ_NAME"] == "reclift-JobsDLQ"
    assert env["SECRET_PARAM"] == "/tiny/secret"
    assert env["PREVIOUS_PARAM"] == "/reclift/shopify-api-secret-previous"
    assert "tiny-current-secret" not in json.dumps(env)
    assert context["function_name"] == "Echo"
    assert context["invoked_function_arn"] == "arn:aws:lambda:us-east-1:123456789012:function:Echo"
    assert 0 < context["remaining"] <= 5000
    assert payload["layer"] == "from the layer"

    text = requests.post(f"{stack.url}/echo/json", json={"k": "v"}, timeout=10).json()["event"]
    assert (text["isBase64Encoded"], text["body"]) == (False, '{"k": "v"}')
    assert "queryStringParameters" not in text


def test_http_results_and_errors_map_like_api_gateway(stack: Stack) -> None:
    assert requests.get(f"{stack.url}/items/7", timeout=10).json()["event"]["pathParameters"] == {"id": "7"}
    assert requests.get(f"{stack.url}/items/special", timeout=10).json()["event"]["routeKey"] == "GET /items/special"

    plain = requests.get(f"{stack.url}/echo/x?plain", timeout=10)
    assert (plain.status_code, plain.headers["content-type"], plain.json()) == (
        200,
        "application/json",
        {"plain": True, "n": 1},
    )

    binary = requests.get(f"{stack.url}/echo/x?binary", timeout=10)
    assert binary.status_code == 201
    assert binary.content == bytes(range(256))
    assert binary.headers["content-type"] == "image/png"
    assert binary.cookies.get("a") == "1"

    boom = requests.get(f"{stack.url}/echo/x?boom", timeout=10)
    assert (boom.status_code, boom.json()) == (500, {"message": "Internal Server Error"})
    missing = requests.delete(f"{stack.url}/items/7", timeout=10)
    assert (missing.status_code, missing.json()) == (404, {"message": "Not Found"})
    assert requests.get(f"{stack.url}/_local/health", timeout=10).status_code == 200


def test_a_body_over_lambdas_payload_limit_gets_413_not_500(stack: Stack) -> None:
    within_api_gateway = b"x" * (7 * 1024 * 1024)  # under API Gateway's 10 MB, over Lambda's 6 MB
    over_api_gateway = b"x" * (10 * 1024 * 1024 + 1)

    for body in (within_api_gateway, over_api_gateway):
        response = requests.post(f"{stack.url}/echo/x", data=body, timeout=30)
        assert (response.status_code, response.json()) == (413, {"message": "Request Entity Too Large"})


@pytest.mark.parametrize(
    "headers",
    [
        {"Origin": "https://attacker.example", "Content-Type": "text/plain"},
        {"Sec-Fetch-Site": "cross-site", "Content-Type": "text/plain"},
        {"Origin": "null"},
    ],
)
def test_a_web_page_cannot_drive_the_control_routes(stack: Stack, headers: dict[str, str]) -> None:
    """Given a page in the developer's browser, when it posts to /_local/ (a simple request, no preflight), then 403
    and nothing runs."""
    before = stack.status()["functions"]["Echo"]["invocations"]

    response = requests.post(f"{stack.url}/_local/invoke/Echo", data="{}", headers=headers, timeout=10)

    assert response.status_code == 403
    assert "refuse" in response.json()["message"]
    assert stack.status()["functions"]["Echo"]["invocations"] == before
    same_origin = {"Origin": stack.url, "Sec-Fetch-Site": "same-origin"}
    assert requests.post(f"{stack.url}/_local/invoke/Echo", json={}, headers=same_origin, timeout=10).ok


def test_a_timeout_kills_and_restarts_the_worker(stack: Stack) -> None:
    first = requests.post(f"{stack.url}/_local/invoke/Slow", json={}, timeout=10)
    assert first.status_code == 200
    pid = first.json()["result"]["pid"]

    slow = requests.post(f"{stack.url}/_local/invoke/Slow", json={"sleep": 6}, timeout=15)
    assert slow.status_code == 500
    assert slow.json()["error"]["errorType"] == "Sandbox.Timedout"
    wait_for(lambda: not process_alive(pid), 5, message="the timed-out worker to die")

    again = requests.post(f"{stack.url}/_local/invoke/Slow", json={}, timeout=10).json()
    assert again["result"]["pid"] != pid
    stats = stack.status()["functions"]["Slow"]
    assert stats["timeouts"] == 1
    assert stats["errors"] == 1


# ------------------------------------------------------------------------------------------------ SQS event source


def test_sqs_batch_deletes_only_the_successes(stack: Stack) -> None:
    sqs = stack.client("sqs")
    url = stack.state["resources"]["Jobs"]
    sqs.send_message_batch(
        QueueUrl=url,
        Entries=[
            {"Id": "1", "MessageBody": "ok-1"},
            {"Id": "2", "MessageBody": "flaky-1"},
            {
                "Id": "3",
                "MessageBody": "ok-2",
                "MessageAttributes": {"shop": {"DataType": "String", "StringValue": "s.myshopify.com"}},
            },
        ],
    )
    wait_for(
        lambda: {r["body"] for r in stack.records()} >= {"ok-1", "ok-2", "flaky-1"},
        15,
        message="the batch to be delivered",
    )
    stack.wait_idle()

    deliveries: dict[str, list[int]] = {}
    for record in stack.records():
        deliveries.setdefault(record["body"], []).append(record["count"])
    # Successes were deleted after one delivery; the reported failure stayed and came back once.
    assert deliveries["ok-1"] == [1]
    assert deliveries["ok-2"] == [1]
    assert deliveries["flaky-1"] == [1, 2]

    record = next(r["record"] for r in stack.records() if r["body"] == "ok-1")
    sample = json.loads((FIXTURES / "sqs-receive-message.json").read_text())["Records"][0]
    assert list(record) == list(sample)
    assert list(record["attributes"]) == list(sample["attributes"])
    assert record["eventSource"] == "aws:sqs"
    assert record["eventSourceARN"] == "arn:aws:sqs:us-east-1:123456789012:reclift-Jobs"
    assert record["awsRegion"] == "us-east-1"
    assert record["messageAttributes"] == {}
    with_attributes = next(r["record"] for r in stack.records() if r["body"] == "ok-2")
    assert with_attributes["messageAttributes"] == {
        "shop": {
            "stringValue": "s.myshopify.com",
            "stringListValues": [],
            "binaryListValues": [],
            "dataType": "String",
        }
    }


def test_a_raising_invocation_deletes_nothing(stack: Stack) -> None:
    """Both messages are sent in one SendMessageBatch, but a receive may return the first alone (moto adds them one
    at a time and wakes the poller on each; AWS's poller may split a batch too). So this asserts over the batches
    that actually happened, and sends again until the crash shared an invocation with an innocent message."""
    sqs, url = stack.client("sqs"), stack.state["resources"]["Jobs"]
    for attempt in range(5):
        innocent, crash = f"ok-with-crash-{attempt}", f"crash-{attempt}"
        sqs.send_message_batch(
            QueueUrl=url, Entries=[{"Id": "1", "MessageBody": innocent}, {"Id": "2", "MessageBody": crash}]
        )
        # The crash fails every batch it is in until maxReceiveCount (2) sends it to the DLQ.
        wait_for(lambda: stack.status()["queues"]["JobsDLQ"]["visible"] >= 1, 20, message="the crash in the DLQ")
        stack.wait_idle()
        received = [r for r in stack.records() if r["body"] in {innocent, crash}]
        crash_invocations = {r["invocation"] for r in received if r["body"] == crash}
        counts = [r["count"] for r in received if r["body"] == innocent]
        in_dlq = stack.status()["queues"]["JobsDLQ"]["visible"]
        stack.drain("JobsDLQ")
        shared = [r["invocation"] in crash_invocations for r in received if r["body"] == innocent]
        if shared[0]:
            # It shared a raising invocation, so it was not deleted: it came back, and went to the DLQ if its
            # second delivery raised too (it almost always comes back in the crash's batch again).
            assert counts == [1, 2]
            assert in_dlq == 1 + shared[-1]
            assert stack.status()["functions"]["Consumer"]["errors"] >= 2
            return
        assert counts == [1]  # received alone: its batch succeeded and deleted it
        assert in_dlq == 1
    raise AssertionError("the crash never shared an invocation with another message in 5 attempts")


def test_poison_reaches_the_dlq_and_redrive_brings_it_back(stack: Stack) -> None:
    sqs = stack.client("sqs")
    sqs.send_message(QueueUrl=stack.state["resources"]["Jobs"], MessageBody="poison-1")
    wait_for_value(lambda: stack.status()["queues"]["JobsDLQ"]["visible"], 1, 20, message="the poison in the DLQ")
    assert [r["count"] for r in stack.records() if r["body"] == "poison-1"] == [1, 2]
    stack.wait_idle()

    (stack.log_file.parent / (stack.log_file.name + ".cured")).write_text("")
    redriven = requests.post(f"{stack.url}/_local/redrive", timeout=10).json()
    assert redriven["total"] == 1
    assert redriven["redriven"]["JobsDLQ"] == {"to": "Jobs", "moved": 1}
    wait_for(
        lambda: len([r for r in stack.records() if r["body"] == "poison-1"]) == 3,
        15,
        message="the redriven message to be processed",
    )
    stack.wait_idle()
    assert stack.status()["queues"]["JobsDLQ"]["visible"] == 0
    (stack.log_file.parent / (stack.log_file.name + ".cured")).unlink()


# ------------------------------------------------------------------------------------------------------ invoke CLI


def test_invoke_cli(stack: Stack, tmp_path: Path) -> None:
    event = tmp_path / "event.json"
    event.write_text(json.dumps({"sleep": 0}))
    ok = stack.cli("invoke", "Slow", "--event", str(event))
    assert ok.returncode == 0, ok.stderr
    assert "pid" in json.loads(ok.stdout)

    event.write_text(json.dumps({"sleep": 6}))
    failed = stack.cli("invoke", "Slow", "--event", str(event))
    assert failed.returncode == 1
    assert json.loads(failed.stdout)["errorType"] == "Sandbox.Timedout"

    unknown = stack.cli("invoke", "Nope")
    assert unknown.returncode == 2
    assert "Consumer, Echo, Nightly, Slow" in unknown.stderr
    needs_event = stack.cli("invoke", "Echo")
    assert needs_event.returncode == 2
    assert "Echo needs --event (it is not a scheduled function)" in needs_event.stderr

    not_running = subprocess.run(
        [sys.executable, "-m", "reclift_local", "invoke", "Echo", "--state-file", str(tmp_path / "none.json")],
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )
    assert not_running.returncode == 2
    assert "not running" in not_running.stderr


def test_invoke_a_scheduled_function_waits_for_its_fan_out(stack: Stack) -> None:
    stack.wait_idle()
    done = stack.cli("invoke", "Nightly")
    assert done.returncode == 0, done.stdout + done.stderr
    assert json.loads(done.stdout) == {"queued": 3}
    [nightly] = stack.records("nightly")[-1:]
    scheduled = nightly["event"]
    sample = json.loads((FIXTURES / "eventbridge-scheduled-event.json").read_text())
    assert set(sample) <= set(scheduled)
    assert (scheduled["detail-type"], scheduled["source"]) == ("Scheduled Event", "aws.events")
    # It returned only after the consumer had processed everything the run queued.
    bodies = {r["body"] for r in stack.records()}
    assert {f"job-{scheduled['id']}-{i}" for i in range(3)} <= bodies

    (stack.log_file.parent / (stack.log_file.name + ".nightly-poison")).write_text("")
    try:
        failed = stack.cli("invoke", "Nightly")
    finally:
        (stack.log_file.parent / (stack.log_file.name + ".nightly-poison")).unlink()
    assert failed.returncode == 1, failed.stderr
    assert "JobsDLQ gained 1 message(s)" in failed.stderr
    stack.drain("JobsDLQ")


# --------------------------------------------------------------------------------------------------------- shutdown


def test_sigterm_stops_everything_and_leaves_no_orphans(tmp_path: Path) -> None:
    running = start_stack(tmp_path)
    status = running.status()
    pids = [pid for f in status["functions"].values() for pid in f["workers"]]
    assert len(pids) == 4
    assert all(process_alive(pid) for pid in pids)
    assert "reclift local stack ready on http://127.0.0.1:" in running.output.read_text()

    assert running.stop() == 0
    assert not running.state_file.exists()
    assert not any(process_alive(pid) for pid in pids)


def test_workers_exit_when_the_runner_is_killed(tmp_path: Path) -> None:
    running = start_stack(tmp_path)
    pids = [pid for f in running.status()["functions"].values() for pid in f["workers"]]
    running.process.kill()
    running.process.wait(timeout=10)
    wait_for(lambda: not any(process_alive(pid) for pid in pids), 5, message="orphaned workers to exit")
