"""Read a SAM template and resolve its intrinsic functions the way CloudFormation would for a local stack.

Everything the local stack creates or runs is derived from here, so a table, queue, route or function added to
`template.yaml` needs no change in this package.
"""

from __future__ import annotations

import base64
import json
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

STACK_NAME = "reclift"
ACCOUNT_ID = "123456789012"
DEFAULT_REGION = "us-east-1"
DEFAULT_TIMEOUT = 3  # Lambda's own defaults when neither the function nor Globals say
DEFAULT_MEMORY = 128
DEFAULT_SQS_BATCH_SIZE = 10
DEFAULT_STREAM_BATCH_SIZE = 100  # Lambda's defaults for a DynamoDB stream event source

TABLE_TYPES = {"AWS::DynamoDB::Table", "AWS::Serverless::SimpleTable"}
QUEUE_TYPE = "AWS::SQS::Queue"
TOPIC_TYPE = "AWS::SNS::Topic"
FUNCTION_TYPE = "AWS::Serverless::Function"
LAYER_TYPE = "AWS::Serverless::LayerVersion"


class TemplateError(Exception):
    """The template uses something the local stack cannot resolve."""


class _NoValue:
    """`AWS::NoValue`: removes the property or list item that holds it."""

    def __repr__(self) -> str:
        return "AWS::NoValue"


NO_VALUE: Any = _NoValue()


# ----------------------------------------------------------------------------------------------------------- loading


class _CfnLoader(yaml.SafeLoader):
    """A safe loader that turns CloudFormation's short tags (`!Ref`, `!GetAtt`, `!Sub`, ...) into their long form."""


def _construct_tag(loader: yaml.SafeLoader, suffix: str, node: yaml.Node) -> dict[str, Any]:
    value: Any
    if isinstance(node, yaml.ScalarNode):
        value = loader.construct_scalar(node)
    elif isinstance(node, yaml.SequenceNode):
        value = loader.construct_sequence(node, deep=True)
    elif isinstance(node, yaml.MappingNode):
        value = loader.construct_mapping(node, deep=True)
    else:  # pragma: no cover - yaml has no other node kinds
        raise TemplateError(f"unsupported node for !{suffix}")
    if suffix == "Ref":
        return {"Ref": value}
    if suffix == "Condition":
        return {"Condition": value}
    if suffix == "GetAtt" and isinstance(value, str):
        # The short form is `Resource.Attribute`; attributes themselves may contain dots (e.g. `Endpoint.Address`).
        resource, _, attribute = value.partition(".")
        value = [resource, attribute]
    return {f"Fn::{suffix}": value}


_CfnLoader.add_multi_constructor("!", _construct_tag)


def load_template(path: Path) -> dict[str, Any]:
    with path.open(encoding="utf-8") as fh:
        # A SafeLoader subclass: it only adds constructors for CloudFormation's tags.
        data = yaml.load(fh, Loader=_CfnLoader)  # noqa: S506
    if not isinstance(data, dict):
        raise TemplateError(f"{path} is not a CloudFormation template")
    return data


# -------------------------------------------------------------------------------------------------------- resolution


@dataclass
class ResourceAttrs:
    """What `!Ref` and `!GetAtt` return for one resource in the local stack."""

    ref: str
    attrs: dict[str, str] = field(default_factory=dict)


