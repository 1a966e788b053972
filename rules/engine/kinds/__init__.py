"""The logic of each reading-anchored kind: one check per kind, one module per kind.

:mod:`~rules.engine.kinds.base` says what a check is; :func:`check_for` picks a rule's check.
"""

from rules.engine.kinds.base import Check, Outcome
from rules.engine.kinds.dispatch import check_for

__all__ = ["Check", "Outcome", "check_for"]
