"""The measurement catalogue (CLINICAL.md §1): types, canonical units, conversions, ranges.

Every unit the service accepts is in ``_UNITS``, an explicit table; a unit that is not
there is an :class:`UnknownUnit`. Conversions use Decimal arithmetic. A value that is
already in the canonical unit (or a synonym of it) is returned unchanged, so its exactness
is kept; a converted value is rounded half-even to :data:`CONVERSION_PLACES` places, and
the zeros that rounding pads on are dropped (100.4 [degF] is 38 Cel, not 38.000000).

People see values at the measurement's precision (:func:`display_places`, :func:`shown`):
weight 0.1 kg (0.1 lb, 1 g), glucose 0.1 mmol/L or 1 mg/dL, temperature 0.1 °C or °F,
blood pressure, pulse and SpO2 whole numbers; never ``2,075828 kg``. Computation keeps the
exact values; only texts round.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import timedelta
from decimal import ROUND_HALF_EVEN, ROUND_HALF_UP, Decimal, InvalidOperation, localcontext
from enum import StrEnum
from types import MappingProxyType
from typing import Any, cast

CONVERSION_PLACES = 6
"""Decimal places kept by a unit conversion."""

GLUCOSE_MG_DL_PER_MMOL_L = Decimal("18.0156")
"""1 mmol/L of glucose in mg/dL (molar mass 180.156 g/mol); never 18.0."""

_QUANTUM = Decimal(1).scaleb(-CONVERSION_PLACES)
_DAY_SECONDS = Decimal(86400)
_STEPS_PER_DAY_MAX = Decimal(100_000)


class MeasurementType(StrEnum):
    """A kind of home measurement the service accepts."""

    blood_pressure = "blood_pressure"
    pulse = "pulse"
    glucose = "glucose"
    cgm_glucose = "cgm_glucose"
    weight = "weight"
    spo2 = "spo2"
    temperature = "temperature"
    respiratory_rate = "respiratory_rate"
    steps = "steps"
    peak_flow = "peak_flow"
    symptom_score = "symptom_score"
    ketones = "ketones"


class UnknownUnit(ValueError):
    """A unit that the catalogue does not accept for the measurement type."""


class UnknownType(ValueError):
    """A measurement type that is not in the catalogue."""


@dataclass(frozen=True)
class UnitConversion:
    """A linear conversion to the canonical unit: ``canonical = (x + offset) × num / den``."""

    numerator: Decimal = Decimal(1)
    denominator: Decimal = Decimal(1)
    offset: Decimal = Decimal(0)

    @property
    def is_identity(self) -> bool:
        """Tell whether the unit is the canonical unit or a synonym of it."""
        return self.numerator == self.denominator and self.offset == 0

    def to_canonical(self, value: Decimal) -> Decimal:
        """Convert a value in this unit to the canonical unit, unrounded."""
        return (value + self.offset) * self.numerator / self.denominator

    def from_canonical(self, value: Decimal) -> Decimal:
        """Convert a canonical value into this unit, unrounded."""
        return value * self.denominator / self.numerator - self.offset


_SAME = UnitConversion()
_MMOL_L = {
    "mmol/L": _SAME,
    "mmol/l": _SAME,  # UCUM accepts both l and L for litre
    "mmol<180.15588000005408>/L": _SAME,  # Apple Health's glucose unit
    "mg/dL": UnitConversion(denominator=GLUCOSE_MG_DL_PER_MMOL_L),
    "mg/dl": UnitConversion(denominator=GLUCOSE_MG_DL_PER_MMOL_L),
}

# Accepted units per type: unit -> conversion to the type's canonical unit.
_UNITS: Mapping[MeasurementType, Mapping[str, UnitConversion]] = {
    MeasurementType.blood_pressure: {"mm[Hg]": _SAME, "mmHg": _SAME},
    MeasurementType.pulse: {"/min": _SAME, "{beats}/min": _SAME, "bpm": _SAME},
    MeasurementType.glucose: _MMOL_L,
    MeasurementType.cgm_glucose: _MMOL_L,
    MeasurementType.weight: {
        "kg": _SAME,
        "g": UnitConversion(denominator=Decimal(1000)),
        "[lb_av]": UnitConversion(numerator=Decimal("0.45359237")),
    },
    MeasurementType.spo2: {"%": _SAME, "1": UnitConversion(numerator=Decimal(100))},
    MeasurementType.temperature: {
        "Cel": _SAME,
        "[degF]": UnitConversion(numerator=Decimal(5), denominator=Decimal(9), offset=Decimal(-32)),
    },
    MeasurementType.respiratory_rate: {"/min": _SAME},
    MeasurementType.steps: {"{steps}": _SAME},
    MeasurementType.peak_flow: {"L/min": _SAME},
    MeasurementType.symptom_score: {"{score}": _SAME},
    # Blood β-hydroxybutyrate: meters read mmol/L only; the glucose mg/dL factor does not apply.
    MeasurementType.ketones: {"mmol/L": _SAME, "mmol/l": _SAME},
}

# Symptom-score instruments and their inclusive score ranges.
INSTRUMENTS: Mapping[str, tuple[Decimal, Decimal]] = MappingProxyType(
    {
        "CAT": (Decimal(0), Decimal(40)),
        "breathlessness": (Decimal(0), Decimal(10)),
        "mMRC": (Decimal(0), Decimal(4)),
        "ESAS": (Decimal(0), Decimal(10)),
    }
)
_INSTRUMENTS_FOLDED = {name.casefold(): name for name in INSTRUMENTS}

ACTIVITY_STATES: Mapping[str, str] = MappingProxyType(
    {
        "rest": "rest",
        "at rest": "rest",  # Open mHealth's temporal relationship to physical activity
        "before exercise": "rest",
        "active": "active",
        "during exercise": "active",
        "after exercise": "active",  # the pulse is still up: not a resting value
    }
)
"""What a reading's ``context.activity`` means: ``rest`` or ``active`` (CLINICAL §7)."""


