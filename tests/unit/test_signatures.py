"""Shopify request authentication: webhook HMACs, app proxy signatures, App Bridge session tokens."""

from __future__ import annotations

import base64
import contextlib
import hashlib
import hmac
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any
from urllib.parse import quote

import pytest
from hypothesis import given
from hypothesis import strategies as st

from reclift.signatures import (
    SignatureError,
    encode_hs256_jwt,
    mint_session_token,
    sign_app_proxy,
    sign_webhook,
    signed_app_proxy_query,
    verify_app_proxy,
    verify_session_token,
    verify_webhook,
)

SECRET = "shpss_current_secret"
PREVIOUS_SECRET = "shpss_previous_secret"
API_KEY = "reclift-api-key"
SHOP = "demo-shop.myshopify.com"
NOW = 1_700_000_000
ORDERS_CREATE = Path(__file__).parent.parent / "fixtures" / "shopify" / "orders_create_sample.json"


def _b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def _jwt(header: dict[str, Any], claims: dict[str, Any], secret: str = SECRET) -> str:
    """A token built by hand, so the header can say anything."""
    signing_input = f"{_b64url(json.dumps(header).encode())}.{_b64url(json.dumps(claims).encode())}"
    signature = hmac.new(secret.encode(), signing_input.encode(), hashlib.sha256).digest()
    return f"{signing_input}.{_b64url(signature)}"


def _claims(**overrides: Any) -> dict[str, Any]:
    claims: dict[str, Any] = {
        "iss": f"https://{SHOP}/admin",
        "dest": f"https://{SHOP}",
        "aud": API_KEY,
        "sub": "42",
        "exp": NOW + 60,
        "nbf": NOW - 1,
        "iat": NOW - 1,
        "jti": "0b5a7a16-2f3c-4a5e-9d3b-0f2f1b2f3a4b",
        "sid": "session-1",
    }
    claims.update(overrides)
    return {key: value for key, value in claims.items() if value is not None}


def _verify_token(token: str, secrets: tuple[str, ...] = (SECRET,), now: float = NOW) -> Any:
    return verify_session_token(token, secrets, api_key=API_KEY, now=now)


def _reason(exc_info: pytest.ExceptionInfo[SignatureError]) -> str:
    return exc_info.value.reason


# --- Webhooks ---------------------------------------------------------------------------------------------------


def test_given_a_real_orders_create_payload_when_signed_then_the_hmac_is_base64_of_hmac_sha256_of_its_exact_bytes() -> (
    None
):
    raw_body = ORDERS_CREATE.read_bytes()
    known_answer = base64.b64encode(hmac.new(SECRET.encode(), raw_body, hashlib.sha256).digest()).decode()

    assert sign_webhook(raw_body, SECRET) == known_answer
    verify_webhook(raw_body, known_answer, [SECRET])


def test_given_a_fixed_body_and_secret_when_signed_then_the_value_is_the_known_answer() -> None:
    # Computed outside Python: printf '{"id":1}' | openssl dgst -sha256 -hmac hush -binary | base64
    assert sign_webhook(b'{"id":1}', "hush") == "VnKUjZsLuN5iZWjn5EntcBVCF9kMN43LglzCE1/GSeY="
    assert sign_webhook(b"", "hush") == "Knm8rWjeSXNIt2H0AOMT7DQ8/YSy8sQi/pEjbuUmGMs="


def test_given_a_body_with_one_byte_changed_when_verified_then_the_signature_is_bad() -> None:
    raw_body = ORDERS_CREATE.read_bytes()
    header = sign_webhook(raw_body, SECRET)
    tampered = raw_body.replace(b"450789469", b"450789460", 1)
    assert tampered != raw_body

    with pytest.raises(SignatureError) as exc_info:
        verify_webhook(tampered, header, [SECRET])
    assert _reason(exc_info) == "bad signature"


def test_given_a_body_signed_with_another_secret_when_verified_then_the_signature_is_bad() -> None:
    header = sign_webhook(b"{}", "someone-elses-secret")
    with pytest.raises(SignatureError, match="bad signature"):
        verify_webhook(b"{}", header, [SECRET, PREVIOUS_SECRET])


