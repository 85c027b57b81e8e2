"""The reviewer console over HTTP: sign-in, CSRF, escaping, headers, roles, decisions.

The same flows in a real browser are in test_console_browser.py.
"""

from __future__ import annotations

import re
from typing import Any

import pytest
from aiohttp.test_utils import TestClient
from policy_helpers import pack
from test_gateway import ADMIN_KEY, AGENT_KEY, ALICE_KEY, PR, SESSION, post
from test_gateway_input import AUDITOR_KEY, all_keys

from aegisflow.gateway.app import create_app
from aegisflow.service import Governance

HOSTILE = '<script>window.pwned = 1</script><img src=x onerror="alert(1)">'


@pytest.fixture
async def console(aiohttp_client: Any, make_git_ledger: Any, clock: Any) -> TestClient:
    governance = Governance(policy=pack("pr-writer"), ledger=make_git_ledger(), clock=clock)
    client: TestClient = await aiohttp_client(
        create_app(governance, all_keys(), base_url="http://localhost:8081")
    )
    return client


async def sign_in(client: TestClient, key: str) -> Any:
    page = await client.get("/console/login")
    csrf = re.search(r'name="csrf" value="([^"]+)"', await page.text())
    assert csrf is not None
    return await client.post(
        "/console/login", data={"csrf": csrf.group(1), "key": key}, allow_redirects=False
    )


def csrf_of(html: str) -> str:
    found = re.search(r'name="csrf" value="([^"]+)"', html)
    assert found is not None
    return found.group(1)


async def queue_hostile_pr(client: TestClient) -> str:
    body = {**PR, "parameters": {"title": HOSTILE, "head": "feat/x", "base": "main"}}
    body["justification"] = "</dd><script>alert('j')</script>"
    _, answer = await post(client, "/v1/actions", body)
    assert answer["decision"] == "review", answer
    return str(answer["envelope_id"])


async def test_signing_in_sets_a_strict_cookie_and_shows_the_pending_action(
    console: TestClient,
) -> None:
    approval_id = await queue_hostile_pr(console)
    signed = await sign_in(console, ALICE_KEY)
    assert signed.status == 303
    cookie = signed.headers["Set-Cookie"]
    assert "HttpOnly" in cookie
    assert "SameSite=Strict" in cookie
    assert "Path=/console" in cookie
    assert ALICE_KEY not in cookie
    page = await console.get("/console/")
    html = await page.text()
    assert page.status == 200
    assert approval_id in html
    assert "github.create_pull_request" in html
    assert "<script>window.pwned" not in html  # agent input is escaped, everywhere
    assert "&lt;script&gt;window.pwned = 1&lt;/script&gt;" in html
    assert "<script>alert('j')" not in html
    assert ALICE_KEY not in html


async def test_every_console_response_carries_the_security_headers(console: TestClient) -> None:
    for path in ("/console/login", "/console/static/console.js"):
        response = await console.get(path)
        csp = response.headers["Content-Security-Policy"]
        assert "script-src 'self'" in csp
        assert "default-src 'none'" in csp
        assert "frame-ancestors 'none'" in csp
        assert response.headers["X-Content-Type-Options"] == "nosniff"
    html = await (await console.get("/console/login")).text()
    assert "<script>" not in html  # no inline script: only <script src=...>
    assert " style=" not in html


@pytest.mark.parametrize(
    ("key", "status", "says"),
    [
        (AGENT_KEY, 403, "for reviewers, auditors and admins"),
        ("no-such-key", 401, "not known"),
        ("", 401, "not known"),
    ],
)
async def test_agents_and_unknown_keys_cannot_sign_in(
    console: TestClient, key: str, status: int, says: str
) -> None:
    response = await sign_in(console, key)
    assert response.status == status
    assert says in await response.text()
    assert "aegisflow_console=" not in response.headers.get("Set-Cookie", "")


async def test_a_sign_in_without_the_forms_token_is_refused(console: TestClient) -> None:
    response = await console.post(
        "/console/login", data={"csrf": "forged", "key": ALICE_KEY}, allow_redirects=False
    )
    assert response.status == 403
    assert "aegisflow_console=" not in response.headers.get("Set-Cookie", "")


async def test_pages_need_a_session(console: TestClient) -> None:
    for path in ("/console/", "/console/sessions", f"/console/sessions/{SESSION}"):
        response = await console.get(path, allow_redirects=False)
        assert (response.status, response.headers["Location"]) == (303, "/console/login")
    assert (await console.get("/console/pending.json")).status == 401


