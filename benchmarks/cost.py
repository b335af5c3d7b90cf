"""What reclift costs in dollars at AWS list prices: per million recommendation and events requests, per thousand
orders, and per shop and month, from what the `capacity` benchmark measured (DynamoDB capacity units, the handlers'
own time) and the log bytes each invocation writes (measured here, on the emulator).

Run `python -m benchmarks capacity` and `python -m benchmarks learning_job` first: this reads
`results/capacity.json` for the requests and orders, and `results/learning_job.json` for the nightly learning under
the default policy (the capacity benchmark's shops have no co-purchase neighbours, so `context` learns no pairs
there). Prices are us-east-1 on-demand list
prices, cited in docs/cost.md. The benchmark fails (non-zero exit) when the large shop's requests cost more than the
targets: $2.50 per million recommendation requests and $4 per million events requests, all in.

What each function logs and traces besides its own lines is read from template.yaml: whether Lambda writes its START,
END and REPORT records (`LoggingConfig`) and whether Lambda samples the function's invocations for X-Ray (`Tracing`).
What is assumed rather than measured is named in the results' `assumptions`: those records' size, Lambda's sampling
share, the stream's shards at ordinary traffic, and the traffic of each shop.
"""

from __future__ import annotations

import contextlib
import io
import itertools
import json
import math
import re
import tempfile
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from benchmarks.common import WarmFunction, pyplot, read_results, save_figure, write_results
from reclift_local.template import Resolver, load_template

NAME = "cost"
DESCRIPTION = (
    "Dollars at AWS list prices (us-east-1) per million recommendation and events requests, per thousand orders and "
    "per shop and month, from the capacity benchmark's units and times and the measured log bytes"
)
ROOT = Path(__file__).resolve().parents[1]

PRICE = {
    "wcu": 0.625 / 1e6,  # DynamoDB on-demand write request unit
    "rcu": 0.125 / 1e6,  # read request unit (an eventually consistent read of 4 KB is half of one)
    "lambda_request": 0.20 / 1e6,
    "lambda_gb_second": 0.0000166667,  # x86_64
    "http_api_request": 1.00 / 1e6,
    "sqs_request": 0.40 / 1e6,
    "logs_gb": 0.50,  # CloudWatch Logs ingestion
    "xray_trace": 5.00 / 1e6,
}
TARGETS = {"recommendations_per_million": 2.50, "events_per_million": 4.00}
MEMORY_GB = 0.5  # the template's MemorySize (512 MB)
TEMPLATE = ROOT / "template.yaml"
# START, END and REPORT (with its X-Ray line) of an invocation, in Lambda's text format; Lambda writes them unless the
# function logs JSON with a SystemLogLevel of WARN (they are INFO records).
LAMBDA_PLATFORM_LOG_BYTES = 450
# What Lambda's active tracing records beyond its first request a second (Lambda's fixed rate; X-Ray's sampling rules
# do not change it). A function in PassThrough records only what an upstream trace header asks for: the HTTP API sends
# none, nor do the stream and the queue.
LAMBDA_XRAY_SAMPLED = 0.05
STOREFRONT, COUNTING = "StorefrontFunction", "CountingFunction"
ORDER_FUNCTIONS = {"webhook": "WebhookFunction", "attribution": "AttributionFunction"}
STREAM_BATCH_WINDOW_S = 300  # CountingFunction's MaximumBatchingWindowInSeconds
ORDINARY_STREAM_SHARDS = 1  # a table under 1,000 writes a second has one stream shard a partition: one, mostly
# Per visitor and day: widgets shown (recommendation requests), events requests (the widget batches its events),
# and orders.
PER_VISITOR = {"recommendations": 3, "events": 2, "orders": 0.02}
SHOPS = {"small": 1_000, "large": 100_000}  # visitors a day
BLACK_FRIDAY = {"recommendations_per_s": 3_000, "events_per_s": 2_000, "orders_per_s": 100}
WARM_KEYS_READ = 2  # a warm recommendation request's keys: the shop's item and the visitor's profile
# A DynamoDB request from Lambda in the same region: a few milliseconds (the benchmarks' DynamoDB Local on a loaded
# 2-core machine takes 10-40); a handler's billed time is its measured compute plus this per round trip.
AWS_ROUND_TRIP_S = 0.008
ORDER_SECONDS = {"webhook": 0.010, "attribution": 0.080}  # assumed: the order benchmarks time the handlers apart
ORDER_LOG_BYTES = 600  # assumed: what each of an order's two functions prints (its EMF metrics and lines)


