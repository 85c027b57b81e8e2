"""The walkthrough end to end through real HTTP: decisions, review, approval, a minted
credential, the pull request on a stand-in GitHub, and the seven entries verified offline."""

from __future__ import annotations

import zlib
from collections.abc import Callable
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from aiohttp.test_utils import TestClient
from conftest import FakeClock
from policy_helpers import pack
from test_cli import AEGISCTL, run
from test_credentials import NOW, PRIVATE, standin
from test_gateway import ALICE_KEY, BASE, GET_FILE, PR, PYTEST, RM, SESSION, keys, post
from test_tamper import Repo, rewrite_file

from aegisflow.cli.serve import attach_github
from aegisflow.credentials import Broker, GitHubApp, GitHubProvider
from aegisflow.executor import GitHubExecutor
from aegisflow.gateway.app import create_app
from aegisflow.keys import Signer
from aegisflow.ledger.bundle import export_session, verify_bundle
from aegisflow.ledger.gitstore import GitStorage
from aegisflow.ledger.ledger import Ledger
from aegisflow.ledger.reading import session_entries
from aegisflow.service import Governance
from aegisflow.standin import create_standin_app


@pytest.fixture
async def world(
    aiohttp_server: Any,
    aiohttp_client: Any,
    make_git_ledger: Callable[[], Ledger],
    clock: FakeClock,
) -> Any:
    state = standin()
    github = await aiohttp_server(create_standin_app(state))
    session = aiohttp.ClientSession()
    app = GitHubApp(
        app_id="12345",
        installation_id=7,
        private_key_pem=PRIVATE,
        api_url=str(github.make_url("")).rstrip("/"),
    )
    clock.now = NOW
    ledger = make_git_ledger()
    governance = Governance(
        policy=pack("pr-writer"),
        ledger=ledger,
        clock=clock,
        executor=GitHubExecutor(app.api_url, session),
        broker=Broker({"github_app_jwt": GitHubProvider(app, session)}),
    )
    client: TestClient = await aiohttp_client(create_app(governance, keys(), base_url=BASE))
    yield client, ledger, state
    await session.close()


async def test_the_walkthrough(world: Any, git_path: Path, signer: Signer, tmp_path: Path) -> None:
    client, ledger, state = world
    ids = []
    for body in (GET_FILE, PYTEST, RM):
        _, answer = await post(client, "/admin/v1/test-action", body)
        ids.append(answer["envelope_id"])
    _, review = await post(client, "/admin/v1/test-action", PR)
    approval_id = review["envelope_id"]
    _, approved = await post(
        client,
        f"/admin/v1/approvals/{approval_id}/approve",
        {"reviewer": "alice", "comment": "diff looks correct, scoped to the test file"},
        ALICE_KEY,
    )
    assert approved["status"] == "approved"
    status, done = await post(client, "/admin/v1/test-action", {**PR, "approval_ref": approval_id})
    assert status == 200
    assert done["decision"] == "allow"
    assert done["matched_rule"] == f"approved:{approval_id}"
    assert done["credential"] == {
        "type": "github_app_jwt",
        "scope": "pull_requests:write,contents:read",
        "expires_in": 600,
    }
    assert done["result"] == {
        "pr_url": "https://github.com/aegisflow/aegisflow/pull/1247",
        "pr_number": 1247,
    }
    assert state.pulls[0]["head"]["ref"] == "claude/fix-flaky-evidence-test"

    ledger.close_session(SESSION)
    ledger.close()
    bundle = tmp_path / "evidence.bundle"
    export_session(git_path, SESSION, bundle)
    report = verify_bundle(bundle, [signer.public_key], session=SESSION)
    assert report.valid
    summary = report.sessions[SESSION]
    assert summary.entries == 7
    assert summary.lines == [
        f"envelope {ids[0]} allow github.get_file_contents",
        f"envelope {ids[1]} allow shell.pytest",
        f"envelope {ids[2]} block shell.rm",
        f"envelope {approval_id} review github.create_pull_request",
        f"envelope {approval_id} approve alice",
        f"envelope {done['envelope_id']} allow github.create_pull_request",
        f"envelope {done['envelope_id']} result pr/1247",
    ]
    storage = GitStorage(git_path)
    stored_entries = session_entries(storage, SESSION)
    storage.close()
    stored = b"".join(s.data for s in stored_entries)
    (token,) = state.tokens
    assert token.encode() not in stored  # the ledger holds the grant, never the token
    assert b'"fingerprint"' in stored

    # The auditor's view: the CLI, offline, with the key obtained out of band.
    key_file = tmp_path / "ledger.key.pub"
    key_file.write_text(signer.public_key.openssh() + "\n")
    shown = run(
        AEGISCTL, "evidence", "verify", "--bundle", str(bundle), "--session", SESSION,
        "--trusted-key", str(key_file), home=tmp_path,
    )  # fmt: skip
    assert shown.code == 0, shown
    assert shown.lines[:7] == summary.lines
    assert shown.lines[7] == "valid: true, total_entries: 7, audit log integrity verified"
    assert shown.lines[8] == f"session_manifest_hash: {summary.manifest_hash}"

    # Someone edits the database after the export: the block becomes an allow.
    blocked = stored_entries[2]
    assert blocked.entry.body["decision"] == "block"
    attacker = Repo(git_path)
    attacker.explode_packs()
    blob = attacker.rev(f"{blocked.commit_id.hex()}:entry.json")
    loose = attacker.loose_path(blob)
    raw = zlib.decompress(loose.read_bytes())
    at = raw.index(b'"decision":"block"') + len(b'"decision":"')
    rewrite_file(loose, zlib.compress(raw[:at] + b"allow" + raw[at + 5 :]))
    tampered = run(
        AEGISCTL, "evidence", "verify", "--repo", str(git_path), "--session", SESSION,
        "--trusted-key", str(key_file), home=tmp_path,
    )  # fmt: skip
    assert tampered.code != 0
    verdict = next(line for line in tampered.lines if line.startswith("valid: false"))
    assert "findings" in verdict
    first = tampered.lines[tampered.lines.index(verdict) + 1]
    assert "object_corrupt" in first
    assert f"commit={blocked.commit_id.hex()}" in first  # the broken link, by name
    # The bundle exported before the edit still verifies: the evidence handed over holds.
    assert verify_bundle(bundle, [signer.public_key], session=SESSION).valid


async def test_serve_attaches_the_github_executor(
    aiohttp_server: Any,
    aiohttp_client: Any,
    make_git_ledger: Callable[[], Ledger],
    clock: FakeClock,
) -> None:
    """The wiring ``aegisflow serve --github-*`` uses: one client session per app run."""
    state = standin()
    github = await aiohttp_server(create_standin_app(state))
    clock.now = NOW
    governance = Governance(policy=pack("pr-writer"), ledger=make_git_ledger(), clock=clock)
    app = create_app(governance, keys(), base_url=BASE)
    attach_github(
        app,
        governance,
        GitHubApp(
            app_id="12345",
            installation_id=7,
            private_key_pem=PRIVATE,
            api_url=str(github.make_url("")).rstrip("/"),
        ),
    )
    client = await aiohttp_client(app)
    assert governance.executor is not None
    _, review = await post(client, "/admin/v1/test-action", PR)
    await post(client, f"/admin/v1/approvals/{review['envelope_id']}/approve", {}, ALICE_KEY)
    _, done = await post(
        client, "/admin/v1/test-action", {**PR, "approval_ref": review["envelope_id"]}
    )
    assert done["result"]["pr_number"] == 1247
    await client.close()
    assert governance.executor is None
