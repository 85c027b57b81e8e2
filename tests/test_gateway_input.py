# ruff: noqa: E501  (the table of cases reads best one case per line)
"""Bad input on every route: a precise 4xx with a JSON error, never a 500, and the ledger
unchanged (except where a refusal is itself evidence)."""

from __future__ import annotations

import io
from collections.abc import Callable
from typing import Any

import pytest
from aiohttp.test_utils import TestClient
from conftest import FakeClock
from policy_helpers import pack
from test_gateway import ADMIN_KEY, AGENT_KEY, ALICE_KEY, BASE, GET_FILE, PR, SESSION

from aegisflow.approvals import Principal
from aegisflow.auth import ApiKeys, KeyRecord, key_hash
from aegisflow.gateway.app import SESSION_HEADER, create_app
from aegisflow.ledger.ledger import Ledger
from aegisflow.service import Governance

AUDITOR_KEY = "audit-key-0001"
OTHER_AGENT_KEY = "other-agent-key-0001"
NOT_A_UUID = "00000000-0000-4000-8000-00000000000g"


def all_keys() -> ApiKeys:
    people = [
        (AGENT_KEY, "claude-code", "agent"),
        (OTHER_AGENT_KEY, "cursor", "agent"),
        (ALICE_KEY, "alice", "reviewer"),
        (ADMIN_KEY, "ops", "admin"),
        (AUDITOR_KEY, "audit", "auditor"),
    ]
    return ApiKeys(
        [KeyRecord(key_hash(k), Principal(name=n, roles=frozenset({r}))) for k, n, r in people]
    )


class World:
    def __init__(self, client: TestClient, governance: Governance, review_id: str) -> None:
        self.client = client
        self.governance = governance
        self.review_id = review_id

    async def send(
        self,
        method: str,
        path: str,
        *,
        key: str | None = AGENT_KEY,
        json: object = None,
        data: bytes | io.BytesIO | None = None,
        session: str | None = SESSION,
    ) -> tuple[int, Any]:
        headers = {}
        if key is not None:
            headers["X-API-Key"] = key
        if session is not None:
            headers[SESSION_HEADER] = session
        response = await self.client.request(
            method, path.replace("{review}", self.review_id), json=json, data=data, headers=headers
        )
        assert response.content_type == "application/json", await response.text()
        return response.status, await response.json()


@pytest.fixture
async def world(
    aiohttp_client: Any, make_git_ledger: Callable[[], Ledger], clock: FakeClock
) -> World:
    governance = Governance(policy=pack("pr-writer"), ledger=make_git_ledger(), clock=clock)
    client: TestClient = await aiohttp_client(create_app(governance, all_keys(), base_url=BASE))
    world = World(client, governance, "")
    await world.send("POST", "/v1/actions", json=GET_FILE)
    _, review = await world.send("POST", "/v1/actions", json=PR)
    world.review_id = review["envelope_id"]
    return world


ACTION_ROUTES = ["/v1/actions", "/admin/v1/test-action"]
DEEP = b"[" * 100_000 + b"]" * 100_000

