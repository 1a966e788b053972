"""The proxies page (/mina/ombud): invite, accept a code, confirm, narrow, revoke, give up."""

from __future__ import annotations

import re
from collections.abc import Callable

from fastapi.testclient import TestClient
from httpx2 import Response
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from app.auth.models import ProxyGrant, User
from app.consent.models import ProxyInvitation
from app.web.mina_words import MINA_WORDS
from tests.app.factories import patient_id
from tests.app.web.conftest import Browser

Auth = Callable[[str], dict[str, str]]
PAGE = "/mina/ombud"
CODE_TEXT = (
    "Ge koden till den du vill ska bli ombud. Den gäller i 72 timmar och kan användas en gång."
)


def _code(page: str) -> str:
    found = re.search(r'class="invitation-code" data-code>([^<]+)<', page)
    assert found, page[-2000:]
    return found.group(1).strip()


def _grant_id(page: str, status: str) -> str:
    found = re.search(rf'data-grant="([^"]+)" data-status="{status}"', page)
    assert found, page[-3000:]
    return found.group(1)


def _post(browser: Browser, path: str, data: dict[str, str]) -> Response:
    """Post a form of the proxies page (its CSRF token from the page)."""
    return browser.post(path, data, token_from=PAGE)


def _invitations(session: Session) -> int:
    session.expire_all()
    return int(session.scalar(select(func.count()).select_from(ProxyInvitation)) or 0)


def _maria_grants(session: Session, asta: str) -> list[ProxyGrant]:
    session.expire_all()
    maria = session.scalars(select(User).where(User.handle == "maria")).one()
    query = select(ProxyGrant).where(
        ProxyGrant.patient_id == asta, ProxyGrant.grantee_id == maria.id
    )
    return list(session.scalars(query))


def test_asta_invites_maria_accepts_asta_confirms_narrows_and_revokes(
    browser: Callable[[], Browser], session: Session
) -> None:
    asta_id = patient_id(session, "asta")
    asta = browser()
    asta.login("asta")
    page = asta.client.get(PAGE)
    assert page.status_code == 200
    assert "Dina ombud" in page.text and "Maria Berglund" in page.text
    assert "se dina värden, få råd, skriva in värden" in page.text  # the seeded grant
    assert "<legend" in page.text and 'type="checkbox"' in page.text

    invited = _post(asta, f"{PAGE}/inbjudan", {"scope-read": "1", "scope-message": "1"})
    assert invited.status_code == 201, invited.text[-2000:]
    assert CODE_TEXT in invited.text and invited.headers["cache-control"] == "no-store"
    code = _code(invited.text)
    assert code not in asta.client.get(PAGE).text  # shown once, kept nowhere

    maria = browser()
    maria.login("maria")
    own = maria.client.get(PAGE).text
    assert "Du är ombud för" in own and "Har du fått en kod?" in own
    accepted = _post(maria, f"{PAGE}/kod", {"code": code.lower()})
    assert accepted.status_code == 200 and accepted.url.path == PAGE, accepted.text[-2000:]
    assert "Koden fungerade. Nu måste Asta Berglund godkänna" in accepted.text
    assert "Väntar på att Asta Berglund godkänner." in accepted.text
    again = _post(maria, f"{PAGE}/kod", {"code": code})  # a code is used once
    assert again.status_code == 422 and "Koden fungerar inte." in again.text

    pending = _grant_id(asta.client.get(PAGE).text, "pending")
    confirmed = _post(
        asta,
        f"{PAGE}/{pending}/godkann",
        {},
    )
    assert confirmed.status_code == 200 and confirmed.url.path == PAGE
    assert "Maria Berglund kan nu se dina värden." in confirmed.text
    assert _grant_id(confirmed.text, "active") == pending

    overview = maria.client.get(f"/mina?for={asta_id}")
    assert overview.status_code == 200
    assert "Du ser uppgifter för Asta Berglund." in overview.text
    assert maria.client.get(f"/mina/meddelanden?for={asta_id}").status_code == 200
    hers = maria.client.get(f"{PAGE}?for={asta_id}").text
    assert "Ombud för Asta Berglund" in hers and "se värdena, skriva till vården" in hers
    assert "Sluta vara ombud" in hers and "Dina ombud" not in hers  # her grant only

    # A proxy can never widen her own grant.
    wider = _post(
        maria,
        f"{PAGE}/{pending}/andra?for={asta_id}",
        {f"{pending}-scope-read": "1", f"{pending}-scope-message": "1",
         f"{pending}-scope-agree": "1"},
    )  # fmt: skip
    assert wider.status_code == 422
    assert "Du kan bara ta bort saker och välja en tidigare sista dag." in wider.text
    widened = [g for g in _maria_grants(session, asta_id) if g.id == pending]
    assert widened[0].scopes == ["message", "read"]

    narrowed = _post(asta, f"{PAGE}/{pending}/andra", {f"{pending}-scope-read": "1"})
    assert narrowed.status_code == 200 and narrowed.url.path == PAGE, narrowed.text[-2000:]
    assert "Det Maria Berglund får göra för dig har ändrats." in narrowed.text
    assert maria.client.get(f"/mina/meddelanden?for={asta_id}").status_code == 404
    assert maria.client.get(f"/mina?for={asta_id}").status_code == 200

    revoked = _post(asta, f"{PAGE}/{pending}/aterkalla", {})
    assert revoked.status_code == 200
    assert "Maria Berglund är inte längre ditt ombud." in revoked.text
    assert re.search(r"Gällde från \d+ \w+ \d{4} till \d+ \w+ \d{4}", revoked.text)
    assert maria.client.get(f"/mina?for={asta_id}").status_code == 404
    assert maria.client.get(f"{PAGE}?for={asta_id}").status_code == 404
    assert all(g.status == "revoked" for g in _maria_grants(session, asta_id))


