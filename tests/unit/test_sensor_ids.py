"""Free-text names become sensor ids by one deterministic rule."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from edge.ingest.sensor_ids import ID_RE, MAX_LEN, sensor_id, sensor_ids


def test_valid_ids_stay_as_they_are_and_the_rest_is_cleaned() -> None:
    assert sensor_id("pump-1/temp") == "pump-1/temp"
    assert sensor_id("Motor Temp (°C)") == "Motor_Temp_C"
    assert sensor_id("Température moteur") == "Temperature_moteur"
    assert sensor_id("Node Info/Serial #") == "Node_Info/Serial"
    assert sensor_id("  __x") == "x"


def test_empty_and_long_names_get_a_digest() -> None:
    empty = sensor_id("°°°")
    assert empty.startswith("m-") and len(empty) == 10
    long = sensor_id("a" * 300)
    assert len(long) == MAX_LEN and long[-9] == "-"
    assert sensor_id("a" * 300) == long, "deterministic"


def test_names_that_collide_after_cleaning_are_told_apart_in_any_order() -> None:
    names = ["Flow rate", "Flow_rate", "Flow-rate!"]
    ids = sensor_ids(names)
    assert ids["Flow_rate"] == "Flow_rate", "an id that needed no change keeps it"
    assert ids["Flow rate"] != ids["Flow-rate!"] and len(set(ids.values())) == 3
    assert sensor_ids(list(reversed(names))) == ids


@given(st.text(max_size=400))
def test_every_name_becomes_a_valid_id(name: str) -> None:
    assert ID_RE.fullmatch(sensor_id(name))
    assert ID_RE.fullmatch(sensor_id(name, suffix=True))