CENSORED = "censored"
"""The context key of a censored reading: the sensor could only say ``below`` or ``above``.

A CGM writes "Low" under its range and "High" over it (Dexcom: 40 and 400 mg/dL). Such a
reading keeps the limit as its value and ``context.censored`` says which side the true value
is on; it counts in the time below / above range and fires the rules (CLINICAL §7).
"""

CENSORED_SIDES = frozenset({"below", "above"})
"""The values ``context.censored`` may have."""


def activity_state(value: Any) -> str:
    """Return ``rest`` or ``active`` for a context's activity; absent or unknown is rest.

    Unknown counts as rest because the resting limits are the stricter ones: in doubt, the
    care team sees the reading.
    """
    if isinstance(value, str):
        return ACTIVITY_STATES.get(value.strip().casefold(), "rest")
    return "rest"


# Decimals people see in units whose precision differs from the canonical unit's.
_UNIT_PLACES: Mapping[str, int] = MappingProxyType(
    {"mg/dL": 0, "mg/dl": 0, "g": 0, "[lb_av]": 1, "[degF]": 1}
)

# How a UCUM unit is shown to people.
_DISPLAY_UNITS: Mapping[str, str] = {
    "mm[Hg]": "mmHg",
    "Cel": "°C",
    "[degF]": "°F",
    "[lb_av]": "lb",
    "{beats}/min": "/min",
    "{steps}": "",
    "{score}": "",
    "1": "",
    "mmol<180.15588000005408>/L": "mmol/L",
}


@dataclass(frozen=True)
class TypeSpec:
    """What the catalogue knows about one measurement type."""

    type: MeasurementType
    canonical_unit: str
    components: tuple[str, ...]
    loinc: str
    component_loinc: Mapping[str, str]
    # Inclusive plausible range per component in the canonical unit. For steps it is per
    # day; for symptom scores it is the envelope of all instruments (see plausible_range).
    plausible: Mapping[str, tuple[Decimal, Decimal]]
    # Decimal places at which values of two sources count as equal; also the decimals
    # people see in the canonical unit (display_places).
    precision: int
    interval: bool = False  # the reading covers time..end_time
    units: Mapping[str, UnitConversion] = field(default_factory=dict)
    unit_loinc: Mapping[str, str] = field(default_factory=dict)  # code per original unit

    @property
    def accepted_units(self) -> frozenset[str]:
        """Return the units accepted for this type."""
        return frozenset(self.units)


def _range(low: str, high: str) -> tuple[Decimal, Decimal]:
    return (Decimal(low), Decimal(high))


def _scalar(
    type_: MeasurementType,
    unit: str,
    loinc: str,
    plausible: tuple[Decimal, Decimal],
    precision: int,
    **extra: Any,
) -> TypeSpec:
    return TypeSpec(
        type=type_,
        canonical_unit=unit,
        components=("value",),
        loinc=loinc,
        component_loinc=MappingProxyType({"value": loinc} if loinc else {}),
        plausible=MappingProxyType({"value": plausible}),
        precision=precision,
        units=MappingProxyType(dict(_UNITS[type_])),
        **extra,
    )


