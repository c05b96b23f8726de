"""A lake shared by several processes the way a deployment shares one: a PostgreSQL catalog (pg_server.PgServer)
and an S3 data path (s3_server.S3Server, moto), each process with its own root folder.

    require_services()                 # at import of a test module: skip, or fail under CI=true, when missing
    with SharedServices() as services:
        where = services.new_lake()    # {"catalog": "postgres:dbname=... host=... port=... user=... password=...",
                                       #  "data_path": "s3://lake/<prefix>/"}: a fresh catalog database and prefix
        lakehouse.open(root, **where, embedder="hash")

The lakes' processes take the S3 endpoint and keys from the environment (`services.env`, the AWS variables a real
node would have): `with services.environment(): ...` sets them for this process and the ones it starts.
"""

from __future__ import annotations

import contextlib
import os
import secrets
from collections.abc import Iterator
from typing import Any

import pytest
import s3_server
from pg_server import USER, PgServer
from pg_server import available as pg_available


def require_services() -> None:
    missing = [name for name, ok in (("PostgreSQL server binaries (apt-get install -y postgresql)", pg_available()),
                                     ("moto[server] (pip install -e '.[test]')", s3_server.available())) if not ok]
    if not missing:
        return
    if os.environ.get("CI") == "true":
        raise RuntimeError("missing under CI=true: " + ", ".join(missing))
    pytest.skip("not installed: " + ", ".join(missing), allow_module_level=True)


class SharedServices:
    def __init__(self) -> None:
        self.pg = PgServer()
        self.s3 = s3_server.S3Server()
        self._stack = contextlib.ExitStack()

    @property
    def env(self) -> dict[str, str]:
        return self.s3.env

    def new_lake(self) -> dict[str, str]:
        """A catalog database of its own and a data prefix of its own."""
        name = f"lake_{secrets.token_hex(4)}"
        self.pg.sql(f"CREATE DATABASE {name} OWNER {USER}", db="postgres")
        prefix = secrets.token_hex(4)
        return {"catalog": f"postgres:dbname={name} host=127.0.0.1 port={self.pg.port} user={USER} "
                           f"password={self.pg.password}",
                "data_path": f"s3://{s3_server.BUCKET}/{prefix}/"}

    def s3_keys(self, data_path: str) -> list[str]:
        prefix = data_path.removeprefix(f"s3://{s3_server.BUCKET}/")
        pages = self.s3.client().get_paginator("list_objects_v2").paginate(Bucket=s3_server.BUCKET, Prefix=prefix)
        return [o["Key"] for page in pages for o in page.get("Contents", [])]

    @contextlib.contextmanager
    def environment(self) -> Iterator[None]:
        saved = {k: os.environ.get(k) for k in self.env}
        os.environ.update(self.env)
        try:
            yield
        finally:
            for k, v in saved.items():
                if v is None:
                    os.environ.pop(k, None)
                else:
                    os.environ[k] = v

    def __enter__(self) -> SharedServices:
        self._stack.enter_context(self.pg)
        self._stack.enter_context(self.s3)
        return self

    def __exit__(self, *exc: Any) -> None:
        self._stack.close()

