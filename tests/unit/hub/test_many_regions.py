"""A worker serving many regions: one consumer group named after the regions it serves, the same for every replica
and restart; a single region keeps its own group."""

from __future__ import annotations

import json

from streams.hub.processes import WorkerProcess
from streams.hub.worker import WorkerSettings, app_id_for, group_for


def test_one_region_keeps_its_own_group():
    assert group_for("bosai", ["tochigi"]) == app_id_for("bosai", "tochigi") == "bosai-tochigi-hub"


def test_many_regions_share_one_group_whatever_their_order():
    group = group_for("replay-1", ["tochigi", "kanagawa", "saga"])

    assert group == group_for("replay-1", ["saga", "tochigi", "kanagawa"])
    assert group.startswith("replay-1-regions-3-") and group.endswith("-hub")
    assert group != group_for("replay-1", ["tochigi", "kanagawa"]) != group_for("replay-2", ["tochigi", "kanagawa"])


def test_the_settings_carry_every_region_to_the_process(tmp_path):
    settings = WorkerSettings(pack_dir="regions/tochigi", pack_dirs=("regions/tochigi", "regions/kanagawa"), instance=1)
    process = WorkerProcess(tmp_path / "tochigi", "replay-1", "127.0.0.1:9092", tmp_path / "w.log", settings=settings)

    sent = WorkerSettings(**json.loads(process.cmd[-1]))
    assert sent.regions == ("regions/tochigi", "regions/kanagawa") and sent.instance == 1
    assert process.name == "worker of 2 regions-1"
    assert WorkerSettings(pack_dir="regions/saga").regions == ("regions/saga",)


def test_topics_are_created_in_requests_the_controller_accepts():
    from aiokafka.admin import NewTopic

    from streams.platform.kafka_admin import _batches

    topics = [NewTopic(f"t{i}", 6, 1) for i in range(1000)]  # 45 packs' topics are thousands of partitions
    batches = _batches(topics, budget=700)

    assert [t for b in batches for t in b] == topics and len(batches) == 10
    assert _batches([NewTopic("big", 5000, 1)], budget=700)[0][0].name == "big"