class Resolver:
    """Resolves intrinsic functions against parameters, conditions and the local stack's physical resources.

    Queue URLs are only known once the queues exist in the emulator, so resource attributes are looked up through
    `attrs_of`, which the stack fills in as it creates things.
    """

    def __init__(
        self,
        template: Mapping[str, Any],
        *,
        region: str,
        parameter_overrides: Mapping[str, str] | None = None,
        attrs_of: Callable[[str], ResourceAttrs] | None = None,
    ) -> None:
        self.template = template
        self.region = region
        self.parameters = _parameter_values(template.get("Parameters") or {}, parameter_overrides or {})
        self._attrs_of = attrs_of or default_attrs_factory(template, region)
        self._conditions: dict[str, bool] = {}
        self._evaluating: set[str] = set()

    # ----------------------------------------------------------------------------------------------- public helpers

    def resolve(self, value: Any) -> Any:
        """Resolve every intrinsic function inside `value`; `AWS::NoValue` entries are dropped."""
        if isinstance(value, dict):
            if len(value) == 1:
                key, arg = next(iter(value.items()))
                if key == "Ref":
                    return self._ref(self.resolve(arg))
                if key == "Condition" and isinstance(arg, str):
                    return self.condition(arg)
                if key.startswith("Fn::"):
                    return self._function(key[4:], arg)
            out: dict[str, Any] = {}
            for key, item in value.items():
                resolved = self.resolve(item)
                if resolved is not NO_VALUE:
                    out[key] = resolved
            return out
        if isinstance(value, list):
            return [r for r in (self.resolve(v) for v in value) if r is not NO_VALUE]
        return value

    def condition(self, name: str) -> bool:
        if name in self._conditions:
            return self._conditions[name]
        conditions = self.template.get("Conditions") or {}
        if name not in conditions:
            raise TemplateError(f"unknown condition {name!r}")
        if name in self._evaluating:
            raise TemplateError(f"condition {name!r} refers to itself")
        self._evaluating.add(name)
        try:
            result = self._truth(conditions[name])
        finally:
            self._evaluating.discard(name)
        self._conditions[name] = result
        return result

    def attrs_of(self, logical_id: str) -> ResourceAttrs:
        return self._attrs_of(logical_id)

    # ------------------------------------------------------------------------------------------------------ details

    def _truth(self, value: Any) -> bool:
        resolved = self.resolve(value)
        if isinstance(resolved, bool):
            return resolved
        if isinstance(resolved, str) and resolved.lower() in {"true", "false"}:
            return resolved.lower() == "true"
        raise TemplateError(f"not a condition: {value!r}")

    def pseudo_parameters(self) -> dict[str, Any]:
        return {
            "AWS::Region": self.region,
            "AWS::AccountId": ACCOUNT_ID,
            "AWS::Partition": "aws",
            "AWS::URLSuffix": "amazonaws.com",
            "AWS::StackName": STACK_NAME,
            "AWS::StackId": f"arn:aws:cloudformation:{self.region}:{ACCOUNT_ID}:stack/{STACK_NAME}/local",
            "AWS::NotificationARNs": [],
            "AWS::NoValue": NO_VALUE,
        }

    def _ref(self, name: Any) -> Any:
        if not isinstance(name, str):
            raise TemplateError(f"!Ref needs a name, got {name!r}")
        pseudo = self.pseudo_parameters()
        if name in pseudo:
            return pseudo[name]
        if name in self.parameters:
            return self.parameters[name]
        if name in (self.template.get("Resources") or {}):
            return self.attrs_of(name).ref
        raise TemplateError(f"!Ref to unknown name {name!r}")

    def _get_att(self, arg: Any) -> str:
        arg = self.resolve(arg)
        if not (isinstance(arg, list) and len(arg) == 2 and all(isinstance(a, str) for a in arg)):
            raise TemplateError(f"bad !GetAtt {arg!r}")
        logical_id, attribute = arg
        if logical_id not in (self.template.get("Resources") or {}):
            raise TemplateError(f"!GetAtt to unknown resource {logical_id!r}")
        attrs = self.attrs_of(logical_id)
        if attribute not in attrs.attrs:
            raise TemplateError(f"!GetAtt {logical_id}.{attribute}: attribute not known locally")
        return attrs.attrs[attribute]

    def _sub(self, arg: Any) -> str:
        if isinstance(arg, list):
            if len(arg) != 2:
                raise TemplateError(f"bad !Sub {arg!r}")
            text, variables = arg[0], self.resolve(arg[1])
        else:
            text, variables = arg, {}
        if not isinstance(text, str) or not isinstance(variables, dict):
            raise TemplateError(f"bad !Sub {arg!r}")

        def replace(match: re.Match[str]) -> str:
            inner = match.group(1)
            if inner.startswith("!"):  # `${!Literal}` stays as `${Literal}`
                return "${" + inner[1:] + "}"
            if inner in variables:
                return _to_str(variables[inner])
            if "." in inner and not inner.startswith("AWS::"):
                resource, _, attribute = inner.partition(".")
                return self._get_att([resource, attribute])
            return _to_str(self._ref(inner))

        return re.sub(r"\$\{([^}]+)\}", replace, text)

    def _function(self, name: str, arg: Any) -> Any:
        if name == "GetAtt":
            return self._get_att(arg)
        if name == "Sub":
            return self._sub(arg)
        if name == "If":
            if not (isinstance(arg, list) and len(arg) == 3):
                raise TemplateError(f"bad !If {arg!r}")
            return self.resolve(arg[1] if self.condition(arg[0]) else arg[2])
        if name == "Not":
            items = arg if isinstance(arg, list) else [arg]
            return not self._truth(items[0])
        if name == "And":
            return all(self._truth(item) for item in arg)
        if name == "Or":
            return any(self._truth(item) for item in arg)
        if name == "Equals":
            left, right = (self.resolve(item) for item in arg)
            return _to_str(left) == _to_str(right)
        if name == "Join":
            delimiter, items = self.resolve(arg)
            return str(delimiter).join(_to_str(item) for item in items)
        if name == "Select":
            index, items = self.resolve(arg)
            return items[int(index)]
        if name == "Split":
            delimiter, text = self.resolve(arg)
            return str(text).split(str(delimiter))
        if name == "Base64":
            return base64.b64encode(str(self.resolve(arg)).encode()).decode()
        if name == "FindInMap":
            map_name, top, second = self.resolve(arg)
            return self.template["Mappings"][map_name][top][second]
        if name == "GetAZs":
            return [f"{self.region}{zone}" for zone in "abc"]
        if name == "ToJsonString":
            return json.dumps(self.resolve(arg), separators=(",", ":"))
        raise TemplateError(f"Fn::{name} is not supported by the local stack")


