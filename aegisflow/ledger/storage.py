"""The storage seam of the ledger: what the writer and the verifier need from a repository.

The ledger speaks git objects and refs. :class:`ObjectReader` is all the verifier needs;
:class:`Storage` adds the one durable write the writer needs. :class:`MemoryStorage`
implements both in memory for fast unit tests (no I/O); ``gitstore.GitStorage`` is the
real thing and the only module that imports pygit2.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Protocol

from aegisflow.errors import MalformedData, ObjectMissing, OperationalError
from aegisflow.ledger.gitfmt import object_id

MAIN_REF = "refs/heads/main"
GENESIS_REF = "refs/aegisflow/genesis"
SESSION_PREFIX = "refs/sessions/"

GitObject = tuple[str, bytes]
"""``(kind, data)`` with kind one of ``blob``, ``tree``, ``commit``."""


def session_ref(session: str) -> str:
    return SESSION_PREFIX + session


class ObjectReader(Protocol):
    """Read access to a git repository.

    A reader that checks every object's bytes against its id may say so with a true
    ``verifies_ids`` attribute; the verifier checks ids itself otherwise.
    """

    def read(self, oid: bytes) -> GitObject:
        """Return ``(kind, data)`` of object ``oid`` (20 raw bytes).

        Raises:
            ObjectMissing: If there is no such object.
            MalformedData: If the stored object is corrupt.
        """
        ...

    def refs(self) -> dict[str, bytes]:
        """All direct refs, name to object id (symbolic refs such as HEAD excluded)."""
        ...


class Storage(ObjectReader, Protocol):
    """A repository the single writer appends to."""

    def journal(self, objects: Sequence[GitObject], refs: Mapping[str, bytes | None]) -> None:
        """Make a batch durable ahead of :meth:`write`, which follows with the same batch.

        From its return the batch survives a power loss (it is written to the
        repository on the next open if :meth:`write` never happens), and readers of
        this storage in other threads see it once :meth:`write` is done.

        Raises:
            OperationalError: If the batch cannot be made durable.
        """
        ...

    def write(self, objects: Sequence[GitObject], refs: Mapping[str, bytes | None]) -> None:
        """Durably store ``objects``, then point ``refs`` at their new ids, in order.

        ``None`` deletes a ref. Returns only when objects and refs survive a power loss.

        Raises:
            OperationalError: If the write fails; the caller must stop writing.
        """
        ...

    def close(self) -> None: ...


class MemoryStorage:
    """Objects and refs in dictionaries. ``fail_after`` injects write failures."""

    verifies_ids = True

    def __init__(self) -> None:
        self.objects: dict[bytes, GitObject] = {}
        self.ref_map: dict[str, bytes] = {}
        self.writes = 0
        self.fail_after: int | None = None
        self._journaled = False

    def read(self, oid: bytes) -> GitObject:
        try:
            kind, data = self.objects[oid]
        except KeyError:
            raise ObjectMissing(f"object {oid.hex()} is missing") from None
        # As git (libgit2 strict hash verification) does: stored bytes must hash to the id.
        if object_id(kind, data) != oid:
            raise MalformedData(f"object {oid.hex()} is corrupt: object hash mismatch")
        return kind, data

    def refs(self) -> dict[str, bytes]:
        return dict(self.ref_map)

    def journal(self, objects: Sequence[GitObject], refs: Mapping[str, bytes | None]) -> None:
        """Memory has no durability to stage: the batch is stored at once."""
        self._store(objects, refs)
        self._journaled = True

    def write(self, objects: Sequence[GitObject], refs: Mapping[str, bytes | None]) -> None:
        if self._journaled:
            self._journaled = False
        else:
            self._store(objects, refs)

    def _store(self, objects: Sequence[GitObject], refs: Mapping[str, bytes | None]) -> None:
        if self.fail_after is not None and self.writes >= self.fail_after:
            raise OperationalError("injected storage failure")
        self.writes += 1
        for kind, data in objects:
            self.objects[object_id(kind, data)] = (kind, data)
        for name, oid in refs.items():
            if oid is None:
                self.ref_map.pop(name, None)
            else:
                self.ref_map[name] = oid

    def close(self) -> None:
        pass
