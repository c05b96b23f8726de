"""Make a directory read-only for a while, even as root (CI runs as root, and root ignores permission bits).

Not root: `chmod 555`. Root: a read-only bind mount of the directory onto itself (`mount --bind -o ro`: writes
fail with EROFS, as on a disk remounted read-only, and its files stay readable), else the immutable attribute
(`chattr +i`: EPERM). Either way a probe write must then fail, or `ReadOnlyUnavailable` is raised: the caller
fails under CI=true and skips elsewhere.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import stat
import subprocess
import uuid
from collections.abc import Iterator
from pathlib import Path


class ReadOnlyUnavailable(RuntimeError):
    pass


def _writable(folder: Path) -> bool:
    probe = folder / f".probe-{uuid.uuid4().hex}"
    try:
        probe.write_bytes(b"")
    except OSError:
        return False
    probe.unlink()
    return True


def _run(*argv: str) -> bool:
    if shutil.which(argv[0]) is None:
        return False
    return subprocess.run(argv, capture_output=True).returncode == 0


@contextlib.contextmanager
def read_only(folder: Path) -> Iterator[str]:
    """Yields how it was done: "chmod", "bind-mount" or "chattr"."""
    folder.mkdir(parents=True, exist_ok=True)
    if os.geteuid() != 0:
        mode = folder.stat().st_mode
        folder.chmod(stat.S_IRUSR | stat.S_IXUSR | stat.S_IRGRP | stat.S_IXGRP | stat.S_IROTH | stat.S_IXOTH)
        undo, how = (lambda: folder.chmod(mode)), "chmod"
    elif _run("mount", "--bind", "-o", "ro", str(folder), str(folder)):
        undo, how = (lambda: _run("umount", str(folder))), "bind-mount"
    elif _run("chattr", "+i", str(folder)):
        undo, how = (lambda: _run("chattr", "-i", str(folder))), "chattr"
    else:
        raise ReadOnlyUnavailable(f"cannot make {folder} read-only as root (no mount --bind, no chattr +i)")
    try:
        if _writable(folder):
            raise ReadOnlyUnavailable(f"{folder} is still writable after {how}")
        yield how
    finally:
        undo()
