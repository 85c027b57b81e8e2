"""Generate (or --check) the golden vectors of the AegisFlow ledger format.

Usage:
    python tests/vectors/generate.py           # rewrite tests/vectors/ledger-v1.json
    python tests/vectors/generate.py --check   # exit 1 if the file differs from a fresh run

The vectors are a complete small ledger written with the RFC 8032 section 7.1 TEST 1 key
at fixed times: the genesis, one session of decision, approval and result entries closed
by a signed manifest, a second session, and the signed checkpoints, with every git object
byte for byte. Ed25519 is deterministic, so the output is stable; any change to it is a
change of the on-disk format and must be deliberate.
"""

from __future__ import annotations

import argparse
import base64
import hashlib
import json
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from aegisflow.keys import Signer
from aegisflow.ledger import gitfmt
from aegisflow.ledger.ledger import Ledger
from aegisflow.ledger.manifest import parse_manifest_body
from aegisflow.ledger.note import verifier_key
from aegisflow.ledger.reading import read_commit, read_entry, read_files
from aegisflow.ledger.storage import GENESIS_REF, MAIN_REF, MemoryStorage

OUT = Path(__file__).with_name("ledger-v1.json")
SEED = bytes.fromhex("9d61b19deffd5a60ba844af492ec2cc44449c5697b326919703bac031cae7f60")
ORIGIN = "aegisflow.example/ledger/vectors"


class Clock:
    def __init__(self) -> None:
        self.now = datetime(2026, 4, 6, 14, 22, 1, tzinfo=UTC)

    def __call__(self) -> datetime:
        self.now += timedelta(seconds=1)
        return self.now


def build() -> dict[str, Any]:
    signer = Signer(SEED)
    storage = MemoryStorage()
    ledger = Ledger.create(storage, signer, origin=ORIGIN, clock=Clock(), checkpoint_interval=10**9)
    review = "d9e8a1b3-2c4f-4e6d-9a7b-5c3e8f1d2a4b"
    ledger.append(
        "sess-a",
        "decision",
        {
            "envelope_id": "a7890917-44c6-44b0-8af4-283eb2933843",
            "decision": "allow",
            "tool": "github.get_file_contents",
            "target": "aegisflow/aegisflow",
            "matched_rule": "git:github.get_*",
            "policy": "pr-writer",
        },
    )
    ledger.append(
        "sess-b",
        "decision",
        {
            "envelope_id": "c4d7e2f1-8a3b-4c92-b6e0-1f5a8d9c3b47",
            "decision": "block",
            "tool": "shell.rm\nDecision: allow",
            "target": "/workspace",
            "matched_rule": "shell:shell.rm",
            "policy": "pr-writer",
            "reason": "destructive shell command",
        },
    )
    ledger.append(
        "sess-a",
        "decision",
        {
            "envelope_id": review,
            "decision": "review",
            "tool": "github.create_pull_request",
            "target": "aegisflow/aegisflow",
            "policy": "pr-writer",
            "parameters": {"title": "fix: caf\u00e9 \U0001f600", "base": "main"},
        },
    )
    ledger.checkpoint()
    ledger.append(
        "sess-a",
        "approval",
        {
            "envelope_id": review,
            "tool": "github.create_pull_request",
            "reviewer": "alice",
            "comment": "looks right",
        },
    )
    ledger.append(
        "sess-a",
        "result",
        {
            "envelope_id": review,
            "tool": "github.create_pull_request",
            "summary": "pr/1247",
            "result_sha256": "ab" * 32,
            "size": 2048,
        },
    )
    manifest_receipt = ledger.close_session("sess-a")
    ledger.close()  # fmt: skip

    refs = storage.refs()
    genesis_commit = storage.read(refs[GENESIS_REF])[1]
    genesis_bytes = read_files(storage, read_commit(storage, refs[GENESIS_REF]))["genesis.json"]
    entries = []
    for index in range(ledger.size):
        oid = next(
            o for o, (kind, data) in storage.objects.items()
            if kind == "commit" and f"\nIndex: {index}\n".encode() in data
        )  # fmt: skip
        stored = read_entry(storage, oid)
        item: dict[str, Any] = {
            "index": index,
            "bytes": stored.data.decode(),
            "entry_hash": stored.entry_hash.hex(),
            "commit_oid": oid.hex(),
            "commit": storage.read(oid)[1].decode(),
            "signed_payload_sha256": hashlib.sha256(stored.commit.payload).hexdigest(),
        }
        if stored.entry.type == "manifest":
            manifest, _ = parse_manifest_body(stored.entry.body)
            item["manifest_signing_input"] = manifest.signing_input().decode()
        entries.append(item)
    checkpoints = []
    oid = refs[MAIN_REF]
    while oid != refs[GENESIS_REF]:
        commit = read_commit(storage, oid)
        files = read_files(storage, commit)
        checkpoints.append({
            "commit_oid": oid.hex(),
            "commit": storage.read(oid)[1].decode(),
            "checkpoint": files["checkpoint"].decode(),
            "compact-range": files["compact-range"].decode(),
        })  # fmt: skip
        oid = commit.parents[0]
    checkpoints.reverse()
    key = signer.public_key
    return {
        "description": (
            "AegisFlow ledger format v1 golden vectors; see docs/ledger-format.md. "
            "Strings are the exact UTF-8 bytes of each object."
        ),
        "ed25519_seed_hex": SEED.hex(),
        "public_key": key.openssh(),
        "public_key_raw_b64": base64.b64encode(key.raw).decode(),
        "verifier_key": verifier_key(ORIGIN, key),
        "origin": ORIGIN,
        "genesis": {
            "bytes": genesis_bytes.decode(),
            "genesis_hash": hashlib.sha256(genesis_bytes).hexdigest(),
            "commit_oid": refs[GENESIS_REF].hex(),
            "commit": genesis_commit.decode(),
        },
        "entries": entries,
        "checkpoints": checkpoints,
        "session_manifest_hash": manifest_receipt.entry_hash,
        "refs": {name: oid.hex() for name, oid in sorted(refs.items())},
        "objects": {
            oid.hex(): {"kind": kind, "data_b64": base64.b64encode(data).decode()}
            for oid, (kind, data) in sorted(storage.objects.items())
        },
        "tree_entry_mode": gitfmt.MODE_BLOB,
    }


def render(data: dict[str, Any]) -> str:
    return json.dumps(data, indent=1, sort_keys=True, ensure_ascii=False) + "\n"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="compare instead of writing")
    args = parser.parse_args()
    text = render(build())
    if args.check:
        if not OUT.exists() or OUT.read_text(encoding="utf-8") != text:
            print(f"{OUT} is out of date: the ledger format changed", file=sys.stderr)
            return 1
        print(f"{OUT} matches")
        return 0
    OUT.write_text(text, encoding="utf-8")
    print(f"wrote {OUT}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
