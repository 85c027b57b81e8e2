"""Offline verification: replay a ledger repository and report every problem found.

Pure over an :class:`~aegisflow.ledger.storage.ObjectReader`; trust comes only from the
keys passed in (never from keys stored in the repository under test). Verification
never stops at the first problem: it returns a :class:`Report` of every
:class:`Finding`, and :meth:`Report.raise_for_findings` is the strict wrapper.

:func:`verify_repository` works in two modes, chosen by what ``main`` holds:

* **ledger**: ``main`` is the checkpoint chain; every entry is replayed and every signed
  checkpoint's Merkle root is recomputed from all entry hashes in index order;
* **session export** (a session bundle): ``main`` is an export commit holding the newest
  signed checkpoint, an inclusion proof per entry, and the checkpoints the session's
  manifests name with consistency proofs to the newest.

Steps, in order:

1. read the genesis (origin, genesis hash);
2. walk ``main``: checkpoint commits (or the export commit), checking commit and note
   signatures against the trusted keys;
3. discover every entry commit reachable from session refs and checkpoint parents;
4. check each entry commit: objects readable with ids checked, entry canonical, commit
   payload exactly the one the entry determines (message, trailers, author), SSH
   signature by a trusted key; commits pinned by a signed checkpoint commit take a fast
   path that re-reads and re-hashes but does not re-render or re-verify (see
   :class:`CheckContext`);
5. check the sessions: ``seq`` continuity, forks, ``prev`` links, git parents, refs;
6. check the global log: unique, gap-free indices; every checkpoint root recomputed
   (or every inclusion proof verified); a trusted checkpoint from outside, if given;
7. check every manifest: signature, ranges, session root, covering checkpoint;
8. give the full check to every pinned commit a finding names or that is contested.
"""

from __future__ import annotations

import base64
import binascii
import functools
import json
import re
from collections import defaultdict
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from enum import StrEnum
from operator import attrgetter
from typing import Any

from aegisflow.errors import (
    AegisError,
    IntegrityError,
    KeyMaterialError,
    MalformedData,
    NotALedger,
    ObjectMissing,
)
from aegisflow.keys import PublicKey
from aegisflow.ledger import gitfmt, render, sshsig
from aegisflow.ledger.checkpoint import Checkpoint, open_checkpoint
from aegisflow.ledger.entry import Entry, Genesis, genesis_hash, parse_time
from aegisflow.ledger.manifest import parse_manifest_body
from aegisflow.ledger.merkle import (
    CompactRange,
    leaf_hash,
    root,
    verify_consistency,
    verify_inclusion,
)
from aegisflow.ledger.reading import read_commit, read_files
from aegisflow.ledger.sequencer import (
    CHECKPOINT_FILE,
    COMMITTER_EMAIL,
    COMMITTER_NAME,
    ENTRY_FILE,
    FILE_MODE,
    GENESIS_FILE,
    RANGE_FILE,
    checkpoint_message,
    genesis_message,
)
from aegisflow.ledger.storage import GENESIS_REF, MAIN_REF, SESSION_PREFIX, ObjectReader

EXPORT_FILE = "export.json"
_HEX64 = re.compile(r"[0-9a-f]{64}")
EXPORT_TYPE = "aegisflow/session-export"


class FindingKind(StrEnum):
    """What broke. Values are stable identifiers for reports and tests."""

    EMPTY_LEDGER = "empty_ledger"
    UNSIGNED = "unsigned"
    BAD_GENESIS = "bad_genesis"
    OBJECT_MISSING = "object_missing"
    OBJECT_CORRUPT = "object_corrupt"
    ENTRY_MALFORMED = "entry_malformed"
    COMMIT_MISMATCH = "commit_mismatch"
    COMMIT_SIGNATURE = "bad_commit_signature"
    WRONG_LEDGER = "wrong_ledger"
    PREV_MISMATCH = "prev_mismatch"
    PARENT_MISMATCH = "parent_mismatch"
    SEQ_GAP = "seq_gap"
    FORK = "fork"
    INDEX_GAP = "index_gap"
    DUPLICATE_INDEX = "duplicate_index"
    CHECKPOINT_SIGNATURE = "bad_checkpoint_signature"
    CHECKPOINT_MALFORMED = "checkpoint_malformed"
    CHECKPOINT_MISMATCH = "checkpoint_root_mismatch"
    CHECKPOINT_REGRESSION = "checkpoint_regression"
    CHECKPOINT_PARENT = "checkpoint_parent"
    TRUNCATED = "truncated_below_checkpoint"
    TRUSTED_CHECKPOINT_MISMATCH = "trusted_checkpoint_mismatch"
    INCLUSION = "inclusion_proof"
    MANIFEST_SIGNATURE = "bad_manifest_signature"
    MANIFEST_MISMATCH = "manifest_mismatch"
    MANIFEST_CHECKPOINT = "manifest_checkpoint_unknown"
    AFTER_CLOSE = "entry_after_close"
    REF_MISSING = "missing_session_ref"
    REF_BEHIND = "ref_behind"
    REF_FORGED = "forged_ref"
    UNCOVERED = "uncovered_entries"
    TRUSTED_CHECKPOINT_UNCHECKED = "trusted_checkpoint_unchecked"
    BAD_BUNDLE = "bad_bundle"


WARNINGS = frozenset({FindingKind.UNCOVERED, FindingKind.TRUSTED_CHECKPOINT_UNCHECKED})
"""Kinds that do not make a ledger invalid (entries are still individually signed)."""


@dataclass(frozen=True, slots=True)
class Finding:
    kind: FindingKind
    detail: str
    index: int | None = None
    session: str | None = None
    commit: str | None = None

    @property
    def is_error(self) -> bool:
        return self.kind not in WARNINGS

    def to_dict(self) -> dict[str, Any]:
        return {
            "kind": self.kind.value,
            "severity": "error" if self.is_error else "warning",
            "index": self.index,
            "session": self.session,
            "commit": self.commit,
            "detail": self.detail,
        }

    def __str__(self) -> str:
        where = " ".join(
            f"{k}={v}"
            for k, v in (("index", self.index), ("session", self.session), ("commit", self.commit))
            if v is not None
        )
        return f"{self.kind.value}: {self.detail}" + (f" ({where})" if where else "")


