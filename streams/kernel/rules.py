"""Threshold rules: what a rule is, and how a reading's value maps to a rule's level (pure).

A rule file (``rules.yaml``, loaded by :mod:`streams.packs.rule_file`) lists rules; each rule watches
one measured quantity of a station and maps its value to ordered levels:

* ``band`` — the value itself against fixed thresholds (JMA 1-hour rain intensity: 強い雨 heavy ≥20 mm,
  激しい雨 intense ≥30, 非常に激しい雨 very heavy ≥50, 猛烈な雨 extreme ≥80).
* ``cumulative`` — rainfall over an event-time window (3 h, 24 h …). Its quantity is the rolling sum
  the window stands for (``precipitation_24h`` for 24 h): used as reported when the sensor sends it
  (AMeDAS does for 24 h), otherwise summed in event time from the sensor's increments
  (``precipitation_increment``) or from its hourly values (``precipitation_1h`` at whole-hour steps).
* ``river_stage`` — a river gauge's water level against that gauge's own published stages, mapped to
  the 5-level 警戒レベル (alert level) equivalents 2/3/4/5.
* ``rate_of_rise`` — how fast a level rises over a window (m per window).

Hysteresis: a level is entered at its threshold and left only when the value falls ``hysteresis``
below it, so a value wobbling around a threshold does not flap.

Stations may override a rule (``enabled``, ``hysteresis``, per-level ``thresholds``) in the pack's
``stations.yaml``.
"""

from __future__ import annotations

from bisect import bisect_left
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from operator import itemgetter

from streams.kernel.alerts import SHARING, Level
from streams.kernel.model import QUANTITY_UNITS, RiverStages, RuleOverride
from streams.kernel.times import HOUR_MS, MINUTE_MS

RULE_KINDS = ("band", "cumulative", "river_stage", "rate_of_rise")
SEVERITIES = ("Extreme", "Severe", "Moderate", "Minor", "Unknown")
URGENCIES = ("Immediate", "Expected", "Future", "Past", "Unknown")
CERTAINTIES = ("Observed", "Likely", "Possible", "Unlikely", "Unknown")
SHARING_LEVELS = tuple(SHARING)
RIVER_STAGE_KEYS = ("standby", "caution", "evacuation", "danger", "overflow")
QUANTITIES = QUANTITY_UNITS


@dataclass(frozen=True)
class Rule:
    id: str
    kind: str
    quantity: str
    unit: str
    levels: tuple[Level, ...]
    hysteresis: float
    sharing_level: str
    window_ms: int | None = None
    description: str = ""
    enabled: bool = True

    def level(self, name: str) -> Level:
        for level in self.levels:
            if level.name == name:
                return level
        raise KeyError(name)

    def with_overrides(self, overrides: RuleOverride) -> Rule:
        """This rule with a station's overrides (already validated) applied."""
        levels = self.levels
        thresholds = overrides.get("thresholds") or {}
        if thresholds:
            levels = tuple(replace(lv, threshold=_threshold(thresholds.get(lv.name), lv.threshold)) for lv in levels)
        return replace(
            self,
            levels=levels,
            hysteresis=float(overrides.get("hysteresis", self.hysteresis)),
            enabled=bool(overrides.get("enabled", self.enabled)),
        )


def _threshold(override: float | None, own: float | None) -> float | None:
    return own if override is None else float(override)


@dataclass(frozen=True)
class RuleSet:
    file: str  # where the rules were read from (for messages)
    rules: tuple[Rule, ...]

    def rule(self, rule_id: str) -> Rule:
        for rule in self.rules:
            if rule.id == rule_id:
                return rule
        raise KeyError(rule_id)

    @property
    def ids(self) -> tuple[str, ...]:
        return tuple(r.id for r in self.rules)


# -- evaluation ---------------------------------------------------------------------------------------


def rolling_sum_quantity(window_ms: int) -> str:
    """The quantity name of a rolling sum over window_ms: precipitation_3h, precipitation_24h …"""
    if window_ms % HOUR_MS == 0:
        return f"precipitation_{window_ms // HOUR_MS}h"
    return f"precipitation_{window_ms // MINUTE_MS}min"


# The quantities the windowed rules look back on, in the order a Sample holds them.
REMEMBERED = ("precipitation_1h", "precipitation_increment", "water_level")
P1H, INCREMENT, WATER_LEVEL = 1, 2, 3

# One past reading of a station as the rules remember it: (observed_at, precipitation_1h,
# precipitation_increment, water_level), None where the reading had no such value.
# A flat tuple of numbers, not a class or a dict: a hub holds about a day of samples for every
# station, and the garbage collector stops tracking tuples of atoms, while objects (or tuples
# holding a dict) are scanned on every full collection — that scanning took two thirds of the
# hub's time with 10,000 stations.
Sample = tuple[int, float | None, float | None, float | None]
_observed_at = itemgetter(0)


