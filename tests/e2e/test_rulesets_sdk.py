"""The official `cloudflare` SDK (5.x) drives the Rulesets API against `originlock serve`."""

from __future__ import annotations

import secrets
from collections.abc import Iterator
from typing import Any, Final

import cloudflare
import pytest
from cloudflare import Cloudflare

from originlock.testing.serve import ServeProcess, start_serve
from originlock.waf.managed.cloudflare import OWASP_RULESET_ID

CUSTOM: Final = "http_request_firewall_custom"


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServeProcess]:
    proc = start_serve(tmp_path_factory.mktemp("rulesets-sdk") / "data", extra_args=["--access-log", "off"])
    yield proc
    assert proc.stop() == 0, proc.output()


@pytest.fixture
def cf(served: ServeProcess) -> Cloudflare:
    return Cloudflare(api_token=served.token, base_url=f"{served.api_url}/client/v4", max_retries=0)


@pytest.fixture
def zone_id(cf: Cloudflare) -> str:
    account = next(iter(cf.accounts.list()))
    zone = cf.zones.create(account={"id": account.id}, name=f"rs-{secrets.token_hex(3)}.test")
    assert zone is not None
    return zone.id


def _ruleset(result: object) -> dict[str, Any]:
    """Write responses are typed ``Union[Ruleset, Optional[object]]`` (a dry run answers null), and SDK 5.9
    resolves that union to the plain ``dict`` for any real answer: the same happens against Cloudflare."""
    assert isinstance(result, dict), type(result)
    return result


def _error(exc: cloudflare.APIStatusError) -> dict[str, Any]:
    body = exc.response.json()
    assert body["success"] is False and body["result"] is None
    return body["errors"][0]  # type: ignore[no-any-return]


def test_entrypoint_lifecycle(cf: Cloudflare, zone_id: str) -> None:
    # An unset phase is 404, as at Cloudflare (Terraform and scripts read it as "no rules yet").
    with pytest.raises(cloudflare.NotFoundError) as missing:
        cf.rulesets.phases.get(CUSTOM, zone_id=zone_id)
    assert _error(missing.value)["code"] == 10003

    rs = _ruleset(
        cf.rulesets.phases.update(
            CUSTOM,
            zone_id=zone_id,
            rules=[
                {
                    "action": "block",
                    "expression": 'http.request.uri.path eq "/admin"',
                    "description": "admin",
                    "ref": "admin",
                }
            ],
        )
    )
    assert rs["kind"] == "zone" and rs["phase"] == CUSTOM and rs["version"] == "1" and rs["name"] == "default"
    first = rs["rules"][0]
    assert first["ref"] == "admin" and first["version"] == "1" and first["enabled"] is True and first["id"]
    got = cf.rulesets.phases.get(CUSTOM, zone_id=zone_id)  # reads are typed models
    assert got.id == rs["id"] and [r.id for r in got.rules] == [first["id"]]
    assert got.rules[0].action == "block" and got.last_updated is not None

    # Add a rule at the top; the response is the whole ruleset at the next version.
    added = _ruleset(
        cf.rulesets.rules.create(
            rs["id"],
            zone_id=zone_id,
            action="log",
            expression='http.request.uri.path eq "/watch"',
            position={"before": ""},
        )
    )
    assert added["version"] == "2"
    assert [r["action"] for r in added["rules"]] == ["log", "block"]
    log_id = added["rules"][0]["id"]

    # Edit the definition: replaced, version bumped for that rule only.
    edited = _ruleset(
        cf.rulesets.rules.edit(
            log_id,
            ruleset_id=rs["id"],
            zone_id=zone_id,
            action="block",
            expression='http.request.uri.path eq "/x"',
            description="now blocks",
        )
    )
    assert edited["version"] == "3"
    by_id = {r["id"]: r for r in edited["rules"]}
    assert by_id[log_id]["action"] == "block" and by_id[log_id]["version"] == "3"
    assert by_id[first["id"]]["version"] == "1"

    # Move only: order changes, rule versions do not.
    moved = _ruleset(cf.rulesets.rules.edit(log_id, ruleset_id=rs["id"], zone_id=zone_id, position={"index": 2}))
    assert [r["id"] for r in moved["rules"]] == [first["id"], log_id]
    assert {r["id"]: r["version"] for r in moved["rules"]} == {first["id"]: "1", log_id: "3"}

    # A full replace that sends the rule back by ref keeps its id.
    replaced = _ruleset(
        cf.rulesets.phases.update(
            CUSTOM,
            zone_id=zone_id,
            rules=[
                {
                    "action": "block",
                    "expression": 'http.request.uri.path eq "/admin"',
                    "description": "admin",
                    "ref": "admin",
                }
            ],
        )
    )
    assert [r["id"] for r in replaced["rules"]] == [first["id"]] and replaced["rules"][0]["version"] == "1"

    deleted = _ruleset(cf.rulesets.rules.delete(first["id"], ruleset_id=rs["id"], zone_id=zone_id))
    assert deleted["rules"] == []
    # dry_run answers null and changes nothing.
    assert cf.rulesets.phases.update(CUSTOM, zone_id=zone_id, rules=[], dry_run=True) is None


