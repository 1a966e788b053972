"""What one push's HTTP request costs the sender, against the bare encryption and signing.

Issue 17 §4 asks a worker to deliver at least half as many pushes a second as the bare
encryption and VAPID signature alone (``bench/push.py``). The sender's own encryption is that
baseline's code, so the bar leaves the rest of a push (its HTTP request, the claim and the
recorded answer) the time of one encryption and signature. This bench measures the HTTP part
alone: the CPU a process spends per push-shaped request (an encrypted ~3 KB body, the
headers the sender sends) to the counting receiver of ``bench/push_receiver.py`` on
loopback, kept-alive connections, eight requests in flight, through:

- **aiohttp**, the product's transport (``app.push.transport``);
- **h11** over asyncio streams, the other well-kept HTTP/1.1 implementation at hand;
- **the floor**: preformatted request bytes written to an asyncio stream and the answer parsed
  by httptools' C parser, no client library at all (not a client: it handles no errors).

Beside them, what the sender pays per message for the rest: pywebpush's encryption alone (it
signs once per push-service origin), and the product's whole send (``WebPushSender``:
encryption, headers, the POST with its timeouts, on the process's push loop).

Each is printed in µs of CPU a request and as a share of the bare encryption and signing of
one message, measured in the same run (medians of ``--rounds``), beside the encryption alone:
what the sender pays per message (it signs once per push-service origin).

    .venv/bin/python bench/push_http.py [--requests 4000] [--rounds 3]
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import aiohttp
import h11
import httptools
from cryptography.hazmat.primitives.asymmetric import ec
from pywebpush import WebPusher

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from app.push import transport  # noqa: E402
from app.push.sender import PushMessage, WebPushSender, encode_payload  # noqa: E402
from app.push.vapid import VapidKey  # noqa: E402
from bench.push import SUBJECT, Receiver, crypto_rate, payload  # noqa: E402
from tests.app.push.push_service import Subscriber  # noqa: E402

IN_FLIGHT = 8
WARM_UP = 50
Post = Callable[[], Awaitable[int]]


def _headers(body_size: int) -> list[tuple[str, str]]:
    # As app.push.sender sends them: a VAPID header of the usual size, TTL, urgency, topic.
    return [
        ("Host", "127.0.0.1"),
        ("Content-Length", str(body_size)),
        ("Content-Encoding", "aes128gcm"),
        ("TTL", "86400"),
        ("Urgency", "normal"),
        ("Topic", "advice"),
        ("Authorization", "vapid t=" + "x" * 330 + ", k=" + "y" * 87),
    ]


async def _timed(posts: list[Post], requests: int) -> float:
    """CPU seconds a request, ``IN_FLIGHT`` at a time, each on a free connection."""
    free: asyncio.Queue[Post] = asyncio.Queue()
    for post in posts:
        free.put_nowait(post)

    async def one() -> int:
        post = await free.get()
        try:
            return await post()
        finally:
            free.put_nowait(post)

    for _ in range(WARM_UP):
        await one()
    started = time.process_time()
    statuses = await asyncio.gather(*(one() for _ in range(requests)))
    spent = time.process_time() - started
    if set(statuses) != {201}:
        raise SystemExit(f"the receiver answered {sorted(set(statuses))}")
    return spent / requests


async def via_aiohttp(url: str, body: bytes, requests: int) -> float:
    """The product's way: one aiohttp session, kept-alive connections."""
    headers = dict(_headers(len(body))[2:])
    async with aiohttp.ClientSession(
        connector=aiohttp.TCPConnector(limit=0), trust_env=False
    ) as session:

        async def post() -> int:
            async with session.post(url, data=body, headers=headers) as answer:
                await answer.read()
                return answer.status

        return await _timed([post] * IN_FLIGHT, requests)


async def via_h11(url: str, body: bytes, requests: int) -> float:
    """h11's state machine over asyncio streams, one connection per request in flight."""
    host, port, path = _split(url)
    headers = _headers(len(body))

    async def connection() -> Post:
        reader, writer = await asyncio.open_connection(host, port)
        state = h11.Connection(h11.CLIENT)

        async def post() -> int:
            request = h11.Request(method="POST", target=path, headers=headers)
            out = (
                state.send(request),
                state.send(h11.Data(data=body)),
                state.send(h11.EndOfMessage()),
            )
            writer.write(b"".join(b for b in out if b))
            status = 0
            while True:
                event = state.next_event()
                if event is h11.NEED_DATA:
                    state.receive_data(await reader.read(65536))
                elif isinstance(event, h11.Response):
                    status = event.status_code
                elif isinstance(event, h11.EndOfMessage):
                    state.start_next_cycle()
                    return status

        return post

    return await _timed([await connection() for _ in range(IN_FLIGHT)], requests)


