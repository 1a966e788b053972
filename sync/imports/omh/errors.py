"""Per-field errors of one data point, with the location prefixed."""

from __future__ import annotations

from sync.normalise import ItemError, ItemErrorCode


class Errors(list[ItemError]):
    """The errors of one data point; locations are relative to ``prefix``."""

    def __init__(self, prefix: str) -> None:
        super().__init__()
        self.prefix = prefix

    def add(self, loc: str, code: str, message: str) -> None:
        """Record a problem at a location in the data point."""
        self.append(ItemError(loc=self.prefix + loc, code=code, message=message))

    def invalid(self, loc: str, message: str) -> None:
        """Record an invalid value at a location in the data point."""
        self.add(loc, ItemErrorCode.invalid, message)


__all__ = ["Errors"]