def test_rulesets_crud_and_phases(cf: Cloudflare, zone_id: str) -> None:
    rl = _ruleset(
        cf.rulesets.create(
            zone_id=zone_id,
            kind="zone",
            name="rate limits",
            phase="http_ratelimit",
            rules=[
                {
                    "action": "block",
                    "expression": 'http.request.uri.path eq "/api"',
                    "ratelimit": {
                        "characteristics": ["cf.colo.id", "ip.src"],
                        "period": 10,
                        "requests_per_period": 5,
                        "mitigation_timeout": 10,
                    },
                }
            ],
        )
    )
    assert rl["name"] == "rate limits" and rl["rules"][0]["ratelimit"]["requests_per_period"] == 5
    origin = _ruleset(
        cf.rulesets.phases.update(
            "http_request_origin",
            zone_id=zone_id,
            rules=[
                {
                    "action": "route",
                    "expression": 'http.host eq "a.example.test"',
                    "action_parameters": {"origin": {"port": 8443}, "sni": {"value": "b.example.test"}},
                }
            ],
        )
    )
    route: Any = cf.rulesets.get(origin["id"], zone_id=zone_id).rules[0]
    assert route.action == "route" and route.action_parameters.origin.port == 8443
    assert route.action_parameters.sni.value == "b.example.test"

    listed = {r.id: r for r in cf.rulesets.list(zone_id=zone_id)}
    assert set(listed) == {rl["id"], origin["id"], OWASP_RULESET_ID}  # the managed OWASP ruleset is listed too
    assert listed[rl["id"]].phase == "http_ratelimit" and listed[rl["id"]].version == "1"
    assert [r.id for r in cf.rulesets.list(zone_id=zone_id, per_page=1)] == sorted(listed)  # cursor pages

    updated = _ruleset(cf.rulesets.update(rl["id"], zone_id=zone_id, description="tighter", rules=[]))
    assert updated["description"] == "tighter" and updated["rules"] == [] and updated["version"] == "2"
    assert cf.rulesets.get(rl["id"], zone_id=zone_id).version == "2"

    cf.rulesets.delete(rl["id"], zone_id=zone_id)  # 204: the SDK returns None
    with pytest.raises(cloudflare.NotFoundError):
        cf.rulesets.get(rl["id"], zone_id=zone_id)
    # One zone ruleset per phase: the entry point.
    with pytest.raises(cloudflare.BadRequestError):
        cf.rulesets.create(zone_id=zone_id, kind="zone", name="again", phase="http_request_origin", rules=[])


