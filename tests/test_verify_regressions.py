"""Named regressions found by review: each once let bad evidence through or crashed."""

from __future__ import annotations

import base64
import subprocess
from collections.abc import Callable
from pathlib import Path

import pytest

from aegisflow.errors import InvalidEntry, MalformedData
from aegisflow.keys import Signer
from aegisflow.ledger import gitfmt
from aegisflow.ledger.bundle import export_session, verify_bundle
from aegisflow.ledger.checkpoint import Checkpoint
from aegisflow.ledger.entry import Entry, Genesis, parse_time
from aegisflow.ledger.gitstore import GitStorage
from aegisflow.ledger.ledger import Ledger
from aegisflow.ledger.verify import FindingKind, verify_repository
from tests.conftest import decision


@pytest.mark.parametrize(
    "time",
    [
        "2026-13-01T00:00:00.000000Z",
        "2026-04-06T24:00:00.000000Z",
        "2026-02-30T10:00:00.000000Z",
        "1969-12-31T23:59:59.500000Z",
        "2026-04-06T14:22:0\u0661.000000Z",  # an Arabic-Indic digit one
    ],
)
def test_impossible_times_are_refused(time: str) -> None:
    with pytest.raises(MalformedData):
        parse_time(time)
    with pytest.raises(InvalidEntry):
        Entry(ledger="a.b/c", index=0, session="s", seq=0, type="decision", prev="0" * 64,
              time=time, body={})  # fmt: skip


def test_entry_version_must_be_the_integer_one() -> None:
    with pytest.raises(InvalidEntry):
        Entry(ledger="a.b/c", index=0, session="s", seq=0, type="decision", prev="0" * 64,
              time="2026-04-06T14:22:01.000000Z", body={}, v=True)  # fmt: skip


@pytest.mark.parametrize("keys", [(["not", "an", "object"],), ({"fingerprint": 7},)])
def test_genesis_keys_must_be_objects_of_strings(keys: tuple) -> None:
    with pytest.raises(InvalidEntry):
        Genesis(ledger="a.b/c", created="2026-04-06T14:22:01.000000Z", keys=keys)


def _session_ledger(make: Callable[[], Ledger]) -> Ledger:
    ledger = make()
    for n in range(4):
        ledger.append("sess-x", "decision", decision(n))
    ledger.close_session("sess-x")
    ledger.close()
    return ledger


def test_session_export_entry_signatures_are_verified(
    make_git_ledger: Callable[[], Ledger], git_path: Path, tmp_path: Path, signer: Signer
) -> None:
    """An export commit is unsigned, so nothing pins entry commits: verify them all."""
    _session_ledger(make_git_ledger)
    bundle = tmp_path / "s.bundle"
    export_session(git_path, "sess-x", bundle)
    clone = tmp_path / "clone.git"
    subprocess.run(["git", "clone", "-q", "--mirror", str(bundle), str(clone)], check=True)
    storage = GitStorage(clone)
    head = storage.refs()["refs/sessions/sess-x"]
    _kind, data = storage.read(head)
    payload, gpgsig = gitfmt.split_signature(data)
    assert gpgsig is not None
    lines = gpgsig.splitlines()
    blob = bytearray(base64.b64decode("".join(lines[1:-1])))
    blob[-64:] = bytes(64)  # zero the signature, keep the armor canonical
    body = base64.b64encode(bytes(blob)).decode()
    armored = "\n".join([lines[0], *(body[i : i + 70] for i in range(0, len(body), 70)), lines[-1]])
    forged = gitfmt.commit_with_signature(payload, armored + "\n")
    storage.close()
    oid = subprocess.run(
        ["git", "--git-dir", str(clone), "hash-object", "-w", "-t", "commit", "--stdin"],
        input=forged, capture_output=True, check=True,
    ).stdout.decode().strip()  # fmt: skip
    subprocess.run(["git", "--git-dir", str(clone), "update-ref", "refs/sessions/sess-x", oid],
                   check=True)  # fmt: skip
    out = tmp_path / "forged.bundle"
    subprocess.run(["git", "--git-dir", str(clone), "bundle", "create", "-q", str(out), "--all"],
                   check=True)  # fmt: skip
    report = verify_bundle(out, [signer.public_key], session="sess-x")
    assert not report.valid
    assert FindingKind.COMMIT_SIGNATURE in {f.kind for f in report.findings}


