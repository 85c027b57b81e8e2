"""The GraphQL admin API: queries, mutations, roles, introspection and limits."""

from __future__ import annotations

from typing import Any

import pytest
from aiohttp.test_utils import TestClient
from test_console import console, queue_hostile_pr  # noqa: F401 - the fixture
from test_gateway import ADMIN_KEY, AGENT_KEY, ALICE_KEY, SESSION
from test_gateway_input import AUDITOR_KEY

PENDING = "{ pendingApprovals { id tool target parameters agent session rule reason status } }"
APPROVE = (
    "mutation($id: ID!, $c: String) "
    "{ approve(id: $id, comment: $c) { id status reviewer evidenceHash } }"
)


async def gql(
    client: TestClient, query: str, key: str = ALICE_KEY, **variables: Any
) -> tuple[int, Any]:
    response = await client.post(
        "/admin/graphql",
        json={"query": query, "variables": variables or None},
        headers={"X-API-Key": key},
    )
    return response.status, await response.json()


async def test_pending_approvals_and_one_by_id(console: TestClient) -> None:
    approval_id = await queue_hostile_pr(console)
    status, body = await gql(console, PENDING)
    assert status == 200
    (pending,) = body["data"]["pendingApprovals"]
    assert pending["id"] == approval_id
    assert pending["tool"] == "github.create_pull_request"
    assert pending["status"] == "pending"
    assert pending["session"] == SESSION
    assert "<script>" in pending["parameters"]  # data, as JSON text: the client escapes it
    _, one = await gql(
        console, "query($id: ID!) { approval(id: $id) { id status } }", id=approval_id
    )
    assert one["data"]["approval"] == {"id": approval_id, "status": "pending"}
    _, none = await gql(console, 'query { approval(id: "nope") { id } }')
    assert none["data"]["approval"] is None


async def test_approve_is_the_same_decision_as_the_rest_api(console: TestClient) -> None:
    approval_id = await queue_hostile_pr(console)
    status, body = await gql(console, APPROVE, id=approval_id, c="ok via GraphQL")
    assert status == 200
    decided = body["data"]["approve"]
    assert (decided["status"], decided["reviewer"]) == ("approved", "alice")
    assert len(decided["evidenceHash"]) == 64
    _, again = await gql(console, APPROVE, id=approval_id)
    assert again["data"] is None
    assert "already approved" in again["errors"][0]["message"]
    _, history = await gql(console, "{ approvalHistory { id status reviewer comment } }")
    assert history["data"]["approvalHistory"][0] == {
        "id": approval_id,
        "status": "approved",
        "reviewer": "alice",
        "comment": "ok via GraphQL",
    }


@pytest.mark.parametrize(
    ("key", "allowed"), [(AGENT_KEY, False), (AUDITOR_KEY, False), (ADMIN_KEY, True)]
)
async def test_who_may_decide(console: TestClient, key: str, allowed: bool) -> None:
    approval_id = await queue_hostile_pr(console)
    _, body = await gql(
        console, "mutation($id: ID!) { deny(id: $id) { status } }", key=key, id=approval_id
    )
    if allowed:
        assert body["data"]["deny"]["status"] == "denied"
    else:
        assert body["data"] is None
        assert body["errors"]


async def test_evidence_is_for_admins_and_auditors(console: TestClient) -> None:
    await queue_hostile_pr(console)
    query = "query($s: ID!) { sessions { id entries } session(id: $s) { entries { type hash } } }"
    _, denied = await gql(console, query, key=ALICE_KEY, s=SESSION)
    assert "for admins and auditors" in denied["errors"][0]["message"]
    _, shown = await gql(console, query, key=AUDITOR_KEY, s=SESSION)
    assert shown["data"]["sessions"][0]["id"] == SESSION
    assert shown["data"]["session"]["entries"][0]["type"] == "decision"
    _, verified = await gql(
        console, "{ verification { valid totalEntries findings } }", key=ADMIN_KEY
    )
    assert verified["data"]["verification"]["totalEntries"] >= 1


async def test_introspection_is_for_admins_only(console: TestClient) -> None:
    query = "{ __schema { queryType { name } } }"
    for key in (ALICE_KEY, AUDITOR_KEY, AGENT_KEY):
        status, body = await gql(console, query, key=key)
        assert status == 400
        assert "introspection is for admins" in body["errors"][0]["message"]
    status, body = await gql(console, query, key=ADMIN_KEY)
    assert (status, body["data"]["__schema"]["queryType"]["name"]) == (200, "Query")
    status, body = await gql(console, '{ __type(name: "Approval") { name } }', key=ALICE_KEY)
    assert status == 400


@pytest.mark.parametrize(
    ("query", "says"),
    [
        ("{ " + "pendingApprovals { id } " * 300 + "}", "fields"),
        (
            "fragment A on Query { ...B } fragment B on Query { ...A } { ...A }",
            "Cannot spread fragment",
        ),
        ("{ pendingApprovals { id " + "x " * 9000 + "} }", "over 8192 bytes"),
        ("{ pendingApprovals { " + "id " * 2100 + "} }", "tokens"),
        ("{ a: verification { valid } b: verification { valid } }", "verification 2 times"),
        (
            "fragment F on Query { pendingApprovals { id tool } } { " + "...F " * 120 + "}",
            "fields",
        ),
        ("{ nope }", "Cannot query field"),
        ("{ pendingApprovals ", "Syntax Error"),
        ("", "non-empty"),
    ],
)
async def test_oversized_deep_or_broken_queries_are_refused_before_running(
    console: TestClient,
    query: str,
    says: str,
) -> None:
    status, body = await gql(console, query)
    assert status == 400
    assert says in " ".join(e["message"] for e in body["errors"])


async def test_depth_is_limited() -> None:
    from graphql import parse, validate

    from aegisflow.approvals import Principal
    from aegisflow.channels.graphql import MAX_DEPTH, SCHEMA, limits_rule

    admin = Principal(name="ops", roles=frozenset({"admin"}))
    nested = "{ __schema { types { fields { type { ofType { ofType { ofType { name } } } } } } } }"
    errors = validate(SCHEMA, parse(nested), [limits_rule(admin)])
    assert any(f"at most {MAX_DEPTH}" in e.message for e in errors)


async def test_no_key_is_401_and_bad_bodies_are_400(console: TestClient) -> None:
    response = await console.post("/admin/graphql", json={"query": PENDING})
    assert response.status == 401
    for body in (
        {"query": PENDING, "extra": 1},
        {"query": 7},
        {"query": PENDING, "variables": [1]},
    ):
        response = await console.post("/admin/graphql", json=body, headers={"X-API-Key": ALICE_KEY})
        assert response.status == 400, body
