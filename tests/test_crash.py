"""Crash consistency: SIGKILL a writer at random moments; nothing acknowledged is lost.

A child process (``tests/crash_child.py``) appends from several threads and prints
every receipt once ``append`` has returned. The parent kills its whole process group
(the writer and any ``git repack`` it started) with SIGKILL, reopens the ledger (which
runs recovery), and requires that the repository verifies and that every entry ever
acknowledged is still there, at the same index, with the same entry hash and commit.
"""

from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

from aegisflow.keys import Signer
from aegisflow.ledger.gitstore import GitStorage
from aegisflow.ledger.ledger import Ledger
from aegisflow.ledger.reading import read_entry, session_history
from aegisflow.ledger.storage import GENESIS_REF, SESSION_PREFIX
from aegisflow.ledger.verify import WARNINGS, verify_repository
from tests.conftest import ORIGIN, SEED

ROOT = Path(__file__).resolve().parent.parent
CHILD = Path(__file__).resolve().parent / "crash_child.py"
ROUNDS = 7
THREADS = 4
READY_TIMEOUT = 20.0


def _wait_ready(out: Path, proc: subprocess.Popen[bytes]) -> None:
    deadline = time.monotonic() + READY_TIMEOUT
    while time.monotonic() < deadline:
        if out.exists() and out.read_bytes().startswith(b"ready\n"):
            return
        if proc.poll() is not None:
            raise AssertionError(f"crash child exited early with {proc.returncode}")
        time.sleep(0.01)
    raise AssertionError("crash child did not open the ledger in time")


def _run_and_kill(path: Path, out: Path, err: Path, delay: float, wait_ready: bool) -> None:
    with out.open("wb") as stdout, err.open("wb") as stderr:
        proc = subprocess.Popen(
            [sys.executable, str(CHILD), str(path), str(THREADS)],
            cwd=ROOT,
            stdout=stdout,
            stderr=stderr,
            start_new_session=True,  # its own process group: the kill takes git repack too
        )
    try:
        if wait_ready:
            _wait_ready(out, proc)
        time.sleep(delay)
        assert proc.poll() is None, f"crash child died by itself: {err.read_text()[-2000:]}"
    finally:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()


def _acknowledged(out: Path) -> list[dict]:
    acks = []
    for line in out.read_bytes().split(b"\n"):
        if line.startswith(b"{"):
            acks.append(json.loads(line))
    return acks


def _present(storage: GitStorage) -> dict[int, str]:
    """Index to entry hash of every entry reachable from a session ref."""
    refs = storage.refs()
    genesis = refs[GENESIS_REF]
    found: dict[int, str] = {}
    for name, head in refs.items():
        if name.startswith(SESSION_PREFIX):
            for _seq, index, entry_hash in session_history(storage, head, genesis):
                assert index not in found, f"index {index} appears twice"
                found[index] = entry_hash.hex()
    return found


def test_sigkill_never_loses_an_acknowledged_entry(tmp_path: Path) -> None:
    seed = int.from_bytes(os.urandom(4), "big")
    rng = random.Random(seed)  # timings vary anyway; the seed is in every message
    signer = Signer(SEED)
    path = tmp_path / "ledger.git"
    Ledger.create(GitStorage.init(path), signer, origin=ORIGIN).close()

    acknowledged: dict[int, dict] = {}
    for round_ in range(ROUNDS):
        out, err = tmp_path / f"acks-{round_}.jsonl", tmp_path / f"child-{round_}.err"
        # Most rounds kill a busy writer; some kill it while it starts up or recovers.
        wait_ready = round_ % 3 != 1
        delay = rng.uniform(0.2, 1.0) if wait_ready else rng.uniform(0.0, 0.6)
        _run_and_kill(path, out, err, delay, wait_ready)
        for ack in _acknowledged(out):
            assert ack["index"] not in acknowledged, f"index {ack['index']} acknowledged twice"
            acknowledged[ack["index"]] = ack
        where = f"round {round_}, delay {delay:.2f}s, seed {seed}"

        ledger = Ledger.open(GitStorage(path, writable=True), signer)  # recovery
        try:
            reader = GitStorage(path)
            try:
                report = verify_repository(reader, [signer.public_key])
                errors = [str(f) for f in report.findings if f.kind not in WARNINGS]
                assert report.valid, f"{where}: {errors[:10]}"
                present = _present(reader)
                for index, ack in acknowledged.items():
                    assert present.get(index) == ack["entry_hash"], (
                        f"{where}: acknowledged entry {index} of {ack['session']} is lost "
                        f"or changed"
                    )
                    stored = read_entry(reader, bytes.fromhex(ack["commit"]))
                    assert stored.entry_hash.hex() == ack["entry_hash"]
                    assert (stored.entry.session, stored.entry.seq) == (ack["session"], ack["seq"])
                assert report.total_entries == len(present) >= len(acknowledged)
            finally:
                reader.close()
        finally:
            ledger.close()
    assert len(acknowledged) > ROUNDS, "the child acknowledged almost nothing"
