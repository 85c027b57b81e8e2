"""``aegisflow serve`` and the ``aegisctl`` client end to end: real processes, real HTTP.

The walkthrough's four decisions, the queue, alice's approval and the approved retry,
through the installed console scripts; then the ledger verifies offline.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest
from serve_helpers import AGENT_KEY, ALICE_KEY, AUDITOR_KEY, make_home, serving
from test_cli import AEGISCTL, AEGISFLOW, run

SESSION = "sess-2026-04-06-1422"


@pytest.fixture
def server(tmp_path: Path) -> Iterator[tuple[Path, str, str]]:
    home = make_home(tmp_path)
    with serving(home) as served:
        yield home, served.url, ALICE_KEY


def ctl(home: Path, url: str, key: str, *args: str) -> dict[str, object]:
    result = run(AEGISCTL, *args, "--server", url, "--api-key", key, "--json", home=home)
    assert result.code == 0, result
    parsed: dict[str, object] = json.loads(result.out)
    return parsed


def test_walkthrough_through_the_cli(server: tuple[Path, str, str]) -> None:
    home, url, alice_key = server
    action = {
        "protocol": "shell",
        "tool": "shell.rm",
        "target": "/workspace",
        "capability": "delete",
    }
    blocked = ctl(
        home, url, AGENT_KEY, "test-action", "--action", json.dumps(action), "--session", SESSION
    )
    assert blocked["decision"] == "block"
    assert blocked["matched_rule"] == "shell:shell.rm"
    pr = {
        "protocol": "git",
        "tool": "github.create_pull_request",
        "target": "aegisflow/aegisflow",
        "capability": "write",
    }
    review = ctl(
        home, url, AGENT_KEY, "test-action", "--action", json.dumps(pr), "--session", SESSION
    )
    approval_id = str(review["envelope_id"])
    listing = ctl(home, url, AGENT_KEY, "approvals")
    assert [p["envelope_id"] for p in listing["pending"]] == [approval_id]  # type: ignore[union-attr]
    refused = run(
        AEGISCTL,
        "approve",
        approval_id,
        "--comment",
        "x",
        "--server",
        url,
        "--api-key",
        AGENT_KEY,
        home=home,
    )
    assert refused.code != 0
    assert refused.err.startswith("error: forbidden: claude-code lacks the role")
    table = run(AEGISCTL, "approvals", "--server", url, "--api-key", AGENT_KEY, home=home)
    assert approval_id in table.out
    assert "github.create_pull_request" in table.out
    approved = ctl(
        home, url, alice_key, "approve", approval_id, "--reviewer", "alice",
        "--comment", "diff looks correct, scoped to the test file",
    )  # fmt: skip
    assert approved["status"] == "approved"
    retry = json.dumps({**pr, "approval_ref": approval_id})
    allowed = ctl(home, url, AGENT_KEY, "test-action", "--action", retry, "--session", SESSION)
    assert allowed["matched_rule"] == f"approved:{approval_id}"
    verified = run(
        AEGISCTL, "evidence", "verify", "--repo", "ledger", "--session", SESSION,
        "--trusted-key", "keys/ledger.key.pub", home=home,
    )  # fmt: skip
    assert verified.code == 0, verified
    assert "valid: true, total_entries: 4" in verified.out


def test_demo_plays_the_walkthrough(tmp_path: Path) -> None:
    home = make_home(tmp_path)
    result = run(AEGISCTL, "demo", home=home)
    assert result.code == 0, result
    verdicts = [line.split()[2:] for line in result.lines if line.startswith("envelope ")]
    assert verdicts == [
        ["allow", "github.get_file_contents"],
        ["allow", "shell.pytest"],
        ["block", "shell.rm"],
        ["review", "github.create_pull_request"],
        ["approve", "alice"],
        ["allow", "github.create_pull_request"],
        ["result", "pr/1247"],
    ]
    assert "valid: true, total_entries: 7, audit log integrity verified" in result.lines
    assert '"code": -32001' in result.out
    assert '"code": -32002' in result.out
    assert '"scope": "pull_requests:write,contents:read"' in result.out


def test_evidence_export_and_verify_through_the_service(
    server: tuple[Path, str, str], tmp_path: Path
) -> None:
    home, url, _ = server
    action = json.dumps(
        {"protocol": "shell", "tool": "shell.rm", "target": "/w", "capability": "delete"}
    )
    ctl(home, url, AGENT_KEY, "test-action", "--action", action, "--session", SESSION)
    remote = ("--server", url, "--api-key", AUDITOR_KEY)
    bundle = tmp_path / "evidence.bundle"
    exported = run(
        AEGISCTL, "evidence", "export", "--session", SESSION, "--out", str(bundle), *remote,
        home=home,
    )  # fmt: skip
    assert exported.code == 0, exported
    assert bundle.stat().st_size > 0
    offline = run(
        AEGISCTL, "evidence", "verify", "--bundle", str(bundle), "--session", SESSION, home=home
    )
    assert "valid: true, total_entries: 1" in offline.out, offline
    fetched = run(AEGISCTL, "evidence", "verify", "--session", SESSION, *remote, home=home)
    assert fetched.code == 0, fetched
    assert fetched.lines[-2:] == [
        "valid: true, total_entries: 1, audit log integrity verified",
        "session_manifest_hash: none (session open)",
    ]
    whole = run(AEGISCTL, "evidence", "verify", *remote, home=home)
    assert whole.code == 0, whole
    refused = run(
        AEGISCTL, "evidence", "export", "--all", "--out", str(tmp_path / "x"),
        "--server", url, "--api-key", AGENT_KEY, home=home,
    )  # fmt: skip
    assert refused.code != 0
    assert "forbidden: claude-code lacks the role" in refused.err
    assert not (tmp_path / "x").exists()
    unknown = run(AEGISCTL, "evidence", "verify", "--session", "nobody", *remote, home=home)
    assert unknown.code != 0
    assert "session-unknown" in unknown.err


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        ("pypi", "--static-credential takes NAME=ENV_VAR, not 'pypi'"),
        ("pypi=AEGISFLOW_TEST_UNSET_VARIABLE", "$AEGISFLOW_TEST_UNSET_VARIABLE is not set"),
    ],
)
def test_static_credentials_come_from_the_environment(
    tmp_path: Path, spec: str, message: str
) -> None:
    home = make_home(tmp_path)
    refused = run(AEGISFLOW, "serve", "--port", "1", "--static-credential", spec, home=home)
    assert refused.code == 4, refused
    assert message in refused.err