def access_log_bytes() -> int:
    """The HTTP API's access log line of a request: the template's format with typical values."""
    template = (ROOT / "template.yaml").read_text(encoding="utf-8")
    match = re.search(r"Format: >-\n((?:\s+.*\n)+?)\n", template)
    assert match, "template.yaml: no access log format"
    line = "".join(part.strip() for part in match.group(1).splitlines())
    values = {
        "requestId": "Mx1sAi4boAMEV5A=",
        "requestTime": "02/Dec/2026:16:00:00 +0000",
        "routeKey": "GET /apps/proxy/recommendations",
        "path": "/apps/proxy/recommendations",
        "status": "200",
        "protocol": "HTTP/1.1",
        "responseLength": "1834",
        "responseLatency": "42",
        "integrationStatus": "200",
        "integrationLatency": "38",
        "lambdaRequestId": "8f5c1a4e-8b5e-4a53-9c0e-2f3f7c1d9a10",
        "error": "-",
    }
    rendered = line
    for name, value in values.items():
        rendered = rendered.replace(re.search(rf'"{name}":"(\$[^"]*)"', rendered).group(1), value)  # type: ignore[union-attr]
    return len(rendered.encode()) + 1


def function_log_bytes() -> dict[str, int]:
    """What the storefront's handler prints per request (its EMF metrics and any log line), on the emulator."""
    from tests.support.aws import emulated_aws, forget_execution_environment
    from tests.support.recs import shown
    from tests.support.shopify import proxy_event, proxy_query

    sizes: dict[str, int] = {}
    with tempfile.TemporaryDirectory() as state, emulated_aws(Path(state)) as aws:
        forget_execution_environment()
        storefront = WarmFunction(aws, "StorefrontFunction")
        shop = "log-bytes.myshopify.com"
        products = ["1", "2", "3", "4"]
        for kind in ("recommendations", "events"):
            measured = []
            for n in range(5):
                printed = io.StringIO()
                with contextlib.redirect_stdout(printed):
                    if kind == "recommendations":
                        extra = {"placement": "product", "product_id": "1", "limit": "4", "visitor_id": f"v{n}"}
                        storefront(proxy_event("GET", "/apps/proxy/recommendations", proxy_query(shop, extra=extra)))
                    else:
                        event = {
                            "type": "impression",
                            "visitor_id": f"v{n}",
                            "placement": "product",
                            "products": [{"product_id": p, "position": i + 1} for i, p in enumerate(products)],
                        } | shown(shop, f"v{n}", products)
                        body = json.dumps({"events": [event]}).encode()
                        storefront(proxy_event("POST", "/apps/proxy/events", proxy_query(shop), body))
                measured.append(len(printed.getvalue().encode()))
            sizes[kind] = max(measured[1:])  # the first request of a shop also registers it
        forget_execution_environment()
    return sizes


@dataclass(frozen=True)
class Observability:
    """What Lambda itself adds to each invocation of a function: its records' bytes, and the share it traces."""

    platform_log_bytes: int
    xray_sampled: float


def function_observability(template: dict[str, Any], function_id: str) -> Observability:
    """A function's logging and tracing as the template deploys them (its parameters at their defaults)."""
    resolver = Resolver(template, region="us-east-1")
    settings = (template.get("Globals") or {}).get("Function") or {}
    settings = settings | (template["Resources"][function_id].get("Properties") or {})
    logging = resolver.resolve(settings.get("LoggingConfig") or {})
    # Log-level filtering needs the JSON format; in text, Lambda writes every record of its own.
    system_level = logging.get("SystemLogLevel", "INFO") if logging.get("LogFormat") == "JSON" else "INFO"
    tracing = resolver.resolve(settings.get("Tracing", "PassThrough"))  # no TracingConfig: Lambda's PassThrough
    return Observability(
        platform_log_bytes=0 if system_level == "WARN" else LAMBDA_PLATFORM_LOG_BYTES,
        xray_sampled=LAMBDA_XRAY_SAMPLED if tracing == "Active" else 0.0,
    )


def observability(template: dict[str, Any]) -> dict[str, Observability]:
    functions = [STOREFRONT, COUNTING, *ORDER_FUNCTIONS.values()]
    return {function_id: function_observability(template, function_id) for function_id in functions}


def billed_seconds(seconds: float) -> float:
    return math.ceil(seconds * 1000) / 1000  # Lambda bills by the millisecond


