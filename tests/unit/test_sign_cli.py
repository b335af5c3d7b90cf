"""The developer signing CLI produces what the verifiers accept."""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

import pytest

from reclift.signatures import verify_app_proxy, verify_session_token, verify_webhook
from reclift_local.sign import DEV_API_KEY, DEV_API_SECRET, main

ORDERS_CREATE = Path(__file__).parent.parent / "fixtures" / "shopify" / "orders_create_sample.json"


@pytest.fixture(autouse=True)
def _no_secrets_in_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("SHOPIFY_API_SECRET", raising=False)
    monkeypatch.delenv("SHOPIFY_API_KEY", raising=False)


def _run(argv: list[str], capsys: pytest.CaptureFixture[str]) -> str:
    assert main(argv) == 0
    return capsys.readouterr().out.strip()


def test_given_a_payload_file_when_signed_then_the_output_verifies_against_its_exact_bytes(
    capsys: pytest.CaptureFixture[str],
) -> None:
    header = _run(["webhook", str(ORDERS_CREATE), "--secret", "s3cret"], capsys)

    verify_webhook(ORDERS_CREATE.read_bytes(), header, ["s3cret"])


def test_given_no_secret_anywhere_when_signing_then_the_dev_secret_is_used(capsys: pytest.CaptureFixture[str]) -> None:
    header = _run(["webhook", str(ORDERS_CREATE)], capsys)

    verify_webhook(ORDERS_CREATE.read_bytes(), header, [DEV_API_SECRET])


def test_given_the_secret_in_the_environment_when_signing_then_it_is_used(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SHOPIFY_API_SECRET", "from-env")
    header = _run(["webhook", str(ORDERS_CREATE)], capsys)

    verify_webhook(ORDERS_CREATE.read_bytes(), header, ["from-env"])


def test_given_a_query_without_timestamp_when_signed_then_a_fresh_timestamp_is_added_and_it_verifies(
    capsys: pytest.CaptureFixture[str],
) -> None:
    query = _run(["proxy", "shop=demo.myshopify.com&logged_in_customer_id=77&product_id=1"], capsys)

    request = verify_app_proxy(query, [DEV_API_SECRET], now=time.time(), max_skew_seconds=90)
    assert request.shop == "demo.myshopify.com"
    assert request.logged_in_customer_id == "77"
    assert dict(request.params) == {"product_id": "1"}


def test_given_a_query_with_a_timestamp_and_an_old_signature_when_signed_then_both_are_kept_and_replaced(
    capsys: pytest.CaptureFixture[str],
) -> None:
    query = _run(["proxy", "?shop=demo.myshopify.com&timestamp=1317327555&signature=abc", "--secret", "k"], capsys)

    assert query.count("signature=") == 1
    assert verify_app_proxy(query, ["k"], now=0, max_skew_seconds=0).timestamp == 1317327555


def test_given_a_shop_when_a_session_token_is_minted_then_it_verifies_with_the_dev_key_and_secret(
    capsys: pytest.CaptureFixture[str],
) -> None:
    token = _run(["session-token", "--shop", "demo.myshopify.com"], capsys)

    verified = verify_session_token(token, [DEV_API_SECRET], api_key=DEV_API_KEY, now=time.time())
    assert verified.shop == "demo.myshopify.com"


def test_given_an_api_key_in_the_environment_when_a_token_is_minted_then_it_is_the_audience(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SHOPIFY_API_KEY", "env-key")
    token = _run(["session-token", "--shop", "demo.myshopify.com", "--secret", "k"], capsys)

    assert verify_session_token(token, ["k"], api_key="env-key", now=time.time()).shop == "demo.myshopify.com"


def test_given_a_domain_that_is_not_a_shop_when_minting_then_it_fails_with_a_message(
    capsys: pytest.CaptureFixture[str],
) -> None:
    assert main(["session-token", "--shop", "evil.example.com"]) == 1
    assert "not a shop domain" in capsys.readouterr().err


def test_given_a_missing_file_when_signing_then_it_fails_with_a_message(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    assert main(["webhook", str(tmp_path / "absent.json")]) == 1
    assert "error:" in capsys.readouterr().err


def test_given_the_module_run_with_python_m_when_signing_then_it_prints_the_header() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "reclift_local.sign", "webhook", str(ORDERS_CREATE), "--secret", "s3cret"],
        capture_output=True,
        text=True,
        check=True,
    )

    verify_webhook(ORDERS_CREATE.read_bytes(), result.stdout.strip(), ["s3cret"])
