"""Human-readable text derived from entries: commit messages and verify lines.

Pure. Commit messages are part of the format: the verifier re-renders the message of
every entry commit from the entry and requires byte equality, so ``git log`` can never
say something the signed entry does not. Everything taken from a body is agent-supplied
and untrusted: it is reduced to one printable line of bounded length before it reaches a
subject or trailer, so a tool name cannot forge a trailer or a second log line.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from typing import Any

from aegisflow.ledger.entry import Entry

FIELD_LIMIT = 120
"""Longest rendering of one body field in a subject or trailer (characters)."""

_VERBS = {"approval": "approve", "denial": "deny"}

# Body fields surfaced as trailers, in this order, when present.
_BODY_TRAILERS = (
    ("Envelope", "envelope_id"),
    ("Decision", "decision"),
    ("Rule", "matched_rule"),
    ("Policy", "policy"),
    ("Reviewer", "reviewer"),
)


_UNSAFE = re.compile("[\x00-\x1f\x7f-\x9f\u200e\u200f\u2028\u2029\u202a-\u202e\u2066-\u2069]")
"""Characters escaped in rendered fields: C0/C1 controls, DEL, line and paragraph
separators, bidirectional controls. A fixed set, so rendering does not depend on the
Unicode version of the Python that runs it."""


def one_line(value: Any, limit: int = FIELD_LIMIT) -> str:
    """Render ``value`` as a single safe line of at most ``limit`` characters.

    Strings are used as they are; other values as compact, key-sorted JSON. Characters
    in :data:`_UNSAFE` become ``\\uXXXX``; longer results are cut to ``limit - 3``
    characters plus ``...``.
    """
    if isinstance(value, str) and len(value) <= limit and not _UNSAFE.search(value):
        return value
    text = (
        value
        if isinstance(value, str)
        else json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    )
    out = _UNSAFE.sub(lambda m: f"\\u{ord(m.group()):04x}", text)
    if len(out) > limit:
        out = out[: limit - 3] + "..."
    return out


def _field(body: Mapping[str, Any], key: str) -> str | None:
    value = body.get(key)
    if value is None or value == "":
        return None
    return one_line(value)


def subject(entry: Entry) -> str:
    """The first line of an entry's commit message.

    ``allow github.get_file_contents aegisflow/aegisflow`` for decisions, ``approve
    github.create_pull_request aegisflow/aegisflow by alice`` for approvals, ``manifest
    sess-1 7 entries`` for manifests; otherwise the type, tool and target present.
    """
    body = entry.body
    if entry.type == "manifest":
        count = _field(body, "count") or "?"
        return f"manifest {entry.session} {count} entries"
    verb = (_field(body, "decision") if entry.type == "decision" else None) or _VERBS.get(
        entry.type, entry.type
    )
    words = [verb]
    words += [w for w in (_field(body, "tool"), _field(body, "target")) if w]
    if entry.type == "result" and (summary := _field(body, "summary")):
        words.append(summary)
    if reviewer := _field(body, "reviewer"):
        words += ["by", reviewer]
    return " ".join(words)


def commit_message(entry: Entry, entry_hash: bytes) -> str:
    """The full commit message: subject, blank line, trailers, final newline."""
    trailers = [
        ("Entry-Hash", entry_hash.hex()),
        ("Prev-Entry", entry.prev),
        ("Session", entry.session),
        ("Seq", str(entry.seq)),
        ("Index", str(entry.index)),
        ("Type", entry.type),
    ]
    for name, key in _BODY_TRAILERS:
        if (value := _field(entry.body, key)) is not None:
            trailers.append((name, value))
    lines = [subject(entry), ""] + [f"{k}: {v}" for k, v in trailers]
    return "\n".join(lines) + "\n"


def parse_trailers(message: str) -> dict[str, str]:
    """Trailers of the last paragraph of a commit message (later keys win)."""
    paragraph = message.rstrip("\n").rsplit("\n\n", 1)[-1]
    out: dict[str, str] = {}
    for line in paragraph.splitlines():
        key, sep, value = line.partition(": ")
        if sep and key and " " not in key:
            out[key] = value
    return out


def verify_line(entry: Entry) -> str | None:
    """The line ``aegisctl evidence verify`` prints for an entry, or None to skip it.

    ``envelope <id> allow github.get_file_contents``, ``envelope <id> approve alice``,
    ``envelope <id> result pr/1247``. Manifests are summarized separately.
    """
    body = entry.body
    if entry.type == "manifest":
        return None
    envelope = _field(body, "envelope_id") or "-"
    if entry.type == "decision":
        what = [_field(body, "decision") or "?", _field(body, "tool")]
    elif entry.type in _VERBS:
        what = [_VERBS[entry.type], _field(body, "reviewer")]
    elif entry.type == "result":
        what = ["result", _field(body, "summary") or _field(body, "tool")]
    elif entry.type == "credential":
        what = ["credential", _field(body, "scope") or _field(body, "credential_type")]
    else:
        what = [entry.type, _field(body, "tool")]
    return " ".join(["envelope", envelope, *(w for w in what if w)])
