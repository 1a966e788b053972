"""Apple Health ``export.xml`` files made to order, laid out as the iPhone writes them.

Records first (grouped by type), the standalone systolic and diastolic records of every blood
pressure among them, then the ``<Correlation>`` that holds copies of the two; Apple's inline
DTD at the top. Shared by the tests and ``bench/apple_health.py``.
"""

from __future__ import annotations

import io
import zipfile
from xml.sax.saxutils import quoteattr

HK = "HKQuantityTypeIdentifier"
WATCH_DEVICE = (
    "<<HKDevice: 0x283b30a00>, name:Apple Watch, manufacturer:Apple Inc., model:Watch, "
    "hardware:Watch6,2, software:9.1>"
)
HEAD = """<?xml version="1.0" encoding="UTF-8"?>
<!DOCTYPE HealthData [
<!ELEMENT HealthData (ExportDate,Me,(Record|Correlation|Workout|ActivitySummary)*)>
<!ATTLIST HealthData locale CDATA #REQUIRED>
<!ELEMENT Record ((MetadataEntry|HeartRateVariabilityMetadataList)*)>
<!ATTLIST Record type CDATA #REQUIRED unit CDATA #IMPLIED value CDATA #IMPLIED>
]>
<HealthData locale="sv_SE">
 <ExportDate value="2026-11-30 20:00:00 +0100"/>
 <Me HKCharacteristicTypeIdentifierDateOfBirth="1950-01-01"/>
"""
TAIL = "</HealthData>\n"


def record(
    short: str,
    value: str,
    unit: str,
    start: str,
    end: str | None = None,
    *,
    source: str = "Allans iPhone",
    device: str | None = None,
    indent: str = " ",
) -> str:
    """One ``<Record>`` line of quantity type ``HKQuantityTypeIdentifier<short>``."""
    attrs = {
        "type": HK + short,
        "sourceName": source,
        "sourceVersion": "17.1",
        **({"device": device} if device else {}),
        "unit": unit,
        "creationDate": end or start,
        "startDate": start,
        "endDate": end or start,
        "value": value,
    }
    text = " ".join(f"{k}={quoteattr(v)}" for k, v in attrs.items())
    return f"{indent}<Record {text}/>\n"


def blood_pressure(systolic: str, diastolic: str, at: str, *, source: str = "Omron") -> str:
    """The two standalone records and the correlation that holds them, as Apple lays them out."""
    return (
        record("BloodPressureSystolic", systolic, "mmHg", at, source=source)
        + record("BloodPressureDiastolic", diastolic, "mmHg", at, source=source)
        + correlation(systolic, diastolic, at, source=source)
    )


def correlation(systolic: str, diastolic: str, at: str, *, source: str = "Omron") -> str:
    """The ``<Correlation>`` of one blood pressure (Apple writes diastolic first)."""
    inner = record(
        "BloodPressureDiastolic", diastolic, "mmHg", at, source=source, indent="  "
    ) + record("BloodPressureSystolic", systolic, "mmHg", at, source=source, indent="  ")
    return (
        f' <Correlation type="HKCorrelationTypeIdentifierBloodPressure" sourceName="{source}" '
        f'sourceVersion="1" creationDate="{at}" startDate="{at}" endDate="{at}">\n'
        '  <MetadataEntry key="HKWasUserEntered" value="0"/>\n'
        f"{inner} </Correlation>\n"
    )


def export_xml(body: str) -> bytes:
    """A whole export.xml around ``body`` (records and correlations)."""
    return (HEAD + body + TAIL).encode()


def export_zip(xml: bytes, name: str = "apple_health_export/export.xml") -> bytes:
    """``export.zip`` as the phone shares it: the xml under ``apple_health_export/``."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        for member, data in (
            ("apple_health_export/export_cda.xml", b"<ClinicalDocument/>"),
            (name, xml),
        ):
            # A fixed date: the same export gives the same bytes (and the same test ids).
            info = zipfile.ZipInfo(member, date_time=(2026, 11, 30, 20, 0, 0))
            info.compress_type = zipfile.ZIP_DEFLATED
            archive.writestr(info, data)
    return buffer.getvalue()


BILLION_LAUGHS = b"""<?xml version="1.0"?>
<!DOCTYPE HealthData [
 <!ENTITY lol "lol">
 <!ENTITY lol1 "&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;">
 <!ENTITY lol2 "&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;">
 <!ENTITY lol3 "&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;">
 <!ENTITY lol4 "&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;">
 <!ENTITY lol5 "&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;">
 <!ENTITY lol6 "&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;">
 <!ENTITY lol7 "&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;">
 <!ENTITY lol8 "&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;">
 <!ENTITY lol9 "&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;">
]>
<HealthData locale="en_US">
 <Record type="HKQuantityTypeIdentifierHeartRate" sourceName="&lol9;" unit="count/min"
  startDate="2026-11-20 07:00:00 +0100" endDate="2026-11-20 07:00:00 +0100" value="70"/>
</HealthData>
"""
"""A billion laughs: 1 GB of "lol" if the entities were expanded."""
