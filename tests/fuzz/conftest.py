"""Fuzz and property tests of every parser of outside input (marker ``fuzz``; ``pytest -m fuzz`` runs them alone).

The Hypothesis profiles (``ci`` by default and always under ``CI=true``; ``deep`` for a long local run, e.g.
``BOSAI_FUZZ_PROFILE=deep BOSAI_FUZZ_SECONDS=60 flock /tmp/bosai-heavy.lock .venv/bin/pytest -m fuzz``) are
registered by :mod:`tests.support.fuzz_profiles`, imported here before any test. At the end of the session
the cases run per parser are printed (Hypothesis examples and atheris runs).
"""

from __future__ import annotations

import os

import pytest

from tests.support.fuzz_contract import CASES, REFUSED
from tests.support.fuzz_profiles import fuzz_profile


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
