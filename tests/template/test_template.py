"""template.yaml is the single source of truth (STYLE §6): it transforms and lints clean, and it declares what the code
needs — runtime, layer, routes, queues and their failure path, tables with their retention — with one least-privilege
role and one log group per function.
"""

from __future__ import annotations

import ast
import copy
import fnmatch
import json
import re
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from reclift.data.backfill import BackfillStore
from reclift.data.catalog import CatalogStore
from reclift.data.day_totals import DayTotalsStore
from reclift.data.erasure import ShopEraser
from reclift.data.health import HealthStore
from reclift.data.installs import BackfillQueue, InstallRegistry, TokenVault
from reclift.data.learning import LearningStore
from reclift.data.privacy import PrivacyStore
from reclift.data.replay import ReplayStore
from reclift.data.serving import ServingReader
from reclift.data.similarity import SimilarityStore
from reclift.data.store import DynamoStore
from reclift_local.template import Resolver

ROOT = Path(__file__).resolve().parents[2]
RUNTIME = "python3.11"
MODELS_FILE = ROOT / "layers" / "reclift" / "reclift" / "data" / "models.py"

LintFinding = tuple[str, str]
Statement = dict[str, Any]


# ---------------------------------------------------------------------------------------------------------- helpers
def resources(template: dict[str, Any], resource_type: str) -> Iterator[tuple[str, dict[str, Any]]]:
    for logical_id, resource in template["Resources"].items():
        if resource["Type"] == resource_type:
            yield logical_id, resource.get("Properties") or {}


def as_list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else [value]


def ref_target(value: Any) -> str | None:
    return value["Ref"] if isinstance(value, dict) and set(value) == {"Ref"} else None


def getatt_target(value: Any, attribute: str) -> str | None:
    if isinstance(value, dict) and set(value) == {"Fn::GetAtt"}:
        getatt = value["Fn::GetAtt"]
        parts = getatt if isinstance(getatt, list) else str(getatt).split(".", 1)
        if parts[1] == attribute:
            return str(parts[0])
    return None


SSM_PARAMETER_ARN = re.compile(
    r"^arn:\$\{AWS::Partition\}:ssm:\$\{AWS::Region\}:\$\{AWS::AccountId\}:parameter\$\{(\w+)\}(\*?)$"
)


def resource_keys(resource: Any) -> list[str]:
    """An IAM `Resource` entry as comparable keys: `EventsTable`, `EventsTable/index/by_rec`, `ssm:<Parameter>`,
    `ssm:<PrefixParameter>*` (every parameter under a prefix), `*`.

    Both branches of an `Fn::If` count (either may be deployed); anything unrecognised keeps its JSON-ish form, so it
    matches nothing it should not.
    """
    if isinstance(resource, str):
        return [resource]
    target = getatt_target(resource, "Arn")
    if target:
        return [target]
    if ref_target(resource):  # `!Ref AlertsTopic`: a topic's ARN
        return [str(ref_target(resource))]
    if isinstance(resource, dict) and set(resource) == {"Fn::If"}:
        return [
            key
            for branch in resource["Fn::If"][1:]
            if ref_target(branch) != "AWS::NoValue"
            for key in resource_keys(branch)
        ]
    if isinstance(resource, dict) and set(resource) == {"Fn::Sub"} and isinstance(resource["Fn::Sub"], str):
        text = resource["Fn::Sub"]
        parameter = SSM_PARAMETER_ARN.match(text)
        if parameter:
            return [f"ssm:{parameter.group(1)}{parameter.group(2)}"]
        return [re.sub(r"\$\{(\w+)\.Arn\}", r"\1", text)]
    return [repr(resource)]


def function_role(cfn_template: dict[str, Any], function_id: str) -> str:
    role = getatt_target(cfn_template["Resources"][function_id]["Properties"]["Role"], "Arn")
    assert role, f"{function_id}'s role is not a role of this template"
    return role


def role_statements(cfn_template: dict[str, Any], role_id: str) -> list[Statement]:
    """Every statement of the role's inline policies and of the stand-alone policies attached to it."""
    documents = [
        policy["PolicyDocument"] for policy in cfn_template["Resources"][role_id]["Properties"].get("Policies", [])
    ]
    for policy_type in ("AWS::IAM::Policy", "AWS::IAM::ManagedPolicy"):
        for _, properties in resources(cfn_template, policy_type):
            if role_id in [ref_target(role) for role in properties.get("Roles", [])]:
                documents.append(properties["PolicyDocument"])
    return [statement for document in documents for statement in statements_of(document)]


def statements_of(document: dict[str, Any]) -> list[Statement]:
    """A policy document's statements; a statement under `Fn::If` counts with both branches (either may be deployed),
    `AWS::NoValue` with none."""
    found: list[Statement] = []
    for statement in as_list(document["Statement"]):
        if isinstance(statement, dict) and set(statement) == {"Fn::If"}:
            found += [branch for branch in statement["Fn::If"][1:] if ref_target(branch) != "AWS::NoValue"]
        else:
            found.append(statement)
    return found


# What each AWS-managed policy that SAM attaches grants, as AWS documents them (the transform only names them).
# Anything else attached to a function's role fails `test_roles_attach_only_the_managed_policies_sam_needs`.
MANAGED_POLICY_ACTIONS: dict[str, frozenset[str]] = {
    # Every SAM function: writing its own logs.
    "service-role/AWSLambdaBasicExecutionRole": frozenset(
        {"logs:CreateLogGroup", "logs:CreateLogStream", "logs:PutLogEvents"}
    ),
    # `Tracing: Active`: X-Ray accepts segments only on Resource "*".
    "AWSXrayWriteOnlyAccess": frozenset(
        {
            "xray:PutTraceSegments",
            "xray:PutTelemetryRecords",
            "xray:GetSamplingRules",
            "xray:GetSamplingTargets",
            "xray:GetSamplingStatisticSummaries",
        }
    ),
    # A DynamoDB stream event source: the poller reads the stream on the function's behalf.
    "service-role/AWSLambdaDynamoDBExecutionRole": frozenset(
        {
            "dynamodb:DescribeStream",
            "dynamodb:GetRecords",
            "dynamodb:GetShardIterator",
            "dynamodb:ListStreams",
            "logs:CreateLogGroup",
            "logs:CreateLogStream",
            "logs:PutLogEvents",
        }
    ),
    # An SQS event source: the poller receives and deletes on the function's behalf.
    "service-role/AWSLambdaSQSQueueExecutionRole": frozenset(
        {
            "sqs:ReceiveMessage",
            "sqs:DeleteMessage",
            "sqs:GetQueueAttributes",
            "logs:CreateLogGroup",
            "logs:CreateLogStream",
            "logs:PutLogEvents",
        }
    ),
}
MANAGED_POLICY_PREFIX = "arn:aws:iam::aws:policy/"

# The only actions AWS accepts on nothing narrower than Resource "*".
STAR_RESOURCE_ACTIONS = frozenset({"cloudwatch:PutMetricData", "xray:PutTraceSegments", "xray:PutTelemetryRecords"})

DYNAMODB_READ_ACTIONS = frozenset(
    {
        "dynamodb:GetItem",
        "dynamodb:BatchGetItem",
        "dynamodb:Query",
        "dynamodb:Scan",
        "dynamodb:ConditionCheckItem",
        "dynamodb:DescribeTable",
        "dynamodb:PartiQLSelect",
    }
)


def allowed_actions(cfn_template: dict[str, Any], function_id: str) -> set[str]:
    """Every action the function's role allows, on any resource: inline statements and managed policies."""
    role_id = function_role(cfn_template, function_id)
    actions = {
        action
        for statement in role_statements(cfn_template, role_id)
        if statement["Effect"] == "Allow"
        for action in as_list(statement["Action"])
    }
    for arn in cfn_template["Resources"][role_id]["Properties"].get("ManagedPolicyArns", []):
        actions |= MANAGED_POLICY_ACTIONS.get(str(arn).removeprefix(MANAGED_POLICY_PREFIX), frozenset({"*"}))
    return actions


def allows(cfn_template: dict[str, Any], function_id: str, action: str, resource_key: str) -> bool:
    statements = role_statements(cfn_template, function_role(cfn_template, function_id))
    return any(
        statement["Effect"] == "Allow"
        and any(fnmatch.fnmatchcase(action, pattern) for pattern in as_list(statement["Action"]))
        and any(
            fnmatch.fnmatchcase(resource_key, key)
            for entry in as_list(statement["Resource"])
            for key in resource_keys(entry)
        )
        for statement in statements
    )


def environment(cfn_template: dict[str, Any], function_id: str) -> dict[str, Any]:
    """The function's deployed variables: Globals merged with its own, as the transform leaves them."""
    properties = cfn_template["Resources"][function_id]["Properties"]
    variables = (properties.get("Environment") or {}).get("Variables") or {}
    assert isinstance(variables, dict)
    return variables


