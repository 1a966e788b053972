"""Benchmarks, run by hand (see bench/README.md); not part of the tests."""

from __future__ import annotations

from tests import pg


def cluster_for(backends: list[str]) -> pg.Cluster | None:
    """Start a throwaway PostgreSQL cluster when ``backends`` names it; stop it when done.

    Without PostgreSQL binaries on this machine, says so and removes it from ``backends``.
    """
    if "postgresql" not in backends:
        return None
    bin_dir = pg.find_bin_dir()
    if bin_dir is None:
        print("no PostgreSQL binaries: PostgreSQL skipped")
        backends.remove("postgresql")
        return None
    return pg.start(bin_dir)