def _to_str(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, list):
        return ",".join(_to_str(v) for v in value)
    return str(value)


def _parameter_values(declared: Mapping[str, Any], overrides: Mapping[str, str]) -> dict[str, Any]:
    unknown = set(overrides) - set(declared)
    if unknown:
        raise TemplateError(f"parameter overrides for undeclared parameters: {', '.join(sorted(unknown))}")
    values: dict[str, Any] = {}
    for name, spec in declared.items():
        spec = spec or {}
        if name in overrides:
            raw: Any = overrides[name]
        elif "Default" in spec:
            raw = spec["Default"]
        else:
            raise TemplateError(f"parameter {name} has no default and no override")
        kind = str(spec.get("Type", "String"))
        # CloudFormation hands parameter values to resources as strings (lists for the list types).
        if kind == "CommaDelimitedList" or kind.startswith("List<"):
            values[name] = raw if isinstance(raw, list) else [p.strip() for p in str(raw).split(",") if p.strip()]
        else:
            values[name] = _to_str(raw)
    return values


def physical_name(logical_id: str) -> str:
    return f"{STACK_NAME}-{logical_id}"


def default_attrs_factory(template: Mapping[str, Any], region: str) -> Callable[[str], ResourceAttrs]:
    """Deterministic attributes for every resource; queue URLs need the emulator endpoint (see `queue_url`)."""

    def attrs_of(logical_id: str) -> ResourceAttrs:
        return resource_attrs(template, logical_id, region, queue_urls={})

    return attrs_of


