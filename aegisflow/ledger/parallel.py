"""Entry checks spread over worker processes (verification step 4 in parallel).

An adapter: each worker opens its own read-only :class:`GitStorage` on the repository
and checks a chunk of commits; the parent merges the results. Small ledgers are checked
in-process, where starting workers would cost more than it saves.
"""

from __future__ import annotations

import multiprocessing
import os
from collections.abc import Sequence
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

from aegisflow.ledger.gitstore import GitStorage
from aegisflow.ledger.verify import (
    Advance,
    CheckContext,
    EntryCheck,
    EntryChecker,
    check_entry_commits,
)

PARALLEL_THRESHOLD = 4000
_reader: GitStorage | None = None


def _init_worker(path: str) -> None:
    global _reader  # noqa: PLW0603 - one repository handle per worker process
    _reader = GitStorage(Path(path))


def _check_chunk(ctx: CheckContext, oids: Sequence[bytes]) -> list[EntryCheck]:
    if _reader is None:
        raise RuntimeError("worker not initialized")
    return check_entry_commits(_reader, ctx, oids)


def parallel_checker(path: Path, workers: int | None = None) -> EntryChecker:
    """An :data:`EntryChecker` that uses ``workers`` processes (default: CPU count)."""
    count = workers or os.cpu_count() or 1

    def check(ctx: CheckContext, oids: Sequence[bytes], advance: Advance) -> list[EntryCheck]:
        if count <= 1 or len(oids) < PARALLEL_THRESHOLD:
            local = GitStorage(path)
            try:
                return check_entry_commits(local, ctx, oids, advance)
            finally:
                local.close()
        size = -(-len(oids) // (count * 4))
        chunks = [oids[i : i + size] for i in range(0, len(oids), size)]
        results: list[EntryCheck] = []
        with ProcessPoolExecutor(
            count,
            mp_context=multiprocessing.get_context("spawn"),
            initializer=_init_worker,
            initargs=(str(path),),
        ) as pool:
            for part in pool.map(_check_chunk, [ctx] * len(chunks), chunks):
                results.extend(part)
                advance(len(part))
        return results

    return check
