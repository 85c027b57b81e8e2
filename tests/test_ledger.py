"""The ledger writer: appends, chains, checkpoints, manifests, recovery, bad input."""

from __future__ import annotations

import asyncio
import os
import threading
from collections.abc import Callable
from pathlib import Path

import pytest

from aegisflow.errors import (
    EntryTooLarge,
    InvalidEntry,
    InvalidSessionId,
    LedgerLocked,
    LedgerUnavailable,
    NotALedger,
    SessionClosed,
)
from aegisflow.keys import Signer
from aegisflow.ledger import gitstore
from aegisflow.ledger.entry import MAX_ENTRY_BYTES
from aegisflow.ledger.gitstore import GitStorage
from aegisflow.ledger.ledger import Ledger
from aegisflow.ledger.reading import read_entry, session_history
from aegisflow.ledger.storage import GENESIS_REF, MAIN_REF, MemoryStorage, session_ref
from tests.conftest import ORIGIN, FakeClock, decision

HOSTILE_SESSIONS = [
    "../x",
    "a.lock",
    "refs/heads/main",
    "has space",
    "ctl\x07char",
    "x" * 10_000,
    "\u0455ess",  # Cyrillic dze, looks like "s"
    "",
    ".hidden",
    "a..b",
    "trailing.",
    "new\nline",
]


def test_appends_chain_within_sessions(memory_ledger: Ledger) -> None:
    a0 = memory_ledger.append("sess-a", "decision", decision(0))
    b0 = memory_ledger.append("sess-b", "decision", decision(1))
    a1 = memory_ledger.append("sess-a", "result", {"envelope_id": "e", "summary": "ok"})
    assert (a0.index, b0.index, a1.index) == (0, 1, 2)
    assert (a0.seq, b0.seq, a1.seq) == (0, 0, 1)
    stored = read_entry(memory_ledger.storage, bytes.fromhex(a1.commit))
    assert stored.entry.prev == a0.entry_hash
    assert stored.entry_hash.hex() == a1.entry_hash
    assert stored.commit.message.startswith("result ")


@pytest.mark.parametrize("session", HOSTILE_SESSIONS)
def test_hostile_session_ids_are_refused_before_git(memory_ledger: Ledger, session: str) -> None:
    with pytest.raises(InvalidSessionId):
        memory_ledger.append(session, "decision", decision(0))
    assert memory_ledger.size == 0


def test_oversized_entry_names_the_limit(memory_ledger: Ledger) -> None:
    with pytest.raises(EntryTooLarge, match=str(MAX_ENTRY_BYTES)):
        memory_ledger.append("s", "decision", {"blob": "x" * MAX_ENTRY_BYTES})


@pytest.mark.parametrize(
    "body", [{"n": 1.5}, {"n": 2**60}, {1: "x"}, {"s": "\ud800"}, {"o": object()}]
)
def test_unsignable_bodies_are_refused(memory_ledger: Ledger, body: dict) -> None:
    with pytest.raises(InvalidEntry):
        memory_ledger.append("s", "decision", body)


def test_manifest_closes_session(memory_ledger: Ledger) -> None:
    for n in range(3):
        memory_ledger.append("sess-1", "decision", decision(n))
    receipt = memory_ledger.close_session("sess-1")
    assert receipt.type == "manifest"
    assert receipt.seq == 3
    with pytest.raises(SessionClosed):
        memory_ledger.append("sess-1", "decision", decision(9))
    with pytest.raises(SessionClosed):
        memory_ledger.close_session("sess-1")
    with pytest.raises(SessionClosed):
        memory_ledger.close_session("never-used")


def test_storage_failure_fails_closed(signer: Signer, clock: FakeClock) -> None:
    storage = MemoryStorage()
    ledger = Ledger.create(storage, signer, origin=ORIGIN, clock=clock)
    storage.fail_after = storage.writes
    with pytest.raises(LedgerUnavailable):
        ledger.append("s", "decision", decision(0))
    with pytest.raises(LedgerUnavailable):
        ledger.append("s", "decision", decision(1))
    ledger.close()
    storage.fail_after = None
    reopened = Ledger.open(storage, signer, clock=clock)
    assert reopened.size == 0
    reopened.close()


async def test_callers_that_stop_waiting_do_not_stop_the_writer(memory_ledger: Ledger) -> None:
    waiting = [
        asyncio.create_task(memory_ledger.append_async("s", "decision", decision(n)))
        for n in range(20)
    ]
    await asyncio.sleep(0)  # every append is queued
    for task in waiting[::2]:
        task.cancel()  # as a request handler is when its client goes or the service stops
    await asyncio.gather(*waiting, return_exceptions=True)
    receipt = await memory_ledger.append_async("s", "decision", decision(20))
    assert receipt.index == 20  # the abandoned appends were written too, and writing goes on


def test_reopen_recovers_state(make_git_ledger: Callable[[], Ledger]) -> None:
    ledger = make_git_ledger()
    receipts = [ledger.append(f"s{n % 3}", "decision", decision(n)) for n in range(10)]
    ledger.close()
    again = make_git_ledger()
    assert again.size == 10
    head = again.head("s1")
    assert head is not None
    assert head.entry_hash.hex() == receipts[7].entry_hash
    nxt = again.append("s1", "decision", decision(10))
    assert (nxt.index, nxt.seq) == (10, 3)
    history = session_history(again.storage, bytes.fromhex(nxt.commit), again._state.genesis_commit)
    assert [i for _, i, _ in history] == [1, 4, 7, 10]