def resource_attrs(
    template: Mapping[str, Any], logical_id: str, region: str, queue_urls: Mapping[str, str]
) -> ResourceAttrs:
    resource = (template.get("Resources") or {})[logical_id]
    kind = str(resource.get("Type", ""))
    props = resource.get("Properties") or {}
    prefix = f"arn:aws:{{service}}:{region}:{ACCOUNT_ID}"
    if kind in TABLE_TYPES:
        name = _declared_name(props, "TableName", logical_id)
        arn = prefix.format(service="dynamodb") + f":table/{name}"
        return ResourceAttrs(ref=name, attrs={"Arn": arn, "StreamArn": f"{arn}/stream/local"})
    if kind == QUEUE_TYPE:
        name = queue_name(logical_id, props)
        arn = prefix.format(service="sqs") + f":{name}"
        url = queue_urls.get(logical_id, f"local-queue://{name}")
        return ResourceAttrs(ref=url, attrs={"Arn": arn, "QueueName": name, "QueueUrl": url})
    if kind == TOPIC_TYPE:  # `!Ref` of a topic is its ARN
        name = _declared_name(props, "TopicName", logical_id)
        arn = prefix.format(service="sns") + f":{name}"
        return ResourceAttrs(ref=arn, attrs={"TopicArn": arn, "TopicName": name})
    if kind == FUNCTION_TYPE:
        name = _declared_name(props, "FunctionName", logical_id, default=logical_id)
        arn = prefix.format(service="lambda") + f":function:{name}"
        return ResourceAttrs(ref=name, attrs={"Arn": arn})
    if kind == LAYER_TYPE:
        name = _declared_name(props, "LayerName", logical_id)
        arn = prefix.format(service="lambda") + f":layer:{name}:1"
        return ResourceAttrs(ref=arn, attrs={"Arn": arn})
    if kind in {"AWS::Serverless::HttpApi", "AWS::Serverless::Api"}:
        return ResourceAttrs(ref=LOCAL_API_ID, attrs={"ApiEndpoint": "http://127.0.0.1"})
    # Anything else: a stable name, and an ARN-shaped Arn, enough for policies and outputs.
    service = kind.split("::")[1].lower() if kind.count("::") >= 2 else "local"
    name = physical_name(logical_id)
    return ResourceAttrs(ref=name, attrs={"Arn": prefix.format(service=service) + f":{name}", "Name": name})


LOCAL_API_ID = "reclocal01"


def _declared_name(props: Mapping[str, Any], key: str, logical_id: str, default: str | None = None) -> str:
    # Only a literal name is honoured: a computed one would need the resolver, and the stack's own is as good.
    value = props.get(key)
    if isinstance(value, str):
        return value
    return default if default is not None else physical_name(logical_id)


def queue_name(logical_id: str, props: Mapping[str, Any]) -> str:
    if isinstance(props.get("QueueName"), str):
        return str(props["QueueName"])
    name = physical_name(logical_id)
    if str(props.get("FifoQueue", "")).lower() == "true":
        name += ".fifo"  # CloudFormation adds the suffix FIFO queues must have
    return name


# ------------------------------------------------------------------------------------------------ function settings


@dataclass(frozen=True)
class HttpRoute:
    function: str
    event: str
    method: str  # upper case, or "ANY"
    path: str  # as declared, e.g. /webhooks/{topic+}; "$default" for the catch-all route

    @property
    def route_key(self) -> str:
        return "$default" if self.path == "$default" else f"{self.method} {self.path}"


@dataclass(frozen=True)
class SqsSource:
    function: str
    event: str
    queue_arn: str
    batch_size: int
    report_batch_item_failures: bool
    enabled: bool


@dataclass(frozen=True)
class StreamSource:
    """A DynamoDB stream event source (an event source mapping), with Lambda's defaults for what is not declared."""

    function: str
    event: str
    stream_arn: str  # the table's LatestStreamArn when resolved against the local stack's emulator
    starting_position: str  # TRIM_HORIZON or LATEST
    batch_size: int
    batching_window: float  # MaximumBatchingWindowInSeconds
    bisect_on_error: bool
    max_retries: int  # MaximumRetryAttempts; -1: until the record expires
    max_record_age: int  # MaximumRecordAgeInSeconds; -1: until the record expires
    report_batch_item_failures: bool
    on_failure_arn: str | None  # DestinationConfig.OnFailure.Destination: an SQS queue or SNS topic
    enabled: bool
    unsupported: tuple[str, ...] = ()  # declared properties the local poller does not emulate


