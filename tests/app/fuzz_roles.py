"""AT-19: schemathesis over the OpenAPI schema, per role, in process (no network).

Shared by ``tests/app/test_schemathesis.py`` (a few examples per operation, inside
``make test``) and ``bench/schemathesis_roles.py`` (≥ 100 per operation). Every operation is
fuzzed with each role's token; a path's ``pid`` is drawn from ``me``, the seeded patients'
ids and whatever schemathesis makes up, so the fuzzing reaches past the 404 of an unknown id.

Checks on every answer: no 5xx, the status is documented, the media type is the documented
one, the body and headers match the schema, and a 2xx or 4xx of a ``/v1`` operation also
answers 401 without the token (``ignored_auth``).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import hypothesis
import schemathesis
from hypothesis import HealthCheck, Phase
from hypothesis import strategies as st
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    ignored_auth,
    response_headers_conformance,
    response_schema_conformance,
    status_code_conformance,
)

ROLES = {"patient": "allan", "proxy": "maria", "clinician": "eva", "admin": "admin"}
CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
    ignored_auth,
]


@dataclass
class Tally:
    """What a run did and found."""

    operations: int = 0
    cases: int = 0
    server_errors: int = 0
    failures: list[str] = field(default_factory=list)

    def line(self) -> str:
        """The AT-19 summary line."""
        return (
            f"AT-19 operations={self.operations} cases={self.cases} "
            f"5xx={self.server_errors} failures={len(self.failures)}"
        )


def fuzz(
    app: Any,
    tokens: dict[str, str],
    patient_ids: list[str],
    *,
    max_examples: int,
    progress: Callable[[str], None] | None = None,
) -> Tally:
    """Fuzz every operation of ``app`` with every role's token; collect what fails."""
    schema = schemathesis.openapi.from_asgi("/openapi.json", app)
    operations = [result.ok() for result in schema.get_all_operations()]
    tally = Tally(operations=len(operations))
    pids = st.sampled_from(["me", *patient_ids])
    for role, token in tokens.items():
        headers = {"Authorization": f"Bearer {token}"}
        for operation in operations:
            label = f"{role} {operation.method.upper()} {operation.path}"
            _fuzz_operation(operation, headers, pids, max_examples, tally, label)
            if progress is not None:
                progress(label)
    return tally


def _fuzz_operation(
    operation: Any,
    headers: dict[str, str],
    pids: st.SearchStrategy[str],
    max_examples: int,
    tally: Tally,
    label: str,
) -> None:
    @hypothesis.settings(
        max_examples=max_examples,
        deadline=None,
        database=None,
        derandomize=True,
        phases=[Phase.explicit, Phase.generate],
        suppress_health_check=list(HealthCheck),
    )
    @hypothesis.given(case=operation.as_strategy(), pid=pids, real=st.booleans())
    def run(case: Any, pid: str, real: bool) -> None:
        if real and "pid" in (case.path_parameters or {}):
            case.path_parameters["pid"] = pid
        response = case.call(headers=headers)
        tally.cases += 1
        if response.status_code >= 500:
            tally.server_errors += 1
        try:
            case.validate_response(response, checks=CHECKS, headers=headers)
        except Exception as exc:  # every failure is collected, not raised
            tally.failures.append(f"{label}: {str(exc)[:800]}")

    run()
