"""AT-25 over every state-changing /mina route: without the session's own CSRF token, with
another person's, and with a logged-out session's, each is refused and nothing changes.

The routes are read from the app, so a new form or script route is swept the day it is added.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Callable
from typing import Any

from sqlalchemy.orm import Session
from starlette.routing import Route

from tests.app.auth.test_access_matrix import row_counts
from tests.app.web.conftest import Browser

MUTATING = frozenset({"POST", "PUT", "PATCH", "DELETE"})
# What a form or a script would send; the token is all that may be wrong.
FORM = {"scope-read": "on", "body": "AT-25", "decision": "agreed", "language": "en",
        "code": "ABCD-EFGH", "value": "72", "lock_screen": "title"}  # fmt: skip
SUBSCRIPTION = {"endpoint": "https://push.example.test/at25", "keys": {"p256dh": "x", "auth": "y"}}


def mina_writes(app: Any) -> list[tuple[str, str]]:
    """Every (method, path) under /mina that can change something."""
    found = []
    for route in app.routes:
        if isinstance(route, Route) and route.path.startswith("/mina"):
            found += [(m, route.path) for m in sorted(route.methods or ()) if m in MUTATING]
    return sorted(found)


def _refused(status: int, location: str) -> bool:
    return status == 403 or (status in (302, 303) and location.startswith("/login"))


def test_at25_every_mina_write_refuses_a_missing_foreign_or_stale_token(
    app: Any, browser: Callable[[], Browser], session: Session
) -> None:
    writes = mina_writes(app)
    # The pages of issue 16 that change something: entry, sync, proxies, messages, settings,
    # push, goals. A route lost from this list would no longer be swept.
    assert len(writes) >= 12, writes
    asta, allan = browser(), browser()
    asta.login("asta")
    allan.login("allan")
    tokens = {"none": None, "allan's": allan.csrf("/mina")}
    stale_token = asta.csrf("/mina")
    stale_cookie = asta.client.cookies["egenvard_session"]
    requests = accepted = 0
    refusals: list[str] = []

    def replay(one: Browser, kind: str, token: str | None) -> None:
        nonlocal requests, accepted
        for method, path in writes:
            url = re.sub(r"\{[^}]+\}", str(uuid.uuid4()), path)
            before = row_counts(session)
            headers = {"X-CSRF-Token": token} if token else {}
            if path in ("/mina/sync", "/mina/push/subscriptions"):  # a script's JSON
                body: dict[str, Any] = {"json": SUBSCRIPTION if "push" in path else {}}
            else:
                body = {"data": {**FORM, **({"csrf_token": token} if token else {})}}
            answer = one.client.request(
                method, url, headers=headers, follow_redirects=False, **body
            )
            requests += 1
            session.expire_all()
            if not _refused(answer.status_code, answer.headers.get("location", "")):
                accepted += 1
                refusals.append(f"{kind}: {method} {path} -> {answer.status_code}")
            assert row_counts(session) == before, f"{kind}: {method} {path} changed rows"

    replay(asta, "no token", tokens["none"])
    replay(asta, "another person's token", tokens["allan's"])
    asta.post("/logout", {}, token_from="/mina")
    replayer = browser()
    replayer.client.cookies.set("egenvard_session", stale_cookie)
    replay(replayer, "after logout", stale_token)
    print(f"AT-25 (mina, every write) routes={len(writes)} requests={requests} accepted={accepted}")
    assert accepted == 0, refusals
