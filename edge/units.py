"""The unit catalogue: linear conversions between the units factories send.

A sensor configured with a canonical `unit` gets readings in any other unit of the same
dimension converted (value * scale + offset); an unknown unit is a rejection, not a guess.
A leaf module (it imports nothing of ours): the settings validate unit names against it and
the ingest pipeline converts with it.
"""

from __future__ import annotations

# dimension -> {unit: (scale, offset) to the dimension's base unit}
_DIMENSIONS: dict[str, dict[str, tuple[float, float]]] = {
    "temperature": {"degC": (1.0, 0.0), "degF": (5 / 9, -32 * 5 / 9), "K": (1.0, -273.15)},
    "pressure": {"bar": (1.0, 0.0), "mbar": (1e-3, 0.0), "Pa": (1e-5, 0.0), "kPa": (1e-2, 0.0),
                 "MPa": (10.0, 0.0), "psi": (0.0689475729, 0.0)},
    "velocity": {"mm/s": (1.0, 0.0), "m/s": (1000.0, 0.0), "in/s": (25.4, 0.0)},
    "acceleration": {"g": (1.0, 0.0), "m/s2": (1 / 9.80665, 0.0)},
    "current": {"A": (1.0, 0.0), "mA": (1e-3, 0.0)},
    "voltage": {"V": (1.0, 0.0), "mV": (1e-3, 0.0), "kV": (1e3, 0.0)},
    "power": {"W": (1.0, 0.0), "kW": (1e3, 0.0)},
    "frequency": {"Hz": (1.0, 0.0), "rpm": (1 / 60, 0.0)},
    "flow": {"m3/h": (1.0, 0.0), "l/min": (0.06, 0.0)},
    "ratio": {"%": (1.0, 0.0)},
}

UNIT_DIMENSION: dict[str, str] = {
    unit: dimension for dimension, units in _DIMENSIONS.items() for unit in units
}
KNOWN_UNITS = frozenset(UNIT_DIMENSION)


# Spellings devices send for the same unit (matched in any case): the degree signs and names.
_SPELLINGS: dict[str, str] = {
    "°c": "degC", "℃": "degC", "deg c": "degC", "celsius": "degC", "°f": "degF", "℉": "degF",
    "deg f": "degF", "fahrenheit": "degF", "kelvin": "K", "m/s²": "m/s2", "m³/h": "m3/h",
    "1/min": "rpm", "percent": "%",
}
# Units also accepted in another case (DEGC, BAR, KPA, RPM): only where no letter's case
# changes the meaning. SI prefixes do (m milli / M mega, p pico / P peta), so mPa and MPa,
# mV and MV, mA and MA, mbar and Mbar are never folded onto each other, nor single letters.
_CASELESS = ("degC", "degF", "bar", "psi", "rpm", "Hz", "kPa", "kW", "kV", "in/s", "l/min")
_SPELLINGS.update({unit.lower(): unit for unit in _CASELESS})


def canonical_unit(unit: str) -> str | None:
    """The catalogue's name for a unit as devices spell it (`°C`, `DEGC` -> `degC`), or None."""
    if unit in UNIT_DIMENSION:
        return unit
    return _SPELLINGS.get(unit.strip().lower())


def conversion(from_unit: str, to_unit: str) -> tuple[float, float] | None:
    """(scale, offset) turning a value in `from_unit` into `to_unit`; None if impossible."""
    from_unit = canonical_unit(from_unit) or from_unit
    dimension = UNIT_DIMENSION.get(from_unit)
    if dimension is None or dimension != UNIT_DIMENSION.get(to_unit):
        return None
    from_scale, from_offset = _DIMENSIONS[dimension][from_unit]
    to_scale, to_offset = _DIMENSIONS[dimension][to_unit]
    # base = v*fs + fo ; target = (base - to)/ts
    return from_scale / to_scale, (from_offset - to_offset) / to_scale
