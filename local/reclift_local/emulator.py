"""The embedded AWS emulator (moto server) and the template's resources created in it."""

from __future__ import annotations

import functools
import json
import logging
import os
import threading
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import boto3
from botocore.config import Config

from .template import (
    ACCOUNT_ID,
    QUEUE_TYPE,
    TABLE_TYPES,
    TOPIC_TYPE,
    Resolver,
    ResourceAttrs,
    TemplateError,
    queue_name,
    resource_attrs,
)

if TYPE_CHECKING:
    from mypy_boto3_dynamodb import DynamoDBClient
    from mypy_boto3_sqs import SQSClient
    from mypy_boto3_sqs.literals import QueueAttributeNameType

FAKE_CREDENTIALS = {
    "AWS_ACCESS_KEY_ID": "testing",
    "AWS_SECRET_ACCESS_KEY": "testing",
    "AWS_SESSION_TOKEN": "testing",
}


def use_fake_credentials(region: str) -> None:
    """Make sure nothing in this process can reach a real AWS account with real credentials."""
    os.environ.update(FAKE_CREDENTIALS)
    os.environ.pop("AWS_PROFILE", None)
    os.environ["AWS_DEFAULT_REGION"] = region


class Emulator:
    """moto's server on a loopback port, in this process, in a thread."""

    def __init__(self, port: int = 0) -> None:
        self._requested_port = port
        self._server: Any = None
        self.endpoint = ""

    def start(self) -> str:
        # Imported here: moto is a few hundred milliseconds of imports that `invoke` never needs.
        from moto.server import ThreadedMotoServer

        logging.getLogger("werkzeug").setLevel(logging.ERROR)
        _stop_tracking_models()
        _serialize_dynamodb()
        self._server = ThreadedMotoServer(ip_address="127.0.0.1", port=self._requested_port, verbose=False)
        self._server.start()
        host, port = self._server.get_host_and_port()
        self.endpoint = f"http://{host}:{port}"
        return self.endpoint

    def stop(self) -> None:
        if self._server is not None:
            self._server.stop()
            self._server = None


def _stop_tracking_models() -> None:
    """moto keeps every model object it ever makes (each SQS message, DynamoDB item and the copy of a whole table
    each TransactWriteItems takes) in a class-level list for its dashboard's /moto-api/data.json, which nothing here
    reads: a process that serves many requests grew by gigabytes. Only that list is dropped; the emulated state (the
    backends) is untouched."""
    from moto.core.common_models import BaseModel
    from moto.core.model_instances import reset_model_data

    def untracked(cls: type, *args: Any, **kwargs: Any) -> Any:
        return super(BaseModel, cls).__new__(cls)  # type: ignore[misc]  # BaseModel.__new__ but for the listing

    BaseModel.__new__ = staticmethod(untracked)  # type: ignore[method-assign]
    reset_model_data()


_DYNAMODB_LOCK = threading.RLock()


def _serialize_dynamodb() -> None:
    """DynamoDB applies each write atomically and isolates a transaction from every other request; moto's server
    handles requests in threads, without a lock. Two of its faults follow:
    - a conditional write checks, then writes: two threads can both pass the check;
    - a TransactWriteItems copies each table it touches, and when one of its conditions fails it puts the copies
      back, erasing whatever other threads wrote to those tables meanwhile (a duplicate delivery's refused order
      undid counter updates of other orders and of the storefront's events).
    Here moto answers one DynamoDB (or DynamoDB Streams) request at a time, so each sees every other whole, as
    DynamoDB's isolation guarantees. Patched once per process; DynamoDB Local and AWS need nothing of this."""
    from moto.dynamodb.responses import DynamoHandler
    from moto.dynamodbstreams.responses import DynamoDBStreamsHandler

    for handler in (DynamoHandler, DynamoDBStreamsHandler):
        action = handler.call_action
        if getattr(action, "serialized", False):
            continue

        @functools.wraps(action)
        def serialized(self: Any, *, _action: Any = action) -> Any:
            with _DYNAMODB_LOCK:
                return _action(self)

        serialized.serialized = True  # type: ignore[attr-defined]
        handler.call_action = serialized  # type: ignore[method-assign]


def client_config() -> Config:
    # The emulator is local: fail fast instead of botocore's default retries with back-off.
    return Config(retries={"max_attempts": 2, "mode": "standard"}, connect_timeout=5, read_timeout=60)