def env_resource(cfn_template: dict[str, Any], function_id: str, variable: str) -> str:
    """The logical id of the resource or parameter a variable names (`EVENTS_TABLE: !Ref EventsTable`)."""
    target = ref_target(environment(cfn_template, function_id).get(variable))
    assert target, f"{function_id}: {variable} is not set to a !Ref of this template"
    return target


def a_function_reading(env_reads: dict[str, frozenset[str]], variable: str) -> str:
    users = sorted(function_id for function_id, names in env_reads.items() if variable in names)
    assert users, f"no function reads {variable}"
    return users[0]


# ---------------------------------------------------------------------------------------------- transform and lint
def test_the_sam_transform_turns_every_serverless_resource_into_cloudformation(cfn_template: dict[str, Any]) -> None:
    """Given template.yaml, when SAM transforms it offline, then no AWS::Serverless resource is left."""
    left = [
        logical_id
        for logical_id, resource in cfn_template["Resources"].items()
        if resource["Type"].startswith("AWS::Serverless::")
    ]
    assert left == []
    assert "Transform" not in cfn_template


def test_cfn_lint_finds_no_error_or_warning_in_the_transformed_template(
    lint_findings: list[LintFinding], tolerated_lint_rules: frozenset[str]
) -> None:
    """Errors and warnings fail; informational findings fail too, except the rules conftest names with a reason."""
    findings = [f"{rule} {where}" for rule, where in lint_findings if rule not in tolerated_lint_rules]
    assert findings == [], "cfn-lint:\n" + "\n".join(findings)


def test_the_lint_gate_catches_a_ref_to_a_resource_the_template_lacks(
    sam_template: dict[str, Any], lint_gate: Callable[[dict[str, Any]], list[LintFinding]]
) -> None:
    """Given a function variable that names a table that does not exist, the transform-then-lint gate reports it."""
    broken = copy.deepcopy(sam_template)
    function_id = next(iter(sorted(resources(broken, "AWS::Serverless::Function"))))[0]
    properties = broken["Resources"][function_id]["Properties"]
    properties.setdefault("Environment", {}).setdefault("Variables", {})["BROKEN_TABLE"] = {"Ref": "NoSuchTable"}
    assert any(rule.startswith("E") and "NoSuchTable" in where for rule, where in lint_gate(broken))


# ------------------------------------------------------------------------------------------------------- functions
def test_every_function_runs_python_3_11_with_the_shared_layer(
    sam_template: dict[str, Any], cfn_template: dict[str, Any]
) -> None:
    layers = [logical_id for logical_id, _ in resources(sam_template, "AWS::Serverless::LayerVersion")]
    assert layers, "the template declares no shared layer"
    functions = list(resources(cfn_template, "AWS::Lambda::Function"))
    assert functions
    for function_id, properties in functions:
        assert properties["Runtime"] == RUNTIME, function_id
        used = [ref_target(layer) or "" for layer in properties.get("Layers", [])]
        for layer in layers:
            # The transform renames a layer version `<LogicalId><hash>`.
            assert any(ref.startswith(layer) for ref in used), f"{function_id} does not use {layer}"


def test_every_function_has_a_role_of_its_own(sam_template: dict[str, Any], cfn_template: dict[str, Any]) -> None:
    for function_id, properties in resources(sam_template, "AWS::Serverless::Function"):
        assert "Role" not in properties, f"{function_id} brings its own (possibly shared) role; let SAM make one"
    roles = {
        function_id: function_role(cfn_template, function_id)
        for function_id, _ in resources(cfn_template, "AWS::Lambda::Function")
    }
    assert len(set(roles.values())) == len(roles), f"functions share a role: {roles}"
    for role_id in roles.values():
        assert cfn_template["Resources"][role_id]["Type"] == "AWS::IAM::Role"


def test_every_function_has_its_own_log_group_with_a_retention(cfn_template: dict[str, Any]) -> None:
    log_groups: dict[str, list[dict[str, Any]]] = {}
    for _, properties in resources(cfn_template, "AWS::Logs::LogGroup"):
        name = properties.get("LogGroupName")
        match = re.fullmatch(r"/aws/lambda/\$\{(\w+)\}", name.get("Fn::Sub", "")) if isinstance(name, dict) else None
        if match:
            log_groups.setdefault(match.group(1), []).append(properties)
    for function_id, _ in resources(cfn_template, "AWS::Lambda::Function"):
        groups = log_groups.get(function_id, [])
        assert len(groups) == 1, f"{function_id} needs exactly one log group /aws/lambda/${{{function_id}}}"
        assert groups[0].get("RetentionInDays") is not None, f"{function_id}'s log group keeps logs forever"


def test_sam_build_finds_a_handler_for_every_function(handler_files: dict[str, Path]) -> None:
    assert handler_files
    for function_id, path in handler_files.items():
        assert path.is_file(), f"{function_id}: {path.relative_to(ROOT)} is missing"
        tree = ast.parse(path.read_text(encoding="utf-8"))
        assert "lambda_handler" in {node.name for node in tree.body if isinstance(node, ast.FunctionDef)}, (
            f"{path.relative_to(ROOT)} defines no lambda_handler"
        )


def test_sam_build_builds_the_layer_for_python_3_11(sam_template: dict[str, Any]) -> None:
    layers = list(resources(sam_template, "AWS::Serverless::LayerVersion"))
    assert layers
    for layer_id, properties in layers:
        assert sam_template["Resources"][layer_id].get("Metadata", {}).get("BuildMethod") == RUNTIME, layer_id
        assert RUNTIME in properties.get("CompatibleRuntimes", []), layer_id
        assert (ROOT / properties["ContentUri"] / "requirements.txt").is_file(), f"{layer_id} has no requirements.txt"


# ------------------------------------------------------------------------------------------------------------ HTTP
REQUIRED_ROUTES = {
    ("POST", "/webhooks/{topic+}"): "WebhookFunction",
    ("POST", "/apps/proxy/events"): "StorefrontFunction",
    ("GET", "/admin/roi"): "AdminFunction",
    ("GET", "/admin/settings"): "AdminFunction",
    ("PUT", "/admin/settings"): "AdminFunction",
    ("GET", "/admin/rules"): "AdminFunction",
    ("PUT", "/admin/rules"): "AdminFunction",
    ("GET", "/admin/performance"): "AdminFunction",
    ("GET", "/admin/privacy/requests/{id}"): "AdminFunction",
    ("GET", "/apps/proxy/recommendations"): "StorefrontFunction",
}


def test_the_http_api_serves_every_route_of_this_stage_with_its_function(cfn_template: dict[str, Any]) -> None:
    routes: dict[tuple[str, str], str] = {}
    for _, properties in resources(cfn_template, "AWS::ApiGatewayV2::Api"):
        for path, methods in properties.get("Body", {}).get("paths", {}).items():
            for method, operation in methods.items():
                uri = operation["x-amazon-apigateway-integration"]["uri"]["Fn::Sub"]
                target = re.search(r"\$\{(\w+)\.Arn\}", uri)
                routes[(method.upper(), path)] = target.group(1) if target else uri
    for route, function_id in REQUIRED_ROUTES.items():
        assert routes.get(route) == function_id, f"{' '.join(route)} should invoke {function_id}, routes: {routes}"


# ---------------------------------------------------------------------------------------------- queues and alarms
def sqs_event_sources(cfn_template: dict[str, Any]) -> list[dict[str, Any]]:
    sources = []
    for _, properties in resources(cfn_template, "AWS::Lambda::EventSourceMapping"):
        queue = getatt_target(properties["EventSourceArn"], "Arn")
        if queue and cfn_template["Resources"][queue]["Type"] == "AWS::SQS::Queue":
            sources.append(properties)
    return sources


def test_every_sqs_event_source_reports_batch_item_failures(cfn_template: dict[str, Any]) -> None:
    sources = sqs_event_sources(cfn_template)
    assert sources, "no function consumes the webhook queue"
    for properties in sources:
        assert "ReportBatchItemFailures" in properties.get("FunctionResponseTypes", []), properties


def test_every_queue_sends_failures_to_a_dlq_and_is_not_redelivered_while_running(
    cfn_template: dict[str, Any],
) -> None:
    """A webhook gets five tries (Shopify's delivery is then only in the DLQ); every queue has a DLQ."""
    for source in sqs_event_sources(cfn_template):
        queue_id = getatt_target(source["EventSourceArn"], "Arn")
        assert queue_id
        queue = cfn_template["Resources"][queue_id]["Properties"]
        redrive = queue.get("RedrivePolicy") or {}
        assert getatt_target(redrive.get("deadLetterTargetArn"), "Arn"), f"{queue_id} has no DLQ"
        receives = int(redrive["maxReceiveCount"])
        assert receives == 5 if queue_id == "WebhookQueue" else receives >= 1, queue_id
        consumer = ref_target(source["FunctionName"])
        assert consumer
        timeout = int(cfn_template["Resources"][consumer]["Properties"].get("Timeout", 3))
        assert int(queue["VisibilityTimeout"]) >= 6 * timeout, (
            f"{queue_id}: VisibilityTimeout {queue['VisibilityTimeout']} < 6 x {consumer}'s timeout {timeout}"
        )


