"""Profiles: a caller bound to datasets and corpora (glob patterns) and to reading or writing, by an API key.

    lakehouse profile create sales --datasets 'sales_*,regions' --corpora 'sales_docs' --access read
    # prints the key once; the lake keeps only its SHA-256

`lh.profiles` holds one row per profile: name, dataset and corpus patterns, access and the key's SHA-256. A
key is 32 random bytes (`lh_` + URL-safe base64), so an unsalted SHA-256 is enough to make the stored digest
useless to whoever reads it: there is no dictionary of random keys to try. Lookups compare digests with
`hmac.compare_digest`.

`ProfileStore` keeps the table in memory, read again only when the lake's snapshot moved (`LakeClock.latest`:
a stat of the catalog file with the default SQLite catalog), so resolving a key costs a hash and a dict lookup.
What a profile may do is enforced by the operations layer (`ops/scope.py`), never by a surface.

Buckets: DuckLake 1.5.5 has one data path per lake (see `buckets.py`), so a profile cannot be given a bucket of
its own; profiles bind datasets and corpora.
"""

from __future__ import annotations

import dataclasses
import fnmatch
import hashlib
import hmac
import re
import secrets
import threading
from typing import TYPE_CHECKING, Any

from lakehouse.engine import journal
from lakehouse.engine.names import check_name
from lakehouse.errors import Forbidden, InvalidInput, NotFound, map_duckdb_errors

if TYPE_CHECKING:
    from lakehouse.engine.context import EngineContext

DDL = """CREATE TABLE IF NOT EXISTS lake.lh.profiles (
        name VARCHAR, datasets VARCHAR[], corpora VARCHAR[], access VARCHAR, key_sha256 VARCHAR,
        created_at TIMESTAMP, rotated_at TIMESTAMP)"""
ACCESS = ("read", "write")
KEY_PREFIX = "lh_"
_PATTERN = re.compile(r"^[a-z_*?][a-z0-9_*?]{0,62}$")


@dataclasses.dataclass(frozen=True)
class Profile:
    """What a caller bound to this profile may see and do."""

    name: str
    datasets: tuple[str, ...]
    corpora: tuple[str, ...]
    access: str  # "read": only operations that do not write; "write": any operation the profile may call

    def has_dataset(self, name: str) -> bool:
        return any(fnmatch.fnmatchcase(name, p) for p in self.datasets)

    def has_corpus(self, name: str) -> bool:
        return any(fnmatch.fnmatchcase(name, p) for p in self.corpora)

    def check_dataset(self, name: str) -> None:
        if not self.has_dataset(name):
            raise Forbidden(f"dataset {name!r} is outside profile {self.name!r}", code="profile_forbidden")

    def check_corpus(self, name: str) -> None:
        if not self.has_corpus(name):
            raise Forbidden(f"corpus {name!r} is outside profile {self.name!r}", code="profile_forbidden")

    def to_dict(self) -> dict[str, Any]:
        return {"name": self.name, "datasets": list(self.datasets), "corpora": list(self.corpora),
                "access": self.access}


def digest(key: str) -> str:
    return hashlib.sha256(key.encode("utf-8", "surrogateescape")).hexdigest()


def new_key() -> str:
    return KEY_PREFIX + secrets.token_urlsafe(32)


def check_patterns(patterns: list[str], what: str) -> tuple[str, ...]:
    """Glob patterns over names (`sales_*`, `docs`): the characters of names plus `*` and `?`."""
    for p in patterns:
        if not isinstance(p, str) or not _PATTERN.match(p):
            raise InvalidInput(f"invalid {what} pattern {p!r}: lowercase letters, digits, _ and the wildcards * and ?",
                               code=f"invalid_{what}")
    return tuple(dict.fromkeys(patterns))


class ProfileStore:
    """The profiles of a lake, cached per snapshot (module docstring)."""

    def __init__(self, ctx: EngineContext) -> None:
        self.ctx = ctx
        self._lock = threading.Lock()
        self._snapshot: int | None = None
        self._by_name: dict[str, tuple[Profile, str]] = {}  # name -> (profile, key digest)

    def _current(self) -> dict[str, tuple[Profile, str]]:
        snapshot = self.ctx.clock.latest()
        with self._lock:
            if snapshot != self._snapshot:
                with map_duckdb_errors(), self.ctx.fresh_cursor() as cur:
                    rows = cur.execute("SELECT name, datasets, corpora, access, key_sha256 FROM lake.lh.profiles"
                                       ).fetchall()
                self._by_name = {r[0]: (Profile(r[0], tuple(r[1] or ()), tuple(r[2] or ()), r[3]), r[4])
                                 for r in rows}
                self._snapshot = snapshot
            return self._by_name

    def get(self, name: str) -> Profile:
        found = self._current().get(name)
        if found is None:
            raise NotFound(f"no profile named {name!r}", code="unknown_profile")
        return found[0]

    def resolve(self, key: str) -> Profile | None:
        """The profile whose key this is, or None. Every stored digest is compared, in constant time each."""
        sent = digest(key)
        match = None
        for profile, stored in self._current().values():
            if hmac.compare_digest(sent, stored):
                match = profile
        return match

    def list(self) -> list[dict[str, Any]]:
        return [p.to_dict() for p, _ in sorted(self._current().values(), key=lambda t: t[0].name)]

    def create(self, name: str, datasets: list[str], corpora: list[str], access: str) -> dict[str, Any]:
        check_name(name, "profile")
        profile = Profile(name, check_patterns(datasets, "datasets"), check_patterns(corpora, "corpora"), access)
        key = new_key()

        def body(cur: Any) -> None:
            if cur.execute("SELECT count(*) FROM lake.lh.profiles WHERE name = ?", [name]).fetchone()[0]:
                raise InvalidInput(f"profile {name!r} exists; delete it first or rotate its key",
                                   code="profile_exists")
            cur.execute("INSERT INTO lake.lh.profiles VALUES (?, ?, ?, ?, ?, now()::TIMESTAMP, NULL)",
                        [name, list(profile.datasets), list(profile.corpora), access, digest(key)])
            journal.note(profile=name)

        self._write(body)
        return {**profile.to_dict(), "key": key}

    def delete(self, name: str) -> dict[str, Any]:
        def body(cur: Any) -> None:
            self._must_exist(cur, name)
            cur.execute("DELETE FROM lake.lh.profiles WHERE name = ?", [name])
            journal.note(profile=name)

        self._write(body)
        return {"deleted": name}

    def rotate_key(self, name: str) -> dict[str, Any]:
        key = new_key()

        def body(cur: Any) -> None:
            self._must_exist(cur, name)
            cur.execute("UPDATE lake.lh.profiles SET key_sha256 = ?, rotated_at = now()::TIMESTAMP WHERE name = ?",
                        [digest(key), name])
            journal.note(profile=name)

        self._write(body)
        return {"name": name, "key": key}

    @staticmethod
    def _must_exist(cur: Any, name: str) -> None:
        if not cur.execute("SELECT count(*) FROM lake.lh.profiles WHERE name = ?", [name]).fetchone()[0]:
            raise NotFound(f"no profile named {name!r}", code="unknown_profile")

    def _write(self, body: Any) -> None:
        with map_duckdb_errors(), self.ctx.fresh_cursor() as cur:
            self.ctx.transaction(cur, body)
