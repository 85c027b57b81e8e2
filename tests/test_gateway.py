"""The HTTP gateway over a real git ledger: the walkthrough's requests and their refusals."""

from __future__ import annotations

import dataclasses
import io
from collections.abc import Callable
from datetime import timedelta
from typing import Any

import pytest
from aiohttp.test_utils import TestClient
from conftest import FakeClock
from policy_helpers import pack

from aegisflow.approvals import RETAIN, Principal, UnknownApproval
from aegisflow.auth import ApiKeys, KeyRecord, key_hash
from aegisflow.gateway.app import SESSION_HEADER, create_app
from aegisflow.ledger.bundle import verify_bundle
from aegisflow.ledger.gitstore import GitStorage
from aegisflow.ledger.ledger import Ledger
from aegisflow.ledger.reading import session_entries
from aegisflow.service import Governance

SESSION = "sess-2026-04-06-1422"
AGENT_KEY = "starter-key-001"
ALICE_KEY = "alice-key-0001"
ADMIN_KEY = "ops-key-0001"
BASE = "http://localhost:8081"
GET_FILE = {
    "protocol": "git",
    "tool": "github.get_file_contents",
    "target": "aegisflow/aegisflow",
    "capability": "read",
}
PYTEST = {
    "protocol": "shell",
    "tool": "shell.pytest",
    "target": "/workspace",
    "capability": "execute",
}
RM = {"protocol": "shell", "tool": "shell.rm", "target": "/workspace", "capability": "delete"}
PR = {
    "protocol": "git",
    "tool": "github.create_pull_request",
    "target": "aegisflow/aegisflow",
    "capability": "write",
    "parameters": {
        "title": "fix: stabilize flaky TestEvidenceChain_Concurrent",
        "head": "claude/fix-flaky-evidence-test",
        "base": "main",
    },
    "justification": "fixes intermittent failure in TestEvidenceChain_Concurrent",
}


def keys() -> ApiKeys:
    return ApiKeys(
        [
            KeyRecord(
                key_hash(AGENT_KEY), Principal(name="claude-code", roles=frozenset({"agent"}))
            ),
            KeyRecord(key_hash(ALICE_KEY), Principal(name="alice", roles=frozenset({"reviewer"}))),
            KeyRecord(key_hash(ADMIN_KEY), Principal(name="ops", roles=frozenset({"admin"}))),
        ]
    )


@pytest.fixture
async def client(
    aiohttp_client: Any, make_git_ledger: Callable[[], Ledger], clock: FakeClock
) -> TestClient:
    governance = Governance(policy=pack("pr-writer"), ledger=make_git_ledger(), clock=clock)
    client: TestClient = await aiohttp_client(create_app(governance, keys(), base_url=BASE))
    return client


async def post(client: TestClient, path: str, body: object, key: str = AGENT_KEY) -> Any:
    headers = {"X-API-Key": key, "X-AegisFlow-Session": SESSION}
    response = await client.post(path, json=body, headers=headers)
    return response.status, await response.json()


