"""The weekly report (DESIGN §4.4)."""
