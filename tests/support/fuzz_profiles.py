"""Hypothesis profiles of the fuzz tests, chosen by ``BOSAI_FUZZ_PROFILE`` (``CI=true`` always means ``ci``).

* ``ci`` (the default): a bounded number of examples per test, derandomized (the same cases on every run,
  so a CI failure reproduces), no example database; the whole folder stays within about two minutes on
  two cores;
* ``deep``: many more examples (``BOSAI_FUZZ_EXAMPLES``), random (a new search every run) — for a long local run;
* ``quick``: a quick look while editing: few examples, no shrinking.

Hypothesis' own deadline is off: timing on a shared two-core machine is noisy, and a slow case is not a
bug. A real hang is caught by the hard per-case deadline of :func:`tests.support.fuzz_contract.check` instead.
Importing this module registers and loads the profile (``tests/fuzz/conftest.py`` does, before any test).
"""

from __future__ import annotations

import os

from hypothesis import HealthCheck, Phase, settings
from hypothesis.configuration import set_hypothesis_home_dir

from streams.platform.settings import cache_dir

set_hypothesis_home_dir(str(cache_dir() / "hypothesis"))  # its caches live outside the work tree, like all state

_COMMON = dict(
    deadline=None,
    database=None,
    print_blob=True,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large, HealthCheck.filter_too_much],
)
settings.register_profile("ci", max_examples=300, derandomize=True, **_COMMON)
settings.register_profile(
    "deep", max_examples=int(os.environ.get("BOSAI_FUZZ_EXAMPLES", "5000")), derandomize=False, **_COMMON
)
# (a profile for a quick look while editing: few examples, no shrinking)
settings.register_profile("quick", max_examples=20, derandomize=True, phases=[Phase.generate], **_COMMON)


def fuzz_profile() -> str:
    if os.environ.get("CI", "").lower() == "true":
        return "ci"
    return os.environ.get("BOSAI_FUZZ_PROFILE", "ci")


settings.load_profile(fuzz_profile())


def examples(ci: int) -> int:
    """A test's example count: ``ci`` (× 2) in the ci profile (kept small for the slow parsers), else the profile's."""
    profile = settings.get_profile(fuzz_profile())
    return 2 * ci if fuzz_profile() == "ci" else profile.max_examples