async def test_walkthrough_decisions(client: TestClient) -> None:
    status, allowed = await post(client, "/admin/v1/test-action", GET_FILE)
    assert status == 200
    assert {k: allowed[k] for k in ("decision", "matched_rule", "policy")} == {
        "decision": "allow",
        "matched_rule": "git:github.get_*",
        "policy": "pr-writer",
    }
    assert len(allowed["evidence_hash"]) == 64
    _, tests = await post(client, "/admin/v1/test-action", PYTEST)
    assert (tests["decision"], tests["matched_rule"]) == ("allow", "shell:shell.pytest")
    _, blocked = await post(client, "/admin/v1/test-action", RM)
    assert blocked["error"] == {
        "code": -32001,
        "message": "policy: shell.rm is blocked by pr-writer policy",
        "data": {
            "reason": "destructive shell command",
            "suggested_alternative": "use git clean -fdx via shell.git",
        },
    }
    _, review = await post(client, "/admin/v1/test-action", PR)
    approval_id = review["envelope_id"]
    assert review["decision"] == "review"
    assert review["matched_rule"] == "git:github.create_pull_request"
    assert review["error"]["code"] == -32002
    assert review["error"]["message"] == "approval required: action queued for human review"
    assert review["error"]["data"]["approval_url"] == f"{BASE}/admin/v1/approvals/{approval_id}"

    listing = await client.get("/admin/v1/approvals", headers={"X-API-Key": AGENT_KEY})
    (pending,) = (await listing.json())["pending"]
    assert pending["envelope_id"] == approval_id
    assert pending["actor"] == {
        "agent": "claude-code",
        "session": SESSION,
        "principal": "claude-code",
    }
    assert pending["parameters"] == PR["parameters"]
    assert pending["queued_at"] == review["error"]["data"]["queued_at"]

    status, _ = await post(
        client, f"/admin/v1/approvals/{approval_id}/approve", {"comment": "x"}, key=AGENT_KEY
    )
    assert status == 403

    status, approved = await post(
        client,
        f"/admin/v1/approvals/{approval_id}/approve",
        {"reviewer": "alice", "comment": "diff looks correct, scoped to the test file"},
        key=ALICE_KEY,
    )
    assert status == 200
    assert (approved["status"], approved["reviewer"]) == ("approved", "alice")
    assert approved["comment"] == "diff looks correct, scoped to the test file"

    _, retried = await post(client, "/admin/v1/test-action", {**PR, "approval_ref": approval_id})
    assert (retried["decision"], retried["matched_rule"]) == ("allow", f"approved:{approval_id}")

    _, again = await post(client, "/admin/v1/test-action", {**PR, "approval_ref": approval_id})
    assert again["decision"] == "block"
    assert again["error"]["message"] == f"approval refused: approval {approval_id} is consumed"


async def test_ledger_holds_every_decision_and_the_approval(
    client: TestClient, git_path: Any
) -> None:
    for body in (GET_FILE, PYTEST, RM):
        await post(client, "/admin/v1/test-action", body)
    _, review = await post(client, "/admin/v1/test-action", PR)
    await post(
        client, f"/admin/v1/approvals/{review['envelope_id']}/approve", {"comment": "ok"}, ALICE_KEY
    )
    await post(client, "/admin/v1/test-action", {**PR, "approval_ref": review["envelope_id"]})
    storage = GitStorage(git_path)
    kinds = [
        (s.entry.type, s.entry.body.get("decision")) for s in session_entries(storage, SESSION)
    ]
    storage.close()
    assert kinds == [
        ("decision", "allow"),
        ("decision", "allow"),
        ("decision", "block"),
        ("decision", "review"),
        ("approval", None),
        ("decision", "allow"),
    ]


@pytest.mark.parametrize(
    ("path", "body", "key", "status", "code"),
    [
        ("/admin/v1/test-action", GET_FILE, None, 401, "unauthenticated"),
        ("/admin/v1/test-action", GET_FILE, "wrong-key", 401, "unauthenticated"),
        ("/admin/v1/test-action", GET_FILE, ALICE_KEY, 403, "forbidden"),
        ("/admin/v1/test-action", [1, 2], AGENT_KEY, 400, "invalid-input"),
        ("/admin/v1/test-action", {**GET_FILE, "bogus": 1}, AGENT_KEY, 400, "invalid-action"),
        (
            "/admin/v1/test-action",
            {**GET_FILE, "protocol": "ftp"},
            AGENT_KEY,
            400,
            "invalid-action",
        ),
        ("/admin/v1/approvals/nope/approve", {}, ALICE_KEY, 404, "approval-unknown"),
    ],
)
async def test_bad_requests_get_precise_errors(
    client: TestClient, path: str, body: object, key: str | None, status: int, code: str
) -> None:
    headers = {"X-API-Key": key} if key else {}
    response = await client.post(path, json=body, headers=headers)
    assert response.status == status
    assert (await response.json())["error"]["code"] == code


