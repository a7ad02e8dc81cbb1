"""scim2-tester's RFC 7643/7644 checks against a live printsync over HTTP."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator

import httpx2
import pytest
from scim2_client.engines.httpx2 import SyncSCIMClient
from scim2_tester import Status, check_server

from tests.conftest import served

# Every check scim2-tester runs against printsync passes, none is skipped; the count is in
# docs/conformance.md.
MINIMUM_PASSING = 148


@pytest.fixture
def live_server(database_url: str) -> Iterator[tuple[str, str]]:
    with served(database_url, "conformance") as live:
        yield live.base, live.token


def test_scim2_tester_every_applicable_check_passes(live_server: tuple[str, str]) -> None:
    base, token = live_server
    with httpx2.Client(base_url=base, headers={"Authorization": f"Bearer {token}"}) as http:
        client = SyncSCIMClient(http)
        client.discover()
        results = check_server(client)
    counts = Counter(result.status for result in results)
    others = [
        f"{r.status.name} {r.title}: {r.reason}" for r in results if r.status != Status.SUCCESS
    ]
    assert others == []
    assert counts[Status.SUCCESS] >= MINIMUM_PASSING