# (method, path, key, json body, raw body, session header, status, error code)
# fmt: off
CASES: list[tuple[str, str, str | None, object, bytes | None, str | None, int, str]] = [
    *[
        case
        for route in ACTION_ROUTES
        for case in [
            ("POST", route, None, GET_FILE, None, SESSION, 401, "unauthenticated"),
            ("POST", route, "not-a-key", GET_FILE, None, SESSION, 401, "unauthenticated"),
            ("POST", route, ALICE_KEY, GET_FILE, None, SESSION, 403, "forbidden"),
            ("POST", route, AUDITOR_KEY, GET_FILE, None, SESSION, 403, "forbidden"),
            ("POST", route, AGENT_KEY, None, b"{not json", SESSION, 400, "invalid-input"),
            ("POST", route, AGENT_KEY, None, b"", SESSION, 400, "invalid-input"),
            ("POST", route, AGENT_KEY, None, b"\xff\xfe{}", SESSION, 400, "invalid-input"),
            ("POST", route, AGENT_KEY, None, DEEP, SESSION, 400, "invalid-input"),
            ("POST", route, AGENT_KEY, [GET_FILE], None, SESSION, 400, "invalid-input"),
            ("POST", route, AGENT_KEY, "read", None, SESSION, 400, "invalid-input"),
            ("POST", route, AGENT_KEY, {**GET_FILE, "tool": 7}, None, SESSION, 400, "invalid-action"),
            ("POST", route, AGENT_KEY, {"protocol": "git", "capability": "read"}, None, SESSION, 400, "invalid-action"),
            ("POST", route, AGENT_KEY, {**GET_FILE, "capability": "own"}, None, SESSION, 400, "invalid-action"),
            ("POST", route, AGENT_KEY, {**GET_FILE, "parameters": [1]}, None, SESSION, 400, "invalid-action"),
            ("POST", route, AGENT_KEY, {**GET_FILE, "parameters": {"n": 1.5}}, None, SESSION, 400, "invalid-action"),
            ("POST", route, AGENT_KEY, {**GET_FILE, "parameters": {"n": 2**60}}, None, SESSION, 400, "invalid-action"),
            ("POST", route, AGENT_KEY, {**GET_FILE, "admin": True}, None, SESSION, 400, "invalid-action"),
            ("POST", route, AGENT_KEY, {**GET_FILE, "actor": "me"}, None, SESSION, 400, "invalid-action"),
            ("POST", route, AGENT_KEY, {**GET_FILE, "actor": {"principal": "alice"}}, None, SESSION, 400, "invalid-action"),
            ("POST", route, AGENT_KEY, {**GET_FILE, "actor": {"session": "../x"}}, None, None, 400, "invalid-session-id"),
            ("POST", route, AGENT_KEY, {**GET_FILE, "actor": {"session": "other"}}, None, SESSION, 400, "invalid-action"),
            ("POST", route, AGENT_KEY, {**GET_FILE, "actor": {"agent": "bad agent"}}, None, SESSION, 400, "invalid-action"),
            ("POST", route, AGENT_KEY, {**GET_FILE, "approval_ref": NOT_A_UUID}, None, SESSION, 400, "invalid-action"),
            ("POST", route, AGENT_KEY, {**GET_FILE, "tool": "shell.\u0433m"}, None, SESSION, 400, "invalid-action"),
            ("POST", route, AGENT_KEY, {"protocol": "shell", "tool": "shell", "capability": "execute", "parameters": {"command": 5}}, None, SESSION, 400, "invalid-action"),
            ("POST", route, AGENT_KEY, GET_FILE, None, "..", 400, "invalid-session-id"),
            ("POST", route, AGENT_KEY, GET_FILE, None, "a/b", 400, "invalid-session-id"),
            ("POST", route, AGENT_KEY, GET_FILE, None, "x" * 129, 400, "invalid-session-id"),
            ("POST", route, AGENT_KEY, GET_FILE, None, "refs.lock", 400, "invalid-session-id"),
            ("POST", route, AGENT_KEY, None, b'{"pad": "' + b"x" * (2 << 20) + b'"}', SESSION, 413, "http"),
        ]
    ],
    ("GET", "/admin/v1/approvals", None, None, None, None, 401, "unauthenticated"),
    ("GET", "/admin/v1/approvals/nope", AGENT_KEY, None, None, None, 404, "approval-unknown"),
    ("GET", "/admin/v1/approvals/..%2F..%2Fetc", ADMIN_KEY, None, None, None, 404, "approval-unknown"),
    ("POST", "/admin/v1/approvals/nope/approve", ALICE_KEY, {}, None, None, 404, "approval-unknown"),
    ("POST", "/admin/v1/approvals/{review}/approve", None, {}, None, None, 401, "unauthenticated"),
    ("POST", "/admin/v1/approvals/{review}/approve", AGENT_KEY, {}, None, None, 403, "forbidden"),
    ("POST", "/admin/v1/approvals/{review}/deny", AGENT_KEY, {}, None, None, 403, "forbidden"),
    ("POST", "/admin/v1/approvals/{review}/approve", AUDITOR_KEY, {}, None, None, 403, "forbidden"),
    ("POST", "/admin/v1/approvals/{review}/approve", ALICE_KEY, None, b"{", None, 400, "invalid-input"),
    ("POST", "/admin/v1/approvals/{review}/approve", ALICE_KEY, [], None, None, 400, "invalid-input"),
    ("POST", "/admin/v1/approvals/{review}/approve", ALICE_KEY, {"ok": 1}, None, None, 400, "invalid-input"),
    ("POST", "/admin/v1/approvals/{review}/approve", ALICE_KEY, {"comment": 5}, None, None, 400, "invalid-input"),
    ("POST", "/admin/v1/approvals/{review}/approve", ALICE_KEY, {"comment": "x" * 2001}, None, None, 400, "invalid-input"),
    ("POST", "/admin/v1/approvals/{review}/approve", ALICE_KEY, {"reviewer": 7}, None, None, 400, "invalid-input"),
    ("POST", "/admin/v1/approvals/{review}/approve", ALICE_KEY, {"reviewer": "bob"}, None, None, 403, "approval-forbidden"),
    ("GET", "/admin/v1/sessions", AGENT_KEY, None, None, None, 403, "forbidden"),
    ("GET", "/admin/v1/sessions/nobody", ADMIN_KEY, None, None, None, 404, "session-unknown"),
    ("GET", "/admin/v1/sessions/a..b", ADMIN_KEY, None, None, None, 400, "invalid-session-id"),
    ("GET", "/admin/v1/sessions/nobody/export", AUDITOR_KEY, None, None, None, 404, "session-unknown"),
    ("GET", f"/admin/v1/sessions/{SESSION}/export", AGENT_KEY, None, None, None, 403, "forbidden"),
    ("POST", f"/admin/v1/sessions/{SESSION}/close", ALICE_KEY, None, None, None, 403, "forbidden"),
    ("POST", f"/admin/v1/sessions/{SESSION}/close", OTHER_AGENT_KEY, None, None, None, 403, "approval-forbidden"),
    ("POST", "/admin/v1/sessions/nobody/close", ADMIN_KEY, None, None, None, 409, "session-closed"),
    ("POST", "/admin/v1/sessions/x.lock/close", ADMIN_KEY, None, None, None, 400, "invalid-session-id"),
    ("GET", "/admin/v1/evidence/export", ALICE_KEY, None, None, None, 403, "forbidden"),
    ("GET", "/admin/v1/evidence/verify", AGENT_KEY, None, None, None, 403, "forbidden"),
    ("GET", "/admin/v1/evidence/verify?session=..", ADMIN_KEY, None, None, None, 400, "invalid-session-id"),
    ("GET", "/admin/v1/evidence/verify?x=1", ADMIN_KEY, None, None, None, 400, "invalid-input"),
    ("GET", "/metrics", AGENT_KEY, None, None, None, 403, "forbidden"),
    ("DELETE", "/admin/v1/approvals", ADMIN_KEY, None, None, None, 405, "http"),
    ("GET", "/admin/v1/nothing-here", ADMIN_KEY, None, None, None, 404, "http"),
]
# fmt: on