_T = MeasurementType
CATALOGUE: Mapping[MeasurementType, TypeSpec] = MappingProxyType(
    {
        _T.blood_pressure: TypeSpec(
            type=_T.blood_pressure,
            canonical_unit="mm[Hg]",
            components=("systolic", "diastolic"),
            loinc="85354-9",
            component_loinc=MappingProxyType({"systolic": "8480-6", "diastolic": "8462-4"}),
            plausible=MappingProxyType(
                {"systolic": _range("40", "300"), "diastolic": _range("20", "200")}
            ),
            precision=0,
            units=MappingProxyType(dict(_UNITS[_T.blood_pressure])),
        ),
        _T.pulse: _scalar(_T.pulse, "/min", "8867-4", _range("20", "300"), 0),
        _T.glucose: _scalar(
            _T.glucose,
            "mmol/L",
            "14743-9",
            _range("0.5", "50"),
            1,
            unit_loinc=MappingProxyType({"mg/dL": "41653-7", "mg/dl": "41653-7"}),
        ),
        _T.cgm_glucose: _scalar(
            _T.cgm_glucose,
            "mmol/L",
            "105272-9",
            _range("1.0", "40"),
            1,
            unit_loinc=MappingProxyType({"mg/dL": "99504-3", "mg/dl": "99504-3"}),
        ),
        _T.weight: _scalar(_T.weight, "kg", "29463-7", _range("0.3", "500"), 1),
        _T.spo2: _scalar(_T.spo2, "%", "2708-6", _range("50", "100"), 0),
        _T.temperature: _scalar(_T.temperature, "Cel", "8310-5", _range("25", "45"), 1),
        _T.respiratory_rate: _scalar(_T.respiratory_rate, "/min", "9279-1", _range("2", "80"), 0),
        _T.steps: _scalar(_T.steps, "{steps}", "55423-8", _range("0", "100000"), 0, interval=True),
        _T.peak_flow: _scalar(_T.peak_flow, "L/min", "19935-6", _range("30", "1000"), 0),
        _T.symptom_score: _scalar(_T.symptom_score, "{score}", "", _range("0", "40"), 1),
        # Blood (capillary) β-hydroxybutyrate. LOINC 53060-9 "3-Hydroxybutyrate [Moles/volume]
        # in Blood" has no method, so it fits meter and laboratory values alike (66441-7 is the
        # test-strip-specific code some laboratories use for the same meters). Meters read
        # 0.0–8.0 mmol/L (FreeStyle Precision β-Ketone strips; "HI" above); 10 leaves room for
        # a laboratory value typed in by hand.
        _T.ketones: _scalar(_T.ketones, "mmol/L", "53060-9", _range("0", "10"), 1),
    }
)


def spec_for(type_name: str) -> TypeSpec | None:
    """Return the catalogue entry of a type name, or None for an unknown type."""
    # A type is a StrEnum: its name finds it directly (it hashes and compares as the string).
    # Making the enum member first cost a microsecond, asked for every reading of a window.
    by_name = cast(Mapping[str, TypeSpec], CATALOGUE)
    return by_name.get(type_name) if isinstance(type_name, str) else None


def _spec(type_name: str) -> TypeSpec:
    spec = spec_for(type_name)
    if spec is None:
        raise UnknownType(f"unknown measurement type {type_name!r}")
    return spec


def _conversion(spec: TypeSpec, unit: str) -> UnitConversion:
    try:
        return spec.units[unit]
    except KeyError:
        accepted = ", ".join(sorted(spec.units))
        raise UnknownUnit(
            f"unit {unit!r} is not accepted for {spec.type} (accepted: {accepted})"
        ) from None


def _rounded(value: Decimal) -> Decimal:
    # Trailing zeros of the rounding are not precision the input had: 100.4 [degF] is 38.
    rounded = value.quantize(_QUANTUM, rounding=ROUND_HALF_EVEN).normalize()
    exponent = rounded.as_tuple().exponent
    return rounded.quantize(Decimal(1)) if isinstance(exponent, int) and exponent > 0 else rounded


def is_accepted_unit(type_name: str, unit: str) -> bool:
    """Tell whether a unit is accepted for a measurement type."""
    spec = spec_for(type_name)
    return spec is not None and unit in spec.units


