"""The push benchmark's receiver: a push service that only counts and acknowledges.

Run as its own process (``python -m bench.push_receiver``), so that answering the pushes
does not compete with the sender for the interpreter lock, only for a core. aiohttp (already
installed with pywebpush) serves on loopback: ``POST /push/<token>`` is counted by token and
``Topic`` and answered 201; ``GET /counts`` gives the counts as JSON. It neither verifies
nor decrypts: AT-18 proves what every push carries (tests/app/push/test_conformance.py).

The process prints ``port <n>`` on its first line once it listens.
"""

from __future__ import annotations

import asyncio
import json
import sys
from collections import Counter

from aiohttp import web


def application() -> web.Application:
    """The receiver's routes and its counts."""
    counts: Counter[tuple[str, str]] = Counter()

    async def push(request: web.Request) -> web.Response:
        await request.read()
        counts[(request.match_info["token"], request.headers.get("Topic", ""))] += 1
        return web.Response(status=201, headers={"Location": "/message/1"})

    async def report(_: web.Request) -> web.Response:
        rows = [[token, topic, n] for (token, topic), n in counts.items()]
        return web.Response(text=json.dumps(rows), content_type="application/json")

    app = web.Application()
    app.router.add_post("/push/{token}", push)
    app.router.add_get("/counts", report)
    return app


async def serve() -> None:
    """Listen on a free loopback port, say which, and serve until killed."""
    runner = web.AppRunner(application(), access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = runner.addresses[0][1]
    print(f"port {port}", flush=True)
    await asyncio.Event().wait()


if __name__ == "__main__":
    try:
        asyncio.run(serve())
    except KeyboardInterrupt:
        sys.exit(0)
