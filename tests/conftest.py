"""Shared fixtures: deterministic keys, clocks and ledgers on memory and on real git."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from aegisflow.keys import Signer
from aegisflow.ledger.gitstore import GitStorage
from aegisflow.ledger.ledger import Ledger
from aegisflow.ledger.storage import MemoryStorage

ORIGIN = "aegisflow.test/ledger"
SEED = bytes(range(32))


class FakeClock:
    """A clock that advances one millisecond per reading."""

    def __init__(self, start: datetime | None = None) -> None:
        self.now = start or datetime(2026, 4, 6, 14, 22, 1, tzinfo=UTC)

    def __call__(self) -> datetime:
        self.now += timedelta(milliseconds=1)
        return self.now


@pytest.fixture
def signer() -> Signer:
    return Signer(SEED)


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def memory_ledger(signer: Signer, clock: FakeClock) -> Iterator[Ledger]:
    ledger = Ledger.create(MemoryStorage(), signer, origin=ORIGIN, clock=clock)
    yield ledger
    ledger.close()


@pytest.fixture
def git_path(tmp_path: Path) -> Path:
    return tmp_path / "ledger.git"


@pytest.fixture
def make_git_ledger(
    git_path: Path, signer: Signer, clock: FakeClock
) -> Iterator[Callable[[], Ledger]]:
    """Create (first call) or reopen (later calls) the ledger at ``git_path``."""
    opened: list[Ledger] = []

    def make() -> Ledger:
        if git_path.exists():
            ledger = Ledger.open(GitStorage(git_path, writable=True), signer, clock=clock)
        else:
            ledger = Ledger.create(GitStorage.init(git_path), signer, origin=ORIGIN, clock=clock)
        opened.append(ledger)
        return ledger

    yield make
    for ledger in opened:
        ledger.close()


def decision(n: int, *, decision: str = "allow", tool: str = "github.get_file_contents") -> dict:
    """A realistic decision body."""
    return {
        "envelope_id": f"00000000-0000-4000-8000-{n:012d}",
        "decision": decision,
        "tool": tool,
        "target": "aegisflow/aegisflow",
        "policy": "pr-writer",
        "matched_rule": "git:github.get_*",
        "parameters": {"path": f"src/module_{n}.py", "ref": "main"},
    }
