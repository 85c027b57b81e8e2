"""Shared by the hook tests: the recorded payloads and running the hook."""

from __future__ import annotations

import json
import os
import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
PAYLOADS = Path(__file__).resolve().parent / "hooks"
AEGISCTL = ROOT / ".venv" / "bin" / "aegisctl"
CURSOR_MCP = {
    "mcpServers": {
        "github": {"command": "npx", "args": ["-y", "@modelcontextprotocol/server-github"]}
    }
}


@dataclass(frozen=True)
class Recorded:
    agent: str
    name: str
    payload: dict[str, Any]
    expect: dict[str, Any]


def recorded() -> list[Path]:
    return sorted(PAYLOADS.glob("*/*.json"))


def load(path: Path, root: Path) -> Recorded:
    """A recorded payload; ``{root}`` is a workspace whose ``.cursor/mcp.json`` names github."""
    (root / ".cursor").mkdir(exist_ok=True)
    (root / ".cursor" / "mcp.json").write_text(json.dumps(CURSOR_MCP))
    data = json.loads(path.read_text().replace("{root}", str(root)))
    return Recorded(path.parent.name, path.stem, data["payload"], data["expect"])


@dataclass(frozen=True)
class Ran:
    code: int
    out: str
    err: str

    def json(self) -> Any:
        return json.loads(self.out)


def run_hook(
    agent: str, payload: object, *args: str, key: str | None, env: dict[str, str] | None = None
) -> Ran:
    """``aegisctl hook AGENT ARGS`` as a real subprocess, ``payload`` on stdin."""
    environment = {k: v for k, v in os.environ.items() if not k.startswith("AEGISFLOW_")}
    if key is not None:
        environment["AEGISFLOW_API_KEY"] = key
    environment.update(env or {})
    data = payload if isinstance(payload, bytes) else json.dumps(payload).encode()
    done = subprocess.run(
        [str(AEGISCTL), "hook", agent, *args],
        input=data,
        capture_output=True,
        env=environment,
        timeout=60,
        check=False,
    )
    return Ran(done.returncode, done.stdout.decode(), done.stderr.decode())


def decision_of(agent: str, ran: Ran) -> str:
    """What the agent would do with the hook's answer: allow, deny, ask, or none (no opinion)."""
    assert ran.code == 0, ran.err
    if not ran.out.strip():
        return "none"
    answer = ran.json()
    if agent in ("claude-code", "codex"):
        return str(answer["hookSpecificOutput"]["permissionDecision"])
    if agent == "cursor":
        return str(answer["permission"])
    return str(answer["permissionDecision"])
