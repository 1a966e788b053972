"""The dialogue: one message thread per patient between the patient side and the care team."""