@dataclass(slots=True)
class EntryRecord:
    """What the global checks need of one verified entry commit."""

    commit: bytes
    parent: bytes | None
    index: int
    session: str
    seq: int
    type: str
    prev: str
    entry_hash: bytes
    body: Mapping[str, Any] | None = None
    line: str | None = None


@dataclass(slots=True)
class EntryCheck:
    """The result of checking one entry commit: a record if it was readable."""

    commit: bytes
    record: EntryRecord | None
    findings: list[Finding] = field(default_factory=list)
    fast: bool = False
    """Checked on the fast path: valid only if the commit turns out to be pinned."""


@dataclass(slots=True)
class SessionSummary:
    session: str
    entries: int = 0
    manifests: int = 0
    head_seq: int = -1
    manifest_hash: str | None = None
    closed: bool = False
    lines: list[str] = field(default_factory=list)


@dataclass(slots=True)
class Report:
    """The outcome of a verification: every finding, and what was verified."""

    mode: str
    origin: str | None = None
    findings: list[Finding] = field(default_factory=list)
    total_entries: int = 0
    checkpoints: int = 0
    latest_checkpoint: Checkpoint | None = None
    sessions: dict[str, SessionSummary] = field(default_factory=dict)

    @property
    def valid(self) -> bool:
        return not any(f.is_error for f in self.findings)

    def add(self, kind: FindingKind, detail: str, **where: Any) -> None:
        self.findings.append(Finding(kind, detail, **where))

    def raise_for_findings(self) -> None:
        """The strict wrapper.

        Raises:
            IntegrityError: Listing every error finding, if there is one.
        """
        errors = [str(f) for f in self.findings if f.is_error]
        if errors:
            raise IntegrityError(
                f"ledger verification failed with {len(errors)} finding(s):\n" + "\n".join(errors)
            )

    def to_dict(self) -> dict[str, Any]:
        cp = self.latest_checkpoint
        return {
            "valid": self.valid,
            "mode": self.mode,
            "origin": self.origin,
            "total_entries": self.total_entries,
            "checkpoints": self.checkpoints,
            "latest_checkpoint": (
                {"size": cp.size, "root": base64.b64encode(cp.root).decode()} if cp else None
            ),
            "sessions": {
                s.session: {
                    "entries": s.entries,
                    "manifests": s.manifests,
                    "head_seq": s.head_seq,
                    "session_manifest_hash": s.manifest_hash,
                    "closed": s.closed,
                }
                for s in self.sessions.values()
            },
            "findings": [f.to_dict() for f in self.findings],
        }


@dataclass(frozen=True, slots=True)
class CheckContext:
    """What a (possibly remote) entry checker needs; picklable.

    ``pinned`` marks commits reachable from the heads named by a checkpoint commit
    whose own signature and note verified. Their bytes are pinned twice over: the entry
    bytes by the signed Merkle root (step 6, SHA-256), and every commit byte, the SSH
    signature and message included, by git ids from that signed checkpoint commit
    (each commit names its parent; forging a commit with a given id takes a SHA-1
    second preimage, out of reach even for SHA-1, and readers check that bytes hash to
    their ids). So pinned commits are checked for what the log needs (readable objects,
    the entry's fields, its hash, its links) and not re-rendered or re-signed: that
    would re-check bytes already fixed by signed data. Unless ``all_signatures``; every
    other commit gets every check, its signature verified cryptographically, and so
    does every pinned commit a finding points at (the suspects of step 8).
    """

    origin: str
    genesis: bytes
    trusted: tuple[bytes, ...]
    pinned: bool = False
    all_signatures: bool = False
    line_session: str | None = None
    all_lines: bool = False


Progress = Callable[[str, int, int], None]
"""``progress(stage, done, total)`` for long runs; adapters draw it (a rich progress bar)."""

Advance = Callable[[int], None]
"""Called by an entry checker with the number of commits just checked."""

EntryChecker = Callable[[CheckContext, Sequence[bytes], Advance], list[EntryCheck]]
"""Checks a list of entry commits; :func:`check_entry_commits` or a parallel adapter."""

CHUNK = 2000
"""Commits checked between two progress reports."""


# -- step 4: one entry commit ----------------------------------------------------------


def _signature_finding(
    gpgsig: str | None, payload: bytes, trusted: Mapping[bytes, PublicKey]
) -> str | None:
    """None if the commit carries a canonical SSHSIG by a trusted key over ``payload``."""
    if gpgsig is None:
        return "commit is not signed"
    try:
        if not gpgsig.endswith("\n") or gpgsig[:-1] != sshsig.canonical_armor(gpgsig):
            return "commit signature armor is not in its canonical form"
        sig = sshsig.parse(gpgsig)
        key = trusted.get(sig.public_key.raw)
        if key is None:
            return f"commit is signed by untrusted key {sig.public_key.fingerprint}"
        sshsig.verify(gpgsig, payload, key)
    except AegisError as e:
        return f"commit signature does not verify: {e.message}"
    return None


@functools.lru_cache(maxsize=4096)
def _ident(time: str) -> str:
    seconds = int(parse_time(time).timestamp())
    return gitfmt.format_ident(COMMITTER_NAME, COMMITTER_EMAIL, seconds)


def _read_kind(reader: ObjectReader, oid: bytes, kind: str) -> bytes:
    """Read an object, checking its kind and its id.

    Pinning (see :class:`CheckContext`) rests on bytes hashing to their ids, so the id is
    checked here unless the reader says it checks ids itself (``verifies_ids``, as git
    does with libgit2's strict hash verification).
    """
    found, data = reader.read(oid)
    if found != kind:
        raise MalformedData(f"object {oid.hex()} is a {found}, not a {kind}")
    if not getattr(reader, "verifies_ids", False) and gitfmt.object_id(kind, data) != oid:
        raise MalformedData(f"object {oid.hex()} is corrupt: its bytes do not hash to its id")
    return data


