"""Normalizers: the ways a tool call arrives, turned into envelopes.

Pure: no I/O. Each normalizer takes what its door received (the HTTP action JSON, a
shell command line, an MCP ``tools/call``, a file operation) plus the authenticated
actor, and returns envelopes. Envelope ids come from ``new_id``.
"""

from __future__ import annotations

import hashlib
import posixpath
import re
import shlex
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from typing import Any

from aegisflow import patches
from aegisflow.envelope import (
    CAPABILITIES,
    PROTOCOLS,
    Actor,
    Envelope,
    IdFactory,
    InvalidAction,
    envelope_from_action,
    new_envelope_id,
)
from aegisflow.inference import TARGET_ARGS, infer_capability, infer_target
from aegisflow.policy.facts import HOME, canonical_path
from aegisflow.policy.shell import (
    ParsedLine,
    SimpleCommand,
    Word,
    expand_argv,
    parse_command_line,
    words,
)

DELETE_PROGRAMS = frozenset({"rm", "rmdir", "unlink", "shred", "srm", "wipe"})
READ_PROGRAMS = words(
    "cat less more head tail grep egrep fgrep rg ag ack ls ll tree find fd wc "
    "diff cmp file stat du df pwd which whereis type echo printf sort uniq cut tr "
    "nl od xxd hexdump strings base64 jq yq sed awk column basename dirname "
    "realpath readlink date whoami id uname hostname env printenv"
)
UNPARSEABLE_TOOL = "shell.unparseable"
FUNCTION_TOOL = "shell.function"
ASSIGNMENT_TOOL = "shell.assignment"
_UNSAFE_TOOL_CHARS = re.compile(r"[^\x21-\x7e]")


def action_envelopes(
    data: object,
    *,
    actor: Actor,
    cwd: str = "",
    new_id: IdFactory = new_envelope_id,
) -> tuple[Envelope, ...]:
    """Normalize the HTTP action JSON (the seed's ``test-action`` body).

    A shell action carries a whole command line as ``parameters.command`` (``tool`` is
    then ``shell`` or ``shell.exec``), exec-style ``parameters.argv`` (``tool`` names its
    program), or nothing (a pre-normalized action such as the walkthrough's); each
    command that would run becomes its own envelope, wrappers looked through. Other
    shell parameters are refused: what is decided must be exactly what can run. A
    ``file.patch`` action carries a multi-file patch (Codex's ``apply_patch``) as
    ``parameters.patch``; each file it touches becomes its own envelope.

    Raises:
        InvalidAction: On a malformed action.
    """
    if isinstance(data, Mapping) and data.get("protocol") == "file":
        if data.get("tool") == PATCH_TOOL:
            return _patch_action(data, actor=actor, new_id=new_id)
        envelope = envelope_from_action(data, actor=actor, new_id=new_id)
        return (replace(envelope, target=canonical_path(envelope.target, cwd or None)),)
    if isinstance(data, Mapping) and data.get("protocol") == "shell":
        params = data.get("parameters") or {}
        if isinstance(params, Mapping) and "command" in params:
            return _shell_action(data, params, actor=actor, cwd=cwd, new_id=new_id)
        envelope = envelope_from_action(data, actor=actor, new_id=new_id)
        if envelope.target.startswith(("/", "~")):
            envelope = replace(envelope, target=canonical_path(envelope.target))
        if "argv" in envelope.parameters:
            return _argv_action(envelope, new_id=new_id)
        if envelope.parameters:
            raise InvalidAction(
                "shell parameters are 'command' (a command line) or 'argv' (a list); got "
                + ", ".join(sorted(envelope.parameters))
            )
        return (envelope,)
    return (envelope_from_action(data, actor=actor, new_id=new_id),)


def _shell_action(
    data: Mapping[str, Any],
    params: Mapping[str, Any],
    *,
    actor: Actor,
    cwd: str,
    new_id: IdFactory,
) -> tuple[Envelope, ...]:
    command = params["command"]
    if not isinstance(command, str):
        raise InvalidAction("parameters.command must be a string")
    if data.get("tool", "shell") not in ("shell", "shell.exec"):
        raise InvalidAction(
            "a shell action with parameters.command has tool 'shell.exec' (or none): "
            "each command in the line becomes its own envelope"
        )
    extra = set(params) - {"command"}
    if extra:
        raise InvalidAction(f"unexpected parameters with command: {', '.join(sorted(extra))}")
    checked = envelope_from_action(
        {**data, "tool": "shell.exec", "parameters": {}}, actor=actor, new_id=new_id
    )
    return shell_envelopes(
        command,
        actor=actor,
        cwd=checked.target or cwd,
        justification=checked.justification,
        task=checked.task,
        approval_ref=checked.approval_ref,
        new_id=new_id,
    )


