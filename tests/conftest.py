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

# No test may reach Shopify. A shop that is not installed yet exchanges its first session token at its Admin API;
# unless a test points that at the fake Admin API, it goes to the discard port, where the connection is refused at
# once (and the exchange is recorded as failed, to be tried again, as it would be if Shopify were down).
os.environ.setdefault("RECLIFT_ADMIN_API_URL", "http://127.0.0.1:9/")
