"""Each agent's hook payloads, turned into actions, and AegisFlow's answers in its format.

Claude Code and Codex send the same PreToolUse/PostToolUse JSON (Codex names its shell
``Bash`` and its edits ``apply_patch``); Cursor has one event per kind of call; GitHub
Copilot sends ``toolName`` and ``toolArgs``. All of them become the same actions:

* a shell command line: ``shell.exec`` with the whole line, split by the service's shell
  parser (``cd x && rm -rf .`` is two envelopes);
* a file read, write or edit: ``file.*`` on the canonical absolute path, symbolic links
  resolved here, where the file is (the service cannot see the agent's disk); what is
  written is recorded by SHA-256 and size, never copied into the ledger;
* a patch: ``file.patch``, one envelope per file it touches;
* a web fetch: ``http.get`` on the host; an MCP tool: ``<server>.<tool>``.
"""

from __future__ import annotations

import json
import os

from aegisflow import patches
from aegisflow.inference import infer_capability, infer_target
from aegisflow.sessionid import session_problem

TYPE_CHECKING = False  # not typing.TYPE_CHECKING: importing typing costs the hook 3 ms

if TYPE_CHECKING:
    from collections.abc import Callable, Mapping
    from typing import Any

    Action = dict[str, Any]


class HookError(Exception):
    """The call cannot be checked; the hook refuses it (exit 2) with this message."""


class Call:
    """What a payload asks: the action, in which session, and the agent's id for the call."""

    __slots__ = ("action", "call_id", "session")

    def __init__(self, action: Action, session: str, call_id: str | None) -> None:
        self.action = action
        self.session = session
        self.call_id = call_id


class Outcome:
    """What a Claude Code or Codex PostToolUse payload reports about a call that ran."""

    __slots__ = ("call_id", "report", "session")

    def __init__(self, call_id: str, session: str, report: dict[str, Any]) -> None:
        self.call_id = call_id
        self.session = session
        self.report = report


class Answer:
    """AegisFlow's answer to a call: ``allow``, ``deny`` or ``ask``, and what to tell."""

    __slots__ = ("decision", "reason")

    def __init__(self, decision: str, reason: str) -> None:
        self.decision = decision
        self.reason = reason


# -- actions ----------------------------------------------------------------------------------


def shell_action(command: object, cwd: str, justification: object = None) -> Action:
    if not isinstance(command, str) or not command.strip():
        raise HookError("the shell call has no command")
    action: Action = {
        "protocol": "shell",
        "tool": "shell.exec",
        "target": cwd,
        "capability": "execute",
        "parameters": {"command": command},
    }
    if isinstance(justification, str) and justification.strip():
        action["justification"] = justification[:4096]
    return action


def file_action(operation: str, path: object, cwd: str, written: object = None) -> Action:
    """A file ``read``, ``write`` or ``edit`` of ``path``; ``written`` is digested, not kept."""
    if not isinstance(path, str) or not path:
        raise HookError(f"the file {operation} names no path")
    parameters: dict[str, Any] = {}
    if written is not None:
        data = written.encode() if isinstance(written, str) else _canonical(written)
        parameters = {"content_sha256": _sha256(data), "size": len(data)}
    return {
        "protocol": "file",
        "tool": f"file.{operation}",
        "target": real_path(path, cwd),
        "capability": "read" if operation == "read" else "write",
        "parameters": parameters,
    }


def patch_action(patch: object, cwd: str) -> Action:
    """A Codex patch, with each path it touches resolved here (symbolic links followed)."""
    if not isinstance(patch, str) or not patch.strip():
        raise HookError("the patch is empty")
    try:
        paths = {path for _, path in patches.operations(patch)}
    except patches.PatchError as e:
        raise HookError(f"the patch cannot be checked: {e}") from None
    return {
        "protocol": "file",
        "tool": "file.patch",
        "target": cwd,
        "capability": "write",
        "parameters": {"patch": patch, "resolved": {p: real_path(p, cwd) for p in sorted(paths)}},
    }


def http_action(url: object) -> Action:
    from urllib.parse import urlsplit  # noqa: PLC0415 - only web fetches need it

    if not isinstance(url, str):
        raise HookError("the web fetch names no URL")
    try:
        parts = urlsplit(url)
        scheme, host = parts.scheme, (parts.hostname or "").lower()
    except ValueError:  # a malformed address, e.g. "http://[::1"
        scheme, host = "", ""
    if scheme not in ("http", "https") or not host:
        raise HookError(f"the web fetch URL is not an http(s) URL with a host: {url[:200]!r}")
    return {
        "protocol": "http",
        "tool": "http.get",
        "target": host,
        "capability": "read",
        "parameters": {"url": url},
    }


