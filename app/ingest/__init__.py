"""The ingest use cases: a sync batch or an imported file, and a reading entered in error.

A package of its own because it composes domains that do not know each other's order:
readings (store), findings (evaluate and record), goals (progress) and the feed and push
outbox (publish). Those domains sit below it; none of them imports it.
"""
