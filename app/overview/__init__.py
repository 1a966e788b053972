"""The shared plan as a whole, in one answer (DESIGN §4.11)."""