@dataclass(frozen=True)
class Schedule:
    function: str
    event: str
    expression: str
    input: str | None  # the event's `Input`: when set, Lambda receives it instead of the scheduled event


@dataclass
class FunctionSpec:
    logical_id: str
    name: str
    code_dir: Path
    handler: str
    timeout: int
    memory: int
    environment: dict[str, str]
    layer_dirs: list[Path]
    routes: list[HttpRoute]
    sqs_sources: list[SqsSource]
    schedules: list[Schedule]
    ignored_events: list[str]
    stream_sources: list[StreamSource] = field(default_factory=list)


def _merge_globals(global_props: Mapping[str, Any], props: Mapping[str, Any]) -> dict[str, Any]:
    # SAM's rules: maps merge (the resource wins), lists are additive (Globals first), scalars are overridden.
    merged: dict[str, Any] = dict(global_props)
    for key, value in props.items():
        base = merged.get(key)
        if isinstance(base, dict) and isinstance(value, dict):
            merged[key] = _merge_globals(base, value)
        elif isinstance(base, list) and isinstance(value, list):
            merged[key] = base + value
        else:
            merged[key] = value
    return merged


def function_specs(template: Mapping[str, Any], resolver: Resolver, template_dir: Path) -> list[FunctionSpec]:
    resources = template.get("Resources") or {}
    global_props = ((template.get("Globals") or {}).get("Function")) or {}
    specs: list[FunctionSpec] = []
    for logical_id, resource in resources.items():
        if resource.get("Type") != FUNCTION_TYPE:
            continue
        if "Condition" in resource and not resolver.condition(resource["Condition"]):
            continue
        props = resolver.resolve(_merge_globals(global_props, resource.get("Properties") or {}))
        code_uri = props.get("CodeUri")
        if not isinstance(code_uri, str) or code_uri.startswith("s3://"):
            raise TemplateError(f"{logical_id}: the local stack needs a local CodeUri, got {code_uri!r}")
        if "InlineCode" in props:
            raise TemplateError(f"{logical_id}: InlineCode is not supported locally")
        variables = ((props.get("Environment") or {}).get("Variables")) or {}
        routes: list[HttpRoute] = []
        sqs_sources: list[SqsSource] = []
        schedules: list[Schedule] = []
        stream_sources: list[StreamSource] = []
        ignored: list[str] = []
        for event_name, event in (props.get("Events") or {}).items():
            kind = event.get("Type")
            eprops = event.get("Properties") or {}
            if kind == "HttpApi" and str(eprops.get("PayloadFormatVersion", "2.0")) == "2.0":
                path = eprops.get("Path")
                method = str(eprops.get("Method", "ANY")).upper()
                routes.append(
                    HttpRoute(
                        logical_id,
                        event_name,
                        "ANY" if method in {"ANY", "X-AMAZON-APIGATEWAY-ANY-METHOD"} else method,
                        str(path) if path else "$default",
                    )
                )
            elif kind == "SQS":
                sqs_sources.append(
                    SqsSource(
                        function=logical_id,
                        event=event_name,
                        queue_arn=str(eprops["Queue"]),
                        batch_size=int(eprops.get("BatchSize", DEFAULT_SQS_BATCH_SIZE)),
                        report_batch_item_failures="ReportBatchItemFailures"
                        in (eprops.get("FunctionResponseTypes") or []),
                        enabled=_to_str(eprops.get("Enabled", True)).lower() != "false",
                    )
                )
            elif kind == "DynamoDB":
                stream_sources.append(stream_source(logical_id, event_name, eprops))
            elif kind in {"Schedule", "ScheduleV2"}:
                raw_input = eprops.get("Input")
                schedules.append(
                    Schedule(
                        logical_id,
                        event_name,
                        str(eprops.get("Schedule") or eprops.get("ScheduleExpression")),
                        None if raw_input is None else str(raw_input),
                    )
                )
            else:
                ignored.append(f"{event_name} ({kind})")
        specs.append(
            FunctionSpec(
                logical_id=logical_id,
                name=resolver.attrs_of(logical_id).ref,
                code_dir=(template_dir / code_uri).resolve(),
                handler=str(props.get("Handler", "")),
                timeout=int(props.get("Timeout", DEFAULT_TIMEOUT)),
                memory=int(props.get("MemorySize", DEFAULT_MEMORY)),
                environment={str(k): _to_str(v) for k, v in variables.items()},
                layer_dirs=_layer_dirs(template, props.get("Layers") or [], template_dir),
                routes=routes,
                sqs_sources=sqs_sources,
                schedules=schedules,
                ignored_events=ignored,
                stream_sources=stream_sources,
            )
        )
    return specs


