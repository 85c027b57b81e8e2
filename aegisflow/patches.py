"""What a Codex ``apply_patch`` patch touches: its file operations, parsed strictly.

``*** Begin Patch`` ... ``*** End Patch`` with ``*** Add File: P`` (then ``+`` lines),
``*** Update File: P`` (optionally ``*** Move to: Q``, then ``@@`` hunks of `` ``, ``-``
and ``+`` lines, optionally ``*** End of File``) and ``*** Delete File: P``. A header is
recognized after leading and trailing blanks are trimmed, as Codex's own parser does, so an
indented header cannot slip past as hunk text; any line that is neither a header nor hunk
text makes the whole patch refused. What is decided must be exactly what would be applied.

Standard library only: the agent hooks use it to resolve each path on the agent's machine.
"""

from __future__ import annotations

HEADERS = {
    "*** Add File:": "add",
    "*** Update File:": "update",
    "*** Delete File:": "delete",
    "*** Move to:": "move",
}
BEGIN, END, END_OF_FILE = "*** Begin Patch", "*** End Patch", "*** End of File"


class PatchError(ValueError):
    """The text is not a patch this parser can vouch for."""


def operations(patch: str) -> list[tuple[str, str]]:
    """The ``(operation, path)`` pairs of ``patch``, in order.

    Raises:
        PatchError: On a missing envelope, an unknown ``***`` line, a line that is not
            hunk text, a header without a path, or a move that follows no update.
    """
    lines = [line.rstrip("\r") for line in patch.strip().split("\n")]
    if len(lines) < 2 or lines[0].strip() != BEGIN or lines[-1].strip() != END:
        raise PatchError(f"a patch starts with '{BEGIN}' and ends with '{END}'")
    found: list[tuple[str, str]] = []
    for number, line in enumerate(lines[1:-1], start=2):
        trimmed = line.strip()
        if trimmed.startswith("***"):
            if trimmed == END_OF_FILE:
                continue
            kind = next((op for head, op in HEADERS.items() if trimmed.startswith(head)), None)
            path = trimmed.split(":", 1)[1].strip() if kind else ""
            if kind is None or not path:
                raise PatchError(f"patch line {number} is not a file header: {line[:80]!r}")
            if kind == "move" and (not found or found[-1][0] != "update"):
                raise PatchError(f"patch line {number}: '*** Move to:' must follow an update")
            found.append((kind, path))
        elif line and line[0] not in "+- " and not line.startswith("@@"):
            raise PatchError(f"patch line {number} is neither a header nor hunk text")
        elif not found:
            raise PatchError(f"patch line {number} comes before any file header")
    if not found:
        raise PatchError("the patch changes no file")
    return found
