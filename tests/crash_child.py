"""Child process for tests/test_crash.py: append to a git ledger until killed.

Usage: ``python tests/crash_child.py <repository> <threads>``. Opens the existing ledger
(running recovery), prints ``ready``, then appends from ``threads`` threads, each to its
own session, with a non-final manifest every so often. Every acknowledged entry is
printed as one JSON line, with one ``write`` system call, only after ``append`` (or
``close_session``) has returned, so the parent knows exactly what was acknowledged when
it sends SIGKILL.
"""

from __future__ import annotations

import json
import os
import sys
import threading
from pathlib import Path

from aegisflow.keys import Signer
from aegisflow.ledger.gitstore import GitStorage
from aegisflow.ledger.ledger import Ledger
from aegisflow.ledger.sequencer import Receipt

SEED = bytes(range(32))
MANIFEST_EVERY = 15


def emit(line: str) -> None:
    os.write(1, (line + "\n").encode())  # one write: a line is whole or absent


def acknowledge(receipt: Receipt) -> None:
    emit(
        json.dumps(
            {
                "index": receipt.index,
                "session": receipt.session,
                "seq": receipt.seq,
                "entry_hash": receipt.entry_hash,
                "commit": receipt.commit,
            }
        )
    )


def worker(ledger: Ledger, thread: int) -> None:
    session = f"t{thread}"
    n = 0
    while True:
        n += 1
        body = {
            "envelope_id": f"{os.getpid()}-{thread}-{n}",
            "decision": "allow",
            "tool": "github.get_file_contents",
            "target": "aegisflow/aegisflow",
            "parameters": {"n": n},
        }
        acknowledge(ledger.append(session, "decision", body))
        if n % MANIFEST_EVERY == 0:
            acknowledge(ledger.close_session(session, final=False))


def main() -> None:
    path, threads = Path(sys.argv[1]), int(sys.argv[2])
    ledger = Ledger.open(GitStorage(path, writable=True), Signer(SEED), checkpoint_interval=0.05)
    emit("ready")
    workers = [
        threading.Thread(target=worker, args=(ledger, t), daemon=True) for t in range(threads)
    ]
    for w in workers:
        w.start()
    for w in workers:
        w.join()


if __name__ == "__main__":
    main()