def _object_finding(error: AegisError, commit: str) -> Finding:
    """``object_missing`` or ``object_corrupt`` for a failed read."""
    kind = (
        FindingKind.OBJECT_MISSING
        if isinstance(error, ObjectMissing)
        else FindingKind.OBJECT_CORRUPT
    )
    return Finding(kind, error.message, commit=commit)


def _malformed(oid: bytes, data: bytes, error: AegisError) -> Finding:
    """An ENTRY_MALFORMED finding, located by the commit's (unverified) trailers."""
    try:
        trailers = render.parse_trailers(gitfmt.parse_commit(data).message)
    except AegisError:
        trailers = {}
    index = trailers.get("Index", "")
    return Finding(
        FindingKind.ENTRY_MALFORMED,
        error.message,
        index=int(index) if index.isdigit() else None,
        session=trailers.get("Session"),
        commit=oid.hex(),
    )


def check_entry_commit(
    reader: ObjectReader, ctx: CheckContext, trusted: Mapping[bytes, PublicKey], oid: bytes
) -> EntryCheck:
    """Step 4 for one commit: read it, check its entry, payload and signature.

    The commit's payload must be byte for byte the one its entry determines (tree,
    parent, identities, message with trailers), so nothing in the commit can say
    anything the hashed entry does not.
    """
    if ctx.pinned and not ctx.all_signatures:
        pinned = _check_pinned(reader, ctx, oid)
        if pinned is not None:
            return pinned
    check = EntryCheck(oid, None)
    hex_oid = oid.hex()
    try:
        data = _read_kind(reader, oid, "commit")
        payload, gpgsig = gitfmt.split_signature(data)
        tree, parents = gitfmt.commit_links(payload)
        names = gitfmt.parse_tree(_read_kind(reader, tree, "tree"))
    except AegisError as e:
        check.findings.append(_object_finding(e, hex_oid))
        return check
    if len(names) != 1 or names[0][:2] != (FILE_MODE, ENTRY_FILE):
        check.findings.append(
            _malformed(oid, data, MalformedData("commit does not hold exactly entry.json"))
        )
        return check
    try:
        blob = _read_kind(reader, names[0][2], "blob")
    except AegisError as e:
        check.findings.append(_object_finding(e, hex_oid))
        return check
    try:
        entry = Entry.from_bytes(blob)
    except AegisError as e:
        check.findings.append(_malformed(oid, data, e))
        return check
    digest = leaf_hash(blob)
    where: dict[str, Any] = {"index": entry.index, "session": entry.session, "commit": hex_oid}
    if len(parents) != 1:
        check.findings.append(
            Finding(
                FindingKind.PARENT_MISMATCH, "entry commit must have exactly one parent", **where
            )
        )
    ident = _ident(entry.time)
    expected = gitfmt.commit_payload(
        tree, list(parents), ident, ident, render.commit_message(entry, digest)
    )
    if payload != expected:
        check.findings.append(
            Finding(
                FindingKind.COMMIT_MISMATCH,
                "commit message, trailers or identity differ from what the entry determines",
                **where,
            )
        )
    problem = _signature_finding(gpgsig, payload, trusted)
    if problem:
        check.findings.append(Finding(FindingKind.COMMIT_SIGNATURE, problem, **where))
    if entry.ledger != ctx.origin:
        check.findings.append(
            Finding(FindingKind.WRONG_LEDGER, f"entry belongs to ledger {entry.ledger!r}", **where)
        )
    want_line = ctx.all_lines or entry.session == ctx.line_session
    check.record = EntryRecord(
        commit=oid,
        parent=parents[0] if parents else None,
        index=entry.index,
        session=entry.session,
        seq=entry.seq,
        type=entry.type,
        prev=entry.prev,
        entry_hash=digest,
        body=dict(entry.body) if entry.type == "manifest" else None,
        line=render.verify_line(entry) if want_line else None,
    )
    return check


_ENTRY_TAIL = re.compile(
    rb',"index":(?P<index>0|[1-9][0-9]{0,15}),"ledger":"(?P<ledger>[A-Za-z0-9._/:-]+)"'
    rb',"prev":"(?P<prev>[0-9a-f]{64})","seq":(?P<seq>0|[1-9][0-9]{0,15})'
    rb',"session":"(?P<session>[A-Za-z0-9._-]+)","time":"[0-9TZ:.-]+"'
    rb',"type":"(?P<type>[a-z][a-z0-9_]{0,31})","v":1}'
)
_ENTRY_TREE = f"{FILE_MODE} {ENTRY_FILE}\0".encode()


def _check_pinned(reader: ObjectReader, ctx: CheckContext, oid: bytes) -> EntryCheck | None:
    """Step 4 for a pinned commit (see :class:`CheckContext`), or None for the full check.

    Reads the three objects (ids checked) and takes the entry's fields from the tail of
    its canonical bytes, parsing the whole entry only for manifests and verify lines.
    Anything unexpected (an unreadable object, an odd tree, bytes not in the writer's
    layout, another ledger) returns None, so the full check reports it precisely.
    """
    try:
        data = _read_kind(reader, oid, "commit")
        tree, parents = gitfmt.commit_links(data)
        listing = _read_kind(reader, tree, "tree")
        # The only tree an entry commit has: one regular file named entry.json.
        if len(parents) != 1 or len(listing) != 38 or not listing.startswith(_ENTRY_TREE):
            return None
        blob = _read_kind(reader, listing[18:], "blob")
    except AegisError:
        return None
    # The writer's canonical layout puts every field but the body after it, in key order;
    # the last ',"index":' is the top-level one (no later field can contain it).
    at = blob.rfind(b',"index":')
    tail = _ENTRY_TAIL.fullmatch(blob, at) if at > 0 and blob.startswith(b'{"body":') else None
    if tail is None or tail["ledger"].decode() != ctx.origin:
        return None
    session, kind = tail["session"].decode(), tail["type"].decode()
    body = None
    line = None
    if kind == "manifest" or ctx.all_lines or session == ctx.line_session:
        try:
            entry = Entry.from_bytes(blob)
        except AegisError:
            return None
        body = dict(entry.body) if kind == "manifest" else None
        if ctx.all_lines or session == ctx.line_session:
            line = render.verify_line(entry)
    return EntryCheck(
        oid,
        fast=True,
        record=EntryRecord(
            commit=oid,
            parent=parents[0],
            index=int(tail["index"]),
            session=session,
            seq=int(tail["seq"]),
            type=kind,
            prev=tail["prev"].decode(),
            entry_hash=leaf_hash(blob),
            body=body,
            line=line,
        ),
    )


