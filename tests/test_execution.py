"""Allowed writes run by the service with a credential minted for them alone, and a
static credential delivered to the caller: over HTTP, against the stand-in GitHub."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from aiohttp.test_utils import TestClient
from conftest import FakeClock
from test_gateway import BASE, SESSION, keys, post
from test_walkthrough import world  # noqa: F401 - the fixture

from aegisflow.credentials import Broker, StaticProvider
from aegisflow.gateway.app import create_app
from aegisflow.ledger.gitstore import GitStorage
from aegisflow.ledger.ledger import Ledger
from aegisflow.ledger.reading import session_entries
from aegisflow.policy.loader import load_policy
from aegisflow.service import Governance
from aegisflow.standin import StandIn

REPO = "aegisflow/aegisflow"
PUT_FILE = {
    "protocol": "mcp",
    "tool": "github.create_or_update_file",
    "target": REPO,
    "capability": "write",
    "parameters": {
        "path": "tests/test_evidence.py",
        "content": "def test_chain():\n    assert True\n",
        "message": "test: stabilize the chain test",
        "branch": "claude/fix-flaky-evidence-test",
    },
}
PUSH = {
    "protocol": "mcp",
    "tool": "github.push_files",
    "target": REPO,
    "capability": "write",
    "parameters": {
        "branch": "claude/fix-flaky-evidence-test",
        "message": "fix: lock the map",
        "files": [
            {"path": "aegisflow/chain.py", "content": "LOCK = True\n"},
            {"path": "docs/chain.md", "content": "# Chain\n"},
        ],
    },
}


@pytest.fixture
def branches(world: tuple[TestClient, Ledger, StandIn]) -> tuple[TestClient, Ledger, StandIn]:
    """The walkthrough's world, with ``main`` and the agent's feature branch."""
    state = world[2]
    state.branches[(REPO, "main")] = "base0"
    state.branches[(REPO, "claude/fix-flaky-evidence-test")] = "base0"
    return world


def stored(git_path: Path) -> list[Any]:
    storage = GitStorage(git_path)
    try:
        return session_entries(storage, SESSION)
    finally:
        storage.close()


async def test_a_file_on_a_feature_branch_is_written_with_contents_write(
    branches: tuple[TestClient, Ledger, StandIn], git_path: Path
) -> None:
    client, _, state = branches
    status, done = await post(client, "/v1/actions", PUT_FILE)
    assert status == 200
    assert done["decision"] == "allow"
    assert done["credential"] == {
        "type": "github_app_jwt",
        "scope": "contents:write",
        "expires_in": 600,
    }
    assert done["result"]["commit_sha"] == state.branches[(REPO, "claude/fix-flaky-evidence-test")]
    assert state.files[(REPO, "tests/test_evidence.py")].startswith(b"def test_chain")
    (token,) = state.tokens
    assert dict(state.tokens[token].permissions) == {"contents": "write"}
    kinds = [(s.entry.type, s.entry.body.get("summary")) for s in stored(git_path)]
    assert kinds == [("decision", None), ("result", f"commit/{done['result']['commit_sha'][:12]}")]


async def test_several_files_are_pushed_as_one_commit(
    branches: tuple[TestClient, Ledger, StandIn],
) -> None:
    client, _, state = branches
    _, done = await post(client, "/v1/actions", PUSH)
    assert done["decision"] == "allow", done
    assert done["result"]["files"] == 2
    commit = state.commits[done["result"]["commit_sha"]]
    assert commit["parents"] == ["base0"]
    assert state.files[(REPO, "docs/chain.md")] == b"# Chain\n"
    assert [m for m, _ in state.calls] == ["GET", "POST", "POST", "PATCH"]


async def test_a_protected_branch_is_blocked_before_any_credential(
    branches: tuple[TestClient, Ledger, StandIn],
) -> None:
    client, _, state = branches
    main = {**PUT_FILE, "parameters": {**PUT_FILE["parameters"], "branch": "main"}}
    _, blocked = await post(client, "/v1/actions", main)
    assert blocked["decision"] == "block"
    assert "credential" not in blocked
    assert state.tokens == {}
    assert state.calls == []


@pytest.mark.parametrize(
    "path",
    ["../../pulls", "tests/../../../x", "/etc/passwd", "a?ref=main", "a#b", "a//b", "%2e%2e"],
)
async def test_paths_that_would_leave_the_contents_api_are_refused(
    branches: tuple[TestClient, Ledger, StandIn], git_path: Path, path: str
) -> None:
    client, _, state = branches
    action = {**PUT_FILE, "parameters": {**PUT_FILE["parameters"], "path": path}}
    _, done = await post(client, "/v1/actions", action)
    assert done["decision"] == "allow"  # the policy allowed it; running it failed
    assert done["result"]["error"]["code"] == "invalid-input"
    assert "plain repository path" in done["result"]["error"]["message"]
    assert state.calls == []  # nothing reached GitHub but the token request
    assert stored(git_path)[-1].entry.body["summary"] == "error"


STATIC_POLICY = """
name: static-demo
tool_policies:
  default_decision: block
  rules:
    - protocol: http
      tool: http.post
      target: "https://upload.pypi.org/**"
      decision: allow
      credential: {type: static, name: pypi-upload, deliver: caller, ttl: 5m}
    - protocol: http
      tool: http.put
      decision: allow
      credential: {type: static, name: not-configured, deliver: caller}
"""
UPLOAD = {
    "protocol": "http",
    "tool": "http.post",
    "target": "https://upload.pypi.org/legacy/",
    "capability": "write",
}


@pytest.fixture
async def static_client(
    aiohttp_client: Any, make_git_ledger: Callable[[], Ledger], clock: FakeClock
) -> tuple[TestClient, Ledger]:
    ledger = make_git_ledger()
    governance = Governance(
        policy=load_policy(STATIC_POLICY),
        ledger=ledger,
        clock=clock,
        broker=Broker({"static": StaticProvider({"pypi-upload": "pypi-AgEIcHlwaS5vcmc-secret"})}),
    )
    client: TestClient = await aiohttp_client(create_app(governance, keys(), base_url=BASE))
    return client, ledger


async def test_a_static_credential_is_delivered_to_the_caller_and_only_its_grant_recorded(
    static_client: tuple[TestClient, Ledger], git_path: Path
) -> None:
    client, _ = static_client
    _, done = await post(client, "/v1/actions", UPLOAD)
    assert done["decision"] == "allow"
    assert done["credential"] == {
        "type": "static",
        "scope": "static:pypi-upload",
        "expires_in": 300,
        "token": "pypi-AgEIcHlwaS5vcmc-secret",
    }
    assert "result" not in done  # the caller runs it, and reports the result
    entries = stored(git_path)
    assert [s.entry.type for s in entries] == ["decision"]
    assert entries[0].entry.body["credential"]["type"] == "static"
    assert b"pypi-AgEIcHlwaS5vcmc-secret" not in entries[0].data


async def test_an_unconfigured_static_credential_is_an_error_not_a_token(
    static_client: tuple[TestClient, Ledger], git_path: Path
) -> None:
    client, _ = static_client
    put = {**UPLOAD, "tool": "http.put"}
    _, done = await post(client, "/v1/actions", put)
    assert done["decision"] == "allow"
    assert "credential" not in done
    assert done["result"]["error"]["code"] == "credential"
    assert "not-configured" in done["result"]["error"]["message"]
    assert [s.entry.type for s in stored(git_path)] == ["decision", "result"]