def request_cost(
    *, rcu: float, wcu: float, seconds: float, log_bytes: int, function: Observability, http: bool = True
) -> dict[str, float]:
    """Dollars of one invocation, by service."""
    return {
        "dynamodb": rcu * PRICE["rcu"] + wcu * PRICE["wcu"],
        "http_api": PRICE["http_api_request"] if http else 0.0,
        "lambda": PRICE["lambda_request"] + billed_seconds(seconds) * MEMORY_GB * PRICE["lambda_gb_second"],
        "logs": (log_bytes + function.platform_log_bytes) / 1e9 * PRICE["logs_gb"],
        "xray": function.xray_sampled * PRICE["xray_trace"],
    }


def per_million(costs: dict[str, float]) -> dict[str, float]:
    out = {service: dollars * 1e6 for service, dollars in costs.items()}
    out["total"] = sum(out.values())
    return out


def marker_wcu(row: dict[str, Any]) -> float:
    """The write units of a measured batch's visitor markers (one conditional PutItem each), per request."""
    return float(row["counting"]["wcu_by_request"].get("PutItem@CountersTable", 0.0)) / float(row["requests_per_batch"])


def counting_wcu_per_request(
    amortized: list[dict[str, Any]], requests_per_batch: float, *, requests_per_visitor_day: float = 1.0
) -> float:
    """Counting's write units per request at a batch of `requests_per_batch` of one shop's requests, interpolated
    (on log batch size) between the measured batch sizes. The benchmark's requests are each a new visitor's (one
    marker each, the worst case); a visitor who sends `requests_per_visitor_day` requests a day puts one marker."""
    share = 1.0 - 1.0 / requests_per_visitor_day
    points = sorted(
        (row["requests_per_batch"], row["counting_wcu_per_request"] - share * marker_wcu(row)) for row in amortized
    )
    size = min(max(requests_per_batch, points[0][0]), points[-1][0])
    for (low, low_wcu), (high, high_wcu) in itertools.pairwise(points):
        if low <= size <= high:
            share = (math.log(size) - math.log(low)) / (math.log(high) - math.log(low)) if high > low else 0.0
            return float(low_wcu + share * (high_wcu - low_wcu))
    return float(points[-1][1])


def learning_night(learning_job: dict[str, Any], products: int) -> dict[str, Any]:
    """The measured night of a shop of `products` products under the default policy (`learning_job`'s end-to-end
    row): its capacity units and its dollars, the function's time at its memory included."""
    from reclift.settings import ShopSettings

    policy = ShopSettings().policy
    for row in learning_job["figures"]["end_to_end"]:
        if row["products"] == products and row["policy"] == policy:
            night: dict[str, Any] = {"policy": policy, "products": products, "rcu": row["rcu"], "wcu": row["wcu"]}
            night.update(row["dollars"])
            return night
    raise SystemExit(f"results/learning_job.json has no night of {products:,} products under {policy}")