def test_given_a_rotation_when_a_webhook_is_signed_with_the_previous_secret_then_it_is_accepted() -> None:
    verify_webhook(b"{}", sign_webhook(b"{}", PREVIOUS_SECRET), [SECRET, PREVIOUS_SECRET])
    verify_webhook(b"{}", sign_webhook(b"{}", SECRET), [SECRET, PREVIOUS_SECRET])


def test_given_no_previous_secret_configured_when_verified_then_empty_secrets_are_ignored() -> None:
    verify_webhook(b"{}", sign_webhook(b"{}", SECRET), [SECRET, ""])
    with pytest.raises(ValueError, match="secret"):
        verify_webhook(b"{}", sign_webhook(b"{}", SECRET), [""])


@pytest.mark.parametrize(
    ("header", "reason"),
    [
        (None, "missing signature"),
        ("", "missing signature"),
        ("not base64!", "malformed signature"),
        ("abc", "malformed signature"),
        ("é" * 44, "malformed signature"),
        (" " + sign_webhook(b"{}", SECRET), "malformed signature"),
        (sign_webhook(b"{}", SECRET).rstrip("="), "malformed signature"),
        (hmac.new(SECRET.encode(), b"{}", hashlib.sha256).hexdigest(), "bad signature"),
        (base64.b64encode(b"short").decode(), "bad signature"),
    ],
)
def test_given_a_missing_or_unusable_header_when_verified_then_it_is_rejected(header: str | None, reason: str) -> None:
    with pytest.raises(SignatureError) as exc_info:
        verify_webhook(b"{}", header, [SECRET])
    assert _reason(exc_info) == reason


def test_given_each_kind_of_signed_request_signed_with_another_secret_then_only_that_is_a_mismatch() -> None:
    """What the mismatch alarms count: Shopify's own requests when the configured secret is not the one it signs
    with. A missing, malformed or stale signature is refused too, but is not a mismatch."""
    other = "shpss_another_apps_secret"
    body = b'{"id": 1}'
    mismatched: list[Callable[[], object]] = [
        lambda: verify_webhook(body, sign_webhook(body, other), [SECRET, PREVIOUS_SECRET]),
        lambda: verify_app_proxy(
            signed_app_proxy_query({"shop": SHOP, "timestamp": str(NOW)}, other), [SECRET], now=NOW, max_skew_seconds=90
        ),
        lambda: verify_session_token(
            encode_hs256_jwt(_claims(), other), [SECRET, PREVIOUS_SECRET], api_key=API_KEY, now=NOW
        ),
    ]
    not_mismatched: list[Callable[[], object]] = [
        lambda: verify_webhook(body, None, [SECRET]),
        lambda: verify_webhook(body, "not base64!", [SECRET]),
        lambda: verify_app_proxy(f"shop={SHOP}&timestamp={NOW}", [SECRET], now=NOW, max_skew_seconds=90),
        lambda: verify_app_proxy(
            signed_app_proxy_query({"shop": SHOP, "timestamp": str(NOW - 3600)}, SECRET),
            [SECRET],
            now=NOW,
            max_skew_seconds=90,
        ),
        lambda: verify_session_token(
            encode_hs256_jwt(_claims(exp=NOW - 3600), SECRET), [SECRET], api_key=API_KEY, now=NOW
        ),
    ]
    for expected, calls in ((True, mismatched), (False, not_mismatched)):
        for call in calls:
            with pytest.raises(SignatureError) as exc_info:
                call()
            assert exc_info.value.mismatched is expected, exc_info.value.reason


def test_given_a_rejected_webhook_then_the_error_never_echoes_the_secret_or_the_signature() -> None:
    header = sign_webhook(b"{}", "other")
    with pytest.raises(SignatureError) as exc_info:
        verify_webhook(b"{}", header, [SECRET])
    assert SECRET not in str(exc_info.value)
    assert header not in str(exc_info.value)


@given(body=st.binary(max_size=2048), secret=st.text(min_size=1, max_size=64))
def test_property_any_body_signed_then_verifies(body: bytes, secret: str) -> None:
    verify_webhook(body, sign_webhook(body, secret), [secret])


