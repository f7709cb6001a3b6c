"""What a replay produces besides CSV readings: official reports from files, and one timeline of both.

``official_messages`` reads JMA report files (気象庁防災情報XML), routes each to the official-reports
topic of the regions it concerns (:mod:`streams.official.routing`) and orders them by
ReportDateTime (Serial breaks ties). ``produce_timeline`` then produces readings and reports
interleaved by event time — a report after the readings of its minute — paced at ``speed``.
"""

from __future__ import annotations

import asyncio
import gzip
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

from aiokafka.structs import RecordMetadata

from streams.kernel.times import jst_iso
from streams.official.routing import OTHER_PREFECTURE, UNREADABLE, report_files, route
from streams.platform import kafka
from streams.platform.avro import AvroCodec

Progress = Callable[[str], None]


@dataclass(frozen=True)
class TimedMessage:
    """One message of a replay's timeline."""

    event_ms: int
    order: int  # 0 readings, 1 official reports: a report comes after the readings of its instant
    topic: str
    key: bytes
    value: bytes


@dataclass
class OfficialInput:
    messages: list[TimedMessage]
    reports: int  # files routed to at least one region
    other_prefecture: int  # files of no region's prefecture (not produced)
    unreadable: list[str]  # files produced to every region to be dead-lettered there


def official_messages(
    paths: Sequence[Path], topics_by_prefecture: dict[str, list[str]], codec: AvroCodec, *, fetched_at: int
) -> OfficialInput:
    """OfficialReport messages for the files, in ReportDateTime order, each on its regions' topics."""
    routed = []
    unreadable = []
    other = 0
    for path in report_files(paths):
        xml = path.read_bytes()
        if path.name.endswith(".gz"):
            xml = gzip.decompress(xml)
        found = route(xml, path.name, topics_by_prefecture)
        if found.outcome == OTHER_PREFECTURE:
            other += 1
            continue
        if found.outcome == UNREADABLE:
            unreadable.append(f"{path.name}: {found.problem}")
        record = {
            "xml": xml,
            "entry_id": path.name,
            "url": "",
            "fetched_at": fetched_at,
            "entry_title": found.control_title,
            "entry_updated": None,
            "source": "replay",
        }
        routed.append((found, record))
    routed.sort(key=lambda pair: pair[0].order)
    payloads = codec.encode_many([record for _, record in routed])
    messages = [
        TimedMessage(found.order[0], 1, topic, found.key.encode(), payload)
        for (found, _), payload in zip(routed, payloads, strict=True)
        for topic in found.topics
    ]
    return OfficialInput(messages, len(routed) - len(unreadable), other, unreadable)


async def produce_timeline(
    bootstrap: str, messages: Sequence[TimedMessage], *, speed: float | None, progress: Progress
) -> None:
    """Produce the messages in event-time order, pacing event time at ``speed`` x real time (None = max)."""
    ordered = sorted(messages, key=lambda m: (m.event_ms, m.order))
    async with kafka.started_producer(bootstrap) as producer:
        started = time.monotonic()
        first = next((m.event_ms for m in ordered if m.event_ms > 0), 0)
        pending: list[asyncio.Future[RecordMetadata]] = []
        last_report = time.monotonic()
        for done, message in enumerate(ordered, start=1):
            if speed is not None and message.event_ms > 0:
                delay = started + (message.event_ms - first) / 1000 / speed - time.monotonic()
                if delay > 0:
                    await asyncio.gather(*pending)
                    pending.clear()
                    await asyncio.sleep(delay)
            pending.append(await producer.send(message.topic, message.value, key=message.key))
            if time.monotonic() - last_report > 2:
                last_report = time.monotonic()
                progress(f"produced {done:,}/{len(ordered):,} messages (event time {jst_iso(message.event_ms)})")
        await asyncio.gather(*pending)
