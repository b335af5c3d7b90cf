"""The theme app extension: Shopify's layout, a block whose schema Shopify accepts, and a script that talks to the
routes and app proxy reclift declares."""

from __future__ import annotations

import re
import shutil
import subprocess
import tomllib
from pathlib import Path
from typing import Any, get_args

import pytest
from liquid import Environment

from reclift.logic.recommendations import RecommendationQuery
from reclift.tracking import MAX_EVENTS_PER_REQUEST
from tests.support.storefront import (
    BLOCK,
    EXTENSION,
    SCHEMA,
    app_proxy_path,
    block_schema,
    render_block,
    translate,
    translations,
)

SCRIPT = EXTENSION.parent / "src" / "reclift.js"  # the readable source; assets/reclift.js is its minified build
# Shopify's input settings that an app block may use (the basic and specialized types of the theme editor).
SETTING_TYPES = {
    "checkbox", "number", "radio", "range", "select", "text", "textarea", "article", "blog", "collection",
    "collection_list", "color", "color_background", "color_scheme", "font_picker", "html", "image_picker",
    "inline_richtext", "link_list", "liquid", "metaobject", "page", "product", "product_list", "richtext", "url",
    "video", "video_url", "header", "paragraph",
}  # fmt: skip
MAX_RANGE_STEPS = 101


@pytest.fixture(scope="module")
def schema() -> dict[str, Any]:
    return block_schema()


