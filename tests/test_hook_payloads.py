"""Recorded hook payloads of each agent and tool type: the envelopes and the pr-writer decision.

The payloads in ``tests/hooks/<agent>/`` follow each agent's documented hook wire format
(docs/agents/hooks.md lists the sources). Each names the envelopes the service makes of it
and what pr-writer decides, so a change in mapping or policy shows up here by name.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from hook_helpers import load, recorded
from policy_helpers import ACTOR, counter_ids, pack

from aegisflow.hooks import AGENT_NAMES
from aegisflow.hooks.agents import AGENTS, HookError
from aegisflow.policy.normalize import action_envelopes


@pytest.fixture(autouse=True)
def elsewhere_home(
    tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The recorded paths (/home/dev/...) are nobody's home here, whoever runs the tests."""
    monkeypatch.setenv("HOME", str(tmp_path_factory.mktemp("home")))


@pytest.mark.parametrize("path", recorded(), ids=lambda p: f"{p.parent.name}/{p.stem}")
def test_a_recorded_payload_becomes_the_expected_envelopes_and_decision(
    path: Path, tmp_path: Path
) -> None:
    case = load(path, tmp_path)
    agent = AGENTS[case.agent]
    if case.expect.get("refused"):
        with pytest.raises(HookError):
            agent.pre(case.payload, agent.name)
        return
    call = agent.pre(case.payload, agent.name)
    if case.expect.get("internal"):
        assert call is None
        return
    assert call is not None
    envelopes = action_envelopes(call.action, actor=ACTOR, new_id=counter_ids())  # type: ignore[arg-type]
    made = [{"tool": e.tool, "target": e.target, "capability": e.capability} for e in envelopes]
    assert made == case.expect["envelopes"]
    decision = pack("pr-writer").evaluate_all(envelopes).decision
    assert (decision.decision, decision.matched_rule) == (
        case.expect["decision"],
        case.expect["matched_rule"],
    )


def test_every_agent_and_each_kind_of_tool_is_recorded() -> None:
    agents = {p.parent.name for p in recorded()}
    assert agents == set(AGENT_NAMES) == set(AGENTS)
    claude = {p.stem.split("-")[0] for p in recorded() if p.parent.name == "claude-code"}
    kinds = {"bash", "edit", "multiedit", "write", "notebookedit", "read", "glob", "grep"}
    assert kinds | {"webfetch", "websearch", "mcp", "todowrite"} <= claude
    cursor = {p.stem.split("-")[0] for p in recorded() if p.parent.name == "cursor"}
    assert {"shell", "read", "mcp"} <= cursor
    codex = {p.stem for p in recorded() if p.parent.name == "codex"}
    assert any(name.startswith("apply-patch") for name in codex)


def test_written_content_is_digested_not_recorded(tmp_path: Path) -> None:
    case = load(Path(__file__).parent / "hooks/claude-code/write-outside-workspace.json", tmp_path)
    call = AGENTS["claude-code"].pre(case.payload, "claude-code")
    assert call is not None
    assert set(call.action["parameters"]) == {"content_sha256", "size"}
    assert "rm -rf" not in str(call.action)