@given(body=st.binary(min_size=1, max_size=512), data=st.data())
def test_property_any_single_byte_change_to_the_body_fails(body: bytes, data: st.DataObject) -> None:
    header = sign_webhook(body, SECRET)
    index = data.draw(st.integers(0, len(body) - 1))
    new_byte = data.draw(st.integers(0, 255).filter(lambda b: b != body[index]))
    tampered = body[:index] + bytes([new_byte]) + body[index + 1 :]
    with pytest.raises(SignatureError):
        verify_webhook(tampered, header, [SECRET])


@given(body=st.binary(max_size=256), data=st.data())
def test_property_any_single_character_change_to_the_signature_fails(body: bytes, data: st.DataObject) -> None:
    header = sign_webhook(body, SECRET)
    index = data.draw(st.integers(0, len(header) - 1))
    replacement = data.draw(st.characters(codec="utf-8").filter(lambda c: c != header[index]))
    tampered = header[:index] + replacement + header[index + 1 :]
    with pytest.raises(SignatureError):
        verify_webhook(body, tampered, [SECRET])


@given(body=st.binary(max_size=64), header=st.one_of(st.none(), st.text(max_size=80)))
def test_property_junk_headers_raise_signature_error_and_nothing_else(body: bytes, header: str | None) -> None:
    with pytest.raises(SignatureError):
        verify_webhook(body, header, [SECRET])


# --- App proxy --------------------------------------------------------------------------------------------------

DOCUMENTED_QUERY = (
    "extra=1&extra=2&shop=shop-name.myshopify.com&path_prefix=%2Fapps%2Fawesome_reviews&timestamp=1317327555"
    "&signature=a9718877bea71c2484f91608a7eaea1532bdf71f5c56825065fa4ccabe549ef3"
)


def _proxy(query: str, *, now: float = NOW, skew: int = 90, secrets: tuple[str, ...] = (SECRET,)) -> Any:
    return verify_app_proxy(query, secrets, now=now, max_skew_seconds=skew)


def test_given_shopifys_documented_example_when_the_skew_check_is_off_then_it_verifies() -> None:
    request = _proxy(DOCUMENTED_QUERY, skew=0, secrets=("hush",))

    assert request.shop == "shop-name.myshopify.com"
    assert request.path_prefix == "/apps/awesome_reviews"
    assert request.timestamp == 1317327555
    assert request.logged_in_customer_id is None
    assert dict(request.params) == {"extra": "1,2"}


def test_given_shopifys_documented_parameters_when_signed_then_the_documented_signature_comes_out() -> None:
    params = {
        "extra": ["1", "2"],
        "shop": "shop-name.myshopify.com",
        "path_prefix": "/apps/awesome_reviews",
        "timestamp": "1317327555",
    }
    assert sign_app_proxy(params, "hush") == "a9718877bea71c2484f91608a7eaea1532bdf71f5c56825065fa4ccabe549ef3"


def test_given_shopifys_documented_example_when_the_skew_check_is_on_then_its_old_timestamp_is_stale() -> None:
    with pytest.raises(SignatureError, match="stale timestamp"):
        _proxy(DOCUMENTED_QUERY, skew=90, secrets=("hush",))


def test_given_repeated_keys_when_signed_then_their_values_are_joined_by_commas_in_order() -> None:
    query = signed_app_proxy_query({"shop": SHOP, "timestamp": str(NOW), "id": ["3", "1", "2"]}, SECRET)
    assert "id=3&id=1&id=2" in query
    assert dict(_proxy(query).params) == {"id": "3,1,2"}

    joined = sign_app_proxy({"shop": SHOP, "timestamp": str(NOW), "id": "3,1,2"}, SECRET)
    assert query.endswith(f"signature={joined}")


def test_given_the_same_parameters_in_another_order_when_verified_then_the_signature_still_holds() -> None:
    query = signed_app_proxy_query({"shop": SHOP, "timestamp": str(NOW), "product_id": "7", "limit": "4"}, SECRET)
    reordered = "&".join(reversed(query.split("&")))

    assert _proxy(reordered) == _proxy(query)


def test_given_url_encoded_values_when_verified_then_the_decoded_values_are_what_is_signed() -> None:
    values = {"shop": SHOP, "timestamp": str(NOW), "q": "a b&c=d/é+", "path_prefix": "/apps/reclift"}
    signature = sign_app_proxy(values, SECRET)
    query = "&".join(f"{key}={quote(value, safe='')}" for key, value in values.items()) + f"&signature={signature}"

    request = _proxy(query)
    assert request.params["q"] == "a b&c=d/é+"
    assert request.path_prefix == "/apps/reclift"