def _argv_action(envelope: Envelope, *, new_id: IdFactory) -> tuple[Envelope, ...]:
    """A shell action given as exec-style argv: checked like the command line it equals."""
    argv = envelope.parameters["argv"]
    if not isinstance(argv, list) or not argv or not all(isinstance(a, str) for a in argv):
        raise InvalidAction("parameters.argv must be a non-empty list of strings")
    extra = set(envelope.parameters) - {"argv"}
    if extra:
        raise InvalidAction(f"unexpected parameters with argv: {', '.join(sorted(extra))}")
    expected = _tool_for(Word(posixpath.basename(argv[0])))
    if envelope.tool != expected:
        raise InvalidAction(f"tool {envelope.tool!r} does not match argv, which runs {expected!r}")
    return _envelopes(
        expand_argv(argv),
        command_line=shlex.join(argv),
        actor=envelope.actor,
        cwd=envelope.target,
        justification=envelope.justification,
        task=envelope.task,
        approval_ref=envelope.approval_ref,
        new_id=new_id,
    )


def shell_envelopes(
    command_line: str,
    *,
    actor: Actor,
    cwd: str = "",
    justification: str = "",
    task: str = "",
    approval_ref: str | None = None,
    new_id: IdFactory = new_envelope_id,
) -> tuple[Envelope, ...]:
    """One envelope per simple command the line would run, in order.

    ``cwd`` is the directory the line starts in; ``cd DIR`` within the line moves it for
    later commands (to "unknown" when ``DIR`` is computed). A line that cannot be
    parsed becomes one ``shell.unparseable`` envelope that the engine never allows.
    """
    return _envelopes(
        parse_command_line(command_line),
        command_line=command_line,
        actor=actor,
        cwd=cwd,
        justification=justification,
        task=task,
        approval_ref=approval_ref,
        new_id=new_id,
    )


def _envelopes(
    parsed: ParsedLine,
    *,
    command_line: str,
    actor: Actor,
    cwd: str,
    justification: str,
    task: str,
    approval_ref: str | None,
    new_id: IdFactory,
) -> tuple[Envelope, ...]:
    def make(tool: str, target: str, capability: str, params: dict[str, Any]) -> Envelope:
        return Envelope(
            envelope_id=new_id(),
            actor=actor,
            protocol="shell",
            tool=tool,
            target=target,
            capability=capability,
            parameters={**params, "command_line": command_line},
            justification=justification,
            approval_ref=approval_ref,
            task=task,
        )

    if parsed.error is not None:
        return (make(UNPARSEABLE_TOOL, cwd, "execute", {"parse_error": parsed.error}),)
    out: list[Envelope] = []
    start = Word(canonical_path(cwd) if cwd else "")
    nested: dict[tuple[str, ...], Word] = {}  # a cd inside "bash -c" stays inside it
    home_changed = any(_sets(c, "HOME") for c in parsed.commands)
    cdpath = any(_sets(c, "CDPATH") for c in parsed.commands)
    path_changed = any(_sets(c, "PATH") for c in parsed.commands)
    for command in parsed.commands:
        where = nested.get(command.via, start) if command.via else start
        params = _shell_parameters(command)
        if not where.known or command.chdir:
            params["cwd_known"] = False
        if home_changed:
            params["home_known"] = False  # "HOME=/proc/self; cat ~/environ"
        if path_changed:
            params["path_changed"] = True  # the program found may not be the one named
        program = command.program
        if command.function:
            tool, capability = FUNCTION_TOOL, "execute"
        elif program is None:
            tool, capability = ASSIGNMENT_TOOL, "execute"
        else:
            tool, capability = _tool_for(program), _capability_for(program)
        if "program_path" in params and where.known:
            params["program_path"] = canonical_path(params["program_path"], where.text or None)
        out.append(make(tool, where.text, capability, params))
        if program is not None and program.text in _DIRECTORY_CHANGERS:
            if command.via and set(command.via) <= _SAME_SHELL:
                start = _UNKNOWN_DIRECTORY  # "command cd DIR", "eval cd DIR": this shell
            elif command.via:
                nested[command.via] = _UNKNOWN_DIRECTORY
            else:
                start = _cd(where, command, cdpath=cdpath)
    return tuple(out)


_DIRECTORY_CHANGERS = frozenset({"cd", "pushd", "popd"})
_SAME_SHELL = frozenset({"command", "builtin", "eval", "time", "exec"})


def _sets(command: SimpleCommand, variable: str) -> bool:
    """Whether the command may set ``variable``.

    ``HOME=x cmd``, ``export HOME=x``, ``printf -v HOME ...``, ``read HOME``,
    ``: ${HOME:=x}``: any of these counts.
    """
    if any(name == variable for name, _ in command.assignments):
        return True
    words = [w.text for w in command.argv]
    program = posixpath.basename(words[0]) if words else ""
    if program in ("read", "mapfile", "readarray", "printf") and variable in words[1:]:
        return True
    return any(
        text.startswith(f"{variable}=") or f"${{{variable}:=" in text or f"${{{variable}=" in text
        for text in words[1:]
    )


