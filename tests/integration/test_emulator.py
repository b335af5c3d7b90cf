"""The embedded emulator isolates DynamoDB's writes as DynamoDB does, on moto server as on DynamoDB Local: a refused
transaction changes nothing, not even what other requests wrote while it ran. (A conditional write applied atomically,
the other half, is held by the installation's concurrent first requests in test_install.py.)"""

from __future__ import annotations

import threading
import uuid
from typing import Any

from tests.support.aws import EmulatedAws, batch_write

# moto copies a table whole when a transaction touches it: a table of some size makes that copy take long enough
# for other requests to run during it, as in a session that has stored a few shops' counters.
FILLER_ITEMS = 600


def fill(dynamodb: Any, table: str, pk: str) -> None:
    items = [{"pk": {"S": pk}, "sk": {"S": f"filler#{n:04}"}, "v": {"S": "x" * 40}} for n in range(FILLER_ITEMS)]
    batch_write(dynamodb, table, [{"PutRequest": {"Item": item}} for item in items])


def test_given_transactions_refused_on_a_table_then_the_writes_made_meanwhile_to_that_table_are_kept(
    aws: EmulatedAws,
) -> None:
    """A delivery that comes again has its order's transaction refused (the order is recorded already) while other
    deliveries and the events' counting add to the same table: none of their additions may be undone."""
    dynamodb = aws.client("dynamodb")
    table = aws.resource("CountersTable")
    pk = f"emulator#{uuid.uuid4().hex}"
    counter = {"pk": {"S": pk}, "sk": {"S": "counter"}}
    dynamodb.put_item(TableName=table, Item=counter | {"n": {"N": "0"}})  # copied first, so restored last
    fill(dynamodb, table, pk)
    recorded = {"pk": {"S": pk}, "sk": {"S": "order"}}
    dynamodb.put_item(TableName=table, Item=recorded)

    put_again = {"TableName": table, "Item": recorded, "ConditionExpression": "attribute_not_exists(pk)"}
    done = threading.Event()
    refused: list[int] = []

    def deliver_again() -> None:
        client = aws.client("dynamodb")
        count = 0
        while not done.is_set():
            try:
                client.transact_write_items(TransactItems=[{"Put": put_again}])
            except client.exceptions.TransactionCanceledException:
                count += 1
        refused.append(count)

    thread = threading.Thread(target=deliver_again)
    thread.start()
    additions = 150
    try:
        for _ in range(additions):
            dynamodb.update_item(
                TableName=table,
                Key=counter,
                UpdateExpression="ADD n :one",
                ExpressionAttributeValues={":one": {"N": "1"}},
            )
    finally:
        done.set()
        thread.join()

    assert refused[0] > 0  # the transactions really ran beside the additions, and were refused
    stored = dynamodb.get_item(TableName=table, Key=counter, ConsistentRead=True)["Item"]
    assert int(stored["n"]["N"]) == additions
