"""Properties of the evidence ledger, checked with hypothesis on in-memory storage.

The central one: any single-byte change of any committed entry yields a finding. The
change is made under the same object id (storage corruption), read back both through
:class:`MemoryStorage`, which like git refuses bytes that do not hash to their id, and
through :class:`Unchecked`, which returns them anyway so that only the verifier's own
checks can find the change; and it is made the way an attacker without the key would
make it (new blob, tree and commit, descendants re-chained, session ref moved).
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from aegisflow.errors import IntegrityError, ObjectMissing
from aegisflow.keys import Signer
from aegisflow.ledger import gitfmt
from aegisflow.ledger.ledger import Ledger
from aegisflow.ledger.reading import read_commit, read_entry
from aegisflow.ledger.sequencer import ENTRY_FILE, FILE_MODE, RANGE_FILE
from aegisflow.ledger.storage import MAIN_REF, GitObject, MemoryStorage, session_ref
from aegisflow.ledger.verify import FindingKind, verify_repository
from tests.conftest import ORIGIN, SEED, FakeClock, decision

SETTINGS = settings(
    max_examples=200,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
)


@dataclass(frozen=True)
class Fixed:
    storage: MemoryStorage
    commits: tuple[bytes, ...]
    """Entry commits in index order."""
    blobs: tuple[bytes, ...]
    """Entry blob ids in index order."""


@cache
def fixed_ledger() -> Fixed:
    """Seven entries in three sessions, one closed by a manifest, four checkpoints."""
    storage = MemoryStorage()
    ledger = Ledger.create(
        storage, Signer(SEED), origin=ORIGIN, clock=FakeClock(), checkpoint_interval=3600
    )
    receipts = [ledger.append(f"p{n % 2}", "decision", decision(n)) for n in range(4)]
    ledger.checkpoint()
    receipts.append(ledger.close_session("p0"))
    receipts.append(ledger.append("p1", "result", {"envelope_id": "e", "summary": "ok"}))
    receipts.append(ledger.append("p2", "approval", {"reviewer": "alice", "envelope_id": "e"}))
    ledger.close()
    commits = tuple(bytes.fromhex(r.commit) for r in receipts)
    blobs = tuple(read_commit(storage, c).tree for c in commits)
    blobs = tuple(gitfmt.parse_tree(storage.read(t)[1])[0][2] for t in blobs)
    assert verify_repository(storage, [Signer(SEED).public_key]).findings == []
    return Fixed(storage, commits, blobs)


def copy(storage: MemoryStorage) -> MemoryStorage:
    out = MemoryStorage()
    out.objects = dict(storage.objects)
    out.ref_map = dict(storage.ref_map)
    return out


class Unchecked:
    """An ObjectReader over a copy of a MemoryStorage that returns whatever is stored.

    No object-id check: what a verification finds here, the verifier found itself.
    """

    def __init__(self, storage: MemoryStorage) -> None:
        self.objects = dict(storage.objects)
        self.ref_map = dict(storage.ref_map)

    def read(self, oid: bytes) -> GitObject:
        try:
            return self.objects[oid]
        except KeyError:
            raise ObjectMissing(f"object {oid.hex()} is missing") from None

    def refs(self) -> dict[str, bytes]:
        return dict(self.ref_map)


READERS = {"memory-storage": copy, "unchecked": Unchecked}


@st.composite
def byte_change(draw: st.DrawFn, data: bytes) -> bytes:
    position = draw(st.integers(0, len(data) - 1))
    new = draw(st.integers(0, 254))
    new += new >= data[position]  # any value but the old one
    return data[:position] + bytes([new]) + data[position + 1 :]


@SETTINGS
@given(data=st.data())
def test_any_byte_change_of_a_stored_entry_is_found(data: st.DataObject) -> None:
    """Corruption in place: the blob keeps its id, its bytes change."""
    fixed = fixed_ledger()
    blob = data.draw(st.sampled_from(fixed.blobs), label="entry")
    original = fixed.storage.objects[blob][1]
    changed = data.draw(byte_change(original), label="bytes")
    for name, make in READERS.items():
        reader = make(fixed.storage)
        reader.objects[blob] = ("blob", changed)
        report = verify_repository(reader, [Signer(SEED).public_key])
        assert report.findings, f"a changed entry verified clean through {name}"
        assert not report.valid


def _rechain(storage: MemoryStorage, commit: bytes, changed: bytes) -> None:
    """What an attacker does: new blob, tree and commit, descendants re-parented.

    Commits keep their old signatures (the attacker has no key); the session ref moves
    to the new head; main still names the old heads.
    """
    stored = read_entry(storage, commit)
    session = stored.entry.session
    oid = storage.ref_map[session_ref(session)]
    chain = []
    while oid != commit:
        chain.append(oid)
        oid = read_commit(storage, oid).parents[0]
    chain.reverse()  # descendants of ``commit``, oldest first
    blob = gitfmt.object_id("blob", changed)
    tree_data = gitfmt.encode_tree([(FILE_MODE, ENTRY_FILE, blob)])
    tree = gitfmt.object_id("tree", tree_data)
    storage.objects[blob] = ("blob", changed)
    storage.objects[tree] = ("tree", tree_data)

    def remake(old: bytes, tree: bytes | None, parent: bytes | None) -> bytes:
        parsed = read_commit(storage, old)
        payload = gitfmt.commit_payload(
            tree or parsed.tree,
            [parent] if parent else list(parsed.parents),
            parsed.author,
            parsed.committer,
            parsed.message,
        )
        assert parsed.gpgsig is not None
        raw = gitfmt.commit_with_signature(payload, parsed.gpgsig)
        new = gitfmt.object_id("commit", raw)
        storage.objects[new] = ("commit", raw)
        return new

    head = remake(commit, tree, None)
    for old in chain:
        head = remake(old, None, head)
    storage.ref_map[session_ref(session)] = head


@SETTINGS
@given(data=st.data())
def test_any_byte_change_rewritten_by_an_attacker_is_found(data: st.DataObject) -> None:
    """The same change made through new objects and a re-chained session."""
    fixed = fixed_ledger()
    i = data.draw(st.integers(0, len(fixed.commits) - 1), label="entry")
    original = fixed.storage.objects[fixed.blobs[i]][1]
    changed = data.draw(byte_change(original), label="bytes")
    storage = copy(fixed.storage)
    _rechain(storage, fixed.commits[i], changed)
    report = verify_repository(storage, [Signer(SEED).public_key])
    assert not report.valid
    # The rewritten commit either no longer holds a valid entry or is not validly signed.
    kinds = {f.kind for f in report.findings}
    assert kinds & {FindingKind.COMMIT_SIGNATURE, FindingKind.ENTRY_MALFORMED}, kinds


@settings(max_examples=40, deadline=None)
@given(
    ops=st.lists(
        st.one_of(
            st.tuples(st.just("append"), st.integers(0, 4)),
            st.tuples(st.just("close"), st.integers(0, 4), st.booleans()),
            st.tuples(st.just("checkpoint")),
        ),
        min_size=1,
        max_size=30,
    )
)
def test_any_honest_ledger_verifies_clean(ops: list[tuple]) -> None:
    """Whatever honest sequence of appends, manifests and checkpoints: no finding."""
    signer = Signer(SEED)
    storage = MemoryStorage()
    ledger = Ledger.create(storage, signer, origin=ORIGIN, clock=FakeClock())
    closed: set[str] = set()
    opened: set[str] = set()
    entries = 0
    for op in ops:
        if op[0] == "append":
            session = f"h{op[1]}"
            if session in closed:
                continue
            ledger.append(session, "decision", decision(entries))
            opened.add(session)
            entries += 1
        elif op[0] == "close":
            session = f"h{op[1]}"
            if session in closed or session not in opened:
                continue
            ledger.close_session(session, final=op[2])
            entries += 1
            if op[2]:
                closed.add(session)
        else:
            ledger.checkpoint()
    ledger.close()
    report = verify_repository(storage, [signer.public_key])
    if entries == 0:
        assert [f.kind for f in report.findings] == [FindingKind.EMPTY_LEDGER]
    else:
        assert report.findings == []
        assert report.total_entries == entries


# -- other stored objects --------------------------------------------------------------


def _armor_variant(raw: bytes, variant: str) -> bytes:
    start = raw.index(b"-----BEGIN SSH SIGNATURE-----\n") + 30
    if variant == "pad-bits":
        # One "=" of padding: the last base64 digit carries two unused bits.
        end = raw.index(b"=\n -----END SSH SIGNATURE-----")
        alphabet = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/"
        digit = alphabet[alphabet.index(raw[end - 1]) ^ 1]
        return raw[: end - 1] + bytes([digit]) + raw[end:]
    newline = raw.index(b"\n ", start)
    return raw[:newline] + (b" " if variant == "newline-to-space" else b"\t") + raw[newline + 1 :]


@pytest.mark.parametrize("variant", ["newline-to-space", "newline-to-tab", "pad-bits"])
@pytest.mark.parametrize(
    "reader",
    [
        "memory-storage",
        "unchecked",
    ],
)
def test_signature_armor_changes_are_found(reader: str, variant: str) -> None:
    """Same signature, other armor bytes: the commit's bytes changed, so a finding."""
    fixed = fixed_ledger()
    storage = READERS[reader](fixed.storage)
    commit = fixed.commits[2]  # under the newest checkpoint
    raw = storage.objects[commit][1]
    changed = _armor_variant(raw, variant)
    assert changed != raw
    storage.objects[commit] = ("commit", changed)
    assert verify_repository(storage, [Signer(SEED).public_key]).findings


@pytest.mark.parametrize("reader", list(READERS))
def test_compact_range_changes_are_found(reader: str) -> None:
    """Recovery trusts the compact range, so the verifier must check it too."""
    fixed = fixed_ledger()
    storage = READERS[reader](fixed.storage)
    tree = read_commit(storage, storage.ref_map[MAIN_REF]).tree
    oid = {name: o for _m, name, o in gitfmt.parse_tree(storage.objects[tree][1])}[RANGE_FILE]
    data = storage.objects[oid][1]
    at = data.index(b"\n") + 1
    digit = b"1" if data[at] == ord("0") else b"0"
    storage.objects[oid] = ("blob", data[:at] + digit + data[at + 1 :])
    with pytest.raises(IntegrityError):
        Ledger.open(storage, Signer(SEED)).close()
    assert verify_repository(storage, [Signer(SEED).public_key]).findings
