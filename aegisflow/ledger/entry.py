"""Ledger entries, the genesis document and their canonical bytes.

Pure: no I/O, no clock (callers pass times in). An entry is stored as its RFC 8785
bytes; ``entry_hash = SHA-256(0x00 || bytes)`` is both the session hash-chain link and
the RFC 6962 Merkle leaf of the global log. Parsing is strict: stored bytes must be
exactly the canonical encoding of what they decode to, so no two implementations can
read one entry differently (duplicate keys, floats, stray whitespace are refused).
"""

from __future__ import annotations

import functools
import json
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import rfc8785

from aegisflow.canonical import MAX_SAFE_INT, canonical_bytes, sha256
from aegisflow.errors import EntryTooLarge, InvalidEntry, InvalidSessionId, MalformedData
from aegisflow.sessionid import session_problem

FORMAT_VERSION = 1
MAX_ENTRY_BYTES = 64 * 1024
"""Largest canonical entry accepted (bytes). Bodies carry digests, not payloads."""

_TYPE_RE = re.compile(r"[a-z][a-z0-9_]{0,31}")
_ORIGIN_RE = re.compile(r"[A-Za-z0-9][A-Za-z0-9._/:-]{0,254}")
_HEX64_RE = re.compile(r"[0-9a-f]{64}")
_ASTRAL = re.compile(rb"[\xf0-\xf4]")
"""Lead bytes of 4-byte UTF-8 sequences: characters outside the BMP."""
_TIME_RE = re.compile(
    r"[0-9]{4}-(?:0[1-9]|1[0-2])-(?:0[1-9]|[12][0-9]|3[01])"
    r"T(?:[01][0-9]|2[0-3]):[0-5][0-9]:[0-5][0-9]\.[0-9]{6}Z"
)
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)

ENTRY_TYPES = frozenset(
    {"envelope", "decision", "approval", "denial", "credential", "result", "manifest", "key"}
)
"""Types the ledger knows. Others matching ``[a-z][a-z0-9_]*`` are accepted and stored."""


def validate_session_id(session: object) -> str:
    """Return ``session`` if it is a safe session id, else raise.

    A session id becomes a git ref name (``refs/sessions/<id>``) and a file name, so it
    is restricted to ASCII letters, digits, ``.``, ``_`` and ``-``, starts with a letter
    or digit, is at most 128 characters, contains no ``..`` and does not end in ``.`` or
    ``.lock``. Unicode look-alikes, separators and control characters are refused.

    Raises:
        InvalidSessionId: With the rule that was broken.
    """
    if not isinstance(session, str):
        raise InvalidSessionId(f"session id must be a string, got {type(session).__name__}")
    _check_session_id(session)
    return session


@functools.lru_cache(maxsize=4096)
def _check_session_id(session: str) -> None:
    # Cached: a verifier sees each session id once per entry of the session.
    problem = session_problem(session)
    if problem is not None:
        raise InvalidSessionId(problem)


def validate_type(kind: object) -> str:
    """Return ``kind`` if it is a valid entry type name.

    Raises:
        InvalidEntry: If it is not ``[a-z][a-z0-9_]{0,31}``.
    """
    if not isinstance(kind, str) or not _TYPE_RE.fullmatch(kind):
        raise InvalidEntry(f"entry type {kind!r} is not [a-z][a-z0-9_]{{0,31}}")
    return kind


def validate_origin(origin: object) -> str:
    """Return ``origin`` if it is a valid ledger origin (the checkpoint origin line).

    Raises:
        InvalidEntry: If it is empty, too long or has characters outside
            ``[A-Za-z0-9._/:-]``.
    """
    if not isinstance(origin, str) or not _ORIGIN_RE.fullmatch(origin):
        raise InvalidEntry(f"ledger origin {origin!r} must be 1-255 characters of [A-Za-z0-9._/:-]")
    return origin


def format_time(moment: datetime) -> str:
    """RFC 3339 UTC with microseconds: ``2026-04-06T14:22:01.000000Z``.

    Raises:
        InvalidEntry: If ``moment`` is naive.
    """
    if moment.tzinfo is None:
        raise InvalidEntry("entry times must be timezone-aware")
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


@functools.lru_cache(maxsize=4096)
def parse_time(text: str) -> datetime:
    """Inverse of :func:`format_time` (cached: entries of one batch share their time).

    Raises:
        MalformedData: If ``text`` is not in that exact form.
    """
    if not _TIME_RE.fullmatch(text):
        raise MalformedData(f"time {text!r} is not YYYY-MM-DDTHH:MM:SS.ffffffZ")
    try:
        moment = datetime.fromisoformat(text)
    except ValueError as e:
        raise MalformedData(f"time {text!r} is not a valid date") from e
    if moment < _EPOCH:
        raise MalformedData(f"time {text!r} is before 1970")
    return moment


