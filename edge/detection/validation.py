"""Validation: a candidate anomaly becomes an alert only when it passes these checks.

In order, for a candidate of one (sensor, detector) that has no open alert:

1. datasheet findings (limits, configured rate) are accepted at once: `datasheet`;
2. history: a level (outlier level, drift) that was routine at this time of day on two of the
   last six days is not an anomaly now; the reading does not count (`routine` if the episode
   never gets further);
3. an extreme candidate (rarer than the budget divided by `extreme_factor`) is accepted at once,
   so one- and two-reading spikes are caught: `extreme`;
4. corroboration, within `corroboration_s` (at least two reading periods), for an asset whose
   sensors share a mode: a sensor's candidate by the asset model's (their relation broke):
   `corroborated` (the engine then opens the asset model's alert, filed under that sensor
   and naming the contributors, not a second alert of the sensor's own; while that alert
   names the sensor, its non-extreme candidates are the same episode). Sensors that merely
   move together while their relation holds are the
   asset's operating point changing (load, duty), not evidence of a fault; independent sensors
   corroborate nothing, and the asset model's own candidates must persist or be extreme (the
   sensors' candidates are the very deviation it sees, not independent evidence);
5. persistence: `persist_readings` candidate readings in one episode: `persistent`.

An episode ends, rejected as `transient` (or `routine`), after `persist_gap_readings` readings
of that detector that were not candidates. Every episode is counted once by its outcome
(`candidate_counts`), and an accepted alert records why in its details (`accepted_because`).
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from typing import Literal, NamedTuple

from edge.detection.history import LevelHistory
from edge.detection.settings import ValidationSettings

Relations = Literal["unknown", "related", "independent"]  # what the asset model knows
ASSET_SOURCE = "@asset_model"  # the asset model's name among an asset's candidate sources
LEVEL_KINDS = frozenset({"level", "shift", "change"})
ACCEPT_REASONS = ("datasheet", "extreme", "corroborated", "persistent")
REJECT_REASONS = ("transient", "routine")


class Candidate(NamedTuple):
    """One candidate reading of one detector, as validation needs to see it."""

    source: str  # the sensor id (or the asset model's episode key)
    asset_id: str | None
    detector: str
    kind: str  # the feature that decided (level, shift, change, stuck, spe, ...)
    ts: float
    value: float
    extreme: bool = False
    datasheet: bool = False
    persist: int = 1  # candidate readings this detector needs (a drift: half its span)
    period_s: float = 0.0


@dataclass(slots=True)
class _Episode:
    candidates: int = 0
    quiet: int = 0
    routine: bool = False


class Validator:
    """Candidate episodes per (sensor, detector) and recent candidates per asset."""

    def __init__(self, settings: ValidationSettings) -> None:
        self._persist = settings.persist_readings
        self._gap = settings.persist_gap_readings
        self._corroboration_s = settings.corroboration_s
        self._history_check = settings.history_check
        self._episodes: dict[str, dict[str, _Episode]] = {}
        self._recent: dict[str, dict[str, float]] = {}  # asset -> source -> last candidate ts
        self.counts: Counter[str] = Counter()

    def pending(self, sensor_id: str) -> bool:
        return sensor_id in self._episodes

    def note_candidate(self, asset_id: str | None, source: str, ts: float) -> None:
        """Remember a candidate of `source` (a sensor, or the asset model) for corroboration."""
        if asset_id is not None:
            self._recent.setdefault(asset_id, {})[source] = ts

    def forget_candidates(self, asset_id: str, source: str) -> None:
        """`source`'s recent candidate corroborates nothing more (its alert has ended)."""
        recent = self._recent.get(asset_id)
        if recent is not None:
            recent.pop(source, None)

    def consider(self, candidate: Candidate, history: LevelHistory | None = None,
                 relations: Relations = "unknown") -> str | None:
        """The accept reason if this candidate reading opens an alert now, else None."""
        source, detector = candidate.source, candidate.detector
        if candidate.datasheet:
            return self._accepted(source, detector, "datasheet")
        episode = self._episodes.setdefault(source, {}).setdefault(detector, _Episode())
        episode.quiet = 0
        if self._history_check and history is not None and candidate.kind in LEVEL_KINDS \
                and history.routine(candidate.ts, candidate.value):
            episode.routine = True
            return None
        if candidate.extreme:
            return self._accepted(source, detector, "extreme")
        if self._corroborated(source, candidate.asset_id, candidate.ts, candidate.period_s,
                              relations):
            return self._accepted(source, detector, "corroborated")
        episode.candidates += 1
        if episode.candidates >= max(self._persist, candidate.persist):
            return self._accepted(source, detector, "persistent")
        return None

    def quiet(self, sensor_id: str, detectors: frozenset[str] | set[str]) -> None:
        """`detectors` of `sensor_id` judged a reading that was not a candidate."""
        episodes = self._episodes.get(sensor_id)
        if episodes is None:
            return
        for detector in [d for d in episodes if d in detectors]:
            episode = episodes[detector]
            episode.quiet += 1
            if episode.quiet >= self._gap:
                self.counts["rejected_routine" if episode.routine and not episode.candidates
                            else "rejected_transient"] += 1
                del episodes[detector]
        if not episodes:
            del self._episodes[sensor_id]

    def forget(self, sensor_id: str) -> None:
        """Drop a released sensor's episodes (they end unjudged, counted as transient)."""
        episodes = self._episodes.pop(sensor_id, {})
        self.counts["rejected_transient"] += len(episodes)

    def _accepted(self, sensor_id: str, detector: str, reason: str) -> str:
        episodes = self._episodes.get(sensor_id)
        if episodes is not None:
            episodes.pop(detector, None)
            if not episodes:
                del self._episodes[sensor_id]
        self.counts["accepted_" + reason] += 1
        return reason

    def _corroborated(self, sensor_id: str, asset_id: str | None, ts: float, period_s: float,
                      relations: Relations) -> bool:
        recent = self._recent.get(asset_id) if asset_id is not None else None
        if not recent or relations != "related":
            return False
        window_s = max(self._corroboration_s, 2.0 * period_s)
        # Sensors moving together while their relation holds is the asset's operating point
        # changing (load, duty), not a fault: only the asset model corroborates a sensor.
        seen = recent.get(ASSET_SOURCE)
        return seen is not None and 0.0 <= ts - seen <= window_s