@dataclass
class AwsClients:
    endpoint: str
    region: str
    dynamodb_endpoint: str | None = None  # DynamoDB Local instead of moto's DynamoDB
    dynamodb: DynamoDBClient = field(init=False)
    sqs: SQSClient = field(init=False)
    ssm: Any = field(init=False)  # no SSM type stubs in the dev dependencies
    sns: Any = field(init=False)

    def __post_init__(self) -> None:
        kwargs: dict[str, Any] = {"endpoint_url": self.endpoint, "region_name": self.region, "config": client_config()}
        self.dynamodb = boto3.client("dynamodb", **(kwargs | {"endpoint_url": self.dynamodb_endpoint or self.endpoint}))
        self.sqs = boto3.client("sqs", **kwargs)
        self.ssm = boto3.client("ssm", **kwargs)
        self.sns = boto3.client("sns", **kwargs)


@dataclass
class QueueInfo:
    logical_id: str
    name: str
    url: str
    arn: str
    dlq_arn: str | None = None
    max_receive_count: int | None = None


class TableMismatchError(RuntimeError):
    """A table kept in DynamoDB Local's data directory no longer has the template's keys or indexes."""


class Provisioner:
    """Creates the template's tables and queues in the emulator and knows their physical attributes."""

    def __init__(self, template: Mapping[str, Any], clients: AwsClients) -> None:
        self.template = template
        self.clients = clients
        self.queue_urls: dict[str, str] = {}
        self.queues: dict[str, QueueInfo] = {}
        self.tables: dict[str, str] = {}
        self.topics: dict[str, str] = {}  # logical id → topic ARN

    def attrs_of(self, logical_id: str) -> ResourceAttrs:
        return resource_attrs(self.template, logical_id, self.clients.region, self.queue_urls)

    def _included(self, resolver: Resolver, resource: Mapping[str, Any]) -> bool:
        return "Condition" not in resource or resolver.condition(str(resource["Condition"]))

    def create_all(self, resolver: Resolver) -> None:
        resources: Mapping[str, Any] = self.template.get("Resources") or {}
        for logical_id, resource in resources.items():
            if resource.get("Type") == QUEUE_TYPE and self._included(resolver, resource):
                self._create_queue(logical_id, resource)
        # Redrive policies name their DLQ by ARN, which moto only accepts once the DLQ exists: a second pass.
        for logical_id, resource in resources.items():
            if resource.get("Type") == QUEUE_TYPE and logical_id in self.queues:
                self._configure_queue(logical_id, resolver.resolve(resource.get("Properties") or {}))
        for logical_id, resource in resources.items():
            if resource.get("Type") == TOPIC_TYPE and self._included(resolver, resource):
                # Subscriptions are not emulated: tests subscribe a queue of their own to read what is published.
                self.topics[logical_id] = self.clients.sns.create_topic(
                    Name=self.attrs_of(logical_id).attrs["TopicName"]
                )["TopicArn"]
        for logical_id, resource in resources.items():
            if resource.get("Type") in TABLE_TYPES and self._included(resolver, resource):
                self._create_table(logical_id, resource["Type"], resolver.resolve(resource.get("Properties") or {}))

    # -------------------------------------------------------------------------------------------------------- SQS

    def _create_queue(self, logical_id: str, resource: Mapping[str, Any]) -> None:
        props = resource.get("Properties") or {}
        name = queue_name(logical_id, props)
        attributes: dict[QueueAttributeNameType, str] = {"FifoQueue": "true"} if name.endswith(".fifo") else {}
        url = self.clients.sqs.create_queue(QueueName=name, Attributes=attributes)["QueueUrl"]
        self.queue_urls[logical_id] = url
        arn = f"arn:aws:sqs:{self.clients.region}:{ACCOUNT_ID}:{name}"
        self.queues[logical_id] = QueueInfo(logical_id, name, url, arn)

    def _configure_queue(self, logical_id: str, props: Mapping[str, Any]) -> None:
        mapping: dict[str, QueueAttributeNameType] = {
            "VisibilityTimeout": "VisibilityTimeout",
            "MessageRetentionPeriod": "MessageRetentionPeriod",
            "DelaySeconds": "DelaySeconds",
            "MaximumMessageSize": "MaximumMessageSize",
            "ReceiveMessageWaitTimeSeconds": "ReceiveMessageWaitTimeSeconds",
            "ContentBasedDeduplication": "ContentBasedDeduplication",
        }
        attributes: dict[QueueAttributeNameType, str] = {
            attr: _attr_str(props[key]) for key, attr in mapping.items() if key in props
        }
        info = self.queues[logical_id]
        redrive = props.get("RedrivePolicy")
        if isinstance(redrive, str):
            redrive = json.loads(redrive)
        if isinstance(redrive, dict):
            info.dlq_arn = str(redrive["deadLetterTargetArn"])
            info.max_receive_count = int(redrive["maxReceiveCount"])
            attributes["RedrivePolicy"] = json.dumps(
                {"deadLetterTargetArn": info.dlq_arn, "maxReceiveCount": info.max_receive_count}
            )
        if attributes:
            self.clients.sqs.set_queue_attributes(QueueUrl=info.url, Attributes=attributes)

    def queue_by_arn(self, arn: str) -> QueueInfo:
        for info in self.queues.values():
            if info.arn == arn:
                return info
        raise TemplateError(f"no queue in the template has the ARN {arn}")

    def dead_letter_queues(self) -> dict[str, list[QueueInfo]]:
        """Each DLQ's logical id with the queues that send to it."""
        out: dict[str, list[QueueInfo]] = {}
        for info in self.queues.values():
            if info.dlq_arn:
                out.setdefault(self.queue_by_arn(info.dlq_arn).logical_id, []).append(info)
        return out

    # --------------------------------------------------------------------------------------------------- DynamoDB

    def _create_table(self, logical_id: str, kind: str, props: Mapping[str, Any]) -> None:
        name = self.attrs_of(logical_id).ref
        if kind == "AWS::Serverless::SimpleTable":
            primary = props.get("PrimaryKey") or {"Name": "id", "Type": "String"}
            key_type = {"String": "S", "Number": "N", "Binary": "B"}[str(primary.get("Type", "String"))]
            definition: Any = {"AttributeName": str(primary["Name"]), "AttributeType": key_type}
            self._create_or_keep(
                {
                    "TableName": name,
                    "AttributeDefinitions": [definition],
                    "KeySchema": [{"AttributeName": str(primary["Name"]), "KeyType": "HASH"}],
                    "BillingMode": "PAY_PER_REQUEST",
                }
            )
            self.tables[logical_id] = name
            return
        kwargs: dict[str, Any] = {
            "TableName": name,
            "AttributeDefinitions": props["AttributeDefinitions"],
            "KeySchema": props["KeySchema"],
            "BillingMode": props.get("BillingMode", "PROVISIONED"),
        }
        provisioned = kwargs["BillingMode"] == "PROVISIONED"
        if provisioned:
            kwargs["ProvisionedThroughput"] = _throughput(props.get("ProvisionedThroughput"))
        for key in ("GlobalSecondaryIndexes", "LocalSecondaryIndexes"):
            if props.get(key):
                indexes = []
                for index in props[key]:
                    index = {k: v for k, v in index.items() if k in {"IndexName", "KeySchema", "Projection"}}
                    if provisioned and key == "GlobalSecondaryIndexes":
                        index["ProvisionedThroughput"] = _throughput(index.get("ProvisionedThroughput"))
                    indexes.append(index)
                kwargs[key] = indexes
        stream = props.get("StreamSpecification")
        if isinstance(stream, dict) and stream.get("StreamViewType"):
            kwargs["StreamSpecification"] = {"StreamEnabled": True, "StreamViewType": stream["StreamViewType"]}
        kept = self._create_or_keep(kwargs)
        ttl = props.get("TimeToLiveSpecification")
        if not kept and isinstance(ttl, dict) and str(ttl.get("Enabled", False)).lower() == "true":
            self.clients.dynamodb.update_time_to_live(
                TableName=name,
                TimeToLiveSpecification={"AttributeName": str(ttl["AttributeName"]), "Enabled": True},
            )
        self.tables[logical_id] = name

    def _create_or_keep(self, kwargs: dict[str, Any]) -> bool:
        """Creates the table; True when it already exists (a data directory kept from an earlier run) with the same
        key schema and indexes. One the template has changed since cannot be kept: that fails, naming the table."""
        client = self.clients.dynamodb
        try:
            client.create_table(**kwargs)
            return False
        except client.exceptions.ResourceInUseException:
            pass
        table = client.describe_table(TableName=kwargs["TableName"])["Table"]

        def shape(keys: Any, indexes: Any) -> tuple[Any, ...]:
            return (
                sorted((k["AttributeName"], k["KeyType"]) for k in keys),
                sorted(i["IndexName"] for i in indexes or []),
            )

        wanted = shape(kwargs["KeySchema"], kwargs.get("GlobalSecondaryIndexes"))
        found = shape(table["KeySchema"], table.get("GlobalSecondaryIndexes"))
        if wanted != found:
            raise TableMismatchError(
                f"table {kwargs['TableName']} was kept from an earlier run with keys and indexes {found}, but the "
                f"template now declares {wanted}: wipe the kept data (make clean-data) and start again"
            )
        return True

    # -------------------------------------------------------------------------------------------------------- SSM

    def put_secret(self, name: str, value: str) -> None:
        self.clients.ssm.put_parameter(Name=name, Value=value, Type="SecureString", Overwrite=True)


def _attr_str(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def _throughput(value: Any) -> dict[str, int]:
    value = value or {}
    return {
        "ReadCapacityUnits": int(value.get("ReadCapacityUnits", 5)),
        "WriteCapacityUnits": int(value.get("WriteCapacityUnits", 5)),
    }