async def test_malformed_json_and_hostile_session(client: TestClient) -> None:
    response = await client.post(
        "/admin/v1/test-action", data=b"{not json", headers={"X-API-Key": AGENT_KEY}
    )
    assert response.status == 400
    response = await client.post(
        "/admin/v1/test-action",
        json=GET_FILE,
        headers={"X-API-Key": AGENT_KEY, "X-AegisFlow-Session": "../../etc"},
    )
    assert response.status == 400
    assert (await response.json())["error"]["code"] == "invalid-session-id"
    response = await client.post(
        "/admin/v1/test-action", data=io.BytesIO(b"x" * (2 << 20)), headers={"X-API-Key": AGENT_KEY}
    )
    assert response.status == 413


async def test_changed_action_cannot_use_the_approval(client: TestClient) -> None:
    _, review = await post(client, "/admin/v1/test-action", PR)
    approval_id = review["envelope_id"]
    await post(client, f"/admin/v1/approvals/{approval_id}/approve", {}, ALICE_KEY)
    changed = {
        **PR,
        "parameters": {**PR["parameters"], "base": "release"},
        "approval_ref": approval_id,
    }
    _, refused = await post(client, "/admin/v1/test-action", changed)
    assert refused["decision"] == "block"
    assert "different action" in refused["error"]["message"]
    _, retried = await post(client, "/admin/v1/test-action", {**PR, "approval_ref": approval_id})
    assert retried["decision"] == "allow"  # the refusal did not consume it


async def test_reviewer_must_be_the_key_holder(client: TestClient) -> None:
    _, review = await post(client, "/admin/v1/test-action", PR)
    status, body = await post(
        client,
        f"/admin/v1/approvals/{review['envelope_id']}/approve",
        {"reviewer": "mallory"},
        ALICE_KEY,
    )
    assert status == 403
    assert "not the authenticated principal" in body["error"]["message"]


async def test_restart_restores_the_queue_from_the_ledger(
    aiohttp_client: Any, make_git_ledger: Callable[[], Ledger], clock: FakeClock
) -> None:
    first = Governance(policy=pack("pr-writer"), ledger=make_git_ledger(), clock=clock)
    client = await aiohttp_client(create_app(first, keys(), base_url=BASE))
    _, review = await post(client, "/admin/v1/test-action", PR)
    _, other = await post(client, "/admin/v1/test-action", {**PR, "target": "aegisflow/other"})
    await post(client, f"/admin/v1/approvals/{other['envelope_id']}/approve", {}, ALICE_KEY)
    await client.close()
    first.ledger.close()

    second = Governance(policy=pack("pr-writer"), ledger=make_git_ledger(), clock=clock)
    assert second.restore() == 3
    pending = second.queue.pending(clock())
    assert [a.approval_id for a in pending] == [review["envelope_id"]]
    assert second.queue.get(other["envelope_id"]).status == "approved"
    client = await aiohttp_client(create_app(second, keys(), base_url=BASE))
    _, retried = await post(
        client,
        "/admin/v1/test-action",
        {**PR, "target": "aegisflow/other", "approval_ref": other["envelope_id"]},
    )
    assert retried["matched_rule"] == f"approved:{other['envelope_id']}"


async def test_metrics_count_decisions(client: TestClient) -> None:
    await post(client, "/admin/v1/test-action", GET_FILE)
    await post(client, "/admin/v1/test-action", RM)
    denied = await client.get("/metrics", headers={"X-API-Key": AGENT_KEY})
    assert denied.status == 403
    response = await client.get("/metrics", headers={"X-API-Key": ADMIN_KEY})
    assert response.status == 200
    text = await response.text()
    assert 'aegisflow_decisions_total{decision="allow",protocol="git"} 1.0' in text
    assert 'aegisflow_decisions_total{decision="block",protocol="shell"} 1.0' in text
    assert "aegisflow_ledger_entries" in text