def check_entry_commits(
    reader: ObjectReader, ctx: CheckContext, oids: Sequence[bytes], advance: Advance | None = None
) -> list[EntryCheck]:
    """Step 4 for many commits, in this process."""
    trusted = {raw: PublicKey(raw) for raw in ctx.trusted}
    out: list[EntryCheck] = []
    for start in range(0, len(oids), CHUNK):
        chunk = oids[start : start + CHUNK]
        out.extend(check_entry_commit(reader, ctx, trusted, oid) for oid in chunk)
        if advance is not None:
            advance(len(chunk))
    return out


# -- the whole repository ---------------------------------------------------------------


@dataclass(slots=True)
class _Signed:
    """A checkpoint found in the repository; ``checkpoint`` is None if it did not verify."""

    checkpoint: Checkpoint | None
    commit: bytes
    heads: tuple[bytes, ...] = ()
    consistency: tuple[bytes, ...] | None = None
    commit_signed: bool = True
    """Whether the checkpoint commit's own SSH signature verified (it pins the heads)."""


def verify_repository(
    reader: ObjectReader,
    trusted_keys: Sequence[PublicKey],
    *,
    session: str | None = None,
    trusted_checkpoint: Checkpoint | None = None,
    checker: EntryChecker | None = None,
    all_lines: bool = False,
    all_signatures: bool = False,
    progress: Progress | None = None,
) -> Report:
    """Replay the ledger in ``reader`` (see the module docstring for the steps).

    Args:
        reader: The repository.
        trusted_keys: Ledger keys the verifier trusts; nothing else is trusted.
        session: Report verify lines and the manifest hash of this session.
        trusted_checkpoint: A checkpoint obtained out of band (e.g. the last one seen);
            the ledger must contain it, or it was truncated or forked.
        checker: Runs step 4 over a list of commits (default: in this process).
        all_lines: Compute verify lines for every session.
        all_signatures: Give every commit the full check, its SSH signature verified
            cryptographically, pinned or not (see :class:`CheckContext`).
        progress: Told how step 4 advances.

    Raises:
        NotALedger: If the repository holds no AegisFlow ledger at all.
        KeyMaterialError: If no trusted key is given.
    """
    if not trusted_keys:
        raise KeyMaterialError("verification needs at least one trusted key")
    refs = reader.refs()
    report = Report(mode="ledger")
    genesis_oid = refs.get(GENESIS_REF)
    if genesis_oid is None or MAIN_REF not in refs:
        raise NotALedger(
            "not an AegisFlow ledger: no refs/aegisflow/genesis or refs/heads/main",
            hint="pass the ledger repository (or a bundle made by aegisctl evidence export)",
        )
    trusted = {k.raw: k for k in trusted_keys}

    # 1. genesis
    origin, ghash = _check_genesis(reader, genesis_oid, trusted, report)
    report.origin = origin
    if origin is None or ghash is None:
        return report
    if trusted_checkpoint is not None and trusted_checkpoint.origin != origin:
        report.add(
            FindingKind.TRUSTED_CHECKPOINT_MISMATCH,
            f"the trusted checkpoint is of log {trusted_checkpoint.origin!r}, not {origin!r}",
        )

    # 2. main: checkpoint chain or export commit
    signed: list[_Signed] = []
    export: dict[str, Any] | None = None
    roots_for_discovery: list[bytes] = []
    main_commit = _read_commit_or_report(reader, refs[MAIN_REF], report)
    if main_commit is not None and EXPORT_FILE in _tree_names(reader, main_commit):
        report.mode = "session-export"
        export = _read_export(reader, refs[MAIN_REF], main_commit, origin, trusted, report, signed)
        roots_for_discovery.extend(main_commit.parents)
    elif main_commit is not None:
        _walk_checkpoints(reader, refs[MAIN_REF], genesis_oid, origin, trusted, report, signed)
        for s in signed:
            roots_for_discovery.extend(s.heads)

    # 3. discover entry commits
    session_refs = {
        name[len(SESSION_PREFIX) :]: oid
        for name, oid in refs.items()
        if name.startswith(SESSION_PREFIX)
    }
    starts = [*session_refs.values(), *roots_for_discovery]
    walk = getattr(reader, "reachable", None)  # a fast native walk, where storage has one
    order = walk(starts, [genesis_oid]) if walk else None
    if order is None:
        order = _discover(reader, starts, genesis_oid)

    # 4. check each entry commit. Every commit first tries the fast path; the pinned set
    # is then computed from the parent ids the checked commits themselves name (never
    # from git's view of the graph, which grafts or a commit-graph file could bend),
    # and any commit that is not pinned gets the full check.
    pin_roots = [
        head for s in signed if s.checkpoint is not None and s.commit_signed for head in s.heads
    ]
    ctx = CheckContext(
        origin=origin,
        genesis=genesis_oid,
        trusted=tuple(trusted),
        all_signatures=all_signatures,
        line_session=session,
        all_lines=all_lines,
    )
    done = 0

    def advance(count: int) -> None:
        nonlocal done
        done += count
        if progress is not None:
            progress("checking entries", min(done, len(order)), len(order))

    run = checker or (lambda c, o, a: check_entry_commits(reader, c, o, a))
    fast_ctx = replace(ctx, pinned=bool(pin_roots) and not all_signatures)
    checks = run(fast_ctx, order, advance)
    pinned = _pinned(checks, pin_roots)
    recheck = [c.commit for c in checks if c.fast and c.commit not in pinned]
    if recheck:
        full = {c.commit: c for c in run(ctx, recheck, advance)}
        checks = [full.get(c.commit, c) for c in checks]
    records: list[EntryRecord] = []
    for check in checks:
        report.findings.extend(check.findings)
        if check.record is not None:
            records.append(check.record)

    # 5. sessions
    contested: set[bytes] = set()  # commits whose index or seq another commit claims too
    by_session = _check_sessions(records, ghash, genesis_oid, session_refs, report, contested)

    # 6. the global log
    if export is None:
        _check_log(records, signed, trusted_checkpoint, report, contested)
    else:
        _check_inclusion(records, export, signed, trusted_checkpoint, report)

    # 7. manifests
    _check_manifests(by_session, signed, trusted, origin, report)

    # 8. suspects
    _check_suspects(reader, records, pinned, contested, ctx, trusted, report)
    report.total_entries = len(records)
    if not records:
        report.add(FindingKind.EMPTY_LEDGER, "the ledger holds no entries")
    return report


