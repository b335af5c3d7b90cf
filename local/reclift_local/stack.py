"""The whole local stack: emulator, resources, secrets, workers, pollers and gateway, started and stopped in order."""

from __future__ import annotations

import contextlib
import datetime as dt
import json
import os
import threading
import time
import urllib.request
import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .dynamodb_local import DynamoDBLocal, DynamoDBLocalError
from .emulator import AwsClients, Emulator, Provisioner, TableMismatchError, use_fake_credentials
from .gateway import Gateway
from .output import Output
from .pollers import SqsPoller, redrive
from .streams import Checkpoints, FailureDestinations, StreamArns, StreamConsumer, StreamPoller, streams_client
from .template import (
    ACCOUNT_ID,
    DEFAULT_REGION,
    FUNCTION_TYPE,
    QUEUE_TYPE,
    STACK_NAME,
    TABLE_TYPES,
    FunctionSpec,
    Resolver,
    TemplateError,
    function_specs,
    load_template,
)
from .workers import FunctionRuntime, Outcome, function_environment

# Template parameters that follow the documented environment variables (DESIGN.md, "Configuration").
ENV_PARAMETERS = {
    "SHOPIFY_API_KEY": "ShopifyApiKey",
    "APP_PROXY_MAX_SKEW_SECONDS": "AppProxyMaxSkewSeconds",
    "WEBHOOK_MAX_AGE_SECONDS": "WebhookMaxAgeSeconds",
    "COUNTING_BATCH_WINDOW_SECONDS": "CountingBatchWindowSeconds",
}
# Locally the counters follow the events within seconds (the deployment's default gathers up to 5 minutes a batch).
LOCAL_DEFAULTS = {"CountingBatchWindowSeconds": "2"}
# The app secret lives in SSM, as on AWS; functions find it through the parameter's name, never in their environment.
SECRET_PARAMETER = "ShopifyApiSecretParameterName"  # noqa: S105 - a parameter name, not a secret
PREVIOUS_SECRET_PARAMETER = "ShopifyApiSecretPreviousParameterName"  # noqa: S105
PREVIOUS_SECRET_NAME = "/reclift/shopify-api-secret-previous"  # noqa: S105 - an SSM name
DEV_SECRET = "reclift-dev-secret"  # noqa: S105 - the documented development secret
# `SLACK_WEBHOOK_URL=… make run`: health alerts are posted there too, the URL kept in SSM as on AWS.
SLACK_PARAMETER = "SlackWebhookUrlParameterName"
SLACK_PARAMETER_NAME = "/reclift/slack-webhook-url"
DEFAULT_STATE_FILE = Path(".reclift/stack.json")
STREAM_CHECKPOINTS = "stream-checkpoints.json"  # beside DynamoDB Local's kept tables (make clean-data wipes both)


class StackError(Exception):
    """The stack cannot start; the message says why and what to do."""


@dataclass
class StackOptions:
    template: Path = Path("template.yaml")
    port: int = 3000
    state_file: Path = DEFAULT_STATE_FILE
    region: str = DEFAULT_REGION
    retry_delay: int = 1
    max_concurrency: int = 10
    parameter_overrides: dict[str, str] = field(default_factory=dict)
    report: bool = True
    database: str = "moto"  # or "dynamodb-local": AWS's DynamoDB Local for the tables
    dynamodb_data_dir: Path | None = None  # DynamoDB Local's tables kept here across restarts (None: in memory)
    environ: Mapping[str, str] = field(default_factory=lambda: dict(os.environ))


