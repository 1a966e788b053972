"""Summaries of a patient's measurements (DESIGN §4.4)."""
