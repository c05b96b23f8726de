"""Which column types hold a file's values exactly, and SQL guards that refuse any other conversion.

DuckDB converts generously: `'7.9'::BIGINT` is 8, `'007'` is 7, `'yes'` is a BOOLEAN, a 24-digit
integer becomes a DOUBLE, and a CSV column typed from a 20,480-row sample converts the rest of the
file the same way. Ingest therefore reads text as VARCHAR and converts it in SQL through a guard:

    coalesce(CASE WHEN <the text converts exactly> THEN <converted> END, <error('lh_guard:<i>') unless NULL>)

"Exactly" for text means the value's text survives (`text_ok`): a canonical integer, a number with
no more significant digits than the type holds, `true`/`false`, an unambiguous date. For typed
sources (JSON numbers, Parquet) it means the value round-trips (`value_ok`). A guard that fires is
examined by a second, diagnostic scan (`ingest_read.Reading.diagnose`), which also infers the exact
type of the column (`infer_type`) for the create path and for `widen=True`.
"""

from __future__ import annotations

import re

from lakehouse.engine.names import sql_string
from lakehouse.errors import InvalidInput

GUARD_TAG = "lh_guard:"
DOUBLE_DIGITS = 15  # every decimal of <= 15 significant digits round-trips through a DOUBLE
FLOAT_DIGITS = 6
_INTEGERS = ("TINYINT", "SMALLINT", "INTEGER", "BIGINT", "UTINYINT", "USMALLINT", "UINTEGER", "UBIGINT")
_SIGNED_RANK = {"TINYINT": 1, "SMALLINT": 2, "INTEGER": 3, "BIGINT": 4, "DECIMAL(38,0)": 5}
_UNSIGNED_RANK = {"UTINYINT": 1, "USMALLINT": 2, "UINTEGER": 3, "UBIGINT": 4, "DECIMAL(38,0)": 5}
_TIMESTAMPS = ("TIMESTAMP", "TIMESTAMP_S", "TIMESTAMP_MS", "TIMESTAMP_NS", "TIMESTAMP WITH TIME ZONE",
               "TIME", "TIME WITH TIME ZONE")
_FRACTION_DIGITS = {"TIMESTAMP_S": 0, "TIMESTAMP_MS": 3, "TIMESTAMP_NS": 9}
_DECIMAL = re.compile(r"DECIMAL\((\d+),\s*(\d+)\)")
# As types, not as field names: a type is followed by "(" (UNION) or ends an element (",", ")", "[", end).
_UNSUPPORTED = re.compile(r"\b(UNION(?=\()|(?:BIT|BIGNUM|VARINT)(?=$|[,)\[]))")
_ENUM = re.compile(r"ENUM\((?:'(?:[^']|'')*'(?:,\s*)?)*\)")
_ARRAY = re.compile(r"\[\d+\]")
_HUGE = re.compile(r"\bU?HUGEINT\b")
_CANONICAL_NUMBER = r"-?(0|[1-9][0-9]*)(\.[0-9]+)?"


def storable(name: str, type_: str) -> tuple[str, str | None]:
    """(the type DuckLake stores `type_` as without changing a value, why it differs), or InvalidInput.

    DuckLake 1.5.5 has no UNION, BIT, BIGNUM, ENUM or fixed-size ARRAY, and writes HUGEINT into
    Parquet as a DOUBLE (a 30-digit value comes back rounded)."""
    bad = _UNSUPPORTED.search(type_)
    if bad:
        raise InvalidInput(f"column {name!r} has type {type_}: the lake cannot store {bad.group(1)} values; "
                           "convert the column before ingesting", code="unsupported_type", column=name)
    stored, why = type_, []
    if _ENUM.search(stored):
        stored, why = _ENUM.sub("VARCHAR", stored), [*why, "the lake has no ENUM type: the labels are stored as text"]
    if _ARRAY.search(stored):
        stored, why = _ARRAY.sub("[]", stored), [*why, "the lake has no fixed-size ARRAY: stored as a list"]
    if _HUGE.search(stored):
        stored, why = _HUGE.sub("DECIMAL(38,0)", stored), [*why, "the lake stores HUGEINT as DOUBLE (rounded): "
                                                                 "stored as DECIMAL(38,0)"]
    return stored, "; ".join(why) or None