def test_close_writes_covering_checkpoint(make_git_ledger: Callable[[], Ledger]) -> None:
    ledger = make_git_ledger()
    ledger.append("s", "decision", decision(0))
    ledger.close()
    storage = GitStorage(ledger.storage.path)  # type: ignore[attr-defined]
    refs = storage.refs()
    assert refs[MAIN_REF] != refs["refs/aegisflow/genesis"]
    assert session_ref("s") in refs
    storage.close()


def test_single_writer_lock(make_git_ledger: Callable[[], Ledger], git_path) -> None:
    make_git_ledger()
    with pytest.raises(LedgerLocked):
        GitStorage(git_path, writable=True)


def test_not_a_ledger(tmp_path, signer: Signer) -> None:
    with pytest.raises(NotALedger):
        GitStorage(tmp_path)
    empty = GitStorage.init(tmp_path / "empty.git")
    with pytest.raises(NotALedger):
        Ledger.open(empty, signer)
    empty.close()


def test_concurrent_sessions_no_fork_gap_or_loss(memory_ledger: Ledger) -> None:
    sessions, per_session = 16, 40
    receipts: list = []
    lock = threading.Lock()

    def worker(s: int) -> None:
        for n in range(per_session):
            r = memory_ledger.append(f"sess-{s}", "decision", decision(n))
            with lock:
                receipts.append(r)

    threads = [threading.Thread(target=worker, args=(s,)) for s in range(sessions)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(r.index for r in receipts) == list(range(sessions * per_session))
    for s in range(sessions):
        seqs = [r.seq for r in receipts if r.session == f"sess-{s}"]
        assert sorted(seqs) == list(range(per_session))


def test_failed_write_fails_every_request_of_the_batch(signer: Signer, clock: FakeClock) -> None:
    """Requests drained into a batch while it was built must fail with it, not hang."""
    storage = MemoryStorage()
    ledger = Ledger.create(storage, signer, origin=ORIGIN, clock=clock)
    ledger.append("warm", "decision", decision(0))
    storage.fail_after = storage.writes
    futures = []
    for n in range(200):
        try:
            futures.append(ledger.submit(f"s{n % 8}", "decision", decision(n)))
        except LedgerUnavailable:
            break  # the writer already failed: later submits are refused at once
    assert futures
    for future in futures:
        with pytest.raises(LedgerUnavailable):
            future.result(timeout=10)
    ledger.close()


@pytest.mark.skipif(not Path("/proc/self/fd").is_dir(), reason="needs /proc")
def test_background_repacks_leave_no_descriptor_to_a_deleted_pack(
    make_git_ledger: Callable[[], Ledger], git_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """libgit2 keeps a descriptor per pack it opened; a repack deletes packs, so a writer
    that never let go ran out of descriptors after some hours (found by the 1M bench)."""
    monkeypatch.setattr(gitstore, "REPACK_THRESHOLD", 2)
    monkeypatch.setattr(gitstore, "REPACK_INTERVAL", 0.0)
    ledger = make_git_ledger()
    storage = ledger.storage
    assert isinstance(storage, GitStorage)
    for round_ in range(6):
        for n in range(3):
            ledger.append(f"s{n}", "decision", decision(round_ * 3 + n))
            storage.read(ledger.head(f"s{n}").commit)  # type: ignore[union-attr]
        if storage._repack is not None:
            storage._repack.join()

    def deleted_packs() -> list[str]:
        found = []
        for fd in Path("/proc/self/fd").iterdir():
            try:
                target = os.readlink(fd)
            except OSError:
                continue
            if str(git_path) in target and target.endswith("(deleted)"):
                found.append(target)
        return found

    ledger.append("s0", "decision", decision(99))  # the writer notices the finished repack
    storage.refs()  # as a reader does, wait for the batch to be in the repository
    assert deleted_packs() == []


@pytest.mark.skipif(not Path("/proc/self/fd").is_dir(), reason="needs /proc")
def test_open_pack_descriptors_stay_capped_between_repacks(
    make_git_ledger: Callable[[], Ledger], git_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(gitstore, "REPACK_THRESHOLD", 1 << 30)  # no repack: a pack per append
    ledger = make_git_ledger()
    for n in range(gitstore.MAX_OPEN_PACKS + 30):
        ledger.append("s0", "decision", decision(n))
    head = ledger.head("s0")
    assert head is not None
    genesis = ledger.storage.refs()[GENESIS_REF]
    assert len(session_history(ledger.storage, head.commit, genesis)) > gitstore.MAX_OPEN_PACKS
    packs = len(list((git_path / "objects" / "pack").glob("*.pack")))
    assert packs > gitstore.MAX_OPEN_PACKS
    open_packs = 0
    for fd in Path("/proc/self/fd").iterdir():
        try:
            open_packs += os.readlink(fd).startswith(str(git_path)) and fd.name.isdigit()
        except OSError:
            continue
    assert open_packs <= gitstore.MAX_OPEN_PACKS + 2  # the packs, the lock file
