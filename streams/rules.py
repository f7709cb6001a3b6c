"""Threshold rules: the rule file format of a region pack, validated on load.

A rule file (``rules.yaml``) lists rules; each rule watches one measured quantity of a station and
maps its value to ordered levels:

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

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any


from streams.catalog import parse_duration_ms
from streams.configfile import read_yaml
from streams.errors import ConfigError

RULE_KINDS = ("band", "cumulative", "river_stage", "rate_of_rise")
SEVERITIES = ("Extreme", "Severe", "Moderate", "Minor", "Unknown")
URGENCIES = ("Immediate", "Expected", "Future", "Past", "Unknown")
CERTAINTIES = ("Observed", "Likely", "Possible", "Unlikely", "Unknown")
SHARING_LEVELS = ("public", "municipal", "internal")
RIVER_STAGE_KEYS = ("standby", "caution", "evacuation", "danger", "overflow")
QUANTITIES = {
    "precipitation_1h": "mm",
    "precipitation_3h": "mm",
    "precipitation_24h": "mm",
    "precipitation_increment": "mm",
    "water_level": "m",
}


@dataclass(frozen=True)
class Level:
    """One level of a rule, lowest first (rank 1)."""

    name: str
    rank: int
    threshold: float | None  # None for river_stage: the gauge's own stage decides
    event: str               # CAP event, e.g. 非常に激しい雨
    event_en: str
    severity: str
    urgency: str
    certainty: str
    warning_level: int | None = None
    stage: str | None = None  # river_stage only: which of the gauge's stages


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

    def with_overrides(self, overrides: Mapping[str, Any]) -> "Rule":
        """This rule with a station's overrides (already validated) applied."""
        levels = self.levels
        thresholds = overrides.get("thresholds") or {}
        if thresholds:
            levels = tuple(replace(l, threshold=float(thresholds.get(l.name, l.threshold))) for l in levels)
        return replace(self, levels=levels,
                       hysteresis=float(overrides.get("hysteresis", self.hysteresis)),
                       enabled=bool(overrides.get("enabled", self.enabled)))


@dataclass(frozen=True)
class RuleSet:
    file: Path
    rules: tuple[Rule, ...]

    def rule(self, rule_id: str) -> Rule:
        for rule in self.rules:
            if rule.id == rule_id:
                return rule
        raise KeyError(rule_id)

    @property
    def ids(self) -> tuple[str, ...]:
        return tuple(r.id for r in self.rules)


def _pick(entry: Mapping, key: str, choices: tuple[str, ...], default: str | None, *, file: Path, where: str) -> str:
    value = entry.get(key, default)
    if value not in choices:
        raise ConfigError(file, f"{key} is {value!r}", where=where, expected=" | ".join(choices))
    return value


def _number(value: Any, *, file: Path, where: str, what: str, minimum: float | None = None) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise ConfigError(file, f"{what} is {value!r}", where=where, expected="a number")
    if minimum is not None and value < minimum:
        raise ConfigError(file, f"{what} is {value}", where=where, expected=f">= {minimum}")
    return float(value)


def _load_level(entry: Any, rank: int, kind: str, *, file: Path, where: str) -> Level:
    if not isinstance(entry, dict):
        raise ConfigError(file, f"level is {entry!r}", where=where, expected="a mapping with name, threshold, event …")
    name = entry.get("name")
    if not isinstance(name, str) or not name.isidentifier():
        raise ConfigError(file, f"level name is {name!r}", where=where, expected="an identifier such as very_heavy")
    where = f"{where} level={name}"
    threshold = None
    stage = None
    if kind == "river_stage":
        stage = _pick(entry, "stage", RIVER_STAGE_KEYS, None, file=file, where=where)
        if "threshold" in entry:
            raise ConfigError(file, "river_stage levels take their threshold from each gauge", where=where,
                              expected="stage: caution | evacuation | danger | overflow, no threshold")
    else:
        if "threshold" not in entry:
            raise ConfigError(file, "missing key 'threshold'", where=where, expected="a number in the rule's unit")
        threshold = _number(entry["threshold"], file=file, where=where, what="threshold", minimum=0)
    warning_level = entry.get("warning_level")
    if warning_level is not None and (isinstance(warning_level, bool) or warning_level not in (1, 2, 3, 4, 5)):
        raise ConfigError(file, f"warning_level is {warning_level!r}", where=where, expected="1..5 (警戒レベル)")
    event = entry.get("event")
    if not isinstance(event, str) or not event:
        raise ConfigError(file, f"event is {event!r}", where=where, expected="a non-empty event name, e.g. 激しい雨")
    return Level(
        name=name, rank=rank, threshold=threshold, event=event, event_en=str(entry.get("event_en", name)),
        severity=_pick(entry, "severity", SEVERITIES, None, file=file, where=where),
        urgency=_pick(entry, "urgency", URGENCIES, "Immediate", file=file, where=where),
        certainty=_pick(entry, "certainty", CERTAINTIES, "Observed", file=file, where=where),
        warning_level=warning_level, stage=stage,
    )


