"""A throwaway PostgreSQL server for tests: `initdb` + `pg_ctl` in a temporary folder, on a free loopback port.

    with PgServer() as pg:
        pg.sql("CREATE TABLE t (id int)")
        pg.url  # postgres://lake:<password>@127.0.0.1:<port>/lakedb

PostgreSQL refuses to run as root: as root, the server runs as the `postgres` user (`runuser`). The binaries are
Debian's (`apt-get install -y postgresql`; `.ci/run` installs them). `available()` says whether they are here.
"""

from __future__ import annotations

import glob
import os
import secrets
import shutil
import socket
import subprocess
import tempfile
from pathlib import Path

USER, DB = "lake", "lakedb"


def bin_dir() -> Path | None:
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"))
    return Path(found[-1]).parent if found else None


def available() -> bool:
    return bin_dir() is not None and shutil.which("psql") is not None


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class PgServer:
    def __init__(self) -> None:
        self.bin = bin_dir()
        if self.bin is None:
            raise RuntimeError("PostgreSQL server binaries not found: apt-get install -y postgresql")
        self.password = secrets.token_hex(12)
        self.port = _free_port()
        self.dir = Path(tempfile.mkdtemp(prefix="lh-pg-"))
        self.data = self.dir / "data"
        self._as_postgres = os.geteuid() == 0

    @property
    def url(self) -> str:
        return f"postgres://{USER}:{self.password}@127.0.0.1:{self.port}/{DB}"

    def _run(self, *argv: str, stdin: str | None = None) -> str:
        cmd = ["runuser", "-u", "postgres", "--", *argv] if self._as_postgres else list(argv)
        done = subprocess.run(cmd, input=stdin, capture_output=True, text=True, timeout=120, cwd=self.dir)
        if done.returncode != 0:
            raise RuntimeError(f"{argv[0]} failed: {done.stderr.strip() or done.stdout.strip()}")
        return done.stdout

    def __enter__(self) -> PgServer:
        if self._as_postgres:
            shutil.chown(self.dir, "postgres", "postgres")
        self._run(str(self.bin / "initdb"), "-D", str(self.data), "-U", "postgres", "--auth=trust", "-E", "UTF8",
                  "--locale=C.UTF-8")
        (self.data / "pg_hba.conf").write_text(  # the lake's user needs its password over TCP; the admin uses the socket
            "local all all trust\nhost all postgres 127.0.0.1/32 trust\nhost all all 127.0.0.1/32 scram-sha-256\n")
        self._run(str(self.bin / "pg_ctl"), "-D", str(self.data), "-w", "-l", str(self.dir / "log"), "-o",
                  f"-p {self.port} -k {self.dir} -c listen_addresses=127.0.0.1 -c fsync=off -c log_statement=all",
                  "start")
        try:
            self.sql(f"CREATE USER {USER} PASSWORD '{self.password}'", db="postgres")
            self.sql(f"CREATE DATABASE {DB} OWNER {USER}", db="postgres")
        except BaseException:
            self.__exit__()
            raise
        return self

    def sql(self, text: str, db: str = DB, user: str | None = None) -> str:
        """Run SQL through psql over the socket (as the lake's user unless `user`): the rows, tab-separated."""
        return self._run("psql", "-X", "-q", "-A", "-t", "-F", "\t", "-v", "ON_ERROR_STOP=1", "-h", str(self.dir),
                         "-p", str(self.port), "-U", user or (USER if db == DB else "postgres"), "-d", db, stdin=text)

    def log(self) -> str:
        """The server's log: with log_statement=all, every statement any client sent."""
        return (self.dir / "log").read_text(errors="replace")

    def __exit__(self, *exc: object) -> None:
        try:
            self._run(str(self.bin / "pg_ctl"), "-D", str(self.data), "-m", "immediate", "stop")
        except RuntimeError:
            pass
        shutil.rmtree(self.dir, ignore_errors=True)
