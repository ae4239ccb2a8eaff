"""Shared test setup: hypothesis profiles.

- ``ci`` (default): bounded example counts, no deadline (numba compiles on first use), and
  reproducible examples: ``derandomize=True`` seeds each test from its own name, and the
  constants hypothesis would otherwise harvest from every local module imported so far are
  left out, so a test draws the same examples whatever ran before it, in any order, under
  ``-k`` selections and plugins.
- ``dev``: more examples, random seeds, for local runs that hunt for new cases.
- ``nightly``: thousands of examples; select with HYPOTHESIS_PROFILE=nightly.
"""

import os
from collections.abc import Iterator

import pytest
from hypothesis import HealthCheck, settings

_common = dict(deadline=None, suppress_health_check=[HealthCheck.too_slow,
                                                       HealthCheck.data_too_large])
settings.register_profile("ci", max_examples=25, derandomize=True, **_common)
settings.register_profile("dev", max_examples=100, **_common)
settings.register_profile("nightly", max_examples=3000, **_common)
PROFILE = os.environ.get("HYPOTHESIS_PROFILE", "ci")
settings.load_profile(PROFILE)


def _no_local_constants() -> None:
    """Hypothesis (>= 6.131) mixes into its draws the literals of every local module that has
    been imported by the time a test runs (tinynet's, and the test files'), so with
    ``derandomize=True`` a test's examples still depend on test order and on which modules
    were imported. There is no setting for it; this empties the harvested set. Hypothesis's
    own boundary constants (0, -0.0, inf, nan, 2**53 ...) are still drawn."""
    try:
        from hypothesis.internal.conjecture import providers
    except ImportError:  # pragma: no cover - an older hypothesis harvests nothing
        return
    if hasattr(providers, "_get_local_constants") and hasattr(providers, "Constants"):
        empty = providers.Constants()
        providers._get_local_constants = lambda: empty


if PROFILE == "ci":
    _no_local_constants()

# tn.compile compiles in the background by default (the calls replay step by step meanwhile):
# the tests run the generated code deterministically, the first replay compiling it, and leave
# no compile work running into the next test. tests/test_compile_background.py switches the
# background on per test (and TINYNET_COMPILE_BACKGROUND=1 runs every test that way).
os.environ.setdefault("TINYNET_COMPILE_BACKGROUND", "0")


@pytest.fixture(scope="module")
def compile_cache_dir(tmp_path_factory: pytest.TempPathFactory) -> Iterator[None]:
    """Points tn.compile's disk cache at a fresh directory for one test file (select it with
    ``pytestmark = pytest.mark.usefixtures("compile_cache_dir")``), so a test never replays
    code another file or an earlier run left in the user's cache."""
    mp = pytest.MonkeyPatch()
    mp.setenv("TINYNET_CACHE_DIR", str(tmp_path_factory.mktemp("tn-compile-cache")))
    yield
    mp.undo()
