"""Git storage for the ledger: the only module that imports pygit2.

Writes bypass libgit2's loose-object path: each batch becomes one pack (built by
:class:`~aegisflow.ledger.gitfmt.PackWriter`) written as ``.pack`` then ``.idx``, each
through a temporary file that is fsynced and renamed, then the pack directory is
fsynced; only then are the loose refs written (``<ref>.lock``, fsync, rename, fsync of
the directory), session refs before ``main``. So a ref never points at an object that
is not durable, and a batch is durable once :meth:`GitStorage.write` returns.

Small packs are rolled up in the background with ``git repack --geometric=2 -d``, which
git makes safe against concurrent readers (new pack first, old ones removed after).
Reads go through pygit2 with strict hash verification, so a corrupt object surfaces as
:class:`~aegisflow.errors.MalformedData`, never as wrong bytes.
"""

from __future__ import annotations

import contextlib
import fcntl
import logging
import os
import subprocess
import threading
from collections.abc import Mapping, Sequence
from pathlib import Path

import pygit2

from aegisflow.errors import (
    LedgerLocked,
    MalformedData,
    NotALedger,
    ObjectMissing,
    OperationalError,
)
from aegisflow.ledger.gitfmt import PackWriter
from aegisflow.ledger.storage import GitObject

log = logging.getLogger("aegisflow.ledger.git")

LOCK_FILE = "aegisflow.lock"
REPACK_THRESHOLD = 24
"""Pack count at which a background geometric repack is started."""

_KINDS = {
    pygit2.enums.ObjectType.COMMIT: "commit",
    pygit2.enums.ObjectType.TREE: "tree",
    pygit2.enums.ObjectType.BLOB: "blob",
    pygit2.enums.ObjectType.TAG: "tag",
}

pygit2.settings.enable_strict_hash_verification(True)


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _write_durably(path: Path, data: bytes, *, tmp: Path) -> None:
    """Write ``data`` to ``tmp``, fsync it and rename it over ``path``."""
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o444)
    try:
        view = memoryview(data)
        while view:
            view = view[os.write(fd, view) :]
        os.fsync(fd)
    finally:
        os.close(fd)
    os.replace(tmp, path)


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
        self._repack: threading.Thread | None = None
        if writable:
            self._take_lock()

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
        for stale in (self.path / "objects" / "pack").glob("tmp-aegisflow-*"):
            stale.unlink()

    # -- reading ------------------------------------------------------------------

    def read(self, oid: bytes) -> GitObject:
        with self._read_lock:
            try:
                kind, data = self._repo.odb.read(pygit2.Oid(raw=oid))
            except KeyError:
                raise ObjectMissing(f"object {oid.hex()} is missing") from None
            except pygit2.GitError as e:
                raise MalformedData(f"object {oid.hex()} is corrupt: {e}") from e
        return _KINDS[kind], bytes(data)

    def refs(self) -> dict[str, bytes]:
        out: dict[str, bytes] = {}
        with self._read_lock:
            for ref in self._repo.references.iterator():
                target = ref.target
                if isinstance(target, pygit2.Oid):
                    out[ref.name] = target.raw
        return out

    # -- writing ------------------------------------------------------------------

    def write(self, objects: Sequence[GitObject], refs: Mapping[str, bytes | None]) -> None:
        if self._lock_fd is None:
            raise OperationalError("storage was opened read-only")
        try:
            if objects:
                self._write_pack(objects)
            self._write_refs(refs)
        except OSError as e:
            raise OperationalError(f"durable write to {self.path} failed: {e}") from e
        self._maybe_repack()

    def _write_pack(self, objects: Sequence[GitObject]) -> None:
        writer = PackWriter()
        for kind, data in objects:
            writer.add(kind, data)
        pack, idx, name = writer.finish()
        pack_dir = self.path / "objects" / "pack"
        base = pack_dir / f"pack-{name}"
        _write_durably(base.with_suffix(".pack"), pack, tmp=pack_dir / f"tmp-aegisflow-{name}.pack")
        _write_durably(base.with_suffix(".idx"), idx, tmp=pack_dir / f"tmp-aegisflow-{name}.idx")
        _fsync_dir(pack_dir)

    def _write_refs(self, refs: Mapping[str, bytes | None]) -> None:
        dirs: list[Path] = []
        for name, oid in refs.items():
            path = self.path / name
            if oid is None:
                with self._read_lock, contextlib.suppress(KeyError):
                    self._repo.references.delete(name)
            else:
                path.parent.mkdir(parents=True, exist_ok=True)
                lock = path.with_name(path.name + ".lock")
                fd = os.open(lock, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
                try:
                    os.write(fd, oid.hex().encode() + b"\n")
                    os.fsync(fd)
                finally:
                    os.close(fd)
                os.replace(lock, path)
            if path.parent not in dirs:
                dirs.append(path.parent)
            if name.startswith("refs/heads/"):
                # main moves last: make everything before it durable first.
                for d in dirs:
                    _fsync_dir(d)
                dirs.clear()
        for d in dirs:
            _fsync_dir(d)

    # -- maintenance --------------------------------------------------------------

    def pack_count(self) -> int:
        return len(list((self.path / "objects" / "pack").glob("pack-*.idx")))

    def _maybe_repack(self) -> None:
        if self._repack is not None and self._repack.is_alive():
            return
        if self.pack_count() < REPACK_THRESHOLD:
            return
        self._repack = threading.Thread(
            target=self._run_git, args=(["repack", "-d", "-q", "--geometric=2"],), daemon=True
        )
        self._repack.start()

    def _run_git(self, args: list[str]) -> None:
        try:
            subprocess.run(
                ["git", "--git-dir", str(self.path), *args],
                check=True,
                capture_output=True,
                timeout=600,
            )
        except (OSError, subprocess.SubprocessError) as e:
            log.warning("git %s failed: %s", args[0], e)

    def compact(self) -> None:
        """Repack everything into one delta-compressed pack (``git repack -adf``).

        Raises:
            OperationalError: If git fails.
        """
        if self._repack is not None:
            self._repack.join()
        try:
            subprocess.run(
                [
                    "git",
                    "--git-dir",
                    str(self.path),
                    "repack",
                    "-a",
                    "-d",
                    "-f",
                    "-q",
                    "--window=50",
                    "--depth=50",
                ],
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
        if self._lock_fd is not None:
            os.close(self._lock_fd)
            self._lock_fd = None
        self._repo.free()
