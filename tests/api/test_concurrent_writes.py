"""Concurrent writes never answer 500: the races found on a 3-node fleet, on both stores (issue 15)."""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any

from tests.api.conftest import ApiEnv

CUSTOM = "http_request_firewall_custom"


def _at_once(count: int, call: Callable[[int], Any]) -> list[Any]:
    """Run ``call(i)`` in ``count`` threads released together; their responses in order."""
    barrier = threading.Barrier(count)
    results: list[Any] = [None] * count

    def run(i: int) -> None:
        barrier.wait()
        results[i] = call(i)

    threads = [threading.Thread(target=run, args=(i,)) for i in range(count)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return results


def test_three_concurrent_first_patches_of_a_setting_all_succeed(api: ApiEnv) -> None:
    values = ("strict", "full", "flexible")
    for round_ in range(6):
        zone = api.zone(f"race{round_}.test")  # a fresh zone: no settings row yet, every PATCH is a "first"
        url = f"/client/v4/zones/{zone}/settings/ssl"
        responses = _at_once(3, lambda i, url=url: api.client.patch(url, json={"value": values[i]}, headers=api.admin))
        assert [r.status_code for r in responses] == [200, 200, 200], [r.text for r in responses]
        final = api.client.get(url, headers=api.admin).json()["result"]["value"]
        assert final in values  # one of them won, and it is what is stored


def test_concurrent_rule_posts_all_land_with_distinct_versions(api: ApiEnv) -> None:
    zone = api.zone()
    created = api.client.put(
        f"/client/v4/zones/{zone}/rulesets/phases/{CUSTOM}/entrypoint",
        json={"rules": [{"expression": 'http.host eq "a.test"', "action": "block"}]},
        headers=api.admin,
    )
    assert created.status_code == 200, created.text
    ruleset = created.json()["result"]["id"]
    url = f"/client/v4/zones/{zone}/rulesets/{ruleset}/rules"
    count = 5
    responses = _at_once(
        count,
        lambda i: api.client.post(
            url, json={"expression": f'http.host eq "r{i}.test"', "action": "block"}, headers=api.admin
        ),
    )
    assert [r.status_code for r in responses] == [200] * count, [r.text for r in responses]
    final = api.client.get(f"/client/v4/zones/{zone}/rulesets/{ruleset}", headers=api.admin).json()["result"]
    assert final["version"] == str(1 + count)
    assert len(final["rules"]) == 1 + count
    versions = api.client.get(f"/client/v4/zones/{zone}/rulesets/{ruleset}/versions", headers=api.admin).json()
    assert sorted(int(v["version"]) for v in versions["result"]) == list(range(1, count + 2))
