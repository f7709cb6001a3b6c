"""The alert lifecycle: a pure state machine per station and rule, driven by event time only.

``evaluate_reading`` takes a station's state and one reading and returns the new state and the
transitions it caused: raise (CAP Alert), escalate / de-escalate (Update), clear (Cancel) — exactly
one per change of level. Alert ids are derived from region, rule, station and the event time that
opened the episode, so a replay or a redelivery produces the same ids with the same content.

Readings that are not newer than the last one processed for the station (redeliveries, late
arrivals) change nothing: replaying the same data at any speed gives the same result.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import orjson

from streams.kernel.alerts import Level, Transition, alert_id_for, references_of
from streams.kernel.model import Station
from streams.kernel.rules import Rule, RuleSet, Sample, measure, next_rank, sample_of, thresholds_for


@dataclass(frozen=True)
class RuleState:
    """Where one rule stands for one station."""

    rank: int = 0  # current level, 0 = no alert
    alert_id: str | None = None  # the open episode
    sequence: int = -1  # last message sequence of the episode
    sent_at: int | None = None  # event time of that last message (CAP references need it)


@dataclass(frozen=True)
class StationState:
    """Everything the rules remember about a station; JSON-serialisable for the Faust table."""

    last_observed_at: int | None = None
    history: tuple[Sample, ...] = ()
    rules: Mapping[str, RuleState] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        return {
            "last_observed_at": self.last_observed_at,
            "history": self.history,  # [observed_at, precipitation_1h, precipitation_increment, water_level]
            "rules": {k: [v.rank, v.alert_id, v.sequence, v.sent_at] for k, v in self.rules.items()},
        }

    def to_bytes(self) -> bytes:
        """The table value: the JSON document as bytes (one object the garbage collector ignores)."""
        return orjson.dumps(self.to_json())

    @classmethod
    def from_json(cls, doc: Mapping[str, Any] | bytes | None) -> StationState:
        if not doc:
            return cls()
        document: Mapping[str, Any] = orjson.loads(doc) if isinstance(doc, (bytes, bytearray)) else doc
        samples = (_sample(entry) for entry in document.get("history", []))
        return cls(
            last_observed_at=document.get("last_observed_at"),
            history=tuple(sample for sample in samples if sample is not None),
            rules={
                k: RuleState(rank=r[0], alert_id=r[1], sequence=r[2], sent_at=r[3] if len(r) > 3 else None)
                for k, r in document.get("rules", {}).items()
            },
        )


@dataclass(frozen=True)
class StationChange:
    """One message of one station's alert episode: what a rule's new level makes of it."""

    alert_id: str
    sequence: int
    transition: Transition
    references: str | None
    references_observed_at: int | None  # event time of the referenced message
    rule: Rule
    level: Level  # the level reached; for CLEARED, the level that was cleared
    rank: int  # 0 when cleared
    value: float
    threshold: float | None
    observed_at: int
    station_id: str

    @property
    def msg_type(self) -> str:
        return self.transition.msg_type


def step(
    state: RuleState,
    new_rank: int,
    *,
    region: str,
    rule: Rule,
    station_id: str,
    observed_at: int,
    value: float,
    thresholds: Sequence[float | None],
) -> tuple[RuleState, StationChange]:
    """Move one rule's state to new_rank (another rank than its own); return the transition it makes."""
    if new_rank == state.rank:
        raise ValueError(f"rule {rule.id} at {station_id}: already at rank {new_rank}, no transition to make")
    kind = Transition.between(state.rank, new_rank)
    if state.rank == 0 or state.alert_id is None:  # (an open alert always has its id)
        alert_id, sequence, references = alert_id_for(region, rule.id, station_id, observed_at), 0, None
        references_at = None
    else:
        alert_id, sequence = state.alert_id, state.sequence + 1
        references = references_of(alert_id, state.sequence)
        references_at = state.sent_at
    level = rule.levels[(new_rank or state.rank) - 1]
    transition = StationChange(
        alert_id=alert_id,
        sequence=sequence,
        transition=kind,
        references=references,
        references_observed_at=references_at,
        rule=rule,
        level=level,
        rank=new_rank,
        value=value,
        threshold=thresholds[(new_rank or state.rank) - 1],
        observed_at=observed_at,
        station_id=station_id,
    )
    if new_rank == 0:
        return RuleState(), transition
    return RuleState(rank=new_rank, alert_id=alert_id, sequence=sequence, sent_at=observed_at), transition


