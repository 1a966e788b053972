"""Push benchmark: notifications per second delivered by one and by two workers, as a ratio to
the bare encryption-and-signing cost per message measured in the same run.

For each database (SQLite file, throwaway PostgreSQL cluster): a local push service
(``bench/push_receiver.py``, its own process on loopback: it only counts and acknowledges, so
it does not compete with the sender for the cores; that every push verifies and decrypts is
AT-18's job) answers every push 201; one, then two real
``selfcare worker`` processes are started and, once they are up, ``--messages`` outbox rows
for ``--subscriptions`` browsers are committed at once; the clock stops when every row is
final. Each message goes the whole way:
claim (SKIP LOCKED / BEGIN IMMEDIATE), policy check, pywebpush (aes128gcm with a fresh
ephemeral key; the VAPID ES256 signature is made once per push-service origin and kept for
half its lifetime), HTTP with aiohttp on kept-alive connections, several subscriptions at once
on the worker's push loop, and one
transaction per batch recording the answers.

The baseline does only the per-message cryptography the sender does — pywebpush's
aes128gcm encryption plus a VAPID signature — in a loop in this process, no I/O. The ratio
(delivered/s ÷ crypto/s) is what to compare between runs; absolute rates on these shared
machines mean little. Each run's baseline is measured around it (right before the outbox
is filled and right after the last row is final, the mean of the two), so the ratio compares
the two in the same minute; each of ``--rounds`` rounds runs both worker counts on each
database, and the last lines give the medians of the rounds' ratios, the figures to compare.

    .venv/bin/python bench/push.py [--messages 2000] [--subscriptions 50] [--db both] [--rounds 3]
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
import uuid
from collections import Counter
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from cryptography.hazmat.primitives.asymmetric import ec  # noqa: E402
from pywebpush import WebPusher  # noqa: E402
from sqlalchemy import func, select  # noqa: E402

from app.auth.models import Role, User  # noqa: E402
from app.db import make_engine, make_sessionmaker, transaction  # noqa: E402
from app.patients.models import Patient  # noqa: E402
from app.push import service as push_service  # noqa: E402
from app.push.models import FINAL_STATUSES, OutboxMessage, PushSubscription  # noqa: E402
from app.push.sender import VAPID_EXP_SECONDS, encode_payload, endpoint_origin  # noqa: E402
from app.push.vapid import VapidKey  # noqa: E402
from bench import cluster_for  # noqa: E402
from bench.ingest import fresh_database  # noqa: E402
from tests import pg  # noqa: E402
from tests.app.push.push_service import Subscriber, new_subscriber  # noqa: E402

SUBJECT = "mailto:drift@egenvard.example"
WORKER_ENV = {
    "SELFCARE_ENVIRONMENT": "development",  # loopback http push endpoints (the local service)
    "SELFCARE_SCHEDULER_ENABLED": "0",
    "SELFCARE_PUSH_DISPATCH_INTERVAL_SECONDS": "0.1",
    "SELFCARE_PUSH_BATCH_SIZE": "50",
    "SELFCARE_PUSH_DRAIN_BATCHES": "1000",
    "SELFCARE_PUSH_TIMEOUT_SECONDS": "5",
    # The other jobs run once at start and then stay out of the way.
    "SELFCARE_REMINDER_INTERVAL_SECONDS": "3600",
    "SELFCARE_ESCALATION_INTERVAL_SECONDS": "3600",
    "SELFCARE_RETENTION_INTERVAL_SECONDS": "3600",
}


class Receiver:
    """The counting push service, ``bench/push_receiver.py``, in its own process."""

    def __init__(self) -> None:
        self._process = subprocess.Popen(
            [sys.executable, "-m", "bench.push_receiver"], cwd=ROOT, stdout=subprocess.PIPE
        )
        assert self._process.stdout is not None
        line = self._process.stdout.readline().decode().split()
        if line[:1] != ["port"]:
            self.stop()
            raise RuntimeError("the push receiver did not start")
        self.origin = f"http://127.0.0.1:{line[1]}"

    def subscriber(self) -> Subscriber:
        """A new browser subscription with its own endpoint on the receiver."""
        return new_subscriber(self.origin)

    def counts(self, tokens: set[str]) -> Counter[tuple[str, str]]:
        """How many pushes each (token, Topic) of these subscribers got."""
        with urllib.request.urlopen(f"{self.origin}/counts", timeout=30) as answer:
            rows = json.load(answer)
        return Counter({(token, topic): n for token, topic, n in rows if token in tokens})

    def stop(self) -> None:
        """End the receiver's process."""
        self._process.kill()
        self._process.wait()