async def test_closing_a_session_refuses_later_actions(client: TestClient) -> None:
    await post(client, "/admin/v1/test-action", GET_FILE)
    status, closed = await post(client, f"/admin/v1/sessions/{SESSION}/close", {})
    assert status == 200
    assert closed["closed"] is True
    status, refused = await post(client, "/admin/v1/test-action", GET_FILE)
    assert status == 409
    assert refused["error"]["code"] == "session-closed"
    status, _ = await post(client, f"/admin/v1/sessions/{SESSION}/close", {})
    assert status == 409


async def test_evidence_routes_list_show_and_export(
    client: TestClient, tmp_path: Any, signer: Any
) -> None:
    await post(client, "/admin/v1/test-action", GET_FILE)
    await post(client, "/admin/v1/test-action", RM)
    headers = {"X-API-Key": ADMIN_KEY}
    assert (await client.get("/admin/v1/sessions", headers={"X-API-Key": AGENT_KEY})).status == 403
    listing = await (await client.get("/admin/v1/sessions", headers=headers)).json()
    assert [(s["session"], s["entries"]) for s in listing["sessions"]] == [(SESSION, 2)]
    shown = await (await client.get(f"/admin/v1/sessions/{SESSION}", headers=headers)).json()
    assert [e["body"]["decision"] for e in shown["entries"]] == ["allow", "block"]
    response = await client.get(f"/admin/v1/sessions/{SESSION}/export", headers=headers)
    assert response.status == 200
    bundle = tmp_path / "s.bundle"
    bundle.write_bytes(await response.read())
    report = verify_bundle(bundle, [signer.public_key], session=SESSION)
    assert report.valid
    assert report.sessions[SESSION].entries == 2
    hostile = await client.get("/admin/v1/sessions/..%2Fetc/export", headers=headers)
    assert hostile.status in (400, 404)


async def test_whole_ledger_export_and_verify_routes(
    client: TestClient, tmp_path: Any, signer: Any
) -> None:
    await post(client, "/admin/v1/test-action", GET_FILE)
    await post(client, "/admin/v1/test-action", RM)
    headers = {"X-API-Key": ADMIN_KEY}
    denied = await client.get("/admin/v1/evidence/export", headers={"X-API-Key": AGENT_KEY})
    assert denied.status == 403
    response = await client.get("/admin/v1/evidence/export", headers=headers)
    assert response.status == 200
    assert response.headers["Content-Disposition"] == 'attachment; filename="ledger.bundle"'
    bundle = tmp_path / "ledger.bundle"
    bundle.write_bytes(await response.read())
    assert int(response.headers["Content-Length"]) == bundle.stat().st_size
    report = verify_bundle(bundle, [signer.public_key])
    assert report.valid
    assert report.total_entries == 2

    verified = await client.get("/admin/v1/evidence/verify", headers=headers)
    assert verified.status == 200
    data = await verified.json()
    assert (data["valid"], data["total_entries"], data["findings"]) == (True, 2, [])
    one = await (
        await client.get("/admin/v1/evidence/verify", params={"session": SESSION}, headers=headers)
    ).json()
    assert [line.split()[2] for line in one["lines"]] == ["allow", "block"]
    for params, code in (
        ({"session": "../etc"}, "invalid-session-id"),
        ({"session": "nobody"}, "session-unknown"),
        ({"sesion": SESSION}, "invalid-input"),
    ):
        bad = await client.get("/admin/v1/evidence/verify", params=params, headers=headers)
        assert bad.status == (404 if code == "session-unknown" else 400)
        assert (await bad.json())["error"]["code"] == code


async def test_metrics_report_append_latency(client: TestClient) -> None:
    await post(client, "/admin/v1/test-action", GET_FILE)
    text = await (await client.get("/metrics", headers={"X-API-Key": ADMIN_KEY})).text()
    assert "aegisflow_ledger_append_seconds_count 1.0" in text