def sample_of(observed_at: int, values: Mapping[str, float | None]) -> Sample | None:
    """What the rules remember of a reading, or None when it has none of the remembered values."""
    get = values.get
    p1h, increment, level = get("precipitation_1h"), get("precipitation_increment"), get("water_level")
    if p1h is None and increment is None and level is None:
        return None
    return (observed_at, p1h, increment, level)


def measure(
    rule: Rule, observed_at: int, values: Mapping[str, float | None], history: Sequence[Sample]
) -> float | None:
    """The value a rule judges for this reading, or None when the reading gives it nothing to judge.

    ``history`` holds the station's earlier samples (oldest first), not the current one.
    """
    if rule.kind in ("band", "river_stage"):
        return values.get(rule.quantity)
    if rule.kind == "cumulative":
        reported = values.get(rule.quantity)
        if reported is not None:
            return reported
        start = observed_at - _window(rule)
        if "precipitation_increment" in values:
            increment = values["precipitation_increment"]
            if increment is None:
                return None
            earlier = 0.0
            for sample in reversed(history):  # newest first: stop at the window's start
                if sample[0] <= start:
                    break
                earlier += sample[INCREMENT] or 0.0
            return round(earlier + increment, 3)
        p1h = values.get("precipitation_1h")
        if p1h is not None and _window(rule) % HOUR_MS == 0:
            return round(p1h + _hourly_values_before(history, observed_at, start), 3)
        return None
    if rule.kind == "rate_of_rise":
        current = values.get("water_level")
        if current is None:
            return None
        start = observed_at - _window(rule)
        for sample in history:  # oldest first: the earliest level in the window
            earliest = sample[WATER_LEVEL]
            if sample[0] >= start and earliest is not None:
                return round(current - earliest, 3)
        return None
    raise ValueError(f"unknown rule kind {rule.kind}")


def _window(rule: Rule) -> int:
    """The window of a windowed rule (cumulative, rate_of_rise: the rule file requires one)."""
    if rule.window_ms is None:
        raise ValueError(f"rule {rule.id}: a {rule.kind} rule has no window")
    return rule.window_ms


def _hourly_values_before(history: Sequence[Sample], observed_at: int, start: int) -> float:
    """The sum of the 1-hour values observed at whole hours before ``observed_at`` (- 1 h, - 2 h, …)
    and after ``start``.

    Looked up hour by hour, newest first, not by walking the samples: a station reporting every 10
    minutes keeps 144 samples for a 24-hour window, of which 23 count. A station's cadence is regular,
    so the previous hour's distance in samples is tried first (one comparison); a binary search finds
    the hour when it is not there.
    """
    total = 0.0
    end = len(history)
    target = observed_at - HOUR_MS
    stride = 0  # samples between the last two hours found; 0 = unknown
    while target > start and end:
        i = end - stride
        if not (stride and i >= 0 and history[i][0] == target and (i == 0 or history[i - 1][0] < target)):
            i = bisect_left(history, target, 0, end, key=_observed_at)
            if i == end or history[i][0] != target:
                stride, end, target = 0, i, target - HOUR_MS  # no sample at that hour
                continue
        total += history[i][P1H] or 0.0
        stride, end = end - i, i  # the earlier hours lie before this one
        target -= HOUR_MS
    return total


def thresholds_for(rule: Rule, river_stages: RiverStages | None) -> list[float | None]:
    """Threshold of each level (lowest first) for one station; None where the station lacks the stage."""
    if rule.kind != "river_stage":
        return [lv.threshold for lv in rule.levels]
    if river_stages is None:
        return [None] * len(rule.levels)
    return [getattr(river_stages, f"{lv.stage}_m") for lv in rule.levels]


def next_rank(thresholds: Sequence[float | None], hysteresis: float, current: int, value: float) -> int:
    """The level (1-based rank, 0 = none) a value reaches, with hysteresis on the way down.

    Up: the highest level whose threshold the value reaches. Down: a level is kept while the value
    stays above its threshold minus the hysteresis, so values wobbling around a threshold do not flap.
    """
    up = 0  # plain loops: this runs for every rule of every reading
    for i, threshold in enumerate(thresholds):
        if threshold is not None and value >= threshold:
            up = i + 1
    if up >= current:
        return up
    down = 0
    for i in range(current):
        threshold = thresholds[i]
        if threshold is not None and value >= threshold - hysteresis:
            down = i + 1
    return down
