"""Entry checks spread over worker processes (verification step 4 in parallel).

An adapter: each worker opens its own read-only :class:`GitStorage` on the repository
and checks a chunk of commits; the parent merges the results. Small ledgers are checked
in-process, where starting workers would cost more than it saves.
"""

from __future__ import annotations

import multiprocessing
import os
from collections import deque
from collections.abc import Sequence
from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor, wait
from pathlib import Path

from aegisflow.ledger.gitstore import GitStorage
from aegisflow.ledger.verify import (
    CHUNK,
    Advance,
    CheckContext,
    EntryCheck,
    check_entry_commits,
)

PARALLEL_THRESHOLD = 4000
"""Fewer entry commits than this are checked in-process."""
EAGER_BYTES = 4 << 20
"""Pack bytes above which workers are started before the graph walk (~4,000 entries)."""
_reader: GitStorage | None = None


def _init_worker(path: str) -> None:
    global _reader  # noqa: PLW0603 - one repository handle per worker process
    _reader = GitStorage(Path(path))


def _check_chunk(ctx: CheckContext, oids: Sequence[bytes]) -> list[EntryCheck]:
    if _reader is None:
        raise RuntimeError("worker not initialized")
    return check_entry_commits(_reader, ctx, oids)


def _ready() -> bool:
    return _reader is not None


class ParallelChecker:
    """An :data:`~aegisflow.ledger.verify.EntryChecker` over ``workers`` processes.

    For a repository large enough to need them, the worker processes are started at
    construction, so they import and open the repository while the parent walks the
    commit graph. Use as a context manager (or call :meth:`close`).
    """

    def __init__(self, path: Path, workers: int | None = None) -> None:
        self._path = path
        self._count = workers or os.cpu_count() or 1
        self._pool: ProcessPoolExecutor | None = None
        if self._count > 1 and _objects_size(path) > EAGER_BYTES:
            self._pool = self._start()

    def _start(self) -> ProcessPoolExecutor:
        pool = ProcessPoolExecutor(
            self._count - 1,
            mp_context=multiprocessing.get_context("spawn"),
            initializer=_init_worker,
            initargs=(str(self._path),),
        )
        for _ in range(self._count - 1):
            pool.submit(_ready)
        return pool

    def __enter__(self) -> ParallelChecker:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        if self._pool is not None:
            self._pool.shutdown(cancel_futures=True)
            self._pool = None

    def __call__(
        self, ctx: CheckContext, oids: Sequence[bytes], advance: Advance
    ) -> list[EntryCheck]:
        local = GitStorage(self._path)
        try:
            if self._count <= 1 or len(oids) < PARALLEL_THRESHOLD:
                return check_entry_commits(local, ctx, oids, advance)
            pool = self._pool or self._start()
            self._pool = pool
            return self._share(pool, local, ctx, oids, advance)
        finally:
            local.close()

    def _share(
        self,
        pool: ProcessPoolExecutor,
        local: GitStorage,
        ctx: CheckContext,
        oids: Sequence[bytes],
        advance: Advance,
    ) -> list[EntryCheck]:
        # The parent checks chunks itself while the workers take others, each kept two
        # chunks ahead: whoever is free takes the next one, so a worker that starts late
        # simply takes fewer.
        chunks = deque(oids[i : i + CHUNK] for i in range(0, len(oids), CHUNK))
        results: list[EntryCheck] = []
        pending: list[Future[list[EntryCheck]]] = []
        while chunks or pending:
            for future in [f for f in pending if f.done()]:
                pending.remove(future)
                part = future.result()
                results.extend(part)
                advance(len(part))
            while chunks and len(pending) < 2 * (self._count - 1):
                pending.append(pool.submit(_check_chunk, ctx, chunks.popleft()))
            if chunks:
                results.extend(check_entry_commits(local, ctx, chunks.popleft(), advance))
            elif pending:
                wait(pending, return_when=FIRST_COMPLETED)
        return results


def _objects_size(path: Path) -> int:
    try:
        return sum(f.stat().st_size for f in (path / "objects" / "pack").glob("*.pack"))
    except OSError:
        return 0


def parallel_checker(path: Path, workers: int | None = None) -> ParallelChecker:
    """Shorthand for :class:`ParallelChecker`."""
    return ParallelChecker(path, workers)