_UNKNOWN_DIRECTORY = Word("$PWD", "unknown")


def _tool_for(program: Word) -> str:
    name = _UNSAFE_TOOL_CHARS.sub("_", program.text)[:200] or "_"
    return f"shell.{name}"


def _capability_for(program: Word) -> str:
    if program.text in DELETE_PROGRAMS:
        return "delete"
    if program.text in READ_PROGRAMS:
        return "read"
    return "execute"


def _shell_parameters(command: SimpleCommand) -> dict[str, Any]:
    params: dict[str, Any] = {"argv": [w.text for w in command.argv]}
    globs = [i for i, w in enumerate(command.argv) if w.kind == "glob"]
    unknown = [i for i, w in enumerate(command.argv) if w.kind == "unknown"]
    if globs:
        params["globs"] = globs
    if unknown:
        params["unknown"] = unknown
    if command.redirects:
        params["redirects"] = [
            {"op": r.op, "target": r.target.text}
            | ({} if r.target.known else {"kind": r.target.kind})
            for r in command.redirects
        ]
    if command.assignments:
        params["env"] = {name: word.text for name, word in command.assignments}
    if command.via:
        params["via"] = list(command.via)
    if command.variables:
        params["variables"] = list(command.variables)
    if command.extra_paths:
        params["wrapper_paths"] = [w.text for w in command.extra_paths]
        unknown = [k for k, w in enumerate(command.extra_paths) if not w.known]
        if unknown:
            params["wrapper_paths_unknown"] = unknown
    first = command.argv[0] if command.argv else None
    if first is not None and first.known and "/" in first.text:
        params["program_path"] = first.text  # "./cat" is not /bin/cat (made canonical later)
    if command.function:
        params["function"] = True
    return params


def _cd(where: Word, command: SimpleCommand, *, cdpath: bool = False) -> Word:
    """The working directory after ``cd``/``pushd``/``popd``; unknown unless certain.

    Certain means: it runs in the line's own shell before the commands after it (not in
    a pipeline, subshell, background job, ``||`` branch or wrapper), and its target is
    a literal directory. ``cd -`` and ``popd`` go back to a directory not tracked here.
    """
    if not command.sequential or command.argv[0].text == "popd":
        return _UNKNOWN_DIRECTORY
    args = [w for w in command.argv[1:] if w.text == "-" or not w.text.startswith("-")]
    if not args:
        return Word(HOME)
    target = args[0]
    if target.text == "-":
        return Word("$OLDPWD", "unknown")
    absolute = target.text.startswith(("/", "~"))
    explicit = target.text in (".", "..") or target.text.startswith(("/", "~", "./", "../"))
    searched = cdpath and not explicit  # cd looks the name up in CDPATH first
    if not target.known or searched or not (where.known or absolute):
        return Word(target.text, "unknown")
    return Word(canonical_path(target.text, where.text or None))


# -- MCP ----------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True, kw_only=True)
class McpServer:
    """How calls to one upstream MCP server become envelopes.

    ``name`` prefixes tool names (``github`` makes ``get_file_contents`` into
    ``github.get_file_contents``). ``target_args`` lists argument-name groups; the first
    group whose arguments are all present, joined with ``/``, is the target (``owner`` and
    ``repo`` give ``aegisflow/aegisflow``). ``capabilities`` overrides the capability that
    is otherwise inferred from the tool name (``get_*`` read, ``delete_*`` delete, ...,
    anything unrecognized ``write``).
    """

    name: str
    protocol: str = "mcp"
    target_args: tuple[tuple[str, ...], ...] = TARGET_ARGS
    capabilities: Mapping[str, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if not re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9_-]{0,63}", self.name):
            raise InvalidAction(f"MCP server name {self.name!r} must be letters, digits, _ or -")
        if self.protocol not in PROTOCOLS:
            raise InvalidAction(f"MCP server protocol {self.protocol!r} is not known")
        for tool, capability in self.capabilities.items():
            if capability not in CAPABILITIES:
                raise InvalidAction(f"capability {capability!r} for {tool} is not known")

    def capability_for(self, tool: str) -> str:
        if tool in self.capabilities:
            return self.capabilities[tool]
        return infer_capability(tool)

    def target_for(self, arguments: Mapping[str, Any]) -> str:
        target, is_path = infer_target(arguments, self.target_args)
        return canonical_path(target) if is_path else target