def test_given_a_query_signed_with_another_secret_when_verified_then_the_signature_is_bad() -> None:
    query = signed_app_proxy_query({"shop": SHOP, "timestamp": str(NOW)}, "not-our-secret")
    with pytest.raises(SignatureError, match="bad signature"):
        _proxy(query)


def test_given_a_rotation_when_the_proxy_signs_with_the_previous_secret_then_it_is_accepted() -> None:
    query = signed_app_proxy_query({"shop": SHOP, "timestamp": str(NOW)}, PREVIOUS_SECRET)
    assert _proxy(query, secrets=(SECRET, PREVIOUS_SECRET)).shop == SHOP


def test_given_a_signed_query_with_a_changed_value_when_verified_then_the_signature_is_bad() -> None:
    query = signed_app_proxy_query({"shop": SHOP, "timestamp": str(NOW), "logged_in_customer_id": "1"}, SECRET)
    with pytest.raises(SignatureError, match="bad signature"):
        _proxy(query.replace("logged_in_customer_id=1", "logged_in_customer_id=2"))


@pytest.mark.parametrize(
    ("query", "reason"),
    [
        ("", "missing signature"),
        (f"shop={SHOP}&timestamp={NOW}", "missing signature"),
        (f"shop={SHOP}&timestamp={NOW}&signature=", "missing signature"),
        (f"shop={SHOP}&timestamp={NOW}&signature=xyz", "malformed signature"),
        (f"shop={SHOP}&timestamp={NOW}&signature={'A' * 64}", "malformed signature"),
        (f"shop={SHOP}&timestamp={NOW}&signature={'a' * 64}", "bad signature"),
    ],
)
def test_given_a_missing_or_malformed_signature_when_verified_then_it_is_rejected(query: str, reason: str) -> None:
    with pytest.raises(SignatureError) as exc_info:
        _proxy(query)
    assert _reason(exc_info) == reason


@pytest.mark.parametrize(
    ("params", "reason"),
    [
        ({"timestamp": str(NOW)}, "missing or invalid shop"),
        ({"shop": "evil.example.com", "timestamp": str(NOW)}, "missing or invalid shop"),
        ({"shop": f"{SHOP}\n", "timestamp": str(NOW)}, "missing or invalid shop"),
        ({"shop": [SHOP, SHOP], "timestamp": str(NOW)}, "missing or invalid shop"),
        ({"shop": SHOP}, "missing or invalid timestamp"),
        ({"shop": SHOP, "timestamp": ""}, "missing or invalid timestamp"),
        ({"shop": SHOP, "timestamp": "soon"}, "missing or invalid timestamp"),
        ({"shop": SHOP, "timestamp": "1_700_000_000"}, "missing or invalid timestamp"),
        ({"shop": SHOP, "timestamp": str(NOW - 91)}, "stale timestamp"),
        ({"shop": SHOP, "timestamp": str(NOW + 91)}, "stale timestamp"),
    ],
)
def test_given_signed_but_unacceptable_parameters_when_verified_then_they_are_rejected(
    params: dict[str, Any], reason: str
) -> None:
    with pytest.raises(SignatureError) as exc_info:
        _proxy(signed_app_proxy_query(params, SECRET), skew=90)
    assert _reason(exc_info) == reason


def test_given_a_timestamp_at_the_edge_of_the_skew_when_verified_then_it_is_accepted() -> None:
    for timestamp in (NOW - 90, NOW + 90):
        query = signed_app_proxy_query({"shop": SHOP, "timestamp": str(timestamp)}, SECRET)
        assert _proxy(query, skew=90).timestamp == timestamp


def test_given_skew_zero_when_the_timestamp_is_years_old_then_the_check_is_off() -> None:
    query = signed_app_proxy_query({"shop": SHOP, "timestamp": "1"}, SECRET)
    assert _proxy(query, skew=0).timestamp == 1
    with pytest.raises(SignatureError, match="stale"):
        _proxy(query, skew=1)