# Event source mapping settings of a DynamoDB stream that the local poller does not apply.
_UNSUPPORTED_STREAM_PROPERTIES = ("FilterCriteria", "TumblingWindowInSeconds", "ParallelizationFactor", "KmsKeyArn")


def stream_source(function: str, event: str, props: Mapping[str, Any]) -> StreamSource:
    """A `Type: DynamoDB` event's properties (already resolved), with Lambda's defaults."""
    if not isinstance(props.get("Stream"), str):
        raise TemplateError(f"{function} event {event}: a DynamoDB event needs a Stream ARN")
    position = str(props.get("StartingPosition", ""))
    if position not in {"TRIM_HORIZON", "LATEST"}:
        raise TemplateError(f"{function} event {event}: StartingPosition must be TRIM_HORIZON or LATEST for DynamoDB")
    destination = ((props.get("DestinationConfig") or {}).get("OnFailure") or {}).get("Destination")
    declared = {key: props[key] for key in _UNSUPPORTED_STREAM_PROPERTIES if key in props}
    if int(declared.get("ParallelizationFactor", 1)) == 1:  # one batch per shard at a time is what the poller does
        declared.pop("ParallelizationFactor", None)
    unsupported = tuple(declared)
    return StreamSource(
        function=function,
        event=event,
        stream_arn=str(props["Stream"]),
        starting_position=position,
        batch_size=int(props.get("BatchSize", DEFAULT_STREAM_BATCH_SIZE)),
        batching_window=float(props.get("MaximumBatchingWindowInSeconds", 0)),
        bisect_on_error=_to_str(props.get("BisectBatchOnFunctionError", False)).lower() == "true",
        max_retries=int(props.get("MaximumRetryAttempts", -1)),
        max_record_age=int(props.get("MaximumRecordAgeInSeconds", -1)),
        report_batch_item_failures="ReportBatchItemFailures" in (props.get("FunctionResponseTypes") or []),
        on_failure_arn=str(destination) if destination else None,
        enabled=_to_str(props.get("Enabled", True)).lower() != "false",
        unsupported=unsupported,
    )


def _layer_dirs(template: Mapping[str, Any], layer_refs: list[Any], template_dir: Path) -> list[Path]:
    """Local content of the template's own layers (external layer ARNs cannot be fetched offline)."""
    resources = template.get("Resources") or {}
    by_arn: dict[str, str] = {}
    for logical_id, resource in resources.items():
        if resource.get("Type") == LAYER_TYPE:
            content = (resource.get("Properties") or {}).get("ContentUri")
            if isinstance(content, str) and not content.startswith("s3://"):
                by_arn[logical_id] = content
    dirs: list[Path] = []
    for ref in layer_refs:
        for logical_id, content in by_arn.items():
            if isinstance(ref, str) and ref.split(":")[-2:-1] == [_layer_name(resources[logical_id], logical_id)]:
                root = (template_dir / content).resolve()
                # Lambda mounts layers on /opt and puts /opt/python on sys.path; a layer built by `sam build`
                # has its packages under python/, the source tree has them at the top.
                dirs.extend(p for p in (root / "python", root) if p.is_dir())
    return dirs


def _layer_name(resource: Mapping[str, Any], logical_id: str) -> str:
    name = (resource.get("Properties") or {}).get("LayerName")
    return name if isinstance(name, str) else physical_name(logical_id)