def same_unit(type_name: str, a: str, b: str) -> bool:
    """Tell whether two spellings name one unit of a type (``mmHg`` and ``mm[Hg]``)."""
    if a == b:
        return True
    spec = spec_for(type_name)
    if spec is None or a not in spec.units or b not in spec.units:
        return False
    return spec.units[a] == spec.units[b]


def to_canonical(type_name: str, value: Decimal, unit: str) -> Decimal:
    """Convert a value in an accepted unit of the type to the type's canonical unit."""
    spec = _spec(type_name)
    conversion = _conversion(spec, unit)
    if not value.is_finite():
        raise ValueError("value must be finite")
    if conversion.is_identity:
        return value
    with localcontext() as ctx:
        ctx.prec = 60
        try:
            return _rounded(conversion.to_canonical(value))
        except InvalidOperation:
            raise ValueError("value too large to convert") from None


def convert(type_name: str, value: Decimal, from_unit: str, to_unit: str) -> Decimal:
    """Convert a value between two accepted units of the type, via the canonical unit."""
    spec = _spec(type_name)
    source = _conversion(spec, from_unit)
    target = _conversion(spec, to_unit)
    if not value.is_finite():
        raise ValueError("value must be finite")
    if from_unit == to_unit or (source.is_identity and target.is_identity):
        return value
    with localcontext() as ctx:
        ctx.prec = 60
        try:
            return _rounded(target.from_canonical(source.to_canonical(value)))
        except InvalidOperation:
            raise ValueError("value too large to convert") from None


def instrument_name(name: object) -> str | None:
    """Return the catalogue spelling of a symptom-score instrument, or None if unknown."""
    if not isinstance(name, str):
        return None
    return _INSTRUMENTS_FOLDED.get(name.casefold())


def plausible_range(
    type_name: str,
    component: str,
    *,
    context: Mapping[str, Any] | None = None,
    interval: timedelta | None = None,
) -> tuple[Decimal, Decimal] | None:
    """Return the inclusive plausible range of a canonical component value.

    Steps scale the daily limit by the interval length (at least one day's worth); a symptom
    score takes its instrument's range and has none (None) when the instrument is unknown.
    """
    spec = _spec(type_name)
    low, high = spec.plausible[component]
    if spec.type is MeasurementType.steps and interval is not None:
        days = Decimal(interval.total_seconds()) / _DAY_SECONDS
        high = _STEPS_PER_DAY_MAX * max(Decimal(1), days)
    if spec.type is MeasurementType.symptom_score:
        name = instrument_name((context or {}).get("instrument"))
        return None if name is None else INSTRUMENTS[name]
    return (low, high)


DISPLAY_NAMES: Mapping[str, Mapping[str, str]] = MappingProxyType(
    {
        "blood_pressure": {"sv": "blodtryck", "en": "blood pressure"},
        "pulse": {"sv": "puls", "en": "pulse"},
        "glucose": {"sv": "blodsocker", "en": "blood glucose"},
        "cgm_glucose": {"sv": "sensorglukos", "en": "sensor glucose"},
        "weight": {"sv": "vikt", "en": "weight"},
        "spo2": {"sv": "syremättnad", "en": "oxygen saturation"},
        "temperature": {"sv": "temperatur", "en": "temperature"},
        "respiratory_rate": {"sv": "andningsfrekvens", "en": "respiratory rate"},
        "steps": {"sv": "steg", "en": "steps"},
        "peak_flow": {"sv": "PEF", "en": "peak flow"},
        "symptom_score": {"sv": "symtomskattning", "en": "symptom score"},
        "ketones": {"sv": "ketoner i blodet", "en": "blood ketones"},
    }
)
"""Each type's name in running text (lower case), in Swedish and English."""


def display_name(type_name: str, lang: str) -> str:
    """A type's name in running text in a language; the type's own name when unknown."""
    return DISPLAY_NAMES.get(type_name, {}).get(lang, type_name)


def display_unit(unit: str) -> str:
    """Return how a UCUM unit is written for people (``mm[Hg]`` as ``mmHg``)."""
    return _DISPLAY_UNITS.get(unit, unit)


# Rates said in words: "slag per minut", never "bpm" or "slag/min" in a Swedish text.
_RATE_WORDS: Mapping[MeasurementType, Mapping[str, str]] = MappingProxyType(
    {
        MeasurementType.pulse: {"sv": "slag per minut", "en": "beats per minute"},
        MeasurementType.respiratory_rate: {"sv": "andetag per minut", "en": "breaths per minute"},
    }
)


