"""Profile administration: profile.create / list / delete / rotate_key. The server owner's, so local only: a Python
program or the CLI (`lakehouse profile ...`); no HTTP route or MCP tool, and refused from any other entrance, so a
remote caller can never mint or list keys (`local_only`: Operations.call refuses it)."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import Field

from lakehouse.engine.ops.base import Input, Op
from lakehouse.engine.ops.data_ops import NoInput

ProfileName = Field(pattern=r"^[a-z_][a-z0-9_]{0,62}$", description="the profile's name")


class ProfileCreate(Input):
    name: str = ProfileName
    datasets: list[str] = Field(default_factory=list, max_length=1000,
                                description="dataset names or glob patterns (sales_*) the profile may use")
    corpora: list[str] = Field(default_factory=list, max_length=1000,
                               description="corpus names or glob patterns the profile may use")
    access: Literal["read", "write"] = Field("read", description="read: only operations that do not write")


class ProfileName_(Input):
    name: str = ProfileName


OPS = [
    Op("profile.create", "Create a profile (datasets and corpora by glob, read or write access); returns its API key "
       "once (only its SHA-256 is stored).", ProfileCreate,
       lambda lake, inp: lake.profiles.create(inp.name, inp.datasets, inp.corpora, inp.access),
       output=dict[str, Any], writes=True, cli="lakehouse profile create NAME --datasets A,B_* --corpora C --access read",
       summary=lambda d: {"name": d["name"], "access": d["access"]}, local_only=True),
    Op("profile.list", "Profiles with their dataset and corpus patterns and access (never keys).", NoInput,
       lambda lake, inp: lake.profiles.list(), output=list[dict[str, Any]], cli="lakehouse profile list",
       count=len, local_only=True),
    Op("profile.delete", "Delete a profile; its key stops working at once.", ProfileName_,
       lambda lake, inp: lake.profiles.delete(inp.name), output=dict[str, Any], writes=True,
       cli="lakehouse profile delete NAME", local_only=True),
    Op("profile.rotate_key", "A new API key for a profile (returned once); the old one stops working at once.",
       ProfileName_, lambda lake, inp: lake.profiles.rotate_key(inp.name), output=dict[str, Any], writes=True,
       cli="lakehouse profile rotate-key NAME", summary=lambda d: {"name": d["name"]}, local_only=True),
]
