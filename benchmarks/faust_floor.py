"""Faust's own floor: an agent that takes the same batches as the hub (``take_events``) and does no
work — no decoding, no outputs, no table. What the hub loses below this is ours; what this loses
below the aiokafka ceiling is Faust's per-event stream.

Run as `python -m bench.faust_floor BOOTSTRAP SOURCE APP_ID`.
"""

from __future__ import annotations

import sys


def main(bootstrap: str, source: str, app_id: str) -> None:
    import faust

    from streams.hub.worker import HubWorker
    from streams.platform.settings import cache_dir

    datadir = cache_dir() / "bench" / "faust" / app_id  # Faust's state folder, never in the checkout
    datadir.mkdir(parents=True, exist_ok=True)  # Faust makes only the last level (a fresh machine has none)
    app = faust.App(
        app_id,
        datadir=str(datadir),
        broker=f"kafka://{bootstrap}",
        store="memory://",
        web_enabled=False,
        broker_commit_interval=1.0,
        consumer_auto_offset_reset="earliest",
        producer_acks=-1,
        topic_replication_factor=1,
    )
    raw = app.topic(source, key_serializer="raw", value_serializer="raw")

    @app.agent(raw, name="floor")
    async def floor(stream):  # noqa: ANN001 - Faust stream
        async for _events in stream.take_events(2000, within=0.01):
            pass

    HubWorker(app, loglevel="WARNING", quiet=True).execute_from_commandline()


if __name__ == "__main__":
    arguments, sys.argv = sys.argv[1:4], sys.argv[:1]  # the Faust worker must not see them
    main(*arguments)
