"""A real PostgreSQL server for tests and benchmarks, started in a temporary folder on a free port.

Debian's binaries (/usr/lib/postgresql/<n>/bin, the `postgresql` package) are used directly:
`initdb` into a fresh folder, then `postgres` listening on 127.0.0.1 only, with durability
off (fsync) since the data is thrown away. PostgreSQL refuses to run as root, so as root the
server runs as the `postgres` system user (or `nobody`) through `runuser`.
"""

from __future__ import annotations

import glob
import os
import pwd
import shutil
import subprocess
import tempfile
from pathlib import Path

import pytest

from testbed.waiting import free_port, wait_until

__all__ = ["PostgresServer", "find_bin"]


def find_bin() -> Path | None:
    """The newest installed PostgreSQL bin folder, or None."""
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"), key=lambda p: int(p.split("/")[4]))
    if found:
        return Path(found[-1]).parent
    initdb = shutil.which("initdb")
    return Path(initdb).parent if initdb else None


class PostgresServer:
    """`start()`, then `url(database)` / `new_database()`; `stop()` removes everything."""

    def __init__(self) -> None:
        bin_dir = find_bin()
        if bin_dir is None:
            if os.environ.get("CI"):
                pytest.fail("PostgreSQL is not installed (apt-get install postgresql)")
            pytest.skip("PostgreSQL is not installed: these tests need it (apt-get install postgresql)")
        self.bin = bin_dir
        self.port = free_port()
        self.user = "relay"
        self.dir = Path(tempfile.mkdtemp(prefix="relay-pg-"))
        self.data = self.dir / "data"
        self.process: subprocess.Popen[bytes] | None = None
        self._run_as: list[str] = []
        self._databases = 0
        if os.geteuid() == 0:
            account = "postgres" if _has_user("postgres") else "nobody"
            entry = pwd.getpwnam(account)
            os.chown(self.dir, entry.pw_uid, entry.pw_gid)
            self._run_as = ["runuser", "-u", account, "--"]

    def start(self) -> PostgresServer:
        subprocess.run([*self._run_as, str(self.bin / "initdb"), "-D", str(self.data), "-U", self.user,
                        "-A", "trust", "-E", "UTF8", "--no-sync"],
                       check=True, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        self.process = subprocess.Popen(
            [*self._run_as, str(self.bin / "postgres"), "-D", str(self.data), "-p", str(self.port),
             "-k", str(self.dir), "-c", "listen_addresses=127.0.0.1", "-c", "fsync=off",
             "-c", "synchronous_commit=off", "-c", "full_page_writes=off", "-c", "max_connections=200"],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        wait_until(self._answers, timeout=30, interval=0.1)
        return self

    def _connect(self, database: str = "postgres") -> object:
        import pg8000.native

        return pg8000.native.Connection(self.user, host="127.0.0.1", port=self.port, database=database, timeout=5)

    def _answers(self) -> bool:
        if self.process is not None and self.process.poll() is not None:
            raise RuntimeError("postgres exited at start")
        try:
            self._connect().close()  # type: ignore[attr-defined]
        except Exception:
            return False
        return True

    def url(self, database: str = "postgres") -> str:
        return f"postgresql://{self.user}@127.0.0.1:{self.port}/{database}"

    def new_database(self) -> str:
        """A fresh, empty database; its postgresql:// URL."""
        self._databases += 1
        name = f"relay_{os.getpid()}_{self._databases}"
        connection = self._connect()
        connection.run(f"CREATE DATABASE {name}")  # type: ignore[attr-defined]
        connection.close()  # type: ignore[attr-defined]
        return self.url(name)

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()  # smart shutdown; runuser passes the signal on
            try:
                self.process.wait(20)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(5)
        shutil.rmtree(self.dir, ignore_errors=True)


def _has_user(name: str) -> bool:
    try:
        pwd.getpwnam(name)
    except KeyError:
        return False
    return True
