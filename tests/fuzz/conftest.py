"""Fuzz and property tests of every parser of outside input (marker ``fuzz``; ``pytest -m fuzz`` runs them alone).

Hypothesis profiles, chosen by ``BOSAI_FUZZ_PROFILE`` (``CI=true`` always means ``ci``):

* ``ci`` (the default): a bounded number of examples per test, derandomized (the same cases on every run,
  so a CI failure reproduces), no example database; the whole folder stays within about two minutes on
  two cores;
* ``deep``: many more examples, random (a new search every run) — for a long local run, e.g.
  ``BOSAI_FUZZ_PROFILE=deep BOSAI_FUZZ_SECONDS=60 flock /tmp/bosai-heavy.lock .venv/bin/pytest -m fuzz``.

Hypothesis' own deadline is off: timing on a shared two-core machine is noisy, and a slow case is not a
bug. A real hang is caught by the hard per-case deadline of :func:`tests.fuzz.contract.check` instead.
At the end of the session the cases run per parser are printed (Hypothesis examples and atheris runs).
"""

from __future__ import annotations

import os

import pytest
from hypothesis import HealthCheck, Phase, settings
from hypothesis.configuration import set_hypothesis_home_dir

from streams.platform.settings import cache_dir
from tests.fuzz.contract import CASES, REFUSED

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


def pytest_collection_modifyitems(config, items):
    for item in items:
        if "/tests/fuzz/" in str(item.path).replace(os.sep, "/"):
            item.add_marker(pytest.mark.fuzz)


def pytest_terminal_summary(terminalreporter, exitstatus, config):
    if not CASES:
        return
    write = terminalreporter.write_line
    terminalreporter.section(f"fuzz cases per parser (profile {fuzz_profile()})")
    width = max(len(name) for name in CASES)
    for name in sorted(CASES):
        refused = "(libFuzzer runs)" if name.startswith("atheris.") else f"{REFUSED[name]:>9,} refused with a reason"
        write(f"{name:<{width}}  {CASES[name]:>9,} cases  {refused}")
    write(f"{'total':<{width}}  {sum(CASES.values()):>9,} cases")
