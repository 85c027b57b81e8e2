"""``aegisctl hook install|uninstall``: merged into each agent's settings, never clobbering.

Other hooks and settings survive install and uninstall byte for byte in meaning; a second
install changes nothing; every change leaves a backup; a broken settings file is refused
untouched; and the command that is installed really runs the hook and fails closed.
"""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path
from typing import Any

import pytest
from hook_helpers import AEGISCTL
from serve_helpers import AGENT_KEY, Served, make_home, serving

from aegisflow.errors import InputError
from aegisflow.hooks.install import install, is_ours, settings_path, uninstall

THEIRS = {
    "permissions": {"allow": ["Bash(npm test)"]},
    "hooks": {
        "PreToolUse": [
            {"matcher": "Bash", "hooks": [{"type": "command", "command": "./lint-guard.sh"}]}
        ],
        "Stop": [{"hooks": [{"type": "command", "command": "notify-send done"}]}],
    },
}


def aegisctl(*args: str, cwd: Path, home: Path) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "HOME": str(home)}
    return subprocess.run(
        [str(AEGISCTL), "hook", *args],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )


def backups(path: Path) -> list[Path]:
    return sorted(path.parent.glob(f"{path.name}.aegisflow-*.bak"))


def test_install_merges_with_what_is_there_and_uninstall_restores_it(tmp_path: Path) -> None:
    path = tmp_path / ".claude" / "settings.json"
    path.parent.mkdir()
    path.write_text(json.dumps(THEIRS))
    change = install("claude-code", path, "/opt/af/bin/aegisctl", ["--timeout", "3"])
    assert change.status == "installed"
    settings = json.loads(path.read_text())
    assert settings["permissions"] == THEIRS["permissions"]
    assert settings["hooks"]["Stop"] == THEIRS["hooks"]["Stop"]
    theirs, ours = settings["hooks"]["PreToolUse"]
    assert theirs == THEIRS["hooks"]["PreToolUse"][0]
    assert ours["matcher"].startswith("Bash|Edit")
    assert ours["hooks"] == [
        {
            "type": "command",
            "command": "/opt/af/bin/aegisctl hook claude-code --timeout 3 || exit 2",
            "timeout": 30,
        }
    ]
    assert len(settings["hooks"]["PostToolUse"]) == 1
    assert json.loads(backups(path)[0].read_text()) == THEIRS
    assert uninstall("claude-code", path).status == "removed"
    assert json.loads(path.read_text()) == THEIRS


def test_installing_twice_changes_nothing_and_a_new_path_replaces_the_old(tmp_path: Path) -> None:
    path = tmp_path / "settings.json"
    install("claude-code", path, "/a/aegisctl", [])
    assert backups(path) == []  # nothing was there to back up
    first = path.read_bytes()
    assert install("claude-code", path, "/a/aegisctl", []).status == "unchanged"
    assert path.read_bytes() == first
    assert backups(path) == []
    moved = install("claude-code", path, "/b/aegisctl", [])
    assert moved.status == "updated"
    commands = [
        h["command"]
        for g in json.loads(path.read_text())["hooks"]["PreToolUse"]
        for h in g["hooks"]
    ]
    assert commands == ["/b/aegisctl hook claude-code || exit 2"]
    assert len(backups(path)) == 1


def test_uninstall_leaves_other_agents_and_absent_files_alone(tmp_path: Path) -> None:
    path = tmp_path / "hooks.json"
    install("codex", path, "/a/aegisctl", [], mcp=True)
    assert json.loads(path.read_text())["hooks"]["PreToolUse"][0]["matcher"] == (
        "Bash|apply_patch|mcp__.*"
    )
    assert uninstall("claude-code", path).status == "absent"
    assert uninstall("codex", path).status == "removed"
    assert json.loads(path.read_text()) == {}
    assert uninstall("codex", tmp_path / "nothing.json").status == "absent"
    assert not (tmp_path / "nothing.json").exists()


def test_cursor_gets_fail_closed_entries_and_copilot_its_own_file(tmp_path: Path) -> None:
    cursor = settings_path("cursor", "project", tmp_path)
    cursor.parent.mkdir()
    cursor.write_text(json.dumps({"version": 1, "hooks": {"afterFileEdit": [{"command": "fmt"}]}}))
    install("cursor", cursor, "/a/aegisctl", [], mcp=True)
    hooks = json.loads(cursor.read_text())["hooks"]
    assert hooks["afterFileEdit"] == [{"command": "fmt"}]
    assert set(hooks) == {
        "afterFileEdit",
        "beforeShellExecution",
        "beforeReadFile",
        "beforeMCPExecution",
    }
    entry = hooks["beforeShellExecution"][0]
    assert entry == {"command": "/a/aegisctl hook cursor", "failClosed": True, "timeout": 30}
    copilot = settings_path("copilot", "project", tmp_path)
    assert copilot == tmp_path / ".github" / "hooks" / "aegisflow.json"
    install("copilot", copilot, "/a/aegisctl", [])
    (entry,) = json.loads(copilot.read_text())["hooks"]["preToolUse"]
    assert entry["bash"] == "/a/aegisctl hook copilot || exit 2"
    assert json.loads(copilot.read_text())["version"] == 1
    uninstall("copilot", copilot)
    assert not copilot.exists()
    assert len(backups(copilot)) == 1


