"""`make app-config` reading a stack's outputs with boto3 from (moto's) CloudFormation.

moto cannot deploy the SAM template; a small plain template with the same outputs is what DescribeStacks needs.
"""

from __future__ import annotations

import argparse
import json
import shutil
import tomllib
from collections.abc import Iterator
from pathlib import Path

import boto3
import pytest
from moto import mock_aws

from reclift_local import app_config

ROOT = Path(__file__).resolve().parents[2]
REGION = "eu-west-1"
API = "https://abc123defg.execute-api.eu-west-1.amazonaws.com"
TEMPLATE = {
    "AWSTemplateFormatVersion": "2010-09-09",
    "Resources": {"Alerts": {"Type": "AWS::SNS::Topic"}},
    "Outputs": {
        "ApiUrl": {"Value": API},
        "WebhookUrl": {"Value": f"{API}/webhooks"},
        "AppProxyUrl": {"Value": f"{API}/apps/proxy"},
        "WebhookQueueUrl": {"Value": "https://sqs.eu-west-1.amazonaws.com/123456789012/q"},
    },
}


@pytest.fixture
def cloudformation(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    for name in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"):
        monkeypatch.setenv(name, "testing")
    for name in ("AWS_PROFILE", "AWS_ENDPOINT_URL", "AWS_ENDPOINT_URL_CLOUDFORMATION"):
        monkeypatch.delenv(name, raising=False)
    with mock_aws():
        yield


def arguments(path: Path, stack: str) -> argparse.Namespace:
    return argparse.Namespace(stack=stack, region=REGION, file=path)


def test_app_config_writes_a_deployed_stacks_outputs(
    cloudformation: None, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Given a stack with reclift's outputs in the region, when app-config runs with SHOPIFY_API_KEY set, then the
    copy of shopify.app.toml holds the stack's URLs and the client id, and each change is printed."""
    boto3.client("cloudformation", region_name=REGION).create_stack(
        StackName="reclift-test", TemplateBody=json.dumps(TEMPLATE)
    )
    path = tmp_path / "shopify.app.toml"
    shutil.copyfile(ROOT / "shopify.app.toml", path)

    code = app_config.command(arguments(path, "reclift-test"), {"SHOPIFY_API_KEY": "client-id-from-env"})

    assert code == 0
    config = tomllib.loads(path.read_text())
    assert config["application_url"] == API
    assert config["app_proxy"]["url"] == f"{API}/apps/proxy"
    assert config["client_id"] == "client-id-from-env"
    printed = capsys.readouterr().out
    assert f"application_url: https://API_ID.execute-api.REGION.amazonaws.com → {API}" in printed


def test_an_unknown_stack_is_an_error_and_the_file_is_left_alone(
    cloudformation: None, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "shopify.app.toml"
    shutil.copyfile(ROOT / "shopify.app.toml", path)
    before = path.read_bytes()

    code = app_config.command(arguments(path, "no-such-stack"), {})

    assert code == 1
    assert "cannot read stack 'no-such-stack'" in capsys.readouterr().err
    assert path.read_bytes() == before


def test_a_stack_without_reclifts_outputs_is_named_as_such(
    cloudformation: None, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    template = {**TEMPLATE, "Outputs": {"ApiUrl": {"Value": API}}}
    boto3.client("cloudformation", region_name=REGION).create_stack(StackName="half", TemplateBody=json.dumps(template))
    path = tmp_path / "shopify.app.toml"
    shutil.copyfile(ROOT / "shopify.app.toml", path)

    code = app_config.command(arguments(path, "half"), {})

    assert code == 1
    assert "lacks output(s) AppProxyUrl, WebhookUrl" in capsys.readouterr().err
