"""Exporting the ledger as git bundles and verifying bundles offline.

An adapter: it runs the ``git`` binary (``git bundle create`` streams a 100k-entry
ledger in well under a second; pygit2 can neither write bundles quickly nor read them)
and uses temporary repositories.

* ``--all``: the ledger repository as it is (``main``, every session ref, the genesis).
* ``--session S``: a temporary repository whose object store borrows the ledger's (git
  alternates) gets one unsigned *export commit* on ``main``: its parent is the session's
  head, and its ``export.json`` holds the newest signed checkpoint, an RFC 6962 inclusion
  proof for every entry of the session, and the checkpoints the session's manifests name
  with consistency proofs to the newest. The bundle holds the session's chain down to
  the genesis and nothing of other sessions. Everything in it is checked against
  signatures; the export commit itself needs no key.

Verifying a bundle unpacks it into a fresh repository with ``git fetch`` (index-pack
checks every object; ``git bundle verify`` alone would not notice a flipped byte in the
pack), then replays it with :func:`aegisflow.ledger.verify.verify_repository`.
"""

from __future__ import annotations

import contextlib
import json
import os
import subprocess
import tempfile
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from aegisflow.errors import AegisError, BundleError, NotALedger, OperationalError
from aegisflow.keys import PublicKey
from aegisflow.ledger import gitfmt, render
from aegisflow.ledger.checkpoint import Checkpoint
from aegisflow.ledger.entry import validate_session_id
from aegisflow.ledger.gitstore import GitStorage
from aegisflow.ledger.manifest import parse_manifest_body
from aegisflow.ledger.merkle import consistency_proof, inclusion_proofs
from aegisflow.ledger.reading import read_commit, read_files, session_entries
from aegisflow.ledger.sequencer import CHECKPOINT_FILE, FILE_MODE
from aegisflow.ledger.storage import (
    GENESIS_REF,
    MAIN_REF,
    ObjectReader,
    session_ref,
)
from aegisflow.ledger.verify import (
    EXPORT_FILE,
    EXPORT_TYPE,
    EntryChecker,
    FindingKind,
    Progress,
    Report,
    verify_repository,
)

BUNDLE_SIGNATURES = (b"# v2 git bundle\n", b"# v3 git bundle\n")
GIT_TIMEOUT = 3600


@dataclass(frozen=True, slots=True)
class ExportInfo:
    path: Path
    refs: int
    bytes: int
    entries: int | None = None
    """Entries of the exported session (None for a whole-ledger export)."""


def _git(args: Sequence[str], *, cwd: Path | None = None) -> subprocess.CompletedProcess[bytes]:
    try:
        return subprocess.run(
            ["git", *args], cwd=cwd, capture_output=True, timeout=GIT_TIMEOUT, check=False
        )
    except FileNotFoundError as e:
        raise OperationalError(
            "git is not installed", hint="install git (apt-get install git)"
        ) from e
    except subprocess.TimeoutExpired as e:
        raise OperationalError(f"git {args[0]} timed out") from e


def _stderr(proc: subprocess.CompletedProcess[bytes]) -> str:
    lines = [ln.strip() for ln in proc.stderr.decode(errors="replace").splitlines() if ln.strip()]
    return "; ".join(lines[-3:]) if lines else f"exit code {proc.returncode}"


def _create_bundle(git_dir: Path, out: Path) -> int:
    """``git bundle create`` into a temporary file, then rename it into place."""
    out = out.resolve()
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_name(f".{out.name}.tmp-{os.getpid()}")
    proc = _git(["--git-dir", str(git_dir), "bundle", "create", "-q", str(tmp), "--all"])
    if proc.returncode != 0:
        tmp.unlink(missing_ok=True)
        raise OperationalError(f"git bundle create failed: {_stderr(proc)}")
    os.replace(tmp, out)
    return out.stat().st_size


def export_all(repo: Path, out: Path) -> ExportInfo:
    """Write the whole ledger at ``repo`` as a bundle at ``out``.

    Raises:
        NotALedger: If ``repo`` is not a ledger.
        OperationalError: If git fails.
    """
    storage = GitStorage(repo)
    refs = storage.refs()
    storage.close()
    if GENESIS_REF not in refs:
        raise NotALedger(f"{repo} holds no AegisFlow ledger (no {GENESIS_REF})")
    return ExportInfo(out, len(refs), _create_bundle(Path(repo), out))