def mcp_envelope(
    server: McpServer,
    params: object,
    *,
    actor: Actor,
    new_id: IdFactory = new_envelope_id,
) -> Envelope:
    """Normalize the ``params`` of an MCP ``tools/call`` request.

    Raises:
        InvalidAction: If ``params`` is not ``{"name": str, "arguments": {...}}``.
    """
    if not isinstance(params, Mapping) or not isinstance(params.get("name"), str):
        raise InvalidAction("tools/call params need a string 'name'")
    if not params["name"]:
        raise InvalidAction("tools/call names an empty tool")
    arguments = params.get("arguments") or {}
    if not isinstance(arguments, Mapping):
        raise InvalidAction("tools/call arguments must be an object")
    name: str = params["name"]
    return Envelope(
        envelope_id=new_id(),
        actor=actor,
        protocol=server.protocol,
        tool=f"{server.name}.{name}",
        target=server.target_for(arguments),
        capability=server.capability_for(name),
        parameters=dict(arguments),
    )


# -- files --------------------------------------------------------------------------------

FILE_OPERATIONS = {"read": "read", "write": "write", "edit": "write", "delete": "delete"}


def file_envelope(
    operation: str,
    path: str,
    *,
    actor: Actor,
    cwd: str | None = None,
    parameters: Mapping[str, Any] | None = None,
    new_id: IdFactory = new_envelope_id,
) -> Envelope:
    """A file read, write, edit or delete, with the path made canonical.

    Raises:
        InvalidAction: On an unknown operation or an empty path.
    """
    if operation not in FILE_OPERATIONS:
        raise InvalidAction(
            f"file operation {operation!r} is not one of {', '.join(FILE_OPERATIONS)}"
        )
    if not isinstance(path, str) or not path:
        raise InvalidAction("a file operation needs a path")
    return Envelope(
        envelope_id=new_id(),
        actor=actor,
        protocol="file",
        tool=f"file.{operation}",
        target=canonical_path(path, cwd),
        capability=FILE_OPERATIONS[operation],
        parameters=dict(parameters or {}),
    )


# -- patches (Codex apply_patch) ------------------------------------------------------------

PATCH_TOOL = "file.patch"


def patch_operations(patch: str) -> list[tuple[str, str]]:
    """The ``(operation, path)`` pairs of an ``apply_patch`` patch (see :mod:`aegisflow.patches`).

    Raises:
        InvalidAction: If the text is not a patch the parser can vouch for.
    """
    try:
        return patches.operations(patch)
    except patches.PatchError as e:
        raise InvalidAction(str(e)) from None


def _patch_action(
    data: Mapping[str, Any], *, actor: Actor, new_id: IdFactory
) -> tuple[Envelope, ...]:
    """One file envelope per file a patch adds, edits, deletes or moves.

    A move is a delete of the old path and a write of the new one. Each envelope carries
    the patch's SHA-256, not its text: file contents can hold secrets, and the ledger
    keeps what it is given forever. ``parameters.resolved`` may map a path as the patch
    writes it to the absolute path it resolves to on the agent's machine (symbolic links
    followed, which only the agent's side can do); the envelope then names that path.
    """
    params = data.get("parameters") or {}
    if not isinstance(params, Mapping) or not {"patch"} <= set(params) <= {"patch", "resolved"}:
        raise InvalidAction("a file.patch action has the parameters patch and resolved")
    patch, resolved = params["patch"], params.get("resolved", {})
    if not isinstance(patch, str):
        raise InvalidAction("parameters.patch must be a string")
    if not isinstance(resolved, Mapping) or not all(
        isinstance(k, str) and isinstance(v, str) and v.startswith("/") for k, v in resolved.items()
    ):
        raise InvalidAction("parameters.resolved maps patch paths to absolute paths")
    checked = envelope_from_action(
        {**data, "capability": "write", "parameters": {}}, actor=actor, new_id=new_id
    )
    cwd = checked.target or None
    digest = hashlib.sha256(patch.encode()).hexdigest()
    out: list[Envelope] = []
    operations = patch_operations(patch)
    for k, (kind, path) in enumerate(operations):
        if kind == "move":
            moves = [("delete", operations[k - 1][1]), ("write", path)]
        else:
            moves = [({"add": "write", "update": "edit", "delete": "delete"}[kind], path)]
            if k + 1 < len(operations) and operations[k + 1][0] == "move":
                continue  # the move that follows says what happens to this file
        for operation, where in moves:
            envelope = file_envelope(
                operation,
                resolved.get(where, where),
                actor=actor,
                cwd=cwd,
                parameters={"patch_sha256": digest, "change": kind},
                new_id=new_id,
            )
            out.append(
                replace(
                    envelope,
                    justification=checked.justification,
                    task=checked.task,
                    approval_ref=checked.approval_ref,
                )
            )
    return tuple(out)
