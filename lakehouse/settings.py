"""Every setting, declared once as data.

Precedence, lowest to highest: defaults < `<root>/lakehouse.toml` < `LH_*` environment <
keyword arguments to `lakehouse.open()`. An unknown key or a value of the wrong type is a
`SettingsError` at open, naming the key and where it came from.
"""

from __future__ import annotations

import dataclasses
import json
import math
import os
import tomllib
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from lakehouse.errors import SettingsError


@dataclasses.dataclass(frozen=True)
class Setting:
    name: str
    type: type
    default: Any
    help: str
    minimum: float | None = None  # numbers: the least value allowed (floats must also be finite)
    above: bool = False  # the value must be strictly above `minimum` (a timeout of 0 would disable the timer)
    choices: tuple[str, ...] | None = None  # text: the values allowed


SETTINGS: tuple[Setting, ...] = (
    Setting("max_rows", int, 10_000, "Row cap for read-only queries (Lake.query, /sql).", minimum=0),
    Setting("query_timeout_s", float, 30.0, "Seconds before a read-only query is interrupted.", minimum=0, above=True),
    Setting("fast_reads", bool, True, "Read-only queries read datasets' Parquet files at the latest snapshot "
            "(checked before each query) instead of paying DuckLake's catalog reads per query."),
    Setting("sync_interval_s", float, 1.0, "PostgreSQL/DuckDB catalogs: seconds within which other processes' "
            "commits reach this process's in-memory mirrors (SQLite catalogs: at once).", minimum=0, above=True),
    Setting("max_sql_chars", int, 100_000, "Longest SQL text accepted (queries, corpus definitions, where, rules).", minimum=1),
    Setting("threads", int, 0, "DuckDB worker threads; 0 lets DuckDB choose.", minimum=0),
    Setting("memory_limit", str, "", "DuckDB memory limit such as '4GB'; empty lets DuckDB choose."),
    Setting("import_dirs", list, [], "Server-side directories POST /ingest may read paths from."),
    Setting("allowed_sources", list, [], "Databases remote callers (HTTP, MCP, UI, workflows) may ingest from: "
            "postgres://host:port/db or postgres://host:port/* (none by default)."),
    Setting("buckets", dict, {}, "Named storage locations: name -> {path, primary?, rescue?} ([buckets.NAME] in TOML; "
            "see README, Buckets)."),
    Setting("s3_endpoint", str, "", "S3-compatible endpoint URL for s3:// data paths and buckets (MinIO, Ceph, ...); "
            "empty: AWS_ENDPOINT_URL, else AWS. Keys come from AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY."),
    Setting("s3_region", str, "", "S3 region; empty: AWS_REGION / AWS_DEFAULT_REGION."),
    Setting("s3_url_style", str, "", "S3 addressing, 'path' or 'vhost'; empty: 'path' with an s3_endpoint, else "
            "DuckDB's default."),
    Setting("max_upload_mb", int, 1024, "Largest HTTP request body accepted, in MiB.", minimum=1),
    Setting("max_json_mb", int, 16, "Largest JSON request body accepted, in MiB (uploads: max_upload_mb).",
            minimum=1),
    Setting("max_response_mb", int, 64, "Largest HTTP response body sent, in MiB (larger results are a 413).", minimum=1),
    Setting("allowed_hosts", list, [], "Host names the HTTP server answers besides its bind address and loopback."),
    Setting("api_key", str, "", "Key HTTP clients must send (Authorization: Bearer); required beyond loopback."),
    Setting("auth", str, "", "HTTP keys: off (api_key only), optional (a profile key scopes the request, none is "
            "unscoped), required (a valid key on every request); empty: required when serving beyond loopback, "
            "else optional.", choices=("", "off", "optional", "required")),
    Setting("mcp_key", str, "", "A profile's API key: `lakehouse mcp` (stdio) serves every tool call as that profile."),
    Setting("observer_buffer", int, 10_000, "ObservedOps kept in memory (ring buffer).", minimum=1),
    Setting("observer_log", bool, True, "Append every ObservedOp to <root>/observer/ops-YYYY-MM-DD.jsonl."),
    Setting("observer_retention_days", int, 30, "Days of op-log and storage-journal files kept (0: forever).", minimum=0),
    Setting("otlp_endpoint", str, "", "OTLP/HTTP collector URL: export every op as a span (needs lakehouse[otel])."),
    Setting("keep_generations", int, 3, "Index generations kept on disk per corpus (the active one included).",
            minimum=1),
    Setting("rebuild_interval_s", float, 10.0, "Least seconds between two rebuilds of one corpus asked from outside "
            "this machine's Python and CLI (HTTP, MCP, UI, workflows).", minimum=0),
    Setting("hnsw_trial_sample", int, 100, "Corpus vectors queried to measure recall@10 of each new index (0: off).", minimum=0),
    Setting("embedder", str, "minilm", "Default embedder for embed() and new corpora."),
    Setting("relevance_filter", bool, True, "Drop retrieved chunks that are not about the query."),
    Setting("relevance_threshold", float, 0.3, "Minimum query-chunk cosine the relevance filter keeps."),
    Setting("relevance_margin", float, 0.25, "The relevance filter also drops chunks this far below the best hit.", minimum=0),
    Setting("relevance_lexical_weight", float, 0.0, "Blend of lexical overlap into relevance (0 = cosine only).", minimum=0),
    Setting("playbook_threshold", float, 0.75, "Query similarity at which recorded playbook outcomes apply."),
    Setting("playbook_half_life_days", float, 30.0, "Age at which a playbook outcome counts half.", minimum=0, above=True),
    Setting("playbook_boost", float, 0.25, "Score added per unit of (similarity x outcome x decay).", minimum=0),
    Setting("modes", dict, {}, "Matrix modes: name -> {primary, corpora, isolation} ([modes] table in TOML)."),
    Setting("ollama_base", str, "http://127.0.0.1:11434", "Base URL of the local Ollama server."),
    Setting("ollama_cloud_base", str, "https://ollama.com", "Base URL of Ollama Cloud."),
    Setting("openrouter_base", str, "https://openrouter.ai/api/v1", "Base URL of OpenRouter."),
    Setting("opencode_base", str, "https://opencode.ai/zen/v1", "Base URL of OpenCode Zen."),
    Setting("kimi_base", str, "https://api.kimi.com/coding/v1", "Base URL of Kimi."),
    Setting("openai_embed_base", str, "", "Base URL of an OpenAI-compatible embeddings server."),
    Setting("key_file", str, "/etc/lakehouse/.env", "Dotenv file with provider API keys (mode 600)."),
    Setting("models", dict, {}, "Model tiers and weak/strong patterns ([models] table in TOML)."),
)

