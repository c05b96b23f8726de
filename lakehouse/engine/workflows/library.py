"""Workflows by name: the ones shipped with Lakehouse (package data `lakehouse/workflows/*.yaml`) and the
lake's own (`<root>/workflows/NAME.yaml`, which wins over a shipped one of the same name: copy a shipped
workflow there to adapt it).

A workflow argument is a name when it is one line of `[A-Za-z0-9_-]` (YAML text always holds a colon);
names never carry a path, so no caller reaches a file outside these two folders.
"""

from __future__ import annotations

import importlib.resources
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from lakehouse.engine.workflows.spec import load_workflow
from lakehouse.errors import InvalidInput, LakehouseError, NotFound

_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_-]{0,99}$")
SUFFIX = ".yaml"


def is_name(text: str) -> bool:
    return bool(_NAME.match(text.strip()))


def shipped() -> dict[str, str]:
    """name -> YAML text of the workflows shipped with the package."""
    folder = importlib.resources.files("lakehouse") / "workflows"
    return {f.name[:-len(SUFFIX)]: f.read_text(encoding="utf-8") for f in sorted(folder.iterdir(), key=lambda f: f.name)
            if f.name.endswith(SUFFIX)}


def lake_folder(root: Path) -> Path:
    return root / "workflows"


def _own(root: Path) -> dict[str, Path]:
    folder = lake_folder(root)
    if not folder.is_dir():
        return {}
    return {p.name[:-len(SUFFIX)]: p for p in sorted(folder.glob(f"*{SUFFIX}")) if p.is_file() and is_name(p.stem)}


def find(name: str, root: Path) -> tuple[str, str]:
    """(YAML text, source: 'lake' or 'shipped') of the workflow called `name`."""
    name = name.strip()
    if not is_name(name):
        raise InvalidInput(f"{name!r} is not a workflow name ([A-Za-z0-9_-], 100 characters at most)",
                           code="invalid_workflow_name")
    own = _own(root)
    if name in own:
        try:
            return own[name].read_text(encoding="utf-8"), "lake"
        except (OSError, UnicodeDecodeError) as exc:
            raise InvalidInput(f"workflow {name!r} ({lake_folder(root).name}/{name}{SUFFIX}) cannot be read: {exc}",
                               code="invalid_workflow") from None
    found = shipped()
    if name in found:
        return found[name], "shipped"
    known = ", ".join(sorted({*found, *own})) or "none"
    raise NotFound(f"no workflow named {name!r} (known: {known}; or send the YAML itself)", code="workflow_not_found")


def listing(root: Path, modes: Mapping[str, Any]) -> list[dict[str, Any]]:
    """Every workflow by name: where it comes from, its description, nodes and inputs, or why it does not load."""
    sources: dict[str, tuple[str, Any]] = {name: ("shipped", text) for name, text in shipped().items()}
    sources.update({name: ("lake", path) for name, path in _own(root).items()})
    out = []
    for name, (source, where) in sorted(sources.items()):
        entry: dict[str, Any] = {"name": name, "source": source, "description": None, "nodes": [], "inputs": [],
                                 "error": None}
        try:
            wf = load_workflow(where.read_text(encoding="utf-8") if isinstance(where, Path) else where, modes)
        except (OSError, UnicodeDecodeError) as exc:
            entry["error"] = {"code": "unreadable", "message": f"{lake_folder(root).name}/{name}{SUFFIX}: {exc}"}
        except LakehouseError as exc:
            entry["error"] = {"code": exc.code, "message": exc.message}
        else:
            entry.update(description=wf.description, nodes=list(wf.nodes),
                         inputs=sorted({r.name for n in wf.nodes.values() for r in n.refs if r.kind == "input"}))
        out.append(entry)
    return out
