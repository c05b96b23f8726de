"""Extensions load offline from their pip packages; when that and DuckDB's INSTALL both fail, the
error names the pip package to install."""

from __future__ import annotations

import duckdb
import pytest

from lakehouse.engine import extensions
from lakehouse.errors import ExtensionMissing


class FakeConnection:
    """Records statements; LOAD of an uninstalled extension and INSTALL (no network) fail like DuckDB."""

    def __init__(self, installable: bool) -> None:
        self.installable = installable
        self.installed = False
        self.statements: list[str] = []

    def execute(self, sql: str) -> None:
        self.statements.append(sql)
        if sql.startswith("LOAD") and not self.installed:
            raise duckdb.IOException("Extension not found")
        if sql.startswith("INSTALL"):
            if not self.installable:
                raise duckdb.HTTPException("Failed to download extension")
            self.installed = True


def test_missing_package_and_no_network_names_the_pip_package(monkeypatch):
    def no_package(name, con):
        raise ModuleNotFoundError("No module named 'duckdb_extension_spatial'")

    monkeypatch.setattr("duckdb_extensions.import_extension", no_package)
    con = FakeConnection(installable=False)
    with pytest.raises(ExtensionMissing, match=r"pip install .*'duckdb-extension-spatial==1.5.5'") as err:
        extensions.load_extension(con, "spatial")
    assert err.value.code == "extension_missing"
    assert con.statements == ["LOAD spatial", "INSTALL spatial"]


def test_falls_back_to_duckdb_install(monkeypatch):
    monkeypatch.setattr("duckdb_extensions.import_extension",
                        lambda name, con: (_ for _ in ()).throw(ModuleNotFoundError(name)))
    con = FakeConnection(installable=True)
    extensions.load_extension(con, "spatial")
    assert con.statements == ["LOAD spatial", "INSTALL spatial", "LOAD spatial"]


def test_real_extensions_load_offline():
    con = duckdb.connect()
    for name in ("ducklake", "sqlite", "fts"):
        extensions.load_extension(con, name)
    loaded = {r[0] for r in con.execute(
        "SELECT extension_name FROM duckdb_extensions() WHERE loaded").fetchall()}
    assert {"ducklake", "sqlite_scanner", "fts"} <= loaded  # sqlite reports its full name
