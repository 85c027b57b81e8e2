"""Git storage for the ledger: the only module that imports pygit2.

Writes bypass libgit2's loose-object path: each batch becomes one pack (built by
:class:`~aegisflow.ledger.gitfmt.PackWriter`) written as ``.pack`` then ``.idx``, each
through a temporary file that is fsynced and renamed, then the pack directory is
fsynced; only then are the refs moved, all at once, by rewriting ``packed-refs``
(``packed-refs.lock``, fsync, rename, fsync of the directory). So a ref never points at
an object that is not durable, the refs of a batch move together or not at all, and a
batch is durable once :meth:`GitStorage.write` returns. The writer makes a batch durable
sooner, in the journal (:mod:`aegisflow.ledger.journal`), and writes it here right after;
readers in this process wait for that, and opening for writing finishes a batch the
journal holds but the repository lacks. Rewriting ``packed-refs`` costs
O(sessions) bytes per batch (about 65 bytes a session): one fsync instead of one per
moved session, which is what makes group commit pay off (docs/ledger-format.md).

Small packs are rolled up in the background with ``git repack --geometric=2 -d``, which
git makes safe against concurrent readers (new pack first, old ones removed after).
Reads go through pygit2 with strict hash verification, so a corrupt object surfaces as
:class:`~aegisflow.errors.MalformedData`, never as wrong bytes.
"""

from __future__ import annotations

import fcntl
import logging
import os
import shutil
import subprocess
import threading
import time
from collections.abc import Mapping, Sequence
from pathlib import Path

import pygit2

from aegisflow.errors import (
    IntegrityError,
    LedgerLocked,
    LedgerUnavailable,
    MalformedData,
    NotALedger,
    ObjectMissing,
    OperationalError,
)
from aegisflow.ledger.gitfmt import PackWriter
from aegisflow.ledger.journal import JOURNAL_FILE, Journal
from aegisflow.ledger.storage import GitObject

log = logging.getLogger("aegisflow.ledger.git")

LOCK_FILE = "aegisflow.lock"
WRITE_ZLIB_LEVEL = 0
"""Batches are written as stored (uncompressed) zlib streams: zlib's per-object setup
would cost more than signing; :meth:`GitStorage.compact` compresses and deltifies."""
REPACK_THRESHOLD = 32
"""Packs written since the last repack before a background geometric repack starts."""
REPACK_INTERVAL = 10.0
"""Seconds between background repacks, so a busy writer's packs are merged in bulk."""
_REPACK = ["-c", "pack.window=0", "repack", "-d", "-q", "--geometric=4", "--no-write-bitmap-index"]
"""A geometric roll-up (factor 4: each object is rewritten a few times in its life) that
copies objects as they are, without delta search; compaction does the compression."""

_KINDS = {
    pygit2.enums.ObjectType.COMMIT: "commit",
    pygit2.enums.ObjectType.TREE: "tree",
    pygit2.enums.ObjectType.BLOB: "blob",
    pygit2.enums.ObjectType.TAG: "tag",
}

MAX_OPEN_PACKS = 128
"""Pack files libgit2 keeps open at once, per process."""

_NICE = ("nice", "-n", "10") if shutil.which("nice") else ()
SETTLE_TIMEOUT = 10.0
"""Seconds a reader waits for an acknowledged batch to reach the repository."""
_WRITERS: dict[str, GitStorage] = {}
"""The storage holding each repository's writer lock in this process, by real path."""
_WRITERS_LOCK = threading.Lock()

pygit2.settings.enable_strict_hash_verification(True)
# Packs pile up between background repacks (a busy writer makes one per batch); libgit2
# keeps one descriptor per pack it has read unless capped, and closes the least recently
# used beyond the cap, so a process stays far below the usual 1024-descriptor limit.
pygit2.settings.mwindow_file_limit = MAX_OPEN_PACKS


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _stage(tmp: Path, data: bytes, mode: int) -> int:
    """Create ``tmp`` holding ``data`` (not yet fsynced); return its open descriptor."""
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, mode)
    try:
        view = memoryview(data)
        while view:
            view = view[os.write(fd, view) :]
    except BaseException:
        os.close(fd)
        raise
    return fd


def _packed_refs(refs: Mapping[str, bytes]) -> bytes:
    lines = [b"# pack-refs with: peeled fully-peeled sorted \n"]
    lines += [b"%s %s\n" % (refs[n].hex().encode(), n.encode()) for n in sorted(refs)]
    return b"".join(lines)