async def test_an_approval_is_bound_to_the_policy_version(
    aiohttp_client: Any, make_git_ledger: Callable[[], Ledger], clock: FakeClock
) -> None:
    first = Governance(policy=pack("pr-writer"), ledger=make_git_ledger(), clock=clock)
    client = await aiohttp_client(create_app(first, keys(), base_url=BASE))
    _, review = await post(client, "/admin/v1/test-action", PR)
    await post(client, f"/admin/v1/approvals/{review['envelope_id']}/approve", {}, ALICE_KEY)
    await client.close()
    first.ledger.close()

    changed = dataclasses.replace(pack("pr-writer"), content_hash="sha256:" + "ab" * 32)
    second = Governance(policy=changed, ledger=make_git_ledger(), clock=clock)
    second.restore()
    client = await aiohttp_client(create_app(second, keys(), base_url=BASE))
    _, refused = await post(
        client, "/admin/v1/test-action", {**PR, "approval_ref": review["envelope_id"]}
    )
    assert refused["decision"] == "block"
    assert "another policy version" in refused["error"]["message"]


async def test_restore_reads_only_the_window_an_approval_can_matter_in(
    aiohttp_client: Any, make_git_ledger: Callable[[], Ledger], clock: FakeClock
) -> None:
    first = Governance(policy=pack("pr-writer"), ledger=make_git_ledger(), clock=clock)
    client = await aiohttp_client(create_app(first, keys(), base_url=BASE))
    _, old = await post(client, "/admin/v1/test-action", PR)
    await post(client, "/admin/v1/test-action", GET_FILE)
    # 30 minutes of expiry plus an hour of retention later, the old review is history.
    clock.now += timedelta(minutes=30) + RETAIN + timedelta(seconds=1)
    _, new = await post(client, "/admin/v1/test-action", {**PR, "target": "aegisflow/other"})
    assert len(first.queue) == 2
    assert await first.sweep(None) == []
    assert len(first.queue) == 1  # pruned at run time ...
    await client.close()
    first.ledger.close()

    second = Governance(policy=pack("pr-writer"), ledger=make_git_ledger(), clock=clock)
    assert second.restore() == 1  # ... and not read back on start
    assert [a.approval_id for a in second.queue.pending(clock())] == [new["envelope_id"]]
    with pytest.raises(UnknownApproval):
        second.queue.get(old["envelope_id"])


async def test_idle_sessions_close_unless_an_approval_is_live(
    aiohttp_client: Any, make_git_ledger: Callable[[], Ledger], clock: FakeClock
) -> None:
    governance = Governance(policy=pack("pr-writer"), ledger=make_git_ledger(), clock=clock)
    client = await aiohttp_client(create_app(governance, keys(), base_url=BASE))
    headers = {"X-API-Key": AGENT_KEY}
    for session, body in (("idle-a", GET_FILE), ("idle-b", PR), ("busy", GET_FILE)):
        response = await client.post(
            "/admin/v1/test-action", json=body, headers={**headers, SESSION_HEADER: session}
        )
        assert response.status == 200
    clock.now += timedelta(minutes=11)
    await client.post("/admin/v1/test-action", json=RM, headers={**headers, SESSION_HEADER: "busy"})
    assert await governance.sweep(timedelta(minutes=10)) == ["idle-a"]
    assert governance.ledger.head("idle-a").closed  # type: ignore[union-attr]
    assert not governance.ledger.head("idle-b").closed  # type: ignore[union-attr]
    refused = await client.post(
        "/admin/v1/test-action", json=GET_FILE, headers={**headers, SESSION_HEADER: "idle-a"}
    )
    assert (await refused.json())["error"]["code"] == "session-closed"
    # Once its review has expired, the waiting session closes too.
    clock.now += timedelta(minutes=31)
    assert sorted(await governance.sweep(timedelta(minutes=10))) == ["busy", "idle-b"]
    assert await governance.sweep(timedelta(minutes=10)) == []


