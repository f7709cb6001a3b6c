"""What one batch of a pipeline produces: the records to write, the new states, and the figures for the metrics.

Both pipelines (observed readings, official reports) return a :class:`BatchResult`; the worker writes its
records and states in one Kafka transaction per input partition and feeds its figures to the metrics.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Generic, Protocol, TypeVar

from streams.kernel.alerts import Alert
from streams.kernel.dead_letters import dead_letter_record
from streams.kernel.messages import AvroRecord, Message, OutRecord


class KeyState(Protocol):
    """A key's state as a worker keeps it on its state changelog."""

    def to_bytes(self) -> bytes: ...


StateT = TypeVar("StateT", bound=KeyState)
ChangeT = TypeVar("ChangeT")


@dataclass(frozen=True)
class AlertOut(Generic[ChangeT]):
    """An alert event as emitted: the lifecycle's change behind it, the Alert, its record, and where it went."""

    change: ChangeT  # a station's change (observed) or an area's (a relayed JMA report)
    alert: Alert
    record: AvroRecord  # the Alert record
    topics: tuple[str, ...]


@dataclass
class BatchResult(Generic[StateT, ChangeT]):
    """One batch's outcome; ``StateT`` is the pipeline's state of a key, ``ChangeT`` a change behind an alert."""

    records: list[OutRecord] = field(default_factory=list)
    # new states by key: StationState (readings) or OfficialState (official reports)
    states: dict[str, StateT] = field(default_factory=dict)
    dead_letters: dict[str, int] = field(default_factory=dict)  # reason -> count
    alerts: list[AlertOut[ChangeT]] = field(default_factory=list)
    readings_valid: int = 0
    readings_missing: int = 0  # valid readings without a value (JMA gaps)
    readings_stale: int = 0  # not newer than the station's last reading: no rule effect
    geofence_nearest: int = 0
    geofence_none: int = 0
    event_time_max: int | None = None
    produced_at: list[int] = field(default_factory=list)
    station_times: dict[str, int] = field(default_factory=dict)  # latest observed_at per station
    reports: dict[str, int] = field(default_factory=dict)  # official reports: "<rule>/<outcome>" -> count
    areas_skipped: int = 0  # official reports: areas of other prefectures

    def dead_letter(
        self, message: Message, reason: str, detail: str, *, stage: str, failed_at: int, worker: str
    ) -> AvroRecord:
        """Count a refused message and return its DeadLetter record: the original bytes, where they came
        from, why and by whom (every pipeline's dead letters have this one shape)."""
        self.dead_letters[reason] = self.dead_letters.get(reason, 0) + 1
        return dead_letter_record(
            message, reason=reason, detail=detail, stage=stage, failed_at=failed_at, worker=worker
        )
