"""Readings domain."""
