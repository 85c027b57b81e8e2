"""``aegisctl demo``: play the walkthrough against a local service and a stand-in GitHub.

Everything is real except GitHub: the service runs on loopback with the checkout's
defaults (``policies/pr-writer.yaml``, ``ledger/``, ``keys/ledger.key``), every step is
an HTTP request, the pull request is opened on a local stand-in GitHub with a minted,
narrowed token, and the session is exported as a git bundle and verified offline.
"""

from __future__ import annotations

import asyncio
import json
import secrets
import tempfile
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import aiohttp
from aiohttp import web
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from rich.console import Console

from aegisflow.approvals import Principal
from aegisflow.auth import ApiKeys, KeyRecord, key_hash
from aegisflow.cli.app import HomeOption
from aegisflow.cli.policy import read_policy
from aegisflow.cli.status import Exit
from aegisflow.config import Paths
from aegisflow.credentials import Broker, GitHubApp, GitHubProvider
from aegisflow.executor import GitHubExecutor
from aegisflow.gateway.app import create_app
from aegisflow.keys import load_signer
from aegisflow.ledger.bundle import export_session, verify_bundle
from aegisflow.ledger.gitstore import GitStorage
from aegisflow.ledger.ledger import Ledger
from aegisflow.service import Governance
from aegisflow.standin import Installation, StandIn, create_standin_app

out = Console(highlight=False, soft_wrap=True)

AGENT_KEY = "starter-key-001"
REPO = "aegisflow/aegisflow"
PR_PARAMETERS = {
    "title": "fix: stabilize flaky TestEvidenceChain_Concurrent",
    "head": "claude/fix-flaky-evidence-test",
    "base": "main",
}
STEPS: list[tuple[str, dict[str, Any]]] = [
    (
        "Claude Code reads a file through the MCP bridge",
        {"protocol": "git", "tool": "github.get_file_contents", "target": REPO,
         "capability": "read"},
    ),
    (
        "It runs the tests",
        {"protocol": "shell", "tool": "shell.pytest", "target": "/workspace",
         "capability": "execute"},
    ),
    (
        "It tries rm -rf /workspace",
        {"protocol": "shell", "tool": "shell.rm", "target": "/workspace",
         "capability": "delete"},
    ),
    (
        "It opens a pull request",
        {"protocol": "git", "tool": "github.create_pull_request", "target": REPO,
         "capability": "write", "parameters": PR_PARAMETERS,
         "justification": "fixes intermittent failure in TestEvidenceChain_Concurrent "
         "caused by unsynchronized map access"},
    ),
]  # fmt: skip


def demo(home: HomeOption = None) -> None:
    """Play the walkthrough end to end on this checkout's policy, ledger and keys."""
    paths = Paths.from_env(home)
    valid = asyncio.run(_play(paths))
    if not valid:
        raise SystemExit(Exit.VERIFY_FAILED)


