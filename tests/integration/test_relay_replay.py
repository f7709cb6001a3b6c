"""JMA's warnings and an earthquake through the real broker and workers, with ``bosai replay --jma``: Kanagawa's
気象警報・注意報 (VPWW53, the same report in H27 format, then a later report lifting every kind) and the
2010-07-05 earthquake (VXSE52, then VXSE53 with Kanagawa's intensities). Kept short (CI budget): one replay."""

from __future__ import annotations

import gzip
import json
import os
import subprocess
import sys
from collections import Counter

from tests.support.all_hazards import ALL_HAZARDS

WARNINGS = "15_12_03_161130_VPWW53", "15_12_03_161130_VPWW54"
EARTHQUAKE = "32-35_08_06_240613_VXSE52", "32-35_08_07_240613_VXSE53"


def test_a_warning_sequence_and_an_earthquake_replay_as_relayed_alerts(kafka_bootstrap, project_root, tmp_path, unique):
    reports = tmp_path / "jma"
    reports.mkdir()
    for name in (*WARNINGS, *EARTHQUAKE):
        (reports / f"{name}.xml").write_bytes(gzip.decompress((ALL_HAZARDS / f"{name}.xml.gz").read_bytes()))
    # EDIT (marked): both formats an hour later with every kind 解除 (lifted): the warnings end. Lifting one
    # format alone ends nothing: the other still carries the same warnings (de-duplication).
    for name in WARNINGS:
        text = (reports / f"{name}.xml").read_text(encoding="utf-8")
        start = text.split("<ReportDateTime>")[1].split("<")[0]
        lifted = start.replace("T16:", "T17:")
        assert lifted != start
        edited = text.replace(f"<ReportDateTime>{start}", f"<ReportDateTime>{lifted}")
        (reports / f"{name}-lifted-EDITED.xml").write_text(
            edited.replace("<Status>発表</Status>", "<Status>解除</Status>"), encoding="utf-8"
        )
    out = tmp_path / "alerts.jsonl"
    env = dict(os.environ, KAFKA_BOOTSTRAP_SERVERS=kafka_bootstrap)

    subprocess.run(
        [sys.executable, "-m", "streams.cli", "replay", "--region", str(project_root / "regions" / "kanagawa")]
        + ["--jma", str(reports), "--speed", "max", "--alerts-out", str(out), "--topic-prefix", f"itrl{unique}"]
        + ["--timeout", "120"],
        check=True,
        env=env,
        cwd=project_root,
        timeout=170,
    )

    lines = [json.loads(line) for line in out.read_text(encoding="utf-8").splitlines()]
    by_rule = Counter((line["rule"], line["msg_type"]) for line in lines)
    raised = by_rule[("jma_warning", "ALERT")]
    assert raised and by_rule[("jma_warning", "CANCEL")] == raised  # every warning raised once, lifted once
    assert by_rule[("jma_earthquake", "ALERT")] >= 2
    for line in lines:
        assert line["source"] == "jma" and line["event"] and line["official"]["credit"] == "出典：気象庁"
    warning = next(line for line in lines if line["rule"] == "jma_warning")
    municipal = {f"itrl{unique}.kanagawa.alerts.{code}" for code in warning["municipalities"]}
    assert municipal & set(warning["topics"]) and f"itrl{unique}.kanagawa.alerts.public" in warning["topics"]
    assert warning["event"].endswith(("警報", "注意報"))
    hypocentre = next(line for line in lines if line["rule"] == "jma_earthquake" and not line["municipalities"])
    assert hypocentre["topics"] == [f"itrl{unique}.kanagawa.alerts"]
    intensities = {line["level"] for line in lines if line["rule"] == "jma_earthquake" and line["municipalities"]}
    assert intensities and intensities <= {"1", "2", "3", "4", "5-", "5+", "6-", "6+", "7"}
