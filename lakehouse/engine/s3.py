"""S3 credentials and endpoint for lakes (or buckets) on `s3://`, the way the AWS tools take them.

Settings `s3_endpoint`, `s3_region`, `s3_url_style` (lakehouse.toml / `LH_S3_*`), else the AWS variables:
`AWS_ENDPOINT_URL_S3` / `AWS_ENDPOINT_URL`, `AWS_REGION` / `AWS_DEFAULT_REGION`; keys only from the environment
(`AWS_ACCESS_KEY_ID`, `AWS_SECRET_ACCESS_KEY`, `AWS_SESSION_TOKEN`), never from a file the lake holds. When any of
these is set, every DuckDB instance of the lake gets them as a temporary S3 secret before it attaches the lake;
when none is, DuckDB's own secrets apply (a persistent `CREATE PERSISTENT SECRET (TYPE s3, ...)`).
The key and secret are added to the scrubber: no error, log line or op record shows them.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from typing import Any
from urllib.parse import urlsplit

from lakehouse.engine.names import sql_string
from lakehouse.errors import SettingsError
from lakehouse.scrub import SCRUB

URL_STYLES = ("", "path", "vhost")


@dataclasses.dataclass(frozen=True)
class S3Config:
    endpoint: str = ""  # host[:port], no scheme
    use_ssl: bool = True
    region: str = ""
    url_style: str = ""
    key_id: str = dataclasses.field(default="", repr=False)
    secret: str = dataclasses.field(default="", repr=False)
    session_token: str = dataclasses.field(default="", repr=False)

    @classmethod
    def resolve(cls, settings: Any, environ: Mapping[str, str]) -> S3Config | None:
        """From the settings, else the AWS variables; None when nothing is configured."""
        url = settings.s3_endpoint or environ.get("AWS_ENDPOINT_URL_S3") or environ.get("AWS_ENDPOINT_URL") or ""
        endpoint, use_ssl = _endpoint(url)
        if settings.s3_url_style not in URL_STYLES:
            raise SettingsError(f"setting 's3_url_style' must be 'path' or 'vhost', got {settings.s3_url_style!r}",
                                setting="s3_url_style")
        config = cls(endpoint=endpoint, use_ssl=use_ssl,
                     region=settings.s3_region or environ.get("AWS_REGION") or environ.get("AWS_DEFAULT_REGION") or "",
                     # an endpoint of one's own (MinIO, Ceph, moto) is addressed by path, not by virtual host
                     url_style=settings.s3_url_style or ("path" if endpoint else ""),
                     key_id=environ.get("AWS_ACCESS_KEY_ID", ""), secret=environ.get("AWS_SECRET_ACCESS_KEY", ""),
                     session_token=environ.get("AWS_SESSION_TOKEN", ""))
        for value in (config.key_id, config.secret, config.session_token):
            if value:
                SCRUB.add(value)
        return None if config == cls(use_ssl=use_ssl) else config

    def create_secret_sql(self) -> str:
        """The statement that gives one DuckDB instance these credentials (for `s3://` paths only)."""
        parts = ["TYPE s3"]
        for option, value in (("KEY_ID", self.key_id), ("SECRET", self.secret), ("SESSION_TOKEN", self.session_token),
                              ("REGION", self.region), ("ENDPOINT", self.endpoint), ("URL_STYLE", self.url_style)):
            if value:
                parts.append(f"{option} {sql_string(value)}")
        parts.append(f"USE_SSL {'true' if self.use_ssl else 'false'}")
        return f"CREATE OR REPLACE TEMPORARY SECRET lh_s3 ({', '.join(parts)})"


def _endpoint(url: str) -> tuple[str, bool]:
    """`http://host:9000` -> ("host:9000", False); a bare `host:port` keeps TLS on."""
    if not url:
        return "", True
    if "://" not in url:
        return url.rstrip("/"), True
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise SettingsError(f"setting 's3_endpoint' must be an http(s) URL or host:port, got {url!r}",
                            setting="s3_endpoint")
    return parts.netloc, parts.scheme == "https"
