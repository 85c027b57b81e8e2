"""Turning append requests into signed git objects: the pure half of the writer.

Pure: no I/O and no clock. A :class:`BatchBuilder` takes the current
:class:`LedgerState`, a signer and the batch's time, assigns global indices and session
sequence numbers, builds every blob, tree and signed commit, and tracks the ref updates.
Nothing in the state changes until the caller has made the batch durable and calls
:meth:`BatchBuilder.apply`, so a failed write leaves the state as it was.

Object layout (see docs/ledger-format.md):

* entry commit: tree ``{entry.json}``, parent = previous entry of the session (or the
  genesis commit), message = :func:`render.commit_message`;
* checkpoint commit on ``refs/heads/main``: tree ``{checkpoint, compact-range}``, first
  parent = previous checkpoint (or genesis), further parents = session heads that moved;
* genesis commit: tree ``{genesis.json}``, no parents.

Every commit is SSH-signed (SSHSIG, namespace ``git``) by the ledger key.
"""

from __future__ import annotations

import base64
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from aegisflow.errors import IntegrityError, SessionClosed
from aegisflow.keys import Signer
from aegisflow.ledger import gitfmt, render, sshsig
from aegisflow.ledger.checkpoint import Checkpoint, sign_checkpoint
from aegisflow.ledger.entry import (
    Entry,
    Genesis,
    canonical_body,
    encode_entry,
    format_time,
    genesis_hash,
)
from aegisflow.ledger.manifest import Manifest
from aegisflow.ledger.merkle import CompactRange, leaf_hash, root
from aegisflow.ledger.note import verifier_key
from aegisflow.ledger.storage import GENESIS_REF, MAIN_REF, GitObject, session_ref

COMMITTER_NAME = "AegisFlow Ledger"
COMMITTER_EMAIL = "ledger@aegisflow.invalid"
ENTRY_FILE = "entry.json"
GENESIS_FILE = "genesis.json"
CHECKPOINT_FILE = "checkpoint"
RANGE_FILE = "compact-range"
FILE_MODE = "100644"


@dataclass(frozen=True, slots=True)
class Head:
    """The newest entry of a session."""

    seq: int
    index: int
    entry_hash: bytes
    commit: bytes
    closed: bool = False
    time: str = ""
    """The entry's time (RFC 3339, fixed width: compares as text)."""


@dataclass(frozen=True, slots=True, kw_only=True)
class Receipt:
    """What an append returns once the entry is durable."""

    index: int
    session: str
    seq: int
    type: str
    entry_hash: str
    commit: str
    time: str


@dataclass(slots=True, kw_only=True)
class LedgerState:
    """Everything the writer keeps in memory; recoverable from the repository alone."""

    origin: str
    genesis_commit: bytes
    genesis_hash: str
    heads: dict[str, Head]
    tree: CompactRange
    checkpoint_commit: bytes
    checkpoint: Checkpoint | None
    moved: dict[str, bytes] = field(default_factory=dict)

    @property
    def size(self) -> int:
        return self.tree.size

    @property
    def uncovered(self) -> int:
        """Entries not yet under a signed checkpoint."""
        return self.tree.size - (self.checkpoint.size if self.checkpoint else 0)


SessionHistory = Callable[[bytes], list[tuple[int, int, bytes]]]
"""Given a durable head commit, the session's ``(seq, index, entry_hash)`` oldest first."""


def _ident(moment: datetime) -> str:
    return gitfmt.format_ident(COMMITTER_NAME, COMMITTER_EMAIL, int(moment.timestamp()))


def _signed_commit(
    signer: Signer, tree: bytes, parents: list[bytes], ident: str, message: str
) -> bytes:
    payload = gitfmt.commit_payload(tree, parents, ident, ident, message)
    return gitfmt.commit_with_signature(payload, sshsig.sign(payload, signer) + "\n")


