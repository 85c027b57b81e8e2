"""The ledger's journal: a batch is durable once logged, and reaches the repository even
if the writer dies before writing it there."""

from __future__ import annotations

import logging
import subprocess
import threading
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from aegisflow.errors import IntegrityError, LedgerUnavailable, OperationalError
from aegisflow.keys import Signer
from aegisflow.ledger import journal
from aegisflow.ledger.gitfmt import object_id
from aegisflow.ledger.gitstore import GitStorage
from aegisflow.ledger.ledger import Ledger
from aegisflow.ledger.reading import read_entry
from aegisflow.ledger.verify import verify_repository
from tests.conftest import FakeClock, decision

REF = "refs/sessions/journal-test"


def batch(text: str) -> tuple[list[tuple[str, bytes]], dict[str, bytes | None]]:
    data = text.encode()
    return [("blob", data)], {REF: object_id("blob", data)}


def crash(storage: GitStorage) -> None:
    """Let go of the repository as a killed writer does: no clean close."""
    storage._journal.close()  # type: ignore[union-attr]
    storage._journal = None
    storage.close()


def packs(path: Path) -> int:
    return len(list((path / "objects" / "pack").glob("*.pack")))


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    path = tmp_path / "repo.git"
    GitStorage.init(path).close()
    return path


def test_records_round_trip_and_damaged_ones_are_no_records() -> None:
    objects = [("blob", b"x" * 300), ("tree", b""), ("commit", b"tree 0\n")]
    refs: dict[str, bytes | None] = {"refs/a": bytes(range(20)), "refs/b": None}
    before: dict[str, bytes | None] = {"refs/a": None, "refs/b": bytes(20)}
    record = journal.encode(objects, refs, before)
    batch = journal.Batch(objects, refs, before)
    assert journal.decode(record) == batch
    assert journal.decode(record + b"\0" * 64) == batch  # the zeros after it
    for damaged in (
        record[:-1],  # torn at the end
        record[:20],  # torn in the header
        record[:60] + bytes([record[60] ^ 1]) + record[61:],  # a flipped bit
        b"\0" * len(record),  # forgotten
        b"",
    ):
        assert journal.decode(damaged) is None


def test_a_logged_batch_reaches_the_repository_on_the_next_open(
    repo: Path, caplog: pytest.LogCaptureFixture
) -> None:
    objects, refs = batch("acknowledged, then the writer died")
    storage = GitStorage(repo, writable=True)
    storage.journal(objects, refs)
    crash(storage)  # right after the acknowledgement, before the repository write
    assert REF not in GitStorage(repo).refs()
    with caplog.at_level(logging.WARNING, "aegisflow.ledger.git"):
        reopened = GitStorage(repo, writable=True)
    assert "from its journal" in caplog.text
    assert reopened.refs()[REF] == refs[REF]
    assert reopened.read(refs[REF]) == objects[0]  # type: ignore[index]
    reopened.close()
    before = packs(repo)
    GitStorage(repo, writable=True).close()  # replayed once, then forgotten
    assert packs(repo) == before


def test_an_applied_batch_is_not_written_again(repo: Path) -> None:
    storage = GitStorage(repo, writable=True)
    storage.journal(*batch("one"))
    storage.write(*batch("one"))
    crash(storage)  # the record is still there
    before = packs(repo)
    GitStorage(repo, writable=True).close()
    assert packs(repo) == before


def test_a_torn_record_is_ignored(repo: Path) -> None:
    storage = GitStorage(repo, writable=True)
    storage.journal(*batch("torn while it was logged"))
    crash(storage)
    with (repo / journal.JOURNAL_FILE).open("r+b") as f:
        f.seek(60)
        byte = f.read(1)
        f.seek(60)
        f.write(bytes([byte[0] ^ 0xFF]))
    reopened = GitStorage(repo, writable=True)
    assert REF not in reopened.refs()  # never acknowledged: nothing to recover
    reopened.close()


def test_a_write_without_the_journal_is_not_undone_by_an_old_record(repo: Path) -> None:
    storage = GitStorage(repo, writable=True)
    storage.journal(*batch("old"))
    storage.write(*batch("old"))
    storage.write(*batch("new"))  # a write of its own (a recovery's ref fix does this)
    crash(storage)
    reopened = GitStorage(repo, writable=True)
    assert reopened.refs()[REF] == batch("new")[1][REF]
    reopened.close()


def test_a_record_is_not_replayed_over_refs_something_else_moved(repo: Path) -> None:
    storage = GitStorage(repo, writable=True)
    storage.journal(*batch("acknowledged"))
    crash(storage)  # before the repository write
    other = subprocess.run(
        ["git", "--git-dir", str(repo), "hash-object", "-w", "--stdin"],
        input=b"moved by hand",
        capture_output=True,
        check=True,
    ).stdout.strip()
    subprocess.run(["git", "--git-dir", str(repo), "update-ref", REF, other], check=True)
    for _ in range(2):  # refused, and nothing changed by refusing
        with pytest.raises(IntegrityError, match="something else moved them"):
            GitStorage(repo, writable=True)
    reader = GitStorage(repo)
    assert reader.refs()[REF] == bytes.fromhex(other.decode())
    reader.close()


def test_a_clean_close_leaves_no_record(repo: Path) -> None:
    storage = GitStorage(repo, writable=True)
    storage.journal(*batch("one"))
    storage.write(*batch("one"))
    storage.close()
    assert journal.decode((repo / journal.JOURNAL_FILE).read_bytes()) is None


def test_readers_in_this_process_wait_for_the_logged_batch(repo: Path) -> None:
    writer = GitStorage(repo, writable=True)
    objects, refs = batch("acknowledged")
    logged = threading.Event()
    answers: list[dict[str, bytes]] = []

    def log_it() -> None:
        writer.journal(objects, refs)
        logged.set()
        time.sleep(0.3)  # the reader is waiting (or would have read the old refs by now)
        writer.write(objects, refs)

    def read_it() -> None:
        logged.wait()
        reader = GitStorage(repo)
        try:
            answers.append(reader.refs())
            answers.append(writer.refs())
        finally:
            reader.close()

    threads = [threading.Thread(target=log_it), threading.Thread(target=read_it)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert [a.get(REF) for a in answers] == [refs[REF], refs[REF]]
    writer.close()


def test_a_failed_repository_write_after_the_acknowledgement_loses_nothing(
    make_git_ledger: Callable[[], Ledger],
    git_path: Path,
    signer: Signer,
    clock: FakeClock,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    ledger = make_git_ledger()
    ledger.append("s", "decision", decision(0))

    def disk_full(*_args: object) -> None:
        raise OperationalError("durable write failed: no space left on device")

    monkeypatch.setattr(GitStorage, "_apply", disk_full)
    receipt = ledger.append("s", "decision", decision(1))  # durable in the journal
    with pytest.raises(LedgerUnavailable):
        ledger.append("s", "decision", decision(2))  # the writer stopped: fail closed
    with pytest.raises(LedgerUnavailable, match="not in its repository"):
        GitStorage(git_path).refs()  # a reader here would miss an acknowledged entry
    ledger.close()
    monkeypatch.undo()
    reopened = make_git_ledger()
    assert reopened.size == 2
    reader = GitStorage(git_path)
    try:
        stored = read_entry(reader, bytes.fromhex(receipt.commit))
        assert stored.entry_hash.hex() == receipt.entry_hash
        assert verify_repository(reader, [signer.public_key]).valid
    finally:
        reader.close()
