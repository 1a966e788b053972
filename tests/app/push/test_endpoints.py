"""Push endpoints go to public push services only (issue 10 §3): no SSRF, no stalled run.

The hostile story: a patient subscribes ``https://169.254.169.254/…`` and reads the connection
error back from ``/notifications``, then ``https://[::1]/x`` and stalls everyone's pushes.
"""

from __future__ import annotations

import random
from collections import Counter
from collections.abc import Callable

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func, select
from sqlalchemy.orm import Session, sessionmaker

from app.config import Settings
from app.db import transaction
from app.push.dispatcher import dispatch
from app.push.endpoints import EndpointProblem, TableResolver, endpoint_problem
from app.push.models import OutboxMessage, PushSubscription
from app.push.sender import PushMessage, RecordingSender, SendResult
from app.push.service import notification_dict
from tests.app.push import factories as f
from tests.app.push.push_service import LocalPushService

Auth = Callable[[str], dict[str, str]]

HOSTS = TableResolver(
    {
        "push.example.test": ["93.184.216.34"],
        "fcm.googleapis.com": ["142.250.74.74"],
        "wns2-par02p.notify.windows.com": ["20.44.232.10"],
        "metadata.evil.test": ["169.254.169.254"],
        "intranet.evil.test": ["10.0.0.5"],
        "home.evil.test": ["192.168.1.1"],
        "loop.evil.test": ["127.0.0.1"],
        "mapped.evil.test": ["::ffff:10.0.0.1"],
        "linklocal6.evil.test": ["fe80::1"],
        "ula.evil.test": ["fd00::1"],
        "mixed.evil.test": ["93.184.216.34", "10.0.0.5"],
        "docs.evil.test": ["203.0.113.7"],
    }
)


def _code(endpoint: str, settings: Settings) -> str | None:
    problem = endpoint_problem(endpoint, settings, HOSTS)
    return problem.code if isinstance(problem, EndpointProblem) else None


@pytest.mark.parametrize(
    ("endpoint", "development", "production"),
    [
        ("https://push.example.test/x", None, "unknown_push_service"),
        ("https://fcm.googleapis.com/fcm/send/abc", None, None),
        ("https://wns2-par02p.notify.windows.com/w/?token=x", None, None),
        ("https://fcm.googleapis.com.evil.test/x", "unresolvable", "unknown_push_service"),
        ("https://169.254.169.254/latest/meta-data", "address_not_allowed", "address_not_allowed"),
        ("https://[::1]/x", "address_not_allowed", "address_not_allowed"),
        ("https://10.0.0.5/x", "address_not_allowed", "address_not_allowed"),
        ("https://metadata.evil.test/x", "address_not_allowed", "unknown_push_service"),
        ("https://intranet.evil.test/x", "address_not_allowed", "unknown_push_service"),
        ("https://home.evil.test/x", "address_not_allowed", "unknown_push_service"),
        ("https://loop.evil.test/x", "address_not_allowed", "unknown_push_service"),
        ("https://mapped.evil.test/x", "address_not_allowed", "unknown_push_service"),
        ("https://linklocal6.evil.test/x", "address_not_allowed", "unknown_push_service"),
        ("https://ula.evil.test/x", "address_not_allowed", "unknown_push_service"),
        ("https://mixed.evil.test/x", "address_not_allowed", "unknown_push_service"),
        ("https://docs.evil.test/x", "address_not_allowed", "unknown_push_service"),
        ("https://nowhere.evil.test/x", "unresolvable", "unknown_push_service"),
        ("http://push.example.test/x", "insecure_endpoint", "insecure_endpoint"),
        ("http://127.0.0.1:8123/push/x", None, "insecure_endpoint"),
        ("http://localhost:8123/push/x", None, "insecure_endpoint"),
        ("http://[::1]:8123/push/x", "insecure_endpoint", "insecure_endpoint"),
        ("https://u:p@push.example.test/x", "invalid_url", "invalid_url"),
        ("https:///x", "invalid_url", "invalid_url"),
    ],
)
def test_which_endpoints_are_allowed(
    settings: Settings, endpoint: str, development: str | None, production: str | None
) -> None:
    dev = settings.model_copy(update={"environment": "development"})
    prod = settings.model_copy(update={"environment": "production"})
    assert _code(endpoint, dev) == development
    assert _code(endpoint, prod) == production


