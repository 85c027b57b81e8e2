"""Import layering: the pure core imports no adapters, and each adapter lives in one place."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parent.parent / "aegisflow"

PURE_CORE = [
    "approvals.py",
    "canonical.py",
    "envelope.py",
    "errors.py",
    "ledger/checkpoint.py",
    "ledger/entry.py",
    "ledger/gitfmt.py",
    "ledger/manifest.py",
    "ledger/merkle.py",
    "ledger/note.py",
    "ledger/reading.py",
    "ledger/recovery.py",
    "ledger/render.py",
    "ledger/sequencer.py",
    "ledger/sshsig.py",
    "ledger/storage.py",
    "ledger/verify.py",
    "policy/__init__.py",
    "policy/engine.py",
    "policy/facts.py",
    "policy/glob.py",
    "policy/loader.py",
    "policy/model.py",
    "policy/normalize.py",
    "policy/shell.py",
]
ADAPTERS = {"pygit2", "aiohttp", "typer", "rich", "mcp"}
IO_MODULES = {"subprocess", "socket", "shutil", "tempfile", "threading", "asyncio", "os"}
ONLY_IN = {"nacl": {"keys.py"}, "pygit2": {"ledger/gitstore.py"}}


def imported_roots(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(), filename=str(path))
    roots: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            roots.update(alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            roots.add(node.module.split(".")[0])
    return roots


@pytest.mark.parametrize("module", PURE_CORE)
def test_pure_core_imports_no_adapter_or_io(module: str) -> None:
    path = PACKAGE / module
    assert path.exists(), f"pure-core module {module} is missing"
    bad = imported_roots(path) & (ADAPTERS | IO_MODULES)
    assert not bad, f"{module} imports {sorted(bad)}"


def test_adapter_libraries_are_confined() -> None:
    for path in PACKAGE.rglob("*.py"):
        rel = path.relative_to(PACKAGE).as_posix()
        for lib, allowed in ONLY_IN.items():
            if lib in imported_roots(path):
                assert rel in allowed, f"{rel} imports {lib}; only {sorted(allowed)} may"
