"""The plan editor: preview of the alert burden, saving a new version, Swedish errors; audit."""

from __future__ import annotations

import re
from collections.abc import Callable
from decimal import Decimal

from fastapi.testclient import TestClient
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from app.audit.models import AuditEvent
from app.plans.models import PlanVersion
from tests.app.factories import patient_id
from tests.app.web.conftest import Browser
from tests.app.web.test_patients import _asta_week

Auth = Callable[[str], dict[str, str]]
GAIN = "r0-gain"  # weight-gain-hf is the first rule of Asta's plan


def _versions(session: Session, pid: str) -> int:
    query = select(func.count()).select_from(PlanVersion).where(PlanVersion.patient_id == pid)
    return int(session.scalar(query) or 0)


def _burden(page: str, rule: str) -> dict[str, float]:
    found = re.search(rf'<tr data-rule="{rule}" ([^>]*)>', page)
    assert found, f"no burden row for {rule}"
    return {k: float(v) for k, v in re.findall(r'data-(\w+-\w+)="([\d.]+)"', found.group(1))}


def _eva_at_astas_plan(
    client: TestClient, auth: Auth, browser: Callable[[], Browser], session: Session
) -> tuple[str, str, Browser]:
    """Asta with a week of readings; Eva signed in; the editor's address."""
    _asta_week(client, auth)
    asta = patient_id(session, "asta")
    eva = browser()
    eva.login("eva")
    return asta, f"/vard/patients/{asta}/plan", eva


def test_the_editor_shows_rules_parameters_schedule_and_contact(
    browser: Callable[[], Browser], session: Session
) -> None:
    eva = browser()
    eva.login("eva")
    page = eva.client.get(f"/vard/patients/{patient_id(session, 'asta')}/plan")
    assert page.status_code == 200
    text = page.text
    assert "Egenvårdsplan, version 1" in text
    assert 'id="r0-gain" name="r0-gain" value="2"' in text and "Standard: 2 kg" in text
    assert 'id="r3-target_low" name="r3-target_low" value="88"' in text  # Asta's own SpO2
    assert 'name="s0-times" value="07:30"' in text and "Varje dag" in text
    assert "Förhandsgranska" in text and "Spara" in text
    assert "Väg dig varje morgon" in text and "Karin Holm" in text
    assert text.count('name="csrf_token"') >= 2  # the plan form and the logout form


def test_preview_shows_old_and_new_burden_and_saving_makes_a_version(
    client: TestClient, auth: Auth, browser: Callable[[], Browser], session: Session
) -> None:
    asta, url, eva = _eva_at_astas_plan(client, auth, browser, session)
    before = _versions(session, asta)
    preview = eva.post(f"{url}/preview", {GAIN: "1,0"}, token_from=url)
    assert preview.status_code == 200, preview.text[-2000:]
    assert "Flaggor och råd per vecka, de senaste 30 dagarna" in preview.text
    weight = _burden(preview.text, "weight-gain-hf")
    # A lower limit gives more advice over the same readings; the old plan is the current.
    assert weight["new-advice"] > weight["old-advice"] > 0
    assert weight["new-flags"] >= weight["old-flags"] > 0
    assert 'value="1,0"' in preview.text  # the form keeps what Eva wrote
    assert _versions(session, asta) == before  # a preview saves nothing

    saved = eva.post(url, {GAIN: "1,5"}, token_from=url)
    assert saved.status_code == 200 and saved.url.path == url
    assert "Egenvårdsplanen är sparad som version 2." in saved.text
    assert _versions(session, asta) == before + 1
    plan = client.get(f"/v1/patients/{asta}/plan", headers=auth("eva")).json()
    assert plan["version"] == 2
    gain = plan["rules"][0]["params"]["gain"]
    assert Decimal(str(gain["value"])) == Decimal("1.5") and gain["unit"] == "kg"
    assert len(plan["agreements"]) == 9  # kept as they were
    assert 'id="r0-gain" name="r0-gain" value="1,5"' in saved.text


def test_a_bad_value_is_shown_in_swedish_and_nothing_is_saved(
    browser: Callable[[], Browser], session: Session
) -> None:
    asta = patient_id(session, "asta")
    url = f"/vard/patients/{asta}/plan"
    eva = browser()
    eva.login("eva")
    before = _versions(session, asta)
    for action in (url, f"{url}/preview"):
        negative = eva.post(action, {GAIN: "-1"}, token_from=url)
        assert negative.status_code == 422
        assert "Det finns ett problem" in negative.text
        assert (
            '<li><a href="#r0-gain">Värdet måste vara mellan 0,5 och 5 kg.</a></li>'
            in negative.text
        )
        assert 'id="r0-gain-error"' in negative.text and 'value="-1"' in negative.text
        text = eva.post(action, {GAIN: "två kilo", "s0-times": "halv åtta"}, token_from=url)
        assert text.status_code == 422
        assert "Skriv ett tal, till exempel 2." in text.text
        assert "Skriv klockslag som 07:30, skilda med kommatecken." in text.text
    assert _versions(session, asta) == before
    # Without the session's CSRF token: 403, nothing saved.
    refused = eva.client.post(url, data={GAIN: "1,5"})
    assert refused.status_code == 403
    assert _versions(session, asta) == before


