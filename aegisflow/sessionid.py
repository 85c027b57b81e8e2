"""The session id rule, in one place: the ledger enforces it, the agent hooks pre-check it.

A session id becomes a git ref name (``refs/sessions/<id>``) and a file name, so it is
ASCII letters, digits, ``.``, ``_`` and ``-``, starts with a letter or digit, is at most
:data:`MAX_SESSION_ID` characters, contains no ``..`` and does not end in ``.`` or
``.lock``. Standard library only: the hooks import it on their fast path.
"""

from __future__ import annotations

import re

MAX_SESSION_ID = 128
_SESSION_RE = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]*")


def session_problem(session: str) -> str | None:
    """What is wrong with ``session`` as a session id, or None if nothing is."""
    shown = ascii(session[:40]) + ("..." if len(session) > 40 else "")
    if not session:
        return "session id is empty"
    if len(session) > MAX_SESSION_ID:
        return f"session id is {len(session)} characters; the limit is {MAX_SESSION_ID}"
    if not _SESSION_RE.fullmatch(session):
        return (
            f"session id {shown} has characters outside [A-Za-z0-9._-] "
            "or does not start with a letter or digit"
        )
    if ".." in session or session.endswith((".", ".lock")):
        return f"session id {shown} contains '..' or ends in '.' or '.lock'"
    return None