def first_message_alarm_problem(cfn_template: dict[str, Any], queue_id: str) -> str | None:
    """Why no alarm fires on the queue's first visible message, or None when one does."""
    watching = [
        alarm
        for _, alarm in resources(cfn_template, "AWS::CloudWatch::Alarm")
        if alarm.get("Namespace") == "AWS/SQS"
        and alarm.get("MetricName") == "ApproximateNumberOfMessagesVisible"
        and any(getatt_target(dimension["Value"], "QueueName") == queue_id for dimension in alarm.get("Dimensions", []))
    ]
    if not watching:
        return f"no alarm on {queue_id}'s ApproximateNumberOfMessagesVisible"
    if not any(
        (alarm["ComparisonOperator"] == "GreaterThanThreshold" and float(alarm["Threshold"]) < 1)
        or (alarm["ComparisonOperator"] == "GreaterThanOrEqualToThreshold" and float(alarm["Threshold"]) <= 1)
        for alarm in watching
    ):
        return f"{queue_id}'s alarm does not fire on the first message"
    return None


def test_the_dlq_raises_an_alarm_on_its_first_message(cfn_template: dict[str, Any]) -> None:
    dlqs = {
        getatt_target(queue.get("RedrivePolicy", {}).get("deadLetterTargetArn"), "Arn")
        for _, queue in resources(cfn_template, "AWS::SQS::Queue")
    } - {None}
    assert dlqs
    problems = [first_message_alarm_problem(cfn_template, str(dlq)) for dlq in sorted(str(dlq) for dlq in dlqs)]
    assert [problem for problem in problems if problem] == []


def test_the_first_message_check_fails_for_a_queue_no_alarm_watches(cfn_template: dict[str, Any]) -> None:
    """A guard on the guard above: a DLQ whose alarm is gone, or fires only from the second message, is caught."""
    broken = copy.deepcopy(cfn_template)
    broken["Resources"]["WebhookDLQNotEmptyAlarm"]["Properties"]["Threshold"] = 1
    assert first_message_alarm_problem(broken, "WebhookDLQ") == "WebhookDLQ's alarm does not fire on the first message"
    del broken["Resources"]["WebhookDLQNotEmptyAlarm"]
    assert first_message_alarm_problem(broken, "WebhookDLQ") == (
        "no alarm on WebhookDLQ's ApproximateNumberOfMessagesVisible"
    )


# ------------------------------------------------------------------------------- scheduled (asynchronous) invocations
def failure_destinations(cfn_template: dict[str, Any], function_id: str) -> set[str]:
    """The queues a function's failed asynchronous invocations (its EventInvokeConfig's OnFailure) and its stream
    batches that exhausted their retries (its stream event source's OnFailure) are sent to."""
    return {
        str(getatt_target(properties["DestinationConfig"]["OnFailure"]["Destination"], "Arn"))
        for kind in ("AWS::Lambda::EventInvokeConfig", "AWS::Lambda::EventSourceMapping")
        for _, properties in resources(cfn_template, kind)
        if ref_target(properties["FunctionName"]) == function_id
        and "OnFailure" in (properties.get("DestinationConfig") or {})
    }


def scheduled_functions(sam_template: dict[str, Any]) -> list[str]:
    return sorted(
        function_id
        for function_id, properties in resources(sam_template, "AWS::Serverless::Function")
        if any(event["Type"] in {"Schedule", "ScheduleV2"} for event in (properties.get("Events") or {}).values())
    )


def test_a_scheduled_run_that_keeps_failing_lands_in_a_queue_that_raises_an_alarm(
    sam_template: dict[str, Any], cfn_template: dict[str, Any]
) -> None:
    """EventBridge invokes asynchronously: without a failure destination a fan-out that fails its retries is gone,
    and with it that night's run for every shop. Each scheduled function sends it to an encrypted queue kept 14 days,
    with an alarm on its first message, after a bounded number of retries."""
    functions = scheduled_functions(sam_template)
    assert functions == ["BackfillFunction", "DailyLearningFunction", "HealthCheckFunction", "SimilarityFunction"]
    for function_id in functions:
        (config,) = [
            properties
            for _, properties in resources(cfn_template, "AWS::Lambda::EventInvokeConfig")
            if ref_target(properties["FunctionName"]) == function_id
        ]
        assert 0 <= int(config["MaximumRetryAttempts"]) <= 2, function_id
        assert 60 <= int(config["MaximumEventAgeInSeconds"]) <= 21600, function_id
        (queue_id,) = failure_destinations(cfn_template, function_id)
        queue = cfn_template["Resources"][queue_id]
        assert queue["Type"] == "AWS::SQS::Queue", function_id
        assert queue["Properties"]["SqsManagedSseEnabled"] is True
        assert int(queue["Properties"]["MessageRetentionPeriod"]) == 14 * 24 * 3600
        assert first_message_alarm_problem(cfn_template, queue_id) is None
        assert allows(cfn_template, function_id, "sqs:SendMessage", queue_id)


# ---------------------------------------------------------------------------------------------------------- tables
def ttl_attributes_by_table_variable() -> dict[str, str]:
    """`EVENTS_TABLE` → `expires_at`: the TTL attribute of each PynamoDB model, keyed by its table's variable."""
    found: dict[str, str] = {}
    for model in ast.parse(MODELS_FILE.read_text(encoding="utf-8")).body:
        if not isinstance(model, ast.ClassDef):
            continue
        variable = ttl = None
        for node in model.body:
            if isinstance(node, ast.ClassDef) and node.name == "Meta":
                for item in node.body:
                    if (
                        isinstance(item, ast.Assign)
                        and isinstance(item.targets[0], ast.Name)
                        and item.targets[0].id == "table_name"
                        and isinstance(item.value, ast.Constant)
                    ):
                        variable = str(item.value.value)
            if (
                isinstance(node, ast.Assign)
                and isinstance(node.targets[0], ast.Name)
                and isinstance(node.value, ast.Call)
                and ast.unparse(node.value.func) == "TTLAttribute"
            ):
                ttl = node.targets[0].id
        if variable and ttl:
            found[variable] = ttl
    return found


def test_every_table_has_point_in_time_recovery_and_encryption(cfn_template: dict[str, Any]) -> None:
    tables = dict(resources(cfn_template, "AWS::DynamoDB::Table"))
    assert tables
    no_pitr = [
        table_id
        for table_id, properties in tables.items()
        if (properties.get("PointInTimeRecoverySpecification") or {}).get("PointInTimeRecoveryEnabled") is not True
    ]
    no_sse = [
        table_id
        for table_id, properties in tables.items()
        if (properties.get("SSESpecification") or {}).get("SSEEnabled") is not True
    ]
    assert no_pitr == [], f"no PointInTimeRecoverySpecification: {{PointInTimeRecoveryEnabled: true}} on {no_pitr}"
    assert no_sse == [], f"no SSESpecification: {{SSEEnabled: true}} on {no_sse}"


def test_tables_expire_items_on_the_attribute_the_models_set(
    cfn_template: dict[str, Any], env_reads: dict[str, frozenset[str]]
) -> None:
    ttl_by_variable = ttl_attributes_by_table_variable()
    assert "EVENTS_TABLE" in ttl_by_variable, "no TTL attribute found in the models: the scan is broken"
    for variable, attribute in ttl_by_variable.items():
        table_id = env_resource(cfn_template, a_function_reading(env_reads, variable), variable)
        ttl = cfn_template["Resources"][table_id]["Properties"].get("TimeToLiveSpecification") or {}
        assert ttl == {"AttributeName": attribute, "Enabled": True}, f"{table_id} should expire on {attribute}: {ttl}"


def test_the_idempotency_table_has_the_layout_powertools_expects(
    cfn_template: dict[str, Any], env_reads: dict[str, frozenset[str]]
) -> None:
    """Powertools' DynamoDBPersistenceLayer defaults: hash key `id`, expiry in `expiration`."""
    table_id = env_resource(cfn_template, a_function_reading(env_reads, "IDEMPOTENCY_TABLE"), "IDEMPOTENCY_TABLE")
    properties = cfn_template["Resources"][table_id]["Properties"]
    assert properties["KeySchema"] == [{"AttributeName": "id", "KeyType": "HASH"}]
    assert properties.get("TimeToLiveSpecification") == {"AttributeName": "expiration", "Enabled": True}