_BY_NAME = {s.name: s for s in SETTINGS}
ENV_PREFIX = "LH_"


def _coerce(setting: Setting, value: Any, origin: str) -> Any:
    """Check (and for environment strings, parse) one value; raise naming key and origin."""
    t = setting.type
    if isinstance(value, str) and t is not str:
        value = _parse_env(setting, value, origin)
    ok = isinstance(value, t) and not (t in (int, float) and isinstance(value, bool))
    if t is float and isinstance(value, int) and not isinstance(value, bool):
        value, ok = float(value), True
    if not ok:
        raise SettingsError(
            f"setting {setting.name!r} from {origin} must be {t.__name__}, "
            f"got {type(value).__name__} {value!r}",
            setting=setting.name,
        )
    if t is list:
        value = [str(v) for v in value]
    if setting.choices is not None and value not in setting.choices:
        raise SettingsError(f"setting {setting.name!r} from {origin} must be one of "
                            f"{', '.join(repr(c) for c in setting.choices)}, got {value!r}", setting=setting.name)
    if t in (int, float) and (not math.isfinite(value) or (setting.minimum is not None and (
            value < setting.minimum or (setting.above and value == setting.minimum)))):
        bound = "above" if setting.above else "at least"
        raise SettingsError(f"setting {setting.name!r} from {origin} must be a finite number {bound} "
                            f"{setting.minimum:g}, got {value!r}", setting=setting.name)
    return value


def _parse_env(setting: Setting, raw: str, origin: str) -> Any:
    t = setting.type
    try:
        if t is bool:
            low = raw.strip().lower()
            if low in ("1", "true", "yes", "on"):
                return True
            if low in ("0", "false", "no", "off"):
                return False
            raise ValueError(raw)
        if t is int:
            return int(raw)
        if t is float:
            return float(raw)
        if t is list:
            raw = raw.strip()
            return json.loads(raw) if raw.startswith("[") else [p for p in raw.split(os.pathsep) if p]
        if t is dict:
            return json.loads(raw)
    except ValueError:
        pass
    raise SettingsError(
        f"setting {setting.name!r} from {origin} must be {t.__name__}, got {raw!r}",
        setting=setting.name,
    )


class Settings:
    """Typed, read-only view of the resolved settings: `settings.max_rows`."""

    def __init__(self, values: Mapping[str, Any]) -> None:
        self._values = dict(values)

    def __getattr__(self, name: str) -> Any:
        try:
            return self._values[name]
        except KeyError:
            raise AttributeError(name) from None

    def as_dict(self) -> dict[str, Any]:
        return dict(self._values)

    @classmethod
    def load(
        cls,
        root: str | os.PathLike[str] | None = None,
        env: Mapping[str, str] | None = None,
        **overrides: Any,
    ) -> Settings:
        values = {s.name: s.default for s in SETTINGS}
        layers: list[tuple[str, Mapping[str, Any]]] = []
        if root is not None:
            toml_path = Path(root) / "lakehouse.toml"
            if toml_path.is_file():
                try:
                    layers.append((str(toml_path), tomllib.loads(toml_path.read_text())))
                except tomllib.TOMLDecodeError as exc:
                    raise SettingsError(f"{toml_path} is not valid TOML: {exc}") from exc
        env = os.environ if env is None else env
        from_env = {
            k[len(ENV_PREFIX):].lower(): v
            for k, v in env.items()
            if k.startswith(ENV_PREFIX) and k[len(ENV_PREFIX):].lower() in _BY_NAME
        }
        layers.append(("environment", from_env))
        layers.append(("keyword arguments", overrides))
        for origin, layer in layers:
            for key, value in layer.items():
                setting = _BY_NAME.get(key)
                if setting is None:
                    raise SettingsError(
                        f"unknown setting {key!r} in {origin}; known: {', '.join(sorted(_BY_NAME))}",
                        setting=key,
                    )
                values[key] = _coerce(setting, value, origin if origin != "environment" else ENV_PREFIX + key.upper())
        return cls(values)