def mcp_action(server: str, tool: str, arguments: object, cwd: str) -> Action:
    if not server or not tool:
        raise HookError(f"the MCP tool {server}.{tool} has no server or tool name")
    if arguments is None:
        arguments = {}
    if not isinstance(arguments, dict):
        raise HookError("the MCP tool's arguments are not an object")
    target, is_path = infer_target(arguments)
    return {
        "protocol": "mcp",
        "tool": f"{server}.{tool}",
        "target": real_path(target, cwd) if is_path else target,
        "capability": infer_capability(tool),
        "parameters": arguments,
    }


def real_path(path: str, cwd: str) -> str:
    """``path`` made absolute against ``cwd``, with ``~`` and symbolic links resolved.

    A path in the user's home comes back as ``~/...``, the form policies and the shell
    normalizer use for home (``~/.config/**``), so a rule matches a file however the
    agent named it.
    """
    if path.startswith("~"):
        path = os.path.expanduser(path)
    real = os.path.realpath(os.path.join(cwd or "/", path))
    home = os.path.realpath(os.path.expanduser("~"))
    if home != "/" and (real == home or real.startswith(home + "/")):
        return "~" + real[len(home) :]
    return real


def _sha256(data: bytes) -> str:
    import hashlib  # noqa: PLC0415 - loads OpenSSL (3 ms); most calls never need it

    return hashlib.sha256(data).hexdigest()


def _canonical(value: object) -> bytes:
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()


# -- Claude Code and Codex --------------------------------------------------------------------

CLAUDE_INTERNAL = frozenset(
    {"Task", "Agent", "TodoWrite", "TodoRead", "ExitPlanMode", "EnterPlanMode", "spawn_agent"}
    | {"BashOutput", "KillShell", "KillBash", "ListMcpResourcesTool", "SlashCommand", "Skill"}
)
"""Tools that act only inside the agent (a sub-agent's own calls are hooked themselves)."""


def claude_action(tool: str, given: Mapping[str, Any], cwd: str) -> Action | None:
    """The action of one Claude Code (or Codex) tool call; None for an agent-internal tool.

    Raises:
        HookError: For a tool AegisFlow does not know (so it is not run unchecked).
    """
    if tool == "Bash":
        return shell_action(given.get("command"), cwd, given.get("description"))
    if tool == "apply_patch":
        return patch_action(given.get("command", given.get("input")), cwd)
    if tool == "Write":
        content = given.get("content", given.get("file_text"))
        rest = {k: v for k, v in given.items() if k not in ("file_path", "path")}
        return file_action(
            "write", given.get("file_path"), cwd, content if isinstance(content, str) else rest
        )
    if tool in ("Edit", "MultiEdit", "NotebookEdit"):
        key = "notebook_path" if tool == "NotebookEdit" else "file_path"
        edits = {k: v for k, v in given.items() if k not in (key, "path")}
        return file_action("edit", given.get(key), cwd, edits)
    if tool == "Read":
        return file_action("read", given.get("file_path"), cwd)
    if tool in ("Glob", "Grep", "LS"):
        action = file_action("read", given.get("path") or cwd, cwd)
        if isinstance(given.get("pattern"), str):
            action["parameters"] = {"pattern": given["pattern"]}
        return action
    if tool == "WebFetch":
        return http_action(given.get("url"))
    if tool == "WebSearch":
        query = given.get("query")
        if not isinstance(query, str):
            raise HookError("the web search has no query")
        return _search(query)
    if tool.startswith("mcp__"):
        server, _, name = tool[5:].partition("__")
        return mcp_action(server, name, given, cwd)
    if tool in CLAUDE_INTERNAL:
        return None
    raise HookError(f"AegisFlow does not know the tool {tool!r}, so it was not run")


def _search(query: str) -> Action:
    return {
        "protocol": "http",
        "tool": "http.get",
        "target": "web-search",
        "capability": "read",
        "parameters": {"query": query},
    }


