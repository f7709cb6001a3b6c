"""A fleet of live clients of `bosai web` in one process (``python -m benchmarks.web_clients``), for `bosai bench web`.

Most clients only hold their stream and read its bytes (as a browser tab does); a few *probes* decode every
event and time each benchmark alert from its ``updated`` field (the wall-clock time it was produced into
Kafka, in ms) to its arrival. Runs until a line arrives on stdin, then prints one JSON document on stdout.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import time

from aiohttp import ClientSession, ClientTimeout, TCPConnector


class Fleet:
    def __init__(self, url: str):
        self.url = url
        self.connected = 0
        self.ended = 0  # streams the server closed (a dropped client)
        self.failed = 0  # connections refused or broken
        self.latencies_ms: list[float] = []
        self.seen: dict[int, set[str]] = {}  # probe -> bench alert ids received

    async def hold(self, session: ClientSession, stop: asyncio.Event) -> None:
        """A client that keeps its stream open and reads it."""
        try:
            async with session.get(self.url) as response:
                if response.status != 200:
                    self.failed += 1
                    return
                self.connected += 1
                while not stop.is_set():
                    chunk = await response.content.readany()
                    if not chunk:
                        self.ended += 1
                        return
        except Exception:  # noqa: BLE001 - counted, whatever broke it
            self.failed += 1

    async def probe(self, number: int, session: ClientSession, stop: asyncio.Event) -> None:
        """A client that decodes every event and times the benchmark's alerts."""
        seen = self.seen.setdefault(number, set())
        try:
            async with session.get(self.url) as response:
                self.connected += 1
                event = None
                while not stop.is_set():
                    line = await response.content.readline()
                    if not line:
                        self.ended += 1
                        return
                    if line.startswith(b"event: "):
                        event = line[7:].strip()
                    elif line.startswith(b"data: ") and event == b"alerts":
                        arrived = time.time() * 1000
                        for item in json.loads(line[6:])["alerts"]:
                            if item["id"].startswith("bench-") and item["id"] not in seen:
                                seen.add(item["id"])
                                self.latencies_ms.append(arrived - item["updated"])
        except Exception:  # noqa: BLE001 - counted, whatever broke it
            self.failed += 1


async def run(url: str, clients: int, probes: int) -> dict:
    fleet = Fleet(url)
    stop = asyncio.Event()
    connector = TCPConnector(limit=0, force_close=False)
    async with ClientSession(connector=connector, timeout=ClientTimeout(total=None, sock_read=None)) as session:
        tasks = [asyncio.create_task(fleet.probe(i, session, stop)) for i in range(probes)]
        for start in range(0, clients - probes, 200):  # connect in waves, as a crowd arrives
            for _ in range(min(200, clients - probes - start)):
                tasks.append(asyncio.create_task(fleet.hold(session, stop)))
            await asyncio.sleep(0.05)
        print(f"launched {clients}", file=sys.stderr, flush=True)
        await asyncio.to_thread(sys.stdin.readline)  # the benchmark says when to stop
        still = fleet.connected - fleet.ended
        stop.set()
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
    return {
        "clients": clients,
        "probes": probes,
        "connected": fleet.connected,
        "still_connected": still,
        "ended_by_server": fleet.ended,
        "failed": fleet.failed,
        "latencies_ms": fleet.latencies_ms,
        "alerts_seen_per_probe": sorted(len(s) for s in fleet.seen.values()),
    }


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--url", required=True)
    parser.add_argument("--clients", type=int, required=True)
    parser.add_argument("--probes", type=int, default=20)
    args = parser.parse_args()
    result = asyncio.run(run(args.url, args.clients, min(args.probes, args.clients)))
    print(json.dumps(result))


if __name__ == "__main__":
    main()