async def test_a_forwarded_call_reports_its_result_once(client: TestClient) -> None:
    _, allowed = await post(client, "/v1/actions", GET_FILE)
    route = f"/v1/actions/{allowed['envelope_id']}/result"
    report = {"summary": "ok", "result_sha256": "ab" * 32, "size": 120, "is_error": False}
    for body, key, status in (
        ({**report, "extra": 1}, AGENT_KEY, 400),
        ({**report, "result_sha256": "x"}, AGENT_KEY, 400),
        ({**report, "summary": "a\nb"}, AGENT_KEY, 400),
        (report, ALICE_KEY, 403),
        (report, ADMIN_KEY, 404),  # not the admin's call
    ):
        assert (await post(client, route, body, key))[0] == status
    status, recorded = await post(client, route, report)
    assert status == 200
    assert len(recorded["evidence_hash"]) == 64
    status, again = await post(client, route, report)
    assert (status, again["error"]["code"]) == (404, "result-unexpected")
    _, blocked = await post(client, "/v1/actions", RM)
    refused = await post(client, f"/v1/actions/{blocked['envelope_id']}/result", report)
    assert refused[0] == 404  # nothing was allowed, so no result can be reported


async def test_results_reported_together_are_each_answered(client: TestClient) -> None:
    _, first = await post(client, "/v1/actions", GET_FILE)
    _, second = await post(client, "/v1/actions", {**GET_FILE, "parameters": {"path": "b"}})
    _, blocked = await post(client, "/v1/actions", RM)
    report = {"summary": "ok", "result_sha256": "ab" * 32, "size": 120, "is_error": False}
    reports = [
        {"envelope_id": first["envelope_id"], **report},
        {"envelope_id": blocked["envelope_id"], **report},  # nothing ran: nothing to report
        {"envelope_id": second["envelope_id"], **report, "extra": 1},
        "not a report",
        {"envelope_id": second["envelope_id"], **report},
        {"envelope_id": first["envelope_id"], **report},  # reported already
    ]
    status, answer = await post(client, "/v1/results", {"results": reports})
    assert status == 200
    recorded, unexpected, extra, garbage, later, again = answer["results"]
    assert len(recorded["evidence_hash"]) == len(later["evidence_hash"]) == 64
    assert recorded["envelope_id"] == first["envelope_id"]
    assert unexpected["error"]["code"] == again["error"]["code"] == "result-unexpected"
    assert extra["error"]["code"] == garbage["error"]["code"] == "invalid-input"
    assert garbage["envelope_id"] is None
    for body in ({"results": []}, {"results": [report] * 257}, {"results": {}}, {"x": 1}):
        status, refused = await post(client, "/v1/results", body)
        assert (status, refused["error"]["code"]) == (400, "invalid-input")
    assert (await post(client, "/v1/results", {"results": reports}, ALICE_KEY))[0] == 403


async def test_hidden_tools_are_the_ones_always_blocked(client: TestClient) -> None:
    tools = ["github.merge_pull_request", "github.create_pull_request", "github.delete_file"]
    status, answer = await post(client, "/v1/tools/hidden", {"tools": tools})
    assert status == 200
    assert answer == {"hidden": ["github.merge_pull_request", "github.delete_file"]}
    for body, code in (
        ({"tools": "github.x"}, "invalid-input"),
        ({"tools": ["bad tool"]}, "invalid-action"),
        ({"tools": [], "protocol": "ftp"}, "invalid-input"),
        ({"tools": [], "extra": 1}, "invalid-input"),
    ):
        status, refused = await post(client, "/v1/tools/hidden", body)
        assert (status, refused["error"]["code"]) == (400, code)
    assert (await post(client, "/v1/tools/hidden", {"tools": []}, ALICE_KEY))[0] == 403
