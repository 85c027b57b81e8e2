"""``aegisctl hook <agent> | install | uninstall``: govern an agent's built-in tools.

``aegisctl hook <agent>`` itself normally runs on the fast path in
:mod:`aegisflow.cli.main`; the commands here give it its help text and run it the same
way when typer is reached (``--help`` aside).
"""

from __future__ import annotations

import shutil
import sys
from enum import Enum
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console

from aegisflow.errors import InputError
from aegisflow.hooks import AGENT_NAMES
from aegisflow.hooks import install as setup
from aegisflow.hooks.agents import AGENTS
from aegisflow.hooks.run import main as run_hook

out = Console(highlight=False, soft_wrap=True)

app = typer.Typer(
    help="Agent hooks: AegisFlow decides on the agent's built-in tools (shell, files, web).",
    no_args_is_help=True,
)

AgentName = Enum("AgentName", {name.replace("-", "_"): name for name in AGENT_NAMES}, type=str)  # type: ignore[misc]

ServerOption = Annotated[
    str | None,
    typer.Option("--server", help="Service URL (default $AEGISFLOW_URL or http://127.0.0.1:8081)"),
]
KeyFileOption = Annotated[
    str | None,
    typer.Option(
        "--key-file", help="File holding the agent's API key (default $AEGISFLOW_API_KEY)"
    ),
]
TimeoutOption = Annotated[
    float | None,
    typer.Option("--timeout", help="Seconds to wait for the service (default 5)"),
]
OnReviewOption = Annotated[
    str | None,
    typer.Option(
        "--on-review",
        help="deny (default): the agent retries after a reviewer approves; ask: the agent's"
        " user decides instead; defer (Claude Code -p runs): pause, resume after approval",
    ),
]


def _options(
    server: str | None, key_file: str | None, timeout: float | None, on_review: str | None
) -> list[str]:
    given = {
        "--server": server,
        "--key-file": key_file,
        "--timeout": None if timeout is None else f"{timeout:g}",
        "--on-review": on_review,
    }
    return [part for name, value in given.items() if value for part in (name, value)]


def _runner(agent: str) -> None:
    def command(
        server: ServerOption = None,
        key_file: KeyFileOption = None,
        timeout: TimeoutOption = None,
        on_review: OnReviewOption = None,
    ) -> None:
        raise typer.Exit(run_hook(agent, _options(server, key_file, timeout, on_review)))

    command.__doc__ = (
        f"Decide one {agent} tool call: hook JSON on stdin, the decision on stdout; exit 2"
        " (the tool does not run) when the call cannot be checked."
    )
    app.command(agent)(command)


for _agent in AGENT_NAMES:
    _runner(_agent)


ProjectOption = Annotated[
    bool,
    typer.Option("--project/--user", help="The project's settings (default) or your own"),
]
DirOption = Annotated[
    Path, typer.Option("--dir", help="The project directory (default: the current one)")
]


@app.command("install")
def install(
    agent: Annotated[AgentName, typer.Argument(help="The agent to hook")],
    project: ProjectOption = True,
    directory: DirOption = Path(),
    server: ServerOption = None,
    key_file: KeyFileOption = None,
    timeout: TimeoutOption = None,
    on_review: OnReviewOption = None,
    mcp: Annotated[
        bool,
        typer.Option(
            "--mcp/--no-mcp",
            help="Also decide MCP tools here (for MCP servers not behind aegisflow mcp-proxy)",
        ),
    ] = False,
    executable: Annotated[
        str | None,
        typer.Option("--executable", help="The aegisctl the agent runs (default: this one)"),
    ] = None,
) -> None:
    """Add the AegisFlow hook to the agent's settings, keeping everything else."""
    name = agent.value
    reviews = AGENTS[name].reviews
    if on_review is not None and on_review not in reviews:
        raise InputError(
            f"--on-review for {name} is one of {', '.join(reviews)}, not {on_review!r}"
        )
    path = setup.settings_path(name, "project" if project else "user", directory.resolve())
    command = executable or _this_aegisctl()
    change = setup.install(
        name, path, command, _options(server, key_file, timeout, on_review), mcp=mcp
    )
    _report(change, name)
    if name == "codex" and change.status != "unchanged":
        out.print("Codex runs a new or changed hook only after you trust it: run /hooks in codex.")


@app.command("uninstall")
def uninstall(
    agent: Annotated[AgentName, typer.Argument(help="The agent to unhook")],
    project: ProjectOption = True,
    directory: DirOption = Path(),
) -> None:
    """Remove the AegisFlow hook from the agent's settings, and nothing else."""
    name = agent.value
    path = setup.settings_path(name, "project" if project else "user", directory.resolve())
    _report(setup.uninstall(name, path), name)


def _report(change: setup.Change, agent: str) -> None:
    said = {
        "installed": f"installed the AegisFlow hook for {agent} in {change.path}",
        "updated": f"updated the AegisFlow hook for {agent} in {change.path}",
        "unchanged": f"the AegisFlow hook for {agent} is already installed in {change.path}",
        "removed": f"removed the AegisFlow hook for {agent} from {change.path}",
        "absent": f"no AegisFlow hook for {agent} in {change.path}; nothing changed",
    }[change.status]
    out.print(said + (f" (backup: {change.backup})" if change.backup else ""), markup=False)


def _this_aegisctl() -> str:
    """The absolute path of the running ``aegisctl``, so the agent needs no PATH for it."""
    here = Path(sys.argv[0])
    if here.name == "aegisctl" and here.exists():
        return str(here.absolute())
    found = shutil.which("aegisctl")
    if found is None:
        raise InputError("cannot find aegisctl", hint="pass --executable /path/to/aegisctl")
    return str(Path(found).absolute())