class BatchBuilder:
    """Builds one group-commit batch on top of a :class:`LedgerState`."""

    def __init__(
        self,
        state: LedgerState,
        signer: Signer,
        moment: datetime,
        history: SessionHistory,
    ) -> None:
        self._state = state
        self._signer = signer
        self._history = history
        self._time = format_time(moment)
        self._ident = _ident(moment)
        self.objects: list[GitObject] = []
        self._heads: dict[str, Head] = {}
        self._pending: dict[str, list[tuple[int, int, bytes]]] = {}
        self._tree = state.tree.copy()
        self._moved = dict(state.moved)
        self._checkpoint_commit = state.checkpoint_commit
        self._checkpoint = state.checkpoint
        self.wrote_checkpoint = False

    # -- helpers ------------------------------------------------------------------

    def _add(self, kind: str, data: bytes) -> bytes:
        self.objects.append((kind, data))
        return gitfmt.object_id(kind, data)

    def head(self, session: str) -> Head | None:
        return self._heads.get(session) or self._state.heads.get(session)

    @property
    def size(self) -> int:
        return self._tree.size

    @property
    def uncovered(self) -> int:
        return self._tree.size - (self._checkpoint.size if self._checkpoint else 0)

    # -- entries ------------------------------------------------------------------

    def append(self, session: str, kind: str, body: bytes, parsed: Mapping[str, Any]) -> Receipt:
        """Add one entry whose canonical body bytes are ``body``.

        Raises:
            SessionClosed: If the session's last manifest was final.
            EntryTooLarge: If the encoded entry exceeds the size limit.
        """
        head = self.head(session)
        if head is not None and head.closed:
            raise SessionClosed(
                f"session {session} was closed by a final manifest",
                hint="start a new session id",
            )
        entry = Entry(
            ledger=self._state.origin,
            index=self._tree.size,
            session=session,
            seq=head.seq + 1 if head else 0,
            type=kind,
            prev=head.entry_hash.hex() if head else self._state.genesis_hash,
            time=self._time,
            body=parsed,
        )
        data = encode_entry(entry, body)
        digest = leaf_hash(data)
        blob = self._add("blob", data)
        tree = self._add("tree", gitfmt.encode_tree([(FILE_MODE, ENTRY_FILE, blob)]))
        parent = head.commit if head else self._state.genesis_commit
        commit = self._add(
            "commit",
            _signed_commit(
                self._signer, tree, [parent], self._ident, render.commit_message(entry, digest)
            ),
        )
        closed = kind == "manifest" and parsed.get("final") is True
        self._heads[session] = Head(entry.seq, entry.index, digest, commit, closed, entry.time)
        self._pending.setdefault(session, []).append((entry.seq, entry.index, digest))
        self._moved[session] = commit
        self._tree.append(digest)
        return Receipt(
            index=entry.index,
            session=session,
            seq=entry.seq,
            type=kind,
            entry_hash=digest.hex(),
            commit=commit.hex(),
            time=self._time,
        )

    # -- checkpoints --------------------------------------------------------------

    def checkpoint(self) -> Checkpoint:
        """Sign a checkpoint over every entry so far (no-op if nothing is uncovered)."""
        if self._checkpoint is not None and self.uncovered == 0:
            return self._checkpoint
        origin = self._state.origin
        cp = Checkpoint(origin=origin, size=self._tree.size, root=self._tree.root())
        note = sign_checkpoint(cp, self._signer, key_name=origin)
        nodes = "".join(n.hex() + "\n" for n in self._tree.nodes)
        tree = self._add(
            "tree",
            gitfmt.encode_tree(
                [
                    (FILE_MODE, CHECKPOINT_FILE, self._add("blob", note.encode())),
                    (FILE_MODE, RANGE_FILE, self._add("blob", f"{cp.size}\n{nodes}".encode())),
                ]
            ),
        )
        parents = [self._checkpoint_commit, *(self._moved[s] for s in sorted(self._moved))]
        message = checkpoint_message(cp, len(self._moved))
        self._checkpoint_commit = self._add(
            "commit", _signed_commit(self._signer, tree, parents, self._ident, message)
        )
        self._checkpoint = cp
        self._moved = {}
        self.wrote_checkpoint = True
        return cp

    # -- manifests ----------------------------------------------------------------

    def manifest(self, session: str, *, final: bool) -> Receipt:
        """Checkpoint, append a signed manifest for ``session``, checkpoint again.

        Raises:
            SessionClosed: If the session is already closed.
            IntegrityError: If the stored session history disagrees with its head.
            InvalidEntry: If the session has no entries.
        """
        head = self.head(session)
        if head is None:
            raise SessionClosed(f"session {session} has no entries to close")
        if head.closed:
            raise SessionClosed(f"session {session} is already closed")
        durable = self._state.heads.get(session)
        history = self._history(durable.commit) if durable else []
        if durable and (not history or history[-1][2] != durable.entry_hash):
            raise IntegrityError(f"stored history of session {session} disagrees with its head")
        history += self._pending.get(session, [])
        cp = self.checkpoint()
        manifest = Manifest(
            ledger=self._state.origin,
            session=session,
            first_index=history[0][1],
            last_index=history[-1][1],
            first_seq=history[0][0],
            last_seq=history[-1][0],
            count=len(history),
            session_root=root([h for _, _, h in history]),
            checkpoint_size=cp.size,
            checkpoint_root=cp.root,
            final=final,
            key_id=self._signer.public_key.key_id,
        )
        body = manifest.sign(self._signer)
        receipt = self.append(session, "manifest", canonical_body(body), body)
        self.checkpoint()
        return receipt

    # -- results ------------------------------------------------------------------

    def ref_updates(self) -> dict[str, bytes | None]:
        """Session refs first, ``main`` last, so ``main`` never runs ahead of a session."""
        refs: dict[str, bytes | None] = {
            session_ref(s): h.commit for s, h in sorted(self._heads.items())
        }
        if self._checkpoint_commit != self._state.checkpoint_commit:
            refs[MAIN_REF] = self._checkpoint_commit
        return refs

    def apply(self) -> None:
        """Fold the batch into the state; call only after the batch is durable."""
        state = self._state
        state.heads.update(self._heads)
        state.tree = self._tree
        state.moved = self._moved
        state.checkpoint_commit = self._checkpoint_commit
        state.checkpoint = self._checkpoint


