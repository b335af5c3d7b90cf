"""The one Logger and Metrics every function shares (service name from POWERTOOLS_SERVICE_NAME).

No Powertools Tracer: its X-Ray SDK costs about 100 ms of import on every cold start, whether tracing is on or
not. The template's `Tracing: Active` still traces each invocation; what is lost are the per-request
subsegments, which CloudWatch metrics and the structured logs cover here.
"""

from __future__ import annotations

from aws_lambda_powertools import Logger, Metrics

logger = Logger()
metrics = Metrics()
