"""S3 endpoint, region and keys for s3:// data paths (lakehouse/engine/s3.py): settings first, then the AWS
variables; keys only from the environment and never shown; bad values refused at open, naming the setting."""

from __future__ import annotations

from pathlib import Path

import pytest

import lakehouse
from lakehouse.engine.s3 import S3Config
from lakehouse.errors import LakehouseError, SettingsError
from lakehouse.scrub import scrub
from lakehouse.settings import Settings

KEYS = {"AWS_ACCESS_KEY_ID": "AKIA-test-key-id", "AWS_SECRET_ACCESS_KEY": "s3cr3t-value-for-tests"}


def _settings(**values: str) -> Settings:
    return Settings({"s3_endpoint": "", "s3_region": "", "s3_url_style": "", **values})


def test_nothing_configured_leaves_duckdb_secrets() -> None:
    assert S3Config.resolve(_settings(), {}) is None


def test_the_environment_as_the_aws_tools_read_it() -> None:
    config = S3Config.resolve(_settings(), {**KEYS, "AWS_ENDPOINT_URL": "http://127.0.0.1:9000", "AWS_REGION": "eu-1"})
    assert (config.endpoint, config.use_ssl, config.region, config.url_style) == ("127.0.0.1:9000", False, "eu-1", "path")
    sql = config.create_secret_sql()
    assert "ENDPOINT '127.0.0.1:9000'" in sql and "USE_SSL false" in sql and "KEY_ID 'AKIA-test-key-id'" in sql
    assert "s3cr3t-value-for-tests" not in repr(config) and scrub("x s3cr3t-value-for-tests") == "x ***"


def test_settings_win_over_the_environment() -> None:
    config = S3Config.resolve(_settings(s3_endpoint="https://minio.internal", s3_region="r", s3_url_style="vhost"),
                              {"AWS_ENDPOINT_URL": "http://other:1", "AWS_REGION": "x"})
    assert (config.endpoint, config.use_ssl, config.region, config.url_style) == ("minio.internal", True, "r", "vhost")


@pytest.mark.parametrize(("key", "value"), [("s3_url_style", "virtual"), ("s3_endpoint", "ftp://host")])
def test_bad_values_are_refused_at_open(tmp_path: Path, key: str, value: str) -> None:
    with pytest.raises(SettingsError, match=key):
        lakehouse.open(tmp_path / "lake", embedder="hash", data_path="s3://bucket/x/", **{key: value})


def test_a_catalog_password_is_never_shown(tmp_path: Path) -> None:
    with pytest.raises(LakehouseError) as err:  # nothing listens on port 1
        lakehouse.open(tmp_path / "lake", embedder="hash",
                       catalog="postgres:dbname=x host=127.0.0.1 port=1 user=u password=Pg-Secret-4711 connect_timeout=2")
    assert "Pg-Secret-4711" not in str(err.value)