@pytest.mark.parametrize(
    "text", ["{not json", "[1, 2]", '{"hooks": []}', '{"hooks": {"PreToolUse": {}}}']
)
def test_a_settings_file_that_is_not_understood_is_left_untouched(
    tmp_path: Path, text: str
) -> None:
    path = tmp_path / "settings.json"
    path.write_text(text)
    with pytest.raises(InputError, match="nothing was changed"):
        install("claude-code", path, "/a/aegisctl", [])
    assert path.read_text() == text
    assert backups(path) == []


def test_the_file_mode_is_kept(tmp_path: Path) -> None:
    path = tmp_path / "settings.json"
    path.write_text("{}")
    path.chmod(0o600)
    install("claude-code", path, "/a/aegisctl", [])
    assert path.stat().st_mode & 0o777 == 0o600


@pytest.mark.parametrize(
    ("command", "ours"),
    [
        ("'/opt/my dir/aegisctl' hook claude-code || exit 2", True),
        ("aegisctl hook claude-code", True),
        ("/x/aegisctl hook codex || exit 2", False),
        ("/x/not-aegisctl hook claude-code", False),
        ("echo aegisctl hook claude-codex", False),
    ],
)
def test_only_aegisflow_commands_are_recognized_as_ours(command: str, ours: bool) -> None:
    assert is_ours(command, "claude-code") is ours


@pytest.fixture(scope="module")
def service(tmp_path_factory: pytest.TempPathFactory) -> Any:
    home = make_home(tmp_path_factory.mktemp("install"))
    with serving(home) as served:
        yield served


def installed_command(project: Path) -> str:
    settings = json.loads((project / ".claude" / "settings.json").read_text())
    return str(settings["hooks"]["PreToolUse"][-1]["hooks"][0]["command"])


def as_the_agent_runs(command: str, payload: object) -> subprocess.CompletedProcess[str]:
    """``command`` through bash, as Claude Code runs a hook, with a bare PATH."""
    env = {"PATH": "/usr/bin:/bin", "AEGISFLOW_API_KEY": AGENT_KEY}
    return subprocess.run(
        ["bash", "-c", command],
        input=json.dumps(payload),
        capture_output=True,
        text=True,
        env=env,
        check=False,
    )


def test_the_installed_command_runs_the_hook_and_fails_closed(
    service: Served, tmp_path: Path
) -> None:
    project, home = tmp_path / "project", tmp_path / "home"
    project.mkdir()
    home.mkdir()
    done = aegisctl("install", "claude-code", "--server", service.url, cwd=project, home=home)
    assert done.returncode == 0, done.stderr
    assert "installed the AegisFlow hook for claude-code" in done.stdout
    command = installed_command(project)
    assert command.startswith(str(AEGISCTL.absolute()))
    payload = {
        "session_id": "hook-installed",
        "cwd": str(project),
        "hook_event_name": "PreToolUse",
        "tool_name": "Bash",
        "tool_input": {"command": "git status"},
    }
    ran = as_the_agent_runs(command, payload)
    assert ran.returncode == 0, ran.stderr
    assert json.loads(ran.stdout)["hookSpecificOutput"]["permissionDecision"] == "allow"
    broken = command.replace(str(AEGISCTL.absolute()), str(tmp_path / "gone" / "aegisctl"))
    ran = as_the_agent_runs(broken, payload)
    assert ran.returncode == 2  # a missing executable blocks; it does not let the tool run
    assert ran.stderr
    again = aegisctl("install", "claude-code", "--server", service.url, cwd=project, home=home)
    assert "already installed" in again.stdout
    user = aegisctl("install", "claude-code", "--user", cwd=project, home=home)
    assert user.returncode == 0
    assert (home / ".claude" / "settings.json").exists()
    gone = aegisctl("uninstall", "claude-code", cwd=project, home=home)
    assert "removed the AegisFlow hook" in gone.stdout
    assert "hooks" not in json.loads((project / ".claude" / "settings.json").read_text())


def test_codex_cannot_be_installed_to_ask(tmp_path: Path) -> None:
    done = aegisctl("install", "codex", "--on-review", "ask", cwd=tmp_path, home=tmp_path)
    assert done.returncode != 0
    assert "is one of deny" in done.stderr
    assert not (tmp_path / ".codex").exists()