def test_given_logged_in_customer_id_empty_or_set_when_verified_then_it_is_none_or_the_id() -> None:
    anonymous = signed_app_proxy_query({"shop": SHOP, "logged_in_customer_id": "", "timestamp": str(NOW)}, SECRET)
    signed_in = signed_app_proxy_query({"shop": SHOP, "logged_in_customer_id": "987", "timestamp": str(NOW)}, SECRET)

    assert _proxy(anonymous).logged_in_customer_id is None
    assert _proxy(signed_in).logged_in_customer_id == "987"
    assert "logged_in_customer_id" not in _proxy(signed_in).params


def test_given_a_logged_in_customer_id_appended_by_an_attacker_when_verified_then_the_signature_is_bad() -> None:
    query = signed_app_proxy_query({"shop": SHOP, "logged_in_customer_id": "", "timestamp": str(NOW)}, SECRET)
    with pytest.raises(SignatureError, match="bad signature"):
        _proxy(query + "&logged_in_customer_id=987")


_keys = st.text(alphabet=st.characters(codec="utf-8", exclude_characters="&;="), min_size=1, max_size=12).filter(
    lambda key: key not in {"signature", "shop", "timestamp"}
)
_values = st.text(alphabet=st.characters(codec="utf-8"), max_size=20)


@given(extra=st.dictionaries(_keys, st.one_of(_values, st.lists(_values, min_size=1, max_size=3)), max_size=6))
def test_property_any_signed_parameters_round_trip(extra: dict[str, str | list[str]]) -> None:
    params: dict[str, str | list[str]] = {"shop": SHOP, "timestamp": str(NOW), **extra}
    request = _proxy(signed_app_proxy_query(params, SECRET))

    assert request.shop == SHOP
    for key, value in extra.items():
        expected = value if isinstance(value, str) else ",".join(value)
        if key == "logged_in_customer_id":
            assert request.logged_in_customer_id == (expected or None)
        elif key == "path_prefix":
            assert request.path_prefix == expected
        else:
            assert request.params[key] == expected


@given(data=st.data())
def test_property_any_single_character_change_to_the_proxy_signature_fails(data: st.DataObject) -> None:
    signature = sign_app_proxy({"shop": SHOP, "timestamp": str(NOW)}, SECRET)
    index = data.draw(st.integers(0, len(signature) - 1))
    replacement = data.draw(st.sampled_from("0123456789abcdefABCDEF%&=x").filter(lambda c: c != signature[index]))
    tampered = signature[:index] + replacement + signature[index + 1 :]
    with pytest.raises(SignatureError):
        _proxy(f"shop={SHOP}&timestamp={NOW}&signature={tampered}")


@given(query=st.text(max_size=200))
def test_property_junk_queries_raise_signature_error_and_nothing_else(query: str) -> None:
    with pytest.raises(SignatureError):
        _proxy(query)


@given(params=st.dictionaries(st.sampled_from(["shop", "timestamp", "x"]), _values, max_size=3))
def test_property_signed_junk_shop_or_timestamp_raises_signature_error_and_nothing_else(params: dict[str, str]) -> None:
    with contextlib.suppress(SignatureError):
        _proxy(signed_app_proxy_query(params, SECRET), skew=0)


# --- Session tokens ---------------------------------------------------------------------------------------------


def test_given_a_valid_session_token_when_verified_then_the_shop_user_and_session_come_out() -> None:
    token = _verify_token(encode_hs256_jwt(_claims(), SECRET))

    assert token.shop == SHOP
    assert token.user_id == "42"
    assert token.session_id == "session-1"
    assert token.expires_at == NOW + 60
    assert token.claims["iss"] == f"https://{SHOP}/admin"


def test_given_a_minted_token_when_verified_then_it_round_trips() -> None:
    token = mint_session_token(SHOP, SECRET, api_key=API_KEY, now=NOW, user_id="7", session_id="s")
    verified = _verify_token(token)
    assert (verified.shop, verified.user_id, verified.session_id, verified.expires_at) == (SHOP, "7", "s", NOW + 60)


def test_given_a_token_without_sub_when_verified_then_user_id_is_none() -> None:
    assert _verify_token(mint_session_token(SHOP, SECRET, api_key=API_KEY, now=NOW, user_id=None)).user_id is None