def test_narrowing_the_end_day_and_refusals_in_plain_swedish(
    browser: Callable[[], Browser], session: Session
) -> None:
    asta_id = patient_id(session, "asta")
    asta = browser()
    asta.login("asta")
    gid = _grant_id(asta.client.get(PAGE).text, "active")
    none = _post(asta, f"{PAGE}/{gid}/andra", {f"{gid}-valid_to": "2099-01-31"})
    assert none.status_code == 422 and "Välj minst en sak som ombudet får göra." in none.text
    bad = _post(asta,
        f"{PAGE}/{gid}/andra", {f"{gid}-scope-read": "1", f"{gid}-valid_to": "31 jan"},
    )  # fmt: skip
    assert bad.status_code == 422 and "Skriv en dag, till exempel 2027-03-31." in bad.text
    past = _post(
        asta,
        f"{PAGE}/{gid}/andra",
        {f"{gid}-scope-read": "1", f"{gid}-valid_to": "2020-01-01"},
    )
    assert past.status_code == 422 and "Dagen måste vara i dag eller senare." in past.text
    ended = _post(
        asta,
        f"{PAGE}/{gid}/andra",
        {f"{gid}-scope-read": "1", f"{gid}-valid_to": "2099-01-31"},
    )
    assert ended.status_code == 200 and "till och med 31 jan 2099" in ended.text
    grant = next(g for g in _maria_grants(session, asta_id) if g.id == gid)
    assert grant.scopes == ["read"] and grant.valid_to is not None

    no_scope = _post(
        asta,
        f"{PAGE}/inbjudan",
        {"valid_to": "1 maj"},
    )
    assert no_scope.status_code == 422
    assert "Välj minst en sak som ombudet får göra." in no_scope.text
    assert "Skriv en dag, till exempel 2027-03-31." in no_scope.text
    assert 'class="error-summary"' in no_scope.text


def test_maria_gives_up_her_grant_and_her_next_request_for_asta_is_404(
    browser: Callable[[], Browser], session: Session
) -> None:
    asta_id = patient_id(session, "asta")
    maria = browser()
    maria.login("maria")
    hers = maria.client.get(f"{PAGE}?for={asta_id}").text
    gid = _grant_id(hers, "active")
    given_up = _post(
        maria,
        f"{PAGE}/{gid}/aterkalla?for={asta_id}",
        {},
    )
    assert given_up.status_code == 200 and given_up.url.path == PAGE
    assert "Du är inte längre ombud för Asta Berglund." in given_up.text
    assert "Du är inte ombud för någon just nu." in given_up.text
    assert maria.client.get(f"/mina?for={asta_id}").status_code == 404


def test_forms_without_or_with_a_wrong_csrf_token_are_refused_and_change_nothing(
    browser: Callable[[], Browser], session: Session
) -> None:
    asta_id = patient_id(session, "asta")
    asta = browser()
    asta.login("asta")
    gid = _grant_id(asta.client.get(PAGE).text, "active")
    before = _invitations(session)
    for token in ({}, {"csrf_token": "not-this-sessions"}):
        invite = asta.client.post(f"{PAGE}/inbjudan", data={"scope-read": "1", **token})
        assert invite.status_code == 403
        revoke = asta.client.post(f"{PAGE}/{gid}/aterkalla", data=token)
        assert revoke.status_code == 403
        narrow = asta.client.post(f"{PAGE}/{gid}/andra", data={f"{gid}-scope-read": "1", **token})
        assert narrow.status_code == 403
    assert _invitations(session) == before
    grant = next(g for g in _maria_grants(session, asta_id) if g.id == gid)
    assert grant.status == "active" and len(grant.scopes) == 3