def _pinned(checks: Sequence[EntryCheck], roots: Sequence[bytes]) -> set[bytes]:
    """Entry commits reachable from ``roots`` through the parents their own bytes name."""
    parent = {c.commit: c.record.parent for c in checks if c.record is not None}
    pinned: set[bytes] = set()
    stack = list(roots)
    while stack:
        oid = stack.pop()
        if oid in pinned or oid not in parent:
            continue
        pinned.add(oid)
        if (up := parent[oid]) is not None:
            stack.append(up)
    return pinned


def _check_suspects(
    reader: ObjectReader,
    records: list[EntryRecord],
    pinned: set[bytes],
    contested: set[bytes],
    ctx: CheckContext,
    trusted: Mapping[bytes, PublicKey],
    report: Report,
) -> None:
    """Step 8: give the full check to pinned commits a finding names or that are contested.

    Where something is wrong around a pinned commit (a fork, a duplicate index, a
    finding naming it), the full check, signature included, tells a forged commit from
    a genuine one and says precisely what is wrong with it.
    """
    named = {f.commit for f in report.findings if f.commit is not None}
    seen = {(f.kind, f.commit) for f in report.findings}
    for r in records:
        if r.commit not in pinned or not (r.commit in contested or r.commit.hex() in named):
            continue
        for finding in check_entry_commit(reader, ctx, trusted, r.commit).findings:
            if (finding.kind, finding.commit) not in seen:
                report.findings.append(finding)


def _tree_names(reader: ObjectReader, commit: gitfmt.ParsedCommit) -> set[str]:
    try:
        _kind, data = reader.read(commit.tree)
        return {name for _mode, name, _oid in gitfmt.parse_tree(data)}
    except AegisError:
        return set()


def _read_commit_or_report(
    reader: ObjectReader, oid: bytes, report: Report
) -> gitfmt.ParsedCommit | None:
    try:
        return read_commit(reader, oid)
    except AegisError as e:
        report.findings.append(_object_finding(e, oid.hex()))
        return None


def _check_genesis(
    reader: ObjectReader, oid: bytes, trusted: Mapping[bytes, PublicKey], report: Report
) -> tuple[str | None, str | None]:
    commit = _read_commit_or_report(reader, oid, report)
    if commit is None:
        return None, None
    try:
        files = read_files(reader, commit)
        data = files[GENESIS_FILE]
        doc = Genesis.from_bytes(data)
    except (AegisError, KeyError) as e:
        report.add(FindingKind.BAD_GENESIS, f"genesis is unreadable: {e}", commit=oid.hex())
        return None, None
    if commit.parents:
        report.add(FindingKind.BAD_GENESIS, "genesis commit has parents", commit=oid.hex())
    if set(files) != {GENESIS_FILE} or commit.message != genesis_message(doc):
        report.add(
            FindingKind.BAD_GENESIS,
            "genesis commit holds other files or its message differs from the document",
            commit=oid.hex(),
        )
    problem = _signature_finding(commit.gpgsig, commit.payload, trusted)
    if problem:
        report.add(FindingKind.COMMIT_SIGNATURE, f"genesis: {problem}", commit=oid.hex())
    return doc.ledger, genesis_hash(data)


def _open_note(
    text: bytes, origin: str, trusted: Mapping[bytes, PublicKey], report: Report, commit: str
) -> Checkpoint | None:
    try:
        cp = open_checkpoint(text, [(origin, k) for k in trusted.values()])
    except AegisError as e:
        kind = (
            FindingKind.CHECKPOINT_MALFORMED
            if isinstance(e, MalformedData)
            else FindingKind.CHECKPOINT_SIGNATURE
        )
        report.add(kind, e.message, commit=commit)
        return None
    return cp


def _walk_checkpoints(
    reader: ObjectReader,
    tip: bytes,
    genesis: bytes,
    origin: str,
    trusted: Mapping[bytes, PublicKey],
    report: Report,
    signed: list[_Signed],
) -> None:
    oid = tip
    seen: set[bytes] = set()
    chain: list[_Signed] = []
    while oid != genesis:
        if oid in seen:
            report.add(FindingKind.CHECKPOINT_PARENT, "checkpoint chain loops", commit=oid.hex())
            break
        seen.add(oid)
        commit = _read_commit_or_report(reader, oid, report)
        if commit is None:
            break
        hex_oid = oid.hex()
        problem = _signature_finding(commit.gpgsig, commit.payload, trusted)
        if problem:
            report.add(FindingKind.COMMIT_SIGNATURE, f"checkpoint: {problem}", commit=hex_oid)
        commit_signed = problem is None
        if not commit.parents:
            report.add(
                FindingKind.CHECKPOINT_PARENT,
                "checkpoint chain ends before reaching the genesis",
                commit=hex_oid,
            )
            break
        try:
            files = read_files(reader, commit)
        except AegisError as e:
            report.findings.append(_object_finding(e, hex_oid))
            files = None
        note = files.get(CHECKPOINT_FILE) if files is not None else None
        cp = _open_note(note, origin, trusted, report, hex_oid) if note is not None else None
        if files is not None and note is None:
            report.add(
                FindingKind.CHECKPOINT_MALFORMED,
                "commit on main holds no checkpoint",
                commit=hex_oid,
            )
        elif (
            files is not None
            and cp is not None
            and (problem := _checkpoint_commit_problem(commit, files, cp))
        ):
            report.add(FindingKind.CHECKPOINT_MALFORMED, problem, commit=hex_oid)
        # An unverified checkpoint (cp None) is kept: the entries under it are still checked.
        chain.append(_Signed(cp, oid, tuple(commit.parents[1:]), commit_signed=commit_signed))
        oid = commit.parents[0]
    chain.reverse()
    signed.extend(chain)
    report.checkpoints = sum(1 for s in signed if s.checkpoint is not None)


