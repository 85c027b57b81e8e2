"""pr-writer: the walkthrough's decisions exactly, and the adversarial shell corpus."""

from __future__ import annotations

import pytest
from policy_helpers import corpus, decide_action, decide_line, pack

SEED = [
    (
        {
            "protocol": "git",
            "tool": "github.get_file_contents",
            "target": "aegisflow/aegisflow",
            "capability": "read",
        },
        "allow",
        "git:github.get_*",
    ),
    (
        {
            "protocol": "shell",
            "tool": "shell.pytest",
            "target": "/workspace",
            "capability": "execute",
        },
        "allow",
        "shell:shell.pytest",
    ),
    (
        {"protocol": "shell", "tool": "shell.rm", "target": "/workspace", "capability": "delete"},
        "block",
        "shell:shell.rm",
    ),
    (
        {
            "protocol": "git",
            "tool": "github.create_pull_request",
            "target": "aegisflow/aegisflow",
            "capability": "write",
        },
        "review",
        "git:github.create_pull_request",
    ),
]


@pytest.mark.parametrize(("data", "decision", "rule"), SEED, ids=[s[0]["tool"] for s in SEED])
def test_seed_decisions(data: dict[str, object], decision: str, rule: str) -> None:
    result = decide_action(pack("pr-writer"), data)
    assert (result.decision, result.matched_rule, result.policy) == (decision, rule, "pr-writer")


def test_seed_block_carries_reason_and_alternative() -> None:
    result = decide_action(pack("pr-writer"), SEED[2][0])
    assert result.reason == "destructive shell command"
    assert result.suggested_alternative == "use git clean -fdx via shell.git"


def test_seed_pull_request_credential() -> None:
    result = decide_action(pack("pr-writer"), SEED[3][0])
    assert result.credential is not None
    assert result.credential.type == "github_app_jwt"
    assert result.credential.scope == "pull_requests:write,contents:read"
    assert result.credential.ttl == 600


STOPPED = corpus("shell_stopped.txt")
ALLOWED = corpus("shell_allowed.txt")


def test_corpus_sizes() -> None:
    assert len(STOPPED) >= 60
    assert len(ALLOWED) >= 60
    assert not set(STOPPED) & set(ALLOWED)


@pytest.mark.parametrize("line", STOPPED)
def test_adversarial_commands_are_stopped(line: str) -> None:
    envelope, result = decide_line(pack("pr-writer"), line)
    assert result.decision in ("review", "block"), (envelope.tool, result.matched_rule)


@pytest.mark.parametrize("line", ALLOWED)
def test_everyday_commands_are_allowed(line: str) -> None:
    envelope, result = decide_line(pack("pr-writer"), line)
    assert result.decision == "allow", (envelope.tool, result.matched_rule, result.reason)


@pytest.mark.parametrize(
    ("protocol", "tool", "hidden"),
    [
        ("mcp", "github.merge_pull_request", True),
        ("mcp", "github.delete_file", True),  # a conditional block first, then delete_*
        ("mcp", "github.create_pull_request", False),  # reviewed
        ("mcp", "github.get_file_contents", False),
        ("mcp", "github.create_or_update_file", False),  # allowed on feature branches
        ("mcp", "github.frobnicate", False),  # pr-writer's default is review
        ("shell", "shell.rm", True),
        ("shell", "shell.git", False),  # blocked only for some arguments (push --force)
    ],
)
def test_tools_the_policy_always_blocks(protocol: str, tool: str, hidden: bool) -> None:
    assert pack("pr-writer").always_blocks(protocol, tool) is hidden