def model(
    capacity: dict[str, Any],
    learning_job: dict[str, Any],
    logs: dict[str, int],
    access: int,
    functions: dict[str, Observability],
) -> dict[str, Any]:
    figures = capacity["figures"]
    storefront, counting = functions[STOREFRONT], functions[COUNTING]
    rec = figures["recommendation_product"]
    warm = rec["warm"]
    events = figures["events_request"]
    amortized = figures["events_amortized"]
    order = figures["orders_create_3_lines"]
    event_seconds = max(
        row["median_compute_seconds"] + row["median_dynamodb_requests"] * AWS_ROUND_TRIP_S for row in events
    )
    warm_seconds = warm["median_compute_seconds"] + AWS_ROUND_TRIP_S * warm["requests"]
    event_direct = max(row["request_wcu"] for row in events)
    http_log = access
    recommendation = {
        cache: per_million(
            request_cost(
                # DynamoDB Local bills nothing for a key it does not find; AWS bills half a unit a key at least.
                rcu=max(row["rcu"], WARM_KEYS_READ * 0.5),
                wcu=row["wcu"],
                seconds=warm_seconds if cache == "warm" else warm_seconds + AWS_ROUND_TRIP_S,
                log_bytes=logs["recommendations"] + http_log,
                function=storefront,
            )
        )
        for cache, row in (("warm", warm), ("cold", rec))
    }

    def events_at(requests_per_batch: float, per_visitor: float = 1.0) -> dict[str, float]:
        wcu = event_direct + counting_wcu_per_request(
            amortized, requests_per_batch, requests_per_visitor_day=per_visitor
        )
        costs = request_cost(
            rcu=0.0, wcu=wcu, seconds=event_seconds, log_bytes=logs["events"] + http_log, function=storefront
        )
        # The counting function's own invocation, shared by the batch: its time, Lambda's records and its trace (its
        # own printed lines are not measured).
        costs["lambda"] += (PRICE["lambda_request"] + 0.05 * MEMORY_GB * PRICE["lambda_gb_second"]) / requests_per_batch
        costs["logs"] += counting.platform_log_bytes / 1e9 * PRICE["logs_gb"] / requests_per_batch
        costs["xray"] += counting.xray_sampled * PRICE["xray_trace"] / requests_per_batch
        return per_million(costs) | {"requests_per_batch": requests_per_batch, "wcu": wcu}

    def batch_for(events_per_s: float, shards: int) -> float:
        return max(1.0, min(1_000.0, events_per_s * STREAM_BATCH_WINDOW_S / shards))

    orders_1k = {
        "dynamodb": (order["rcu"] * PRICE["rcu"] + order["wcu"] * PRICE["wcu"]) * 1e3,
        "http_api": PRICE["http_api_request"] * 1e3,
        "lambda": sum(
            PRICE["lambda_request"] + billed_seconds(ORDER_SECONDS[f]) * MEMORY_GB * PRICE["lambda_gb_second"]
            for f in ORDER_FUNCTIONS
        )
        * 1e3,
        "sqs": 3 * PRICE["sqs_request"] * 1e3,  # send, receive, delete
        "logs": sum(ORDER_LOG_BYTES + functions[f].platform_log_bytes for f in ORDER_FUNCTIONS.values())
        / 1e9
        * PRICE["logs_gb"]
        * 1e3,
        "xray": sum(functions[f].xray_sampled for f in ORDER_FUNCTIONS.values()) * PRICE["xray_trace"] * 1e3,
    }
    orders_1k["total"] = sum(orders_1k.values())
    # Both shops have the capacity benchmark's catalogue; a night's cost grows with it, not with the visitors.
    night = learning_night(learning_job, capacity["config"]["products"])
    shops: dict[str, Any] = {}
    for size, visitors in SHOPS.items():
        events_per_s = visitors * PER_VISITOR["events"] / 86_400
        per_events = events_at(batch_for(events_per_s, ORDINARY_STREAM_SHARDS), PER_VISITOR["events"])
        month = 30 * visitors
        shops[size] = {
            "recommendations": month * PER_VISITOR["recommendations"] * recommendation["warm"]["total"] / 1e6,
            "events": month * PER_VISITOR["events"] * per_events["total"] / 1e6,
            "events_per_million": per_events,
            "orders": month * PER_VISITOR["orders"] * orders_1k["total"] / 1e3,
            "learning": 30 * night["run"],
        }
        shops[size]["month"] = sum(v for k, v in shops[size].items() if k != "events_per_million")
    bf_events = events_at(batch_for(BLACK_FRIDAY["events_per_s"], 4), PER_VISITOR["events"])
    day = 86_400
    black_friday = {
        "recommendations": BLACK_FRIDAY["recommendations_per_s"] * day * recommendation["warm"]["total"] / 1e6,
        "events": BLACK_FRIDAY["events_per_s"] * day * bf_events["total"] / 1e6,
        "orders": BLACK_FRIDAY["orders_per_s"] * day * orders_1k["total"] / 1e3,
        "events_per_million": bf_events,
    }
    black_friday["day"] = sum(v for k, v in black_friday.items() if k != "events_per_million")
    return {
        "recommendations_per_million": recommendation,
        "events_per_million": {
            "alone_in_batch": events_at(1),
            **{f"batch_{int(n)}": events_at(n) for n in (10, 100, 1_000)},
            **{f"batch_{int(n)}_2_requests_per_visitor": events_at(n, PER_VISITOR["events"]) for n in (10, 1_000)},
        },
        "orders_per_thousand": orders_1k,
        "learning_night": night,
        "shops_per_month": shops,
        "black_friday_day": black_friday,
        "log_bytes": logs | {"access_log": access},
        "functions": {function_id: asdict(settings) for function_id, settings in functions.items()},
        "seconds": {"recommendation_warm": warm_seconds, "events_request": event_seconds},
    }