class GitStorage:
    """A bare git repository holding a ledger.

    Args:
        path: The repository (git directory) path.
        writable: Take the single-writer lock and allow :meth:`write`.

    Raises:
        NotALedger: If ``path`` is not a bare git repository.
        LedgerLocked: If ``writable`` and another process holds the writer lock.
    """

    def __init__(self, path: Path, *, writable: bool = False) -> None:
        self.path = Path(path)
        try:
            self._repo = pygit2.Repository(str(self.path))
        except pygit2.GitError as e:
            raise NotALedger(f"{self.path} is not a git repository") from e
        if not self._repo.is_bare:
            raise NotALedger(f"{self.path} is not a bare git repository")
        self._read_lock = threading.Lock()
        self._lock_fd: int | None = None
        self._refs: dict[str, bytes] | None = None
        self._loose: set[str] = set()
        self._packs_written = 0
        self._last_repack = 0.0
        self._repack: threading.Thread | None = None
        self._journal: Journal | None = None
        self._applied = threading.Condition()
        self._logged = 0
        """Batches logged to the journal (the writer's count)."""
        self._written = 0
        """Batches of those written to the repository since."""
        self._writer: int | None = None
        """The thread that logs batches: it never waits for its own."""
        self._broken: BaseException | None = None
        """Why a logged batch could not be written to the repository."""
        self._key = os.path.realpath(self.path)
        if writable:
            try:
                self._take_lock()
                self._journal = Journal(self.path)
                self._replay()
            except BaseException:
                if self._journal is not None:  # closed as it is: it may hold a batch
                    self._journal.close()
                    self._journal = None
                self.close()
                raise
            with _WRITERS_LOCK:
                _WRITERS[self._key] = self

    @classmethod
    def init(cls, path: Path) -> GitStorage:
        """Create an empty bare repository at ``path`` and open it for writing.

        Raises:
            OperationalError: If ``path`` exists and is not empty.
        """
        path = Path(path)
        if path.exists() and any(p.name != "README.md" for p in path.iterdir()):
            raise OperationalError(f"{path} exists and is not empty")
        pygit2.init_repository(str(path), bare=True, initial_head="main")
        for sub in ("refs/sessions", "refs/aegisflow", "objects/pack"):
            (path / sub).mkdir(parents=True, exist_ok=True)
        return cls(path, writable=True)

    def _take_lock(self) -> None:
        fd = os.open(self.path / LOCK_FILE, os.O_RDWR | os.O_CREAT, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            raise LedgerLocked(
                f"another process is writing the ledger at {self.path}",
                hint="only one aegisflow serve may write a ledger; stop the other one",
            ) from None
        self._lock_fd = fd
        # We hold the writer lock, so any ref lock left behind is from a dead writer.
        for stale in (self.path / "refs").rglob("*.lock"):
            stale.unlink()
        (self.path / "packed-refs.lock").unlink(missing_ok=True)
        for stale in (self.path / "objects" / "pack").glob("tmp_aegisflow_*"):
            stale.unlink()

    # -- reading ------------------------------------------------------------------

    verifies_ids = True
    """libgit2's strict hash verification checks every object read against its id."""

    def _settle(self) -> None:
        """Wait until a batch this process acknowledged is in the repository.

        A batch is acknowledged once it is in the journal, and written to the
        repository right after; a reader in another thread (this storage's, or another
        opened on the same repository in this process) waits for that, so it reads
        whatever was acknowledged before it asked. Other processes may read the
        repository one batch behind for that moment.
        """
        owner = self if self._journal is not None else _WRITERS.get(self._key)
        if owner is None:
            return
        logged = owner._logged
        if owner._written < logged and owner._writer != threading.get_ident():
            with owner._applied:
                written = owner._applied.wait_for(
                    lambda: owner._written >= logged or owner._broken is not None,
                    SETTLE_TIMEOUT,
                )
            if not written:
                log.warning("read %s before its last acknowledged batch was written", self.path)
        if owner._broken is not None:
            raise LedgerUnavailable(
                f"the ledger's last acknowledged batch is not in its repository: {owner._broken}",
                hint="restart the service: reopening the ledger writes it from the journal",
            )

    def read(self, oid: bytes) -> GitObject:
        self._settle()
        with self._read_lock:
            try:
                kind, data = self._repo.odb.read(pygit2.Oid(raw=oid))
            except KeyError:
                raise ObjectMissing(f"object {oid.hex()} is missing") from None
            except pygit2.GitError as e:
                raise MalformedData(f"object {oid.hex()} is corrupt: {e}") from e
        return _KINDS[kind], bytes(data)

    def refs(self) -> dict[str, bytes]:
        self._settle()
        out: dict[str, bytes] = {}
        with self._read_lock:
            for ref in self._repo.references.iterator():
                target = ref.target
                if isinstance(target, pygit2.Oid):
                    out[ref.name] = target.raw
        return out

    def reachable(self, starts: Sequence[bytes], exclude: Sequence[bytes]) -> list[bytes] | None:
        """Commits reachable from ``starts`` but not from ``exclude``, via ``git rev-list``.

        Several times faster than walking in Python; returns None when git cannot walk
        the graph (a missing or corrupt commit), so the caller falls back to its own
        walk, which reports each broken object.
        """
        if not starts:
            return []
        self._settle()
        stdin = "".join(f"{oid.hex()}\n" for oid in starts)
        stdin += "".join(f"^{oid.hex()}\n" for oid in exclude)
        # Only the commits' own parent lines may shape the walk: no replacement refs,
        # grafts, shallow boundaries or commit-graph file (all are files an attacker with
        # write access could plant). What is walked here only decides what gets checked.
        env = {**os.environ, "GIT_GRAFT_FILE": os.devnull, "GIT_SHALLOW_FILE": os.devnull}
        command = ["git", "--no-replace-objects", "-c", "core.commitGraph=false"]
        try:
            proc = subprocess.run(
                [*command, "--git-dir", str(self.path), "rev-list", "--stdin"],
                input=stdin.encode(),
                capture_output=True,
                timeout=600,
                check=False,
                env=env,
            )
        except (OSError, subprocess.SubprocessError):
            return None
        if proc.returncode != 0:
            return None
        return [bytes.fromhex(line) for line in proc.stdout.decode().split()]

    # -- writing ------------------------------------------------------------------

    def journal(self, objects: Sequence[GitObject], refs: Mapping[str, bytes | None]) -> None:
        """Make a batch durable in the journal; :meth:`write` of the same batch follows.

        Raises:
            OperationalError: If the batch cannot be made durable.
        """
        if self._journal is None:
            raise OperationalError("storage was opened read-only")
        current = self._known_refs()
        self._journal.log(objects, refs, {name: current.get(name) for name in refs})
        with self._applied:
            self._logged += 1
            self._writer = threading.get_ident()

    def write(self, objects: Sequence[GitObject], refs: Mapping[str, bytes | None]) -> None:
        """Durably store a batch in the repository (the one just journaled, if any).

        A batch written without the journal first clears the journal's record, which
        could otherwise be replayed over it.

        Raises:
            OperationalError: If the write fails; the caller must stop writing.
        """
        if self._journal is None:
            raise OperationalError("storage was opened read-only")
        journaled = self._written < self._logged
        try:
            if not journaled:
                self._journal.forget()
            self._apply(objects, refs)
        except BaseException as e:
            if journaled:  # acknowledged, and not in the repository
                with self._applied:
                    self._broken = e  # readers must not take the repository for the ledger
            raise
        finally:
            with self._applied:
                self._written = self._logged
                self._applied.notify_all()

    def _replay(self) -> None:
        """Write the journal's batch to the repository if a crash kept it out."""
        if self._journal is None:
            return
        batch = self._journal.last()
        if batch is not None:
            current = self._known_refs()
            if any(current.get(name) != oid for name, oid in batch.refs.items()):
                if any(current.get(name) != oid for name, oid in batch.before.items()):
                    raise IntegrityError(
                        f"the journal of {self.path} holds an acknowledged batch, but the "
                        "repository's refs are neither as that batch found them nor as it "
                        "left them: something else moved them. Nothing was changed.",
                        hint=f"find what moved the refs; {JOURNAL_FILE} holds the batch, and "
                        "moving it aside opens the repository as it is",
                    )
                log.warning("writing the ledger's last acknowledged batch from its journal")
                self._apply(batch.objects, batch.refs)
        self._journal.forget()

    def _apply(self, objects: Sequence[GitObject], refs: Mapping[str, bytes | None]) -> None:
        """Durably store a batch: pack, index and ``packed-refs``.

        Every file is written first and fsynced after, so one journal commit usually
        carries all three; then the pack and index are renamed into place and their
        directory fsynced, and only then is ``packed-refs`` renamed (and the git
        directory fsynced). Refs never point at objects that could be lost.
        """
        pack_dir = self.path / "objects" / "pack"
        staged: list[tuple[Path, Path]] = []
        fds: list[int] = []
        try:
            try:
                if objects:
                    writer = PackWriter(level=WRITE_ZLIB_LEVEL)
                    for kind, data in objects:
                        writer.add(kind, data)
                    pack, idx, name = writer.finish()
                    self._packs_written += 1
                    for suffix, data in ((".pack", pack), (".idx", idx)):
                        tmp = pack_dir / f"tmp_aegisflow_{name}{suffix.replace('.', '_')}"
                        fds.append(_stage(tmp, data, 0o444))
                        staged.append((tmp, pack_dir / f"pack-{name}{suffix}"))
                updated = self._updated_refs(refs)
                if updated is not None:
                    tmp = self.path / "packed-refs.lock"
                    fds.append(_stage(tmp, _packed_refs(updated), 0o644))
                for fd in fds:
                    os.fsync(fd)
            finally:
                for fd in fds:
                    os.close(fd)
            for tmp, final in staged:
                os.replace(tmp, final)
            if staged:
                _fsync_dir(pack_dir)
            if updated is not None:
                os.replace(self.path / "packed-refs.lock", self.path / "packed-refs")
                _fsync_dir(self.path)
                self._refs = updated
                self._drop_loose(refs)
        except OSError as e:
            raise OperationalError(f"durable write to {self.path} failed: {e}") from e
        self._maybe_repack()

    def _updated_refs(self, refs: Mapping[str, bytes | None]) -> dict[str, bytes] | None:
        """The full ref map after applying ``refs``, or None if nothing changes."""
        if not refs:
            return None
        updated = dict(self._known_refs())
        for name, oid in refs.items():
            if oid is None:
                updated.pop(name, None)
            else:
                updated[name] = oid
        return updated

    def _known_refs(self) -> dict[str, bytes]:
        """The writer's ref map: read once, then kept as its own writes move the refs."""
        if self._refs is None:
            self._refs = self._load_refs()
        return self._refs

    def _load_refs(self) -> dict[str, bytes]:
        """All refs, noting which are loose (a loose ref shadows its packed copy)."""
        with self._read_lock:
            self._loose = {
                ref.name
                for ref in self._repo.references.iterator()
                if (self.path / ref.name).is_file()
            }
        return self.refs()

    def _drop_loose(self, refs: Mapping[str, bytes | None]) -> None:
        """Remove loose copies of refs just written to ``packed-refs`` (they would win)."""
        stale = [n for n in refs if n in self._loose]
        for name in stale:
            (self.path / name).unlink(missing_ok=True)
            self._loose.discard(name)
        for parent in {(self.path / n).parent for n in stale}:
            _fsync_dir(parent)

    # -- maintenance --------------------------------------------------------------

    def _maybe_repack(self) -> None:
        if self._repack is not None:
            if self._repack.is_alive():
                return
            # The finished repack deleted packs libgit2 still holds open (one descriptor
            # each, for good): let go of every handle; reads reopen what exists.
            with self._read_lock:
                self._repo.free()
            self._repack = None
        now = time.monotonic()
        if self._packs_written < REPACK_THRESHOLD or now - self._last_repack < REPACK_INTERVAL:
            return
        self._packs_written = 0
        self._last_repack = now
        self._repack = threading.Thread(target=self._run_git, args=(_REPACK,), daemon=True)
        self._repack.start()

    def _run_git(self, args: list[str]) -> None:
        try:
            subprocess.run(
                # Niced: maintenance must not take CPU from the writer it serves.
                [*_NICE, "git", "--git-dir", str(self.path), *args],
                check=True,
                capture_output=True,
                timeout=600,
            )
        except subprocess.CalledProcessError as e:
            log.warning("git %s failed: %s", args[0], e.stderr.decode(errors="replace").strip())
        except (OSError, subprocess.SubprocessError) as e:
            log.warning("git %s failed: %s", args[0], e)

    def compact(self) -> None:
        """Repack everything into one compressed, delta-encoded pack (``git repack -adF``).

        Raises:
            OperationalError: If git fails.
        """
        if self._repack is not None:
            self._repack.join()
        try:
            # No reachability bitmap: it adds ~110 bytes an entry for fetch speed. Delta
            # chains of at most 10: 0.5% larger than 50, and verification reads ~30% faster.
            args = ["-c", "repack.writeBitmaps=false", "repack", "-a", "-d", "-F", "-q"]
            subprocess.run(
                ["git", "--git-dir", str(self.path), *args, "--window=50", "--depth=10"],
                check=True,
                capture_output=True,
                timeout=3600,
            )
        except (OSError, subprocess.SubprocessError) as e:
            raise OperationalError(f"git repack failed: {e}") from e

    def close(self) -> None:
        if self._repack is not None:
            self._repack.join()
            self._repack = None
        if self._journal is not None:
            with _WRITERS_LOCK:
                if _WRITERS.get(self._key) is self:
                    del _WRITERS[self._key]
            if self._written == self._logged and self._broken is None:
                try:
                    self._journal.forget()  # a clean close leaves nothing to replay
                except OperationalError as e:
                    log.warning("%s", e.message)
            self._journal.close()
            self._journal = None
        if self._lock_fd is not None:
            os.close(self._lock_fd)
            self._lock_fd = None
        self._repo.free()
