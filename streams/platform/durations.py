"""Durations in config files: ``7d``, ``12h``, ``30m``, ``infinite``; a bare integer is milliseconds."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from streams.kernel.errors import ConfigError
from streams.kernel.times import DAY_MS, HOUR_MS, MINUTE_MS

_DURATION = re.compile(r"^(\d+)\s*(ms|s|m|h|d|w)$")
_UNIT_MS = {"ms": 1, "s": 1000, "m": MINUTE_MS, "h": HOUR_MS, "d": DAY_MS, "w": 7 * DAY_MS}


def parse_duration_ms(value: Any, *, file: Path | str, where: str | None, what: str = "retention") -> int:
    """``7d`` -> 604800000; ``infinite`` -> -1; a bare integer is milliseconds."""
    if isinstance(value, bool):
        raise ConfigError(
            file, f"{what} {value!r} is not a duration", where=where, expected="e.g. 12h, 7d, 4w, or infinite"
        )
    if isinstance(value, int):
        return value
    text = str(value).strip().lower()
    if text in {"infinite", "forever", "-1"}:
        return -1
    match = _DURATION.match(text)
    if not match:
        raise ConfigError(
            file, f"{what} {value!r} is not a duration", where=where, expected="e.g. 12h, 7d, 4w, or infinite"
        )
    return int(match.group(1)) * _UNIT_MS[match.group(2)]
