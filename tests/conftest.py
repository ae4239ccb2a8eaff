"""Shared test setup: hypothesis profiles.

- ``ci`` (default): bounded example counts, no deadline (numba compiles on first use).
- ``dev``: more examples for local runs.
- ``nightly``: thousands of examples; select with HYPOTHESIS_PROFILE=nightly.
"""

import os

from hypothesis import HealthCheck, settings

_common = dict(deadline=None, suppress_health_check=[HealthCheck.too_slow,
                                                       HealthCheck.data_too_large])
settings.register_profile("ci", max_examples=25, derandomize=True, **_common)
settings.register_profile("dev", max_examples=100, **_common)
settings.register_profile("nightly", max_examples=3000, **_common)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "ci"))
