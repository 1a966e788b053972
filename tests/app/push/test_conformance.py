"""AT-17 (push under faults) and AT-18 (push conformance): the real pywebpush sender against the
local push service, on both databases; and the RFC 8291 example byte for byte."""

from __future__ import annotations

import json
import random
import socket
from collections import Counter
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import http_ece
import jwt
import pytest
from cryptography.hazmat.primitives.asymmetric import ec
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from app.config import Settings
from app.db import transaction
from app.push.dispatcher import dispatch
from app.push.models import OutboxMessage, PushSubscription
from app.push.sender import (
    VAPID_EXP_SECONDS,
    VAPID_RESIGN_SECONDS,
    PushMessage,
    WebPushSender,
    encode_payload,
)
from app.push.vapid import VapidKey, vapid_key
from tests.app.push import factories as f
from tests.app.push.push_service import (
    GONE,
    NOT_FOUND,
    OK,
    SERVER_ERROR,
    TIMEOUT,
    TOO_LARGE,
    Answer,
    LocalPushService,
    Received,
    Subscriber,
    b64url_decode,
    new_subscriber,
    rate_limited,
)
from tests.shared_data import SHARED_DATA, needs

RFC8291 = SHARED_DATA / "webpush" / "rfc8291-appendix-a.json"
RETRY_AFTER = 120


def real_sender(settings: Settings) -> WebPushSender:
    """pywebpush with the service's VAPID key from var/."""
    return WebPushSender(
        vapid_key(settings), subject=settings.vapid_subject, timeout=settings.push_timeout_seconds
    )


def drain(
    factory: sessionmaker[Session], settings: Settings, sender: WebPushSender, start: datetime
) -> None:
    """Run the dispatcher, jumping the clock to the next due row, until nothing is left."""
    now = start
    for _ in range(40):
        dispatch(factory, settings, now, sender=sender, rng=random.Random(11))
        with transaction(factory) as session:
            waiting = session.scalars(
                select(OutboxMessage.next_attempt_at).where(
                    OutboxMessage.status.in_(["pending", "sending"])
                )
            ).all()
        if not waiting:
            return
        now = max(now, min(waiting))
    raise AssertionError("the outbox did not drain")


def conformance(
    received: list[Received], expected: dict[tuple[str, str], OutboxMessage]
) -> tuple[int, int, list[str]]:
    """AT-18 over what the push service got: (vapid_valid, decrypt_ok, problems)."""
    vapid_valid = decrypt_ok = 0
    problems: list[str] = []
    for got in received:
        vapid_valid += got.vapid_valid
        problems += got.problems
        key = (got.token, str((got.payload or {}).get("advice_id")))
        row = expected.get(key)
        if row is None:
            problems.append(f"unexpected push {key}")
            continue
        if got.payload == row.payload:
            decrypt_ok += 1
        headers = (got.headers.get("ttl"), got.headers.get("urgency"), got.headers.get("topic"))
        # TTL is the freshness left when sent: positive, never more than the row was given.
        ttl_ok = (headers[0] or "").isdigit() and 0 < int(headers[0] or 0) <= row.ttl_seconds
        if not ttl_ok or headers[1:] != (row.urgency, row.topic):
            problems.append(f"headers {headers} for {row.id}")
    return vapid_valid, decrypt_ok, problems


