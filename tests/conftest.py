"""Settings for the whole suite."""

from __future__ import annotations

import os

from hypothesis import HealthCheck, settings

# The machines are small and shared: a slow example is not a failure. Behaviour is asserted, never time.
# The generated inputs are the same on every run (derandomized), so a red build points at a change, not at a newly
# drawn input; `make fuzz` (RECLIFT_HYPOTHESIS_EXPLORE=1) draws new inputs on every run, to find what they miss.
settings.register_profile(
    "reclift",
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
    derandomize=os.environ.get("RECLIFT_HYPOTHESIS_EXPLORE", "") != "1",
)
settings.load_profile("reclift")
