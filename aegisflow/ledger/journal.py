"""The writer's one-record journal: a batch is durable once logged here.

Making a batch durable in the repository costs a pack, its index and ``packed-refs``,
each fsynced and renamed, and two directory fsyncs: over a millisecond on a common
disk, which every decision would wait for. Logging the same batch here costs one
``pwrite`` over blocks that already exist and one ``fdatasync``, a few hundredths of
that. So the writer logs a batch, acknowledges it, and only then writes it to the
repository, before it takes the next batch (docs/decisions.md, "The ledger's journal").

The file holds at most one record, always at offset 0: the latest batch. Every earlier
batch is in the repository already, because the writer finishes a batch's repository
write before it logs the next one. A record is::

    magic (8) | payload length (8, big-endian) | SHA-256 of the payload (32) | payload

A crash while a record is being logged leaves a record that fails its length or hash
check; it is ignored, and rightly: that batch was never acknowledged. A record carries
each ref it moves both as it was before the batch and as the batch sets it, so opening
the repository for writing can tell the three cases apart: the refs are as the batch
left them (it was written: nothing to do), as they were before it (the writer died
between acknowledging and writing it: write it now), or neither (something else moved
them: refuse, rather than move them back or lose the batch). A clean close clears the
record.

The journal carries no signature: it holds the same signed entries and commits as the
repository will, and whatever is replayed is checked by verification like the rest.
"""

from __future__ import annotations

import hashlib
import os
import struct
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from aegisflow.errors import OperationalError
from aegisflow.ledger.storage import GitObject

JOURNAL_FILE = "aegisflow-journal"
MAGIC = b"AFJRNL1\n"
PREALLOCATED = 1 << 20
"""Bytes of zeros written when the journal is created, so that logging a usual batch
overwrites existing blocks and ``fdatasync`` has no metadata to commit."""
_HEADER = struct.Struct(">8sQ32s")
_KINDS = ("blob", "tree", "commit", "tag")

Refs = dict[str, bytes | None]
"""Ref name to object id; None: no such ref."""


@dataclass(frozen=True, slots=True)
class Batch:
    objects: list[GitObject]
    refs: Refs
    """The refs the batch moves, as it sets them."""
    before: Refs
    """The same refs as they were before it."""


def encode(
    objects: Sequence[GitObject],
    refs: Mapping[str, bytes | None],
    before: Mapping[str, bytes | None],
) -> bytes:
    """The record of a batch, header included."""
    parts = [struct.pack(">I", len(objects))]
    for kind, data in objects:
        parts += [struct.pack(">BI", _KINDS.index(kind), len(data)), data]
    parts.append(struct.pack(">I", len(refs)))
    for name, oid in refs.items():
        raw = name.encode()
        parts += [struct.pack(">H", len(raw)), raw, _oid(before.get(name)), _oid(oid)]
    payload = b"".join(parts)
    return _HEADER.pack(MAGIC, len(payload), hashlib.sha256(payload).digest()) + payload


def _oid(oid: bytes | None) -> bytes:
    return b"\x00" if oid is None else b"\x01" + oid


def decode(record: bytes) -> Batch | None:
    """The batch in ``record``, or None if it holds no complete, intact record."""
    if len(record) < _HEADER.size:
        return None
    magic, size, digest = _HEADER.unpack_from(record)
    payload = record[_HEADER.size : _HEADER.size + size]
    if magic != MAGIC or len(payload) != size or hashlib.sha256(payload).digest() != digest:
        return None
    try:
        return _decode_payload(payload)
    except (struct.error, IndexError, ValueError):
        return None  # hashed but not ours: treat as no record


def _decode_payload(payload: bytes) -> Batch:
    at = 0

    def take(n: int) -> bytes:
        nonlocal at
        if at + n > len(payload):
            raise ValueError("truncated journal record")
        at += n
        return payload[at - n : at]

    (count,) = struct.unpack(">I", take(4))
    objects: list[GitObject] = []
    for _ in range(count):
        code, size = struct.unpack(">BI", take(5))
        objects.append((_KINDS[code], take(size)))

    def oid() -> bytes | None:
        return take(20) if take(1) == b"\x01" else None

    (count,) = struct.unpack(">I", take(4))
    refs: Refs = {}
    before: Refs = {}
    for _ in range(count):
        (size,) = struct.unpack(">H", take(2))
        name = take(size).decode()
        before[name] = oid()
        refs[name] = oid()
    if at != len(payload):
        raise ValueError("trailing bytes in journal record")
    return Batch(objects, refs, before)


class Journal:
    """The journal file of one repository, opened by its single writer."""

    def __init__(self, git_dir: Path) -> None:
        path = git_dir / JOURNAL_FILE
        created = not path.exists()
        try:
            self._fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
            if created:
                os.pwrite(self._fd, bytes(PREALLOCATED), 0)
                os.fsync(self._fd)
                fd = os.open(git_dir, os.O_RDONLY | os.O_DIRECTORY)
                try:
                    os.fsync(fd)
                finally:
                    os.close(fd)
        except OSError as e:
            raise OperationalError(f"cannot open the ledger's journal {path}: {e}") from e
        self._valid = not created

    def last(self) -> Batch | None:
        """The batch last logged, if its record is intact."""
        header = os.pread(self._fd, _HEADER.size, 0)
        if len(header) < _HEADER.size:
            return None
        _, size, _ = _HEADER.unpack(header)
        if size > os.fstat(self._fd).st_size:
            return None
        return decode(os.pread(self._fd, _HEADER.size + size, 0))

    def log(
        self,
        objects: Sequence[GitObject],
        refs: Mapping[str, bytes | None],
        before: Mapping[str, bytes | None],
    ) -> None:
        """Make a batch durable: it survives a crash from the moment this returns.

        Raises:
            OperationalError: If the record cannot be written and synced.
        """
        record = encode(objects, refs, before)
        self._valid = True  # even a failed write may have left a valid-looking record
        try:
            view = memoryview(record)
            at = 0
            while at < len(record):
                at += os.pwrite(self._fd, view[at:], at)
            os.fdatasync(self._fd)
        except OSError as e:
            raise OperationalError(f"durable write to the ledger's journal failed: {e}") from e

    def forget(self) -> None:
        """Invalidate the record: before the repository is written without the journal,
        and at a clean close.

        Raises:
            OperationalError: If the journal cannot be cleared.
        """
        if not self._valid:
            return
        try:
            os.pwrite(self._fd, bytes(len(MAGIC)), 0)
            os.fdatasync(self._fd)
        except OSError as e:
            raise OperationalError(f"cannot clear the ledger's journal: {e}") from e
        self._valid = False

    def close(self) -> None:
        os.close(self._fd)