def test_sdk_sees_validation_errors_with_pointers(cf: Cloudflare, zone_id: str) -> None:
    good: Any = {"action": "block", "expression": "ssl"}
    with pytest.raises(cloudflare.BadRequestError) as bad:
        cf.rulesets.phases.update(
            CUSTOM, zone_id=zone_id, rules=[good, {"action": "block", "expression": "http.host eq"}]
        )
    error = _error(bad.value)
    assert error["source"] == {"pointer": "/rules/1/expression"}
    assert error["message"].startswith("'http.host eq' is not a valid value for expression because could not parse")
    # All or nothing: the first, valid rule was not stored either.
    with pytest.raises(cloudflare.NotFoundError):
        cf.rulesets.phases.get(CUSTOM, zone_id=zone_id)

    with pytest.raises(cloudflare.BadRequestError) as unsupported:
        cf.rulesets.phases.update("http_request_transform", zone_id=zone_id, rules=[])
    assert "not supported" in _error(unsupported.value)["message"]

    rs = _ruleset(cf.rulesets.phases.update(CUSTOM, zone_id=zone_id, rules=[good]))
    with pytest.raises(cloudflare.BadRequestError) as bad_rule:
        cf.rulesets.rules.create(rs["id"], zone_id=zone_id, action="route", expression="true")
    assert _error(bad_rule.value)["source"] == {"pointer": "/action"}


def test_versions(cf: Cloudflare, zone_id: str) -> None:
    rule: Any = {"action": "block", "expression": 'http.request.uri.path eq "/admin"', "ref": "admin"}
    rs = _ruleset(cf.rulesets.phases.update(CUSTOM, zone_id=zone_id, rules=[rule], description="one"))
    _ruleset(cf.rulesets.rules.create(rs["id"], zone_id=zone_id, action="log", expression="ssl"))
    _ruleset(cf.rulesets.update(rs["id"], zone_id=zone_id, rules=[], description="three"))

    # Typed models, newest first, no rules in the list.
    listed = list(cf.rulesets.versions.list(rs["id"], zone_id=zone_id))
    assert [v.version for v in listed] == ["3", "2", "1"]
    assert {v.id for v in listed} == {rs["id"]} and listed[0].description == "three"
    assert listed[2].phase == CUSTOM and listed[2].kind == "zone" and listed[2].last_updated is not None
    assert [v.version for v in cf.rulesets.phases.versions.list(CUSTOM, zone_id=zone_id)] == ["3", "2", "1"]

    first = cf.rulesets.versions.get("1", ruleset_id=rs["id"], zone_id=zone_id)
    assert first.version == "1" and first.description == "one"
    assert [r.ref for r in first.rules] == ["admin"] and first.rules[0].action == "block"
    second = cf.rulesets.phases.versions.get("2", ruleset_phase=CUSTOM, zone_id=zone_id)
    assert [r.action for r in second.rules] == ["block", "log"]

    # Old versions can be deleted (204: None); the current one cannot.
    assert cf.rulesets.versions.delete("1", ruleset_id=rs["id"], zone_id=zone_id) is None
    assert cf.rulesets.versions.delete("2", ruleset_id=rs["id"], zone_id=zone_id, dry_run=True) is None
    assert [v.version for v in cf.rulesets.versions.list(rs["id"], zone_id=zone_id)] == ["3", "2"]
    with pytest.raises(cloudflare.NotFoundError):
        cf.rulesets.versions.get("1", ruleset_id=rs["id"], zone_id=zone_id)
    with pytest.raises(cloudflare.BadRequestError) as latest:
        cf.rulesets.versions.delete("3", ruleset_id=rs["id"], zone_id=zone_id)
    assert "current version" in _error(latest.value)["message"]

    cf.rulesets.delete(rs["id"], zone_id=zone_id)
    with pytest.raises(cloudflare.NotFoundError):
        cf.rulesets.versions.list(rs["id"], zone_id=zone_id)
