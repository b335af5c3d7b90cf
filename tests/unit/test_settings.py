"""Per-shop settings: validated defaults, partial updates that name the offending key, tolerant reads."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st
from pydantic import ValidationError

from reclift.settings import (
    EVENT_RETENTION_DAYS,
    MAX_WINDOW_DAYS,
    SettingsError,
    ShopSettings,
    merge_settings,
    stored_settings,
)

DEFAULTS: dict[str, Any] = {
    "click_window_days": 7,
    "view_window_days": 7,
    "attribute_test_orders": False,
    "policy": "context",
    "objective": "revenue",
    "holdout_share": 0.1,
    # the learning defaults DESIGN.md §3 documents
    "learning_window_days": 30,
    "min_impressions": 100,
    "blacklist_cvr": 0.005,
    "boost_cvr": 0.02,
    "boost_confidence": 0.7,
    "penalty_confidence": 0.3,
    "boost_multiplier": 1.3,
    "penalty_multiplier": 0.7,
    "blacklist_confidence": 0.95,
    "prior_strength_min": 50.0,
    "prior_strength_max": 1000.0,
    "half_life_days": 14.0,
    "explore_share": 0.05,
    "explore_window_days": 7,
    "change_confidence": 0.99,
    # co-purchase similarity
    "similarity_window_days": 180,
    "similarity_max_orders": 200_000,
    "similarity_min_support": 2.0,
    "bought_instead_weight": 0.25,
}


def refusal(changes: Any, current: ShopSettings | None = None) -> SettingsError:
    with pytest.raises(SettingsError) as exc_info:
        merge_settings(current or ShopSettings(), changes)
    return exc_info.value


def test_given_no_settings_when_created_then_the_defaults_are_the_seeds() -> None:
    settings = ShopSettings()
    assert settings.model_dump() == DEFAULTS
    assert settings.longest_window_days == 7


def test_given_events_retention_when_compared_then_it_outlasts_the_longest_window() -> None:
    assert EVENT_RETENTION_DAYS > MAX_WINDOW_DAYS


def test_given_a_partial_update_when_merged_then_only_those_keys_change() -> None:
    current = ShopSettings(click_window_days=3, policy="seed")

    merged = merge_settings(current, {"view_window_days": 14, "holdout_share": 0.25})

    assert merged.model_dump() == DEFAULTS | {
        "click_window_days": 3,
        "policy": "seed",
        "view_window_days": 14,
        "holdout_share": 0.25,
    }
    assert merged.longest_window_days == 14
    assert current.view_window_days == 7  # the current settings are not touched


def test_given_an_empty_update_when_merged_then_the_settings_are_unchanged() -> None:
    current = ShopSettings(objective="conversions")
    assert merge_settings(current, {}) == current


@pytest.mark.parametrize(
    "changes",
    [
        {"click_window_days": 1},
        {"click_window_days": MAX_WINDOW_DAYS},
        {"view_window_days": 1, "click_window_days": 30},
        {"holdout_share": 0.0},
        {"holdout_share": 0.5},
        {"holdout_share": 0},  # a JSON integer is a number too
        {"attribute_test_orders": True},
        {"policy": "seed", "objective": "conversions"},
    ],
)
def test_given_values_at_the_edges_of_their_ranges_when_merged_then_they_are_accepted(changes: dict[str, Any]) -> None:
    merged = merge_settings(ShopSettings(), changes)
    assert {key: getattr(merged, key) for key in changes} == changes


def test_given_an_unknown_key_when_merged_then_it_is_named() -> None:
    error = refusal({"click_window_days": 3, "attribution_window": 7})
    assert (error.field, error.message) == ("attribution_window", "unknown setting")
    assert str(error) == "attribution_window: unknown setting"


@pytest.mark.parametrize(
    ("changes", "field", "says"),
    [
        ({"holdout_share": 0.51}, "holdout_share", "less than or equal to 0.5"),
        ({"holdout_share": -0.01}, "holdout_share", "greater than or equal to 0"),
        ({"click_window_days": 0}, "click_window_days", "greater than or equal to 1"),
        ({"click_window_days": 31}, "click_window_days", "less than or equal to 30"),
        ({"view_window_days": 0}, "view_window_days", "greater than or equal to 1"),
        ({"view_window_days": 31}, "view_window_days", "less than or equal to 30"),
        ({"policy": "greedy"}, "policy", "'seed', 'bayes' or 'context'"),
        ({"objective": "clicks"}, "objective", "'revenue' or 'conversions'"),
    ],
)
def test_given_a_value_out_of_range_when_merged_then_the_key_is_named(
    changes: dict[str, Any], field: str, says: str
) -> None:
    error = refusal(changes)
    assert error.field == field
    assert says in error.message


@pytest.mark.parametrize(
    ("changes", "field"),
    [
        ({"click_window_days": True}, "click_window_days"),  # a bool is not an int here
        ({"view_window_days": False}, "view_window_days"),
        ({"click_window_days": "7"}, "click_window_days"),
        ({"click_window_days": 7.0}, "click_window_days"),
        ({"click_window_days": None}, "click_window_days"),
        ({"holdout_share": "0.2"}, "holdout_share"),
        ({"holdout_share": True}, "holdout_share"),
        ({"attribute_test_orders": "true"}, "attribute_test_orders"),
        ({"attribute_test_orders": 1}, "attribute_test_orders"),
        ({"policy": ["seed"]}, "policy"),
    ],
)
def test_given_a_value_of_the_wrong_type_when_merged_then_the_key_is_named(changes: dict[str, Any], field: str) -> None:
    assert refusal(changes).field == field


@pytest.mark.parametrize("changes", [None, [], "click_window_days=3", 7])
def test_given_an_update_that_is_not_an_object_when_merged_then_the_body_is_named(changes: Any) -> None:
    error = refusal(changes)
    assert (error.field, error.message) == ("body", "settings must be a JSON object")


def test_given_settings_when_assigned_directly_then_they_are_frozen() -> None:
    settings = ShopSettings()
    with pytest.raises(ValidationError):
        settings.click_window_days = 3


@given(click=st.integers(-5, 40), view=st.integers(-5, 40))
def test_given_any_window_days_when_merged_then_only_days_1_to_30_are_accepted(click: int, view: int) -> None:
    changes = {"click_window_days": click, "view_window_days": view}
    if 1 <= click <= MAX_WINDOW_DAYS and 1 <= view <= MAX_WINDOW_DAYS:
        merged = merge_settings(ShopSettings(), changes)
        assert merged.longest_window_days == max(click, view)
    else:
        assert refusal(changes).field == (
            "click_window_days" if not 1 <= click <= MAX_WINDOW_DAYS else "view_window_days"
        )


# --- Stored settings ----------------------------------------------------------------------------------------------


@pytest.mark.parametrize("raw", [None, {}])
def test_given_nothing_stored_when_read_then_the_defaults_apply(raw: dict[str, Any] | None) -> None:
    assert stored_settings(raw) == ShopSettings()


def test_given_stored_changes_when_read_then_they_apply_over_the_defaults() -> None:
    settings = stored_settings({"click_window_days": 3, "holdout_share": 0.2})
    assert settings.model_dump() == DEFAULTS | {"click_window_days": 3, "holdout_share": 0.2}


def test_given_keys_a_newer_version_wrote_when_read_then_they_are_dropped_and_the_rest_kept() -> None:
    settings = stored_settings({"click_window_days": 3, "exploration_rate": 0.3, "policy": "seed"})
    assert (settings.click_window_days, settings.policy) == (3, "seed")


def test_given_an_invalid_stored_value_when_read_then_it_falls_back_to_defaults_without_raising() -> None:
    assert stored_settings({"view_window_days": 99}) == ShopSettings()


def test_given_settings_written_by_the_store_when_read_back_then_they_round_trip() -> None:
    """The store keeps `model_dump(exclude_defaults=True)` as JSON and reads it back through stored_settings."""
    changed = ShopSettings(click_window_days=2, view_window_days=30, objective="conversions", holdout_share=0.0)
    assert stored_settings(changed.model_dump(exclude_defaults=True)) == changed


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"prior_strength_min": 2000.0}, "prior_strength_min"),
        ({"penalty_confidence": 0.8}, "penalty_confidence"),
        ({"explore_share": 0.6}, "explore_share"),
        ({"blacklist_confidence": 0.2}, "blacklist_confidence"),
        ({"explore_window_days": 0}, "explore_window_days"),
        ({"explore_window_days": 31}, "explore_window_days"),  # longer than the learning window (30)
        ({"learning_window_days": 7, "explore_window_days": 8}, "explore_window_days"),
        ({"change_confidence": 0.4}, "change_confidence"),
        ({"change_confidence": 1.01}, "change_confidence"),
        ({"similarity_window_days": 3}, "similarity_window_days"),
        ({"similarity_max_orders": 10}, "similarity_max_orders"),
        ({"similarity_min_support": 0}, "similarity_min_support"),
        ({"bought_instead_weight": 1.5}, "bought_instead_weight"),
    ],
)
def test_given_learning_settings_out_of_range_or_crossed_when_merged_then_the_key_is_named(
    change: dict[str, Any], field: str
) -> None:
    assert refusal(change).field == field
