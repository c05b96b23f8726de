"""Identifier validation: names that reach SQL are checked here, never interpolated raw."""

from __future__ import annotations

import re

from lakehouse.errors import InvalidInput

_NAME = re.compile(r"^[a-z_][a-z0-9_]{0,62}$")


def check_name(name: object, what: str = "dataset") -> str:
    """Return `name` if it is a valid identifier (`^[a-z_][a-z0-9_]{0,62}$`), else InvalidInput."""
    if not isinstance(name, str) or not _NAME.match(name):
        raise InvalidInput(
            f"invalid {what} name {name!r}: use lowercase letters, digits and _, "
            "starting with a letter or _, at most 63 characters",
            code=f"invalid_{what}_name",
        )
    if name.startswith("lh_") or "__" in name:
        raise InvalidInput(f"invalid {what} name {name!r}: 'lh_' prefixes and '__' are reserved",
                           code=f"invalid_{what}_name")
    return name


def quote_ident(name: str) -> str:
    """Double-quote an identifier for DuckDB (for column names that come from files)."""
    return '"' + name.replace('"', '""') + '"'


def sql_string(value: str) -> str:
    """A single-quoted SQL string literal."""
    return "'" + value.replace("'", "''") + "'"
