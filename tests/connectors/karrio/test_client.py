"""KarrioClient's list reads, over a fake transport standing in for Karrio's list API (the live peer
runs the same reads in test_live.py)."""

from __future__ import annotations

import json
from urllib.parse import parse_qs, urlsplit

from connectors.karrio.client import PAGE_LIMIT, KarrioClient


class FakeKarrio:
    """The hub's HttpClient protocol: answers ``GET /v1/shipments?id=...`` from ``shipments``
    (ignoring ``limit``, as a list filter may return more than asked) and records every URL."""

    def __init__(self, shipments: dict[str, dict]) -> None:
        self.shipments = shipments
        self.urls: list[str] = []

    def request(self, method, url, *, headers, body):
        self.urls.append(url)
        parts = urlsplit(url)
        assert (method, parts.path) == ("GET", "/v1/shipments")
        ids = parse_qs(parts.query)["id"][0].split(",")
        results = [self.shipments[i] for i in ids if i in self.shipments]
        results.append({"id": "shp_other", "status": "purchased"})  # a filter that matched too much
        return 200, {}, json.dumps({"count": len(results), "next": None, "results": results}).encode(), 1


def test_shipments_by_ids_reads_a_page_of_ids_per_call_and_keeps_only_the_ids_asked():
    shipments = {f"shp_{n:04d}": {"id": f"shp_{n:04d}", "status": "purchased"} for n in range(150)}
    fake = FakeKarrio(shipments)
    client = KarrioClient(fake, "http://karrio.test", "key_x")
    asked = [f"shp_{n:04d}" for n in range(0, 150)] + ["shp_gone", "shp_0001"]

    found = client.shipments_by_ids(asked)

    assert sorted(found) == sorted(shipments)  # the gone id is absent, the extra record dropped
    assert len(fake.urls) == 2  # 151 distinct ids: PAGE_LIMIT a call
    first = parse_qs(urlsplit(fake.urls[0]).query)
    assert len(first["id"][0].split(",")) == PAGE_LIMIT and first["limit"] == [str(PAGE_LIMIT)]


def test_shipments_by_ids_of_nothing_calls_nothing():
    fake = FakeKarrio({})
    assert KarrioClient(fake, "http://karrio.test", "key_x").shipments_by_ids([]) == {}
    assert fake.urls == []
