"""A throwaway S3 endpoint for tests: moto's server on a free loopback port, with one bucket.

    with S3Server() as s3:
        s3.url            # http://127.0.0.1:<port>
        s3.data_path      # s3://lake/<random prefix>/
        s3.env            # AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY / AWS_REGION for the lake's processes
        s3.keys()         # the object keys under the prefix

`moto[server]` comes with the test extra; `available()` says whether it is installed.
"""

from __future__ import annotations

import importlib.util
import logging
import secrets
from typing import Any

BUCKET = "lake"
ENV = {"AWS_ACCESS_KEY_ID": "lakehouse-test-key", "AWS_SECRET_ACCESS_KEY": "lakehouse-test-secret",
       "AWS_REGION": "us-east-1"}


def available() -> bool:
    return importlib.util.find_spec("moto") is not None and importlib.util.find_spec("moto.server") is not None


class S3Server:
    def __init__(self) -> None:
        from moto.server import ThreadedMotoServer

        self._server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
        self.prefix = secrets.token_hex(4)
        self.url = ""

    @property
    def data_path(self) -> str:
        return f"s3://{BUCKET}/{self.prefix}/"

    @property
    def env(self) -> dict[str, str]:
        return {**ENV, "AWS_ENDPOINT_URL": self.url}

    def client(self) -> Any:
        import boto3

        return boto3.client("s3", endpoint_url=self.url, region_name=ENV["AWS_REGION"],
                            aws_access_key_id=ENV["AWS_ACCESS_KEY_ID"], aws_secret_access_key=ENV["AWS_SECRET_ACCESS_KEY"])

    def keys(self) -> list[str]:
        pages = self.client().get_paginator("list_objects_v2").paginate(Bucket=BUCKET, Prefix=self.prefix + "/")
        return [o["Key"] for page in pages for o in page.get("Contents", [])]

    def __enter__(self) -> S3Server:
        logging.getLogger("werkzeug").setLevel(logging.ERROR)  # a line per request otherwise
        self._server.start()
        host, port = self._server.get_host_and_port()
        self.url = f"http://{host}:{port}"
        self.client().create_bucket(Bucket=BUCKET)
        return self

    def __exit__(self, *exc: object) -> None:
        self._server.stop()