@pytest.mark.parametrize(
    ("agent", "payload", "message"),
    [
        ("claude-code", {"tool_name": "Bash"}, "no tool_name and tool_input"),
        ("claude-code", {"tool_name": "Frobnicate", "tool_input": {}}, "does not know the tool"),
        ("claude-code", {"tool_name": "Bash", "tool_input": {"command": " "}}, "no command"),
        (
            "claude-code",
            {"tool_name": "WebFetch", "tool_input": {"url": "file:///etc/passwd"}},
            "not an http",
        ),
        (
            "claude-code",
            {"tool_name": "WebFetch", "tool_input": {"url": "http://[::1"}},
            "not an http",
        ),
        ("claude-code", {"tool_name": "Write", "tool_input": {"content": "x"}}, "names no path"),
        ("codex", {"tool_name": "apply_patch", "tool_input": {"command": ""}}, "patch is empty"),
        ("cursor", {"hook_event_name": "beforeSubmitPrompt"}, "does not handle"),
        (
            "cursor",
            {"hook_event_name": "beforeMCPExecution", "tool_name": "x", "tool_input": "{"},
            "not JSON",
        ),
        (
            "cursor",
            {"hook_event_name": "beforeMCPExecution", "tool_name": "x", "url": "http://u"},
            "not in .cursor/mcp.json",
        ),
        ("copilot", {"toolName": "frobnicate", "toolArgs": "{}"}, "does not know the Copilot tool"),
        ("copilot", {"toolName": "bash", "toolArgs": "{not json"}, "toolArgs is not JSON"),
    ],
)
def test_payloads_that_cannot_be_checked_are_refused(
    agent: str,
    payload: dict[str, object],
    message: str,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("HOME", str(tmp_path))  # no ~/.cursor/mcp.json to find
    with pytest.raises(HookError, match=message):
        AGENTS[agent].pre({"cwd": str(tmp_path), **payload}, agent)


def test_a_symbolic_link_is_decided_as_the_file_it_points_to(tmp_path: Path) -> None:
    secret = tmp_path / "home" / ".ssh" / "id_ed25519"
    secret.parent.mkdir(parents=True)
    secret.write_text("key")
    (tmp_path / "notes.txt").symlink_to(secret)
    payload = {"cwd": str(tmp_path), "tool_name": "Read", "tool_input": {"file_path": "notes.txt"}}
    call = AGENTS["claude-code"].pre(payload, "claude-code")
    assert call is not None
    assert call.action["target"] == str(secret)


@pytest.mark.parametrize(
    ("given", "expected"),
    [
        ("5f0c2a9e-7d41-4c1b-9a57-2e8b3c6d1f04", "5f0c2a9e-7d41-4c1b-9a57-2e8b3c6d1f04"),
        ("bad\r\nX-API-Key: stolen", None),
        ("../../refs/heads/main", None),
        ("a" * 200, None),
    ],
)
def test_session_ids_that_could_not_be_used_safely_become_a_stable_digest(
    given: str, expected: str | None, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("AEGISFLOW_SESSION", raising=False)
    payload = {"session_id": given, "tool_name": "Read", "tool_input": {"file_path": "/x"}}
    first = AGENTS["claude-code"].pre(payload, "claude-code")
    again = AGENTS["claude-code"].pre(payload, "claude-code")
    assert first is not None
    assert again is not None
    if expected is not None:
        assert first.session == expected
    else:
        assert first.session.startswith("claude-code-")
        assert first.session == again.session
        assert "\n" not in first.session


def test_a_patch_is_decided_on_the_files_its_symbolic_links_reach(tmp_path: Path) -> None:
    ssh = tmp_path / "home" / ".ssh"
    ssh.mkdir(parents=True)
    (tmp_path / "keys").symlink_to(ssh)
    patch = "*** Begin Patch\n*** Update File: keys/authorized_keys\n@@\n+k\n*** End Patch"
    payload = {"cwd": str(tmp_path), "tool_name": "apply_patch", "tool_input": {"command": patch}}
    call = AGENTS["codex"].pre(payload, "codex")
    assert call is not None
    (envelope,) = action_envelopes(call.action, actor=ACTOR, new_id=counter_ids())  # type: ignore[arg-type]
    assert envelope.target == str(ssh / "authorized_keys")


def test_a_file_in_the_home_directory_is_named_as_policies_name_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    home = tmp_path / "home" / "dev"
    (home / ".config").mkdir(parents=True)
    monkeypatch.setenv("HOME", str(home))
    payload = {
        "cwd": "/workspace",
        "tool_name": "Read",
        "tool_input": {"file_path": f"{home}/.config/gh/hosts.yml"},
    }
    call = AGENTS["claude-code"].pre(payload, "claude-code")
    assert call is not None
    assert call.action["target"] == "~/.config/gh/hosts.yml"
    decision = (
        pack("infra-review")
        .evaluate_all(
            action_envelopes(call.action, actor=ACTOR, new_id=counter_ids())  # type: ignore[arg-type]
        )
        .decision
    )
    assert decision.decision != "allow"  # infra-review's ~/.config rule applies
