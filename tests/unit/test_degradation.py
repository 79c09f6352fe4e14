"""The slow-degradation scenarios: seeded, monotonic, past the limit; and the scoring."""

from __future__ import annotations

from edge.prediction.settings import PredictionSettings
from edge.simulator.degradation import WARMUP_S, lead_times, scenarios
from edge.simulator.factory import FactoryModel


def test_scenarios_are_frozen_monotonic_and_end_past_the_limit() -> None:
    first, again = scenarios(FactoryModel(), 6, WARMUP_S), scenarios(FactoryModel(), 6, WARMUP_S)
    assert first == again, "seeded: comparable across changes"
    assert {d.shape for d in first} == {"linear", "accelerating"}
    for degradation in first:
        limit = degradation.sensor.limits.max
        assert limit is not None
        steps = [degradation.offset(degradation.start + k * degradation.duration_s / 50)
                 for k in range(51)]
        assert steps == sorted(steps) and steps[0] == 0.0
        typical = degradation.sensor.base + degradation.sensor.load_gain * 0.5
        assert typical + steps[-1] > limit
        assert 3 * 3600 <= degradation.duration_s <= 12 * 3600


def test_forecasts_come_before_the_crossing_and_never_before_the_degradation() -> None:
    leads = lead_times(PredictionSettings(), count=2)
    assert len(leads.leads_s) == 2 and leads.missed == 0
    assert all(3600 <= lead <= 12 * 3600 for lead in leads.leads_s)