def test_given_an_audience_list_containing_the_api_key_when_verified_then_it_is_accepted() -> None:
    assert _verify_token(encode_hs256_jwt(_claims(aud=["other", API_KEY]), SECRET)).shop == SHOP


def test_given_the_previous_secret_during_a_rotation_when_verified_then_the_token_is_accepted() -> None:
    token = encode_hs256_jwt(_claims(), PREVIOUS_SECRET)
    assert _verify_token(token, secrets=(SECRET, PREVIOUS_SECRET)).shop == SHOP


def test_given_an_expiry_within_the_leeway_when_verified_then_it_is_still_accepted() -> None:
    token = encode_hs256_jwt(_claims(exp=NOW - 4), SECRET)
    assert _verify_token(token).expires_at == NOW - 4


_BAD_TOKENS: list[tuple[str, str, str]] = [
    ("expired", encode_hs256_jwt(_claims(exp=NOW - 5), SECRET), "expired"),
    ("long expired", encode_hs256_jwt(_claims(exp=NOW - 3600), SECRET), "expired"),
    ("no exp", encode_hs256_jwt(_claims(exp=None), SECRET), "malformed exp"),
    ("exp not a number", encode_hs256_jwt(_claims(exp="tomorrow"), SECRET), "malformed exp"),
    ("exp a boolean", encode_hs256_jwt(_claims(exp=True), SECRET), "malformed exp"),
    ("nbf in the future", encode_hs256_jwt(_claims(nbf=NOW + 6), SECRET), "not yet valid"),
    ("wrong audience", encode_hs256_jwt(_claims(aud="another-app"), SECRET), "wrong audience"),
    ("audience list without us", encode_hs256_jwt(_claims(aud=["another-app"]), SECRET), "wrong audience"),
    ("no audience", encode_hs256_jwt(_claims(aud=None), SECRET), "wrong audience"),
    ("wrong secret", encode_hs256_jwt(_claims(), "not-our-secret"), "bad signature"),
    ("alg none", _jwt({"alg": "none", "typ": "JWT"}, _claims()).rsplit(".", 1)[0] + ".", "unsupported algorithm"),
    ("alg none signed", _jwt({"alg": "none", "typ": "JWT"}, _claims()), "unsupported algorithm"),
    ("alg HS512", _jwt({"alg": "HS512", "typ": "JWT"}, _claims()), "unsupported algorithm"),
    ("alg lowercase", _jwt({"alg": "hs256", "typ": "JWT"}, _claims()), "unsupported algorithm"),
    ("no alg", _jwt({"typ": "JWT"}, _claims()), "unsupported algorithm"),
    ("dest not a shop", encode_hs256_jwt(_claims(dest="https://evil.example.com"), SECRET), "bad destination"),
    ("dest over http", encode_hs256_jwt(_claims(dest=f"http://{SHOP}"), SECRET), "bad destination"),
    ("dest with a path", encode_hs256_jwt(_claims(dest=f"https://{SHOP}/admin"), SECRET), "bad destination"),
    ("dest a bare domain", encode_hs256_jwt(_claims(dest=SHOP), SECRET), "bad destination"),
    ("dest userinfo trick", encode_hs256_jwt(_claims(dest=f"https://{SHOP}@evil.com"), SECRET), "bad destination"),
    ("no dest", encode_hs256_jwt(_claims(dest=None), SECRET), "bad destination"),
    ("iss another shop", encode_hs256_jwt(_claims(iss="https://other.myshopify.com/admin"), SECRET), "wrong issuer"),
    ("iss not a url", encode_hs256_jwt(_claims(iss=12), SECRET), "wrong issuer"),
    ("two parts", "aaa.bbb", "malformed"),
    ("four parts", "a.b.c.d", "malformed"),
    ("empty", "", "malformed"),
    ("bad base64", "e30.!!!.abc", "malformed"),
    ("impossible base64 length", "e30.a.abc", "malformed"),
    ("header not json", f"{_b64url(b'nope')}.e30.abc", "malformed"),
    ("header a list", f"{_b64url(b'[]')}.e30.abc", "malformed"),
    ("too long", "a" * 9000, "malformed"),
]


