"""``aegisctl hook install|uninstall``: the hook configuration in each agent's settings.

Install merges AegisFlow's entries into the file that is there: other hooks and settings
are kept as they are, an earlier AegisFlow entry is replaced (so installing twice changes
nothing), and the file as it was is kept as a timestamped backup next to it before any
change. Uninstall removes only entries that run ``aegisctl hook <agent>``. A file that is
not valid JSON is never touched.

The installed command ends in ``|| exit 2`` where the agent runs it through a shell:
Claude Code, Codex and Copilot let a tool run when its hook exits with any code but 2
(a missing or broken executable, say); Cursor gets ``failClosed`` instead.
"""

from __future__ import annotations

import json
import os
import re
import shlex
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from aegisflow.errors import InputError, OperationalError

HOOK_TIMEOUT = 30
"""Seconds the agent gives the hook; the hook itself gives up on the service after 5."""

CLAUDE_TOOLS = "Bash|Edit|MultiEdit|Write|NotebookEdit|Read|Glob|Grep|LS|WebFetch|WebSearch"
CODEX_TOOLS = "Bash|apply_patch"
COPILOT_TOOLS = (
    "bash|view|create|edit|str_replace_editor|glob|grep|rg|web_fetch|web_search|apply_patch"
)
MCP_TOOLS = "mcp__.*"
SCOPES = ("project", "user")


@dataclass(frozen=True)
class Change:
    path: Path
    status: str
    """``installed``, ``updated``, ``unchanged``, ``removed`` or ``absent``."""
    backup: Path | None = None


def settings_path(agent: str, scope: str, project: Path) -> Path:
    """Where ``agent`` reads hooks for ``scope`` (``project`` is relative to ``project``)."""
    home = Path.home()
    if agent == "claude-code":
        return (project if scope == "project" else home) / ".claude" / "settings.json"
    if agent == "codex":
        user = Path(os.environ.get("CODEX_HOME") or home / ".codex")
        return (project / ".codex" if scope == "project" else user) / "hooks.json"
    if agent == "cursor":
        return (project if scope == "project" else home) / ".cursor" / "hooks.json"
    if agent == "copilot":
        user = Path(os.environ.get("COPILOT_HOME") or home / ".copilot")
        return (project / ".github" if scope == "project" else user) / "hooks" / "aegisflow.json"
    raise InputError(f"unknown agent {agent!r}; one of claude-code, codex, cursor, copilot")


def hook_command(executable: str, agent: str, options: list[str]) -> str:
    command = shlex.join([executable, "hook", agent, *options])
    return command if agent == "cursor" else f"{command} || exit 2"


def install(
    agent: str, path: Path, executable: str, options: list[str], *, mcp: bool = False
) -> Change:
    """Add (or refresh) the hook entries for ``agent`` in ``path``."""
    before = _load(path)
    settings = _without_ours(before, agent)
    had_ours = settings != before
    command = hook_command(executable, agent, options)
    if agent in ("cursor", "copilot") and "version" not in settings:
        settings = {"version": 1, **settings}
    hooks = settings.setdefault("hooks", {})
    if not isinstance(hooks, dict):
        raise InputError(f"{path}: 'hooks' is not an object; nothing was changed")
    for event, entry in _entries(agent, command, mcp=mcp):
        hooks.setdefault(event, [])
        if not isinstance(hooks[event], list):
            raise InputError(f"{path}: hooks.{event} is not a list; nothing was changed")
        hooks[event].append(entry)
    if settings == before:
        return Change(path, "unchanged")
    backup = _write(path, settings, existed=bool(before))
    return Change(path, "updated" if had_ours else "installed", backup)


def uninstall(agent: str, path: Path) -> Change:
    """Remove the hook entries for ``agent`` from ``path``, and nothing else."""
    before = _load(path)
    settings = _without_ours(before, agent)
    if settings == before:
        return Change(path, "absent")
    if agent == "copilot" and not settings.get("hooks"):
        backup = _backup(path)
        path.unlink()
        return Change(path, "removed", backup)
    return Change(path, "removed", _write(path, settings, existed=True))


