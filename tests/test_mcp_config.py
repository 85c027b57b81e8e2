"""The MCP bridge's configuration file, and the proxy started from it."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest
from serve_helpers import AGENT_KEY, Served
from test_cli import BIN, _env
from test_mcp_faults import FAKE, INIT
from test_mcp_proxy import service  # noqa: F401 - a fixture

from aegisflow.mcp.config import ConfigError, load_config

GOOD = """
service: http://127.0.0.1:8081
timeout: 5
servers:
  github:
    command: [npx, -y, "@modelcontextprotocol/server-github"]
    env: {GITHUB_PERSONAL_ACCESS_TOKEN: read-only}
    target_args: [[owner, repo], [path]]
    capabilities: {create_issue: write}
    call_timeout: 60
  fs:
    command: [node, server.js, /workspace]
"""


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "mcp.yaml"
    path.write_text(text)
    return path


def test_a_configuration_loads(tmp_path: Path) -> None:
    config = load_config(write(tmp_path, GOOD))
    assert config.service == "http://127.0.0.1:8081"
    assert config.timeout == 5
    github = config.servers["github"]
    assert github.command[:2] == ("npx", "-y")
    assert github.server.name == "github"
    assert github.server.target_args == (("owner", "repo"), ("path",))
    assert github.server.capability_for("create_issue") == "write"
    assert github.call_timeout == 60
    assert config.servers["fs"].server.target_args[0] == ("owner", "repo")  # the defaults


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("servers: {}", "servers names no MCP server"),
        ("[1, 2]", "must be a mapping"),
        ("servers: {a: {command: [x]}}\nsevrice: x", "unknown keys sevrice"),
        ("servers: {a: {comand: [x]}}", "unknown keys comand"),
        ("servers: {a: {command: x}}", "command must be a non-empty list of strings"),
        ("servers: {a: {command: [x], capabilities: {t: own}}}", "'own' is not one of"),
        ("servers: {a: {command: [x], target_args: [owner]}}", "target_args must be a list"),
        ("servers: {a: {command: [x], call_timeout: -1}}", "call_timeout must be a positive"),
        ("servers: {'a b': {command: [x]}}", "MCP server name 'a b'"),
        ("servers: {a: {command: [x]}}\ntimeout: [", "not valid YAML"),
    ],
)
def test_bad_configurations_name_the_key(tmp_path: Path, text: str, message: str) -> None:
    with pytest.raises(ConfigError, match=message.replace("[", r"\[")):
        load_config(write(tmp_path, text))


def test_the_key_file_must_be_private(tmp_path: Path) -> None:
    key = tmp_path / "agent.key"
    key.write_text("k-123\n")
    key.chmod(0o644)
    config = load_config(write(tmp_path, f"api_key_file: {key}\nservers: {{a: {{command: [x]}}}}"))
    with pytest.raises(ConfigError, match="readable by others"):
        config.api_key()
    key.chmod(0o600)
    assert config.api_key() == "k-123"


def test_the_proxy_runs_from_the_file_and_keeps_our_key_from_the_server(
    service: Served, tmp_path: Path
) -> None:
    key = tmp_path / "agent.key"
    key.write_text(AGENT_KEY)
    key.chmod(0o600)
    config = write(
        tmp_path,
        f"service: {service.url}\napi_key_file: {key}\nservers:\n"
        f"  fake:\n    command: {json.dumps([*FAKE, 'env'])}\n    env: {{FAKE_SETTING: enabled}}\n",
    )
    env = {k: v for k, v in _env(service.home).items() if not k.startswith("AEGISFLOW_API")}
    env["AEGISFLOW_SESSION"] = "mcp-config"
    env["AEGISFLOW_API_KEY_HINT"] = "ours"
    process = subprocess.Popen(
        [str(BIN / "aegisflow"), "mcp-proxy", "--config", str(config), "--server", "fake"],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        env=env,
    )
    assert process.stdin is not None
    assert process.stdout is not None
    try:
        for request_id, message in enumerate(
            [INIT, {"jsonrpc": "2.0", "id": 1, "method": "tools/call",
                    "params": {"name": "echo", "arguments": {}}}]
        ):  # fmt: skip
            process.stdin.write(json.dumps(message).encode() + b"\n")
            process.stdin.flush()
            answer = json.loads(process.stdout.readline())
            assert answer["id"] == request_id, answer
    finally:
        process.stdin.close()
        process.wait(timeout=30)
        process.stdout.close()
    seen = json.loads(answer["result"]["content"][0]["text"])
    assert "FAKE_SETTING" in seen  # the file's env for the server
    assert "AEGISFLOW_SESSION" in seen  # ours, passed on
    assert "AEGISFLOW_API_KEY" not in seen  # but never the agent's key
