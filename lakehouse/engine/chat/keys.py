"""Provider API keys: the environment first, then a dotenv file that only its owner may read.

Keys are held here and in request headers only; `KeyRing.scrub` removes them from any text
(upstream error bodies) before it reaches a message, a log line or an ops record.
"""

from __future__ import annotations

import logging
import os
import re
import stat
from collections.abc import Iterable, Mapping
from pathlib import Path

from lakehouse.errors import Forbidden, LakehouseError

log = logging.getLogger(__name__)

_LINE = re.compile(r"^\s*(?:export\s+)?([A-Za-z_][A-Za-z0-9_]*)\s*=\s*(.*?)\s*$")


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
    except OSError as exc:
        raise Forbidden(f"cannot read key file {p}: {exc.strerror}", path=str(p)) from exc


class KeyRing:
    """Looks up the named variables: `env` wins, then the key file (read once, if needed)."""

    def __init__(self, names: Iterable[str], env: Mapping[str, str], key_file: str | None) -> None:
        self.key_file = key_file or None
        self.file_error: LakehouseError | None = None
        self._keys: dict[str, str] = {}
        names = list(names)
        for name in names:
            if env.get(name):
                self._keys[name] = env[name]
        missing = [n for n in names if n not in self._keys]
        if missing and self.key_file:
            try:
                found = read_key_file(self.key_file)
            except LakehouseError as exc:
                # Not fatal for the lake: providers needing the file report it when called.
                log.warning("%s", exc)
                self.file_error = exc
                found = {}
            for name in missing:
                if found.get(name):
                    self._keys[name] = found[name]

    def get(self, name: str) -> str | None:
        return self._keys.get(name)

    def scrub(self, text: str) -> str:
        """Replace every known key in `text` (upstream bodies sometimes echo what they got)."""
        for key in self._keys.values():
            if len(key) >= 4:
                text = text.replace(key, "***")
        return text
