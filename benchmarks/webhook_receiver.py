"""The webhook receiver: one SQS send and no DynamoDB work per delivery, its in-handler time, and every handler's
import time (the cold-start share that is ours).

Deliveries run through the WebhookFunction's handler in this process (loaded once, as a warm Lambda environment)
against moto server. Each is followed by a bare boto3 SendMessage of the same envelope to the same queue, so the
handler's time is also reported as a ratio to that floor, measured under the same noise.

Import times are measured in fresh interpreters with the function's environment (as the template gives it) and
`PYTHONPATH=functions/<name>:layers/reclift` (the code and the layer, as on Lambda); bytecode is cached in a
temporary directory after one discarded warm-up run, so the figures are imports, not compilation.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import tempfile
import time
from collections import Counter
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import boto3

from benchmarks.common import (
    ROOT,
    ApiCall,
    ApiCallCounter,
    WarmFunction,
    calls_by_operation,
    latency_summary,
    logical_names,
    median,
    pyplot,
    quiet_stdout,
    ratio,
    save_figure,
    write_results,
)

NAME = "webhook_receiver"
DESCRIPTION = (
    "WebhookFunction per signed orders/create delivery: SQS sends, DynamoDB requests, in-handler time (also as a "
    "ratio to a bare SendMessage measured alongside); and each handler module's import time in a fresh process"
)
IMPORT_TARGET_MS = 300.0
TOP_IMPORTS = 8
_IMPORTTIME = re.compile(r"^import time:\s+(\d+)\s+\|\s+(\d+)\s+\|( *)(\S+)\s*$")


# ------------------------------------------------------------------------------------------------ deliveries
def order_body(order_id: int, lines: int) -> bytes:
    from tests.support.shopify import order_payload

    specs = [
        {"product_id": 9_200_000 + n, "price": f"{5 + 3 * n}.99", "quantity": 1 + n % 2, "discount": "0.00"}
        for n in range(lines)
    ]
    order = order_payload(order_id=order_id, created_at=datetime.now(UTC), lines=specs, visitor_id=f"v-{order_id}")
    return json.dumps(order).encode()


def measure_deliveries(aws: Any, count: int) -> dict[str, Any]:
    from tests.support.shopify import new_shop, webhook_event

    webhook = WarmFunction(aws, "WebhookFunction")
    counter = ApiCallCounter(names=logical_names(aws))
    queue_url = aws.resource("WebhookQueue")
    sqs = boto3.client("sqs", endpoint_url=aws.endpoint, region_name="us-east-1")
    shop = new_shop()

    per_webhook: list[Counter[ApiCall]] = []
    handler_ms: list[float] = []
    own_ms: list[float] = []  # the handler's time outside its AWS requests
    baseline_ms: list[float] = []
    statuses: Counter[int] = Counter()
    for index in range(count):
        event = webhook_event(shop, order_body(6_100_000_000 + index, 1 + index % 5))
        with counter.counting() as block:
            response, seconds = webhook(event)
        per_webhook.append(block.calls)
        handler_ms.append(seconds * 1000)
        own_ms.append((seconds - block.aws_seconds) * 1000)
        statuses[int(response["statusCode"])] += 1
        # The floor: the same envelope sent by a bare client, right after, under the same noise.
        started = time.perf_counter()
        sqs.send_message(
            QueueUrl=queue_url,
            MessageBody=event["body"],
            MessageAttributes={"topic": {"DataType": "String", "StringValue": "orders/create"}},
        )
        baseline_ms.append((time.perf_counter() - started) * 1000)

    queued = drain(sqs, queue_url)
    totals: Counter[ApiCall] = Counter()
    for calls in per_webhook:
        totals.update(calls)
    sends = [
        sum(n for c, n in calls.items() if c.service == "sqs" and c.operation == "SendMessage") for calls in per_webhook
    ]
    dynamodb = [sum(n for c, n in calls.items() if c.service == "dynamodb") for calls in per_webhook]
    warm, warm_baseline = handler_ms[1:], baseline_ms[1:]
    return {
        "webhooks": count,
        "responses_by_status": {str(k): v for k, v in sorted(statuses.items())},
        "messages_queued": queued - count,  # the bare sends are on the queue too
        "sqs_send_message_per_webhook": {"min": min(sends), "max": max(sends), "mean": sum(sends) / count},
        "dynamodb_requests_per_webhook": {"min": min(dynamodb), "max": max(dynamodb), "mean": sum(dynamodb) / count},
        "requests_total": calls_by_operation(totals),
        "first_invocation_ms": handler_ms[0],
        "first_invocation_requests": calls_by_operation(per_webhook[0]),
        "in_handler_warm": latency_summary(warm),
        "in_handler_warm_excluding_aws_requests": latency_summary(own_ms[1:]),
        "bare_send_message": latency_summary(warm_baseline),
        "in_handler_p50_over_bare_send_p50": ratio(median(warm), median(warm_baseline)),
        "series_ms": {"handler": handler_ms, "bare_send_message": baseline_ms},
    }


def drain(sqs: Any, queue_url: str) -> int:
    taken = 0
    while True:
        messages = sqs.receive_message(QueueUrl=queue_url, MaxNumberOfMessages=10).get("Messages", [])
        if not messages:
            return taken
        sqs.delete_message_batch(
            QueueUrl=queue_url,
            Entries=[{"Id": str(n), "ReceiptHandle": m["ReceiptHandle"]} for n, m in enumerate(messages)],
        )
        taken += len(messages)


# ------------------------------------------------------------------------------------------------ import time
def import_environment(aws: Any, logical_id: str, pycache: Path) -> dict[str, str]:
    spec = aws.stack.specs[logical_id]
    env: dict[str, str] = dict(aws.environment(logical_id))
    env.update(
        {
            "PYTHONPATH": os.pathsep.join([str(spec.code_dir), *(str(path) for path in spec.layer_dirs)]),
            "PYTHONPYCACHEPREFIX": str(pycache),  # never writes bytecode next to the sources
            "TZ": ":UTC",
        }
    )
    env.pop("PYTHONDONTWRITEBYTECODE", None)
    return env


def parse_importtime(stderr: str, module: str = "app") -> dict[str, Any]:
    """The module's cumulative import time, its direct imports by cumulative time and self time by package."""
    rows: list[tuple[int, int, int, str]] = []  # self µs, cumulative µs, depth, name
    for line in stderr.splitlines():
        match = _IMPORTTIME.match(line)
        if match:
            rows.append((int(match[1]), int(match[2]), (len(match[3]) - 1) // 2, match[4]))
    base = min((depth for _, _, depth, _ in rows), default=0)
    rows = [(own, cumulative, depth - base, name) for own, cumulative, depth, name in rows]
    end = next(i for i, row in enumerate(rows) if row[2] == 0 and row[3] == module)
    start = max((i for i in range(end) if rows[i][2] == 0), default=-1) + 1
    subtree = rows[start : end + 1]
    children = sorted((row for row in subtree if row[2] == 1), key=lambda row: -row[1])
    by_package: Counter[str] = Counter()
    for own, _, _, name in subtree:
        by_package[name.split(".")[0]] += own
    return {
        "cumulative_ms": rows[end][1] / 1000,
        "top_direct_imports_ms": {name: cumulative / 1000 for _, cumulative, _, name in children[:TOP_IMPORTS]},
        "self_time_by_package_ms": {name: own / 1000 for name, own in by_package.most_common(TOP_IMPORTS)},
    }


@dataclass
class ImportSubject:
    """One module to import in fresh interpreters: a handler module, or the boto3 reference."""

    name: str
    module: str
    code: str
    env: dict[str, str]
    wall_s: list[float] = field(default_factory=list)
    process_s: list[float] = field(default_factory=list)
    profiles: list[dict[str, Any]] = field(default_factory=list)
    error: str | None = None

    def measure_once(self) -> None:
        timed = f"import time; t = time.perf_counter(); import {self.module}; print(time.perf_counter() - t)"
        started = time.perf_counter()
        done = subprocess.run(
            [sys.executable, "-c", timed], env=self.env, cwd=ROOT, capture_output=True, text=True, check=True
        )
        self.process_s.append(time.perf_counter() - started)
        self.wall_s.append(float(done.stdout.strip().splitlines()[-1]))
        done = subprocess.run(
            [sys.executable, "-X", "importtime", "-c", f"import {self.module}"],
            env=self.env,
            cwd=ROOT,
            capture_output=True,
            text=True,
            check=True,
        )
        self.profiles.append(parse_importtime(done.stderr, self.module))

    def figures(self, reference_ms: float) -> dict[str, Any]:
        if self.error is not None:
            return {"code": self.code, "module": self.module, "error": self.error}
        typical = sorted(self.profiles, key=lambda profile: float(profile["cumulative_ms"]))[len(self.profiles) // 2]
        wall_ms = median(self.wall_s) * 1000
        return {
            "code": self.code,
            "module": self.module,
            "import_wall_ms_median": wall_ms,
            "import_wall_ms_runs": sorted(s * 1000 for s in self.wall_s),
            "importtime_cumulative_ms_median": typical["cumulative_ms"],
            "process_wall_ms_median": median(self.process_s) * 1000,
            "import_wall_over_boto3": ratio(wall_ms, reference_ms),
            "under_target": wall_ms < IMPORT_TARGET_MS and typical["cumulative_ms"] < IMPORT_TARGET_MS,
            "top_direct_imports_ms": typical["top_direct_imports_ms"],
            "self_time_by_package_ms": typical["self_time_by_package_ms"],
        }


def measure_imports(aws: Any, runs: int) -> tuple[dict[str, Any], dict[str, Any]]:
    """Each handler module's import figures, and those of `import boto3` alone (the same-run reference).

    The subjects are measured round-robin, so a noisy moment is shared rather than landing on one function.
    """
    with tempfile.TemporaryDirectory(prefix="reclift-pycache-") as pycache:
        subjects: list[ImportSubject] = []
        for logical_id in sorted(aws.stack.specs):
            spec = aws.stack.specs[logical_id]
            subjects.append(
                ImportSubject(
                    name=logical_id,
                    module=spec.handler.rpartition(".")[0],
                    code=str(spec.code_dir.relative_to(ROOT)),
                    env=import_environment(aws, logical_id, Path(pycache)),
                )
            )
        reference = ImportSubject("boto3", "boto3", "-", dict(subjects[0].env))
        for subject in [*subjects, reference]:
            try:  # warm-up, discarded: compiles into the bytecode cache
                subprocess.run(
                    [sys.executable, "-c", f"import {subject.module}"],
                    env=subject.env,
                    cwd=ROOT,
                    capture_output=True,
                    text=True,
                    check=True,
                )
            except subprocess.CalledProcessError as exc:
                # A function the template declares whose code is not (yet) importable: reported, not fatal.
                subject.error = (str(exc.stderr or "").strip().splitlines() or ["failed"])[-1]
                print(f"  {subject.name}: import {subject.module} failed: {subject.error}", file=sys.stderr)
        for _ in range(runs):
            for subject in [*subjects, reference]:
                if subject.error is None:
                    subject.measure_once()
    reference_ms = median(reference.wall_s) * 1000
    results = {subject.name: subject.figures(reference_ms) for subject in subjects}
    return results, reference.figures(reference_ms)


# ------------------------------------------------------------------------------------------------ the benchmark
def run(quick: bool) -> list[str]:
    from tests.support.aws import emulated_aws

    count = 50 if quick else 200
    runs = 3 if quick else 5
    config = {"webhooks": count, "import_runs": runs, "import_target_ms": IMPORT_TARGET_MS, "quick": quick}
    with tempfile.TemporaryDirectory(prefix="reclift-bench-") as tmp, quiet_stdout(), emulated_aws(Path(tmp)) as aws:
        deliveries = measure_deliveries(aws, count)
        imports, boto3_reference = measure_imports(aws, runs)
    series = deliveries.pop("series_ms")
    figures = {"deliveries": deliveries, "import_time": imports, "import_time_reference_boto3": boto3_reference}
    write_results(NAME, description=DESCRIPTION, config=config, figures=figures)
    plot(series, imports, boto3_reference)
    return summary_lines(figures)


def plot(series: dict[str, list[float]], imports: dict[str, Any], reference: dict[str, Any]) -> None:
    plt = pyplot()
    fig, (left, right) = plt.subplots(1, 2, figsize=(11, 4))
    handler, baseline = series["handler"][1:], series["bare_send_message"][1:]
    top = max(max(handler), max(baseline))
    bins = [top * i / 40 for i in range(41)]
    left.hist(handler, bins=bins, alpha=0.7, label="WebhookFunction handler (warm)")
    left.hist(baseline, bins=bins, alpha=0.7, label="bare boto3 SendMessage")
    left.set(xlabel="ms", ylabel="deliveries", title=f"In-handler time, {len(handler)} warm deliveries")
    left.legend(fontsize=8)
    names = [name for name in imports if "error" not in imports[name]]
    positions = list(range(len(names) + 1))
    wall = [imports[n]["import_wall_ms_median"] for n in names] + [reference["import_wall_ms_median"]]
    cumulative = [imports[n]["importtime_cumulative_ms_median"] for n in names]
    cumulative.append(reference["importtime_cumulative_ms_median"])
    right.bar([p - 0.2 for p in positions], wall, width=0.4, label="import, wall (median)")
    right.bar([p + 0.2 for p in positions], cumulative, width=0.4, label="-X importtime cumulative (median)")
    right.axhline(IMPORT_TARGET_MS, color="red", linestyle="--", label=f"target {IMPORT_TARGET_MS:.0f} ms")
    labels = [n.removesuffix("Function") for n in names] + ["boto3 alone"]
    right.set_xticks(positions, labels, fontsize=8, rotation=20)
    right.set_ylim(0, max([*wall, *cumulative, IMPORT_TARGET_MS]) * 1.35)
    right.set(ylabel="ms", title="Handler module import time (fresh process)")
    right.legend(fontsize=8, loc="upper left", ncols=2)
    save_figure(fig, NAME)


def summary_lines(figures: dict[str, Any]) -> list[str]:
    d = figures["deliveries"]
    boto3_ms = figures["import_time_reference_boto3"]["import_wall_ms_median"]
    warm, bare = d["in_handler_warm"], d["bare_send_message"]
    lines = [
        f"webhook_receiver: {d['webhooks']} signed deliveries, responses {d['responses_by_status']}, "
        f"{d['messages_queued']} queued",
        f"  SQS SendMessage per webhook: {d['sqs_send_message_per_webhook']['min']}–"
        f"{d['sqs_send_message_per_webhook']['max']} (target 1); DynamoDB requests per webhook: "
        f"{d['dynamodb_requests_per_webhook']['max']} max (target 0)",
        f"  in-handler (warm): p50 {warm['p50_ms']:.1f} ms, p99 {warm['p99_ms']:.1f} ms, max {warm['max_ms']:.1f} ms; "
        f"first invocation {d['first_invocation_ms']:.0f} ms; bare SendMessage p50 {bare['p50_ms']:.1f} ms "
        f"→ ratio {d['in_handler_p50_over_bare_send_p50']:.2f}; outside AWS requests p50 "
        f"{d['in_handler_warm_excluding_aws_requests']['p50_ms']:.1f} ms",
        f"  import time (target < {IMPORT_TARGET_MS:.0f} ms; fresh process): `import app` wall median, -X importtime "
        f"cumulative, ratio to `import boto3` in the same run ({boto3_ms:.0f} ms), biggest direct imports (ms)",
    ]
    for name, row in figures["import_time"].items():
        if "error" in row:
            lines.append(f"  {name:<20} not importable: {row['error']}")
            continue
        biggest = ", ".join(f"{k} {v:.0f}" for k, v in list(row["top_direct_imports_ms"].items())[:3])
        lines.append(
            f"  {name:<22} {row['import_wall_ms_median']:>4.0f} ms {row['importtime_cumulative_ms_median']:>4.0f} ms "
            f"×{row['import_wall_over_boto3']:.1f}  {'ok' if row['under_target'] else 'OVER'}  ({biggest})"
        )
    return lines