def claude_pre(payload: Mapping[str, Any], agent: str) -> Call | None:
    tool, given = payload.get("tool_name"), payload.get("tool_input")
    if not isinstance(tool, str) or not isinstance(given, dict):
        raise HookError("the payload has no tool_name and tool_input")
    cwd = _cwd(payload.get("cwd"))
    action = claude_action(tool, given, cwd)
    if action is None:
        return None
    session = _session(payload.get("session_id"), agent, cwd)
    return Call(action, session, _text(payload.get("tool_use_id")))


def claude_post(payload: Mapping[str, Any], agent: str) -> Outcome | None:
    """The result report of a PostToolUse payload (None if the call has no id)."""
    call_id = _text(payload.get("tool_use_id"))
    tool = payload.get("tool_name")
    if call_id is None or not isinstance(tool, str) or tool in CLAUDE_INTERNAL:
        return None
    response = payload.get("tool_response")
    data = _canonical(response)
    failed = isinstance(response, dict) and bool(
        response.get("is_error") or response.get("isError") or response.get("interrupted")
    )
    report = {
        "summary": f"{tool[:80]} {'failed' if failed else 'ran'}: {len(data)} bytes of output",
        "result_sha256": _sha256(data),
        "size": len(data),
        "is_error": failed,
    }
    session = _session(payload.get("session_id"), agent, _cwd(payload.get("cwd")))
    return Outcome(call_id, session, report)


def claude_answer(answer: Answer, *, codex: bool = False) -> tuple[str, int]:
    """PreToolUse output. Codex enforces only deny: its allow is no output at all."""
    if codex and answer.decision != "deny":
        return "", 0
    output = {
        "hookSpecificOutput": {
            "hookEventName": "PreToolUse",
            "permissionDecision": answer.decision,
            "permissionDecisionReason": answer.reason,
        }
    }
    return json.dumps(output), 0


# -- Cursor -----------------------------------------------------------------------------------


def cursor_pre(payload: Mapping[str, Any], agent: str) -> Call | None:
    event = payload.get("hook_event_name")
    roots = payload.get("workspace_roots")
    root = roots[0] if isinstance(roots, list) and roots and isinstance(roots[0], str) else ""
    cwd = _cwd(payload.get("cwd") or root)
    if event == "beforeShellExecution":
        action = shell_action(payload.get("command"), cwd)
    elif event == "beforeReadFile":
        action = file_action("read", payload.get("file_path"), cwd)
    elif event == "beforeMCPExecution":
        arguments = payload.get("tool_input")
        if isinstance(arguments, str):  # documented as a JSON string
            try:
                arguments = json.loads(arguments) if arguments.strip() else {}
            except ValueError:
                raise HookError("the MCP call's tool_input is not JSON") from None
        tool = payload.get("tool_name")
        server = cursor_server(payload, root)
        action = mcp_action(server, tool if isinstance(tool, str) else "", arguments, cwd)
    else:
        raise HookError(f"AegisFlow does not handle the Cursor event {event!r}")
    return Call(action, _session(payload.get("conversation_id"), agent, cwd), None)


def cursor_server(payload: Mapping[str, Any], root: str) -> str:
    """The name Cursor's ``mcp.json`` gives the server this call goes to.

    Cursor sends the server's ``url`` or ``command``, not its name; the project's
    ``.cursor/mcp.json`` and then ``~/.cursor/mcp.json`` say which server that is.

    Raises:
        HookError: If no configured server matches (the call is not run unchecked).
    """
    url, command = payload.get("url"), payload.get("command")
    places = [os.path.join(root, ".cursor", "mcp.json")] if root else []
    places.append(os.path.expanduser("~/.cursor/mcp.json"))
    for place in places:
        try:
            with open(place, "rb") as f:
                servers = json.load(f).get("mcpServers", {})
        except (OSError, ValueError, AttributeError):
            continue
        for name, spec in servers.items() if isinstance(servers, dict) else ():
            if not isinstance(spec, dict):
                continue
            line = " ".join([str(spec.get("command", "")), *map(str, spec.get("args") or [])])
            if (url and spec.get("url") == url) or (
                command and command in (line, spec.get("command"))
            ):
                return str(name)
    raise HookError("the MCP server of this call is not in .cursor/mcp.json, so it was not run")


def cursor_answer(answer: Answer) -> tuple[str, int]:
    output = {"permission": answer.decision}
    if answer.decision != "allow":
        output["user_message"] = answer.reason
        output["agent_message"] = answer.reason
    return json.dumps(output), 0


