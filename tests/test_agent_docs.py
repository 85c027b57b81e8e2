"""The copy-paste configurations in docs/agents/ parse, launch the proxy correctly, and
the hook configurations are exactly what ``aegisctl hook install`` writes."""

from __future__ import annotations

import json
import re
import shlex
import tomllib
from pathlib import Path
from typing import Any

import pytest

from aegisflow.hooks.install import install

AGENTS = Path(__file__).resolve().parent.parent / "docs" / "agents"
FENCE = re.compile(r"^```(\w+)\n(.*?)^```", re.MULTILINE | re.DOTALL)


def blocks(name: str, language: str) -> list[str]:
    text = (AGENTS / name).read_text()
    return [body for lang, body in FENCE.findall(text) if lang == language]


def check_server(server: dict[str, Any]) -> None:
    assert server["command"] == "aegisflow"
    args = server["args"]
    assert args[0] == "mcp-proxy"
    assert args[args.index("--name") + 1]
    upstream = args[args.index("--") + 1 :]
    assert upstream, "the real server's command follows --"
    assert "AEGISFLOW_API_KEY" in server["env"]
    assert not any("AEGISFLOW_API_KEY" in a or "--api-key" in a for a in args)  # no key in argv


@pytest.mark.parametrize(
    ("doc", "path"), [("claude-code.md", "mcpServers"), ("cursor.md", "mcpServers")]
)
def test_json_configurations(doc: str, path: str) -> None:
    (config,) = [b for b in blocks(doc, "json") if path in b]
    servers = json.loads(config)[path]
    assert servers
    for server in servers.values():
        check_server(server)


def test_codex_toml() -> None:
    (config,) = blocks("codex.md", "toml")
    servers = tomllib.loads(config)["mcp_servers"]
    for server in servers.values():
        check_server(server)


def test_claude_mcp_add_command() -> None:
    (command,) = blocks("claude-code.md", "sh")
    words = shlex.split(command.replace("\\\n", " "))
    assert words[:3] == ["claude", "mcp", "add"]
    first = words.index("--")
    env = {w.split("=", 1)[0] for w, prev in zip(words, ["", *words], strict=False) if prev == "-e"}
    check_server(
        {"command": words[first + 1], "args": words[first + 2 :], "env": dict.fromkeys(env, "")}
    )


@pytest.mark.parametrize(
    ("doc", "agent"),
    [
        ("claude-code.md", "claude-code"),
        ("codex.md", "codex"),
        ("cursor.md", "cursor"),
        ("copilot.md", "copilot"),
    ],
)
def test_hook_configurations_are_what_install_writes(doc: str, agent: str, tmp_path: Path) -> None:
    (config,) = [b for b in blocks(doc, "json") if '"hooks"' in b]
    written = tmp_path / "settings.json"
    install(agent, written, "/opt/aegisflow/bin/aegisctl", [])
    assert json.loads(config) == json.loads(written.read_text())
