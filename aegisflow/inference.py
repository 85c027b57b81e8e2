"""What an MCP tool call says about itself: its capability and its target.

Shared by the MCP bridge and the agent hooks (which see MCP calls as ``mcp__server__tool``),
so both name the same call the same way. Standard library only: the hooks import it on
their fast path.
"""

from __future__ import annotations

import re

TYPE_CHECKING = False  # not typing.TYPE_CHECKING: importing typing costs the hook 3 ms

if TYPE_CHECKING:
    from collections.abc import Mapping
    from typing import Any

VERBS: dict[str, str] = {
    "delete": "delete",
    "remove": "delete",
    "drop": "delete",
    "destroy": "delete",
    "purge": "delete",
    "deploy": "deploy",
    "release": "deploy",
    "publish": "deploy",
    "approve": "approve",
    "run": "execute",
    "exec": "execute",
    "execute": "execute",
    "get": "read",
    "list": "read",
    "search": "read",
    "read": "read",
    "fetch": "read",
    "query": "read",
    "describe": "read",
    "show": "read",
    "view": "read",
    "find": "read",
}


def infer_capability(tool: str) -> str:
    """The capability a tool's leading verb names (``delete_file`` deletes).

    A tool whose verb is not known is taken to ``write``: it may change things.
    """
    verb = re.split(r"[_.\-]", tool.lower(), maxsplit=1)[0]
    return VERBS.get(verb, "write")


TARGET_ARGS: tuple[tuple[str, ...], ...] = (
    ("owner", "repo"),
    ("repository",),
    ("repo",),
    ("path",),
    ("file_path",),
    ("url",),
    ("uri",),
)
"""Argument-name groups; the first whose arguments are all present names the target."""
PATH_GROUPS = frozenset({("path",), ("file_path",)})


def infer_target(
    arguments: Mapping[str, Any], groups: tuple[tuple[str, ...], ...] = TARGET_ARGS
) -> tuple[str, bool]:
    """The target the arguments name (joined with ``/``) and whether it is a file path."""
    for group in groups:
        values = [arguments.get(name) for name in group]
        if all(isinstance(v, str) and v for v in values):
            return "/".join(str(v) for v in values), group in PATH_GROUPS
    return "", False