def load_rules(path: Path) -> RuleSet:
    """Read and validate a rule file. Errors name the file, the rule and level, and what was expected."""
    doc = read_yaml(path, "rule file")
    if not isinstance(doc, dict) or doc.get("format") != 1:
        raise ConfigError(path, "not a rule file", where="format", expected="format: 1 and a list under rules")
    entries = doc.get("rules")
    if not isinstance(entries, list) or not entries:
        raise ConfigError(path, "no rules", where="rules", expected="a non-empty list")
    rules: list[Rule] = []
    seen: set[str] = set()
    for i, entry in enumerate(entries):
        where = f"rules[{i}]"
        if not isinstance(entry, dict):
            raise ConfigError(path, f"rule is {entry!r}", where=where, expected="a mapping")
        rule_id = entry.get("id")
        if not isinstance(rule_id, str) or not rule_id.isidentifier():
            raise ConfigError(path, f"id is {rule_id!r}", where=where, expected="an identifier such as rain_1h")
        where = f"rules[{i}] id={rule_id}"
        if rule_id in seen:
            raise ConfigError(path, f"duplicate rule id {rule_id!r}", where=where, expected="unique ids")
        seen.add(rule_id)
        kind = _pick(entry, "kind", RULE_KINDS, None, file=path, where=where)
        quantity = _pick(entry, "quantity", tuple(QUANTITIES), None, file=path, where=where)
        unit = QUANTITIES[quantity]
        if entry.get("unit", unit) != unit:
            raise ConfigError(path, f"unit is {entry.get('unit')!r} for {quantity}", where=where, expected=unit)
        window_ms = None
        if kind in ("cumulative", "rate_of_rise"):
            if "window" not in entry:
                raise ConfigError(path, "missing key 'window'", where=where, expected="a duration such as 3h")
            window_ms = parse_duration_ms(entry["window"], file=path, where=where)
            if window_ms <= 0:
                raise ConfigError(path, f"window is {entry['window']!r}", where=where, expected="a positive duration")
        elif "window" in entry:
            raise ConfigError(path, f"a {kind} rule has no window", where=where, expected="no 'window' key")
        if kind == "cumulative":
            rolling = rolling_sum_quantity(window_ms)
            if quantity != rolling:
                raise ConfigError(path, f"quantity is {quantity} for a {entry['window']} window", where=where,
                                  expected=f"{rolling} (the rolling sum the window stands for)")
        if kind == "rate_of_rise" and quantity != "water_level":
            raise ConfigError(path, f"quantity is {quantity}", where=where, expected="water_level for rate_of_rise")
        if kind == "river_stage" and quantity != "water_level":
            raise ConfigError(path, f"quantity is {quantity}", where=where, expected="water_level for river_stage")
        raw_levels = entry.get("levels")
        if not isinstance(raw_levels, list) or not raw_levels:
            raise ConfigError(path, "no levels", where=where, expected="a non-empty list, lowest level first")
        levels = tuple(_load_level(lv, rank, kind, file=path, where=where)
                       for rank, lv in enumerate(raw_levels, start=1))
        names = [lv.name for lv in levels]
        if len(set(names)) != len(names):
            raise ConfigError(path, f"duplicate level names {names}", where=where, expected="unique level names")
        if kind == "river_stage":
            order = [RIVER_STAGE_KEYS.index(lv.stage) for lv in levels]
            if order != sorted(set(order)):
                raise ConfigError(path, f"stages {[lv.stage for lv in levels]} are not in rising order", where=where,
                                  expected="a subset of standby < caution < evacuation < danger < overflow")
        else:
            thresholds = [lv.threshold for lv in levels]
            if any(b <= a for a, b in zip(thresholds, thresholds[1:])):
                raise ConfigError(path, f"thresholds {thresholds} do not rise", where=where,
                                  expected="strictly rising thresholds, lowest level first")
        hysteresis = _number(entry.get("hysteresis", 0), file=path, where=where, what="hysteresis", minimum=0)
        rules.append(Rule(
            id=rule_id, kind=kind, quantity=quantity, unit=unit, levels=levels, hysteresis=hysteresis,
            sharing_level=_pick(entry, "sharing_level", SHARING_LEVELS, "municipal", file=path, where=where),
            window_ms=window_ms, description=str(entry.get("description", "")),
            enabled=bool(entry.get("enabled", True)),
        ))
    return RuleSet(file=path, rules=tuple(rules))


