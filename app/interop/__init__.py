"""FHIR R4: the patient's data as a Bundle (DESIGN §4.9)."""