def _checkpoint_commit_problem(
    commit: gitfmt.ParsedCommit, files: Mapping[str, bytes], cp: Checkpoint
) -> str | None:
    """Why a checkpoint commit is not exactly what the writer makes for ``cp``, or None."""
    if set(files) != {CHECKPOINT_FILE, RANGE_FILE}:
        return f"checkpoint tree holds {sorted(files)}, not {CHECKPOINT_FILE} and {RANGE_FILE}"
    problem = _compact_range_problem(files[RANGE_FILE], cp)
    if problem:
        return f"compact-range is wrong: {problem}"
    if commit.message != checkpoint_message(cp, len(commit.parents) - 1):
        return "checkpoint commit message differs from its checkpoint"
    if commit.author != commit.committer:
        return "checkpoint commit author and committer differ"
    return None


def _compact_range_problem(data: bytes, cp: Checkpoint) -> str | None:
    """Why ``compact-range`` (size line, then lowercase hex nodes) does not match ``cp``."""
    try:
        size_line, *nodes = data.decode("ascii").split("\n")[:-1]
        compact = CompactRange.from_nodes(cp.size, [bytes.fromhex(n) for n in nodes])
    except (ValueError, UnicodeDecodeError, MalformedData) as e:
        return str(e)
    if size_line != str(cp.size) or not data.endswith(b"\n"):
        return "its size line differs from the checkpoint"
    if not all(_HEX64.fullmatch(n) for n in nodes):
        return "its nodes are not 64 lowercase hex digits each"
    if compact.root() != cp.root:
        return "its nodes do not hash to the checkpoint root"
    return None


def _read_export(
    reader: ObjectReader,
    oid: bytes,
    commit: gitfmt.ParsedCommit,
    origin: str,
    trusted: Mapping[bytes, PublicKey],
    report: Report,
    signed: list[_Signed],
) -> dict[str, Any] | None:
    hex_oid = oid.hex()
    try:
        data = read_files(reader, commit)[EXPORT_FILE]
        export = json.loads(data)
        if not isinstance(export, dict) or export.get("type") != EXPORT_TYPE:
            raise MalformedData("not an AegisFlow session export")
        if export.get("ledger") != origin:
            raise MalformedData(f"export is of ledger {export.get('ledger')!r}, not {origin!r}")
        latest_note = export["checkpoint"].encode()
        others = export["checkpoints"]
        if not isinstance(export["inclusion"], dict) or not isinstance(others, list):
            raise MalformedData("export proofs are malformed")
    except (AegisError, KeyError, ValueError, AttributeError, TypeError) as e:
        report.add(FindingKind.BAD_BUNDLE, f"export commit is unreadable: {e}", commit=hex_oid)
        return None
    latest = _open_note(latest_note, origin, trusted, report, hex_oid)
    if latest is None:
        return None
    for item in others:
        try:
            cp = _open_note(item["note"].encode(), origin, trusted, report, hex_oid)
            proof = tuple(bytes.fromhex(h) for h in item["consistency"])
        except (KeyError, ValueError, AttributeError, TypeError) as e:
            report.add(
                FindingKind.BAD_BUNDLE, f"export checkpoint is malformed: {e}", commit=hex_oid
            )
            continue
        if cp is None:
            continue
        if not verify_consistency(cp.size, latest.size, cp.root, latest.root, proof):
            report.add(
                FindingKind.CHECKPOINT_MISMATCH,
                f"checkpoint of size {cp.size} is not consistent with the newest ({latest.size})",
                commit=hex_oid,
            )
            continue
        signed.append(_Signed(cp, oid, consistency=proof, commit_signed=False))
    # The export commit is unsigned, so nothing pins the entry commits' ids: every entry
    # signature of an export is verified cryptographically (commit_signed=False).
    signed.append(_Signed(latest, oid, commit_signed=False))
    report.checkpoints = len(signed)
    return export


def _discover(reader: ObjectReader, starts: Iterable[bytes], genesis: bytes) -> list[bytes]:
    """Every commit reachable from ``starts`` down to the genesis, each once."""
    seen: set[bytes] = {genesis}
    order: list[bytes] = []
    stack = [oid for oid in starts if oid != genesis]
    while stack:
        oid = stack.pop()
        if oid in seen:
            continue
        seen.add(oid)
        order.append(oid)
        try:
            _tree, parents = gitfmt.commit_links(_read_kind(reader, oid, "commit"))
        except AegisError:
            continue  # reported when the commit is checked
        stack.extend(p for p in parents if p not in seen)
    return order


# -- step 5: sessions ---------------------------------------------------------------


def _check_link(
    r: EntryRecord,
    before: Sequence[EntryRecord],
    ghash: str,
    genesis: bytes,
    closed: bool,
    report: Report,
) -> None:
    """``prev``, git parent and seq continuity of one entry; ``before`` holds seq - 1."""
    problems: list[tuple[FindingKind, str]] = []
    if r.seq == 0:
        prev_ok, parent_ok = r.prev == ghash, r.parent == genesis
    elif len(before) == 1:
        prev_ok = before[0].entry_hash.hex() == r.prev
        parent_ok = before[0].commit == r.parent
    else:
        prev_ok = any(b.entry_hash.hex() == r.prev for b in before)
        parent_ok = any(b.commit == r.parent for b in before)
        if not before:
            problems.append((FindingKind.SEQ_GAP, f"no entry with seq {r.seq - 1}"))
    if not prev_ok:
        problems.append(
            (
                FindingKind.PREV_MISMATCH,
                "prev does not equal the hash of the session's previous entry",
            )
        )
    if not parent_ok:
        problems.append(
            (
                FindingKind.PARENT_MISMATCH,
                "git parent is not the commit of the session's previous entry",
            )
        )
    if closed:
        problems.append((FindingKind.AFTER_CLOSE, "entry follows the session's final manifest"))
    for kind, detail in problems:
        report.add(kind, detail, index=r.index, session=r.session, commit=r.commit.hex())