def parameter_overrides(template: Mapping[str, Any], options: StackOptions) -> tuple[dict[str, str], dict[str, str]]:
    """Parameter values from the environment and the command line, and the SSM parameters to create for secrets."""
    declared = template.get("Parameters") or {}
    overrides = {
        param: options.environ[var]
        for var, param in ENV_PARAMETERS.items()
        if param in declared and var in options.environ
    }
    ssm: dict[str, str] = {}
    previous = options.environ.get("SHOPIFY_API_SECRET_PREVIOUS")
    if previous and PREVIOUS_SECRET_PARAMETER in declared:
        overrides[PREVIOUS_SECRET_PARAMETER] = PREVIOUS_SECRET_NAME
    overrides.update(options.parameter_overrides)
    for param, value in LOCAL_DEFAULTS.items():
        if param in declared:
            overrides.setdefault(param, value)
    if SECRET_PARAMETER in declared:
        name = overrides.get(SECRET_PARAMETER, str((declared[SECRET_PARAMETER] or {}).get("Default", "")))
        if name:
            ssm[name] = options.environ.get("SHOPIFY_API_SECRET") or DEV_SECRET
    if previous and PREVIOUS_SECRET_PARAMETER in declared:
        ssm[overrides[PREVIOUS_SECRET_PARAMETER]] = previous
    slack = options.environ.get("SLACK_WEBHOOK_URL")
    if slack and SLACK_PARAMETER in declared:
        overrides.setdefault(SLACK_PARAMETER, SLACK_PARAMETER_NAME)
        ssm[overrides[SLACK_PARAMETER]] = slack
    return overrides, ssm


def pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


