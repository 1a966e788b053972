"""Findings domain."""
