"""AT-25: every state-changing page request replayed without its CSRF token, with another
user's token, after logout and after the idle timeout is refused (403, or a redirect to the
login page) and changes nothing."""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta

from fastapi.testclient import TestClient
from httpx2 import Response
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from app.audit.models import AuditEvent
from app.clock import clock, utcnow
from app.findings.models import Flag, FlagNote
from app.web.sessions import COOKIE
from tests.app.web.conftest import Browser
from tests.app.web.test_pages import Auth, _flags


def _state(session: Session) -> tuple[object, ...]:
    """What a state-changing page request could change: flags, notes, audit rows."""
    statuses = tuple(sorted(session.scalars(select(Flag.status))))
    notes = session.scalar(select(func.count()).select_from(FlagNote))
    audit = session.scalar(select(func.count()).select_from(AuditEvent))
    return statuses, notes, audit


def _refused(answer: Response) -> bool:
    """403, or a redirect to the login page; nothing else counts as refused."""
    if answer.status_code == 403:
        return True
    return answer.status_code in (302, 303) and answer.headers["location"].startswith("/login")


def _signed_in(one: Browser) -> bool:
    return one.client.get("/vard", follow_redirects=False).status_code == 200


def test_at25_state_changing_requests_without_a_valid_token_are_refused(
    client: TestClient, auth: Auth, browser: Callable[[], Browser], session: Session
) -> None:
    flag_id = _flags(client, auth)["asta"]
    url = f"/vard/flags/{flag_id}"
    forms: dict[str, dict[str, str]] = {
        "/login": {"handle": "eva"},
        "/logout": {},
        f"{url}/acknowledge": {"note": "AT-25"},
        f"{url}/resolve": {"note": "AT-25"},
        f"{url}/notes": {"note": "AT-25"},
    }
    eva, karin = browser(), browser()
    eva.login("eva")
    karin.login("karin")
    eva_token, karin_token = eva.csrf(url), karin.csrf(url)
    requests = accepted = 0

    def replay(one: Browser, token: str | None, case: str) -> None:
        nonlocal requests, accepted
        for path, data in forms.items():
            before = _state(session)
            body = dict(data) if token is None else {**data, "csrf_token": token}
            answer = one.client.post(path, data=body, follow_redirects=False)
            requests += 1
            if not _refused(answer):
                accepted += 1
                print(f"ACCEPTED {case} {path}: {answer.status_code}")
            assert _state(session) == before, f"{case} {path} changed something"

    replay(eva, None, "no token")
    replay(eva, karin_token, "another user's token")
    # The token in the header instead of the field: still the other user's.
    for path, data in forms.items():
        answer = eva.client.post(
            path, data=data, headers={"X-CSRF-Token": karin_token}, follow_redirects=False
        )
        requests += 1
        accepted += 0 if _refused(answer) else 1
    assert _signed_in(eva) and _signed_in(karin)  # nothing logged either out

    # After logout: the old cookie and its token, replayed.
    old_cookie = eva.client.cookies[COOKIE]
    logged_out = eva.post("/logout", {}, token_from=url)
    assert logged_out.status_code == 200 and "Du är utloggad." in logged_out.text
    assert not _signed_in(eva)
    replayer = browser()
    replayer.client.cookies.set(COOKIE, old_cookie)
    assert not _signed_in(replayer)
    replayer.client.cookies.clear()
    replayer.client.cookies.set(COOKIE, old_cookie)
    replay(replayer, eva_token, "after logout")

    # After the idle timeout: Karin's session and token, 31 minutes later.
    karin_cookie = karin.client.cookies[COOKIE]
    clock.fixed = utcnow() + timedelta(minutes=31)
    stale = browser()
    stale.client.cookies.set(COOKIE, karin_cookie)
    replay(stale, karin_token, "after the idle timeout")
    page = karin.client.get("/vard")  # the browser is sent to log in, and told why
    assert page.url.path == "/login" and "inte hade gjort något på en stund" in page.text

    print(f"AT-25 requests={requests} accepted={accepted}")
    assert requests == 25 and accepted == 0


def test_a_session_in_use_does_not_time_out_and_login_renews_the_session_id(
    client: TestClient, auth: Auth, browser: Callable[[], Browser]
) -> None:
    eva = browser()
    anonymous_token = eva.csrf("/login")
    eva.login("eva")
    # The token of the page before login belongs to the old session id.
    refused = eva.client.post("/logout", data={"csrf_token": anonymous_token})
    assert refused.status_code == 403 and _signed_in(eva)
    start = utcnow()
    for minutes in (20, 40, 60):  # used every 20 minutes: never idle for 30
        clock.fixed = start + timedelta(minutes=minutes)
        assert _signed_in(eva)
    clock.fixed = start + timedelta(minutes=95)
    assert not _signed_in(eva)


def test_a_tampered_cookie_is_no_session(browser: Callable[[], Browser]) -> None:
    eva = browser()
    eva.login("eva")
    value = eva.client.cookies[COOKIE]
    body, signature = value.split(".")
    eva.client.cookies.clear()
    eva.client.cookies.set(COOKIE, body[:-2] + "AA." + signature)
    assert not _signed_in(eva)