class LocalStack:
    def __init__(self, options: StackOptions, output: Output | None = None) -> None:
        self.options = options
        self.output = output or Output()
        self.emulator = Emulator()
        self.dynamodb_local = DynamoDBLocal(options.dynamodb_data_dir) if options.database == "dynamodb-local" else None
        self.dynamodb_endpoint: str | None = None
        self.template: dict[str, Any] = {}
        self.specs: dict[str, FunctionSpec] = {}
        self.runtimes: dict[str, FunctionRuntime] = {}
        self.pollers: list[SqsPoller] = []
        self.stream_pollers: list[StreamPoller] = []
        self.stream_arns: StreamArns | None = None
        self.gateway: Gateway | None = None
        self.clients: AwsClients | None = None
        self.provisioner: Provisioner | None = None
        self._state_written = False
        self._stats_lock = threading.Lock()

    # ------------------------------------------------------------------------------------------------------- start

    def provision(self) -> str:
        """The emulator, the template's resources and secrets, and the functions' specs; returns the endpoint.

        Everything but the workers, pollers and gateway: what handler tests need to run functions in-process.
        """
        options = self.options
        template_path = options.template.resolve()
        if not template_path.is_file():
            raise StackError(f"no SAM template at {template_path}")
        self.template = load_template(template_path)

        use_fake_credentials(options.region)
        endpoint = self.emulator.start()
        if self.dynamodb_local is not None:
            try:
                self.dynamodb_endpoint = self.dynamodb_local.start(options.region)
            except DynamoDBLocalError as exc:
                raise StackError(str(exc)) from exc
        self.clients = AwsClients(endpoint, options.region, self.dynamodb_endpoint)
        self.provisioner = Provisioner(self.template, self.clients)
        # `!GetAtt Table.StreamArn` is the stream the emulator made for the table, known once the table exists.
        self.stream_arns = StreamArns(self.provisioner)
        overrides, ssm = parameter_overrides(self.template, options)
        resolver = Resolver(
            self.template, region=options.region, parameter_overrides=overrides, attrs_of=self.stream_arns.attrs_of
        )
        try:
            self.provisioner.create_all(resolver)
        except TableMismatchError as exc:
            raise StackError(str(exc)) from exc
        for name, value in ssm.items():
            self.provisioner.put_secret(name, value)

        self.specs = {s.logical_id: s for s in function_specs(self.template, resolver, template_path.parent)}
        return endpoint

    def start(self) -> None:
        options = self.options
        self._refuse_second_stack()
        endpoint = self.provision()
        assert self.provisioner is not None
        assert self.clients is not None
        for spec in self.specs.values():
            for ignored in spec.ignored_events:
                self.output.info(f"note: {spec.logical_id} event {ignored} is not emulated locally")
            env = function_environment(
                spec, region=options.region, endpoint=endpoint, dynamodb_endpoint=self.dynamodb_endpoint
            )
            reserved = (self.template["Resources"][spec.logical_id].get("Properties") or {}).get(
                "ReservedConcurrentExecutions"
            )
            limit = int(reserved) if isinstance(reserved, int) and reserved > 0 else options.max_concurrency
            self.runtimes[spec.logical_id] = FunctionRuntime(
                spec, env, self.output, options.region, max_concurrency=limit, report=options.report
            )
        self._start_workers()

        for spec in self.specs.values():
            for source in spec.sqs_sources:
                if not source.enabled:
                    continue
                self.pollers.append(
                    SqsPoller(
                        source,
                        self.provisioner.queue_by_arn(source.queue_arn),
                        self.clients.sqs,
                        self.invoke,
                        region=options.region,
                        retry_delay=options.retry_delay,
                        function_timeout=spec.timeout,
                        output=self.output,
                        on_failed_records=self._count_failed_records,
                    )
                )
        for poller in self.pollers:
            poller.start()
        self._start_stream_pollers()

        routes = [route for spec in self.specs.values() for route in spec.routes]
        try:
            self.gateway = Gateway(routes, self, options.port)
        except OSError as exc:
            raise StackError(
                f"cannot listen on 127.0.0.1:{options.port} ({exc.strerror}); "
                "is another local stack running? Choose another port with PORT=… or --port"
            ) from exc
        self.gateway.start()
        self._write_state()
        self.output.info(
            f"reclift local stack ready on http://127.0.0.1:{self.gateway.port} (AWS emulator at {endpoint})"
        )

    def stream_consumers(self, invoke: Any, **kwargs: Any) -> list[StreamConsumer]:
        """A consumer for each enabled DynamoDB stream event source, checked against the stack's tables and
        destinations; `invoke(logical_id, event) -> Outcome` runs the function (workers, or a test's own)."""
        assert self.clients is not None
        assert self.provisioner is not None
        assert self.stream_arns is not None
        destinations = FailureDestinations(self.provisioner)
        client = streams_client(self.clients)
        consumers: list[StreamConsumer] = []
        for spec in self.specs.values():
            for source in spec.stream_sources:
                if not source.enabled:
                    continue
                if self.stream_arns.table_of(source.stream_arn) is None:
                    raise StackError(
                        f"{spec.logical_id} event {source.event}: {source.stream_arn} is not the stream of a table "
                        "in the template (does the table declare a StreamSpecification?)"
                    )
                if source.on_failure_arn is not None:
                    try:
                        destinations.check(source.on_failure_arn)
                    except TemplateError as exc:
                        raise StackError(f"{spec.logical_id} event {source.event} OnFailure: {exc}") from exc
                if source.unsupported:
                    self.output.info(
                        f"note: {spec.logical_id} event {source.event}: {', '.join(source.unsupported)} "
                        "not emulated locally"
                    )
                consumers.append(
                    StreamConsumer(
                        source,
                        client,
                        function_arn=f"arn:aws:lambda:{self.options.region}:{ACCOUNT_ID}:function:{spec.name}",
                        region=self.options.region,
                        invoke=invoke,
                        send_failure=destinations.send,
                        output=self.output,
                        **kwargs,
                    )
                )
        return consumers

    def _start_stream_pollers(self) -> None:
        # DynamoDB Local keeps its streams with its tables across restarts: the mappings keep their place beside them.
        data_dir = self.options.dynamodb_data_dir if self.dynamodb_local is not None else None
        consumers = self.stream_consumers(
            self.invoke,
            retry_delay=self.options.retry_delay,
            on_failed_records=self._count_failed_records,
            checkpoints=Checkpoints(data_dir / STREAM_CHECKPOINTS) if data_dir is not None else None,
        )
        self.stream_pollers = [StreamPoller(consumer, self.output) for consumer in consumers]
        for poller in self.stream_pollers:
            poller.start()

    def _refuse_second_stack(self) -> None:
        state = read_state(self.options.state_file)
        if not (state and isinstance(state.get("pid"), int) and state["pid"] != os.getpid()):
            return
        # A state file left by a killed runner is stale unless its process is alive and its port still answers
        # (a recycled pid alone proves nothing).
        if pid_alive(state["pid"]) and _answers(str(state.get("url", ""))):
            raise StackError(
                f"a local stack is already running (pid {state['pid']}, port {state.get('port')}); "
                f"stop it first, or use another --state-file"
            )

    def _start_workers(self) -> None:
        errors: list[str] = []

        def warm(runtime: FunctionRuntime) -> None:
            try:
                worker = runtime.start_warm()
            except Exception as exc:
                errors.append(f"{runtime.spec.logical_id}: {exc}")
                return
            if worker.init_error:
                self.output.info(
                    f"warning: {runtime.spec.logical_id} failed to initialise "
                    f"({worker.init_error.get('errorType')}: {worker.init_error.get('errorMessage')}); "
                    "its invocations will fail"
                )

        threads = [threading.Thread(target=warm, args=(r,)) for r in self.runtimes.values()]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        if errors:
            raise StackError("workers failed to start: " + "; ".join(errors))

    def _count_failed_records(self, logical_id: str, count: int) -> None:
        runtime = self.runtimes[logical_id]
        with self._stats_lock:
            runtime.stats.failed_records += count

    # ------------------------------------------------------------------------------------------------- state file

    def resources(self) -> dict[str, str]:
        assert self.provisioner is not None
        out: dict[str, str] = {}
        for logical_id, resource in (self.template.get("Resources") or {}).items():
            kind = resource.get("Type")
            if kind in TABLE_TYPES and logical_id in self.provisioner.tables:
                out[logical_id] = self.provisioner.tables[logical_id]
            elif kind == QUEUE_TYPE and logical_id in self.provisioner.queues:
                out[logical_id] = self.provisioner.queues[logical_id].url
            elif logical_id in self.provisioner.topics:
                out[logical_id] = self.provisioner.topics[logical_id]
            elif kind == FUNCTION_TYPE and logical_id in self.specs:
                out[logical_id] = self.specs[logical_id].name
            elif kind == "AWS::Serverless::HttpApi" and self.gateway is not None:
                out[logical_id] = f"http://127.0.0.1:{self.gateway.port}"
        return out

    def _write_state(self) -> None:
        assert self.gateway is not None
        state = {
            "pid": os.getpid(),
            "port": self.gateway.port,
            "url": f"http://127.0.0.1:{self.gateway.port}",
            "moto_endpoint": self.emulator.endpoint,
            "dynamodb_endpoint": self.dynamodb_endpoint or self.emulator.endpoint,
            "database": self.options.database,
            "region": self.options.region,
            "template": str(self.options.template.resolve()),
            "resources": self.resources(),
            "functions": {
                name: {
                    "routes": [r.route_key for r in spec.routes],
                    "sqs": [self._queue_id(s.queue_arn) for s in spec.sqs_sources],
                    "streams": [self._stream_table(s.stream_arn) for s in spec.stream_sources],
                    "scheduled": bool(spec.schedules),
                    "sends_to": self._queues_named_in(spec),
                }
                for name, spec in self.specs.items()
            },
        }
        path = self.options.state_file
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(path.name + f".{os.getpid()}.tmp")
        tmp.write_text(json.dumps(state, indent=2) + "\n", encoding="utf-8")
        tmp.replace(path)  # atomic: a reader never sees half a file
        self._state_written = True

    def _queues_named_in(self, spec: FunctionSpec) -> list[str]:
        """The queues the function can send to: those whose URL its environment holds (its fan-out)."""
        assert self.provisioner is not None
        values = set(spec.environment.values())
        return sorted(info.logical_id for info in self.provisioner.queues.values() if info.url in values)

    def _stream_table(self, arn: str) -> str | None:
        return self.stream_arns.table_of(arn) if self.stream_arns is not None else None

    def _queue_id(self, arn: str) -> str:
        assert self.provisioner is not None
        return self.provisioner.queue_by_arn(arn).logical_id

    # ------------------------------------------------------------------------------------------------ control plane

    def function_names(self) -> list[str]:
        return sorted(self.runtimes)

    def invoke(self, logical_id: str, event: Any) -> Outcome:
        return self.runtimes[logical_id].invoke(event)

    def scheduled_event(self, logical_id: str) -> Any:
        spec = self.specs[logical_id]
        if not spec.schedules:
            return None
        schedule = spec.schedules[0]
        if schedule.input is not None:
            return json.loads(schedule.input)  # a rule with Input delivers exactly that
        region = self.options.region
        now = dt.datetime.now(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
        return {
            "version": "0",
            "id": str(uuid.uuid4()),
            "detail-type": "Scheduled Event",
            "source": "aws.events",
            "account": ACCOUNT_ID,
            "time": now,
            "region": region,
            "resources": [f"arn:aws:events:{region}:{ACCOUNT_ID}:rule/{STACK_NAME}-{logical_id}{schedule.event}"],
            "detail": {},
        }

    def status(self) -> dict[str, Any]:
        assert self.clients is not None
        assert self.provisioner is not None
        sources = {self._queue_id(p.source.queue_arn) for p in self.pollers}
        busy = {self._queue_id(p.source.queue_arn) for p in self.pollers if p.busy}
        dlqs = self.provisioner.dead_letter_queues()
        queues: dict[str, Any] = {}
        for logical_id, info in self.provisioner.queues.items():
            attrs = self.clients.sqs.get_queue_attributes(
                QueueUrl=info.url,
                AttributeNames=[
                    "ApproximateNumberOfMessages",
                    "ApproximateNumberOfMessagesNotVisible",
                    "ApproximateNumberOfMessagesDelayed",
                ],
            )["Attributes"]
            queues[logical_id] = {
                "visible": int(attrs.get("ApproximateNumberOfMessages", 0)),
                "inFlight": int(attrs.get("ApproximateNumberOfMessagesNotVisible", 0)),
                "delayed": int(attrs.get("ApproximateNumberOfMessagesDelayed", 0)),
                "eventSource": logical_id in sources,
                "deadLetterQueue": logical_id in dlqs,
                "dlq": self._queue_id(info.dlq_arn) if info.dlq_arn else None,
                "busy": logical_id in busy,
            }
        with self._stats_lock:
            functions = {name: {**r.stats.as_dict(), "workers": r.pids()} for name, r in self.runtimes.items()}
        streams = {
            f"{p.source.function}.{p.source.event}": {
                "table": self._stream_table(p.source.stream_arn),
                "busy": p.busy,
                "buffered": p.consumer.pending(),
            }
            for p in self.stream_pollers
        }
        return {
            "functions": functions,
            "queues": queues,
            "streams": streams,
            "pollersBusy": sum(1 for p in self.pollers if p.busy) + sum(1 for p in self.stream_pollers if p.busy),
        }

    def redrive(self) -> dict[str, Any]:
        assert self.clients is not None
        assert self.provisioner is not None
        moved: dict[str, Any] = {}
        for dlq_id, sources in self.provisioner.dead_letter_queues().items():
            # Several queues may share a DLQ; without the source recorded on each message, the first one gets them.
            target = sources[0]
            count = redrive(self.clients.sqs, self.provisioner.queues[dlq_id], target)
            moved[dlq_id] = {"to": target.logical_id, "moved": count}
        return {"redriven": moved, "total": sum(m["moved"] for m in moved.values())}

    # -------------------------------------------------------------------------------------------------------- stop

    def stop(self) -> None:
        """Stop everything this stack started; safe to call more than once, and after a failed start."""
        if self.gateway is not None:
            with contextlib.suppress(Exception):
                self.gateway.stop()
            self.gateway = None
        every: list[SqsPoller | StreamPoller] = [*self.pollers, *self.stream_pollers]
        for poller in every:
            poller.stop()
        deadline = time.monotonic() + 5
        for poller in every:
            poller.join(max(0.0, deadline - time.monotonic()))
        self.pollers = []
        self.stream_pollers = []
        runtimes = list(self.runtimes.values())
        threads = [threading.Thread(target=r.stop) for r in runtimes]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        with contextlib.suppress(Exception):
            self.emulator.stop()
        if self.dynamodb_local is not None:
            with contextlib.suppress(Exception):
                self.dynamodb_local.stop()
        if self._state_written:
            with contextlib.suppress(FileNotFoundError):
                self.options.state_file.unlink()
            self._state_written = False

    def worker_pids(self) -> list[int]:
        return [pid for runtime in self.runtimes.values() for pid in runtime.pids()]


def _answers(url: str) -> bool:
    if not url.startswith("http://127.0.0.1:"):
        return False
    try:
        with urllib.request.urlopen(url + "/_local/health", timeout=2) as response:  # noqa: S310 - loopback only
            return int(response.status) == 200
    except (OSError, ValueError):
        return False


def read_state(path: Path) -> dict[str, Any] | None:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (FileNotFoundError, ValueError):
        return None
    return data if isinstance(data, dict) else None