def validate_overrides(rules: RuleSet, overrides: Any, *, file: Path, where: str) -> dict[str, dict]:
    """Check a station's ``rules:`` overrides against the rule set; return them normalised."""
    if overrides is None:
        return {}
    if not isinstance(overrides, dict):
        raise ConfigError(file, f"rules is {overrides!r}", where=where, expected="a mapping of rule id to overrides")
    out: dict[str, dict] = {}
    for rule_id, override in overrides.items():
        spot = f"{where} rules.{rule_id}"
        if rule_id not in rules.ids:
            raise ConfigError(file, f"unknown rule {rule_id!r}", where=spot, expected=f"one of {list(rules.ids)}")
        if not isinstance(override, dict) or set(override) - {"enabled", "hysteresis", "thresholds"}:
            raise ConfigError(file, f"override is {override!r}", where=spot,
                              expected="keys enabled, hysteresis, thresholds")
        rule = rules.rule(rule_id)
        thresholds = override.get("thresholds") or {}
        if not isinstance(thresholds, dict):
            raise ConfigError(file, f"thresholds is {thresholds!r}", where=spot, expected="level name -> number")
        for level_name, value in thresholds.items():
            if level_name not in [lv.name for lv in rule.levels]:
                raise ConfigError(file, f"unknown level {level_name!r}", where=spot,
                                  expected=f"one of {[lv.name for lv in rule.levels]}")
            _number(value, file=file, where=spot, what=f"thresholds.{level_name}", minimum=0)
        merged = rule.with_overrides(override)
        values = [lv.threshold for lv in merged.levels if lv.threshold is not None]
        if any(b <= a for a, b in zip(values, values[1:])):
            raise ConfigError(file, f"thresholds {values} do not rise after the override", where=spot,
                              expected="strictly rising thresholds")
        if "hysteresis" in override:
            _number(override["hysteresis"], file=file, where=spot, what="hysteresis", minimum=0)
        out[rule_id] = dict(override)
    return out


# -- evaluation (pure) -------------------------------------------------------------------------------

HOUR_MS = 3_600_000


def rolling_sum_quantity(window_ms: int) -> str:
    """The quantity name of a rolling sum over window_ms: precipitation_3h, precipitation_24h …"""
    if window_ms % HOUR_MS == 0:
        return f"precipitation_{window_ms // HOUR_MS}h"
    return f"precipitation_{window_ms // 60_000}min"


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


def sample_of(observed_at: int, values: Mapping[str, float | None]) -> Sample | None:
    """What the rules remember of a reading, or None when it has none of the remembered values."""
    remembered = tuple(map(values.get, REMEMBERED))
    if remembered == (None, None, None):
        return None
    return (observed_at, *remembered)


def measure(rule: Rule, observed_at: int, values: Mapping[str, float | None],
            history: Sequence[Sample]) -> float | None:
    """The value a rule judges for this reading, or None when the reading gives it nothing to judge.

    ``history`` holds the station's earlier samples (oldest first), not the current one.
    """
    if rule.kind in ("band", "river_stage"):
        return values.get(rule.quantity)
    if rule.kind == "cumulative":
        reported = values.get(rule.quantity)
        if reported is not None:
            return reported
        start = observed_at - rule.window_ms
        if "precipitation_increment" in values:
            if values["precipitation_increment"] is None:
                return None
            earlier = 0.0
            for sample in reversed(history):   # newest first: stop at the window's start
                if sample[0] <= start:
                    break
                earlier += sample[INCREMENT] or 0.0
            return round(earlier + values["precipitation_increment"], 3)
        if values.get("precipitation_1h") is not None and rule.window_ms % HOUR_MS == 0:
            # the hourly values at whole hours before this reading: observed_at - 1 h, - 2 h, …
            total = values["precipitation_1h"]
            for sample in reversed(history):   # newest first: stop at the window's start
                if sample[0] <= start:
                    break
                if (observed_at - sample[0]) % HOUR_MS == 0:
                    total += sample[P1H] or 0.0
            return round(total, 3)
        return None
    if rule.kind == "rate_of_rise":
        current = values.get("water_level")
        if current is None:
            return None
        start = observed_at - rule.window_ms
        for sample in history:   # oldest first: the earliest level in the window
            if sample[0] >= start and sample[WATER_LEVEL] is not None:
                return round(current - sample[WATER_LEVEL], 3)
        return None
    raise ValueError(f"unknown rule kind {rule.kind}")


def thresholds_for(rule: Rule, river_stages: Any | None) -> list[float | None]:
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
    up = 0   # plain loops: this runs for every rule of every reading
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
