"""Reading ledger objects back: commits, their files, entries and session histories.

Pure over an :class:`~aegisflow.ledger.storage.ObjectReader`; nothing here trusts a
trailer or an object id for content: entry hashes are recomputed from the stored bytes.
"""

from __future__ import annotations

from dataclasses import dataclass

from aegisflow.errors import MalformedData, NotALedger, UnknownSession
from aegisflow.ledger import gitfmt
from aegisflow.ledger.entry import Entry
from aegisflow.ledger.merkle import leaf_hash
from aegisflow.ledger.sequencer import ENTRY_FILE
from aegisflow.ledger.storage import GENESIS_REF, SESSION_PREFIX, ObjectReader


def read_commit(reader: ObjectReader, oid: bytes) -> gitfmt.ParsedCommit:
    """Read and parse commit ``oid``.

    Raises:
        ObjectMissing: If it is absent.
        MalformedData: If it is not a well-formed commit.
    """
    kind, data = reader.read(oid)
    if kind != "commit":
        raise MalformedData(f"object {oid.hex()} is a {kind}, not a commit")
    return gitfmt.parse_commit(data)


def read_files(reader: ObjectReader, commit: gitfmt.ParsedCommit) -> dict[str, bytes]:
    """The blobs at the top of ``commit``'s tree, by name (subtrees are refused).

    Raises:
        ObjectMissing: If the tree or a blob is absent.
        MalformedData: If the tree is malformed or holds anything but blobs.
    """
    kind, data = reader.read(commit.tree)
    if kind != "tree":
        raise MalformedData(f"object {commit.tree.hex()} is a {kind}, not a tree")
    files: dict[str, bytes] = {}
    for mode, name, oid in gitfmt.parse_tree(data):
        blob_kind, blob = reader.read(oid)
        if mode != "100644" or blob_kind != "blob":
            raise MalformedData(f"tree entry {name!r} is not a regular file")
        files[name] = blob
    return files


@dataclass(frozen=True, slots=True)
class StoredEntry:
    """An entry commit as read back, with its recomputed entry hash."""

    commit_id: bytes
    commit: gitfmt.ParsedCommit
    data: bytes
    entry: Entry
    entry_hash: bytes


def read_entry(reader: ObjectReader, oid: bytes) -> StoredEntry:
    """Read the entry held by commit ``oid``.

    Raises:
        ObjectMissing: If an object is absent.
        MalformedData: If the commit does not hold exactly one valid entry.
    """
    commit = read_commit(reader, oid)
    files = read_files(reader, commit)
    if set(files) != {ENTRY_FILE}:
        raise MalformedData(f"commit {oid.hex()} does not hold exactly {ENTRY_FILE}")
    data = files[ENTRY_FILE]
    return StoredEntry(oid, commit, data, Entry.from_bytes(data), leaf_hash(data))


def session_history(
    reader: ObjectReader, head: bytes, genesis: bytes
) -> list[tuple[int, int, bytes]]:
    """``(seq, index, entry_hash)`` of a session from its first entry to ``head``.

    Raises:
        MalformedData: If the chain does not lead back to ``genesis`` with one parent
            per commit.
        ObjectMissing: If an object is absent.
    """
    out: list[tuple[int, int, bytes]] = []
    oid = head
    while oid != genesis:
        stored = read_entry(reader, oid)
        out.append((stored.entry.seq, stored.entry.index, stored.entry_hash))
        if len(stored.commit.parents) != 1:
            raise MalformedData(f"entry commit {oid.hex()} does not have exactly one parent")
        oid = stored.commit.parents[0]
    out.reverse()
    return out


def _require_ledger(refs: dict[str, bytes]) -> None:
    if GENESIS_REF not in refs:
        raise NotALedger(f"not an AegisFlow ledger: no {GENESIS_REF}")


@dataclass(frozen=True, slots=True)
class SessionInfo:
    """A session as listed by ``aegisctl evidence sessions``."""

    session: str
    head: bytes
    entries: int
    last_index: int
    last_type: str
    last_time: str
    closed: bool


def list_sessions(reader: ObjectReader) -> list[SessionInfo]:
    """Every session ref with its head entry, sorted by session id.

    Raises:
        MalformedData: If a head commit does not hold a valid entry.
        ObjectMissing: If a head object is absent.
    """
    refs = reader.refs()
    _require_ledger(refs)
    out = []
    for name, oid in sorted(refs.items()):
        if not name.startswith(SESSION_PREFIX):
            continue
        head = read_entry(reader, oid).entry
        out.append(
            SessionInfo(
                session=name[len(SESSION_PREFIX) :],
                head=oid,
                entries=head.seq + 1,
                last_index=head.index,
                last_type=head.type,
                last_time=head.time,
                closed=head.type == "manifest" and head.body.get("final") is True,
            )
        )
    return out


def session_entries(reader: ObjectReader, session: str) -> list[StoredEntry]:
    """The entries of ``session``, oldest first, following git parents from its ref.

    Raises:
        UnknownSession: If the session has no ref.
        MalformedData: If the chain is malformed.
        ObjectMissing: If an object is absent.
    """
    refs = reader.refs()
    _require_ledger(refs)
    head = refs.get(SESSION_PREFIX + session)
    if head is None:
        raise UnknownSession(f"no session {session!r} in this ledger")
    return entries_back_from(reader, head, refs[GENESIS_REF])


def entries_back_from(
    reader: ObjectReader, head: bytes, genesis: bytes, *, since: str | None = None
) -> list[StoredEntry]:
    """The entries from ``genesis`` (excluded) to ``head``, oldest first.

    With ``since``, the walk back stops at the first entry older than it: a session's
    newest entries only, cheap on a long history (entry times never decrease along a
    session).

    Raises:
        MalformedData: If the chain is malformed.
        ObjectMissing: If an object is absent.
    """
    out: list[StoredEntry] = []
    oid = head
    while oid != genesis:
        stored = read_entry(reader, oid)
        if since is not None and stored.entry.time < since:
            break
        out.append(stored)
        if len(stored.commit.parents) != 1:
            raise MalformedData(f"entry commit {oid.hex()} does not have exactly one parent")
        oid = stored.commit.parents[0]
    out.reverse()
    return out