def test_replacement_refs_do_not_change_what_is_verified(
    make_git_ledger: Callable[[], Ledger], git_path: Path, signer: Signer
) -> None:
    _session_ledger(make_git_ledger)
    genesis = subprocess.run(
        ["git", "--git-dir", str(git_path), "rev-parse", "refs/aegisflow/genesis"],
        capture_output=True, check=True, text=True,
    ).stdout.strip()  # fmt: skip
    head = subprocess.run(
        ["git", "--git-dir", str(git_path), "rev-parse", "refs/sessions/sess-x"],
        capture_output=True, check=True, text=True,
    ).stdout.strip()  # fmt: skip
    subprocess.run(["git", "--git-dir", str(git_path), "replace", head, genesis], check=True)
    storage = GitStorage(git_path)
    report = verify_repository(storage, [signer.public_key])
    storage.close()
    assert report.valid, [str(f) for f in report.findings]


def test_trusted_checkpoint_of_another_log_is_a_mismatch(
    make_git_ledger: Callable[[], Ledger], git_path: Path, signer: Signer
) -> None:
    _session_ledger(make_git_ledger)
    storage = GitStorage(git_path)
    other = Checkpoint(origin="someone.else/log", size=1, root=bytes(32))
    report = verify_repository(storage, [signer.public_key], trusted_checkpoint=other)
    storage.close()
    assert FindingKind.TRUSTED_CHECKPOINT_MISMATCH in {f.kind for f in report.findings}


def _forge_after_head(path: Path, attacker: Signer) -> tuple[bytes, str]:
    """Append an entry signed by ``attacker`` after a session head; return (head, forged)."""
    from aegisflow.ledger import render, sshsig
    from aegisflow.ledger.merkle import leaf_hash
    from aegisflow.ledger.reading import read_entry

    storage = GitStorage(path)
    head = storage.refs()["refs/sessions/sess-x"]
    stored = read_entry(storage, head)
    storage.close()
    entry = Entry(
        ledger=stored.entry.ledger, index=stored.entry.index + 1, session="sess-y", seq=0,
        type="approval", prev=stored.entry.prev, time=stored.entry.time,
        body={"reviewer": "mallory"},
    )  # fmt: skip
    data = entry.canonical()

    def put(kind: str, body: bytes) -> str:
        return subprocess.run(
            ["git", "--git-dir", str(path), "hash-object", "-w", "-t", kind, "--stdin"],
            input=body, capture_output=True, check=True,
        ).stdout.decode().strip()  # fmt: skip

    blob = put("blob", data)
    tree = put("tree", gitfmt.encode_tree([("100644", "entry.json", bytes.fromhex(blob))]))
    ident = stored.commit.author
    payload = gitfmt.commit_payload(
        bytes.fromhex(tree), [head], ident, ident, render.commit_message(entry, leaf_hash(data))
    )
    forged = put(
        "commit", gitfmt.commit_with_signature(payload, sshsig.sign(payload, attacker) + "\n")
    )
    subprocess.run(["git", "--git-dir", str(path), "update-ref", "refs/sessions/sess-y", forged],
                   check=True)  # fmt: skip
    return head, forged


@pytest.mark.parametrize("trick", ["grafts", "commit-graph"])
def test_git_side_files_cannot_pin_a_forged_commit(
    make_git_ledger: Callable[[], Ledger], git_path: Path, signer: Signer, trick: str
) -> None:
    """Grafts and commit-graph files bend git's walk; pinning must follow commit bytes."""
    ledger = make_git_ledger()
    for n in range(3):
        ledger.append("sess-x", "decision", decision(n))
    ledger.close()
    head, forged = _forge_after_head(git_path, Signer(bytes(32)))
    if trick == "grafts":
        parent = subprocess.run(
            ["git", "--git-dir", str(git_path), "rev-parse", f"{head.hex()}^"],
            capture_output=True, check=True, text=True,
        ).stdout.strip()  # fmt: skip
        (git_path / "info").mkdir(exist_ok=True)
        (git_path / "info" / "grafts").write_text(f"{head.hex()} {parent} {forged}\n")
    else:
        subprocess.run(
            ["git", "--git-dir", str(git_path), "commit-graph", "write", "--reachable"], check=True
        )
    storage = GitStorage(git_path)
    report = verify_repository(storage, [signer.public_key])
    storage.close()
    assert not report.valid
    assert any(
        f.kind == FindingKind.COMMIT_SIGNATURE and f.commit == forged for f in report.findings
    ), [str(f) for f in report.findings]
