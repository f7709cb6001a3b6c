"""The peer: the hub's same pure core (decode, validate, geofence, rules, lifecycle, fan-out, encode)
driven by Quix Streams instead of Faust, with station state in Quix's state store.

Run as `python -m benchmarks.quix_peer BOOTSTRAP PACK_DIR PREFIX GROUP [at-least-once|exactly-once]`.
"""

from __future__ import annotations

import sys
from dataclasses import replace


def main(bootstrap: str, pack_dir: str, prefix: str, group: str, guarantee: str = "at-least-once") -> None:
    from quixstreams import Application
    from quixstreams.models import Serializer
    from quixstreams.models.topics import TopicConfig

    from streams.hub.worker import settle_heap
    from streams.kernel.messages import InMessage
    from streams.kernel.topics import HubTopics
    from streams.observed.lifecycle import StationState
    from streams.observed.pipeline import Pipeline
    from streams.packs.region_pack import load_pack
    from streams.platform.avro import default_store
    from streams.platform.topic_catalog import default_catalog_path, load_catalog

    class PayloadOf(Serializer):
        """Values are (topic, key, payload) triples; the topic gets the payload bytes."""

        def __call__(self, value, ctx):
            return value[2]

    pack = load_pack(pack_dir)
    catalog = replace(load_catalog(default_catalog_path()), prefix=prefix)
    names = HubTopics.for_region(catalog, pack)
    pipeline = Pipeline(pack, names, default_store())
    app = Application(
        broker_address=bootstrap,
        consumer_group=group,
        auto_offset_reset="earliest",
        loglevel="WARNING",
        auto_create_topics=True,
        commit_interval=1.0,
        processing_guarantee=guarantee,
        consumer_extra_config={"isolation.level": "read_committed"},
        state_dir=f"/tmp/quix-state-{group}",
    )
    raw = app.topic(names.raw, key_deserializer="bytes", value_deserializer="bytes")
    outputs = {}
    for name in [names.enriched, names.alerts, names.public, names.deadletter, *names.municipal.values()]:
        outputs[name] = app.topic(
            name,
            key_serializer="bytes",
            value_serializer=PayloadOf(),
            config=TopicConfig(num_partitions=1, replication_factor=1),
        )

    def process(value: bytes, key, timestamp, headers, state):
        stored = state.get("station")
        result = pipeline.process(
            [InMessage(names.raw, 0, 0, key, value)],
            lambda _sid: StationState.from_json(stored.encode() if stored else None),
        )
        for station_state in result.states.values():
            state.set("station", station_state.to_bytes().decode())
        return [(r.topic, r.key, r.value) for r in result.records]

    settle_heap()  # the hub's own garbage-collector settings: same core, same tuning
    sdf = app.dataframe(raw)
    sdf = sdf.apply(process, stateful=True, expand=True, metadata=True)
    sdf.to_topic(lambda value, key, timestamp, headers: outputs[value[0]], key=lambda value: value[1])
    app.run()


if __name__ == "__main__":
    main(*sys.argv[1:6])