# ------------------------------------------------------------------------------------ what the code reads from env
RESOURCE_VARIABLE = re.compile(r"^(?:\w+_(?:TABLE|QUEUE_URL|PARAM)|SHOPIFY_\w+|APP_PROXY_\w+)$")


def plaintext_secret_overrides(names: frozenset[str]) -> set[str]:
    """`X` where the code reads both `X` and `X_PARAM`: the secret itself, for a developer's shell and the tests;
    on AWS the function gets the parameter's name and reads the secret from SSM."""
    return {name for name in names if f"{name}_PARAM" in names}


def test_the_scan_of_the_code_finds_what_each_function_reads(env_reads: dict[str, frozenset[str]]) -> None:
    """A guard on the guard: the scan below would pass vacuously if it found nothing."""
    assert "WEBHOOK_QUEUE_URL" in env_reads["WebhookFunction"]
    assert {"IDEMPOTENCY_TABLE", "EVENTS_TABLE"} <= env_reads["AttributionFunction"]
    assert "APP_PROXY_MAX_SKEW_SECONDS" in env_reads["StorefrontFunction"]
    assert {"SHOPIFY_API_KEY", "SHOPIFY_API_SECRET_PARAM"} <= env_reads["AdminFunction"]


def test_every_table_queue_and_parameter_the_code_reads_is_declared_in_the_template(
    cfn_template: dict[str, Any], env_reads: dict[str, frozenset[str]]
) -> None:
    """Given the variables a function's code can read (conftest.code_use: an AST walk from the handler through the
    shared package), every one that names a resource or setting — `*_TABLE`, `*_QUEUE_URL`, `*_PARAM`, `SHOPIFY_*`,
    `APP_PROXY_*` — is set in that function's environment (Globals or its own) to a `!Ref` of a table, a queue or a
    parameter of the template; and no plaintext secret is.
    """
    parameters = set(cfn_template.get("Parameters", {}))
    problems: list[str] = []
    for function_id, names in sorted(env_reads.items()):
        variables = environment(cfn_template, function_id)
        secrets = plaintext_secret_overrides(names)
        for name in sorted(names):
            if name in secrets:
                if name in variables:
                    problems.append(f"{function_id}: {name} holds a secret; set {name}_PARAM (SSM) instead")
                continue
            if not RESOURCE_VARIABLE.match(name):
                continue
            target = ref_target(variables.get(name))
            expected_type = (
                "AWS::DynamoDB::Table"
                if name.endswith("_TABLE")
                else "AWS::SQS::Queue"
                if name.endswith("_QUEUE_URL")
                else "Parameter"
            )
            actual_type = (
                "Parameter" if target in parameters else cfn_template["Resources"].get(target or "", {}).get("Type")
            )
            if actual_type != expected_type:
                problems.append(
                    f"{function_id} reads {name}: it should be a !Ref to a {expected_type}, "
                    f"it is {variables.get(name, 'not set')!r}"
                )
    assert problems == [], "\n".join(problems)


# ----------------------------------------------------------------------------------------------- least privilege
def test_no_statement_allows_a_wildcard_action_or_any_resource(cfn_template: dict[str, Any]) -> None:
    problems: list[str] = []
    for role_id, _ in resources(cfn_template, "AWS::IAM::Role"):
        for statement in role_statements(cfn_template, role_id):
            if statement["Effect"] != "Allow":
                continue
            actions = [str(action) for action in as_list(statement["Action"])]
            problems += [f"{role_id}: action {action}" for action in actions if "*" in action]
            star = [entry for entry in as_list(statement["Resource"]) if entry == "*"]
            if star and not set(actions) <= STAR_RESOURCE_ACTIONS:
                problems.append(f"{role_id}: Resource '*' for {actions}")
    assert problems == [], "\n".join(problems)


def test_roles_attach_only_the_managed_policies_sam_needs(cfn_template: dict[str, Any]) -> None:
    """The execution-log and X-Ray policies everywhere; the SQS poller's policy only where a queue feeds it, the
    stream poller's only where a stream does."""
    consumers = {ref_target(source["FunctionName"]) for source in sqs_event_sources(cfn_template)}
    stream_readers = {
        ref_target(properties["FunctionName"])
        for _, properties in resources(cfn_template, "AWS::Lambda::EventSourceMapping")
        if getatt_target(properties["EventSourceArn"], "StreamArn")
    }
    for function_id, _ in resources(cfn_template, "AWS::Lambda::Function"):
        role_id = function_role(cfn_template, function_id)
        for arn in cfn_template["Resources"][role_id]["Properties"].get("ManagedPolicyArns", []):
            name = str(arn).removeprefix(MANAGED_POLICY_PREFIX)
            assert name in MANAGED_POLICY_ACTIONS, f"{function_id}: unexpected managed policy {arn}"
            if name == "service-role/AWSLambdaSQSQueueExecutionRole":
                assert function_id in consumers, f"{function_id} polls no queue but has {arn}"
            if name == "service-role/AWSLambdaDynamoDBExecutionRole":
                assert function_id in stream_readers, f"{function_id} reads no stream but has {arn}"


def test_the_attribution_worker_sends_only_shop_erasures_to_their_own_queue(cfn_template: dict[str, Any]) -> None:
    """It hands a verified shop/redact to ShopRedactFunction's queue, and can send to no other (not its own)."""
    queues = [queue_id for queue_id, _ in resources(cfn_template, "AWS::SQS::Queue")]
    sending = [
        queue_id
        for queue_id in queues
        if any(
            allows(cfn_template, "AttributionFunction", action, queue_id)
            for action in ("sqs:SendMessage", "sqs:SendMessageBatch")
        )
    ]
    assert sending == ["ShopRedactQueue"]


def test_no_role_can_scan_the_tables_of_shoppers_data(cfn_template: dict[str, Any]) -> None:
    """Shops are erased by key: no function may Scan events, profiles, orders or counters (every tenant's items)."""
    tables = ("EventsTable", "ProfilesTable", "OrdersTable", "CountersTable")
    scanning = [
        f"{function_id} on {table}"
        for function_id, _ in resources(cfn_template, "AWS::Lambda::Function")
        for table in tables
        if allows(cfn_template, function_id, "dynamodb:Scan", table)
    ]
    assert scanning == []


def test_the_shop_erasure_runs_fifteen_minutes_from_its_own_queue_with_a_dlq(cfn_template: dict[str, Any]) -> None:
    """A shop with a million items does not fit the webhook worker's 30 s: its erasure has a function, a queue and a
    DLQ of its own, reports batch item failures, and re-queues its own continuation."""
    properties = cfn_template["Resources"]["ShopRedactFunction"]["Properties"]
    assert int(properties["Timeout"]) == 900
    (source,) = [
        mapping
        for _, mapping in resources(cfn_template, "AWS::Lambda::EventSourceMapping")
        if ref_target(mapping["FunctionName"]) == "ShopRedactFunction"
    ]
    assert getatt_target(source["EventSourceArn"], "Arn") == "ShopRedactQueue"
    assert source["FunctionResponseTypes"] == ["ReportBatchItemFailures"]
    assert int(source["BatchSize"]) == 1
    redrive = cfn_template["Resources"]["ShopRedactQueue"]["Properties"]["RedrivePolicy"]
    assert getatt_target(redrive["deadLetterTargetArn"], "Arn") == "ShopRedactDLQ"
    assert env_resource(cfn_template, "ShopRedactFunction", "SHOP_REDACT_QUEUE_URL") == "ShopRedactQueue"
    assert allows(cfn_template, "ShopRedactFunction", "sqs:SendMessage", "ShopRedactQueue")


def test_the_webhook_function_has_no_dynamodb_permission_at_all(cfn_template: dict[str, Any]) -> None:
    """DESIGN §5: one SQS send, no DynamoDB work inline."""
    actions = allowed_actions(cfn_template, "WebhookFunction")
    assert sorted(action for action in actions if action.startswith("dynamodb:") or action == "*") == []


def test_the_admin_function_cannot_write_events_or_orders(cfn_template: dict[str, Any]) -> None:
    role_id = function_role(cfn_template, "AdminFunction")
    protected = {env_resource(cfn_template, "AdminFunction", variable) for variable in ("EVENTS_TABLE", "ORDERS_TABLE")}
    writes = [
        f"{action} on {key}"
        for statement in role_statements(cfn_template, role_id)
        if statement["Effect"] == "Allow"
        for action in as_list(statement["Action"])
        if action not in DYNAMODB_READ_ACTIONS
        for entry in as_list(statement["Resource"])
        for key in resource_keys(entry)
        if key == "*" or key.split("/")[0] in protected
    ]
    assert writes == []


