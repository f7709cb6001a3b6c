"""Event time as the hub counts it: epoch milliseconds, shown in JST (日本標準時, UTC+9).

Rules run on ``observed_at`` (event time), never on the wall clock; these helpers only convert.
"""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

from streams.kernel.errors import ConfigError

JST = timezone(timedelta(hours=9))
MINUTE_MS = 60_000
HOUR_MS = 3_600_000
DAY_MS = 86_400_000


def jst(epoch_ms: int) -> datetime:
    """An event time as an aware JST datetime."""
    return datetime.fromtimestamp(epoch_ms / 1000, JST)


def jst_iso(epoch_ms: int) -> str:
    """2023-09-04T15:00:00+09:00"""
    return jst(epoch_ms).isoformat()


def parse_jst(text: str, *, option: str) -> int:
    """'2023-09-04', '2023-09-04T15:00' or with an offset -> epoch ms (JST when no offset is given)."""
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        raise ConfigError(option, f"{text!r} is not a timestamp", expected="YYYY-MM-DD[THH:MM] (JST)") from None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=JST)
    return int(moment.timestamp() * 1000)
