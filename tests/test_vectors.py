"""Golden vectors: the format is frozen, and the vectors verify independently."""

from __future__ import annotations

import base64
import hashlib
import json
import subprocess
import sys
from pathlib import Path

import pytest

from aegisflow.keys import PublicKey
from aegisflow.ledger import sshsig
from aegisflow.ledger.checkpoint import open_checkpoint
from aegisflow.ledger.gitfmt import parse_commit
from aegisflow.ledger.note import parse_verifier_key
from aegisflow.ledger.storage import MemoryStorage
from aegisflow.ledger.verify import verify_repository

VECTORS = Path(__file__).parent / "vectors"


@pytest.fixture(scope="module")
def vectors() -> dict:
    return json.loads((VECTORS / "ledger-v1.json").read_text(encoding="utf-8"))


def test_generator_check_mode_agrees() -> None:
    proc = subprocess.run(
        [sys.executable, str(VECTORS / "generate.py"), "--check"],
        capture_output=True,
        text=True,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr


def test_entry_hashes_are_rfc6962_leaves(vectors: dict) -> None:
    for item in vectors["entries"]:
        leaf = hashlib.sha256(b"\x00" + item["bytes"].encode()).hexdigest()
        assert leaf == item["entry_hash"]
    assert vectors["entries"][-1]["entry_hash"] == vectors["session_manifest_hash"]


def test_object_ids_and_commit_signatures(vectors: dict) -> None:
    key = PublicKey(base64.b64decode(vectors["public_key_raw_b64"]))
    for oid, obj in vectors["objects"].items():
        data = base64.b64decode(obj["data_b64"])
        header = f"{obj['kind']} {len(data)}\0".encode()
        assert hashlib.sha1(header + data, usedforsecurity=False).hexdigest() == oid
        if obj["kind"] == "commit":
            commit = parse_commit(data)
            assert commit.gpgsig is not None
            sshsig.verify(commit.gpgsig, commit.payload, key)


def test_checkpoints_verify_with_the_verifier_key(vectors: dict) -> None:
    name, key = parse_verifier_key(vectors["verifier_key"])
    assert name == vectors["origin"]
    sizes = [open_checkpoint(cp["checkpoint"], [(name, key)]).size for cp in vectors["checkpoints"]]
    assert sizes == sorted(sizes)
    assert sizes[-1] == len(vectors["entries"])


def test_untrusted_subject_cannot_forge_a_trailer(vectors: dict) -> None:
    message = parse_commit(vectors["entries"][1]["commit"].encode()).message
    assert message.startswith("block shell.rm\\u000aDecision: allow /workspace\n")
    assert "\nDecision: block\n" in message


def test_vectors_replay_as_a_valid_ledger(vectors: dict) -> None:
    storage = MemoryStorage()
    for oid, obj in vectors["objects"].items():
        storage.objects[bytes.fromhex(oid)] = (obj["kind"], base64.b64decode(obj["data_b64"]))
    storage.ref_map = {name: bytes.fromhex(oid) for name, oid in vectors["refs"].items()}
    key = PublicKey(base64.b64decode(vectors["public_key_raw_b64"]))
    report = verify_repository(storage, [key], session="sess-a")
    assert report.valid
    assert report.findings == []
    assert report.sessions["sess-a"].manifest_hash == vectors["session_manifest_hash"]
