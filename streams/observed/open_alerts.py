"""bosai_open_alerts kept up to date from the station states a batch changed (the observed lifecycle's view)."""

from __future__ import annotations

from collections.abc import Mapping

from streams.kernel.region import RegionPack
from streams.observed.lifecycle import StationState
from streams.platform.metrics import OPEN_ALERTS


class OpenAlerts:
    """bosai_open_alerts kept up to date incrementally from each station's old and new state."""

    def __init__(self, pack: RegionPack) -> None:
        self.pack = pack
        self.by_station: dict[str, set[tuple[str, str, str]]] = {}
        self.counts: dict[tuple[str, str, str], int] = {}

    def _labels(self, station_id: str, state: StationState) -> set[tuple[str, str, str]]:
        station = self.pack.stations.get(station_id)
        if station is None:
            return set()
        return {
            (rule_id, self.pack.rules.rule(rule_id).levels[rs.rank - 1].name, station.home_code)
            for rule_id, rs in state.rules.items()
            if rs.rank > 0
        }

    def update(self, changed: Mapping[str, StationState]) -> None:
        touched: set[tuple[str, str, str]] = set()
        for station_id, state in changed.items():
            if not state.rules and not self.by_station.get(station_id):
                continue  # no alert before or after: the common case, kept cheap
            new = self._labels(station_id, state)
            old = self.by_station.get(station_id, set())
            for key in old - new:
                self.counts[key] -= 1
                touched.add(key)
            for key in new - old:
                self.counts[key] = self.counts.get(key, 0) + 1
                touched.add(key)
            self.by_station[station_id] = new
        for rule_id, level, code in touched:
            OPEN_ALERTS.labels(self.pack.name, rule_id, level, code).set(self.counts[(rule_id, level, code)])