def test_karin_cannot_open_allans_plan_and_every_page_read_is_audited(
    browser: Callable[[], Browser], session: Session
) -> None:
    asta, allan = patient_id(session, "asta"), patient_id(session, "allan")
    karin, eva = browser(), browser()
    karin.login("karin")
    assert karin.client.get(f"/vard/patients/{allan}/plan").status_code == 404
    refused = karin.post(f"/vard/patients/{allan}/plan", {GAIN: "1,5"}, token_from="/vard")
    assert refused.status_code == 404
    eva.login("eva")
    start = session.scalar(select(func.max(AuditEvent.seq))) or 0
    for path in ("/vard/patients", f"/vard/patients/{asta}", f"/vard/patients/{asta}/plan"):
        assert eva.client.get(path).status_code == 200
    rows = session.scalars(select(AuditEvent).where(AuditEvent.seq > start)).all()
    assert [(r.actor_handle, r.relation, r.action, r.resource, r.outcome) for r in rows] == [
        ("eva", "list", "read", "GET /vard/patients", "ok"),
        ("eva", "care_team", "read", "GET /vard/patients/{pid}", "ok"),
        ("eva", "care_team", "read", "GET /vard/patients/{pid}/plan", "ok"),
    ]


def test_removing_a_rule_shows_its_burden_gone_and_saves_a_plan_without_it(
    client: TestClient, auth: Auth, browser: Callable[[], Browser], session: Session
) -> None:
    asta, url, eva = _eva_at_astas_plan(client, auth, browser, session)
    preview = eva.post(f"{url}/preview", {"r0-remove": "1"}, token_from=url)
    assert preview.status_code == 200, preview.text[-2000:]
    weight = _burden(preview.text, "weight-gain-hf")
    assert weight["old-advice"] > 0 and weight["new-advice"] == weight["new-flags"] == 0
    assert 'name="r0-remove" value="1" checked' in preview.text  # still ticked on the page

    saved = eva.post(url, {"r0-remove": "1"}, token_from=url)
    assert "Egenvårdsplanen är sparad som version 2." in saved.text
    rules = [
        r["rule"]
        for r in client.get(f"/v1/patients/{asta}/plan", headers=auth("eva")).json()["rules"]
    ]
    assert "weight-gain-hf" not in rules and "spo2-low" in rules


def test_adding_a_rule_asks_for_its_personal_limit_before_it_can_be_saved(
    client: TestClient, auth: Auth, browser: Callable[[], Browser], session: Session
) -> None:
    asta = patient_id(session, "asta")
    url = f"/vard/patients/{asta}/plan"
    eva = browser()
    eva.login("eva")
    page = eva.client.get(url).text
    assert '<option value="peak-flow-zone">' in page and '<option value="spo2-low">' not in page
    before = _versions(session, asta)
    rules_before = len(client.get(f"/v1/patients/{asta}/plan", headers=auth("eva")).json()["rules"])

    added = eva.post(f"{url}/preview", {"add-rule": "peak-flow-zone"}, token_from=url)
    # A personal best is never guessed: the field is empty and the preview says what is missing.
    assert added.status_code == 422
    block = re.search(
        r'<fieldset[^>]*data-rule="peak-flow-zone" data-added="1".*?</fieldset>', added.text, re.S
    )
    assert block, "the added rule is not on the page"
    hidden = re.search(r'name="(added-\d+)" value="peak-flow-zone"', block.group(0))
    best = re.search(
        r'id="(r\d+-personal_best)" name="r\d+-personal_best" value=""', block.group(0)
    )
    assert hidden and best
    assert "Skriv patientens eget värde." in added.text
    # Sent empty, it is asked for as a number.
    empty = eva.post(f"{url}/preview", {hidden.group(1): "peak-flow-zone", best.group(1): ""},
                     token_from=url)  # fmt: skip
    assert empty.status_code == 422 and "Skriv ett tal, till exempel 400." in empty.text
    assert _versions(session, asta) == before

    form = {hidden.group(1): "peak-flow-zone", best.group(1): "450"}
    saved = eva.post(url, form, token_from=url)
    assert "Egenvårdsplanen är sparad som version 2." in saved.text, saved.text[-1500:]
    plan = client.get(f"/v1/patients/{asta}/plan", headers=auth("eva")).json()
    [peak] = [r for r in plan["rules"] if r["rule"] == "peak-flow-zone"]
    assert Decimal(str(peak["params"]["personal_best"]["value"])) == 450
    assert len(plan["rules"]) == rules_before + 1