def payload(n: int) -> dict[str, str]:
    """An advice-shaped payload like the service sends."""
    advice_id = str(uuid.uuid4())
    return {
        "title": f"Din syremättnad är låg ({n})",
        "advice_id": advice_id,
        "patient_id": str(uuid.uuid4()),
        "priority": "urgent",
        "url": f"/patients/x/advice/{advice_id}",
    }


def crypto_rate(browser: Subscriber, count: int) -> float:
    """Messages per second of bare aes128gcm encryption plus a VAPID signature."""
    signer = VapidKey(ec.generate_private_key(ec.SECP256R1())).signer()
    info = {"endpoint": browser.endpoint, "keys": {"p256dh": browser.p256dh, "auth": browser.auth}}
    bodies = [encode_payload(payload(n)) for n in range(count)]
    started = time.perf_counter()
    for body in bodies:
        WebPusher(info).encode(body, "aes128gcm")
        signer.sign(
            {
                "sub": SUBJECT,
                "aud": endpoint_origin(browser.endpoint),
                "exp": int(time.time()) + VAPID_EXP_SECONDS,
            }
        )
    return count / (time.perf_counter() - started)


def start_workers(url: str, workdir: Path, count: int) -> list[subprocess.Popen[bytes]]:
    """``selfcare worker`` processes; returns once each has scheduled its jobs."""
    env = {**os.environ, "SELFCARE_DATABASE_URL": url, "SELFCARE_VAR_DIR": str(workdir),
           **WORKER_ENV}  # fmt: skip
    workers, logs = [], []
    for n in range(count):
        log_path = workdir / f"worker-{uuid.uuid4().hex[:6]}-{n}.log"
        with log_path.open("wb") as log:
            workers.append(
                subprocess.Popen([sys.executable, "-m", "app", "worker"], env=env, cwd=ROOT,
                                 stdout=log, stderr=subprocess.STDOUT)
            )  # fmt: skip
        logs.append(log_path)
    deadline = time.monotonic() + 60
    while not all("worker: jobs" in p.read_text() for p in logs):
        if time.monotonic() > deadline or any(w.poll() is not None for w in workers):
            stop(workers)
            raise RuntimeError("workers did not start: " + logs[0].read_text()[-2000:])
        time.sleep(0.1)
    wait_idle(workers)
    return workers


