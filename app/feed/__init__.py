"""The per-patient change feed, which every domain appends to and apps read."""