def _check_sessions(
    records: list[EntryRecord],
    ghash: str,
    genesis: bytes,
    session_refs: Mapping[str, bytes],
    report: Report,
    contested: set[bytes],
) -> dict[str, list[EntryRecord]]:
    by_session: dict[str, list[EntryRecord]] = defaultdict(list)
    for r in records:
        by_session[r.session].append(r)
    for name, recs in by_session.items():
        recs.sort(key=attrgetter("seq", "index"))
        summary = SessionSummary(name)
        report.sessions[name] = summary
        # Runs of records sharing a seq: one record each, unless the session forked.
        runs: list[list[EntryRecord]] = []
        for r in recs:
            if runs and runs[-1][0].seq == r.seq:
                runs[-1].append(r)
            else:
                runs.append([r])
        before: list[EntryRecord] = []
        for run in runs:
            seq = run[0].seq
            if len(run) > 1:
                contested.update(r.commit for r in run)
                report.add(
                    FindingKind.FORK,
                    f"{len(run)} entries claim seq {seq}",
                    session=name,
                    index=run[1].index,
                    commit=run[1].commit.hex(),
                )
            if before and before[0].seq != seq - 1:
                before = []
            for r in run:
                _check_link(r, before, ghash, genesis, summary.closed, report)
                if r.type == "manifest":
                    summary.manifests += 1
                    summary.manifest_hash = r.entry_hash.hex()
                    summary.closed = bool(r.body and r.body.get("final") is True)
                else:
                    summary.entries += 1
                if r.line is not None:
                    summary.lines.append(r.line)
            before = run
        newest = recs[-1]
        summary.head_seq = newest.seq
        ref = session_refs.get(name)
        if ref is None:
            report.add(
                FindingKind.REF_MISSING,
                "session has entries but no refs/sessions ref",
                session=name,
                commit=newest.commit.hex(),
            )
        elif ref != newest.commit:
            at = next((r for r in recs if r.commit == ref), None)
            if at is None:
                report.add(
                    FindingKind.REF_FORGED,
                    "session ref points at an object that is not an entry of this session",
                    session=name,
                    commit=ref.hex(),
                )
            else:
                newer = [r.type for r in recs if r.seq > at.seq]
                what = "a manifest" if "manifest" in newer else f"{len(newer)} newer entries"
                report.add(
                    FindingKind.REF_BEHIND,
                    f"session ref is at seq {at.seq}, behind {what}",
                    session=name,
                    index=at.index,
                    commit=ref.hex(),
                )
    for name, ref in session_refs.items():
        if name not in by_session:
            report.add(
                FindingKind.REF_FORGED,
                "session ref points at an object that is not an entry of this session",
                session=name,
                commit=ref.hex(),
            )
    return by_session


# -- step 6: the global log ---------------------------------------------------------


def _check_log(
    records: list[EntryRecord],
    signed: list[_Signed],
    trusted_checkpoint: Checkpoint | None,
    report: Report,
    contested: set[bytes],
) -> None:
    by_index: dict[int, EntryRecord] = {}
    claimed: dict[int, list[EntryRecord]] = {}  # only the indices claimed more than once
    for r in records:
        first = by_index.setdefault(r.index, r)
        if first is not r:
            claimed.setdefault(r.index, [first]).append(r)
    for index, group in claimed.items():
        contested.update(r.commit for r in group)
        for extra in group[1:]:
            report.add(
                FindingKind.DUPLICATE_INDEX,
                f"{len(group)} entries claim index {index}",
                index=index,
                session=extra.session,
                commit=extra.commit.hex(),
            )
    top = max(by_index, default=-1) + 1
    missing_from: int | None = None
    for index in range(top + 1):
        if index < top and index not in by_index:
            if missing_from is None:
                missing_from = index
        elif missing_from is not None:
            span = (
                f"{missing_from}" if index - 1 == missing_from else f"{missing_from}..{index - 1}"
            )
            report.add(FindingKind.INDEX_GAP, f"no entry with index {span}", index=missing_from)
            missing_from = None

    verified = [(s.checkpoint, s) for s in signed if s.checkpoint is not None]
    sizes = sorted({cp.size for cp, _ in verified})
    previous = -1
    for cp, s in verified:
        if cp.size < previous:
            report.add(
                FindingKind.CHECKPOINT_REGRESSION,
                f"checkpoint size {cp.size} is below its predecessor's {previous}",
                commit=s.commit.hex(),
            )
        previous = max(previous, cp.size)
    wanted: dict[int, bytes | None] = dict.fromkeys(sizes)
    if trusted_checkpoint is not None:
        wanted.setdefault(trusted_checkpoint.size, None)
    tree = CompactRange()
    if 0 in wanted:
        wanted[0] = tree.root()
    blocked = ""
    for index in range(top):
        record = by_index.get(index)
        if record is None or index in claimed:
            blocked = f"index {index} is claimed by {len(claimed[index])} entries" if record else ""
            break
        tree.append(record.entry_hash)
        if tree.size in wanted:
            wanted[tree.size] = tree.root()
    contiguous = tree.size

    index_of = {r.commit: r.index for r in records}
    for cp, s in verified:
        hex_oid = s.commit.hex()
        got = wanted.get(cp.size)
        if got is None and blocked:
            report.add(
                FindingKind.CHECKPOINT_MISMATCH,
                f"cannot recompute the root of the first {cp.size} entries: {blocked}",
                index=contiguous,
                commit=hex_oid,
            )
        elif got is None:
            report.add(
                FindingKind.TRUNCATED,
                f"signed checkpoint covers {cp.size} entries but only {contiguous} "
                "contiguous entries are present",
                index=contiguous,
                commit=hex_oid,
            )
        elif got != cp.root:
            report.add(
                FindingKind.CHECKPOINT_MISMATCH,
                f"Merkle root of the first {cp.size} entries differs from the signed checkpoint",
                commit=hex_oid,
            )
        for head in s.heads:
            idx = index_of.get(head)
            if idx is None or idx >= cp.size:
                report.add(
                    FindingKind.CHECKPOINT_PARENT,
                    "checkpoint parent is not an entry it covers",
                    commit=head.hex(),
                )
    if trusted_checkpoint is not None:
        got = wanted.get(trusted_checkpoint.size)
        if got is None and blocked:
            report.add(
                FindingKind.TRUSTED_CHECKPOINT_MISMATCH,
                f"cannot recompute the root of the first {trusted_checkpoint.size} entries "
                f"for the trusted checkpoint: {blocked}",
                index=contiguous,
            )
        elif got is None:
            report.add(
                FindingKind.TRUNCATED,
                f"the trusted checkpoint covers {trusted_checkpoint.size} entries but only "
                f"{contiguous} contiguous entries are present",
                index=contiguous,
            )
        elif got != trusted_checkpoint.root:
            report.add(
                FindingKind.TRUSTED_CHECKPOINT_MISMATCH,
                f"the first {trusted_checkpoint.size} entries do not match the trusted checkpoint",
            )

    if records and not verified:
        report.add(FindingKind.UNSIGNED, "no checkpoint signed by a trusted key covers the ledger")
    elif verified:
        latest = max((cp for cp, _ in verified), key=lambda cp: cp.size)
        report.latest_checkpoint = latest
        newer = sum(1 for index in by_index if index >= latest.size)
        if newer:
            report.add(
                FindingKind.UNCOVERED,
                f"{newer} entries are newer than the latest checkpoint",
                index=latest.size,
            )