# -- GitHub Copilot ---------------------------------------------------------------------------

COPILOT_TOOLS: dict[str, str] = {
    "bash": "Bash",
    "view": "Read",
    "create": "Write",
    "edit": "Edit",
    "str_replace_editor": "Edit",
    "glob": "Glob",
    "grep": "Grep",
    "rg": "Grep",
    "web_fetch": "WebFetch",
    "web_search": "WebSearch",
    "apply_patch": "apply_patch",
}
COPILOT_INTERNAL = frozenset({"report_intent", "update_todo", "ask_user", "task", "think"})


def copilot_pre(payload: Mapping[str, Any], agent: str) -> Call | None:
    tool, given = payload.get("toolName"), payload.get("toolArgs")
    if isinstance(given, str):  # a JSON string in the documented form
        try:
            given = json.loads(given) if given.strip() else {}
        except ValueError:
            raise HookError("toolArgs is not JSON") from None
    if not isinstance(tool, str) or not isinstance(given, dict):
        raise HookError("the payload has no toolName and toolArgs")
    if tool in COPILOT_INTERNAL:
        return None
    cwd = _cwd(payload.get("cwd"))
    name = COPILOT_TOOLS.get(tool)
    if name is None and tool.startswith("mcp__"):
        name = tool
    if name is None:
        raise HookError(f"AegisFlow does not know the Copilot tool {tool!r}, so it was not run")
    given = dict(given)
    if "path" in given and "file_path" not in given:
        given["file_path"] = given["path"]
        if name in ("Glob", "Grep"):
            given["path"] = given["file_path"]
    if tool == "str_replace_editor" and given.get("command") == "view":
        name = "Read"
    action = claude_action(name, given, cwd)
    session = _session(payload.get("sessionId"), agent, cwd)
    return None if action is None else Call(action, session, None)


def copilot_answer(answer: Answer) -> tuple[str, int]:
    output = {"permissionDecision": answer.decision}
    if answer.decision != "allow":
        output["permissionDecisionReason"] = answer.reason
    return json.dumps(output), 0


# -- the agents -------------------------------------------------------------------------------


class Agent:
    """One agent's hook dialect."""

    __slots__ = ("answer", "name", "post", "pre", "reviews")

    def __init__(
        self,
        name: str,
        pre: Callable[[Mapping[str, Any], str], Call | None],
        answer: Callable[[Answer], tuple[str, int]],
        *,
        post: Callable[[Mapping[str, Any], str], Outcome | None] | None = None,
        reviews: tuple[str, ...] = ("deny", "ask"),
    ) -> None:
        self.name = name
        self.pre = pre
        self.answer = answer
        self.post = post
        self.reviews = reviews
        """What ``--on-review`` may say for this agent: ``deny`` always; ``ask`` where the
        agent can ask its user; ``defer`` for Claude Code's non-interactive runs."""


AGENTS: dict[str, Agent] = {
    "claude-code": Agent(
        "claude-code",
        claude_pre,
        claude_answer,
        post=claude_post,
        reviews=("deny", "ask", "defer"),
    ),
    "codex": Agent(
        "codex",
        claude_pre,
        lambda a: claude_answer(a, codex=True),
        post=claude_post,
        reviews=("deny",),
    ),
    "cursor": Agent("cursor", cursor_pre, cursor_answer),
    "copilot": Agent("copilot", copilot_pre, copilot_answer),
}


# -- helpers ----------------------------------------------------------------------------------


def _cwd(value: object) -> str:
    if isinstance(value, str) and value.startswith("/"):
        return os.path.normpath(value)
    return os.getcwd()


def _text(value: object) -> str | None:
    return value if isinstance(value, str) and value else None


def _session(given: object, agent: str, cwd: str) -> str:
    """``$AEGISFLOW_SESSION``, else the agent's own session id, else one per directory.

    An id the service would refuse (or that could smuggle a header line) is replaced by
    a stable digest of it, so retries of a call still land in the same session.
    """
    chosen = os.environ.get("AEGISFLOW_SESSION") or _text(given)
    if chosen is None:
        return f"{agent}-{_sha256(cwd.encode())[:16]}"
    if session_problem(chosen) is None:
        return chosen
    return f"{agent}-{_sha256(chosen.encode())[:16]}"