async def test_approving_from_the_console_is_recorded_like_the_api(console: TestClient) -> None:
    approval_id = await queue_hostile_pr(console)
    await sign_in(console, ALICE_KEY)
    html = await (await console.get("/console/")).text()
    decided = await console.post(
        f"/console/approvals/{approval_id}/approve",
        data={"csrf": csrf_of(html), "comment": "scoped to the test <b>ok</b>"},
        allow_redirects=False,
    )
    assert decided.status == 303
    assert decided.headers["Location"] == f"/console/?decided={approval_id}&status=approved"
    shown = await console.get(
        f"/admin/v1/approvals/{approval_id}", headers={"X-API-Key": ADMIN_KEY}
    )
    body = await shown.json()
    assert (body["status"], body["reviewer"]) == ("approved", "alice")
    timeline = await (await console.get(f"/console/sessions/{SESSION}")).text()
    assert "alice</strong> approved" in timeline
    assert "&lt;b&gt;ok&lt;/b&gt;" in timeline
    verification = re.search(r'<section class="card verification.*?</section>', timeline, re.S)
    assert verification is not None
    assert "Verification: valid" in verification.group(0), verification.group(0)


async def test_a_state_change_without_the_csrf_token_is_refused(console: TestClient) -> None:
    approval_id = await queue_hostile_pr(console)
    await sign_in(console, ALICE_KEY)
    missing = await console.post(f"/console/approvals/{approval_id}/approve", data={})
    forged = await console.post(
        f"/console/approvals/{approval_id}/approve", data={"csrf": "x" * 43}
    )
    html = await (await console.get("/console/")).text()
    other_site = await console.post(
        f"/console/approvals/{approval_id}/approve",
        data={"csrf": csrf_of(html)},
        headers={"Origin": "https://evil.example"},
    )
    for response in (missing, forged, other_site):
        assert response.status == 403
    shown = await console.get(
        f"/admin/v1/approvals/{approval_id}", headers={"X-API-Key": ADMIN_KEY}
    )
    assert (await shown.json())["status"] == "pending"


async def test_an_auditor_sees_but_cannot_decide(console: TestClient) -> None:
    approval_id = await queue_hostile_pr(console)
    await sign_in(console, AUDITOR_KEY)
    html = await (await console.get("/console/")).text()
    assert approval_id in html
    assert "read only" in html
    assert "/approve" not in html
    refused = await console.post(
        f"/console/approvals/{approval_id}/approve", data={"csrf": csrf_of(html)}
    )
    assert refused.status == 403


async def test_signing_out_ends_the_session(console: TestClient) -> None:
    await sign_in(console, ALICE_KEY)
    html = await (await console.get("/console/")).text()
    out = await console.post("/console/logout", data={"csrf": csrf_of(html)}, allow_redirects=False)
    assert out.status == 303
    after = await console.get("/console/", allow_redirects=False)
    assert after.status == 303


async def test_the_session_bundle_downloads(console: TestClient) -> None:
    await queue_hostile_pr(console)
    await sign_in(console, ALICE_KEY)
    bundle = await console.get(f"/console/sessions/{SESSION}/bundle")
    assert bundle.status == 200
    assert (await bundle.read()).startswith(b"# v2 git bundle")


async def test_a_hostile_session_id_in_the_path_is_refused(console: TestClient) -> None:
    await sign_in(console, ALICE_KEY)
    response = await console.get("/console/sessions/..%2F..%2Fetc")
    assert response.status in (400, 404)


async def test_behind_a_tls_proxy_the_cookie_is_secure_and_the_public_origin_accepted(
    aiohttp_client: Any, make_git_ledger: Any, clock: Any
) -> None:
    governance = Governance(policy=pack("pr-writer"), ledger=make_git_ledger(), clock=clock)
    client: TestClient = await aiohttp_client(
        create_app(governance, all_keys(), base_url="https://aegis.example.com")
    )
    approval_id = await queue_hostile_pr(client)
    signed = await sign_in(client, ALICE_KEY)
    assert "Secure" in signed.headers["Set-Cookie"]
    # the test client speaks plain HTTP, so it would not send a Secure cookie: pass it on
    cookie = signed.headers["Set-Cookie"].split(";")[0]
    html = await (await client.get("/console/", headers={"Cookie": cookie})).text()
    decided = await client.post(
        f"/console/approvals/{approval_id}/deny",
        data={"csrf": csrf_of(html)},
        headers={"Origin": "https://aegis.example.com", "Cookie": cookie},
        allow_redirects=False,
    )
    assert decided.status == 303
