"""JMA's AMeDAS 10-minute data as JMA's web site publishes it, read into SensorReading records (pure).

Layout (``https://www.jma.go.jp/bosai/amedas/data/``; not an official interface, so it is checked):

* ``latest_time.txt`` — the time of the newest data, e.g. ``2024-11-02T18:50:00+09:00``;
* ``map/YYYYMMDDHHmm00.json`` — every station at that 10-minute time (JST):
  ``{"41277": {"precipitation10m": [0.5, 0], "precipitation1h": [12.0, 0], "precipitation24h": [80.5, 0], …}, …}``:
  keys are the 5-digit AMeDAS station numbers, each element a ``[value, quality flag]`` pair.

**Quality flags.** JMA publishes no specification of this JSON. The hub uses a value only when its flag
is 0 and the value is not null; any other flag, or a null value, makes the quantity MISSING (a real
gap: it neither raises nor clears alerts). The flags seen in JMA's files: 0 with a value (a normal
observation, 正常値), 5 with null (no value: e.g. snow at stations that do not measure it), 6 with 0
(an element the station does not observe) — see JMA's bosai JSON as documented by users, e.g.
https://qiita.com/namakenia/items/9b0980df95c519f79017 (2022). Flags other than 0 are never trusted,
so a quasi-normal value (準正常値) is also MISSING: an alert is never raised on a doubtful value.

A changed layout (not an object, a station entry that is not an object, an element that is not a
``[value, flag]`` pair, or a map whose stations carry none of the precipitation elements) raises
:class:`LayoutError`: never silence. An empty map (no station reported) is normal.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime
from typing import Any

from streams.kernel import json_input
from streams.kernel.json_input import JsonInputError
from streams.kernel.messages import AvroRecord
from streams.kernel.times import JST, MINUTE_MS, jst
from streams.observed.readings import EARLIEST_MS, LATEST_MS, finite_number

ELEMENTS = {  # JMA's element -> the hub's quantity
    "precipitation10m": "precipitation_10min",
    "precipitation1h": "precipitation_1h",
    "precipitation24h": "precipitation_24h",
}
USABLE_FLAG = 0
STEP_MS = 10 * MINUTE_MS
SOURCE = "jma-amedas-10min"  # SensorReading.source of what the poller produces


class LayoutError(Exception):
    """JMA's file is not in the layout the hub knows (the message says how); the module's one error type."""

    reason = "layout_error"  # bosai_amedas_files_total{outcome}


def parse_map(data: bytes) -> Any:
    """A map file's JSON document (strict, bounded depth); LayoutError when it is not JSON at all."""
    try:
        return json_input.loads(data)
    except JsonInputError as exc:
        raise LayoutError(f"the map is {exc}") from None


def parse_latest_time(text: str) -> int:
    """latest_time.txt as epoch ms (a 10-minute step)."""
    try:
        moment = datetime.fromisoformat(text.strip())
    except ValueError:
        raise LayoutError(
            f"latest_time.txt is {text[:60]!r}, not an ISO date-time like 2024-11-02T18:50:00+09:00"
        ) from None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=JST)
    ms = int(moment.timestamp() * 1000)
    if not EARLIEST_MS <= ms < LATEST_MS:
        raise LayoutError(f"latest_time.txt is {text.strip()[:60]!r}, not a time between 2000 and 2100")
    if ms % STEP_MS:
        raise LayoutError(f"latest_time.txt is {text.strip()!r}, not on a 10-minute step")
    return ms


def map_file(observed_at: int) -> str:
    """The map file of a 10-minute time: map/YYYYMMDDHHmm00.json (JST)."""
    return f"map/{jst(observed_at).strftime('%Y%m%d%H%M')}00.json"


def floor_step(ms: int) -> int:
    return ms - ms % STEP_MS


def _value(pair: Any, station_id: str, element: str) -> float | None:
    if (
        not isinstance(pair, list)
        or len(pair) != 2
        or not (pair[0] is None or finite_number(pair[0]) is not None)
        or not isinstance(pair[1], int)
        or isinstance(pair[1], bool)
    ):
        raise LayoutError(f"station {station_id} {element} is {pair!r:.80}, not a [value, quality flag] pair")
    value, flag = pair
    return finite_number(value) if flag == USABLE_FLAG else None


def readings_of(document: Any, station_ids: Iterable[str], observed_at: int) -> list[AvroRecord]:
    """SensorReading records of the given stations from one map file (stations not in it: none)."""
    if not isinstance(document, dict):
        raise LayoutError(f"the map is a {type(document).__name__}, not an object of stations")
    if document and not any(isinstance(e, dict) and set(e) & set(ELEMENTS) for e in document.values()):
        raise LayoutError(
            f"none of the map's {len(document)} stations has {', '.join(ELEMENTS)}: has the layout changed?"
        )
    out: list[AvroRecord] = []
    for station_id in sorted(station_ids):
        entry = document.get(station_id)
        if entry is None:
            continue
        if not isinstance(entry, dict):
            raise LayoutError(f"station {station_id} is {type(entry).__name__}, not an object of elements")
        values = {q: _value(entry[e], station_id, e) if e in entry else None for e, q in ELEMENTS.items()}
        out.append(
            {
                "station_id": station_id,
                "sensor_kind": "RAIN_GAUGE",
                "observed_at": observed_at,
                "location": None,
                "measurements": [{"quantity": q, "value": v, "unit": "mm"} for q, v in values.items()],
                "quality": "OK" if any(v is not None for v in values.values()) else "MISSING",
                "source": SOURCE,
                "produced_at": None,
            }
        )
    return out