def test_at17_at18_push_under_faults(
    factory: sessionmaker[Session],
    push_settings: Settings,
    push_service: LocalPushService,
    backend: str,
) -> None:
    """Every fault of the push service handled as designed; every push conforms and decrypts."""
    scripts: dict[str, tuple[list[Any], int]] = {  # name -> (answers, messages)
        "ok": ([OK], 3),
        "gone": ([GONE], 2),
        "not_found": ([NOT_FOUND], 1),
        "too_large": ([TOO_LARGE], 1),
        "rate_limited": ([rate_limited(RETRY_AFTER), OK], 1),
        "flaky": ([SERVER_ERROR, SERVER_ERROR, OK], 1),
        "slow": ([TIMEOUT, OK], 1),
        "broken": ([SERVER_ERROR], 1),
        "proxy": ([OK], 1),
    }
    browsers: dict[str, Subscriber] = {}
    subs: dict[str, str] = {}
    with transaction(factory) as session:
        target = f.patient(session, "asta")
        for name, (answers, count) in scripts.items():
            owner = f.user(session, "maria" if name == "proxy" else "asta")
            browsers[name] = push_service.subscriber(*answers)
            patient_ids = [target.id] if name == "proxy" else []
            sub = f.subscription(session, owner, browsers[name], patient_ids=patient_ids)
            subs[name] = sub.id
            for n in range(count):
                f.message(session, sub, target, n, urgency="high" if n % 2 else "normal")

    drain(factory, push_settings, real_sender(push_settings), f.T0)

    with transaction(factory) as session:
        rows = list(session.scalars(select(OutboxMessage)))
        sub_rows = {s.id: s for s in session.scalars(select(PushSubscription))}
    by_sub = {name: [r for r in rows if r.subscription_id == sid] for name, sid in subs.items()}
    status = {name: sorted(r.status for r in group) for name, group in by_sub.items()}
    assert status == {
        "ok": ["sent"] * 3,
        "gone": ["cancelled", "gone"],
        "not_found": ["gone"],
        "too_large": ["dead"],
        "rate_limited": ["sent"],
        "flaky": ["sent"],
        "slow": ["sent"],
        "broken": ["dead"],
        "proxy": ["sent"],
    }
    deleted = {name for name, sid in subs.items() if sub_rows[sid].status == "dead"}
    assert deleted == {"gone", "not_found"}

    received = push_service.snapshot()
    requests = {name: push_service.requests_for(b) for name, b in browsers.items()}
    assert len(requests["gone"]) == 1  # the second message never went to a gone subscription
    assert len(requests["broken"]) == push_settings.push_max_attempts
    assert [r.answered for r in requests["flaky"]] == [500, 500, 201]
    assert [r.answered for r in requests["slow"]] == [None, 201]
    # Retry-After: no request in between, and the second one exactly when the wait was over.
    (limited,) = by_sub["rate_limited"]
    assert (limited.attempts, limited.sent_at) == (2, f.T0 + timedelta(seconds=RETRY_AFTER))
    assert [r.answered for r in requests["rate_limited"]] == [429, 201]

    accepted = Counter(
        (r.token, (r.payload or {}).get("advice_id")) for r in received if r.accepted
    )
    sent = [r for r in rows if r.status == "sent"]
    accepted_once = sum(1 for n in accepted.values() if n == 1)
    dead_letter = sum(1 for r in rows if r.status == "dead")
    print(
        f"AT-17 [{backend}] sent={len(sent)} accepted_once={accepted_once} "
        f"subs_deleted={len(deleted)} dead_letter={dead_letter}"
    )
    assert max(accepted.values()) == 1 and accepted_once == len(sent) == 7

    token_of = {sid: browsers[name].token for name, sid in subs.items()}
    expected = {(token_of[r.subscription_id or ""], str(r.payload["advice_id"])): r for r in rows}
    vapid_valid, decrypt_ok, problems = conformance(received, expected)
    print(
        f"AT-18 [{backend}] pushes={len(received)} vapid_valid={vapid_valid} "
        f"decrypt_ok={decrypt_ok}"
    )
    assert problems == []
    assert vapid_valid == decrypt_ok == len(received) > 0