def _leaves(reader: ObjectReader, refs: dict[str, bytes], progress: Progress | None) -> list[bytes]:
    """Every entry hash in index order, read from commit trailers.

    Trailers are not trusted here: a wrong value only yields proofs that fail to verify.

    Raises:
        BundleError: If the ledger is missing entries, so no proof can be built.
    """
    genesis = refs[GENESIS_REF]
    by_index: dict[int, bytes] = {}
    seen = {genesis}
    stack = [oid for name, oid in refs.items() if name != GENESIS_REF]
    while stack:
        oid = stack.pop()
        if oid in seen:
            continue
        seen.add(oid)
        commit = read_commit(reader, oid)
        stack.extend(commit.parents)
        trailers = render.parse_trailers(commit.message)
        if "Entry-Hash" in trailers and "Index" in trailers:
            try:
                by_index[int(trailers["Index"])] = bytes.fromhex(trailers["Entry-Hash"])
            except ValueError as e:
                raise BundleError(
                    f"commit {oid.hex()} has malformed trailers; run aegisctl evidence verify"
                ) from e
            if progress and len(by_index) % 5000 == 0:
                progress("reading entries", len(by_index), 0)
    size = len(by_index)
    if set(by_index) != set(range(size)):
        raise BundleError("the ledger is missing entries; run aegisctl evidence verify")
    return [by_index[i] for i in range(size)]


def _checkpoints(reader: ObjectReader, main: bytes, genesis: bytes) -> Iterator[tuple[bytes, str]]:
    """``(commit, signed note)`` along ``main``, newest first."""
    oid = main
    while oid != genesis:
        commit = read_commit(reader, oid)
        yield oid, read_files(reader, commit)[CHECKPOINT_FILE].decode()
        oid = commit.parents[0]


def export_session(
    repo: Path, session: str, out: Path, *, progress: Progress | None = None
) -> ExportInfo:
    """Write the evidence of one session as a self-contained bundle.

    Raises:
        InvalidSessionId: If ``session`` is not a valid session id.
        UnknownSession: If the ledger has no such session.
        BundleError: If the ledger cannot prove the session (entries newer than the
            newest checkpoint, missing entries).
        OperationalError: If git fails.
    """
    validate_session_id(session)
    storage = GitStorage(repo)
    try:
        refs = storage.refs()
        if GENESIS_REF not in refs or MAIN_REF not in refs:
            raise NotALedger(f"{repo} holds no AegisFlow ledger")
        entries = session_entries(storage, session)
        genesis, main = refs[GENESIS_REF], refs[MAIN_REF]
        if main == genesis:
            raise BundleError("the ledger has no checkpoint yet; try again in a few seconds")
        checkpoints = _checkpoints(storage, main, genesis)
        _, latest_note = next(checkpoints)
        latest = Checkpoint.parse_body(latest_note.split("\n\n", 1)[0] + "\n")
        uncovered = [s.entry.index for s in entries if s.entry.index >= latest.size]
        if uncovered:
            raise BundleError(
                f"{len(uncovered)} entries of {session} are newer than the latest checkpoint",
                hint="checkpoints are written every few seconds: retry shortly",
            )
        leaves = _leaves(storage, refs, progress)[: latest.size]
        if progress:
            progress("building proofs", 0, len(entries))
        proofs = inclusion_proofs(leaves, [s.entry.index for s in entries])
        wanted = set()
        for stored in entries:
            if stored.entry.type == "manifest":
                with contextlib.suppress(AegisError):
                    wanted.add(parse_manifest_body(stored.entry.body)[0].checkpoint_size)
        named = []
        if wanted - {latest.size}:
            for _, note in _checkpoints(storage, main, genesis):
                size = Checkpoint.parse_body(note.split("\n\n", 1)[0] + "\n").size
                if size in wanted and size != latest.size:
                    named.append(
                        {
                            "note": note,
                            "consistency": [h.hex() for h in consistency_proof(leaves, size)],
                        }
                    )
                    wanted.discard(size)
                if not wanted - {latest.size}:
                    break
        export = {
            "type": EXPORT_TYPE,
            "v": 1,
            "ledger": latest.origin,
            "session": session,
            "checkpoint": latest_note,
            "checkpoints": named,
            "inclusion": {str(i): [h.hex() for h in p] for i, p in proofs.items()},
        }
        head = refs[session_ref(session)]
    finally:
        storage.close()
    with tempfile.TemporaryDirectory(prefix="aegisflow-export-") as tmp:
        work = Path(tmp) / "export.git"
        temp = GitStorage.init(work)
        try:
            alternates = work / "objects" / "info" / "alternates"
            alternates.parent.mkdir(parents=True, exist_ok=True)
            alternates.write_text(str((Path(repo) / "objects").resolve()) + "\n")
            data = json.dumps(export, sort_keys=True, indent=1).encode() + b"\n"
            blob = gitfmt.object_id("blob", data)
            tree_data = gitfmt.encode_tree([(FILE_MODE, EXPORT_FILE, blob)])
            tree = gitfmt.object_id("tree", tree_data)
            ident = gitfmt.format_ident(
                "AegisFlow Export", "export@aegisflow.invalid", int(datetime.now(UTC).timestamp())
            )
            message = (
                f"export session {session}\n\nSession: {session}\n"
                f"Checkpoint-Size: {latest.size}\nEntries: {len(entries)}\n"
            )
            commit_data = gitfmt.commit_payload(tree, [head], ident, ident, message)
            commit = gitfmt.object_id("commit", commit_data)
            temp.write(
                [("blob", data), ("tree", tree_data), ("commit", commit_data)],
                {session_ref(session): head, GENESIS_REF: genesis, MAIN_REF: commit},
            )
        finally:
            temp.close()
        size = _create_bundle(work, out)
    return ExportInfo(out, 3, size, entries=len(entries))