# What each method of the data-access ports (reclift.data: DynamoStore, LearningStore, ServingReader) asks of
# DynamoDB: (table variable, index or None, action). A transaction's put and update are authorised as PutItem
# and UpdateItem.
STORE_PERMISSIONS: dict[str, list[tuple[str, str | None, str]]] = {
    "get_settings": [("SHOPS_TABLE", None, "dynamodb:GetItem")],
    "put_settings": [("SHOPS_TABLE", None, "dynamodb:UpdateItem")],
    "get_rules": [("SHOPS_TABLE", None, "dynamodb:GetItem")],
    "put_rules": [("SHOPS_TABLE", None, "dynamodb:UpdateItem")],
    "register_shop": [("SHOPS_TABLE", None, "dynamodb:UpdateItem")],
    "shop_currency": [("SHOPS_TABLE", None, "dynamodb:GetItem")],
    "put_events": [("EVENTS_TABLE", None, "dynamodb:PutItem"), ("EVENTS_TABLE", None, "dynamodb:UpdateItem")],
    "add_counts": [("COUNTERS_TABLE", None, "dynamodb:UpdateItem")],
    "add_pair_counts": [("COUNTERS_TABLE", None, "dynamodb:UpdateItem")],  # a page item per (day, page)
    "update_profile": [
        ("PROFILES_TABLE", None, "dynamodb:GetItem"),
        ("PROFILES_TABLE", None, "dynamodb:PutItem"),
        ("LEARNING_TABLE", None, "dynamodb:BatchGetItem"),  # the neighbours of the profile's recent products
    ],
    "touches": [
        ("EVENTS_TABLE", None, "dynamodb:Query"),
        ("EVENTS_TABLE", "by_customer", "dynamodb:Query"),
        ("EVENTS_TABLE", "by_rec", "dynamodb:Query"),
    ],
    "record_order": [
        ("ORDERS_TABLE", None, "dynamodb:PutItem"),
        ("COUNTERS_TABLE", None, "dynamodb:UpdateItem"),
        ("COUNTERS_TABLE", None, "dynamodb:GetItem"),  # the ROI's visitor-days, read before the transaction
    ],
    "attributions": [("ORDERS_TABLE", "by_shop_date_v2", "dynamodb:Query")],
    "attributed_lines": [("ORDERS_TABLE", None, "dynamodb:Query")],
    "add_event_totals": [("COUNTERS_TABLE", None, "dynamodb:PutItem"), ("COUNTERS_TABLE", None, "dynamodb:UpdateItem")],
    "arm_visitors": [("COUNTERS_TABLE", None, "dynamodb:Query")],
    "apply_adjustment": [
        ("ORDERS_TABLE", None, "dynamodb:PutItem"),
        ("ORDERS_TABLE", None, "dynamodb:UpdateItem"),
        ("COUNTERS_TABLE", None, "dynamodb:UpdateItem"),
        ("COUNTERS_TABLE", None, "dynamodb:GetItem"),  # the ROI's visitor-days, read before the transaction
    ],
    "shop_day_totals": [("COUNTERS_TABLE", None, "dynamodb:BatchGetItem")],
    "add_hour_counts": [("COUNTERS_TABLE", None, "dynamodb:UpdateItem")],
    # reclift.data.day_totals.DayTotalsStore: a month's ROI totals per Query; the backfill rebuilds them from the lines
    "totals": [("COUNTERS_TABLE", None, "dynamodb:Query")],
    "rebuild": [("COUNTERS_TABLE", None, "dynamodb:BatchWriteItem")],
    # reclift.data.health.HealthStore
    "hour_totals": [("COUNTERS_TABLE", None, "dynamodb:Query")],
    "state": [("SHOPS_TABLE", None, "dynamodb:GetItem")],
    "save_state": [("SHOPS_TABLE", None, "dynamodb:PutItem")],
    # reclift.data.learning.LearningStore
    "shops": [("SHOPS_TABLE", None, "dynamodb:Scan")],
    "counter_days": [("COUNTERS_TABLE", None, "dynamodb:Query")],  # product counters and page items, one Query a day
    "product_days": [("COUNTERS_TABLE", None, "dynamodb:Query")],
    "save_run": [("LEARNING_TABLE", None, "dynamodb:BatchWriteItem"), ("LEARNING_TABLE", None, "dynamodb:PutItem")],
    "model": [("LEARNING_TABLE", None, "dynamodb:GetItem")],
    "performance": [("LEARNING_TABLE", None, "dynamodb:Query")],
    # the context policy's night: the pages' neighbours (similarity items), then each page's pair ratios
    "page_similarities": [("LEARNING_TABLE", None, "dynamodb:BatchGetItem")],
    "save_pairs": [("LEARNING_TABLE", None, "dynamodb:BatchWriteItem")],
    # reclift.data.similarity.SimilarityStore
    "baskets": [("ORDERS_TABLE", "by_shop_date_v2", "dynamodb:Query")],
    "bought_instead": [("ORDERS_TABLE", "by_shop_date_v2", "dynamodb:Query")],
    "save_similarity": [("LEARNING_TABLE", None, "dynamodb:BatchWriteItem")],
    "catalog_products": [("CATALOG_TABLE", None, "dynamodb:Query")],
    # visitors' view sessions: their profiles' keys from the index, then their viewed lists
    "view_sessions": [
        ("PROFILES_TABLE", "by_shop", "dynamodb:Query"),
        ("PROFILES_TABLE", None, "dynamodb:BatchGetItem"),
    ],
    # reclift.data.privacy.PrivacyStore
    # A customer's footprint: their profile (with its linked visitors), their events, their orders' items, and the
    # linked visitors' events and profiles.
    "customer_data": [
        ("EVENTS_TABLE", "by_customer", "dynamodb:Query"),
        ("EVENTS_TABLE", None, "dynamodb:Query"),
        ("PROFILES_TABLE", None, "dynamodb:GetItem"),
        ("ORDERS_TABLE", None, "dynamodb:Query"),
    ],
    "save_data_request": [("SHOPS_TABLE", None, "dynamodb:PutItem"), ("SHOPS_TABLE", None, "dynamodb:UpdateItem")],
    "data_request": [("SHOPS_TABLE", None, "dynamodb:GetItem")],
    "redact_customer": [
        ("EVENTS_TABLE", "by_customer", "dynamodb:Query"),
        ("EVENTS_TABLE", None, "dynamodb:Query"),
        ("EVENTS_TABLE", None, "dynamodb:BatchWriteItem"),
        ("PROFILES_TABLE", None, "dynamodb:GetItem"),
        ("PROFILES_TABLE", None, "dynamodb:BatchWriteItem"),
        ("ORDERS_TABLE", None, "dynamodb:Query"),
        ("ORDERS_TABLE", None, "dynamodb:UpdateItem"),
        ("SHOPS_TABLE", None, "dynamodb:GetItem"),  # the customer's list of data exports
        ("SHOPS_TABLE", None, "dynamodb:BatchWriteItem"),  # the exports
        ("SHOPS_TABLE", None, "dynamodb:DeleteItem"),  # the list
        ("COUNTERS_TABLE", None, "dynamodb:BatchWriteItem"),  # the ROI's items of the customer's visitor-days
    ],
    # reclift.data.erasure.ShopEraser, by key only: the sparse by_shop indexes (keys only), the shop's partitions,
    # its days, its orders. No Scan.
    "redact_shop": [
        ("EVENTS_TABLE", "by_shop", "dynamodb:Query"),
        ("PROFILES_TABLE", "by_shop", "dynamodb:Query"),
        ("SHOPS_TABLE", "by_shop", "dynamodb:Query"),
        ("ORDERS_TABLE", "by_shop_date_v2", "dynamodb:Query"),
        ("ORDERS_TABLE", None, "dynamodb:Query"),
        ("COUNTERS_TABLE", None, "dynamodb:Query"),
        ("LEARNING_TABLE", None, "dynamodb:Query"),
        ("CATALOG_TABLE", None, "dynamodb:Query"),
        ("SHOPS_TABLE", None, "dynamodb:GetItem"),  # the shop's first registration: its first counter day
        *(
            (table, None, "dynamodb:BatchWriteItem")
            for table in (
                "EVENTS_TABLE",
                "PROFILES_TABLE",
                "ORDERS_TABLE",
                "COUNTERS_TABLE",
                "LEARNING_TABLE",
                "CATALOG_TABLE",
                "SHOPS_TABLE",
            )
        ),
    ],
    "queue_shop_redaction": [],  # SQS (SHOP_REDACT_QUEUE_URL)
    # reclift.data.serving.ServingReader: one BatchGetItem across the three tables
    "context": [
        ("SHOPS_TABLE", None, "dynamodb:BatchGetItem"),
        ("LEARNING_TABLE", None, "dynamodb:BatchGetItem"),
        ("PROFILES_TABLE", None, "dynamodb:BatchGetItem"),
    ],
    # reclift.data.catalog.CatalogStore
    "save_listing": [("CATALOG_TABLE", None, "dynamodb:UpdateItem")],
    "save_deletion": [("CATALOG_TABLE", None, "dynamodb:PutItem")],
    "catalog_listings": [("CATALOG_TABLE", None, "dynamodb:BatchGetItem")],
    # reclift.data.backfill.BackfillStore
    "backfill_progress": [("SHOPS_TABLE", None, "dynamodb:GetItem")],
    "save_backfill_progress": [("SHOPS_TABLE", None, "dynamodb:PutItem")],
    "save_backfilled_basket": [
        ("ORDERS_TABLE", None, "dynamodb:PutItem"),
        ("COUNTERS_TABLE", None, "dynamodb:UpdateItem"),
    ],
    "candidates": [
        ("LEARNING_TABLE", None, "dynamodb:BatchGetItem"),
        ("CATALOG_TABLE", None, "dynamodb:BatchGetItem"),
    ],
    # reclift.data.installs.InstallRegistry (the storefront reads the installation with its BatchGetItem)
    "installation": [("SHOPS_TABLE", None, "dynamodb:BatchGetItem")],
    "claim_installation": [("SHOPS_TABLE", None, "dynamodb:UpdateItem")],
    "complete_installation": [("SHOPS_TABLE", None, "dynamodb:UpdateItem")],
    "fail_installation": [("SHOPS_TABLE", None, "dynamodb:UpdateItem")],
    "mark_uninstalled": [("SHOPS_TABLE", None, "dynamodb:UpdateItem")],
    "claim_token_cycle": [("SHOPS_TABLE", None, "dynamodb:UpdateItem")],
    "complete_token_cycle": [("SHOPS_TABLE", None, "dynamodb:UpdateItem")],
    "fail_token_cycle": [("SHOPS_TABLE", None, "dynamodb:UpdateItem")],
    "mark_refresh_failed": [("SHOPS_TABLE", None, "dynamodb:UpdateItem")],
    # reclift.data.installs.TokenVault and BackfillQueue: SSM (TOKEN_PERMISSIONS) and SQS (its *_QUEUE_URL)
    "put_grant": [],
    "grant": [],
    "delete_token": [],
    "queue_backfill": [],
    "queue_job": [],
    # reclift.data.replay.ReplayStore: orders' items by key and the webhook queue (its *_QUEUE_URL)
    "stored_orders": [("ORDERS_TABLE", None, "dynamodb:BatchGetItem")],
    "queue_delivery": [],
}
# What each call that handles shops' offline tokens asks of SSM, on the token prefix (`*_PARAM_PREFIX`).
TOKEN_PERMISSIONS = {
    "shop_admin_token": "ssm:GetParameter",
    "grant": "ssm:GetParameter",
    "put_grant": "ssm:PutParameter",
    "delete_token": "ssm:DeleteParameter",
}
PORTS = (
    DynamoStore,
    DayTotalsStore,
    LearningStore,
    ServingReader,
    PrivacyStore,
    ShopEraser,
    CatalogStore,
    BackfillStore,
    HealthStore,
    SimilarityStore,
    InstallRegistry,
    TokenVault,
    BackfillQueue,
    ReplayStore,
)
# Powertools' DynamoDBPersistenceLayer.
IDEMPOTENCY_ACTIONS = ("dynamodb:GetItem", "dynamodb:PutItem", "dynamodb:UpdateItem", "dynamodb:DeleteItem")