def test_several_subscriptions_are_pushed_at_once_up_to_the_concurrency_each_in_order(
    factory: sessionmaker[Session], push_settings: Settings, push_service: LocalPushService
) -> None:
    """One worker keeps up to ``push_concurrency`` pushes in flight, one per subscription;
    a subscription's own messages still go one after another, in order."""
    settings = push_settings.model_copy(update={"push_concurrency": 3})
    held = Answer(201, hold_seconds=0.3)  # long enough for the others to start meanwhile
    browsers = [push_service.subscriber(held) for _ in range(6)]
    with transaction(factory) as session:
        asta, target = f.user(session, "asta"), f.patient(session, "asta")
        subs = [f.subscription(session, asta, browser) for browser in browsers]
        first = [f.message(session, sub, target, n).id for n, sub in enumerate(subs)]
        # The first subscription's second message, due a second later: claimed after the first.
        later = f.message(session, subs[0], target, 99, now=f.T0 + timedelta(seconds=1)).id
    stats = dispatch(factory, settings, f.T0 + timedelta(seconds=1), sender=real_sender(settings))
    assert (stats.sent, stats.retried, stats.dead) == (7, 0, 0)
    # At once, but never more than the setting: a one-at-a-time sender would peak at 1.
    assert 2 <= push_service.peak_in_flight <= 3
    with transaction(factory) as session:
        topics = {
            row_id: session.get(OutboxMessage, row_id).topic  # type: ignore[union-attr]
            for row_id in (first[0], later)
        }
    got = [r.headers["topic"] for r in push_service.requests_for(browsers[0])]
    assert got == [topics[first[0]], topics[later]]


def test_each_push_signs_fresh_claims_for_its_own_origin(tmp_path: Path) -> None:
    """pywebpush writes aud/exp into the claims it gets: one sender, two push services, both
    verify (a shared claims dict would carry the first origin to the second)."""
    key = VapidKey(ec.generate_private_key(ec.SECP256R1()))
    sender = WebPushSender(key, subject="mailto:drift@egenvard.example", timeout=2)
    with LocalPushService() as first, LocalPushService() as second:
        for service in (first, second, first):
            browser = service.subscriber()
            payload = encode_payload({"title": "Hej", "advice_id": "x"})
            message = PushMessage(
                browser.endpoint, browser.p256dh, browser.auth, payload, 60, "normal", "t"
            )
            assert sender.send(message).status == 201
        for service in (first, second):
            for got in service.snapshot():
                assert got.conformant, got.problems
                assert got.claims is not None and got.claims["aud"] == service.origin
                assert got.payload == {"title": "Hej", "advice_id": "x"}


def test_the_environment_s_proxy_and_no_proxy_are_obeyed(monkeypatch: pytest.MonkeyPatch) -> None:
    """A push goes through HTTP_PROXY unless NO_PROXY names its host (read once per origin)."""
    key = VapidKey(ec.generate_private_key(ec.SECP256R1()))
    monkeypatch.setenv("HTTP_PROXY", "http://127.0.0.1:9")  # nothing listens there
    with LocalPushService() as service:
        browser = service.subscriber()
        payload = encode_payload({"title": "Hej"})
        message = PushMessage(
            browser.endpoint, browser.p256dh, browser.auth, payload, 60, "low", "t"
        )
        monkeypatch.setenv("NO_PROXY", "127.0.0.1")
        direct = WebPushSender(key, subject="mailto:drift@egenvard.example", timeout=2)
        assert direct.send(message).status == 201
        monkeypatch.delenv("NO_PROXY")
        proxied = WebPushSender(key, subject="mailto:drift@egenvard.example", timeout=2)
        refused = proxied.send(message)
        assert refused.status is None and "Proxy" in refused.error
        assert len(service.snapshot()) == 1


def test_a_push_service_that_cannot_be_reached_is_no_answer_not_a_timeout() -> None:
    """Nothing listens at the endpoint: no status (so the dispatcher retries it later), and
    the error says the connection failed, not that the service was slow."""
    key = VapidKey(ec.generate_private_key(ec.SECP256R1()))
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]  # closed again below: nothing listens there
    browser = new_subscriber(f"http://127.0.0.1:{port}")
    message = PushMessage(
        browser.endpoint, browser.p256dh, browser.auth, encode_payload({"title": "Hej"}), 60,
        "low", "t",
    )  # fmt: skip
    answer = WebPushSender(key, subject="mailto:drift@egenvard.example", timeout=2).send(message)
    assert answer.status is None and not answer.final
    assert answer.error.startswith("no connection") and "timeout" not in answer.error


