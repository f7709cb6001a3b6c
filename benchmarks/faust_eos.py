"""Faust's own exactly-once: the hub's same pure core in a Faust agent with
``processing_guarantee="exactly_once"`` — outputs sent through Faust's transactional producer, station
states in a Faust table whose changelog joins the transaction. Measured by `bosai bench` to compare
with the hub's own transactional batch loop (the reason the hub does not use this; see docs/developers/runtime.md).
Run as `python -m benchmarks.faust_eos BOOTSTRAP PACK_DIR PREFIX GROUP`.
"""

from __future__ import annotations

import sys
from dataclasses import replace


def main(bootstrap: str, pack_dir: str, prefix: str, group: str) -> None:
    import faust

    from streams.hub.worker import settle_heap
    from streams.kernel.messages import InMessage
    from streams.kernel.topics import HubTopics
    from streams.observed.lifecycle import StationState
    from streams.observed.pipeline import Pipeline
    from streams.packs.region_pack import load_pack
    from streams.platform.avro import default_store
    from streams.platform.settings import cache_dir
    from streams.platform.topic_catalog import default_catalog_path, load_catalog

    pack = load_pack(pack_dir)
    catalog = replace(load_catalog(default_catalog_path()), prefix=prefix)
    names = HubTopics.for_region(catalog, pack)
    pipeline = Pipeline(pack, names, default_store())
    datadir = cache_dir() / "bench" / "faust" / group  # never in the checkout or /tmp
    datadir.mkdir(parents=True, exist_ok=True)  # Faust makes only the last level (a fresh machine has none)
    app = faust.App(
        group,
        broker=f"kafka://{bootstrap}",
        store="memory://",
        web_enabled=False,
        processing_guarantee="exactly_once",
        topic_partitions=6,
        topic_replication_factor=1,
        consumer_auto_offset_reset="earliest",
        datadir=str(datadir),
        broker_commit_interval=1.0,
    )
    raw = app.topic(names.raw, key_serializer="raw", value_serializer="raw", partitions=6)
    states = app.Table(
        "station-state",
        default=None,
        partitions=6,
        use_partitioner=True,
        schema=faust.Schema(key_serializer="raw", value_serializer="raw"),
    )
    outputs = {
        name: app.topic(name, key_serializer="raw", value_serializer="raw")
        for name in [names.enriched, names.alerts, names.public, names.deadletter, *names.municipal.values()]
    }

    def state_of(station_id: str) -> StationState:
        return StationState.from_json(states.get(station_id.encode()))

    @app.agent(raw, name="hub")
    async def hub(stream) -> None:
        async for events in stream.take_events(2000, within=0.01):
            messages = [
                InMessage(e.message.topic, e.message.partition, e.message.offset, e.message.key, e.message.value)
                for e in events
            ]
            result = pipeline.process(messages, state_of)
            for record in result.records:
                await outputs[record.topic].send(key=record.key, value=record.value)
            for station_id, state in result.states.items():
                states[station_id.encode()] = state.to_bytes()

    settle_heap()
    faust.Worker(app, loglevel="warn", quiet=True).execute_from_commandline()


if __name__ == "__main__":
    main(*sys.argv[1:5])