def test_the_permission_map_covers_every_method_of_the_data_access_port() -> None:
    methods = {
        name for port in PORTS for name, value in vars(port).items() if callable(value) and not name.startswith("_")
    }
    assert methods == set(STORE_PERMISSIONS), "update STORE_PERMISSIONS with what the new or changed methods do"


def required_permissions(
    cfn_template: dict[str, Any], function_id: str, env_names: frozenset[str], calls: frozenset[str]
) -> set[tuple[str, str]]:
    """(action, resource key) pairs the function's code needs, from the port methods and variables it reaches."""
    needed: set[tuple[str, str]] = set()
    for method in sorted(calls & set(STORE_PERMISSIONS)):
        for variable, index, action in STORE_PERMISSIONS[method]:
            table = env_resource(cfn_template, function_id, variable)
            needed.add((action, f"{table}/index/{index}" if index else table))
    for name in env_names:
        if name == "IDEMPOTENCY_TABLE":
            needed |= {(action, env_resource(cfn_template, function_id, name)) for action in IDEMPOTENCY_ACTIONS}
        elif name.endswith("_QUEUE_URL"):  # the code only ever sends; the event source mapping receives
            needed.add(("sqs:SendMessage", env_resource(cfn_template, function_id, name)))
        elif name.endswith("_TOPIC_ARN"):  # the code only ever publishes
            needed.add(("sns:Publish", env_resource(cfn_template, function_id, name)))
        elif name.endswith("_PARAM") and name not in plaintext_secret_overrides(env_names):
            needed.add(("ssm:GetParameter", f"ssm:{env_resource(cfn_template, function_id, name)}"))
        elif name.endswith("_PARAM_PREFIX"):  # one parameter per shop under the prefix
            prefix = f"ssm:{env_resource(cfn_template, function_id, name)}*"
            needed |= {(action, prefix) for call, action in TOKEN_PERMISSIONS.items() if call in calls}
    # Lambda sends a failed asynchronous invocation to its destination with the function's own role.
    needed |= {("sqs:SendMessage", queue) for queue in failure_destinations(cfn_template, function_id)}
    return needed


def test_each_role_allows_what_its_function_code_does(
    cfn_template: dict[str, Any],
    env_reads: dict[str, frozenset[str]],
    method_calls: dict[str, frozenset[str]],
) -> None:
    """Given the port methods and variables a function's code reaches, each DynamoDB, SQS or SSM request it makes is
    allowed by its role on that exact table, index, queue or parameter (moto does not enforce IAM; AWS does)."""
    denied: list[str] = []
    for function_id in sorted(env_reads):
        needed = required_permissions(cfn_template, function_id, env_reads[function_id], method_calls[function_id])
        assert needed, f"found nothing {function_id} needs: the code scan is broken"
        denied += sorted(
            f"{function_id}: {action} on {key}"
            for action, key in needed
            if not allows(cfn_template, function_id, action, key)
        )
    assert denied == [], "the roles deny what the code does:\n" + "\n".join(denied)


def test_the_nightly_learning_runs_at_two_utc_and_fans_out_through_its_own_queue(sam_template: dict[str, Any]) -> None:
    learning = sam_template["Resources"]["DailyLearningFunction"]["Properties"]
    events = {event["Type"]: event["Properties"] for event in learning["Events"].values()}

    assert events["Schedule"]["Schedule"] == "cron(0 2 * * ? *)"
    assert events["SQS"]["Queue"] == {"Fn::GetAtt": ["LearningQueue", "Arn"]}
    assert learning["Environment"]["Variables"]["LEARNING_QUEUE_URL"] == {"Ref": "LearningQueue"}
    assert int(learning["Timeout"]) == 900  # one shop's job fits one invocation, with room to spare


def test_the_daily_similarity_runs_after_the_learning_and_fans_out_through_its_own_queue_and_dlq(
    sam_template: dict[str, Any],
) -> None:
    resources = sam_template["Resources"]
    similarity = resources["SimilarityFunction"]["Properties"]
    events = {event["Type"]: event["Properties"] for event in similarity["Events"].values()}

    assert events["Schedule"]["Schedule"] == "cron(0 3 * * ? *)"  # an hour after the 02:00 learning run
    assert events["SQS"]["Queue"] == {"Fn::GetAtt": ["SimilarityQueue", "Arn"]}
    assert events["SQS"]["BatchSize"] == 1
    assert similarity["Environment"]["Variables"]["SIMILARITY_QUEUE_URL"] == {"Ref": "SimilarityQueue"}
    assert int(similarity["Timeout"]) == 900
    redrive = resources["SimilarityQueue"]["Properties"]["RedrivePolicy"]
    assert redrive["deadLetterTargetArn"] == {"Fn::GetAtt": ["SimilarityDLQ", "Arn"]}
    alarm = resources["SimilarityDLQNotEmptyAlarm"]["Properties"]
    assert alarm["Dimensions"] == [{"Name": "QueueName", "Value": {"Fn::GetAtt": ["SimilarityDLQ", "QueueName"]}}]


