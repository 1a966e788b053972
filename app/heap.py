"""The process's heap and the garbage collector: what startup made is set aside, and the
full collections come less often."""

from __future__ import annotations

import gc

from sqlalchemy.orm import configure_mappers

GC_THRESHOLDS = (700, 10, 40)
"""The collector's thresholds once started: Python's own for the young generations, and a
full collection after 40 middle ones rather than 10.

A full collection walks everything a request holds, so a large sync paid for its own working
set again and again: the 1,000-reading sync into a dense week (issue 17 §6) made four full
collections, 0.24–0.29 of its 1.1–1.3 s on SQLite; with 40 it makes one or none. Garbage is
freed by reference counting as before; only cycles wait longer, for a full collection every
~280,000 allocations instead of ~70,000. The price is memory: the ingest bench's server
peaked at 235 MiB (1,000-reading batches) with 10, 242 MiB with 40 and 266–275 MiB with 100
(bound 300 MiB, §7), for about the same throughput with 40 or 100.
"""


def settle_startup_heap() -> None:
    """Take what startup made (modules, models, schemas, the app) out of the garbage
    collector's walks (``gc.freeze``): it lives as long as the process; then set the
    collector's thresholds (``GC_THRESHOLDS``).

    A full collection walks every object the collector tracks, and a large sync sets off
    several: in a 1,000-reading sync into a dense week they came to a quarter of its time
    (0.37 of 1.55 s), in a 1,000-reading CGM batch to 15 ms (issue 17 §6, §1). Frozen, the
    walks cover only what requests made. The API server and the worker call this once
    started (``app.asgi``, ``selfcare worker``); the in-process benches too, to measure what
    the server runs.
    """
    configure_mappers()  # the mappers' structures are made on first use: make them now
    gc.collect()  # startup's own garbage is not kept for ever
    gc.freeze()
    gc.set_threshold(*GC_THRESHOLDS)