@pytest.mark.parametrize(
    ("method", "path", "key", "body", "raw", "session", "status", "code"),
    CASES,
    ids=[f"{c[0]} {c[1][:40]} {c[6]} {n}" for n, c in enumerate(CASES)],
)
async def test_bad_input_is_refused_and_changes_nothing(
    world: World,
    method: str,
    path: str,
    key: str | None,
    body: object,
    raw: bytes | None,
    session: str | None,
    status: int,
    code: str,
) -> None:
    size = world.governance.ledger.size
    data = io.BytesIO(raw) if raw is not None and len(raw) > 1 << 20 else raw
    got, answer = await world.send(method, path, key=key, json=body, data=data, session=session)
    assert (got, answer["error"]["code"]) == (status, code), answer
    assert answer["error"]["message"]
    assert world.governance.ledger.size == size
    assert world.governance.queue.get(world.review_id).status == "pending"


async def test_deciding_twice_is_a_conflict(world: World) -> None:
    approve = "/admin/v1/approvals/{review}/approve"
    assert (await world.send("POST", approve, key=ALICE_KEY, json={}))[0] == 200
    size = world.governance.ledger.size
    for route in (approve, "/admin/v1/approvals/{review}/deny"):
        status, answer = await world.send("POST", route, key=ALICE_KEY, json={})
        assert (status, answer["error"]["code"]) == (409, "approval")
        assert "already approved" in answer["error"]["message"]
    assert world.governance.ledger.size == size


async def test_nobody_approves_their_own_session(world: World) -> None:
    # The admin acts in a session of its own, then tries to approve that very action.
    _, review = await world.send("POST", "/v1/actions", key=ADMIN_KEY, json=PR, session="ops-s")
    size = world.governance.ledger.size
    status, answer = await world.send(
        "POST", f"/admin/v1/approvals/{review['envelope_id']}/approve", key=ADMIN_KEY, json={}
    )
    assert (status, answer["error"]["code"]) == (403, "approval-forbidden")
    assert "own session" in answer["error"]["message"]
    assert world.governance.ledger.size == size


async def test_refused_retries_are_recorded(world: World) -> None:
    """A retry that cannot use its approval is a decision too: blocked, and in the ledger."""
    size = world.governance.ledger.size
    retry = {**PR, "approval_ref": world.review_id}
    status, answer = await world.send("POST", "/v1/actions", json=retry)
    assert status == 200
    assert answer["decision"] == "block"
    assert answer["matched_rule"] == "approval-refused"
    assert "still pending" in answer["error"]["message"]
    assert world.governance.ledger.size == size + 1


async def test_an_agent_closes_its_own_session(world: World) -> None:
    status, answer = await world.send("POST", f"/admin/v1/sessions/{SESSION}/close")
    assert status == 200
    assert answer["closed"] is True