def test_each_role_allows_nothing_its_function_code_does_not_do(
    cfn_template: dict[str, Any],
    env_reads: dict[str, frozenset[str]],
    method_calls: dict[str, frozenset[str]],
) -> None:
    """The converse of the test above: every (action, resource) pair a function's inline policy grants is one its
    code reaches. (AWS-managed policies SAM attaches are held to their own list elsewhere.) Index grants of
    DynamoDB reads are counted against the table, and a transaction's ConditionCheck never appears here."""
    surplus: list[str] = []
    for function_id in sorted(env_reads):
        needed = required_permissions(cfn_template, function_id, env_reads[function_id], method_calls[function_id])
        role = cfn_template["Resources"][function_role(cfn_template, function_id)]["Properties"]
        for policy in role.get("Policies", []):
            for statement in statements_of(policy["PolicyDocument"]):
                for action in as_list(statement["Action"]):
                    for entry in as_list(statement["Resource"]):
                        for key in resource_keys(entry):
                            if (action, key) not in needed:
                                surplus.append(f"{function_id}: {action} on {key}")
    assert surplus == [], "granted but never used:\n" + "\n".join(sorted(surplus))


# ------------------------------------------------------------------------------------------ catalog and backfill
def test_the_catalog_table_is_keyed_by_shop_then_product_and_expires_tombstones(
    cfn_template: dict[str, Any], env_reads: dict[str, frozenset[str]]
) -> None:
    """The serving path BatchGets catalog items by {pk: shop, sk: product id}; tombstones expire on `expires_at`."""
    table_id = env_resource(cfn_template, a_function_reading(env_reads, "CATALOG_TABLE"), "CATALOG_TABLE")
    properties = cfn_template["Resources"][table_id]["Properties"]
    assert properties["KeySchema"] == [
        {"AttributeName": "pk", "KeyType": "HASH"},
        {"AttributeName": "sk", "KeyType": "RANGE"},
    ]
    assert properties["TimeToLiveSpecification"] == {"AttributeName": "expires_at", "Enabled": True}


def test_the_backfill_function_reaches_what_it_writes_and_reads_only_its_shops_tokens(
    cfn_template: dict[str, Any],
    env_reads: dict[str, frozenset[str]],
    method_calls: dict[str, frozenset[str]],
) -> None:
    """Given the backfill's code, it stores listings, baskets and its progress; its role reads and writes SSM under
    the token prefix (a refresh replaces the shop's grant), it cannot read events, and it sends only to its own queue
    (a paused run's continuation). Least privilege for the app secret: a refresh authenticates with the current secret,
    so the role may read that one parameter and not the previous secret (which only verifies old signatures)."""
    assert "SHOPIFY_ADMIN_TOKEN_PARAM_PREFIX" in env_reads["BackfillFunction"]
    assert {"save_listing", "save_backfilled_basket", "backfill_progress", "save_backfill_progress"} <= method_calls[
        "BackfillFunction"
    ]
    assert allows(cfn_template, "BackfillFunction", "ssm:GetParameter", "ssm:ShopifyAdminTokenParameterPrefix*")
    assert allows(cfn_template, "BackfillFunction", "ssm:PutParameter", "ssm:ShopifyAdminTokenParameterPrefix*")
    assert allows(cfn_template, "BackfillFunction", "ssm:GetParameter", "ssm:ShopifyApiSecretParameterName")
    assert not allows(cfn_template, "BackfillFunction", "ssm:GetParameter", "ssm:ShopifyApiSecretPreviousParameterName")
    assert not allows(cfn_template, "BackfillFunction", "ssm:PutParameter", "ssm:ShopifyApiSecretParameterName")
    assert "SHOPIFY_API_SECRET_PREVIOUS_PARAM" not in environment(cfn_template, "BackfillFunction")
    events = env_resource(cfn_template, "BackfillFunction", "EVENTS_TABLE")
    assert not any(allows(cfn_template, "BackfillFunction", action, events) for action in DYNAMODB_READ_ACTIONS)
    sends = {action for action in allowed_actions(cfn_template, "BackfillFunction") if action.startswith("sqs:Send")}
    assert sends == {"sqs:SendMessage"}
    own_queue = env_resource(cfn_template, "BackfillFunction", "BACKFILL_QUEUE_URL")
    assert allows(cfn_template, "BackfillFunction", "sqs:SendMessage", own_queue)
    assert int(cfn_template["Resources"]["BackfillFunction"]["Properties"]["Timeout"]) == 900


def test_the_attribution_worker_keeps_the_catalog_from_the_product_topics(
    cfn_template: dict[str, Any], method_calls: dict[str, frozenset[str]]
) -> None:
    catalog = env_resource(cfn_template, "AttributionFunction", "CATALOG_TABLE")
    assert {"save_listing", "save_deletion"} <= method_calls["AttributionFunction"]
    assert allows(cfn_template, "AttributionFunction", "dynamodb:PutItem", catalog)


# ------------------------------------------------------------------------------------------------ data retention
def data_tables(cfn_template: dict[str, Any]) -> set[str]:
    """The tables every function is given in Globals (`*_TABLE`): the merchant's data. The idempotency table, named
    only to the worker that uses it, is Powertools' bookkeeping."""
    variables = environment(cfn_template, "WebhookFunction")
    return {str(ref_target(value)) for name, value in variables.items() if name.endswith("_TABLE")}


def test_every_table_of_merchant_data_outlives_the_stack_and_a_replacement(cfn_template: dict[str, Any]) -> None:
    """Deleting the stack, or a change that replaces a table, must not delete a shop's history: every data table
    is retained both ways (and has point-in-time recovery, held above)."""
    tables = data_tables(cfn_template)
    assert {"EventsTable", "OrdersTable", "CountersTable", "ShopsTable"} <= tables
    not_retained = sorted(
        table_id
        for table_id in tables
        if (
            cfn_template["Resources"][table_id].get("DeletionPolicy"),
            cfn_template["Resources"][table_id].get("UpdateReplacePolicy"),
        )
        != ("Retain", "Retain")
    )
    assert not_retained == [], f"DeletionPolicy and UpdateReplacePolicy should be Retain on {not_retained}"


def test_the_idempotency_table_goes_with_the_stack_by_an_explicit_choice(
    cfn_template: dict[str, Any], env_reads: dict[str, frozenset[str]]
) -> None:
    """Its records expire within the hour and are rebuilt from nothing; keeping it would only leave an orphan."""
    table_id = env_resource(cfn_template, a_function_reading(env_reads, "IDEMPOTENCY_TABLE"), "IDEMPOTENCY_TABLE")
    assert table_id not in data_tables(cfn_template)
    resource = cfn_template["Resources"][table_id]
    assert (resource.get("DeletionPolicy"), resource.get("UpdateReplacePolicy")) == ("Delete", "Delete")


# -------------------------------------------------------------------------------------------- reserved concurrency
# Lambda refuses a reservation that leaves the account fewer than 100 unreserved executions; the default account
# quota is 1,000.
DEFAULT_ACCOUNT_CONCURRENCY = 1000
MINIMUM_UNRESERVED = 100


def reservation_parameter(sam_template: dict[str, Any], function_id: str) -> str:
    """The parameter a function's ReservedConcurrentExecutions comes from, checked to be `!If [<parameter> is not 0,
    <parameter>, AWS::NoValue]`."""
    value = sam_template["Resources"][function_id]["Properties"].get("ReservedConcurrentExecutions")
    assert isinstance(value, dict), f"{function_id}: no conditional reservation"
    assert set(value) == {"Fn::If"}, f"{function_id}: no conditional reservation"
    condition, when_set, when_unset = value["Fn::If"]
    parameter = ref_target(when_set)
    assert parameter in sam_template["Parameters"], function_id
    assert ref_target(when_unset) == "AWS::NoValue", function_id
    assert sam_template["Conditions"][condition] == {"Fn::Not": [{"Fn::Equals": [{"Ref": parameter}, 0]}]}
    return str(parameter)


def resolved(template: dict[str, Any], logical_id: str, overrides: dict[str, str]) -> dict[str, Any]:
    """A resource's properties as CloudFormation would deploy them with these parameter values."""
    resolver = Resolver(template, region="us-east-1", parameter_overrides=overrides)
    properties = resolver.resolve(template["Resources"][logical_id].get("Properties") or {})
    assert isinstance(properties, dict)
    return properties


def test_every_function_has_a_reserved_concurrency_parameter_that_zero_leaves_unset(
    sam_template: dict[str, Any],
) -> None:
    functions = [function_id for function_id, _ in resources(sam_template, "AWS::Serverless::Function")]
    assert len(functions) >= 8
    for function_id in functions:
        parameter = reservation_parameter(sam_template, function_id)
        spec = sam_template["Parameters"][parameter]
        assert (spec["Type"], spec["MinValue"]) == ("Number", 0), parameter
        assert int(spec["Default"]) > 0, f"{parameter}: the default should protect DynamoDB"

        assert resolved(sam_template, function_id, {parameter: "0"}).get("ReservedConcurrentExecutions") is None
        assert resolved(sam_template, function_id, {parameter: "7"})["ReservedConcurrentExecutions"] == "7"