def checkpoint_message(cp: Checkpoint, moved: int) -> str:
    root_b64 = base64.b64encode(cp.root).decode()
    return (
        f"checkpoint {cp.size}\n\n"
        f"Checkpoint-Size: {cp.size}\n"
        f"Checkpoint-Root: {root_b64}\n"
        f"Sessions-Moved: {moved}\n"
    )


def genesis_message(doc: Genesis) -> str:
    keys = "".join(f"Key: {k.get('fingerprint', '?')}\n" for k in doc.keys)
    return f"genesis {doc.ledger}\n\nLedger: {doc.ledger}\nFormat: {doc.v}\n{keys}"


def build_genesis(
    origin: str, signer: Signer, moment: datetime
) -> tuple[list[GitObject], dict[str, bytes | None], LedgerState]:
    """Objects, refs and initial state of a new ledger."""
    key = signer.public_key
    doc = Genesis(
        ledger=origin,
        created=format_time(moment),
        keys=(
            {
                "role": "ledger",
                "ssh": key.openssh(),
                "vkey": verifier_key(origin, key),
                "fingerprint": key.fingerprint,
            },
        ),
    )
    data = doc.canonical()
    blob = gitfmt.object_id("blob", data)
    tree_data = gitfmt.encode_tree([(FILE_MODE, GENESIS_FILE, blob)])
    tree = gitfmt.object_id("tree", tree_data)
    commit_data = _signed_commit(signer, tree, [], _ident(moment), genesis_message(doc))
    commit = gitfmt.object_id("commit", commit_data)
    objects: list[GitObject] = [("blob", data), ("tree", tree_data), ("commit", commit_data)]
    state = LedgerState(
        origin=origin,
        genesis_commit=commit,
        genesis_hash=genesis_hash(data),
        heads={},
        tree=CompactRange(),
        checkpoint_commit=commit,
        checkpoint=None,
    )
    return objects, {GENESIS_REF: commit, MAIN_REF: commit}, state
