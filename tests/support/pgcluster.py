"""A throw-away PostgreSQL cluster for tests and benchmarks (Debian's ``postgresql`` package).

``PgCluster().start()`` runs ``initdb`` in a temporary folder and ``pg_ctl start``
on a free loopback port; ``stop()``/``start()`` again simulate an outage (same
data, same port); ``remove()`` stops it and deletes the folder. PostgreSQL
refuses to run as root, so as root the folder is given to ``nobody`` and the
binaries run through ``runuser -u nobody``.

``find_bin_dir()`` is None when PostgreSQL is not installed: tests then skip
with one line, except under ``CI=true`` where they fail (CI installs it).
"""

from __future__ import annotations

import contextlib
import glob
import os
import shutil
import subprocess
import tempfile
import uuid
from pathlib import Path

from tests.support.serving import free_port

UNPRIVILEGED = "nobody"


def find_bin_dir() -> Path | None:
    """The newest ``/usr/lib/postgresql/*/bin`` with initdb, or the one on PATH."""
    candidates = sorted(
        glob.glob("/usr/lib/postgresql/*/bin/initdb"),
        key=lambda p: (
            int(Path(p).parent.parent.name) if Path(p).parent.parent.name.isdigit() else 0
        ),
    )
    if candidates:
        return Path(candidates[-1]).parent
    found = shutil.which("initdb")
    return Path(found).parent if found else None


class PgCluster:
    """One PostgreSQL server; ``url()`` names a fresh or given database on it."""

    def __init__(self, bin_dir: Path | None = None) -> None:
        found = bin_dir or find_bin_dir()
        if found is None:
            raise RuntimeError("PostgreSQL is not installed (no initdb)")
        self.bin_dir = found
        self.port = free_port()
        self.root = Path(tempfile.mkdtemp(prefix="pdorgsync-pg-"))
        self.data = self.root / "data"
        self.as_root = os.geteuid() == 0
        if self.as_root:
            shutil.chown(self.root, UNPRIVILEGED)
        self.running = False

    def _run(self, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        command = [str(self.bin_dir / args[0]), *args[1:]]
        if self.as_root:
            command = ["runuser", "-u", UNPRIVILEGED, "--", *command]
        return subprocess.run(command, capture_output=True, text=True, check=check, timeout=60)

    def init(self) -> PgCluster:
        self._run(
            "initdb", "-D", str(self.data), "-U", "postgres", "--auth=trust", "-E", "UTF8",
            "--no-sync",
        )  # fmt: skip
        return self

    def start(self) -> PgCluster:
        # fsync off: a test cluster need not survive a power cut, only a crash of its
        # processes (``stop("immediate")``), and the OS keeps what was written. Not
        # synchronous_commit=off: that acknowledges commits still in PostgreSQL's WAL
        # buffers, which an immediate stop throws away - the outage test then saw the
        # schema it had just created vanish (a data loss no real server configured for
        # durability has, and not what the test is about).
        options = (
            f"-p {self.port} -k {self.root} -c listen_addresses=127.0.0.1 "
            "-c fsync=off -c full_page_writes=off -c max_connections=200"
        )
        result = self._run(
            "pg_ctl", "-D", str(self.data), "-l", str(self.root / "log"), "-w", "-t", "30",
            "-o", options, "start", check=False,
        )  # fmt: skip
        if result.returncode != 0:
            log = (self.root / "log").read_text(errors="replace")[-2000:]
            raise RuntimeError(f"pg_ctl start failed: {result.stderr.strip()}\n{log}")
        self.running = True
        return self

    def stop(self, mode: str = "fast") -> None:
        if self.running:
            self._run("pg_ctl", "-D", str(self.data), "-m", mode, "-w", "stop", check=False)
            self.running = False

    def remove(self) -> None:
        with contextlib.suppress(Exception):
            self.stop("immediate")
        shutil.rmtree(self.root, ignore_errors=True)

    def base_url(self, dbname: str = "postgres") -> str:
        return f"postgresql://postgres@127.0.0.1:{self.port}/{dbname}"

    def new_database(self) -> str:
        """Create an empty database; returns its URL (each test gets its own)."""
        import psycopg
        from psycopg import sql

        name = "t_" + uuid.uuid4().hex[:12]
        with psycopg.connect(self.base_url(), autocommit=True) as conn:
            conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
        return self.base_url(name)
