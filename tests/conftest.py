"""Settings for the whole suite."""

from __future__ import annotations

from hypothesis import HealthCheck, settings

# The machines are small and shared: a slow example is not a failure. Behaviour is asserted, never time.
settings.register_profile("reclift", deadline=None, suppress_health_check=[HealthCheck.too_slow])
settings.load_profile("reclift")