def cpu_seconds(pid: int) -> float:
    """A process's CPU time so far (user + system), from /proc."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def wait_idle(workers: list[subprocess.Popen[bytes]], *, timeout: float = 60) -> None:
    """Wait until the workers' start-up runs of the other jobs are over (their CPU rests).

    Each job runs once when the worker starts (the rule library is loaded, overdue flags
    are looked for...); the clock must not count that as delivery time.
    """
    if not Path("/proc/self/stat").exists():
        time.sleep(5)
        return
    deadline = time.monotonic() + timeout
    before = [cpu_seconds(w.pid) for w in workers]
    while time.monotonic() < deadline:
        time.sleep(0.5)
        after = [cpu_seconds(w.pid) for w in workers]
        if all(b - a < 0.02 for a, b in zip(before, after, strict=True)):
            return
        before = after


def stop(workers: list[subprocess.Popen[bytes]]) -> None:
    """SIGTERM, then wait."""
    for worker in workers:
        if worker.poll() is None:
            worker.send_signal(signal.SIGTERM)
    for worker in workers:
        try:
            worker.wait(timeout=30)
        except subprocess.TimeoutExpired:
            worker.kill()


def delivered_rate(
    backend: str,
    cluster: pg.Cluster | None,
    workdir: Path,
    service: Receiver,
    *,
    workers: int,
    messages: int,
    subscriptions: int,
    baseline: Callable[[], float],
) -> tuple[float, int, float]:
    """Notifications per second delivered by ``workers`` processes; duplicate pushes; and
    the baseline (``baseline()``, crypto/s) as measured right before and right after the
    delivery, their mean: the machine's speed during the delivery, not minutes away."""
    url = fresh_database(backend, cluster, workdir)
    engine = make_engine(url)
    factory = make_sessionmaker(engine)
    now = datetime.now(UTC)
    tokens = set()
    with transaction(factory) as session:
        subs = []
        for n in range(subscriptions):
            user = User(handle=f"b{n}", subject=f"b{n}", display_name=f"B {n}",
                        role=Role.PATIENT, created_at=now)  # fmt: skip
            session.add(user)
            session.flush()
            patient = Patient(personnummer=f"20{n:010d}", display_name=f"B {n}",
                              user_id=user.id, created_at=now)  # fmt: skip
            session.add(patient)
            browser = service.subscriber()
            tokens.add(browser.token)
            sub = PushSubscription(user_id=user.id, endpoint=browser.endpoint,
                                   p256dh=browser.p256dh, auth=browser.auth, patient_ids=[],
                                   status="active", created_at=now)  # fmt: skip
            session.add(sub)
            session.flush()
            subs.append((sub, patient))
    running = start_workers(url, workdir, workers)
    try:
        before = baseline()  # the workers are up and idle
        with transaction(factory) as session:
            now = datetime.now(UTC)
            for n in range(messages):
                sub, patient = subs[n % len(subs)]
                push_service.enqueue(
                    session, subscription=sub, patient_id=patient.id, kind="advice",
                    payload=payload(n), urgency="high", ttl_seconds=3600,
                    topic_=push_service.topic("advice", str(n)), now=now,
                )  # fmt: skip
        started = time.perf_counter()
        while True:
            with transaction(factory) as session:
                done = session.scalar(
                    select(func.count())
                    .select_from(OutboxMessage)
                    .where(OutboxMessage.status.in_(sorted(FINAL_STATUSES)))
                )
            if done == messages:
                break
            time.sleep(0.05)
        elapsed = time.perf_counter() - started
        after = baseline()  # the workers idle again
    finally:
        stop(running)
        engine.dispose()
    # Each message has its own Topic (the service does not decrypt: see the docstring).
    accepted = service.counts(tokens)
    assert sum(accepted.values()) >= messages, "not every message was accepted"
    assert len(accepted) == messages, "not every message arrived"
    return messages / elapsed, sum(n - 1 for n in accepted.values()), (before + after) / 2


def main() -> None:
    """Run the benchmark and print the figures."""
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--messages", type=int, default=2000)
    parser.add_argument("--subscriptions", type=int, default=50)
    parser.add_argument("--db", choices=["sqlite", "postgresql", "both"], default="both")
    parser.add_argument(
        "--rounds", type=int, default=3, help="measure this many times; report the medians"
    )
    args = parser.parse_args()
    backends = ["sqlite", "postgresql"] if args.db == "both" else [args.db]
    cluster = cluster_for(backends)
    workdir = Path(tempfile.mkdtemp(prefix="selfcare-bench-push-"))
    service = Receiver()
    # Per backend and number of workers, each run's ratio to the baseline measured around
    # it: on these machines the same code's speed swings by a quarter, and the baseline's by
    # more, from minute to minute (2,034–2,783 msg/s in one morning's rounds).
    ratios: dict[tuple[str, int], list[float]] = {}
    browser = service.subscriber()

    def baseline() -> float:
        return crypto_rate(browser, max(500, args.messages // 2))

    try:
        for round_no in range(1, args.rounds + 1):
            print(f"round {round_no}")
            for backend in backends:
                for workers in (1, 2):
                    rate, duplicates, crypto = delivered_rate(
                        backend, cluster, workdir, service, workers=workers,
                        messages=args.messages, subscriptions=args.subscriptions,
                        baseline=baseline,
                    )  # fmt: skip
                    ratios.setdefault((backend, workers), []).append(rate / crypto)
                    print(
                        f"push [{backend}] workers={workers} messages={args.messages} "
                        f"delivered_s={rate:,.0f} bare_encrypt_sign_s={crypto:,.0f} "
                        f"ratio_to_crypto={rate / crypto:.3f} duplicates={duplicates}"
                    )
        for backend in backends:
            one, two = (statistics.median(ratios[(backend, n)]) for n in (1, 2))
            print(
                f"push [{backend}] median of {args.rounds} rounds: "
                f"one_worker_ratio_to_crypto={one:.3f} two_workers_ratio_to_crypto={two:.3f} "
                f"two_workers/one_worker={two / one:.2f}"
            )
    finally:
        service.stop()
        if cluster is not None:
            cluster.stop()


if __name__ == "__main__":
    main()