def unit_text(type_name: str, unit: str, lang: str) -> str:
    """Return a unit as a text to people says it: ``mmHg``, ``°C``, ``slag per minut``."""
    spec = spec_for(type_name)
    if spec is not None and spec.type in _RATE_WORDS and unit in spec.units:
        return _RATE_WORDS[spec.type]["en" if lang == "en" else "sv"]
    return display_unit(unit)


def display_places(type_name: str, unit: str) -> int:
    """Return how many decimals people see of a value of a type in a unit (1 for kg)."""
    if unit in _UNIT_PLACES:
        return _UNIT_PLACES[unit]
    spec = spec_for(type_name)
    return spec.precision if spec is not None else 1


def rounded(value: Decimal, places: int) -> Decimal:
    """Return a value with at most ``places`` decimals (half up); fewer stay as given."""
    exponent = value.as_tuple().exponent
    if isinstance(exponent, int) and exponent >= -places:
        return value  # 38 stays 38, not 38.0: no precision the measurement did not have
    return value.quantize(Decimal(1).scaleb(-places), rounding=ROUND_HALF_UP)


def shown(type_name: str, unit: str, value: Decimal) -> Decimal:
    """Return a value as people see it: rounded to the type's precision in that unit."""
    return rounded(value, display_places(type_name, unit))


def decimal_text(value: Decimal) -> str:
    """Return a Decimal as plain text, without exponent (``1E+2`` is ``100``)."""
    if not value.is_finite():
        raise ValueError("value must be finite")
    # str() is format "f" unless it chose an exponent (a positive one, or below 1E-6): about
    # half the cost, asked for every value of every reading a batch's findings list.
    text = str(value)
    return text if "E" not in text else format(value, "f")


def json_number(value: Decimal | str | int | float) -> int | float:
    """Return a stored decimal (text, Decimal or number) as a JSON number with its decimals.

    A value written without decimals is an int; any other is the float whose shortest repr
    is the stored text ("7.1" stays 7.1, "96.0" stays 96.0): stored values have at most
    :data:`CONVERSION_PLACES` decimals and at most 12 significant digits, well inside what
    a double round-trips, so the answer never shows float noise (7.493506000000001).
    """
    if isinstance(value, bool):  # a bool is an int to Python, never a measured value
        raise ValueError(f"not a number: {value!r}")
    exact = value if isinstance(value, Decimal) else Decimal(str(value))
    if not exact.is_finite():
        raise ValueError(f"not a finite number: {value!r}")
    exponent = exact.as_tuple().exponent
    if isinstance(exponent, int) and exponent >= 0:
        return int(exact)
    return float(format(exact, "f"))


def json_value(value: Any) -> Any:
    """Return a measured value (one number, or an object of components) with JSON numbers.

    Decimal text becomes a number; anything else (a number already, a missing value) is left
    as it is, so data stored before values were numbers and after answer alike.
    """
    if isinstance(value, str):  # the usual case first: an ABC's isinstance costs ten times
        if _DECIMAL_TEXT.fullmatch(value) is None:
            return value
        if len(value) > 64:  # far beyond any measurement (int() refuses 4,300 digits)
            return json_number(value)
        # What json_number gives, without a Decimal: the text's own digits are the float's
        # shortest repr, and text without a point is a whole number.
        return float(value) if "." in value else int(value)
    if isinstance(value, Decimal):
        return json_number(value)
    if isinstance(value, Mapping):
        return {name: json_value(component) for name, component in value.items()}
    return value


_DECIMAL_TEXT = re.compile(r"-?[0-9]+(\.[0-9]+)?")


def is_decimal_text(value: Any) -> bool:
    """Return whether a value is plain decimal text ("7.1", "-2", "120"), as values are stored."""
    return isinstance(value, str) and _DECIMAL_TEXT.fullmatch(value) is not None


__all__ = [
    "ACTIVITY_STATES",
    "CATALOGUE",
    "CENSORED",
    "CENSORED_SIDES",
    "CONVERSION_PLACES",
    "DISPLAY_NAMES",
    "GLUCOSE_MG_DL_PER_MMOL_L",
    "INSTRUMENTS",
    "MeasurementType",
    "TypeSpec",
    "UnitConversion",
    "UnknownType",
    "UnknownUnit",
    "activity_state",
    "convert",
    "decimal_text",
    "display_name",
    "display_places",
    "display_unit",
    "instrument_name",
    "is_accepted_unit",
    "is_decimal_text",
    "json_number",
    "json_value",
    "plausible_range",
    "rounded",
    "same_unit",
    "shown",
    "spec_for",
    "to_canonical",
    "unit_text",
]
