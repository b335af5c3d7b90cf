"""`make run DB=dynamodb-local` keeps its tables in a data directory across restarts (`--db-data`, `.local/dynamodb/`
from the Makefile); without one, DynamoDB Local is in memory, as the tests' stacks are."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pytest

from reclift_local.output import Output
from reclift_local.stack import LocalStack, StackError, StackOptions
from reclift_local.template import load_template

ROOT = Path(__file__).resolve().parents[2]
ITEM = {"pk": {"S": "reclift-demo.myshopify.com"}, "sk": {"S": "632910392"}, "title": {"S": "IPod Nano - 8GB"}}


def provisioned(state_dir: Path, data_dir: Path | None, template: Path = ROOT / "template.yaml") -> LocalStack:
    """The template's tables and queues, as `make run DB=dynamodb-local` creates them (no workers)."""
    options = StackOptions(
        database="dynamodb-local",
        dynamodb_data_dir=data_dir,
        template=template,
        state_file=state_dir / "stack.json",
        environ=dict(os.environ),
        report=False,
    )
    stack = LocalStack(options, output=Output())
    try:
        stack.provision()
    except BaseException:
        stack.stop()
        raise
    return stack


def catalog_table(stack: LocalStack) -> str:
    assert stack.provisioner is not None
    return stack.provisioner.tables["CatalogTable"]


def read_back(stack: LocalStack) -> dict[str, Any] | None:
    assert stack.clients is not None
    item = stack.clients.dynamodb.get_item(TableName=catalog_table(stack), Key={k: ITEM[k] for k in ("pk", "sk")})
    found: dict[str, Any] | None = item.get("Item")
    return found


def test_given_a_data_directory_when_the_stack_restarts_then_what_was_written_is_still_there(tmp_path: Path) -> None:
    data = tmp_path / "dynamodb"
    first = provisioned(tmp_path, data)
    try:
        assert first.clients is not None
        first.clients.dynamodb.put_item(TableName=catalog_table(first), Item=ITEM)
    finally:
        first.stop()

    second = provisioned(tmp_path, data)
    try:
        assert read_back(second) == ITEM
    finally:
        second.stop()
    assert any(data.iterdir()), "DynamoDB Local wrote nothing into the data directory"


def test_given_no_data_directory_when_the_stack_restarts_then_it_starts_empty(tmp_path: Path) -> None:
    first = provisioned(tmp_path, None)
    try:
        assert first.clients is not None
        first.clients.dynamodb.put_item(TableName=catalog_table(first), Item=ITEM)
    finally:
        first.stop()

    second = provisioned(tmp_path, None)
    try:
        assert read_back(second) is None
    finally:
        second.stop()


def test_given_kept_tables_when_the_template_changed_an_index_then_the_start_fails_naming_the_way_out(
    tmp_path: Path,
) -> None:
    data = tmp_path / "dynamodb"
    provisioned(tmp_path, data).stop()
    template = (ROOT / "template.yaml").read_text()
    changed = load_template(ROOT / "template.yaml")
    indexes = [
        index
        for resource in changed["Resources"].values()
        for index in (resource.get("Properties") or {}).get("GlobalSecondaryIndexes") or []
    ]
    assert indexes, "the template has no index to rename"
    renamed = indexes[0]["IndexName"]
    edited = tmp_path / "template.yaml"
    edited.write_text(template.replace(f"IndexName: {renamed}", f"IndexName: {renamed}-v2", 1))
    for part in ("functions", "layers"):
        (tmp_path / part).symlink_to(ROOT / part)

    with pytest.raises(StackError, match="make clean-data"):
        provisioned(tmp_path, data, template=edited)
