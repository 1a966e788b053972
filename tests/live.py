"""A real ``selfcare serve`` (uvicorn) subprocess on a free loopback port, for process tests."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx

from app.config import PROJECT_ROOT

SELFCARE = [sys.executable, "-m", "app"]


def free_port() -> int:
    """A loopback port nobody listens on right now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class LiveServer:
    """Starts, kills and restarts the service on one database."""

    def __init__(self, database_url: str, var_dir: Path, **settings: str) -> None:
        self.port = free_port()
        self.base = f"http://127.0.0.1:{self.port}"
        self.env = {
            **os.environ,
            "SELFCARE_DATABASE_URL": database_url,
            "SELFCARE_VAR_DIR": str(var_dir),
            "SELFCARE_PORT": str(self.port),
            "SELFCARE_SCHEDULER_ENABLED": "0",
            "SELFCARE_ENVIRONMENT": "development",  # the tests mint tokens with `selfcare token`
            "SELFCARE_CURSOR_SECRET": "live-test-cursor-secret",
            **{f"SELFCARE_{k.upper()}": v for k, v in settings.items()},
        }
        self.process: subprocess.Popen[bytes] | None = None
        self.log_path = var_dir / "server.log"

    def cli(self, *args: str, timeout: float = 600) -> str:
        """Run a ``selfcare`` command against the same configuration; its stdout."""
        done = subprocess.run(
            [*SELFCARE, *args],
            env=self.env,
            cwd=PROJECT_ROOT,
            check=True,
            capture_output=True,
            text=True,
            timeout=timeout,
        )
        return done.stdout

    def start(self, *serve_args: str, timeout: float = 60, answering: bool = False) -> None:
        """Start ``selfcare serve`` (with ``serve_args``); wait until /healthz says 200.

        With ``answering``, wait only until the server answers HTTP at all: /healthz takes the
        write path, and on SQLite clients that resume syncing the moment a restarted server
        listens can keep it waiting for the write lock longer than any deadline.
        """
        log = self.log_path.open("ab")  # kept for a failing test to show
        self.process = subprocess.Popen(
            [*SELFCARE, "serve", *serve_args],
            env=self.env,
            cwd=PROJECT_ROOT,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        log.close()
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"server exited with {self.process.returncode}")
            try:
                answer = httpx.get(f"{self.base}/healthz", timeout=5)
            except httpx.HTTPError:
                pass
            else:
                if answering or answer.status_code == 200:
                    return
            time.sleep(0.1)
        raise RuntimeError("server did not start in time")

    def kill(self) -> None:
        """SIGKILL: no shutdown, no flush, like a crash."""
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGKILL)
            self.process.wait(timeout=30)

    def stop(self) -> None:
        """Graceful stop."""
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.kill()

    def rss_kib(self) -> int:
        """The server process's resident memory."""
        assert self.process is not None
        for line in Path(f"/proc/{self.process.pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
        raise RuntimeError("no VmRSS")

    def token(self, handle: str) -> dict[str, str]:
        """Bearer headers for a seeded handle, minted by the CLI."""
        return {"Authorization": f"Bearer {self.cli('token', handle, timeout=60).strip()}"}