def ambiguous_format(fmt: str | None) -> bool:
    """A date format that puts day and month in an order only a guess can tell (01/02/2024)."""
    return bool(fmt) and "%d" in fmt and "%m" in fmt and not fmt.startswith("%Y")


def _significant_digits(v: str) -> str:
    """SQL: how many significant digits the number text `v` has (exponent dropped, zeros trimmed)."""
    return f"length(trim(regexp_replace(regexp_replace({v}, '[eE].*$', ''), '[^0-9]', '', 'g'), '0'))"


def _text_rule(v: str, target: str, fmt: str | None) -> tuple[str, str]:
    """(precondition, conversion) for the VARCHAR expression `v` to `target`: the text converts exactly
    when `v` is NULL, or the precondition holds and the conversion is not NULL."""
    t = target.upper()
    cast = f"TRY_CAST({v} AS {target})"
    if t == "VARCHAR":
        return "true", v
    if t in _TIMESTAMPS:
        convert = f"CAST(try_strptime({v}, {sql_string(fmt)}) AS {target})" if fmt else cast
        return _time_rule(v, t, bool(fmt)), convert
    if t == "DATE" and fmt:
        return "true", f"CAST(try_strptime({v}, {sql_string(fmt)}) AS {target})"
    if t in ("DOUBLE", "FLOAT", "REAL"):
        digits = DOUBLE_DIGITS if t == "DOUBLE" else FLOAT_DIGITS
        # No leading zeros ('007') or spaces (GLOB: a regex here costs 5x the cast), and no more
        # significant digits than the type keeps.
        return (f"NOT ({v} GLOB '0[0-9]*' OR {v} GLOB '[-+]0[0-9]*' OR {v} GLOB ' *' OR {v} GLOB '* ') "
                f"AND (length({v}) <= {digits} OR {_significant_digits(v)} <= {digits})"), cast
    decimal = _DECIMAL.fullmatch(t)
    if decimal and decimal.group(2) != "0":
        return (f"regexp_full_match({v}, '{_CANONICAL_NUMBER}') "
                f"AND length(rtrim(split_part({v}, '.', 2), '0')) <= {decimal.group(2)}"), cast
    if t == "BOOLEAN":
        return f"lower({v}) IN ('true', 'false')", cast
    # Integers, plain dates ('2024-01-02 10:00' casts to a DATE, dropping the time) and anything else:
    # the value must print back as the very text it came from.
    return f"CAST({cast} AS VARCHAR) = {v}", cast


def _time_rule(v: str, t: str, formatted: bool) -> str:
    """The precondition of a timestamp or time text. DuckDB's cast keeps the fraction digits the type holds and
    drops the rest ('00:00:00.1234567' as TIMESTAMP), drops an offset a plain TIMESTAMP has no room for
    ('03:04:05+02'), reads a text without one in the host's time zone (as TIMESTAMPTZ), and drops the date of
    a TIME. One regex where one does (each costs several casts)."""
    lost = [f"\\.[0-9]{{{_FRACTION_DIGITS.get(t, 6) + 1}}}"]  # more fraction digits than the type keeps
    if formatted:  # strptime matches the whole text: the format says what else it holds
        return f"NOT regexp_matches({v}, '{lost[0]}')"
    zoned = t in ("TIMESTAMP WITH TIME ZONE", "TIME WITH TIME ZONE")
    if not zoned:
        lost.append(":[0-9.:]*\\s*[-+A-Za-z]")  # an offset or zone after the time
    if t.startswith("TIME") and not t.startswith("TIMESTAMP"):
        lost.append("[0-9]-[0-9]{1,2}-")  # a date before the time
    rule = f"NOT regexp_matches({v}, '{'|'.join(lost)}')"
    if zoned:
        rule += (f" AND regexp_matches(trim({v}), ':[0-9]{{2}}(\\.[0-9]+)?\\s*"
                 "(Z|[+-][0-9]{1,2}(:?[0-9]{2})?|[A-Za-z][A-Za-z_/+-]*)$')")
    return rule


def text_ok(v: str, target: str, fmt: str | None = None) -> str:
    """SQL predicate: the VARCHAR expression `v` converts to `target` without changing its text (NULL: true)."""
    pre, convert = _text_rule(v, target, fmt)
    if pre == "true" and convert == v:
        return "true"
    return f"({v} IS NULL OR ({pre} AND {convert} IS NOT NULL))"


