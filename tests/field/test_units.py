"""Review of field trial item 19: unit spellings are folded only where case means nothing."""

from __future__ import annotations

import pytest

from edge.errors import PayloadError
from edge.ingest.topics import TopicContext
from edge.ingest.validation import ReadingValidator
from edge.settings import IngestLimits, SensorSettings
from edge.units import canonical_unit

CONTEXT = TopicContext("t", None, None)


@pytest.mark.parametrize(("sent", "canonical"), [
    ("MPa", "MPa"), ("mPa", None),  # megapascal is not millipascal
    ("mV", "mV"), ("MV", None),  # millivolt is not megavolt
    ("ms", None), ("Ms", None),  # neither is a unit here; neither becomes one
    ("mA", "mA"), ("MA", None), ("mbar", "mbar"), ("MBAR", None),
    ("DEGC", "degC"), ("°C", "degC"), ("BAR", "bar"), ("KPA", "kPa"), ("RPM", "rpm"),
    ("hz", "Hz"), ("pA", None),  # picoampere is not pascal
])
def test_case_is_folded_only_where_it_is_unambiguous(sent: str, canonical: str | None) -> None:
    """Review of item 19: case folding turned mPa into MPa and MV into mV (a factor 1e9)."""
    assert canonical_unit(sent) == canonical


def test_a_reading_in_millipascal_is_not_stored_as_megapascal() -> None:
    """Review of item 19: a sensor in MPa took a reading in mPa as MPa, unconverted."""
    validator = ReadingValidator(IngestLimits(), {"p": SensorSettings(unit="MPa"),
                                                  "v": SensorSettings(unit="mV")})
    for sensor_id, unit in (("p", "mPa"), ("v", "MV")):
        with pytest.raises(PayloadError) as error:
            validator.validate({"sensor_id": sensor_id, "value": 1.0, "unit": unit}, CONTEXT, 0)
        assert error.value.reason == "unit_mismatch", (sensor_id, unit)
    reading = validator.validate({"sensor_id": "p", "value": 2.0, "unit": "BAR"}, CONTEXT, 0)
    assert reading.unit == "MPa" and reading.value == pytest.approx(0.2)
