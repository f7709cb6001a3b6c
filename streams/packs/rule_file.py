"""Rule files (``rules.yaml`` of a region pack): read, validate, and resolve into a :class:`RuleSet`.

Every mistake names the file, the rule (and level), and what was expected. Stations may override a
rule (``enabled``, ``hysteresis``, per-level ``thresholds``) in the pack's ``stations.yaml``;
``validate_overrides`` checks those against the rule set.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from streams.kernel.alerts import Level
from streams.kernel.errors import ConfigError
from streams.kernel.model import RuleOverride
from streams.kernel.rules import (
    CERTAINTIES,
    QUANTITIES,
    RIVER_STAGE_KEYS,
    RULE_KINDS,
    SEVERITIES,
    SHARING_LEVELS,
    URGENCIES,
    Rule,
    RuleSet,
    rolling_sum_quantity,
)
from streams.platform.checks import Entry
from streams.platform.durations import parse_duration_ms
from streams.platform.yamlfile import read_yaml


def _load_level(raw: Any, rank: int, kind: str, rule: Entry) -> Level:
    entry = Entry(raw, rule.file, rule.where, expected="a mapping with name, threshold, event …")
    name = entry.get("name")
    if not isinstance(name, str) or not name.isidentifier():
        raise entry.error(f"level name is {name!r}", "an identifier such as very_heavy")
    entry = entry.at(f"{rule.where} level={name}")
    threshold = stage = None
    if kind == "river_stage":
        stage = entry.choice("stage", RIVER_STAGE_KEYS, default=None)
        if "threshold" in entry:
            raise entry.error(
                "river_stage levels take their threshold from each gauge",
                "stage: caution | evacuation | danger | overflow, no threshold",
            )
    else:
        threshold = entry.number("threshold", expected="a number in the rule's unit", minimum=0)
    warning_level = entry.get("warning_level")
    if warning_level is not None and (isinstance(warning_level, bool) or warning_level not in (1, 2, 3, 4, 5)):
        raise entry.error(f"warning_level is {warning_level!r}", "1..5 (警戒レベル)")
    return Level(
        name=name,
        rank=rank,
        threshold=threshold,
        event=entry.text("event", expected="a non-empty event name, e.g. 激しい雨"),
        event_en=str(entry.get("event_en", name)),
        severity=entry.choice("severity", SEVERITIES, default=None),
        urgency=entry.choice("urgency", URGENCIES, default="Immediate"),
        certainty=entry.choice("certainty", CERTAINTIES, default="Observed"),
        warning_level=warning_level,
        stage=stage,
    )


def _window_ms(entry: Entry, kind: str, quantity: str) -> int | None:
    """The event-time window of a cumulative or rate_of_rise rule (None for the others)."""
    if kind not in ("cumulative", "rate_of_rise"):
        if "window" in entry:
            raise entry.error(f"a {kind} rule has no window", "no 'window' key")
        return None
    if "window" not in entry:
        raise entry.error("missing key 'window'", "a duration such as 3h")
    window_ms = parse_duration_ms(entry.get("window"), file=entry.file, where=entry.where, what="window")
    if window_ms <= 0:
        raise entry.error(f"window is {entry.get('window')!r}", "a positive duration")
    if kind == "cumulative" and quantity != rolling_sum_quantity(window_ms):
        raise entry.error(
            f"quantity is {quantity} for a {entry.get('window')} window",
            f"{rolling_sum_quantity(window_ms)} (the rolling sum the window stands for)",
        )
    return window_ms


def _check_order(entry: Entry, kind: str, levels: tuple[Level, ...]) -> None:
    names = [lv.name for lv in levels]
    if len(set(names)) != len(names):
        raise entry.error(f"duplicate level names {names}", "unique level names")
    if kind == "river_stage":
        order = [RIVER_STAGE_KEYS.index(lv.stage) for lv in levels]
        if order != sorted(set(order)):
            raise entry.error(
                f"stages {[lv.stage for lv in levels]} are not in rising order",
                "a subset of standby < caution < evacuation < danger < overflow",
            )
        return
    thresholds = [lv.threshold for lv in levels if lv.threshold is not None]  # (every level of these kinds has one)
    if any(b <= a for a, b in zip(thresholds, thresholds[1:], strict=False)):
        raise entry.error(f"thresholds {thresholds} do not rise", "strictly rising thresholds, lowest level first")


def _load_rule(raw: Any, i: int, file: Path) -> Rule:
    entry = Entry(raw, file, f"rules[{i}]")
    rule_id = entry.get("id")
    if not isinstance(rule_id, str) or not rule_id.isidentifier():
        raise entry.error(f"id is {rule_id!r}", "an identifier such as rain_1h")
    entry = entry.at(f"rules[{i}] id={rule_id}")
    kind = entry.choice("kind", RULE_KINDS, default=None)
    quantity = entry.choice("quantity", tuple(QUANTITIES), default=None)
    if entry.get("unit", QUANTITIES[quantity]) != QUANTITIES[quantity]:
        raise entry.error(f"unit is {entry.get('unit')!r} for {quantity}", QUANTITIES[quantity])
    if kind in ("rate_of_rise", "river_stage") and quantity != "water_level":
        raise entry.error(f"quantity is {quantity}", f"water_level for {kind}")
    window_ms = _window_ms(entry, kind, quantity)
    raw_levels = entry.get("levels")
    if not isinstance(raw_levels, list) or not raw_levels:
        raise entry.error("no levels", "a non-empty list, lowest level first")
    levels = tuple(_load_level(lv, rank, kind, entry) for rank, lv in enumerate(raw_levels, start=1))
    _check_order(entry, kind, levels)
    return Rule(
        id=rule_id,
        kind=kind,
        quantity=quantity,
        unit=QUANTITIES[quantity],
        levels=levels,
        hysteresis=entry.number("hysteresis", minimum=0, default=0),
        sharing_level=entry.choice("sharing_level", SHARING_LEVELS, default="municipal"),
        window_ms=window_ms,
        description=str(entry.get("description", "")),
        enabled=bool(entry.get("enabled", True)),
    )


def load_rules(path: Path) -> RuleSet:
    """Read and validate a rule file. Errors name the file, the rule and level, and what was expected."""
    doc = read_yaml(path, "rule file")
    if not isinstance(doc, dict) or doc.get("format") != 1:
        raise ConfigError(path, "not a rule file", where="format", expected="format: 1 and a list under rules")
    rules: list[Rule] = []
    for i, raw in Entry(doc, path).entries("rules", expected="a non-empty list"):
        rule = _load_rule(raw, i, path)
        if rule.id in {r.id for r in rules}:
            raise ConfigError(
                path, f"duplicate rule id {rule.id!r}", where=f"rules[{i}] id={rule.id}", expected="unique ids"
            )
        rules.append(rule)
    return RuleSet(file=str(path), rules=tuple(rules))


def validate_overrides(rules: RuleSet, overrides: Any, *, file: Path, where: str) -> dict[str, RuleOverride]:
    """Check a station's ``rules:`` overrides against the rule set; return them normalised."""
    if overrides is None:
        return {}
    if not isinstance(overrides, dict):
        raise ConfigError(file, f"rules is {overrides!r}", where=where, expected="a mapping of rule id to overrides")
    out: dict[str, RuleOverride] = {}
    for rule_id, override in overrides.items():
        spot = f"{where} rules.{rule_id}"
        if rule_id not in rules.ids:
            raise ConfigError(file, f"unknown rule {rule_id!r}", where=spot, expected=f"one of {list(rules.ids)}")
        if not isinstance(override, dict) or set(override) - {"enabled", "hysteresis", "thresholds"}:
            raise ConfigError(
                file, f"override is {override!r}", where=spot, expected="keys enabled, hysteresis, thresholds"
            )
        entry = Entry(override, file, spot)
        rule = rules.rule(rule_id)
        level_names = [lv.name for lv in rule.levels]
        thresholds = entry.child("thresholds", expected="level name -> number")
        for level_name in thresholds.value:
            if level_name not in level_names:
                raise entry.error(f"unknown level {level_name!r}", f"one of {level_names}")
            thresholds.number(level_name, minimum=0)
        normalised = _override(override)
        values = [lv.threshold for lv in rule.with_overrides(normalised).levels if lv.threshold is not None]
        if any(b <= a for a, b in zip(values, values[1:], strict=False)):
            raise entry.error(f"thresholds {values} do not rise after the override", "strictly rising thresholds")
        if "hysteresis" in override:
            entry.number("hysteresis", minimum=0)
        out[rule_id] = normalised
    return out


def _override(raw: dict[str, Any]) -> RuleOverride:
    """A station's override of one rule as the rules take it (its keys already checked)."""
    override = RuleOverride()
    if "enabled" in raw:
        override["enabled"] = raw["enabled"]
    if "hysteresis" in raw:
        override["hysteresis"] = raw["hysteresis"]
    if "thresholds" in raw:
        override["thresholds"] = raw["thresholds"]
    return override
