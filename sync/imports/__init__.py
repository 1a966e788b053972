"""Imports as sources: other formats converted to sync wire readings, purely.

Each importer returns an :class:`ImportResult`: readings in the shape that
:func:`sync.normalise.normalise_reading` accepts (with deterministic ``client_id``s, so a
repeated import answers ``duplicate``), and a :class:`Rejection` per item that could not be
read. The readings then go through the same ingest as a sync batch.

Apple Health exports (hundreds of MB) are read as a stream instead:
:class:`sync.imports.apple_health.ExportReader` yields readings and rejections as it parses.
"""

from sync.imports.dexcom import dexcom_csv_to_readings
from sync.imports.fhir import fhir_to_readings
from sync.imports.omh import omh_to_readings
from sync.imports.result import ImportResult, Rejection

__all__ = [
    "ImportResult",
    "Rejection",
    "dexcom_csv_to_readings",
    "fhir_to_readings",
    "omh_to_readings",
]