async def via_floor(url: str, body: bytes, requests: int) -> float:
    """No client library: preformatted bytes out, httptools' C parser for the answer."""
    host, port, path = _split(url)
    head = f"POST {path} HTTP/1.1\r\n" + "".join(f"{k}: {v}\r\n" for k, v in _headers(len(body)))
    request = head.encode() + b"\r\n" + body

    async def connection() -> Post:
        reader, writer = await asyncio.open_connection(host, port)

        async def post() -> int:
            writer.write(request)
            complete: list[bool] = []

            class Answer:
                def on_message_complete(self) -> None:
                    complete.append(True)

            parser = httptools.HttpResponseParser(Answer())
            while not complete:
                parser.feed_data(await reader.read(65536))
            return int(parser.get_status_code())

        return post

    return await _timed([await connection() for _ in range(IN_FLIGHT)], requests)


def sender_seconds(browser: Subscriber, requests: int) -> float:
    """CPU seconds a push through the product's sender on the push loop: encrypt and POST."""
    sender = WebPushSender(
        VapidKey(ec.generate_private_key(ec.SECP256R1())), subject=SUBJECT, timeout=5
    )
    message = PushMessage(
        endpoint=browser.endpoint,
        p256dh=browser.p256dh,
        auth=browser.auth,
        payload=encode_payload(payload(0)),
        ttl=3600,
        urgency="normal",
        topic="advice",
    )

    async def post() -> int:
        return (await sender.send_async(message)).status or 0

    return transport.run(_timed([post] * IN_FLIGHT, requests))


def encryption_seconds(info: dict[str, Any], count: int) -> float:
    """CPU seconds of pywebpush's aes128gcm encryption of one message, no signature."""
    bodies = [encode_payload(payload(n)) for n in range(count)]
    started = time.process_time()
    for body in bodies:
        WebPusher(info).encode(body, "aes128gcm")
    return (time.process_time() - started) / count


def _split(url: str) -> tuple[str, int, str]:
    parts = urlsplit(url)
    assert parts.hostname is not None and parts.port is not None  # the loopback receiver
    return parts.hostname, parts.port, parts.path


WAYS = {"aiohttp": via_aiohttp, "h11": via_h11, "floor": via_floor}


def main() -> None:
    """Run the ways in turns, each round with its own baseline, and print the medians."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--requests", type=int, default=4000)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    receiver = Receiver()
    try:
        browser = receiver.subscriber()
        info = {
            "endpoint": browser.endpoint,
            "keys": {"p256dh": browser.p256dh, "auth": browser.auth},
        }
        body = WebPusher(info).encode(encode_payload(payload(0)), "aes128gcm")["body"]
        costs: dict[str, list[float]] = {name: [] for name in WAYS}
        crypto: list[float] = []
        encryption: list[float] = []
        whole: list[float] = []
        for round_ in range(1, args.rounds + 1):
            crypto.append(1 / crypto_rate(browser, 2000))
            encryption.append(encryption_seconds(info, 2000))
            whole.append(sender_seconds(browser, args.requests))
            for name, way in WAYS.items():
                costs[name].append(asyncio.run(way(browser.endpoint, body, args.requests)))
            print(
                f"round {round_}: encrypt+sign {crypto[-1] * 1e6:.0f} µs, "
                f"encryption alone {encryption[-1] * 1e6:.0f} µs, "
                f"the sender's send {whole[-1] * 1e6:.0f} µs; "
                + ", ".join(f"{n} {c[-1] * 1e6:.0f} µs" for n, c in costs.items()),
                flush=True,
            )
    finally:
        receiver.stop()
    bare = statistics.median(crypto)
    print(f"bare encrypt+sign: {bare * 1e6:.0f} µs a message (median of {args.rounds} rounds)")
    alone = statistics.median(encryption)
    print(f"  {'encrypt':<8} {alone * 1e6:5.0f} µs of CPU a message = {alone / bare:.2f} of it")
    for name, values in costs.items():
        cost = statistics.median(values)
        print(f"  {name:<8} {cost * 1e6:5.0f} µs of CPU a request = {cost / bare:.2f} of it")
    send = statistics.median(whole)
    print(f"  {'send':<8} {send * 1e6:5.0f} µs of CPU a push = {send / bare:.2f} of it (both)")


if __name__ == "__main__":
    main()