def test_the_default_reservations_leave_the_account_its_unreserved_minimum(sam_template: dict[str, Any]) -> None:
    parameters = sam_template["Parameters"]
    total = sum(
        int(parameters[reservation_parameter(sam_template, function_id)]["Default"])
        for function_id, _ in resources(sam_template, "AWS::Serverless::Function")
    )
    assert total <= DEFAULT_ACCOUNT_CONCURRENCY - MINIMUM_UNRESERVED, f"{total} reserved by default"


def test_the_storefront_and_webhook_have_headroom_and_the_nightly_jobs_little(sam_template: dict[str, Any]) -> None:
    """Serving answers shoppers and intake answers Shopify within 5 s: they get the most; a job's shops wait on
    its queue, so it gets little."""
    defaults = {
        function_id: int(sam_template["Parameters"][reservation_parameter(sam_template, function_id)]["Default"])
        for function_id, _ in resources(sam_template, "AWS::Serverless::Function")
    }
    jobs = [defaults[job] for job in ("DailyLearningFunction", "SimilarityFunction", "HealthCheckFunction")]
    assert min(defaults["StorefrontFunction"], defaults["WebhookFunction"]) >= 10 * max(jobs)
    assert max(jobs) <= 10


@pytest.mark.parametrize(
    "overrides",
    [
        {},
        {
            "DailyLearningReservedConcurrency": "2",
            "SimilarityReservedConcurrency": "3",
            "HealthCheckReservedConcurrency": "4",
        },
        {
            "DailyLearningReservedConcurrency": "0",
            "SimilarityReservedConcurrency": "0",
            "HealthCheckReservedConcurrency": "0",
        },
    ],
    ids=["defaults", "small", "unset"],
)
def test_no_queue_polls_a_function_with_more_concurrency_than_it_reserves(
    cfn_template: dict[str, Any], overrides: dict[str, str]
) -> None:
    """A poller with more concurrent batches than the function's reservation is throttled, and its messages count
    receives towards the DLQ for nothing: every event source of a reserving function sets MaximumConcurrency at
    most the reservation."""
    checked = 0
    for mapping_id, properties in resources(cfn_template, "AWS::Lambda::EventSourceMapping"):
        if properties not in sqs_event_sources(cfn_template):
            continue  # a stream is read by one poller per shard, whatever the reservation
        mapping = resolved(cfn_template, mapping_id, overrides)
        function_id = cfn_template["Resources"][mapping_id]["Properties"]["FunctionName"]["Ref"]
        reserved = resolved(cfn_template, function_id, overrides).get("ReservedConcurrentExecutions")
        if reserved is None:
            continue
        maximum = (mapping.get("ScalingConfig") or {}).get("MaximumConcurrency")
        assert maximum is not None, f"{mapping_id}: no MaximumConcurrency while {function_id} reserves {reserved}"
        assert 2 <= int(maximum) <= int(reserved), f"{mapping_id}: {maximum} pollers for {reserved} reserved"
        checked += 1
    assert checked >= (0 if overrides.get("HealthCheckReservedConcurrency") == "0" else 4)


# -------------------------------------------------------------------------------------------- HTTP API operations
def http_api_stage(cfn_template: dict[str, Any]) -> dict[str, Any]:
    (stage,) = [properties for _, properties in resources(cfn_template, "AWS::ApiGatewayV2::Stage")]
    return stage


def test_the_http_api_throttles_every_route_by_parameters(cfn_template: dict[str, Any]) -> None:
    settings = http_api_stage(cfn_template)["DefaultRouteSettings"]
    for key, parameter in (
        ("ThrottlingRateLimit", "HttpApiThrottlingRateLimit"),
        ("ThrottlingBurstLimit", "HttpApiThrottlingBurstLimit"),
    ):
        assert ref_target(settings[key]) == parameter
        spec = cfn_template["Parameters"][parameter]
        assert (spec["Type"], int(spec["MinValue"])) == ("Number", 1), parameter
        assert int(spec["Default"]) >= 100, parameter


def test_the_http_api_writes_access_logs_to_a_log_group_of_its_own_with_a_retention(
    cfn_template: dict[str, Any],
) -> None:
    settings = http_api_stage(cfn_template)["AccessLogSettings"]
    log_group_id = getatt_target(settings["DestinationArn"], "Arn")
    assert log_group_id, settings
    log_group = cfn_template["Resources"][log_group_id]
    assert log_group["Type"] == "AWS::Logs::LogGroup"
    assert ref_target(log_group["Properties"]["RetentionInDays"]) == "LogRetentionDays"
    assert "/aws/lambda/" not in str(log_group["Properties"]["LogGroupName"])


# What API Gateway writes for each $context variable the access log may use, taken from a request as the function
# receives it (payload 2.0). A variable missing here fails the test below: add it only once it is clear it carries
# neither a query string nor personal data ($context.identity.sourceIp, $context.identity.userAgent,
# $context.integrationErrorMessage and $context.integration.error do: a function's error may quote its input).
ACCESS_LOG_VALUES: dict[str, Callable[[dict[str, Any]], str]] = {
    "requestId": lambda event: str(event["requestContext"]["requestId"]),
    "requestTime": lambda event: str(event["requestContext"]["time"]),
    "requestTimeEpoch": lambda event: str(event["requestContext"]["timeEpoch"]),
    "routeKey": lambda event: str(event["routeKey"]),
    "path": lambda event: str(event["requestContext"]["http"]["path"]),
    "httpMethod": lambda event: str(event["requestContext"]["http"]["method"]),
    "protocol": lambda event: str(event["requestContext"]["http"]["protocol"]),
    "stage": lambda event: str(event["requestContext"]["stage"]),
    "apiId": lambda event: str(event["requestContext"]["apiId"]),
    "status": lambda event: "200",
    "responseLength": lambda event: "512",
    "responseLatency": lambda event: "41",
    "integration.status": lambda event: "200",
    "integration.latency": lambda event: "38",
    "integration.requestId": lambda event: "8f6c1a52-0d7e-4b7e-9a61-3d2f0c9b7e11",
    "error.message": lambda event: "",
}
CONTEXT_VARIABLE = re.compile(r"\$context\.([A-Za-z]+(?:\.[A-Za-z]+)*)")


def access_log_line(log_format: str, event: dict[str, Any]) -> str:
    unknown = sorted(set(CONTEXT_VARIABLE.findall(log_format)) - set(ACCESS_LOG_VALUES))
    assert unknown == [], f"the access log uses $context variables not vetted for query strings or PII: {unknown}"
    return CONTEXT_VARIABLE.sub(lambda match: ACCESS_LOG_VALUES[match.group(1)](event), log_format)


def test_an_access_log_line_of_a_signed_app_proxy_request_carries_no_query_string(
    cfn_template: dict[str, Any],
) -> None:
    """Given the sample signed recommendation request, when API Gateway writes its access log line with the stage's
    format, then the line is one JSON object naming the route and the path, with no part of the query string: not
    the signature, not the visitor."""
    event = json.loads((ROOT / "events" / "storefront-get-recommendations.json").read_text(encoding="utf-8"))
    query = dict(pair.split("=", 1) for pair in event["rawQueryString"].split("&"))
    assert query["signature"]
    assert query["visitor_id"]

    line = access_log_line(http_api_stage(cfn_template)["AccessLogSettings"]["Format"], event)

    record = json.loads(line)
    assert record["routeKey"] == "GET /apps/proxy/recommendations"
    assert record["path"] == "/apps/proxy/recommendations"
    for secret in (query["signature"], query["visitor_id"], query["timestamp"], "signature", "?"):
        assert secret not in line


def test_the_access_log_check_refuses_a_format_with_the_source_ip() -> None:
    """A guard on the guard above: a format quoting an unvetted variable is refused, not rendered."""
    event = json.loads((ROOT / "events" / "storefront-get-recommendations.json").read_text(encoding="utf-8"))
    with pytest.raises(AssertionError, match=r"identity\.sourceIp"):
        access_log_line('{"ip":"$context.identity.sourceIp"}', event)


# ------------------------------------------------------------------------------------------------ RELIABILITY.md
def test_reliability_counts_the_functions_and_roles_the_template_has(cfn_template: dict[str, Any]) -> None:
    """RELIABILITY.md states how many functions and roles the least-privilege checks cover: those counts are the
    template's."""
    text = (ROOT / "RELIABILITY.md").read_text(encoding="utf-8")
    functions = len(list(resources(cfn_template, "AWS::Lambda::Function")))
    roles = len(
        {
            function_role(cfn_template, function_id)
            for function_id, _ in resources(cfn_template, "AWS::Lambda::Function")
        }
    )
    claims = re.findall(r"\b(\d+) (functions|roles)\b", text)
    assert claims, "RELIABILITY.md no longer states how many functions and roles it covers"
    for number, noun in claims:
        assert int(number) == (functions if noun == "functions" else roles), f"RELIABILITY.md: {number} {noun}"
