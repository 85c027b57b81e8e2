"""Rebuilding the writer's state from the repository alone.

Pure over an :class:`~aegisflow.ledger.storage.ObjectReader`. The newest checkpoint on
``main`` carries the Merkle compact range, so reopening reads only the session heads and
the entries written after that checkpoint, not the whole ledger.

A batch is acknowledged only after its pack and its refs are durable, and its refs move
together (one ``packed-refs`` rename), so after a crash every acknowledged entry is in
the gap-free index prefix (which may also hold a last batch that was durable but not yet
acknowledged). A gap can only come from refs moved by another tool; entries past it are
dropped by rewinding their session refs (:attr:`Recovery.ref_fixes`) before the writer
continues, so indices stay unique.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from aegisflow.errors import IntegrityError, NotALedger
from aegisflow.keys import PublicKey
from aegisflow.ledger.checkpoint import Checkpoint, open_checkpoint
from aegisflow.ledger.entry import Genesis, genesis_hash
from aegisflow.ledger.manifest import parse_manifest_body
from aegisflow.ledger.merkle import CompactRange
from aegisflow.ledger.reading import StoredEntry, read_commit, read_entry, read_files
from aegisflow.ledger.sequencer import (
    CHECKPOINT_FILE,
    GENESIS_FILE,
    RANGE_FILE,
    Head,
    LedgerState,
)
from aegisflow.ledger.storage import GENESIS_REF, MAIN_REF, SESSION_PREFIX, ObjectReader


@dataclass(slots=True)
class Recovery:
    state: LedgerState
    ref_fixes: dict[str, bytes | None] = field(default_factory=dict)
    discarded: int = 0


def read_genesis(reader: ObjectReader, refs: dict[str, bytes]) -> tuple[bytes, Genesis, bytes]:
    """Return ``(commit id, genesis document, its bytes)``.

    Raises:
        NotALedger: If the repository has no AegisFlow genesis.
    """
    oid = refs.get(GENESIS_REF)
    if oid is None or MAIN_REF not in refs:
        raise NotALedger(
            "not an AegisFlow ledger: no refs/aegisflow/genesis or refs/heads/main",
            hint="create one with: aegisctl keys init && aegisflow serve (or Ledger.create)",
        )
    files = read_files(reader, read_commit(reader, oid))
    data = files.get(GENESIS_FILE)
    if data is None:
        raise NotALedger(f"genesis commit {oid.hex()} holds no {GENESIS_FILE}")
    return oid, Genesis.from_bytes(data), data


def read_checkpoint(
    reader: ObjectReader, oid: bytes, origin: str, key: PublicKey
) -> tuple[Checkpoint, CompactRange]:
    """The signed checkpoint and compact range stored in checkpoint commit ``oid``.

    Raises:
        IntegrityError: If the note does not verify or the range disagrees with it.
    """
    files = read_files(reader, read_commit(reader, oid))
    try:
        cp = open_checkpoint(files[CHECKPOINT_FILE].decode(), [(origin, key)])
        size_line, *nodes = files[RANGE_FILE].decode().splitlines()
        tree = CompactRange.from_nodes(int(size_line), [bytes.fromhex(n) for n in nodes])
    except (KeyError, ValueError, UnicodeDecodeError) as e:
        raise IntegrityError(f"checkpoint commit {oid.hex()} is malformed: {e}") from e
    if tree.size != cp.size or tree.root() != cp.root:
        raise IntegrityError(f"checkpoint commit {oid.hex()}: compact range does not match note")
    return cp, tree


def recover(reader: ObjectReader, key: PublicKey) -> Recovery:
    """Rebuild the writer state of the ledger in ``reader``.

    Steps: read the genesis; read and verify the newest checkpoint on ``main`` and its
    compact range; read every session head; walk back the entries written after that
    checkpoint; keep the gap-free prefix and rewind refs past it.

    Raises:
        NotALedger: If there is no genesis.
        IntegrityError: If the stored state is inconsistent (duplicate indices, a
            checkpoint that does not verify with the ledger key).
    """
    refs = reader.refs()
    genesis_oid, genesis, genesis_data = read_genesis(reader, refs)
    origin = genesis.ledger
    main = refs[MAIN_REF]
    if main == genesis_oid:
        checkpoint: Checkpoint | None = None
        tree = CompactRange()
    else:
        checkpoint, tree = read_checkpoint(reader, main, origin, key)
    covered = tree.size

    heads: dict[str, StoredEntry] = {}
    tail: dict[int, tuple[str, StoredEntry]] = {}
    for name, oid in refs.items():
        if not name.startswith(SESSION_PREFIX):
            continue
        session = name[len(SESSION_PREFIX) :]
        stored = read_entry(reader, oid)
        if stored.entry.session != session:
            raise IntegrityError(f"{name} points at an entry of session {stored.entry.session}")
        heads[session] = stored
        while stored.entry.index >= covered:
            if stored.entry.index in tail:
                raise IntegrityError(f"two entries claim index {stored.entry.index}")
            tail[stored.entry.index] = (session, stored)
            parent = stored.commit.parents[0]
            if parent == genesis_oid:
                break
            stored = read_entry(reader, parent)

    recovery = Recovery(
        state=LedgerState(
            origin=origin,
            genesis_commit=genesis_oid,
            genesis_hash=genesis_hash(genesis_data),
            heads={},
            tree=tree,
            checkpoint_commit=main,
            checkpoint=checkpoint,
        )
    )
    end = covered
    while end in tail:
        end += 1
    # Entries at or past the first gap were never acknowledged: rewind their sessions.
    for index in sorted(i for i in tail if i >= end):
        session, stored = tail[index]
        if heads.get(session) is None or heads[session].entry.index < index:
            continue
        parent = stored.commit.parents[0]
        if parent == genesis_oid:
            del heads[session]
            recovery.ref_fixes[SESSION_PREFIX + session] = None
        else:
            heads[session] = read_entry(reader, parent)
            recovery.ref_fixes[SESSION_PREFIX + session] = parent
    recovery.discarded = len([i for i in tail if i >= end])

    state = recovery.state
    for index in range(covered, end):
        session, stored = tail[index]
        state.tree.append(stored.entry_hash)
        state.moved[session] = heads[session].commit_id
    for session, stored in heads.items():
        body = stored.entry.body
        closed = stored.entry.type == "manifest" and parse_manifest_body(body)[0].final
        entry = stored.entry
        state.heads[session] = Head(
            entry.seq, entry.index, stored.entry_hash, stored.commit_id, closed, entry.time
        )
    return recovery
