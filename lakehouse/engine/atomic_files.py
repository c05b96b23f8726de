"""Files replaced whole: written beside their final path under a name of their own, then renamed over it.

A reader sees the old file or the new one, never half of either; two writers of one path (two processes on one
lake root) each write their own temporary file, so neither renames the other's half-written one into place.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Callable
from pathlib import Path


def replace_atomically(path: Path, write: Callable[[Path], None]) -> None:
    """`write(tmp)` to a fresh `.<name>.*.tmp` in `path`'s folder, flushed to disk, then renamed to `path`
    (a crash leaves at most the `.tmp`, which housekeeping removes)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    os.close(fd)
    tmp = Path(name)
    try:
        write(tmp)
        with open(tmp, "rb") as fh:
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
