"""Coverage-guided fuzzing with atheris (libFuzzer), bounded: each target runs in a subprocess from the committed
seed corpus (tests/fuzz/corpus/<target>/, and JMA's samples for the report target) with a fixed seed and a fixed
number of runs (``ci``), or for ``BOSAI_FUZZ_SECONDS`` each (``deep``); a per-input timeout and an RSS limit turn
a hang or runaway memory into a failure like a crash. New inputs libFuzzer finds go to a temporary folder, never
into the repo; a crash's input is saved there too and its path is in the failure message."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.support.fuzz_contract import CASES
from tests.support.fuzz_profiles import fuzz_profile

ROOT = Path(__file__).resolve().parents[2]
CORPUS = Path(__file__).resolve().parent / "corpus"
# runs per target in the ci profile: 3-20 s each on this machine (files written by the CSV target are the slow part)
CI_RUNS = {"avro": 40_000, "jma_report": 12_000, "jma_feed": 40_000, "json_doors": 120_000, "csv": 15_000}
EXTRA_SEEDS = {"jma_report": [ROOT / "data" / "jma"]}
MAX_LEN = {"jma_report": 32_768, "jma_feed": 8192, "avro": 1024, "json_doors": 4096, "csv": 4096}

try:
    import atheris  # noqa: F401

    HAVE_ATHERIS = True
except ImportError:  # (wheels for Linux x86_64 only)
    HAVE_ATHERIS = False


@pytest.mark.skipif(not HAVE_ATHERIS and os.environ.get("CI") != "true", reason="atheris is not installed here")
@pytest.mark.parametrize("target", sorted(CI_RUNS))
def test_coverage_guided_fuzzing_finds_no_crash_hang_or_runaway_memory(target, tmp_path):
    corpus = tmp_path / "corpus"
    corpus.mkdir()
    seeds = [CORPUS / target, *EXTRA_SEEDS.get(target, [])]
    assert all(s.is_dir() and any(s.iterdir()) for s in seeds), f"no seed corpus for {target}"
    seconds = os.environ.get("BOSAI_FUZZ_SECONDS")
    budget = [f"-max_total_time={int(seconds)}"] if fuzz_profile() == "deep" and seconds else []
    budget = budget or [f"-runs={CI_RUNS[target]}"]
    command = [
        sys.executable,
        "-m",
        "tests.support.atheris_targets",
        target,
        *budget,
        "-seed=18",
        f"-max_len={MAX_LEN[target]}",
        "-timeout=10",  # s per input: a hang is a failure
        "-rss_limit_mb=2048",  # so is memory that runs away
        "-print_final_stats=1",
        f"-artifact_prefix={tmp_path}/",
        str(corpus),
        *map(str, seeds),
    ]

    done = subprocess.run(
        command, cwd=ROOT, capture_output=True, text=True, env={**os.environ, "PYTHONHASHSEED": "0"}, timeout=3600
    )

    runs = re.search(r"stat::number_of_executed_units:\s*(\d+)", done.stderr)
    CASES[f"atheris.{target}"] += int(runs.group(1)) if runs else 0
    crashes = [p for p in tmp_path.iterdir() if p.name.startswith(("crash-", "timeout-", "oom-", "leak-"))]
    saved = [str(shutil.copy(p, tmp_path / f"{target}-{p.name}")) for p in crashes]
    lines = done.stderr.splitlines()
    first = next((i for i, line in enumerate(lines) if "Uncaught Python exception" in line or "Traceback" in line), 0)
    assert done.returncode == 0 and not crashes, (
        f"atheris {target}: exit {done.returncode}, inputs {saved}\n"
        + "\n".join(lines[first : first + 40] + ["…"] + lines[-12:])
    )
    assert runs is not None, done.stderr[-2000:]