def _check_inclusion(
    records: list[EntryRecord],
    export: Mapping[str, Any],
    signed: list[_Signed],
    trusted_checkpoint: Checkpoint | None,
    report: Report,
) -> None:
    if not signed:
        report.add(FindingKind.UNSIGNED, "the export holds no checkpoint signed by a trusted key")
        return
    latest = signed[-1].checkpoint
    if latest is None:  # export checkpoints are only kept once verified
        return
    report.latest_checkpoint = latest
    if trusted_checkpoint is not None:
        if trusted_checkpoint.size > latest.size:
            report.add(
                FindingKind.TRUNCATED,
                f"the export's checkpoint covers {latest.size} entries, fewer than the "
                f"trusted checkpoint's {trusted_checkpoint.size}",
            )
        elif trusted_checkpoint.size == latest.size and trusted_checkpoint.root != latest.root:
            report.add(
                FindingKind.TRUSTED_CHECKPOINT_MISMATCH,
                "the export's checkpoint differs from the trusted checkpoint of the same size",
            )
        elif trusted_checkpoint.size < latest.size:
            report.add(
                FindingKind.TRUSTED_CHECKPOINT_UNCHECKED,
                "a session export carries no consistency proof from the trusted checkpoint; "
                "verify the whole ledger to check it",
            )
    proofs = export.get("inclusion", {})
    seen: set[int] = set()
    for r in records:
        where: dict[str, Any] = {"index": r.index, "session": r.session, "commit": r.commit.hex()}
        if r.index in seen:
            report.add(FindingKind.DUPLICATE_INDEX, f"two entries claim index {r.index}", **where)
        seen.add(r.index)
        try:
            proof = [bytes.fromhex(h) for h in proofs[str(r.index)]]
        except (KeyError, ValueError, TypeError):
            report.add(FindingKind.INCLUSION, "no inclusion proof for this entry", **where)
            continue
        if not verify_inclusion(r.entry_hash, r.index, latest.size, proof, latest.root):
            report.add(
                FindingKind.INCLUSION,
                f"entry is not included in the signed checkpoint of size {latest.size}",
                **where,
            )


# -- step 7: manifests --------------------------------------------------------------


def _check_manifests(
    by_session: Mapping[str, list[EntryRecord]],
    signed: list[_Signed],
    trusted: Mapping[bytes, PublicKey],
    origin: str,
    report: Report,
) -> None:
    known = {(s.checkpoint.size, s.checkpoint.root) for s in signed if s.checkpoint is not None}
    keys_by_id = {k.key_id: k for k in trusted.values()}
    for name, recs in by_session.items():
        by_seq = {r.seq: r for r in recs}
        for r in recs:
            if r.type != "manifest" or r.body is None:
                continue
            where: dict[str, Any] = {"index": r.index, "session": name, "commit": r.commit.hex()}
            try:
                manifest, signature = parse_manifest_body(r.body)
            except (MalformedData, binascii.Error) as e:
                report.add(
                    FindingKind.MANIFEST_MISMATCH,
                    e.message if isinstance(e, AegisError) else str(e),
                    **where,
                )
                continue
            key = keys_by_id.get(manifest.key_id)
            if key is None or not manifest.verify(signature, key):
                report.add(
                    FindingKind.MANIFEST_SIGNATURE,
                    "manifest is not signed by a trusted key",
                    **where,
                )
            covered = [by_seq.get(seq) for seq in range(manifest.first_seq, manifest.last_seq + 1)]
            problems = []
            if manifest.ledger != origin or manifest.session != name:
                problems.append("names another ledger or session")
            if manifest.last_seq != r.seq - 1:
                problems.append("does not end at the entry before it")
            if manifest.first_seq != 0:
                problems.append("does not start at the session's first entry (seq 0)")
            if any(c is None for c in covered):
                problems.append("covers entries that are missing")
            else:
                present = [c for c in covered if c is not None]
                if present[0].index != manifest.first_index or (
                    present[-1].index != manifest.last_index
                ):
                    problems.append("index range differs from the entries")
                if root([c.entry_hash for c in present]) != manifest.session_root:
                    problems.append("session root differs from the entries")
            for problem in problems:
                report.add(FindingKind.MANIFEST_MISMATCH, f"manifest {problem}", **where)
            if (manifest.checkpoint_size, manifest.checkpoint_root) not in known:
                report.add(
                    FindingKind.MANIFEST_CHECKPOINT,
                    f"manifest names a checkpoint of size {manifest.checkpoint_size} that is "
                    "not among the verified checkpoints",
                    **where,
                )
