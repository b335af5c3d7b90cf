"""The app secret: read from SSM Parameter Store (SecureString, decrypted) through Powertools Parameters, and cached
by the execution environment, so a warm function does not call SSM per request."""

from __future__ import annotations

from collections import Counter

from tests.support.aws import EmulatedAws, forget_execution_environment
from tests.support.calls import ApiCallCounter
from tests.support.shopify import new_shop, webhook_event


def test_given_a_cold_then_warm_function_when_ten_webhooks_arrive_then_ssm_is_asked_once(
    aws: EmulatedAws,
) -> None:
    forget_execution_environment()  # a cold execution environment: nothing cached yet
    counter = ApiCallCounter()
    shop = new_shop()

    with counter.counting() as block:
        statuses = [aws.invoke("WebhookFunction", webhook_event(shop, b'{"id": 1}'))["statusCode"] for _ in range(10)]

    assert statuses == [200] * 10  # each signature verified with the secret read from SSM
    ssm_calls = Counter({call.operation: count for call, count in block.calls.items() if call.service == "ssm"})
    # The current secret, once (the local stack sets no previous one: its parameter name stays unset).
    assert ssm_calls == Counter({"GetParameter": 1})
    aws.empty_queues("WebhookQueue")
