"""Per-shop settings: every window, threshold and share a merchant may tune, with validated defaults."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError

# Events are kept a little longer than the longest window a shop may choose, so attribution never misses one.
MAX_WINDOW_DAYS = 30
EVENT_RETENTION_DAYS = MAX_WINDOW_DAYS + 5


class ShopSettings(BaseModel):
    """A shop's settings. Unknown keys and out-of-range values are rejected, naming the key."""

    model_config = ConfigDict(extra="forbid", frozen=True, validate_assignment=True)

    click_window_days: int = Field(default=7, ge=1, le=MAX_WINDOW_DAYS)
    view_window_days: int = Field(default=7, ge=1, le=MAX_WINDOW_DAYS)
    attribute_test_orders: bool = False
    policy: Literal["seed", "bayes"] = "bayes"
    objective: Literal["revenue", "conversions"] = "revenue"
    holdout_share: float = Field(default=0.1, ge=0.0, le=0.5)

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
        field = ".".join(str(part) for part in first["loc"]) or "body"
        message = "unknown setting" if first["type"] == "extra_forbidden" else first["msg"]
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