@contextlib.contextmanager
def unpack_bundle(bundle: Path) -> Iterator[GitStorage]:
    """Unpack ``bundle`` into a temporary repository and yield it (read-only).

    Every object is checked by ``git index-pack`` and ``transfer.fsckObjects``.

    Raises:
        BundleError: If the file is not a bundle, truncated, corrupt, or depends on
            objects it does not contain.
        OperationalError: If the file is missing or unreadable.
    """
    try:
        with open(bundle, "rb") as f:
            head = f.read(16)
    except FileNotFoundError as e:
        raise OperationalError(f"bundle {bundle} does not exist") from e
    except OSError as e:
        raise OperationalError(f"cannot read bundle {bundle}: {e.strerror}") from e
    if head not in BUNDLE_SIGNATURES:
        raise BundleError(f"{bundle} is not a git bundle (no '# v2 git bundle' header)")
    with tempfile.TemporaryDirectory(prefix="aegisflow-verify-") as tmp:
        work = Path(tmp) / "bundle.git"
        proc = _git(["init", "-q", "--bare", str(work)])
        if proc.returncode != 0:
            raise OperationalError(f"git init failed: {_stderr(proc)}")
        proc = _git(
            [
                "--git-dir", str(work),
                "-c", "transfer.fsckObjects=true",
                "fetch", "-q", "--no-write-fetch-head", "--no-tags",
                str(Path(bundle).resolve()), "+refs/*:refs/*",
            ]
        )  # fmt: skip
        if proc.returncode != 0:
            raise BundleError(
                f"bundle {bundle} is truncated or corrupt: git could not unpack it "
                f"({_stderr(proc)})"
            )
        storage = GitStorage(work)
        try:
            yield storage
        finally:
            storage.close()


def verify_bundle(
    bundle: Path,
    trusted_keys: Sequence[PublicKey],
    *,
    session: str | None = None,
    trusted_checkpoint: Checkpoint | None = None,
    checker_for: Callable[[Path], EntryChecker] | None = None,
    all_lines: bool = False,
    all_signatures: bool = False,
    progress: Progress | None = None,
) -> Report:
    """Unpack ``bundle`` and replay it; an unreadable bundle is a failed report.

    Raises:
        KeyMaterialError: If no trusted key is given.
        InvalidSessionId: If ``session`` is not a valid session id.
        OperationalError: If the bundle file is missing or unreadable.
    """
    if session is not None:
        validate_session_id(session)
    try:
        with unpack_bundle(bundle) as storage:
            checker = checker_for(storage.path) if checker_for else None
            try:
                return verify_repository(
                    storage,
                    trusted_keys,
                    session=session,
                    trusted_checkpoint=trusted_checkpoint,
                    checker=checker,
                    all_lines=all_lines,
                    all_signatures=all_signatures,
                    progress=progress,
                )
            finally:
                if (close := getattr(checker, "close", None)) is not None:
                    close()
    except (BundleError, NotALedger) as e:
        report = Report(mode="bundle")
        report.add(FindingKind.BAD_BUNDLE, e.message)
        return report
