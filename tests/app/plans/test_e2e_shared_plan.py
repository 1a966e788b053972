"""Issue 14's story end to end: the real CLI seeds, a real uvicorn serves, HTTP drives it.

Eva proposes two agreements to Allan; he agrees to one and declines the other with a
comment; Eva sees both. Eva books a phone call for Thursday 10:00; Allan sees it on his
timeline and in his phone's calendar through the .ics link. Allan writes what matters to him
and a question; Eva reads both on his overview. Asta's care contact is Karin Holm, and
advice that says "contact" names her. (The reminder push an hour before needs a frozen clock:
tests/app/activities/test_activities.py.)
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, timedelta
from functools import cache
from urllib.parse import urlparse
from zoneinfo import ZoneInfo

import httpx
import icalendar
import pytest

from tests.app.factories import batch, bp
from tests.live import LiveServer

pytestmark = pytest.mark.e2e

STOCKHOLM = ZoneInfo("Europe/Stockholm")
MEASURE = "Mät blodtrycket morgon och kväll i två veckor"
CALL = "Ring Allan och gå igenom värdena"
WHAT_MATTERS = "Det viktigaste för mig är att orka gå med barnbarnen"
QUESTION = "Kan jag ta medicinen på kvällen i stället?"


def next_thursday_at_ten(now: datetime) -> datetime:
    """Thursday 10:00 in Stockholm, at least a day ahead."""
    local = now.astimezone(STOCKHOLM) + timedelta(days=1)
    days = (3 - local.weekday()) % 7
    day = (local + timedelta(days=days)).date()
    return datetime(day.year, day.month, day.day, 10, 0, tzinfo=STOCKHOLM)


def shared_plan_story(http: httpx.Client, auth: Callable[[str], dict[str, str]]) -> None:
    """The issue's story over HTTP."""
    allan, eva = auth("allan"), auth("eva")
    eva_id = http.get("/v1/me", headers=eva).json()["user"]["id"]
    pid = http.get("/v1/me", headers=allan).json()["patients"][0]["id"]
    plan = http.get(f"/v1/patients/{pid}/plan", headers=eva).json()
    today = datetime.now(STOCKHOLM).date()
    body = {k: plan[k] for k in ("rules", "schedule", "agreements")}
    body["agreements"] += [
        {"text": MEASURE, "when": {"days": "daily", "until": str(today + timedelta(days=14))},
         "responsible": {"kind": "patient"}},
        {"text": CALL, "when": {"on": str(today + timedelta(days=3))},
         "responsible": {"kind": "clinician", "id": eva_id}},
    ]  # fmt: skip
    saved = http.put(f"/v1/patients/{pid}/plan", json=body, headers=eva)
    assert saved.status_code == 200, saved.text
    ids = {a["text"]: a["id"] for a in saved.json()["agreements"]}
    agreed = http.post(f"/v1/patients/me/plan/agreements/{ids[MEASURE]}/decision",
                       json={"decision": "agreed"}, headers=allan)  # fmt: skip
    assert agreed.status_code == 200, agreed.text
    declined = http.post(f"/v1/patients/me/plan/agreements/{ids[CALL]}/decision",
                         json={"decision": "declined", "comment": "Jag ringer själv."},
                         headers=allan)  # fmt: skip
    assert declined.status_code == 200, declined.text

    start = next_thursday_at_ten(datetime.now(STOCKHOLM))
    booked = http.post(f"/v1/patients/{pid}/activities", headers=eva,
                       json={"kind": "phone", "start": start.isoformat(),
                             "end": (start + timedelta(minutes=20)).isoformat(),
                             "where_or_how": "Eva ringer dig",
                             "note": "Gå igenom värdena"})  # fmt: skip
    assert booked.status_code == 201, booked.text
    timeline = http.get("/v1/patients/me/activities", headers=allan).json()["items"]
    assert any(datetime.fromisoformat(a["start"]) == start for a in timeline)
    link = http.post("/v1/patients/me/calendar-link", headers=allan)
    assert link.status_code == 201, link.text
    feed = http.get(urlparse(link.json()["url"]).path)  # no bearer token: the link is the key
    assert feed.status_code == 200 and feed.headers["content-type"].startswith("text/calendar")
    events = icalendar.Calendar.from_ical(feed.content).walk("VEVENT")
    assert any(e.decoded("DTSTART") == start for e in events)
    assert "Gå igenom värdena" not in feed.text and "Allan" not in feed.text

    story = {"what_matters": WHAT_MATTERS, "questions": [QUESTION]}
    assert http.put("/v1/patients/me/story", json=story, headers=allan).status_code == 200

    overview = http.get(f"/v1/patients/{pid}/plan/overview", headers=eva).json()
    decided = {a["text"]: (a["status"], a["comment"]) for a in overview["agreements"]}
    assert decided[MEASURE] == ("agreed", "") and decided[CALL] == ("declined", "Jag ringer själv.")
    assert overview["story"]["what_matters"] == WHAT_MATTERS
    assert overview["story"]["questions"] == [QUESTION]
    assert any(datetime.fromisoformat(a["start"]) == start for a in overview["activities"])

    asta = auth("asta")
    hers = http.get("/v1/patients/me/plan/overview", headers=asta).json()["care_contact"]
    assert hers["clinician"]["display_name"] == "Karin Holm" and hers["phone"]
    synced = http.post("/v1/patients/me/sync", json=batch(bp(192, 118)), headers=asta)
    assert synced.status_code == 200, synced.text
    advice = http.get("/v1/patients/me/advice", headers=asta).json()["items"]
    assert "Karin Holm" in advice[0]["body"]


def test_issue_14_story(seeded_server: LiveServer) -> None:
    auth = cache(seeded_server.token)
    with httpx.Client(base_url=seeded_server.base, timeout=30) as http:
        shared_plan_story(http, auth)