@pytest.mark.parametrize(("token", "reason"), [(t, r) for _, t, r in _BAD_TOKENS], ids=[n for n, _, _ in _BAD_TOKENS])
def test_given_an_unacceptable_session_token_when_verified_then_it_is_rejected_with_a_reason(
    token: str, reason: str
) -> None:
    with pytest.raises(SignatureError) as exc_info:
        _verify_token(token)
    assert _reason(exc_info) == reason


def test_given_a_correctly_signed_payload_that_is_not_json_when_verified_then_it_is_malformed() -> None:
    header = _b64url(json.dumps({"alg": "HS256"}).encode())
    signing_input = f"{header}.{_b64url(b'{not json')}"
    signature = _b64url(hmac.new(SECRET.encode(), signing_input.encode(), hashlib.sha256).digest())
    with pytest.raises(SignatureError, match="malformed"):
        _verify_token(f"{signing_input}.{signature}")


def test_given_a_tampered_payload_when_verified_then_the_signature_is_bad() -> None:
    header, _, signature = encode_hs256_jwt(_claims(), SECRET).split(".")
    forged_payload = _b64url(json.dumps(_claims(dest="https://victim.myshopify.com")).encode())
    with pytest.raises(SignatureError, match="bad signature"):
        _verify_token(f"{header}.{forged_payload}.{signature}")


def test_given_a_rejected_token_then_the_error_never_echoes_the_token_or_the_secret() -> None:
    token = encode_hs256_jwt(_claims(), "not-our-secret")
    with pytest.raises(SignatureError) as exc_info:
        _verify_token(token)
    assert token.split(".")[2] not in str(exc_info.value)
    assert SECRET not in str(exc_info.value)


def test_given_a_shop_that_is_not_a_shop_domain_when_minting_then_it_is_refused() -> None:
    with pytest.raises(ValueError, match="shop domain"):
        mint_session_token("evil.example.com", SECRET, api_key=API_KEY, now=NOW)


@given(
    shop=st.from_regex(r"[a-z0-9][a-z0-9-]{0,20}\.myshopify\.com", fullmatch=True),
    secret=st.text(min_size=1, max_size=40),
    user_id=st.one_of(st.none(), st.text(min_size=1, max_size=20)),
)
def test_property_any_minted_token_verifies(shop: str, secret: str, user_id: str | None) -> None:
    token = mint_session_token(shop, secret, api_key=API_KEY, now=NOW, user_id=user_id)
    verified = verify_session_token(token, [secret], api_key=API_KEY, now=NOW)
    assert verified.shop == shop
    assert verified.user_id == user_id


# Minted once: a token has a fresh `jti`, and the filter below must see the same characters on every replay.
_TOKEN = mint_session_token(SHOP, SECRET, api_key=API_KEY, now=NOW, session_id="s")


@given(data=st.data())
def test_property_any_single_character_change_to_a_token_fails(data: st.DataObject) -> None:
    token = _TOKEN
    index = data.draw(st.integers(0, len(token) - 1))
    replacement = data.draw(st.characters(codec="utf-8").filter(lambda c: c != token[index]))
    tampered = token[:index] + replacement + token[index + 1 :]
    with pytest.raises(SignatureError):
        _verify_token(tampered)


@given(token=st.one_of(st.text(max_size=300), st.lists(st.text(max_size=60), max_size=4).map(".".join)))
def test_property_junk_tokens_raise_signature_error_and_nothing_else(token: str) -> None:
    with pytest.raises(SignatureError):
        _verify_token(token)


@given(
    header=st.dictionaries(st.sampled_from(["alg", "typ", "kid"]), st.sampled_from(["HS256", "none", 1, None, []])),
    claims=st.dictionaries(
        st.sampled_from(["exp", "nbf", "aud", "dest", "iss", "sub", "sid"]),
        st.one_of(
            st.none(),
            st.booleans(),
            st.integers(),
            st.floats(),
            st.text(max_size=30),
            st.sampled_from([API_KEY, f"https://{SHOP}", f"https://{SHOP}/admin", NOW + 30]),
            st.lists(st.text(max_size=5), max_size=2),
        ),
    ),
)
def test_property_correctly_signed_junk_claims_raise_signature_error_and_nothing_else(
    header: dict[str, Any], claims: dict[str, Any]
) -> None:
    with contextlib.suppress(SignatureError):
        _verify_token(_jwt(header, claims))
