"""The demo's live terminal view: progress from the workers' metrics, alerts as they are delivered.

A background thread follows the prefecture-wide alert topics and scrapes each worker's /metrics
endpoint; the view prints each alert as a line and keeps one progress line at the bottom (on a
terminal) or prints progress every few seconds (in a log).
"""

from __future__ import annotations

import asyncio
import re
import sys
import threading
import time
import urllib.request
from collections import Counter
from collections.abc import Mapping, Sequence
from typing import TextIO

from streams.kernel.messages import AvroRecord
from streams.kernel.times import jst
from streams.platform import kafka
from streams.platform.avro import ALERT, AvroCodec, SchemaStore

_SAMPLE = re.compile(r"^(bosai_[a-z_]+)(\{[^}]*\})?\s+([-+0-9.eE]+|NaN)$")


def scrape(url: str, timeout_s: float = 1.0) -> dict[str, float]:
    """Every bosai_* sample of a /metrics page, keyed by 'name{labels}'."""
    with urllib.request.urlopen(url, timeout=timeout_s) as response:
        text = response.read().decode()
    values: dict[str, float] = {}
    for line in text.splitlines():
        match = _SAMPLE.match(line)
        if not match:
            continue
        name, labels, value = match.group(1), match.group(2) or "", float(match.group(3))
        values[name + labels] = value
    return values


class LiveView:
    def __init__(self, total_readings: int, metrics_urls: Sequence[str], out: TextIO = sys.stdout):
        self.total = total_readings
        self.urls = list(metrics_urls)
        self.out = out
        self.tty = out.isatty()
        self.alerts: Counter[tuple[str, str]] = Counter()
        self.processed = 0
        self.event_time: float | None = None
        self._lock = threading.Lock()
        self._last_plain = 0.0
        self._progress_shown = False

    def _write(self, text: str) -> None:
        self.out.write(text)
        self.out.flush()

    def alert(self, record: AvroRecord) -> None:
        with self._lock:
            self.alerts[(record["msg_type"], record["level"])] += 1
            when = jst(record["observed_at"]).strftime("%m-%d %H:%M")
            codes = ",".join(record["municipality_codes"])
            line = (
                f"{when} {record['msg_type']:<6} {record['rule']:<8} {record['level']:<10} "
                f"{record['headline']}  [{codes}]"
            )
            self._write(("\r\033[K" if self.tty and self._progress_shown else "") + line + "\n")
            self._progress_shown = False
            self._render()

    def refresh(self) -> None:
        processed, event_time = 0.0, None
        for url in self.urls:
            try:
                values = scrape(url)
            except OSError:
                continue
            processed += sum(
                v for k, v in values.items() if k.startswith("bosai_readings_total{") and 'stage="received"' in k
            )
            seen = [v for k, v in values.items() if k.startswith("bosai_event_time_seconds{") and v > 0]
            if seen:
                event_time = max(seen + ([event_time] if event_time else []))
        with self._lock:
            self.processed = int(processed)
            self.event_time = event_time or self.event_time
            self._render()

    def _render(self) -> None:
        share = min(1.0, self.processed / self.total) if self.total else 1.0
        bar = "#" * int(share * 30) + "." * (30 - int(share * 30))
        when = jst(int(self.event_time * 1000)).strftime("%Y-%m-%d %H:%M JST") if self.event_time else "-"
        raised = sum(n for (kind, _), n in self.alerts.items() if kind == "ALERT")
        line = (
            f"[{bar}] {share:4.0%}  event time {when}  readings {self.processed:,}/{self.total:,}  "
            f"alerts raised {raised}, events {sum(self.alerts.values())}"
        )
        if self.tty:
            self._write("\r\033[K" + line)
            self._progress_shown = True
        elif time.monotonic() - self._last_plain > 3:
            self._last_plain = time.monotonic()
            self._write(line + "\n")

    def close(self) -> None:
        with self._lock:
            if self.tty and self._progress_shown:
                self._write("\n")


class AlertFollower(threading.Thread):
    """Follows alert topics from given offsets in a thread, feeding the view; refreshes progress."""

    def __init__(
        self,
        bootstrap: str,
        topics: Sequence[str],
        starts: Mapping[kafka.TopicPartition, int],
        view: LiveView,
        store: SchemaStore,
    ):
        super().__init__(name="bosai-live", daemon=True)
        self.bootstrap, self.topics, self.starts, self.view, self.store = bootstrap, list(topics), starts, view, store
        self.stopping = threading.Event()
        self.error: BaseException | None = None

    def run(self) -> None:
        try:
            asyncio.run(self._follow())
        except BaseException as exc:  # shown by the caller; the replay itself goes on
            self.error = exc

    async def _follow(self) -> None:
        codec = AvroCodec(self.store, ALERT)
        async with kafka.started_consumer(self.bootstrap) as consumer:
            partitions = [tp for tp in self.starts if tp.topic in self.topics]
            consumer.assign(partitions)
            for tp in partitions:
                consumer.seek(tp, self.starts[tp])
            last_refresh = 0.0
            while not self.stopping.is_set():
                batch = await consumer.getmany(timeout_ms=300)
                for messages in batch.values():
                    for message in messages:
                        self.view.alert(codec.decode(message.value))
                if time.monotonic() - last_refresh > 0.5:
                    last_refresh = time.monotonic()
                    await asyncio.get_running_loop().run_in_executor(None, self.view.refresh)
            # drain what arrived last
            for messages in (await consumer.getmany(timeout_ms=500)).values():
                for message in messages:
                    self.view.alert(codec.decode(message.value))
            self.view.refresh()

    def stop(self) -> None:
        self.stopping.set()
        self.join(timeout=10)