def _validate_time(value: object, what: str) -> None:
    if not isinstance(value, str):
        raise InvalidEntry(f"{what} time must be a string")
    try:
        parse_time(value)
    except MalformedData as e:
        raise InvalidEntry(f"{what} {e.message}") from e


@dataclass(frozen=True, slots=True, kw_only=True)
class Entry:
    """One ledger entry. ``body`` must not be mutated after construction."""

    ledger: str
    index: int
    session: str
    seq: int
    type: str
    prev: str
    time: str
    body: Mapping[str, Any] = field(hash=False)
    v: int = FORMAT_VERSION

    def __post_init__(self) -> None:
        if type(self.v) is not int or self.v != FORMAT_VERSION:
            raise InvalidEntry(f"entry format version {self.v!r} is not {FORMAT_VERSION}")
        validate_origin(self.ledger)
        validate_session_id(self.session)
        validate_type(self.type)
        for name in ("index", "seq"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 0:
                raise InvalidEntry(f"entry {name} must be a non-negative integer")
        if not isinstance(self.prev, str) or not _HEX64_RE.fullmatch(self.prev):
            raise InvalidEntry("entry prev must be 64 lowercase hex characters")
        _validate_time(self.time, "entry")
        if not isinstance(self.body, Mapping):
            raise InvalidEntry("entry body must be a JSON object")

    def to_dict(self) -> dict[str, Any]:
        return {
            "v": self.v,
            "ledger": self.ledger,
            "index": self.index,
            "session": self.session,
            "seq": self.seq,
            "type": self.type,
            "prev": self.prev,
            "time": self.time,
            "body": dict(self.body),
        }

    def canonical(self) -> bytes:
        """The RFC 8785 bytes that are stored and hashed.

        Raises:
            InvalidEntry: If the body cannot be encoded canonically.
            EntryTooLarge: If the encoding exceeds :data:`MAX_ENTRY_BYTES`.
        """
        return encode_entry(self, canonical_body(self.body))

    @classmethod
    def from_bytes(cls, data: bytes) -> Entry:
        """Parse stored entry bytes, requiring them to be canonical.

        Raises:
            MalformedData: If ``data`` is not JSON, not canonical, too large or not a
                valid entry.
        """
        if len(data) > MAX_ENTRY_BYTES:
            raise MalformedData(f"entry is {len(data)} bytes; the limit is {MAX_ENTRY_BYTES}")
        obj = decode_canonical(data)
        if not isinstance(obj, dict) or set(obj) != _ENTRY_KEYS:
            raise MalformedData("entry object does not have exactly the entry fields")
        try:
            return cls(**obj)
        except (InvalidEntry, TypeError) as e:
            raise MalformedData(f"invalid entry: {e}") from e


_ENTRY_KEYS = frozenset({"v", "ledger", "index", "session", "seq", "type", "prev", "time", "body"})


def canonical_body(body: Mapping[str, Any]) -> bytes:
    """Canonical bytes of an entry body (a JSON object without floats).

    Raises:
        InvalidEntry: If ``body`` is not an object or cannot be encoded canonically.
        EntryTooLarge: If it alone exceeds :data:`MAX_ENTRY_BYTES`.
    """
    if not isinstance(body, Mapping):
        raise InvalidEntry("entry body must be a JSON object")
    data = canonical_bytes(body)
    if len(data) > MAX_ENTRY_BYTES:
        raise EntryTooLarge(
            f"entry body is {len(data)} bytes; the limit is {MAX_ENTRY_BYTES}",
            hint="record large payloads by digest and size, not inline",
        )
    return data


def encode_entry(entry: Entry, body: bytes) -> bytes:
    """Canonical entry bytes from an already-canonical body.

    The fixed fields are ASCII-safe strings and integers, and their keys sort as written
    here (``body`` < ``index`` < ... < ``v``), so concatenation yields exactly the RFC 8785
    encoding of :meth:`Entry.to_dict` without re-encoding the body. A test holds this
    equal to ``rfc8785.dumps``.

    Raises:
        EntryTooLarge: If the result exceeds :data:`MAX_ENTRY_BYTES`.
    """
    data = b"".join(
        (
            b'{"body":',
            body,
            b',"index":%d,"ledger":"%s","prev":"%s","seq":%d,"session":"%s","time":"%s"'
            b',"type":"%s","v":%d}'
            % (
                entry.index,
                entry.ledger.encode(),
                entry.prev.encode(),
                entry.seq,
                entry.session.encode(),
                entry.time.encode(),
                entry.type.encode(),
                entry.v,
            ),
        )
    )
    if len(data) > MAX_ENTRY_BYTES:
        raise EntryTooLarge(
            f"entry is {len(data)} bytes; the limit is {MAX_ENTRY_BYTES}",
            hint="record large payloads by digest and size, not inline",
        )
    return data


def decode_canonical(data: bytes) -> Any:
    """Decode JSON bytes and require them to be their own RFC 8785 encoding.

    Floats, NaN and integers outside the I-JSON range are refused while parsing. The
    comparison uses ``json.dumps(sort_keys=True)``, which equals RFC 8785 for such values
    unless a character outside the BMP occurs (code point and UTF-16 key orders can then
    differ): those are re-encoded with ``rfc8785``. Duplicate keys, whitespace, escapes
    that are not minimal and unsorted keys all change the bytes, so they are refused.

    Raises:
        MalformedData: If ``data`` is not UTF-8 JSON or not canonical.
    """
    try:
        obj = json.loads(
            data, parse_float=_refuse_float, parse_constant=_refuse_float, parse_int=_safe_int
        )
        fast = json.dumps(obj, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
        encoded = fast.encode()
    except (ValueError, RecursionError) as e:  # UnicodeError is a ValueError
        raise MalformedData(f"not canonical JSON: {e}") from e
    if encoded == data and (data.isascii() or not _ASTRAL.search(data)):
        return obj
    try:
        canonical = bytes(rfc8785.dumps(obj))
    except (rfc8785.CanonicalizationError, ValueError) as e:
        raise MalformedData(f"not canonical JSON: {e}") from e
    if canonical != data:
        raise MalformedData("bytes are not the canonical (RFC 8785) encoding of their value")
    return obj


def _safe_int(text: str) -> int:
    value = int(text)
    if not -MAX_SAFE_INT <= value <= MAX_SAFE_INT:
        raise ValueError(f"integer {text} is outside the I-JSON range")
    return value


def _refuse_float(text: str) -> Any:
    raise ValueError(f"number {text} is not an integer")


# -- genesis -------------------------------------------------------------------------


@dataclass(frozen=True, slots=True, kw_only=True)
class Genesis:
    """The ledger's first commit: origin, format version and its public keys.

    The keys recorded here are informational: verifiers trust only keys given to them.
    """

    ledger: str
    created: str
    keys: tuple[Mapping[str, str], ...]
    v: int = FORMAT_VERSION

    def __post_init__(self) -> None:
        if type(self.v) is not int or self.v != FORMAT_VERSION:
            raise InvalidEntry(f"genesis format version {self.v!r} is not {FORMAT_VERSION}")
        validate_origin(self.ledger)
        _validate_time(self.created, "genesis")
        if not all(
            isinstance(k, Mapping) and all(isinstance(v, str) for v in k.values())
            for k in self.keys
        ):
            raise InvalidEntry("genesis keys must be objects of strings")

    def canonical(self) -> bytes:
        return canonical_bytes(
            {
                "type": "genesis",
                "v": self.v,
                "ledger": self.ledger,
                "created": self.created,
                "keys": [dict(k) for k in self.keys],
            }
        )

    @classmethod
    def from_bytes(cls, data: bytes) -> Genesis:
        """Parse a stored genesis document.

        Raises:
            MalformedData: If it is not a canonical, valid genesis document.
        """
        obj = decode_canonical(data)
        if (
            not isinstance(obj, dict)
            or obj.get("type") != "genesis"
            or set(obj) != {"type", "v", "ledger", "created", "keys"}
            or not isinstance(obj["keys"], list)
        ):
            raise MalformedData("not an AegisFlow genesis document")
        try:
            return cls(
                ledger=obj["ledger"],
                created=obj["created"],
                keys=tuple(obj["keys"]),
                v=obj["v"],
            )
        except (InvalidEntry, TypeError) as e:
            raise MalformedData(f"invalid genesis document: {e}") from e


def genesis_hash(genesis_bytes: bytes) -> str:
    """``SHA-256(bytes)`` in hex: the ``prev`` of every session's first entry.

    No 0x00 prefix, so it can never equal the leaf hash of the same bytes.
    """
    return sha256(genesis_bytes).hex()