def test_allan_cannot_see_or_touch_astas_proxies(
    browser: Callable[[], Browser], session: Session
) -> None:
    asta_id = patient_id(session, "asta")
    asta = browser()
    asta.login("asta")
    gid = _grant_id(asta.client.get(PAGE).text, "active")
    allan = browser()
    allan.login("allan")
    assert allan.client.get(f"{PAGE}?for={asta_id}").status_code == 404
    assert "Maria Berglund" not in allan.client.get(PAGE).text
    refused = _post(
        allan,
        f"{PAGE}/{gid}/aterkalla",
        {},
    )
    assert refused.status_code == 404
    refused = _post(
        allan,
        f"{PAGE}/{gid}/aterkalla?for={asta_id}",
        {},
    )
    assert refused.status_code == 404
    grant = next(g for g in _maria_grants(session, asta_id) if g.id == gid)
    assert grant.status == "active"
    # Maria may not invite for Asta: only the patient does.
    maria = browser()
    maria.login("maria")
    invite = _post(
        maria,
        f"{PAGE}/inbjudan?for={asta_id}",
        {"scope-read": "1"},
    )
    assert invite.status_code == 404


def test_a_relative_with_two_people_switches_between_them_on_the_overview(
    browser: Callable[[], Browser], session: Session
) -> None:
    asta_id, allan_id = patient_id(session, "asta"), patient_id(session, "allan")
    allan = browser()
    allan.login("allan")
    code = _code(_post(allan, f"{PAGE}/inbjudan", {"scope-read": "1"}).text)
    maria = browser()
    maria.login("maria")
    _post(maria, f"{PAGE}/kod", {"code": code})
    pending = _grant_id(allan.client.get(PAGE).text, "pending")
    _post(
        allan,
        f"{PAGE}/{pending}/godkann",
        {},
    )

    landed = maria.client.get("/mina")
    assert "Vems uppgifter vill du se?" in landed.text  # two people: she chooses
    page = maria.client.get(f"/mina?for={asta_id}").text
    assert 'class="person-switch"' in page
    assert f'href="/mina?for={allan_id}"' in page
    assert re.search(rf'href="/mina\?for={asta_id}" aria-current="page"', page)
    ombud = maria.client.get(PAGE).text
    assert re.search(r'href="/mina/ombud" aria-current="page">Mina egna<', ombud)
    assert f'href="/mina/ombud?for={allan_id}"' in ombud


def test_a_legal_representative_is_shown_with_its_basis_and_without_buttons(
    client: TestClient, auth: Auth, browser: Callable[[], Browser], session: Session
) -> None:
    asta_id = patient_id(session, "asta")
    allan_user = session.scalars(select(User).where(User.handle == "allan")).one()
    registered = client.post(
        f"/v1/patients/{asta_id}/proxies",
        json={"grantee_id": allan_user.id, "scopes": ["read"], "basis": "legal_representative",
              "basis_note": "Tingsrättens beslut 2026-11-02"},
        headers=auth("karin"),
    )  # fmt: skip
    assert registered.status_code == 201, registered.text
    asta = browser()
    asta.login("asta")
    page = asta.client.get(PAGE).text
    assert "God man eller förvaltare" in page and "Beslut: Tingsrättens beslut 2026-11-02" in page
    block = page.split('data-basis="legal_representative"', 1)[1].split("</li>", 1)[0]
    assert "Allan Andersson" in block and "<form" not in block
    refused = _post(asta, f"{PAGE}/{registered.json()['id']}/aterkalla", {})
    assert refused.status_code == 200 and "Det kan bara vården ändra." in refused.text
    session.expire_all()
    still = session.get(ProxyGrant, registered.json()["id"])
    assert still is not None and still.status == "active"


def test_the_pages_speak_english_when_asked(browser: Callable[[], Browser]) -> None:
    asta = browser()
    asta.login("asta")
    page = asta.client.get(f"{PAGE}?lang=en").text
    assert "Your proxies" in page and "see your values, get advice, enter values" in page
    assert "What may the proxy do?" in page and "Make a code" in page
    messages = asta.client.get("/mina/meddelanden").text
    assert "Write a message" in messages and "No messages yet." in messages


def test_every_new_word_is_in_both_languages_and_the_pages_have_no_inline_style_or_script(
    browser: Callable[[], Browser],
) -> None:
    assert set(MINA_WORDS["sv"]) == set(MINA_WORDS["en"])
    maria = browser()
    maria.login("maria")
    asta = browser()
    asta.login("asta")
    for who, path in ((asta, PAGE), (asta, "/mina/meddelanden"), (maria, PAGE), (asta, "/mina")):
        html = who.client.get(path).text
        assert " style=" not in html and not re.search(r"<script(?![^>]*\bsrc=)", html), path