def _entries(agent: str, command: str, *, mcp: bool) -> list[tuple[str, dict[str, Any]]]:
    if agent in ("claude-code", "codex"):
        tools = CLAUDE_TOOLS if agent == "claude-code" else CODEX_TOOLS
        matcher = f"{tools}|{MCP_TOOLS}" if mcp else tools
        hook = {"type": "command", "command": command, "timeout": HOOK_TIMEOUT}
        return [
            (event, {"matcher": matcher, "hooks": [dict(hook)]})
            for event in ("PreToolUse", "PostToolUse")
        ]
    if agent == "cursor":
        events = ["beforeShellExecution", "beforeReadFile"]
        if mcp:
            events.append("beforeMCPExecution")
        entry = {"command": command, "failClosed": True, "timeout": HOOK_TIMEOUT}
        return [(event, dict(entry)) for event in events]
    entry = {"type": "command", "bash": command, "timeoutSec": HOOK_TIMEOUT}
    return [("preToolUse", {**entry, "matcher": COPILOT_TOOLS})]


def is_ours(command: object, agent: str) -> bool:
    """Whether a hook command runs ``aegisctl hook <agent>``."""
    pattern = rf"(^|[\s/'\"])aegisctl['\"]? hook {re.escape(agent)}(\s|$)"
    return isinstance(command, str) and re.search(pattern, command) is not None


def _without_ours(settings: dict[str, Any], agent: str) -> dict[str, Any]:
    """A copy of ``settings`` without AegisFlow's entries for ``agent`` (and the lists,
    groups and ``hooks`` object that only held them)."""
    out: dict[str, Any] = json.loads(json.dumps(settings))
    hooks = out.get("hooks")
    if not isinstance(hooks, dict):
        return out
    for event in list(hooks):
        entries = hooks[event]
        if not isinstance(entries, list):
            continue
        kept = []
        for entry in entries:
            if not isinstance(entry, dict):
                kept.append(entry)
            elif isinstance(entry.get("hooks"), list):  # Claude Code / Codex matcher group
                inner = [h for h in entry["hooks"] if not _ours_entry(h, agent)]
                if inner or not entry["hooks"]:
                    kept.append({**entry, "hooks": inner})
            elif not _ours_entry(entry, agent):
                kept.append(entry)
        if kept or not entries:
            hooks[event] = kept
        else:
            del hooks[event]
    if not hooks and settings.get("hooks"):
        del out["hooks"]
    return out


def _ours_entry(entry: object, agent: str) -> bool:
    return isinstance(entry, dict) and any(
        is_ours(entry.get(key), agent) for key in ("command", "bash")
    )


def _load(path: Path) -> dict[str, Any]:
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return {}
    except (OSError, UnicodeDecodeError) as e:
        raise OperationalError(f"cannot read {path}: {e}") from None
    if not text.strip():
        return {}
    try:
        data = json.loads(text)
    except ValueError as e:
        raise InputError(
            f"{path} is not valid JSON ({e}); nothing was changed",
            hint="fix the file, or move it aside and install again",
        ) from None
    if not isinstance(data, dict):
        raise InputError(f"{path} does not hold a JSON object; nothing was changed")
    return data


def _write(path: Path, settings: dict[str, Any], *, existed: bool) -> Path | None:
    """Replace ``path`` atomically (same mode), after backing up what was there."""
    backup = _backup(path) if existed and path.exists() else None
    path.parent.mkdir(parents=True, exist_ok=True)
    mode = path.stat().st_mode & 0o777 if path.exists() else 0o644
    data = (json.dumps(settings, indent=2, ensure_ascii=False) + "\n").encode()
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.chmod(tmp, mode)
        os.replace(tmp, path)
    except OSError as e:
        Path(tmp).unlink(missing_ok=True)
        raise OperationalError(f"cannot write {path}: {e}") from None
    return backup


def _backup(path: Path) -> Path:
    stamp = time.strftime("%Y%m%dT%H%M%SZ", time.gmtime())
    backup = path.with_name(f"{path.name}.aegisflow-{stamp}.bak")
    n = 1
    while backup.exists():
        n += 1
        backup = path.with_name(f"{path.name}.aegisflow-{stamp}-{n}.bak")
    backup.write_bytes(path.read_bytes())
    os.chmod(backup, path.stat().st_mode & 0o777)
    return backup
