"""The downgrade gate: composed multi-corpus retrieval helps weak models and hurts strong ones.

Modes are data (`[modes]` in lakehouse.toml):

    [modes.codereview_lakehouse]          # composed: the primary corpus plus context corpora
    primary = "lakehouse_arch_v1"
    corpora = ["lakehouse_arch_v1", "lakehouse_symbols_v1", "scrum_findings_v1"]
    isolation = "codereview_isolation"    # what a strong model gets instead
    [modes.codereview_isolation]
    primary = "lakehouse_arch_v1"
    corpora = ["lakehouse_arch_v1"]

Model strength is by glob patterns, `[models] weak = [...]`, `strong = [...]` (defaults below);
weak patterns are checked first (a local model is weak whatever its name), then strong ones; a
model matching neither counts as weak (composition is the safe default for a model we know nothing
about).
"""

from __future__ import annotations

import dataclasses
import fnmatch
from collections.abc import Mapping
from typing import Any

from lakehouse.engine.chat.routing import ModelTable
from lakehouse.errors import InvalidInput, SettingsError

DEFAULT_WEAK = ("ollama/*", "qwen*", "llama*", "*:7b", "*:8b", "*:13b", "*:14b", "mistral*", "phi*", "gemma*")
DEFAULT_STRONG = ("claude*", "*/claude*", "opus*", "*/opus*", "gpt-4*", "*/gpt-4*", "gpt-5*", "*/gpt-5*",
                  "grok-4*", "*/grok-4*", "kimi*", "*/kimi*")


def is_weak_model(model: str, table: ModelTable | None = None) -> bool:
    """True for local/small models (composition helps them), False for frontier models. `table`: the lake's
    parsed [models] (its tiers and weak/strong globs); None: the defaults."""
    table = table or ModelTable(None)
    name = table.resolve_tier(model).lower()  # a tier: judge the model it points at
    if any(fnmatch.fnmatch(name, p.lower()) for p in table.weak or DEFAULT_WEAK):
        return True
    return not any(fnmatch.fnmatch(name, p.lower()) for p in table.strong or DEFAULT_STRONG)


@dataclasses.dataclass
class ModeChoice:
    mode: str | None
    corpora: list[str]
    reason: str


def choose_mode(modes: Mapping[str, Any], *, mode: str | None, force_mode: str | None, model: str | None,
                models: ModelTable, corpora: list[str] | None) -> ModeChoice:
    """Which mode (and corpora) to search, and why."""
    if force_mode is not None:
        spec = _mode(modes, force_mode)
        return ModeChoice(force_mode, list(spec["corpora"]), f"force_mode={force_mode!r} bypasses the gate")
    if mode is None:
        if not corpora:
            raise InvalidInput("give corpora or a mode", code="missing_corpora")
        return ModeChoice(None, corpora, "explicit corpora, no mode")
    spec = _mode(modes, mode)
    isolation = spec.get("isolation")
    if model is None:
        return ModeChoice(mode, list(spec["corpora"]), "no model given: mode used as configured")
    weak = is_weak_model(model, models)
    if isolation and not weak:
        iso = _mode(modes, isolation)
        return ModeChoice(isolation, list(iso["corpora"]),
                          f"{model!r} is a strong model: composed mode {mode!r} downgraded to isolation {isolation!r}")
    why = "a weak model" if weak else "a strong model, but the mode has no isolation"
    return ModeChoice(mode, list(spec["corpora"]), f"{model!r} is {why}: composed mode {mode!r} kept")


def _mode(modes: Mapping[str, Any], name: str) -> Mapping[str, Any]:
    spec = modes.get(name)
    if not isinstance(spec, Mapping) or not isinstance(spec.get("corpora"), list):
        known = ", ".join(sorted(modes)) or "none configured"
        raise InvalidInput(f"unknown mode {name!r} (modes: {known})", code="unknown_mode")
    return spec


def check_modes(modes: Mapping[str, Any]) -> None:
    """The `[modes]` table, checked when the lake opens: SettingsError naming the key that is wrong."""
    for name, spec in modes.items():
        where = f"modes.{name}"
        if not isinstance(spec, Mapping):
            raise SettingsError(f"{where} must be a table with corpora = [...]", setting=where)
        unknown = set(spec) - {"primary", "corpora", "isolation"}
        if unknown:
            raise SettingsError(f"{where} has unknown keys {sorted(unknown)}; use primary, corpora, isolation",
                                setting=where)
        corpora = spec.get("corpora")
        if not isinstance(corpora, list) or not corpora or not all(isinstance(c, str) and c for c in corpora):
            raise SettingsError(f"{where}.corpora must be a non-empty list of corpus names", setting=f"{where}.corpora")
        primary = spec.get("primary")
        if primary is not None and (not isinstance(primary, str) or primary not in corpora):
            raise SettingsError(f"{where}.primary must be one of its corpora {corpora}", setting=f"{where}.primary")
        isolation = spec.get("isolation")
        if isolation is not None and (not isinstance(isolation, str) or isolation not in modes or isolation == name):
            raise SettingsError(f"{where}.isolation must name another mode (modes: {', '.join(sorted(modes))})",
                                setting=f"{where}.isolation")
