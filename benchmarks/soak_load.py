"""The soak's input: the demo's data in a loop, each loop shifted in event time (`bosai bench soak`).

Run as its own process (``python -m benchmarks.soak_load``) so the soak samples it like the hub's processes.
Each loop produces the AMeDAS observations of 2023-09-04..08 of every station of the packs (as `bosai demo`)
and JMA's 土砂災害警戒情報 of 神奈川県 (the demo's three reports, placed on 2023-09-06 of the loop's window), paced
at ``speed`` event seconds per real second, through the same code as `bosai replay`.

Loop k is the same data moved ``k × SHIFT`` later in event time — readings' observed_at and every
xs:dateTime of the reports (ReportDateTime included). Unshifted, the hub would ignore a second loop: a reading
not newer than its station's last changes nothing, and an official report not newer than the last applied of
its EventID neither. Shifted, every loop is new data that the rules see exactly as the first, so each loop
raises the same alerts, whose ids (``<region>-<rule>-<station>-<episode start JST>``) are the first loop's
moved by the same whole days: deterministic, and checkable by moving them back. SHIFT is the five days of
data plus two quiet days, more than the longest rule window (24 h): nothing of a loop reaches into the next,
and every episode the data raises is cleared within its loop.
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import json
import re
import sys
import tempfile
import time
from pathlib import Path

from streams.hub.replay_input import TimedMessage, official_messages, produce_timeline
from streams.kernel.times import parse_jst
from streams.kernel.topics import HubTopics
from streams.observed.amedas_csv import read_amedas
from streams.packs.region_pack import load_pack
from streams.platform.avro import OFFICIAL_REPORT, READING, AvroCodec, default_store
from streams.platform.settings import project_root
from streams.platform.topic_catalog import load_default_catalog

DAY_MS = 86_400_000
WINDOW = ("2023-09-04", "2023-09-09")  # the demo's range (JST), five days
SHIFT_DAYS = 7
AMEDAS_CSV = ("data", "amedas", "tochigi-kanagawa-2023-07-13_2023-12-06.csv.gz")
# JMA's 土砂災害警戒情報 of 神奈川県, 2024-11-02 (発表 18:50, 箱根町 joins 20:50, 解除 23:27), as the demo relays it
KANAGAWA_LANDSLIDE = tuple(("data", "jma", f"17_04_0{i}_250630_VXWW50.xml") for i in (1, 2, 3))
JMA_PLACED_ON = dt.date(2023, 9, 6)  # the reports' day inside the window
JMA_FROM = dt.date(2024, 11, 2)
_DATETIME = re.compile(rb"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(?:\.\d+)?(?:[+-]\d{2}:\d{2}|Z)")


def window_ms() -> tuple[int, int]:
    return parse_jst(WINDOW[0], option="window"), parse_jst(WINDOW[1], option="window")


def loop_seconds(speed: float) -> float:
    start, end = window_ms()
    return (end - start) / 1000 / speed


def shift_xml(xml: bytes, days: int) -> bytes:
    """Every xs:dateTime of a JMA report moved by whole days (same offset, same format)."""

    def moved(match: re.Match) -> bytes:
        text = match.group().decode()
        value = dt.datetime.fromisoformat(text.replace("Z", "+00:00")) + dt.timedelta(days=days)
        out = value.isoformat(timespec="seconds" if "." not in text else "auto")
        return (out.replace("+00:00", "Z") if text.endswith("Z") else out).encode()

    return _DATETIME.sub(moved, xml)


def jma_days(loop: int) -> int:
    """How far loop ``loop`` moves JMA's reports: onto the window's day, then the loop's shift."""
    return (JMA_PLACED_ON - JMA_FROM).days + loop * SHIFT_DAYS


class SoakInput:
    """The data of one loop, built once and moved per loop."""

    def __init__(self, pack_dirs: list[Path], prefix: str):
        root = project_root()
        catalog = load_default_catalog(prefix)
        self.packs = [load_pack(d) for d in pack_dirs]
        self.topics = [HubTopics.for_region(catalog, p) for p in self.packs]
        self.routes = {sid: t.raw for p, t in zip(self.packs, self.topics, strict=True) for sid in p.stations}
        start, end = window_ms()
        self.readings = [
            r
            for r in read_amedas(root.joinpath(*AMEDAS_CSV), since_ms=start, until_ms=end)
            if r["station_id"] in self.routes
        ]
        self.reports = [root.joinpath(*parts).read_bytes() for parts in KANAGAWA_LANDSLIDE]
        self.by_prefecture: dict[str, list[str]] = {}
        for pack, topics in zip(self.packs, self.topics, strict=True):
            self.by_prefecture.setdefault(pack.prefecture_code, []).append(topics.official)
        self.store = default_store()

    def messages(self, loop: int, scratch: Path) -> list[TimedMessage]:
        """Loop ``loop``'s readings and reports, moved ``loop × SHIFT_DAYS`` days later."""
        offset = loop * SHIFT_DAYS * DAY_MS
        moved = [dict(r, observed_at=r["observed_at"] + offset) for r in self.readings]
        payloads = AvroCodec(self.store, READING).encode_many(moved)
        out = [
            TimedMessage(r["observed_at"], 0, self.routes[r["station_id"]], r["station_id"].encode(), p)
            for r, p in zip(moved, payloads, strict=True)
        ]
        files = []
        for i, xml in enumerate(self.reports):
            path = scratch / f"{i}_{Path(KANAGAWA_LANDSLIDE[i][-1]).name}"
            path.write_bytes(shift_xml(xml, jma_days(loop)))
            files.append(path)
        fetched_at = window_ms()[0] + offset  # deterministic: the same in every loop, moved
        official = official_messages(
            files, self.by_prefecture, AvroCodec(self.store, OFFICIAL_REPORT), fetched_at=fetched_at
        )
        return out + official.messages


def _say(event: str, **fields: object) -> None:
    print(json.dumps({"event": event, "t": time.time(), **fields}), flush=True)


async def produce_loops(bootstrap: str, data: SoakInput, *, loops: int, speed: float) -> None:
    with tempfile.TemporaryDirectory(prefix="bosai-soak-") as scratch:
        for loop in range(loops):
            messages = data.messages(loop, Path(scratch))
            _say("loop_start", loop=loop, messages=len(messages))
            await produce_timeline(bootstrap, messages, speed=speed, progress=lambda _m: None)
            _say("loop_done", loop=loop, messages=len(messages))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--bootstrap", required=True)
    parser.add_argument("--prefix", required=True)
    parser.add_argument("--region", action="append", required=True, type=Path)
    parser.add_argument("--loops", type=int, required=True)
    parser.add_argument("--speed", type=float, required=True)
    args = parser.parse_args(argv)
    data = SoakInput(args.region, args.prefix)
    _say("ready", readings=len(data.readings), reports=len(data.reports), loop_s=loop_seconds(args.speed))
    asyncio.run(produce_loops(args.bootstrap, data, loops=args.loops, speed=args.speed))
    _say("finished", loops=args.loops)
    return 0


if __name__ == "__main__":
    sys.exit(main())
