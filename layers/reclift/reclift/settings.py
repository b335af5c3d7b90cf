"""Per-shop settings: every window, threshold and share a merchant may tune, with validated defaults."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

# Events are kept a little longer than the longest window a shop may choose, so attribution never misses one.
MAX_WINDOW_DAYS = 30
EVENT_RETENTION_DAYS = MAX_WINDOW_DAYS + 5


class ShopSettings(BaseModel):
    """A shop's settings. Unknown keys and out-of-range values are rejected, naming the key."""

    model_config = ConfigDict(extra="forbid", frozen=True, validate_assignment=True)

    click_window_days: int = Field(default=7, ge=1, le=MAX_WINDOW_DAYS)
    view_window_days: int = Field(default=7, ge=1, le=MAX_WINDOW_DAYS)
    attribute_test_orders: bool = False
    # the default since the store simulation showed it ahead in every world (docs/learning.md)
    policy: Literal["seed", "bayes", "context"] = "context"
    objective: Literal["revenue", "conversions"] = "revenue"
    holdout_share: float = Field(default=0.1, ge=0.0, le=0.5)
    # learning (DESIGN.md §3)
    learning_window_days: int = Field(default=30, ge=7, le=90)
    min_impressions: int = Field(default=100, ge=1, le=1_000_000)  # bayes: of exposure (reclift.tracking.exposure)
    blacklist_cvr: float = Field(default=0.005, ge=0.0, le=0.5)
    boost_cvr: float = Field(default=0.02, ge=0.0, le=1.0)
    # seed policy at serving time: × boost_multiplier above boost_confidence, × penalty_multiplier below
    boost_confidence: float = Field(default=0.7, ge=0.0, le=1.0)
    penalty_confidence: float = Field(default=0.3, ge=0.0, le=1.0)
    boost_multiplier: float = Field(default=1.3, ge=1.0, le=10.0)
    penalty_multiplier: float = Field(default=0.7, ge=0.0, le=1.0)
    # bayes policy
    blacklist_confidence: float = Field(default=0.95, ge=0.5, le=0.9999)
    prior_strength_min: float = Field(default=50.0, ge=1.0, le=1_000_000.0)
    prior_strength_max: float = Field(default=1000.0, ge=1.0, le=1_000_000.0)
    half_life_days: float = Field(default=14.0, ge=1.0, le=365.0)
    explore_share: float = Field(default=0.05, ge=0.0, le=0.5)
    # non-stationarity: exploration draws from the last explore_window_days only (a product not shown lately is
    # retried), and a product whose recent CVR contradicts its older CVR with change_confidence (either way) is
    # judged on the recent days alone; change_confidence 1 turns that off
    explore_window_days: int = Field(default=7, ge=1, le=90)
    change_confidence: float = Field(default=0.99, ge=0.5, le=1.0)
    # co-purchase similarity (reclift.similarity): the orders of the last similarity_window_days, the newest
    # similarity_max_orders of them at most; a pair needs similarity_min_support shared baskets; a "bought instead"
    # pair weighs bought_instead_weight of a shared basket (0 ignores them). Co-view similarity reads as many visitor
    # profiles at most, their day sessions in the same window, with the same minimum support
    similarity_window_days: int = Field(default=180, ge=7, le=730)
    similarity_max_orders: int = Field(default=200_000, ge=100, le=2_000_000)
    similarity_min_support: float = Field(default=2.0, ge=0.25, le=1000.0)
    bought_instead_weight: float = Field(default=0.25, ge=0.0, le=1.0)

    @model_validator(mode="after")
    def _ordered_bounds(self) -> ShopSettings:
        if self.prior_strength_min > self.prior_strength_max:
            raise ValueError("prior_strength_min: must not exceed prior_strength_max")
        if self.penalty_confidence > self.boost_confidence:
            raise ValueError("penalty_confidence: must not exceed boost_confidence")
        if self.explore_window_days > self.learning_window_days:
            raise ValueError("explore_window_days: must not exceed learning_window_days")
        return self

    @property
    def longest_window_days(self) -> int:
        return max(self.click_window_days, self.view_window_days)


class SettingsError(ValueError):
    """A settings change that names an unknown key or a value out of range."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(f"{field}: {message}")
        self.field = field
        self.message = message


def merge_settings(current: ShopSettings, changes: dict[str, Any]) -> ShopSettings:
    """`current` with a partial `changes` applied; SettingsError names the first offending key."""
    if not isinstance(changes, dict):
        raise SettingsError("body", "settings must be a JSON object")
    merged = current.model_dump() | changes
    try:
        return ShopSettings.model_validate(merged, strict=True)
    except ValidationError as exc:
        first = exc.errors()[0]
        field = ".".join(str(part) for part in first["loc"])
        message = "unknown setting" if first["type"] == "extra_forbidden" else first["msg"]
        if not first["loc"]:  # a rule across settings names its key first: "key: what is wrong"
            field, _, message = str(first["msg"]).removeprefix("Value error, ").partition(": ")
        raise SettingsError(field, message) from exc


def stored_settings(raw: dict[str, Any] | None) -> ShopSettings:
    """Settings as stored, tolerating keys a newer or older version wrote (they are dropped, not fatal)."""
    if not raw:
        return ShopSettings()
    # Each stored value is checked on its own: one that no longer validates falls back to its default alone.
    settings = ShopSettings()
    for key, value in raw.items():
        if key in ShopSettings.model_fields:
            try:
                settings = ShopSettings.model_validate(settings.model_dump() | {key: value})
            except ValidationError:
                continue
    return settings