def settings_by_id(schema: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {setting["id"]: setting for setting in schema["settings"] if "id" in setting}


def script_constant(name: str) -> str:
    match = re.search(rf"\bvar {name} = ([^;]+);", SCRIPT.read_text())
    assert match, f"reclift.js declares no {name}"
    return match.group(1).strip().strip('"')


def test_the_extension_has_shopify_theme_extension_layout_and_configuration() -> None:
    config = tomllib.loads((EXTENSION / "shopify.extension.toml").read_text())

    assert config["type"] == "theme"
    assert config["name"]
    assert EXTENSION.parent.name == "extensions"
    assert {p.name for p in EXTENSION.iterdir() if p.is_dir()} <= {"assets", "blocks", "snippets", "locales"}
    assert all(p.suffix == ".liquid" for p in (EXTENSION / "blocks").iterdir())
    assert (EXTENSION / "locales" / "en.default.json").is_file()


def schema_strings(node: Any) -> list[str]:
    """Every string of the schema that the theme editor shows (labels, infos, options, the name)."""
    if isinstance(node, dict):
        return [text for key, value in node.items() if key not in ("id", "type", "value", "target", "javascript",
                "stylesheet", "default") for text in schema_strings(value)]  # fmt: skip
    if isinstance(node, list):
        return [text for value in node for text in schema_strings(value)]
    return [node] if isinstance(node, str) else []


def resolved(text: str, locale: str = "en") -> str:
    """A schema string as the theme editor shows it in the locale: `t:` keys from locales/<locale>.schema.json."""
    if not text.startswith("t:"):
        return text
    value: Any = translations(locale, schema=True)
    for part in text.removeprefix("t:").split("."):
        value = value[part]
    assert isinstance(value, str), text
    assert value, text
    return value


def leaves(strings: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    flat: dict[str, Any] = {}
    for key, value in strings.items():
        flat.update(leaves(value, f"{prefix}{key}.") if isinstance(value, dict) else {f"{prefix}{key}": value})
    return flat


def test_the_block_is_an_app_block_whose_assets_exist(schema: dict[str, Any]) -> None:
    assert schema["target"] == "section"
    assert 0 < len(resolved(schema["name"])) <= 25
    for key in ("javascript", "stylesheet"):
        assert (EXTENSION / "assets" / schema[key]).is_file(), schema[key]


def test_every_setting_is_valid_for_the_theme_editor(schema: dict[str, Any]) -> None:
    ids = [setting["id"] for setting in schema["settings"] if "id" in setting]
    assert len(ids) == len(set(ids))
    for setting in schema["settings"]:
        assert setting["type"] in SETTING_TYPES, setting
        if setting["type"] in ("header", "paragraph"):
            continue
        assert setting["label"], setting
        if setting["type"] in ("select", "radio"):
            assert setting["default"] in [option["value"] for option in setting["options"]], setting
        if setting["type"] == "range":
            low, high, step, default = setting["min"], setting["max"], setting["step"], setting["default"]
            assert low < high, setting
            assert step > 0, setting
            assert (high - low) / step <= MAX_RANGE_STEPS, setting
            assert low <= default <= high, setting
            assert (default - low) % step == 0, setting


def test_the_settings_are_placement_title_and_a_number_of_products_the_route_accepts(schema: dict[str, Any]) -> None:
    settings = settings_by_id(schema)
    placement_field = RecommendationQuery.model_fields["placement"]
    limit = {type(m).__name__: m for m in RecommendationQuery.model_fields["limit"].metadata}

    assert set(settings) == {"placement", "title", "show_title", "products_count"}
    assert settings["show_title"]["type"] == "checkbox"
    assert {o["value"] for o in settings["placement"]["options"]} == set(get_args(placement_field.annotation))
    assert settings["title"]["type"] == "text"
    assert settings["products_count"]["type"] == "range"
    assert settings["products_count"]["min"] >= limit["Ge"].ge
    assert settings["products_count"]["max"] <= limit["Le"].le


def test_the_block_renders_with_its_defaults_and_every_string_it_translates_exists() -> None:
    source = BLOCK.read_text()
    Environment().parse(SCHEMA.sub("", source))  # valid Liquid
    keys = re.findall(r"'([a-z_.]+)'\s*\|\s*t\b", source)
    rendered = render_block({}, product_id=42, cart_product_ids=[7, 8])

    assert keys
    for key in keys:
        value: Any = translations()
        for part in key.split("."):
            value = value[part]
        assert isinstance(value, str)
        assert value in rendered
    assert 'data-placement="product"' in rendered
    assert 'data-limit="4"' in rendered
    assert 'data-product-id="42"' in rendered
    assert 'data-cart-product-ids="7,8"' in rendered
    assert "You may also like" in rendered
    assert 'data-cart-count="2"' in rendered
    assert rendered.count("reclift__item--placeholder") == 4
    assert "schema" not in rendered


@pytest.mark.parametrize(
    ("settings", "locale", "heading", "placeholders"),
    [
        ({"title": "Picked for you", "products_count": 7}, "en", "Picked for you", 7),
        ({"title": "  "}, "fr", "Vous aimerez aussi", 4),
        ({"show_title": False, "products_count": 1}, "de", None, 1),
    ],
)
def test_the_block_holds_a_place_per_product_asked_for_under_its_heading_in_the_storefront_s_language(
    settings: dict[str, Any], locale: str, heading: str | None, placeholders: int
) -> None:
    rendered = render_block(settings, product_id=None, cart_product_ids=[], locale=locale)

    assert re.findall(r'<h2 class="reclift__title">([^<]*)</h2>', rendered) == ([heading] if heading else [])
    assert rendered.count('<li class="reclift__item reclift__item--placeholder" aria-hidden="true">') == placeholders
    assert rendered.count(translate("recommendations.add_to_cart", locale)) == placeholders + 1  # + data-add-label


@pytest.mark.parametrize("locale", ["fr", "de"])
def test_the_theme_editor_s_strings_are_translation_keys_translated_in_every_locale(
    schema: dict[str, Any], locale: str
) -> None:
    """Shopify's convention: the schema says `t:<key>`, locales/en.default.schema.json has the English, and every
    other <locale>.schema.json the same keys, translated; the storefront's strings likewise in <locale>.json."""
    shown = schema_strings(schema)
    english, other = translations("en", schema=True), translations(locale, schema=True)

    assert shown
    assert all(text.startswith("t:") for text in shown), [t for t in shown if not t.startswith("t:")]
    assert len({resolved(text, locale) for text in shown}) == len(set(shown))
    assert leaves(other).keys() == leaves(english).keys()
    assert leaves(translations(locale)).keys() == leaves(translations("en")).keys()
    for strings, defaults in ((other, english), (translations(locale), translations("en"))):
        translated = {key: text for key, text in leaves(strings).items() if text != leaves(defaults)[key]}
        assert len(translated) >= len(leaves(defaults)) - 1, f"{locale} keeps English: {leaves(strings)}"


def test_the_script_uses_the_app_proxy_shopify_app_toml_declares_and_the_events_route_limit() -> None:
    assert script_constant("PROXY_PATH") == app_proxy_path() == "/apps/reclift"
    assert int(script_constant("MAX_EVENTS_PER_REQUEST")) == MAX_EVENTS_PER_REQUEST
    assert 'PROXY_PATH + "/recommendations?"' in SCRIPT.read_text()
    assert 'PROXY_PATH + "/events"' in SCRIPT.read_text()


@pytest.mark.parametrize("script", [SCRIPT, EXTENSION / "assets" / "reclift.js"], ids=["source", "asset"])
def test_the_script_is_valid_javascript(script: Path) -> None:
    node = shutil.which("node")
    assert node, "Node.js is required (it also runs DynamoDB Local)"
    checked = subprocess.run([node, "--check", str(script)], capture_output=True, text=True, check=False)
    assert checked.returncode == 0, checked.stderr