def test_a_subscription_key_that_cannot_encrypt_is_a_dead_letter_not_a_request() -> None:
    """A p256dh that is no P-256 point (here 33 bytes): nothing is sent, and the answer is
    final (sending again cannot help), saying it was the encryption."""
    key = VapidKey(ec.generate_private_key(ec.SECP256R1()))
    with LocalPushService() as service:
        browser = service.subscriber()
        message = PushMessage(
            browser.endpoint, browser.p256dh[:44], browser.auth,
            encode_payload({"title": "Hej"}), 60, "low", "t",
        )  # fmt: skip
        sender = WebPushSender(key, subject="mailto:drift@egenvard.example", timeout=2)
        answer = sender.send(message)
        assert answer.status is None and answer.final
        assert answer.error.startswith("encryption")
        assert service.snapshot() == []


def test_one_vapid_signature_serves_an_origin_for_half_its_lifetime() -> None:
    """A VAPID JWT is signed once per push-service origin and signed again when half of its
    12 hours are used, so the push service never sees one with less than 6 hours left."""
    now = [1_800_000_000.0]
    key = VapidKey(ec.generate_private_key(ec.SECP256R1()))
    sender = WebPushSender(
        key, subject="mailto:drift@egenvard.example", timeout=2, clock=lambda: now[0]
    )

    def claims(origin: str) -> dict[str, Any]:
        token = sender.vapid_headers(origin)["Authorization"].split("t=")[1].split(",")[0]
        decoded: dict[str, Any] = jwt.decode(token, options={"verify_signature": False})
        return decoded

    first = sender.vapid_headers("https://fcm.googleapis.com")
    assert claims("https://fcm.googleapis.com")["exp"] == now[0] + VAPID_EXP_SECONDS
    other = claims("https://updates.push.services.mozilla.com")
    assert other["aud"] == "https://updates.push.services.mozilla.com"
    now[0] += VAPID_RESIGN_SECONDS - 1  # still more than half left: the same token
    assert sender.vapid_headers("https://fcm.googleapis.com") == first
    now[0] += 2  # less than half left: a new token, 12 hours from now
    again = claims("https://fcm.googleapis.com")
    assert sender.vapid_headers("https://fcm.googleapis.com") != first
    assert again["exp"] == now[0] + VAPID_EXP_SECONDS
    assert again["aud"] == "https://fcm.googleapis.com"


@needs("webpush/rfc8291-appendix-a.json")
def test_at18_rfc8291_example_byte_for_byte() -> None:
    """http_ece with the example's salt and keys gives exactly the RFC's body, and back."""
    example = json.loads(RFC8291.read_text())
    sender_key = ec.derive_private_key(
        int.from_bytes(b64url_decode(example["as_private"]), "big"), ec.SECP256R1()
    )
    receiver_key = ec.derive_private_key(
        int.from_bytes(b64url_decode(example["ua_private"]), "big"), ec.SECP256R1()
    )
    body = http_ece.encrypt(
        example["plaintext"].encode(),
        salt=b64url_decode(example["salt"]),
        private_key=sender_key,
        dh=b64url_decode(example["ua_public"]),
        auth_secret=b64url_decode(example["auth_secret"]),
        version="aes128gcm",
    )
    assert body == b64url_decode(example["body"])
    plain = http_ece.decrypt(
        body,
        private_key=receiver_key,
        auth_secret=b64url_decode(example["auth_secret"]),
        version="aes128gcm",
    )
    assert plain.decode() == example["plaintext"]
    print(f"AT-18 rfc8291 body_bytes={len(body)} identical=1")