async def _play(paths: Paths) -> bool:
    signer = load_signer(paths.ledger_key)
    policy = read_policy(paths.default_policy)
    now = datetime.now(UTC)
    session = now.strftime("sess-%Y-%m-%d-%H%M%S")
    alice_key = "af_" + secrets.token_urlsafe(24)
    keys = ApiKeys(
        [
            KeyRecord(
                key_hash(AGENT_KEY), Principal(name="claude-code", roles=frozenset({"agent"}))
            ),
            KeyRecord(key_hash(alice_key), Principal(name="alice", roles=frozenset({"reviewer"}))),
        ]
    )
    private_pem, public_pem = _app_key()
    owner, repo = REPO.split("/")
    standin = StandIn(
        app_id="4242",
        public_key_pem=public_pem,
        installations={
            1: Installation(
                installation_id=1,
                owner=owner,
                repositories=frozenset({repo}),
                permissions={"pull_requests": "write", "contents": "write"},
            )
        },
    )
    github = web.AppRunner(create_standin_app(standin))
    await github.setup()
    github_site = web.TCPSite(github, "127.0.0.1", 0)
    await github_site.start()
    github_url = f"http://127.0.0.1:{_port(github_site)}"
    ledger = Ledger.open(GitStorage(paths.ledger, writable=True), signer)
    try:
        async with aiohttp.ClientSession() as http:
            app = GitHubApp(
                app_id="4242", installation_id=1, private_key_pem=private_pem, api_url=github_url
            )
            governance = Governance(
                policy=policy,
                ledger=ledger,
                executor=GitHubExecutor(github_url, http),
                broker=Broker({"github_app_jwt": GitHubProvider(app, http)}),
            )
            governance.restore()
            runner = web.AppRunner(create_app(governance, keys, base_url="http://localhost:8081"))
            await runner.setup()
            site = web.TCPSite(runner, "127.0.0.1", 0)
            await site.start()
            base = f"http://127.0.0.1:{_port(site)}"
            try:
                await _requests(http, base, session, alice_key)
            finally:
                await runner.cleanup()
        ledger.close_session(session)
    finally:
        ledger.close()
        await github.cleanup()
    return _verify(paths, session, signer.public_key)


async def _requests(http: aiohttp.ClientSession, base: str, session: str, alice_key: str) -> None:
    agent = {"X-API-Key": AGENT_KEY, "X-AegisFlow-Session": session}
    review: dict[str, Any] = {}
    for title, action in STEPS:
        out.print(f"\n[bold]{title}[/]")
        out.print(f"POST /admin/v1/test-action {json.dumps(action)}", style="dim")
        answer = await _call(http, "POST", f"{base}/admin/v1/test-action", agent, action)
        if answer["decision"] == "review":
            review = action
            approval_id = answer["envelope_id"]
    out.print("\n[bold]Pending approvals[/]")
    await _call(http, "GET", f"{base}/admin/v1/approvals", agent, None)
    out.print("\n[bold]alice approves[/]")
    await _call(
        http,
        "POST",
        f"{base}/admin/v1/approvals/{approval_id}/approve",
        {"X-API-Key": alice_key},
        {"reviewer": "alice", "comment": "diff looks correct, scoped to the test file"},
    )
    out.print("\n[bold]Claude Code retries with the approval[/]")
    await _call(
        http, "POST", f"{base}/admin/v1/test-action", agent, {**review, "approval_ref": approval_id}
    )


async def _call(
    http: aiohttp.ClientSession,
    method: str,
    url: str,
    headers: dict[str, str],
    body: dict[str, Any] | None,
) -> dict[str, Any]:
    async with http.request(method, url, json=body, headers=headers) as response:
        data: dict[str, Any] = await response.json()
    out.print_json(data=data)
    return data


def _verify(paths: Paths, session: str, public_key: Any) -> bool:
    with tempfile.TemporaryDirectory(prefix="aegisflow-demo-") as tmp:
        bundle = Path(tmp) / "evidence.bundle"
        export_session(paths.ledger, session, bundle)
        out.print(f"\naegisctl evidence export --session {session} --out evidence.bundle")
        report = verify_bundle(bundle, [public_key], session=session)
    summary = report.sessions[session]
    out.print(f"verifying session {session}...")
    for line in summary.lines:
        out.print(line)
    verdict = "true" if report.valid else "false"
    out.print(f"valid: {verdict}, total_entries: {summary.entries}, audit log integrity verified")
    out.print(f"session_manifest_hash: {summary.manifest_hash}")
    return report.valid


def _app_key() -> tuple[bytes, bytes]:
    """An ephemeral GitHub App key for the stand-in (the demo's own app)."""
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    private = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    public = key.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    return private, public


def _port(site: web.TCPSite) -> int:
    """The port a site bound to (port 0 asks the system for a free one)."""
    sockets: list[Any] = list(getattr(site._server, "sockets", None) or [])
    return int(sockets[0].getsockname()[1])
