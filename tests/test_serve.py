"""``aegisflow serve`` and the ``aegisctl`` client end to end: real processes, real HTTP.

The walkthrough's four decisions, the queue, alice's approval and the approved retry,
through the installed console scripts; then the ledger verifies offline.
"""

from __future__ import annotations

import json
import shutil
import signal
import socket
import subprocess
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest
from test_cli import AEGISCTL, AEGISFLOW, BIN, _env, run

ROOT = Path(__file__).resolve().parent.parent
SESSION = "sess-2026-04-06-1422"
AGENT_KEY = "starter-key-001"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture
def server(tmp_path: Path) -> Iterator[tuple[Path, str, str]]:
    home = tmp_path / "home"
    home.mkdir()
    shutil.copytree(ROOT / "policies", home / "policies")
    assert run(AEGISCTL, "keys", "init", home=home).code == 0
    assert run(AEGISFLOW, "ledger", "init", home=home).code == 0
    agent = run(
        AEGISCTL, "keys", "api-key", "--principal", "claude-code", "--role", "agent",
        "--key", AGENT_KEY, home=home,
    )  # fmt: skip
    assert agent.code == 0, agent
    alice = run(
        AEGISCTL, "keys", "api-key", "--principal", "alice", "--role", "reviewer", home=home
    )
    alice_key = alice.out.split(": ")[-1].split()[0]
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    log = tmp_path / "serve.log"
    with log.open("wb") as sink:
        process = subprocess.Popen(
            [str(BIN / AEGISFLOW), "serve", "--port", str(port)],
            cwd=home,
            env=_env(home),
            stdout=sink,
            stderr=sink,
        )
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                with urllib.request.urlopen(f"{url}/health", timeout=1) as response:  # noqa: S310
                    if response.status == 200:
                        break
            except OSError:
                if process.poll() is not None or time.monotonic() > deadline:
                    raise AssertionError(log.read_text()) from None
                time.sleep(0.1)
        yield home, url, alice_key
    finally:
        process.send_signal(signal.SIGINT)
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def ctl(home: Path, url: str, key: str, *args: str) -> dict[str, object]:
    result = run(AEGISCTL, *args, "--server", url, "--api-key", key, home=home)
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
    home = tmp_path / "home"
    home.mkdir()
    shutil.copytree(ROOT / "policies", home / "policies")
    assert run(AEGISCTL, "keys", "init", home=home).code == 0
    assert run(AEGISFLOW, "ledger", "init", home=home).code == 0
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
