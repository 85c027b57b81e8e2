"""The adversarial shell corpus of the policy engine, through the Claude Code hook.

Every command line in ``corpus/shell_stopped.txt`` arrives as a Bash PreToolUse payload
and must be denied (blocked or sent to review); every line in ``shell_allowed.txt`` must be
allowed. The hook runs in process (its process start is tested in test_hook_e2e) against a
live service with the default pr-writer policy, over real HTTP.
"""

from __future__ import annotations

import io
import json
from collections.abc import Iterator

import pytest
from policy_helpers import WORKSPACE, corpus
from serve_helpers import AGENT_KEY, Served, make_home, serving

from aegisflow.hooks.run import answer

STOPPED = corpus("shell_stopped.txt")
ALLOWED = corpus("shell_allowed.txt")


@pytest.fixture(scope="module")
def service(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Served]:
    home = make_home(tmp_path_factory.mktemp("corpus"))
    with serving(home) as served:
        yield served


def through_the_hook(service: Served, line: str, monkeypatch: pytest.MonkeyPatch) -> str:
    monkeypatch.setenv("AEGISFLOW_API_KEY", AGENT_KEY)
    monkeypatch.delenv("AEGISFLOW_SESSION", raising=False)
    payload = {
        "session_id": "hook-corpus",
        "cwd": WORKSPACE,
        "hook_event_name": "PreToolUse",
        "tool_name": "Bash",
        "tool_input": {"command": line},
        "tool_use_id": "toolu_corpus",
    }
    stdin = io.BytesIO(json.dumps(payload).encode())
    out, code = answer("claude-code", ["--server", service.url], stdin)
    assert code == 0
    return str(json.loads(out)["hookSpecificOutput"]["permissionDecision"])


def test_the_corpus_is_all_there() -> None:
    assert len(STOPPED) >= 250
    assert len(ALLOWED) >= 100


@pytest.mark.parametrize("line", STOPPED)
def test_every_dangerous_command_is_stopped(
    service: Served, line: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    assert through_the_hook(service, line, monkeypatch) == "deny"


@pytest.mark.parametrize("line", ALLOWED)
def test_no_everyday_command_is_stopped(
    service: Served, line: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    assert through_the_hook(service, line, monkeypatch) == "allow"