def text_guard(v: str, target: str, fmt: str | None, tag: int) -> str:
    """SQL: `v` as `target`, or an error tagged `tag` where `text_ok` is false. One cast per value:
    COALESCE evaluates its second argument only where the first is NULL."""
    pre, convert = _text_rule(v, target, fmt)
    if pre == "true" and convert == v:
        return v
    checked = convert if pre == "true" else f"CASE WHEN {pre} THEN {convert} END"
    return f"coalesce({checked}, CASE WHEN {v} IS NULL THEN NULL ELSE error('{GUARD_TAG}{tag}') END)"


def value_ok(v: str, source: str, target: str) -> str:
    """SQL predicate: the typed value `v` survives the trip to `target` and back (NULL: true)."""
    return f"({v} IS NULL OR CAST(TRY_CAST({v} AS {target}) AS {source}) IS NOT DISTINCT FROM {v})"


def value_guard(v: str, source: str, target: str, tag: int) -> str:
    """SQL: the typed value `v` as `target`, or an error tagged `tag` where `value_ok` is false."""
    return f"CASE WHEN {value_ok(v, source, target)} THEN TRY_CAST({v} AS {target}) ELSE error('{GUARD_TAG}{tag}') END"


def guard_tag(message: str) -> int | None:
    """The tag of the guard that fired, from a DuckDB error message."""
    found = re.search(GUARD_TAG + r"(\d+)", message)
    return int(found.group(1)) if found else None


# -- inferring the exact type of a text column ------------------------------------------------
_INFER = {
    "BOOLEAN": text_ok("{v}", "BOOLEAN"),
    "BIGINT": text_ok("{v}", "BIGINT"),
    "DECIMAL(38,0)": "regexp_full_match({v}, '0|-?[1-9][0-9]{{0,37}}')",
    "DOUBLE": text_ok("{v}", "DOUBLE"),
    "DECIMAL": f"regexp_full_match({{v}}, '{_CANONICAL_NUMBER}')",
}


def infer_aggregates(v: str) -> list[str]:
    """SQL aggregates over the VARCHAR column `v` that `infer_type` reads, in order."""
    parts = [f"count({v})"]
    parts += [f"count({v}) FILTER (WHERE {pred.format(v=v)})" for pred in _INFER.values()]
    parts.append(f"max(length(split_part(ltrim({v}, '-'), '.', 1))) FILTER (WHERE {_INFER['DECIMAL'].format(v=v)})")
    parts.append(f"max(length(split_part({v}, '.', 2))) FILTER (WHERE {_INFER['DECIMAL'].format(v=v)})")
    return parts


def infer_type(counts: tuple) -> str:
    """The narrowest type holding every value of a text column exactly, from `infer_aggregates`."""
    n, *fits, int_digits, scale = counts
    if n:
        for type_, count in zip(_INFER, fits):
            if count == n and type_ != "DECIMAL":
                return type_
        if fits[-1] == n and (int_digits or 1) + (scale or 0) <= 38:
            return f"DECIMAL(38,{scale or 0})"
    return "VARCHAR"


# -- widening on append --------------------------------------------------------------------
def widen(stored: str, new: str) -> str | None:
    """A type holding both `stored` and `new` values exactly (checked against the data by the caller);
    None when the stored type is nested and cannot be widened."""
    s, n = stored.upper().replace(" ", ""), new.upper().replace(" ", "")
    if s == n:
        return stored
    if any(ch in s for ch in "[(") and not s.startswith("DECIMAL"):
        return None
    for ranks in (_SIGNED_RANK, _UNSIGNED_RANK):
        if s in ranks and n in ranks:
            return max(s, n, key=ranks.__getitem__)
    if s in _INTEGERS + ("DECIMAL(38,0)",) and n in _INTEGERS + ("DECIMAL(38,0)",):
        return "DECIMAL(38,0)"
    numeric = ("DOUBLE", "FLOAT", "REAL")
    if (s in numeric or s in _INTEGERS) and (n in numeric or n in _INTEGERS):
        return "DOUBLE"
    ds, dn = _DECIMAL.fullmatch(s), _DECIMAL.fullmatch(n)
    if (ds or s in _INTEGERS) and (dn or n in _INTEGERS):
        scale = max(int(ds.group(2)) if ds else 0, int(dn.group(2)) if dn else 0)
        return f"DECIMAL(38,{scale})"
    if {s, n} == {"DATE", "TIMESTAMP"}:
        return "TIMESTAMP"
    return "VARCHAR"