def test_a_metadata_endpoint_is_refused_and_nothing_is_stored(
    client: TestClient, auth: Auth, session: Session
) -> None:
    keys = {
        "p256dh": "BNcRdreALRFXTkOOUHK1EtK2wtaz5Ry4YfYCA_0QTpQtUbVlUls0VJXg7A8u-Ts1XbjhazAkj7"
        "I99e8QcYP7DkM",
        "auth": "tBHItJI5svbpez7KI4CCXg",
    }
    for endpoint in ("https://169.254.169.254/latest/meta-data", "https://[::1]/x"):
        answer = client.post(
            "/v1/push/subscriptions",
            json={"endpoint": endpoint, "keys": keys},
            headers=auth("allan"),
        )
        assert answer.status_code == 422, answer.text
        assert answer.headers["content-type"].startswith("application/problem+json")
        assert [(e["loc"], e["code"]) for e in answer.json()["errors"]] == [
            ("endpoint", "address_not_allowed")
        ]
    assert session.scalar(select(func.count()).select_from(PushSubscription)) == 0


class _Exploding(RecordingSender):
    """A sender with a bug for one endpoint."""

    def send(self, message: PushMessage) -> SendResult:
        if message.endpoint.endswith("/boom"):
            raise RuntimeError("secret internal detail 10.0.0.5:5432")
        return super().send(message)


def test_a_host_that_turns_private_is_dead_lettered_and_others_still_go(
    factory: sessionmaker[Session], push_settings: Settings, push_service: LocalPushService
) -> None:
    """Checked again at sending (DNS rebinding); one bad row never stops the run."""
    sender = _Exploding()
    with transaction(factory) as session:
        asta, target = f.user(session, "asta"), f.patient(session, "asta")
        rebound = PushSubscription(
            user_id=asta.id,
            endpoint="https://rebind.evil.test/x",
            p256dh=push_service.subscriber().p256dh,
            auth=push_service.subscriber().auth,
            patient_ids=[],
            status="active",
            created_at=f.T0,
        )
        broken_browser = push_service.subscriber()
        broken_browser.endpoint = broken_browser.endpoint + "/boom"
        broken = f.subscription(session, asta, broken_browser)
        fine = f.subscription(session, asta, push_service.subscriber())
        session.add(rebound)
        session.flush()
        rows = {
            name: f.message(session, sub, target, n).id
            for n, (name, sub) in enumerate(
                [("rebound", rebound), ("broken", broken), ("fine", fine)]
            )
        }
    # At subscribe time the host was public; now it resolves to the metadata service.
    stats = dispatch(
        factory,
        push_settings,
        f.T0,
        sender=sender,
        rng=random.Random(1),
        resolver=TableResolver({"rebind.evil.test": ["169.254.169.254"]}),
    )
    assert (stats.sent, stats.dead) == (1, 2)
    assert [m.endpoint for m in sender.sent] == [fine.endpoint]
    with transaction(factory) as session:
        shown = {
            name: notification_dict(session.get(OutboxMessage, rid))  # type: ignore[arg-type]
            for name, rid in rows.items()
        }
    assert shown["rebound"]["reason"] == "endpoint_address_not_allowed"
    assert shown["broken"]["status"] == "dead" and shown["broken"]["reason"] == "sender_error"
    assert all("10.0.0.5" not in str(n) and "169.254" not in str(n) for n in shown.values())
    assert all("last_error" not in n for n in shown.values())


class _CountingResolver(TableResolver):
    """The fixed table, counting the lookups of each host."""

    def __init__(self) -> None:
        super().__init__(HOSTS.table)
        object.__setattr__(self, "asked", Counter())

    def addresses(self, host: str) -> list[str]:
        self.asked[host] += 1  # type: ignore[attr-defined]
        return super().addresses(host)


def test_each_host_is_resolved_once_per_batch(
    factory: sessionmaker[Session], push_settings: Settings, push_service: LocalPushService
) -> None:
    """Many subscriptions at one push service cost one lookup of its host per batch, not one
    per message (the lookup blocks), and every message is still checked and sent."""
    sender, resolver = RecordingSender(), _CountingResolver()
    with transaction(factory) as session:
        asta, target = f.user(session, "asta"), f.patient(session, "asta")
        for n, endpoint in enumerate(
            ["https://fcm.googleapis.com/fcm/send/a", "https://fcm.googleapis.com/fcm/send/b",
             "https://fcm.googleapis.com/fcm/send/c", "https://docs.evil.test/x"]
        ):  # fmt: skip
            browser = push_service.subscriber()
            browser.endpoint = endpoint
            sub = f.subscription(session, asta, browser)
            f.message(session, sub, target, 2 * n)
            f.message(session, sub, target, 2 * n + 1)
    stats = dispatch(
        factory, push_settings, f.T0, sender=sender, rng=random.Random(1), resolver=resolver
    )
    # docs.evil.test resolves to the documentation range: no public address, both dead.
    assert (stats.sent, stats.dead) == (6, 2)
    asked = resolver.asked  # type: ignore[attr-defined]
    assert asked == {"fcm.googleapis.com": 1, "docs.evil.test": 1}
    assert len(sender.sent) == 6
