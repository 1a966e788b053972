"""AT-19, short: schemathesis over every operation for each role, a few examples each.

The long run (≥ 100 examples per operation) is ``bench/schemathesis_roles.py``.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session

from app.patients.models import Patient
from tests.app.fuzz_roles import ROLES, fuzz

EXAMPLES = 5  # per operation and role: about 45 s per database on 2 cores


@pytest.mark.slow
def test_every_operation_answers_as_documented_for_every_role(
    app: Any, session: Session, token: Callable[[str], str]
) -> None:
    patient_ids = list(session.scalars(select(Patient.id)))
    tokens = {role: token(handle) for role, handle in ROLES.items()}
    tally = fuzz(app, tokens, patient_ids, max_examples=EXAMPLES)
    print(tally.line())
    assert tally.server_errors == 0 and not tally.failures, "\n\n".join(tally.failures[:20])
