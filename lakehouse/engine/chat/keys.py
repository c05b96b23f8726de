"""Provider API keys: the environment first, then a dotenv file that only its owner may read.

Keys are checked when loaded: surrounding whitespace (the trailing newline of a mounted secret) is
stripped, and a key still holding a control character or inner whitespace is refused; the refusal
names the variable, never the value. Keys live here and in request headers only. `scrub(text)`
removes every representation of every key this process has loaded (raw, escaped, URL-encoded,
base64, a prefix of 10+ characters) and the userinfo of URLs, from any text: upstream error bodies,
messages, log lines (a filter on the `lakehouse` logger) and ObservedOps.
"""

from __future__ import annotations

import logging
import os
import re
import stat
from collections.abc import Iterable, Mapping
from pathlib import Path

from lakehouse.errors import Forbidden, LakehouseError, ProviderNotConfigured
from lakehouse.scrub import SCRUB, scrub

log = logging.getLogger(__name__)

_LINE = re.compile(r"^\s*(?:export\s+)?([A-Za-z_][A-Za-z0-9_]*)\s*=\s*(.*?)\s*$")
_BAD = re.compile(r"[^\x21-\x7e]")  # what an HTTP header cannot carry: controls, whitespace, non-ASCII


def parse_dotenv(text: str) -> dict[str, str]:
    """KEY=VALUE lines; `export`, blank lines, `#` comments and matching quotes allowed."""
    out: dict[str, str] = {}
    for line in text.splitlines():
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        m = _LINE.match(line)
        if not m:
            continue  # not ours to judge; the file may be shared with other tools
        key, value = m.groups()
        if len(value) >= 2 and value[0] == value[-1] and value[0] in "\"'":
            value = value[1:-1]
        else:
            value = re.split(r"\s+#", value, maxsplit=1)[0].strip()
        out[key] = value
    return out


def read_key_file(path: str | os.PathLike[str]) -> dict[str, str]:
    """Parse `path`; {} if it does not exist; Forbidden if group or others may read it."""
    p = Path(path)
    try:
        st = p.stat()
    except FileNotFoundError:
        return {}
    except OSError as exc:
        raise Forbidden(f"cannot stat key file {p}: {exc.strerror}", path=str(p)) from exc
    mode = stat.S_IMODE(st.st_mode)
    if mode & 0o077:
        raise Forbidden(
            f"refusing to read key file {p}: its mode {mode:04o} lets group or others read it; "
            f"run `chmod 600 {p}`",
            path=str(p),
        )
    try:
        return parse_dotenv(p.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError) as exc:
        raise Forbidden(f"cannot read key file {p}: {getattr(exc, 'strerror', None) or 'not UTF-8 text'}",
                        path=str(p)) from exc


def _install_log_scrubbing() -> None:
    """Every log record of a `lakehouse.*` logger is scrubbed when it is made: its message and its traceback
    (a filter would have to sit on every logger: filters do not propagate to children)."""
    previous = logging.getLogRecordFactory()

    def factory(*args: object, **kwargs: object) -> logging.LogRecord:
        record = previous(*args, **kwargs)
        if record.name.startswith("lakehouse"):
            try:
                record.msg, record.args = scrub(record.getMessage()), ()
            except Exception:  # noqa: BLE001 - a bad format string is logging's to report, not ours
                return record
            if record.exc_info and record.exc_info[0] is not None:
                record.exc_text = scrub(logging.Formatter().formatException(record.exc_info))
        return record

    logging.setLogRecordFactory(factory)


_install_log_scrubbing()


class KeyRing:
    """Looks up the named variables: `env` wins, then the key file (read once, if needed).

    A value is stripped of surrounding whitespace; one that still holds a control character or inner
    whitespace is not used: `require(name)` then says which variable is malformed."""

    def __init__(self, names: Iterable[str], env: Mapping[str, str], key_file: str | None) -> None:
        self.key_file = key_file or None
        self.file_error: LakehouseError | None = None
        self._keys: dict[str, str] = {}
        self._malformed: dict[str, str] = {}  # name -> where it came from
        names = list(names)
        for name in names:
            self._take(name, env.get(name), "the environment")
        missing = [n for n in names if n not in self._keys and n not in self._malformed]
        if missing and self.key_file:
            try:
                found = read_key_file(self.key_file)
            except LakehouseError as exc:
                # Not fatal for the lake: providers needing the file report it when called.
                log.warning("%s", exc)
                self.file_error = exc
                found = {}
            for name in missing:
                self._take(name, found.get(name), f"key file {self.key_file}")

    def _take(self, name: str, value: str | None, origin: str) -> None:
        if not value:
            return
        SCRUB.add(value)  # whatever it holds, it never reaches a message
        key = value.strip()
        if not key:
            return
        if _BAD.search(key):
            self._malformed[name] = origin
            log.warning("%s from %s holds a character an HTTP header cannot carry (a control character, whitespace "
                        "or non-ASCII); it is not used", name, origin)
            return
        SCRUB.add(key)
        self._keys[name] = key

    def get(self, name: str) -> str | None:
        return self._keys.get(name)

    def require(self, name: str, provider: str) -> str:
        """The key, or ProviderNotConfigured saying what to fix (never showing a value)."""
        key = self._keys.get(name)
        if key is not None:
            return key
        if name in self._malformed:
            raise ProviderNotConfigured(
                f"provider {provider!r} is not configured: {name} from {self._malformed[name]} holds a character "
                "an HTTP header cannot carry (a control character, whitespace or non-ASCII); set it to the key alone",
                provider=provider, key_env=name)
        where = f" or in {self.key_file}" if self.key_file else ""
        note = f" ({self.file_error.message})" if self.file_error else ""
        raise ProviderNotConfigured(
            f"provider {provider!r} is not configured: set {name} in the environment{where}{note}",
            provider=provider, key_env=name)

    @staticmethod
    def scrub(text: str) -> str:
        return scrub(text)