def verdicts(figures: dict[str, Any]) -> list[str]:
    failures = []
    recs = figures["recommendations_per_million"]["warm"]["total"]
    if recs > TARGETS["recommendations_per_million"]:
        failures.append(f"recommendations: ${recs:.2f} a million, over ${TARGETS['recommendations_per_million']}")
    events = figures["shops_per_month"]["large"]["events_per_million"]["total"]
    if events > TARGETS["events_per_million"]:
        failures.append(
            f"the large shop's events requests: ${events:.2f} a million, over ${TARGETS['events_per_million']}"
        )
    return failures


def run(quick: bool) -> list[str]:
    capacity, learning_job = read_results("capacity"), read_results("learning_job")
    figures = model(
        capacity, learning_job, function_log_bytes(), access_log_bytes(), observability(load_template(TEMPLATE))
    )
    failures = verdicts(figures)
    write_results(
        NAME,
        description=DESCRIPTION,
        config={
            "prices_usd": PRICE,
            "targets_usd_per_million": TARGETS,
            "capacity_results": "results/capacity.json of " + capacity["machine"]["date"],
            "learning_results": "results/learning_job.json of " + learning_job["machine"]["date"],
            "assumptions": {
                "memory_gb": MEMORY_GB,
                "lambda_platform_log_bytes_when_written": LAMBDA_PLATFORM_LOG_BYTES,
                "lambda_xray_sampled_when_active": LAMBDA_XRAY_SAMPLED,
                "stream_batch_window_s": STREAM_BATCH_WINDOW_S,
                "ordinary_stream_shards": ORDINARY_STREAM_SHARDS,
                "per_visitor_a_day": PER_VISITOR,
                "order_handler_seconds": ORDER_SECONDS,
                "order_function_log_bytes": ORDER_LOG_BYTES,
                "black_friday": BLACK_FRIDAY,
            },
        },
        figures=figures | {"failures": failures},
    )
    plot(figures)
    events = figures["events_per_million"]
    lines = [f"{NAME}: dollars at AWS list prices (us-east-1)"]
    for cache, row in figures["recommendations_per_million"].items():
        lines.append(
            f"  a million recommendation requests, {cache}: ${row['total']:.2f} (DynamoDB ${row['dynamodb']:.2f})"
        )
    for name, row in events.items():
        lines.append(
            f"  a million events requests, {name.replace('_', ' ')}: ${row['total']:.2f} "
            f"({row['wcu']:.2f} WCU a request, DynamoDB ${row['dynamodb']:.2f})"
        )
    lines.append(f"  a thousand orders: ${figures['orders_per_thousand']['total']:.3f}")
    night = figures["learning_night"]
    lines.append(
        f"  a night's learning, {night['products']:,} products under {night['policy']}: ${night['run']:.4f} "
        f"({night['rcu']:,.0f} RCU, {night['wcu']:,.0f} WCU)"
    )
    for size, row in figures["shops_per_month"].items():
        lines.append(
            f"  {size} shop, a month: ${row['month']:.2f} (its events at ${row['events_per_million']['total']:.2f} "
            f"a million, {row['events_per_million']['requests_per_batch']:.0f} requests a counting batch)"
        )
    lines.append(f"  a Black Friday day: ${figures['black_friday_day']['day']:,.0f}")
    lines += [f"  FAILED: {failure}" for failure in failures]
    if failures:
        print("\n".join(lines))
        raise SystemExit(f"{NAME}: {len(failures)} target(s) missed")
    return lines


def plot(figures: dict[str, Any]) -> None:
    plt = pyplot()
    fig, axis = plt.subplots(figsize=(9, 4))
    rows = {
        "recommendations (warm)": figures["recommendations_per_million"]["warm"],
        "recommendations (cold)": figures["recommendations_per_million"]["cold"],
        **{f"events, {k.replace('_', ' ')}": v for k, v in figures["events_per_million"].items()},
    }
    services = ["dynamodb", "http_api", "lambda", "logs", "xray"]
    left = [0.0] * len(rows)
    for service in services:
        values = [row.get(service, 0.0) for row in rows.values()]
        axis.barh(list(rows), values, left=left, label=service)
        left = [a + b for a, b in zip(left, values, strict=True)]
    axis.axvline(TARGETS["recommendations_per_million"], color="grey", linestyle=":")
    axis.axvline(TARGETS["events_per_million"], color="black", linestyle=":")
    axis.set_xlabel("dollars per million requests (dotted: the targets, $2.50 and $4)")
    axis.legend(loc="lower right")
    save_figure(fig, NAME)
