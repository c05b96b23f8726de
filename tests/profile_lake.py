"""A lake of two tenants for the profile tests: A (datasets a_*, corpus a_docs) and B (b_*, b_docs), each with a
read key and a write key, a lake view `a_leak` that reads B's table under A's name, and playbook records of both."""

from __future__ import annotations

import dataclasses
from typing import Any

import httpx

import lakehouse

A_ROWS = "id,text\n1,forklift operator in Chicago\n2,welder in Joliet\n3,nurse in Peoria\n"
B_ROWS = "id,text\n1,secret payroll of B\n2,secret contract of B\n3,secret forklift plan of B\n"


@dataclasses.dataclass
class Tenants:
    lake: lakehouse.Lake
    keys: dict[str, str]  # "a", "b" (read), "a_write", "b_write"


def build(lake: lakehouse.Lake) -> Tenants:
    for tenant, rows in (("a", A_ROWS), ("b", B_ROWS)):
        lake.ingest(rows.encode(), f"{tenant}_sales", filename=f"{tenant}.csv")
        lake.create_corpus(f"{tenant}_docs", dataset=f"{tenant}_sales", id="id", text="text", progress=False)
        lake.record_playbooks([{"query": "forklift", "corpus": f"{tenant}_docs", "answer_id": "1", "outcome": 1,
                                "answer_text": f"playbook answer of {tenant}"}])
    lake.sql("CREATE VIEW a_leak AS SELECT * FROM b_sales")  # the owner's view: A's name, B's rows
    keys = {}
    for tenant in ("a", "b"):
        keys[tenant] = lake.create_profile(tenant, datasets=[f"{tenant}_*"], corpora=[f"{tenant}_docs"])["key"]
        keys[f"{tenant}_write"] = lake.create_profile(f"{tenant}_write", datasets=[f"{tenant}_*"],
                                                      corpora=[f"{tenant}_docs"], access="write")["key"]
    return Tenants(lake, keys)


def client(url: str, key: str | None) -> httpx.Client:
    headers = {"Authorization": f"Bearer {key}"} if key else {}
    return httpx.Client(base_url=url, headers=headers, timeout=60)


def error(resp: httpx.Response) -> dict[str, Any]:
    return resp.json()["error"]
