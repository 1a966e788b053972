"""A throwaway PostgreSQL cluster for the test suite (DESIGN.md §3).

initdb refuses to run as root, so as root the data folder belongs to the ``postgres`` user and
the binaries run through ``runuser``. fsync is off: the cluster lives for one test run.
"""

from __future__ import annotations

import glob
import os
import shutil
import socket
import subprocess
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path


@dataclass
class Cluster:
    """A running cluster: its port, its folder, and how to stop it."""

    bin_dir: Path
    data_dir: Path
    port: int
    run_as: list[str]

    @property
    def admin_url(self) -> str:
        return f"postgresql+psycopg://postgres@127.0.0.1:{self.port}/postgres"

    def url(self, database: str) -> str:
        return f"postgresql+psycopg://postgres@127.0.0.1:{self.port}/{database}"

    def stop(self, *, detach_removal: bool = False) -> None:
        """Stop the server and remove its folder.

        ``detach_removal``: leave the removal to a process of its own and return at once. The
        suite's cluster ends with a database per test (~500 files each, ~10 s to remove at
        the end of a worker, with the other worker done and one core idle).
        """
        subprocess.run(
            [
                *self.run_as,
                str(self.bin_dir / "pg_ctl"),
                "-D",
                str(self.data_dir),
                "-m",
                "immediate",
                "stop",
            ],
            check=False,
            capture_output=True,
        )
        if detach_removal:
            subprocess.Popen(  # noqa: S603 - a fixed command on our own folder
                ["rm", "-rf", "--", str(self.data_dir.parent)],
                stdin=subprocess.DEVNULL,
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
                start_new_session=True,  # outlives the test run's process group
            )
            return
        shutil.rmtree(self.data_dir.parent, ignore_errors=True)


def find_bin_dir(configured: str | None = None) -> Path | None:
    """Where initdb and pg_ctl are, or None."""
    candidates = [configured] if configured else []
    candidates += sorted(glob.glob("/usr/lib/postgresql/*/bin"), reverse=True)
    which = shutil.which("initdb")
    if which:
        candidates.append(str(Path(which).parent))
    for candidate in candidates:
        if candidate and (Path(candidate) / "initdb").exists():
            return Path(candidate)
    return None


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def start(bin_dir: Path) -> Cluster:
    """initdb and start a cluster on a free loopback port."""
    root = Path(tempfile.mkdtemp(prefix="selfcare-pg-"))
    data = root / "data"
    run_as: list[str] = []
    if os.geteuid() == 0:
        shutil.chown(root, "postgres", "postgres")
        run_as = ["runuser", "-u", "postgres", "--"]
    subprocess.run(
        [
            *run_as,
            str(bin_dir / "initdb"),
            "-D",
            str(data),
            "-A",
            "trust",
            "-U",
            "postgres",
            "-E",
            "UTF8",
            "--no-sync",
        ],
        check=True,
        capture_output=True,
    )
    port = _free_port()
    options = (
        f"-p {port} -c listen_addresses=127.0.0.1 -c unix_socket_directories={root} "
        "-c fsync=off -c synchronous_commit=off -c full_page_writes=off -c max_connections=200"
    )
    subprocess.run(
        [
            *run_as,
            str(bin_dir / "pg_ctl"),
            "-D",
            str(data),
            "-o",
            options,
            "-l",
            str(root / "log"),
            "-w",
            "-t",
            "60",
            "start",
        ],
        check=True,
        capture_output=True,
    )
    cluster = Cluster(bin_dir, data, port, run_as)
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        with socket.socket() as s:
            if s.connect_ex(("127.0.0.1", port)) == 0:
                return cluster
        time.sleep(0.1)
    cluster.stop()
    raise RuntimeError("PostgreSQL did not start")