def history_span_ms(rules: RuleSet, values: Mapping[str, float | None] | None = None) -> int:
    """How far back a station's samples are needed by the windowed rules.

    A cumulative rule whose rolling sum the station reports itself (AMeDAS sends the 24-hour sum)
    needs no history, so such a station keeps only what the other windows need.
    """
    span = 0
    for rule in rules.rules:
        if not rule.window_ms:
            continue
        if rule.kind == "cumulative" and values is not None and values.get(rule.quantity) is not None:
            continue
        if rule.kind == "rate_of_rise" and values is not None and "water_level" not in values:
            continue
        span = max(span, rule.window_ms)
    return span


def station_rules(station: Station, rules: RuleSet) -> tuple[tuple[Rule, list[float | None]], ...]:
    """The station's enabled rules with their overrides applied and thresholds resolved (cacheable)."""
    out = []
    for base_rule in rules.rules:
        rule = (
            base_rule.with_overrides(station.rule_overrides[base_rule.id])
            if base_rule.id in station.rule_overrides
            else base_rule
        )
        if not rule.enabled or (rule.kind == "river_stage" and station.river_stages is None):
            continue
        out.append((rule, thresholds_for(rule, station.river_stages)))
    return tuple(out)


def evaluate_reading(
    state: StationState,
    *,
    region: str,
    station: Station,
    rules: RuleSet,
    observed_at: int,
    values: Mapping[str, float | None],
    compiled: tuple[tuple[Rule, list[float | None]], ...] | None = None,
) -> tuple[StationState, list[StationChange]]:
    """Apply every enabled rule of the station to one reading, in event time.

    Not newer than the last reading: nothing changes (idempotent redelivery). A missing value leaves
    the rule's state as it is: gaps neither raise nor clear alerts. ``compiled`` is
    ``station_rules(station, rules)``, passed in by callers that cache it.
    """
    if state.last_observed_at is not None and observed_at <= state.last_observed_at:
        return state, []
    transitions: list[StationChange] = []
    rule_states = dict(state.rules)
    for rule, thresholds in compiled if compiled is not None else station_rules(station, rules):
        value = measure(rule, observed_at, values, state.history)
        if value is None:
            continue
        current = rule_states.get(rule.id, _NO_ALERT)
        new_rank = next_rank(thresholds, rule.hysteresis, current.rank, value)
        if new_rank == current.rank:
            continue
        new_state, transition = step(
            current,
            new_rank,
            region=region,
            rule=rule,
            station_id=station.station_id,
            observed_at=observed_at,
            value=value,
            thresholds=thresholds,
        )
        transitions.append(transition)
        if new_state.rank == 0:
            rule_states.pop(rule.id, None)
        else:
            rule_states[rule.id] = new_state
    horizon = observed_at - history_span_ms(rules, values)
    past = state.history  # oldest first: drop the samples at or before the horizon
    first = 0
    while first < len(past) and past[first][0] <= horizon:
        first += 1
    kept = past[first:]
    remembered = sample_of(observed_at, values)
    history = kept + (remembered,) if remembered is not None and horizon < observed_at else kept
    return StationState(last_observed_at=observed_at, history=history, rules=rule_states), transitions


_NO_ALERT = RuleState()


def _sample(entry: Sequence[Any]) -> Sample | None:
    """A history entry of the table: [t, p1h, increment, level], or [t, {quantity: value}] as written
    before samples were flat (None when such an entry holds none of the remembered values)."""
    if len(entry) == 2 and isinstance(entry[1], Mapping):
        return sample_of(entry[0], entry[1])
    t, p1h, increment, level = entry
    return (t, p1h, increment, level)
