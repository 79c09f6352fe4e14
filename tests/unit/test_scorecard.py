"""The detection scorecard on simulated days (bench/detection.py runs the full week)."""

from __future__ import annotations

from edge.simulator.factory import FAULT_KINDS, FactoryModel
from edge.simulator.scorecard import START_TS, false_alerts_per_sensor_day, run_detectors, score


def test_every_fault_kind_is_found_and_spikes_fast() -> None:
    model = FactoryModel(seed=42, period_s=10.0)
    faults = model.schedule_faults(START_TS, 1.5 * 86_400)
    alerts = run_detectors(model, 1.5 * 86_400, faults)
    scores = score(faults, alerts, model.period_s)
    for kind in FAULT_KINDS:
        assert scores[kind].faults >= 2, kind
        assert scores[kind].recall >= 0.95, (kind, scores[kind])
    assert scores["spike"].median_readings_to_detect <= 3
    assert scores["out_of_range"].median_readings_to_detect <= 3
    assert any(a.detector == "asset_model" for a in alerts), "relation breaks reach the asset model"


def test_fault_free_data_raises_few_alerts() -> None:
    # The week-long bench target is 0.05 per sensor-day; one day allows for chance.
    assert false_alerts_per_sensor_day(FactoryModel(seed=43, period_s=10.0), days=1.0) <= 0.2


def test_the_simulated_fault_schedule_is_reproducible() -> None:
    first = FactoryModel(seed=5).schedule_faults(START_TS, 86_400)
    again = FactoryModel(seed=5).schedule_faults(START_TS, 86_400)
    other = FactoryModel(seed=6).schedule_faults(START_TS, 86_400)
    assert first == again and first != other
