"""Tamper table: what an attacker without the ledger key can do to a real git ledger.

Every case copies one real repository (three sessions, 31 entries, one session closed by
a manifest, five checkpoints, written across a reopen), alters it with git plumbing
(``cat-file``, ``hash-object``, ``mktree``, ``update-ref``, ``unpack-objects``, ``fetch``)
or by editing files, and requires that :func:`verify_repository`, given only the
original public key, reports at least the expected finding kinds and never says valid.

Rewritten commits keep their old (now invalid) signature unless a case says otherwise:
an attacker has the code (``gitfmt``, ``sshsig``, ``sign_checkpoint``) but not the key.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import zlib
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path

import pytest
import rfc8785

from aegisflow.errors import KeyMaterialError
from aegisflow.keys import PublicKey, Signer
from aegisflow.ledger import gitfmt, render, sshsig
from aegisflow.ledger.checkpoint import Checkpoint
from aegisflow.ledger.entry import Entry
from aegisflow.ledger.gitstore import GitStorage
from aegisflow.ledger.ledger import Ledger
from aegisflow.ledger.merkle import leaf_hash
from aegisflow.ledger.note import sign_note
from aegisflow.ledger.sequencer import Receipt
from aegisflow.ledger.storage import GENESIS_REF, MAIN_REF, MemoryStorage, session_ref
from aegisflow.ledger.verify import FindingKind, Report, verify_repository
from tests.conftest import ORIGIN, SEED, FakeClock, decision

K = FindingKind
GIT = shutil.which("git") or "git"
ATTACKER_SEED = bytes(range(100, 132))

# -- the ledger under attack -------------------------------------------------------------


@dataclass(frozen=True)
class Built:
    """A template ledger; cases copy it, never alter it."""

    path: Path
    snapshot: Path
    """A copy of the ledger after its first nine entries (a stale backup)."""
    receipts: tuple[Receipt, ...]
    checkpoints: tuple[Checkpoint, ...]
    """What the explicit checkpoint() calls returned (sizes 9, 25, 31); the last covers all.

    The manifest adds two more on main (sizes 18 and 19)."""
    key: PublicKey

    def receipt(self, session: str, seq: int) -> Receipt:
        return next(r for r in self.receipts if r.session == session and r.seq == seq)

    @property
    def latest(self) -> Checkpoint:
        return self.checkpoints[-1]


def populate(path: Path, signer: Signer, snapshot: Path | None = None) -> Built:
    """Write the template ledger: 31 entries in s0 (closed), s1, s2; a reopen midway."""
    clock = FakeClock()
    receipts: list[Receipt] = []
    checkpoints: list[Checkpoint] = []

    def open_ledger(create: bool) -> Ledger:
        if create:
            return Ledger.create(
                GitStorage.init(path), signer, origin=ORIGIN, clock=clock, checkpoint_interval=3600
            )
        return Ledger.open(
            GitStorage(path, writable=True), signer, clock=clock, checkpoint_interval=3600
        )

    ledger = open_ledger(create=True)
    for n in range(9):  # indices 0..8, three per session
        receipts.append(ledger.append(f"s{n % 3}", "decision", decision(n)))
    checkpoints.append(ledger.checkpoint())
    ledger.close()
    if snapshot is not None:
        shutil.copytree(path, snapshot)
    ledger = open_ledger(create=False)
    for n in range(9, 18):  # indices 9..17
        receipts.append(ledger.append(f"s{n % 3}", "decision", decision(n)))
    receipts.append(ledger.close_session("s0"))  # index 18; checkpoints 18 and 19
    for n in range(19, 31):  # indices 19..30 in s1 and s2
        receipts.append(ledger.append(f"s{1 + n % 2}", "decision", decision(n)))
        if n == 24:
            checkpoints.append(ledger.checkpoint())
    checkpoints.append(ledger.checkpoint())
    ledger.close()
    return Built(
        path=path,
        snapshot=snapshot or path,
        receipts=tuple(receipts),
        checkpoints=tuple(checkpoints),
        key=signer.public_key,
    )


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> Built:
    base = tmp_path_factory.mktemp("tamper-template")
    return populate(base / "ledger.git", Signer(SEED), base / "snapshot.git")


@pytest.fixture
def repo(built: Built, tmp_path: Path) -> Repo:
    path = tmp_path / "ledger.git"
    shutil.copytree(built.path, path)
    return Repo(path)


def verify(
    path: Path,
    key: PublicKey,
    trusted_checkpoint: Checkpoint | None = None,
    *,
    all_signatures: bool = False,
) -> Report:
    storage = GitStorage(path)
    try:
        return verify_repository(
            storage, [key], trusted_checkpoint=trusted_checkpoint, all_signatures=all_signatures
        )
    finally:
        storage.close()


# -- attacker tooling: git plumbing ------------------------------------------------------


class Repo:
    """A bare repository altered the way an attacker would: git plumbing and file edits."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def git(self, *args: str, stdin: bytes | None = None) -> bytes:
        done = subprocess.run(
            [GIT, "--git-dir", str(self.path), *args],
            input=stdin,
            capture_output=True,
            check=False,
        )
        if done.returncode:
            raise AssertionError(f"git {' '.join(args)} failed: {done.stderr.decode()}")
        return done.stdout

    def rev(self, name: str) -> str:
        return self.git("rev-parse", "--verify", name).decode().strip()

    @property
    def genesis(self) -> str:
        return self.rev(GENESIS_REF)

    def refs(self) -> dict[str, str]:
        out = self.git("for-each-ref", "--format=%(refname) %(objectname)").decode()
        return dict(line.split(" ") for line in out.splitlines())

    def cat(self, kind: str, oid: str) -> bytes:
        return self.git("cat-file", kind, oid)

    def write(self, kind: str, data: bytes) -> str:
        return self.git("hash-object", "-t", kind, "-w", "--stdin", stdin=data).decode().strip()

    def mktree(self, files: dict[str, str]) -> str:
        lines = "".join(f"100644 blob {oid}\t{name}\n" for name, oid in sorted(files.items()))
        return self.git("mktree", stdin=lines.encode()).decode().strip()

    def update_ref(self, name: str, oid: str) -> None:
        self.git("update-ref", name, oid)

    def delete_ref(self, name: str) -> None:
        self.git("update-ref", "-d", name)

    def first_parent_chain(self, tip: str) -> list[str]:
        """Commits from the genesis (excluded) to ``tip``, oldest first."""
        out = self.git("rev-list", "--first-parent", "--reverse", tip, "^" + self.genesis)
        return out.decode().split()

    def session_chain(self, session: str) -> list[str]:
        return self.first_parent_chain(session_ref(session))

    def entry(self, commit: str) -> dict:
        return json.loads(self.cat("blob", f"{commit}:entry.json"))

    def checkpoint_size(self, commit: str) -> int:
        note = self.cat("blob", f"{commit}:checkpoint").decode()
        return int(note.splitlines()[1])

    # -- commits --------------------------------------------------------------------

    def remake(
        self,
        oid: str,
        *,
        tree: str | None = None,
        parents: Iterable[str] | None = None,
        message: str | None = None,
        signature: str | bool = True,
        edit: Callable[[str], str] | None = None,
    ) -> str:
        """Write a copy of commit ``oid`` with some parts replaced.

        ``signature``: True keeps the old one (which then no longer verifies), False
        drops it, a string is a new armored signature. ``edit`` rewrites the message.
        """
        parsed = gitfmt.parse_commit(self.cat("commit", oid))
        text = parsed.message if message is None else message
        if edit is not None:
            text = edit(text)
        payload = gitfmt.commit_payload(
            bytes.fromhex(tree) if tree else parsed.tree,
            [bytes.fromhex(p) for p in parents] if parents is not None else list(parsed.parents),
            parsed.author,
            parsed.committer,
            text,
        )
        armor = parsed.gpgsig if signature is True else signature or None
        if armor is None:
            return self.write("commit", payload)
        return self.write("commit", gitfmt.commit_with_signature(payload, armor))

    def parents(self, oid: str) -> list[str]:
        return [p.hex() for p in gitfmt.parse_commit(self.cat("commit", oid)).parents]

    def rebuild_session(
        self,
        session: str,
        order: Callable[[list[str]], list[str]] = list,
        replace: dict[str, Callable[[str, str], str]] | None = None,
        *,
        rewrite_main: bool = True,
    ) -> dict[str, str]:
        """Re-chain a session's commits in ``order(chain)``, each on the one before.

        ``replace[oid](oid, new_parent)`` writes a substitute for a commit. Commits left
        out map to the new commit of their nearest kept predecessor. Returns the old to
        new mapping; moves the session ref and, if asked, re-points the checkpoint chain.
        """
        replace = replace or {}
        old = self.session_chain(session)
        mapping: dict[str, str] = {}
        parent = self.genesis
        for oid in order(old):
            if oid in replace:
                parent = replace[oid](oid, parent)
            else:
                parent = self.remake(oid, parents=[parent])
            mapping[oid] = parent
        last = self.genesis
        for oid in old:
            last = mapping.setdefault(oid, last)
        self.update_ref(session_ref(session), parent)
        if rewrite_main:
            self.rewrite_main(mapping)
        return mapping

    def rewrite_main(self, mapping: dict[str, str]) -> None:
        """Rebuild the checkpoint chain with its session-head parents mapped."""
        prev = self.genesis
        for oid in self.first_parent_chain(MAIN_REF):
            heads = [mapping.get(h, h) for h in self.parents(oid)[1:]]
            prev = self.remake(oid, parents=list(dict.fromkeys([prev, *heads])))
        self.update_ref(MAIN_REF, prev)

    def rewrite_all(self, remake: Callable[[str, list[str]], str]) -> None:
        """Rewrite every commit (parents first) and move every ref to its copy."""
        mapping: dict[str, str] = {}
        order = self.git("rev-list", "--topo-order", "--reverse", "--all").decode().split()
        for oid in order:
            mapping[oid] = remake(oid, [mapping[p] for p in self.parents(oid)])
        for name, target in self.refs().items():
            self.update_ref(name, mapping[target])

    # -- objects on disk ------------------------------------------------------------

    def explode_packs(self) -> None:
        """Turn every packed object into a loose one (``git unpack-objects``)."""
        pack_dir = self.path / "objects" / "pack"
        aside = self.path.parent / "packs-aside"
        aside.mkdir()
        for f in pack_dir.iterdir():
            shutil.move(f, aside / f.name)
        for pack in sorted(aside.glob("*.pack")):
            self.git("unpack-objects", "-q", stdin=pack.read_bytes())
        shutil.rmtree(aside)

    def loose_path(self, oid: str) -> Path:
        return self.path / "objects" / oid[:2] / oid[2:]

    def pack_location(self, oid: str) -> tuple[Path, int, int]:
        """``(pack file, start, end)`` of the packed entry holding ``oid``."""
        for idx in sorted((self.path / "objects" / "pack").glob("*.idx")):
            rows = [
                line.split()
                for line in self.git("show-index", stdin=idx.read_bytes()).decode().splitlines()
            ]
            offsets = sorted(int(r[0]) for r in rows)
            pack = idx.with_suffix(".pack")
            for row in rows:
                if row[1] == oid:
                    start = int(row[0])
                    later = [o for o in offsets if o > start]
                    end = later[0] if later else pack.stat().st_size - 20
                    return pack, start, end
        raise AssertionError(f"{oid} is not packed")


def flip(data: bytes, position: int, mask: int = 0x01) -> bytes:
    return data[:position] + bytes([data[position] ^ mask]) + data[position + 1 :]


def rewrite_file(path: Path, data: bytes) -> None:
    os.chmod(path, 0o644)
    path.write_bytes(data)


# -- mutations ---------------------------------------------------------------------------

Mutation = Callable[[Repo, Built], None]


def blob_of(repo: Repo, commit: str) -> str:
    return repo.rev(f"{commit}:entry.json")


def flip_loose_content(repo: Repo, built: Built) -> None:
    """Storage corruption of a loose entry blob: content changed, same object id."""
    repo.explode_packs()
    oid = blob_of(repo, built.receipt("s1", 1).commit)
    path = repo.loose_path(oid)
    raw = zlib.decompress(path.read_bytes())  # b"blob <size>\0<entry bytes>"
    rewrite_file(path, zlib.compress(flip(raw, raw.index(b'"allow"') + 1)))  # "`llow"


def flip_loose_compressed(repo: Repo, built: Built) -> None:
    """A bit flip in the zlib stream of a loose entry blob."""
    repo.explode_packs()
    path = repo.loose_path(blob_of(repo, built.receipt("s1", 1).commit))
    data = path.read_bytes()
    rewrite_file(path, flip(data, len(data) // 2))


def delete_loose_blob(repo: Repo, built: Built) -> None:
    repo.explode_packs()
    repo.loose_path(blob_of(repo, built.receipt("s1", 1).commit)).unlink()


def flip_packed(repo: Repo, built: Built) -> None:
    """A bit flip inside the .pack file, in the middle of an entry blob's packed data."""
    pack, start, end = repo.pack_location(blob_of(repo, built.receipt("s1", 1).commit))
    data = pack.read_bytes()
    rewrite_file(pack, flip(data, (start + end) // 2, 0x10))


def _regenerated(repo: Repo, oid: str, parent: str, change: Callable[[dict], None]) -> str:
    """An edited entry in a new blob and tree, with a message that matches it."""
    doc = repo.entry(oid)
    change(doc)
    data = rfc8785.dumps(doc)
    tree = repo.mktree({"entry.json": repo.write("blob", data)})
    message = render.commit_message(Entry.from_bytes(data), leaf_hash(data))
    return repo.remake(oid, tree=tree, parents=[parent], message=message)


def edit_entry_body(repo: Repo, built: Built) -> None:
    """Change an interior decision to deny; fix message and descendants; re-point main."""
    target = built.receipt("s1", 3).commit

    def deny(doc: dict) -> None:
        doc["body"]["decision"] = "deny"

    repo.rebuild_session(
        "s1", replace={target: lambda oid, parent: _regenerated(repo, oid, parent, deny)}
    )


def edit_entry_stale_message(repo: Repo, built: Built) -> None:
    """Change an interior entry's bytes but leave its commit message as it was."""
    target = built.receipt("s2", 2).commit

    def swap_blob(oid: str, parent: str) -> str:
        data = repo.cat("blob", f"{oid}:entry.json").replace(b"module_", b"mod_le_")
        tree = repo.mktree({"entry.json": repo.write("blob", data)})
        return repo.remake(oid, tree=tree, parents=[parent])

    repo.rebuild_session("s2", replace={target: swap_blob})


def non_canonical_entry(repo: Repo, built: Built) -> None:
    """Same JSON value, non-canonical bytes (a space after the first colon)."""
    target = built.receipt("s2", 4).commit

    def spaced(oid: str, parent: str) -> str:
        data = repo.cat("blob", f"{oid}:entry.json").replace(b":", b": ", 1)
        tree = repo.mktree({"entry.json": repo.write("blob", data)})
        return repo.remake(oid, tree=tree, parents=[parent])

    repo.rebuild_session("s2", replace={target: spaced})


def wrong_ledger_entry(repo: Repo, built: Built) -> None:
    """An entry edited to claim another ledger origin (message regenerated)."""
    target = built.receipt("s2", 5).commit

    def other(doc: dict) -> None:
        doc["ledger"] = "evil.example/ledger"

    repo.rebuild_session(
        "s2", replace={target: lambda oid, parent: _regenerated(repo, oid, parent, other)}
    )


def _replace_in_blob(repo: Repo, target: str, session: str, old: bytes, new: bytes) -> None:
    """Replace the first ``old`` in an entry's bytes; stale message; re-chain; main."""

    def swap(oid: str, parent: str) -> str:
        data = repo.cat("blob", f"{oid}:entry.json")
        assert old in data
        tree = repo.mktree({"entry.json": repo.write("blob", data.replace(old, new, 1))})
        return repo.remake(oid, tree=tree, parents=[parent])

    repo.rebuild_session(session, replace={target: swap})


def invalid_entry_session(repo: Repo, built: Built) -> None:
    """An entry whose session id is not a valid session id (a space in it)."""
    commit = built.receipt("s2", 8).commit
    _replace_in_blob(repo, commit, "s2", b'"session":"s2"', b'"session":"s 2"')


def invalid_manifest_session(repo: Repo, built: Built) -> None:
    """A manifest body whose session id is not a valid session id."""
    commit = built.receipt("s0", 6).commit
    _replace_in_blob(repo, commit, "s0", b'"session":"s0"', b'"session":"s!"')


def edit_head_message(repo: Repo, built: Built) -> None:
    """Edit the subject of a session head; only the session ref is moved."""
    head = repo.rev(session_ref("s2"))
    new = repo.remake(head, edit=lambda m: m.replace("allow ", "deny ", 1))
    repo.update_ref(session_ref("s2"), new)


def edit_interior_message(repo: Repo, built: Built) -> None:
    """Edit an interior commit's subject; re-chain its descendants and main."""
    target = built.receipt("s1", 2).commit
    repo.rebuild_session(
        "s1",
        replace={
            target: lambda oid, parent: repo.remake(
                oid, parents=[parent], edit=lambda m: m.replace("allow ", "deny ", 1)
            )
        },
    )


def edit_trailer(repo: Repo, built: Built) -> None:
    """Edit the Decision trailer of an interior commit; re-chain and re-point main."""
    target = built.receipt("s1", 4).commit
    repo.rebuild_session(
        "s1",
        replace={
            target: lambda oid, parent: repo.remake(
                oid, parents=[parent], edit=lambda m: m.replace("Decision: allow", "Decision: deny")
            )
        },
    )


def edit_author_time(repo: Repo, built: Built) -> None:
    """Move an entry commit's author date by one hour (the entry's time is unchanged)."""
    target = built.receipt("s2", 1).commit

    def later(oid: str, parent: str) -> str:
        raw = repo.cat("commit", oid)
        parsed = gitfmt.parse_commit(raw)
        ident = gitfmt.parse_ident(parsed.author)
        author = gitfmt.format_ident(ident.name, ident.email, ident.unix_time + 3600)
        payload = gitfmt.commit_payload(
            parsed.tree, [bytes.fromhex(parent)], author, parsed.committer, parsed.message
        )
        assert parsed.gpgsig is not None
        return repo.write("commit", gitfmt.commit_with_signature(payload, parsed.gpgsig))

    repo.rebuild_session("s2", replace={target: later})


def strip_signature(repo: Repo, built: Built) -> None:
    target = built.receipt("s1", 5).commit
    repo.rebuild_session(
        "s1",
        replace={target: lambda oid, parent: repo.remake(oid, parents=[parent], signature=False)},
    )


def delete_interior_keep_main(repo: Repo, built: Built) -> None:
    """Drop s1 seq 3 from its chain; main still names the old heads."""
    target = built.receipt("s1", 3).commit
    repo.rebuild_session("s1", lambda c: [x for x in c if x != target], rewrite_main=False)


def delete_interior_rewrite_main(repo: Repo, built: Built) -> None:
    """Drop s1 seq 3 and re-point every checkpoint at the rewritten chain."""
    target = built.receipt("s1", 3).commit
    repo.rebuild_session("s1", lambda c: [x for x in c if x != target])


def reorder_entries(repo: Repo, built: Built) -> None:
    """Swap s1 seq 2 and seq 3 in the chain; main re-pointed."""
    a, b = built.receipt("s1", 2).commit, built.receipt("s1", 3).commit

    def swap(chain: list[str]) -> list[str]:
        i = chain.index(a)
        return [*chain[:i], b, a, *chain[i + 2 :]]

    repo.rebuild_session("s1", swap)


def swap_entry_trees(repo: Repo, built: Built) -> None:
    """Keep the chain, swap which entry two commits hold."""
    a, b = built.receipt("s1", 2).commit, built.receipt("s1", 3).commit
    tree = {a: repo.rev(f"{b}^{{tree}}"), b: repo.rev(f"{a}^{{tree}}")}
    repo.rebuild_session(
        "s1",
        replace={
            oid: lambda oid, parent: repo.remake(oid, tree=tree[oid], parents=[parent])
            for oid in (a, b)
        },
    )


def truncate_session_ref(repo: Repo, built: Built) -> None:
    """Move s2's ref back three entries; main still names the tail."""
    repo.update_ref(session_ref("s2"), repo.session_chain("s2")[-4])


def rewind_to_first_checkpoint(repo: Repo, built: Built) -> None:
    """Rewind main and every session ref to the state of the first checkpoint."""
    chain = repo.first_parent_chain(MAIN_REF)
    size = built.checkpoints[0].size
    target = next(c for c in chain if repo.checkpoint_size(c) == size)
    for name in list(repo.refs()):
        if not name.startswith("refs/sessions/"):
            continue
        kept = [c for c in repo.first_parent_chain(name) if repo.entry(c)["index"] < size]
        if kept:
            repo.update_ref(name, kept[-1])
        else:
            repo.delete_ref(name)
    repo.update_ref(MAIN_REF, target)


def delete_session_ref(repo: Repo, built: Built) -> None:
    repo.delete_ref(session_ref("s1"))


def delete_every_session_ref(repo: Repo, built: Built) -> None:
    for session in ("s0", "s1", "s2"):
        repo.delete_ref(session_ref(session))


def forge_ref_other_session(repo: Repo, built: Built) -> None:
    repo.update_ref(session_ref("s1"), repo.rev(session_ref("s2")))


def forge_ref_checkpoint(repo: Repo, built: Built) -> None:
    repo.update_ref(session_ref("s1"), repo.rev(MAIN_REF))


def forge_ref_genesis(repo: Repo, built: Built) -> None:
    repo.update_ref(session_ref("ghost"), repo.genesis)


def forge_ref_older_entry(repo: Repo, built: Built) -> None:
    """A new session ref naming an existing entry of s2."""
    repo.update_ref(session_ref("s3"), built.receipt("s2", 3).commit)


def forge_ref_blob(repo: Repo, built: Built) -> None:
    """A session ref naming an entry blob instead of a commit."""
    repo.update_ref(session_ref("s1"), blob_of(repo, built.receipt("s1", 2).commit))


def resign_commits(repo: Repo, built: Built) -> None:
    """Every commit rebuilt and SSH-signed by an attacker key; notes left as they were."""
    attacker = Signer(ATTACKER_SEED)

    def resign(oid: str, parents: list[str]) -> str:
        new = repo.remake(oid, parents=parents, signature=False)
        payload = repo.cat("commit", new)
        return repo.remake(new, signature=sshsig.sign(payload, attacker) + "\n")

    repo.rewrite_all(resign)


def resign_commits_and_notes(repo: Repo, built: Built) -> None:
    """Commits and checkpoint notes re-signed by an attacker key; manifests untouched."""
    attacker = Signer(ATTACKER_SEED)

    def resign(oid: str, parents: list[str]) -> str:
        tree = None
        names = repo.git("ls-tree", "--name-only", oid).decode().split()
        if "checkpoint" in names:
            note = repo.cat("blob", f"{oid}:checkpoint").decode()
            body = note.split("\n\n", 1)[0] + "\n"
            files = {name: repo.rev(f"{oid}:{name}") for name in names}
            files["checkpoint"] = repo.write("blob", sign_note(body, ORIGIN, attacker).encode())
            tree = repo.mktree(files)
        new = repo.remake(oid, tree=tree, parents=parents, signature=False)
        payload = repo.cat("commit", new)
        return repo.remake(new, signature=sshsig.sign(payload, attacker) + "\n")

    repo.rewrite_all(resign)


def forge_whole_ledger(repo: Repo, built: Built) -> None:
    """The attacker replays the same history with the ledger code and their own key."""
    shutil.rmtree(repo.path)
    populate(repo.path, Signer(ATTACKER_SEED))


def fork_unsigned_sibling(repo: Repo, built: Built) -> None:
    """A sibling of s2's head with another body; the ref takes it, main keeps the old."""
    head = repo.rev(session_ref("s2"))
    parent = repo.parents(head)[0]

    def deny(doc: dict) -> None:
        doc["body"]["decision"] = "deny"

    repo.update_ref(session_ref("s2"), _regenerated(repo, head, parent, deny))


def _diverged_backup(repo: Repo, built: Built, appends: list[tuple[str, int]]) -> Path:
    """Restore the stale backup with the real key and write to it (a split brain)."""
    backup = repo.path.parent / "backup.git"
    shutil.copytree(built.snapshot, backup)
    ledger = Ledger.open(GitStorage(backup, writable=True), Signer(SEED), clock=FakeClock())
    for session, n in appends:
        ledger.append(session, "decision", decision(n, decision="deny"))
    ledger.close()
    return backup


def rewrap_head_signature(repo: Repo, built: Built) -> None:
    """Join two lines of s2's head signature armor: a new commit id, still validly signed."""
    head = repo.rev(session_ref("s2"))
    raw = repo.cat("commit", head)
    start = raw.index(b"-----BEGIN SSH SIGNATURE-----\n") + 31
    cut = raw.index(b"\n ", start)
    new = repo.write("commit", raw[:cut] + raw[cut + 2 :])
    assert new != head
    repo.update_ref(session_ref("s2"), new)


def fork_signed_backup(repo: Repo, built: Built) -> None:
    """Validly signed fork: a restored backup continued s2; its s2 ref is fetched in."""
    backup = _diverged_backup(repo, built, [("s2", 100), ("s2", 101)])
    repo.git("fetch", "-q", str(backup), "+refs/sessions/s2:refs/sessions/s2")


def duplicate_index_signed_backup(repo: Repo, built: Built) -> None:
    """Validly signed: the restored backup gave index 9 to a new session s9."""
    backup = _diverged_backup(repo, built, [("s9", 100)])
    repo.git("fetch", "-q", str(backup), "+refs/sessions/s9:refs/sessions/s9")


def duplicate_index_crafted(repo: Repo, built: Built) -> None:
    """A crafted first entry of a new session claiming index 5 (message regenerated)."""
    source = built.receipt("s2", 1).commit  # index 5

    def rehome(doc: dict) -> None:
        doc["session"] = "s9"
        doc["seq"] = 0
        doc["prev"] = repo.entry(built.receipt("s2", 0).commit)["prev"]

    repo.update_ref(session_ref("s9"), _regenerated(repo, source, repo.genesis, rehome))


def edit_checkpoint_note(repo: Repo, built: Built) -> None:
    """Change the root in the newest checkpoint note and commit it in place of main."""
    tip = repo.rev(MAIN_REF)
    note = repo.cat("blob", f"{tip}:checkpoint").decode().split("\n")
    note[2] = "A" + note[2][1:] if note[2][0] != "A" else "B" + note[2][1:]
    files = {
        "checkpoint": repo.write("blob", "\n".join(note).encode()),
        "compact-range": repo.rev(f"{tip}:compact-range"),
    }
    repo.update_ref(MAIN_REF, repo.remake(tip, tree=repo.mktree(files)))


def drop_checkpoints(repo: Repo, built: Built) -> None:
    """Point main back at the genesis: no signed checkpoint left."""
    repo.update_ref(MAIN_REF, repo.genesis)


def _edit_manifest(repo: Repo, built: Built, change: Callable[[dict], None]) -> None:
    """Edit s0's closing manifest (message regenerated) and re-point main."""
    target = built.receipt("s0", 6).commit
    repo.rebuild_session(
        "s0", replace={target: lambda oid, parent: _regenerated(repo, oid, parent, change)}
    )


def reopen_closed_session(repo: Repo, built: Built) -> None:
    """Flip the manifest's final flag: the session would look open again."""

    def unfinal(doc: dict) -> None:
        doc["body"]["final"] = False

    _edit_manifest(repo, built, unfinal)


def recount_manifest(repo: Repo, built: Built) -> None:
    """Change the manifest's count: it no longer agrees with its own ranges."""

    def recount(doc: dict) -> None:
        doc["body"]["count"] = 5

    _edit_manifest(repo, built, recount)


def second_parent(repo: Repo, built: Built) -> None:
    """Graft another session's commit onto an entry commit as a second parent."""
    target = built.receipt("s2", 6).commit
    other = built.receipt("s1", 6).commit
    repo.rebuild_session(
        "s2", replace={target: lambda oid, parent: repo.remake(oid, parents=[parent, other])}
    )


def extra_file_in_entry_tree(repo: Repo, built: Built) -> None:
    """Add a second file next to entry.json in an interior entry's tree."""
    target = built.receipt("s2", 7).commit

    def with_extra(oid: str, parent: str) -> str:
        files = {
            "entry.json": blob_of(repo, oid),
            "note.txt": repo.write("blob", b"approved by the attacker\n"),
        }
        return repo.remake(oid, tree=repo.mktree(files), parents=[parent])

    repo.rebuild_session("s2", replace={target: with_extra})


def reorder_checkpoints(repo: Repo, built: Built) -> None:
    """Swap the two newest checkpoints on main's first-parent chain."""
    chain = repo.first_parent_chain(MAIN_REF)
    chain[-2], chain[-1] = chain[-1], chain[-2]
    prev = repo.genesis
    for oid in chain:
        prev = repo.remake(oid, parents=[prev, *repo.parents(oid)[1:]])
    repo.update_ref(MAIN_REF, prev)


def corrupt_compact_range(repo: Repo, built: Built) -> None:
    """A bit flip in the packed compact-range blob of the newest checkpoint."""
    pack, start, end = repo.pack_location(repo.rev(f"{MAIN_REF}:compact-range"))
    data = pack.read_bytes()
    rewrite_file(pack, flip(data, (start + end) // 2, 0x10))


def edit_compact_range(repo: Repo, built: Built) -> None:
    """Change one node of the newest checkpoint's compact range; re-commit main's tip."""
    tip = repo.rev(MAIN_REF)
    lines = repo.cat("blob", f"{tip}:compact-range").decode().split("\n")
    lines[1] = ("0" if lines[1][0] != "0" else "1") + lines[1][1:]
    files = {
        "checkpoint": repo.rev(f"{tip}:checkpoint"),
        "compact-range": repo.write("blob", "\n".join(lines).encode()),
    }
    repo.update_ref(MAIN_REF, repo.remake(tip, tree=repo.mktree(files)))


def rewrap_interior_signature(repo: Repo, built: Built) -> None:
    """Re-wrap an interior commit's armor (same signature, new id); re-chain; main."""
    target = built.receipt("s1", 2).commit

    def rewrapped(oid: str, parent: str) -> str:
        new = repo.remake(oid, parents=[parent])
        raw = repo.cat("commit", new)
        start = raw.index(b"-----BEGIN SSH SIGNATURE-----\n") + 31
        cut = raw.index(b"\n ", start)
        return repo.write("commit", raw[:cut] + raw[cut + 2 :])

    repo.rebuild_session("s1", replace={target: rewrapped})


def corrupt_pack_index(repo: Repo, built: Built) -> None:
    """Flip a bit of an entry blob's id in the .idx of its pack: the blob is lost."""
    oid = blob_of(repo, built.receipt("s1", 1).commit)
    pack, _start, _end = repo.pack_location(oid)
    idx = pack.with_suffix(".idx")
    data = idx.read_bytes()
    rewrite_file(idx, flip(data, data.index(bytes.fromhex(oid)) + 19))


def delete_newest_pack(repo: Repo, built: Built) -> None:
    """Delete the pack (and index) holding the newest checkpoint commit."""
    pack, _start, _end = repo.pack_location(repo.rev(MAIN_REF))
    pack.unlink()
    pack.with_suffix(".idx").unlink()


def split_view(repo: Repo, built: Built) -> None:
    """The key holder shows another history: a restored backup grown past 31 entries."""
    backup = _diverged_backup(repo, built, [(f"s{n % 4}", 200 + n) for n in range(30)])
    shutil.rmtree(repo.path)
    shutil.move(backup, repo.path)


def move_genesis_ref(repo: Repo, built: Built) -> None:
    repo.update_ref(GENESIS_REF, built.receipt("s0", 0).commit)


# -- the table ---------------------------------------------------------------------------


@dataclass(frozen=True)
class Case:
    mutate: Mutation
    expected: frozenset[FindingKind]
    trusted_checkpoint: bool = False
    """Verify with the newest checkpoint taken before the attack, obtained out of band."""


def case(
    name: str,
    mutate: Mutation,
    *expected: FindingKind,
    trusted_checkpoint: bool = False,
    xfail: str | None = None,
    raises: type[Exception] | None = None,
) -> object:
    marks = [pytest.mark.xfail(strict=True, reason=xfail, raises=raises)] if xfail else []
    return pytest.param(Case(mutate, frozenset(expected), trusted_checkpoint), id=name, marks=marks)


TAMPER_CASES = [
    # storage corruption of an entry blob, loose and packed
    case("blob-byte-flip-loose", flip_loose_content, K.OBJECT_CORRUPT, K.INDEX_GAP),
    case("blob-zlib-flip-loose", flip_loose_compressed, K.OBJECT_CORRUPT, K.INDEX_GAP),
    case("blob-byte-flip-packed", flip_packed, K.OBJECT_CORRUPT, K.INDEX_GAP),
    case("blob-deleted-loose", delete_loose_blob, K.OBJECT_MISSING, K.INDEX_GAP),
    # entry bytes changed by someone rewriting history
    case(
        "entry-edited-message-regenerated",
        edit_entry_body,
        K.COMMIT_SIGNATURE,
        K.PREV_MISMATCH,
        K.CHECKPOINT_MISMATCH,
    ),
    case(
        "entry-edited-message-stale",
        edit_entry_stale_message,
        K.COMMIT_MISMATCH,
        K.COMMIT_SIGNATURE,
        K.PREV_MISMATCH,
        K.CHECKPOINT_MISMATCH,
    ),
    case("entry-non-canonical", non_canonical_entry, K.ENTRY_MALFORMED, K.INDEX_GAP),
    case(
        "entry-session-id-invalid",
        invalid_entry_session,
        K.ENTRY_MALFORMED,
        K.INDEX_GAP,
    ),
    case(
        "manifest-session-id-invalid",
        invalid_manifest_session,
        K.MANIFEST_MISMATCH,
        K.COMMIT_SIGNATURE,
    ),
    case(
        "entry-other-ledger",
        wrong_ledger_entry,
        K.WRONG_LEDGER,
        K.COMMIT_SIGNATURE,
        K.CHECKPOINT_MISMATCH,
    ),
    case(
        "manifest-final-flag-cleared",
        reopen_closed_session,
        K.MANIFEST_SIGNATURE,
        K.COMMIT_SIGNATURE,
        K.CHECKPOINT_MISMATCH,
    ),
    case(
        "manifest-count-edited",
        recount_manifest,
        K.MANIFEST_MISMATCH,
        K.COMMIT_SIGNATURE,
        K.CHECKPOINT_MISMATCH,
    ),
    # commit messages, trailers, identities, signatures
    case(
        "message-edited-head",
        edit_head_message,
        K.COMMIT_MISMATCH,
        K.COMMIT_SIGNATURE,
        K.FORK,
        K.DUPLICATE_INDEX,
    ),
    case("message-edited-interior", edit_interior_message, K.COMMIT_MISMATCH, K.COMMIT_SIGNATURE),
    case("trailer-edited", edit_trailer, K.COMMIT_MISMATCH, K.COMMIT_SIGNATURE),
    case("author-date-edited", edit_author_time, K.COMMIT_MISMATCH, K.COMMIT_SIGNATURE),
    case("signature-stripped", strip_signature, K.COMMIT_SIGNATURE),
    # history rewritten: deletion, reordering
    case(
        "interior-deleted-main-kept",
        delete_interior_keep_main,
        K.FORK,
        K.DUPLICATE_INDEX,
        K.PARENT_MISMATCH,
        K.COMMIT_SIGNATURE,
    ),
    case(
        "interior-deleted-main-rewritten",
        delete_interior_rewrite_main,
        K.INDEX_GAP,
        K.SEQ_GAP,
        K.PREV_MISMATCH,
        K.PARENT_MISMATCH,
        K.COMMIT_SIGNATURE,
    ),
    case("entries-reordered", reorder_entries, K.PARENT_MISMATCH, K.COMMIT_SIGNATURE),
    case(
        "entry-trees-swapped",
        swap_entry_trees,
        K.COMMIT_MISMATCH,
        K.PARENT_MISMATCH,
        K.COMMIT_SIGNATURE,
    ),
    # truncation
    case("session-tail-ref-rewound", truncate_session_ref, K.REF_BEHIND),
    case(
        "ledger-rewound-below-trusted-checkpoint",
        rewind_to_first_checkpoint,
        K.TRUNCATED,
        trusted_checkpoint=True,
    ),
    case("checkpoints-dropped", drop_checkpoints, K.UNSIGNED),
    # refs
    case("session-ref-deleted", delete_session_ref, K.REF_MISSING),
    case("every-session-ref-deleted", delete_every_session_ref, K.REF_MISSING),
    case("ref-forged-other-session-head", forge_ref_other_session, K.REF_FORGED),
    case("ref-forged-checkpoint-commit", forge_ref_checkpoint, K.REF_FORGED, K.ENTRY_MALFORMED),
    case("ref-forged-genesis", forge_ref_genesis, K.REF_FORGED),
    case("ref-forged-new-session-old-entry", forge_ref_older_entry, K.REF_FORGED),
    case("ref-forged-blob", forge_ref_blob, K.REF_FORGED),
    case("genesis-ref-moved", move_genesis_ref, K.BAD_GENESIS),
    # structure of entry and checkpoint commits
    case("entry-second-parent", second_parent, K.PARENT_MISMATCH, K.COMMIT_SIGNATURE),
    case("entry-tree-extra-file", extra_file_in_entry_tree, K.ENTRY_MALFORMED, K.INDEX_GAP),
    case(
        "checkpoints-reordered",
        reorder_checkpoints,
        K.CHECKPOINT_REGRESSION,
        K.COMMIT_SIGNATURE,
    ),
    case("compact-range-byte-flip-packed", corrupt_compact_range, K.OBJECT_CORRUPT),
    case(
        "compact-range-edited",
        edit_compact_range,
        K.CHECKPOINT_MALFORMED,
        K.COMMIT_SIGNATURE,
    ),
    case("pack-index-byte-flip", corrupt_pack_index, K.OBJECT_MISSING, K.INDEX_GAP),
    case("newest-pack-deleted", delete_newest_pack, K.OBJECT_MISSING),
    case(
        "split-view-trusted-checkpoint",
        split_view,
        K.TRUSTED_CHECKPOINT_MISMATCH,
        trusted_checkpoint=True,
    ),
    # keys
    case("commits-resigned-untrusted-key", resign_commits, K.COMMIT_SIGNATURE),
    case(
        "commits-and-notes-resigned-untrusted-key",
        resign_commits_and_notes,
        K.COMMIT_SIGNATURE,
        K.CHECKPOINT_SIGNATURE,
        K.UNSIGNED,
        K.MANIFEST_CHECKPOINT,
    ),
    case(
        "whole-ledger-forged-untrusted-key",
        forge_whole_ledger,
        K.COMMIT_SIGNATURE,
        K.CHECKPOINT_SIGNATURE,
        K.MANIFEST_SIGNATURE,
        K.UNSIGNED,
    ),
    case("checkpoint-note-edited", edit_checkpoint_note, K.CHECKPOINT_SIGNATURE),
    # forks and duplicate indices
    case(
        "fork-unsigned-sibling",
        fork_unsigned_sibling,
        K.FORK,
        K.DUPLICATE_INDEX,
        K.COMMIT_SIGNATURE,
    ),
    case("fork-signed-backup", fork_signed_backup, K.FORK, K.DUPLICATE_INDEX),
    case(
        "fork-signature-armor-rewrapped",
        rewrap_head_signature,
        K.FORK,
        K.DUPLICATE_INDEX,
        K.COMMIT_SIGNATURE,
    ),
    case("interior-signature-armor-rewrapped", rewrap_interior_signature, K.COMMIT_SIGNATURE),
    case("duplicate-index-signed-backup", duplicate_index_signed_backup, K.DUPLICATE_INDEX),
    case(
        "duplicate-index-crafted",
        duplicate_index_crafted,
        K.DUPLICATE_INDEX,
        K.COMMIT_SIGNATURE,
    ),
]


def test_template_is_clean(built: Built) -> None:
    report = verify(built.path, built.key, built.latest)
    assert report.findings == []
    assert report.total_entries == 31
    assert report.checkpoints == 5
    assert [cp.size for cp in built.checkpoints] == [9, 25, 31]


@pytest.mark.parametrize("tamper", TAMPER_CASES)
def test_tampering_is_reported(tamper: Case, repo: Repo, built: Built) -> None:
    """Default verification finds the attack; checking every signature changes no verdict.

    By default only commits past the newest verified checkpoint, or named by a finding,
    get a cryptographic signature check; ``all_signatures`` checks them all.
    """
    tamper.mutate(repo, built)
    trusted = built.latest if tamper.trusted_checkpoint else None
    report = verify(repo.path, built.key, trusted)
    kinds = {f.kind for f in report.findings}
    assert tamper.expected <= kinds, f"missing {tamper.expected - kinds}; got {report.findings}"
    assert not report.valid
    full = verify(repo.path, built.key, trusted, all_signatures=True)
    assert not full.valid
    assert kinds <= {f.kind for f in full.findings}


def test_rewrapped_interior_entry_commit_is_named(repo: Repo, built: Built) -> None:
    rewrap_interior_signature(repo, built)
    named = {
        f.session for f in verify(repo.path, built.key).findings if f.kind == K.COMMIT_SIGNATURE
    }
    assert "s1" in named


def test_rewind_is_invisible_without_a_trusted_checkpoint(repo: Repo, built: Built) -> None:
    """The limit the trusted checkpoint exists for: a consistent rewind verifies clean."""
    rewind_to_first_checkpoint(repo, built)
    report = verify(repo.path, built.key)
    assert report.valid
    assert report.findings == []
    assert report.total_entries == built.checkpoints[0].size
    earlier = verify(repo.path, built.key, built.checkpoints[0])
    assert earlier.findings == []


def test_fork_is_not_reported_as_truncation(repo: Repo, built: Built) -> None:
    fork_signed_backup(repo, built)
    kinds = {f.kind for f in verify(repo.path, built.key).findings}
    assert {K.FORK, K.DUPLICATE_INDEX} <= kinds
    assert not kinds & {K.TRUNCATED, K.UNCOVERED}, kinds


def test_rewinding_main_alone_loses_nothing(repo: Repo, built: Built) -> None:
    """Session refs still reach every entry, so only a warning is due, even when trusted.

    main goes back to the checkpoint of size 19, the newest one s0's manifest needs.
    """
    chain = repo.first_parent_chain(MAIN_REF)
    assert [repo.checkpoint_size(c) for c in chain] == [9, 18, 19, 25, 31]
    repo.update_ref(MAIN_REF, chain[2])
    report = verify(repo.path, built.key, built.latest)
    assert report.valid
    assert {f.kind for f in report.findings} == {K.UNCOVERED}


# -- clean ledgers -----------------------------------------------------------------------


def _one_entry(ledger: Ledger, reopen: Callable[[], Ledger]) -> int:
    ledger.append("only", "decision", decision(0))
    return 1


def _one_long_session(ledger: Ledger, reopen: Callable[[], Ledger]) -> int:
    for n in range(60):
        ledger.append("long", "decision", decision(n))
    return 60


def _many_sessions(ledger: Ledger, reopen: Callable[[], Ledger]) -> int:
    for n in range(50):
        ledger.append(f"sess-{n % 25}", "decision", decision(n))
    return 50


def _manifests(ledger: Ledger, reopen: Callable[[], Ledger]) -> int:
    for n in range(12):
        ledger.append(f"m{n % 3}", "decision", decision(n))
    ledger.close_session("m0")
    ledger.close_session("m1", final=False)
    ledger.append("m1", "result", {"envelope_id": "e", "summary": "pr/1"})
    ledger.close_session("m1")
    return 16


def _reopened(ledger: Ledger, reopen: Callable[[], Ledger]) -> int:
    for n in range(5):
        ledger.append(f"r{n % 2}", "decision", decision(n))
    ledger.close()
    ledger = reopen()
    for n in range(5, 9):
        ledger.append(f"r{n % 3}", "decision", decision(n))
    ledger.close_session("r0")
    ledger.close()
    ledger = reopen()
    ledger.append("r1", "decision", decision(9))
    return 11


def _concurrent(ledger: Ledger, reopen: Callable[[], Ledger]) -> int:
    from concurrent.futures import ThreadPoolExecutor

    with ThreadPoolExecutor(8) as pool:
        futures = [
            pool.submit(ledger.append, f"t{n % 8}", "decision", decision(n)) for n in range(80)
        ]
        for future in futures:
            future.result()
    return 80


SHAPES = {
    "one-entry": _one_entry,
    "one-session-many-entries": _one_long_session,
    "many-sessions": _many_sessions,
    "manifests-final-and-not": _manifests,
    "after-reopen": _reopened,
    "concurrent-appends": _concurrent,
}


@pytest.mark.parametrize("interval", [3600.0, 0.0], ids=["checkpoint-at-close", "every-batch"])
@pytest.mark.parametrize("backend", ["memory", "git"])
@pytest.mark.parametrize("shape", list(SHAPES))
def test_clean_ledgers_have_no_findings(
    shape: str, backend: str, interval: float, tmp_path: Path
) -> None:
    signer, clock = Signer(SEED), FakeClock()
    memory = MemoryStorage()
    path = tmp_path / "ledger.git"
    opened: list[Ledger] = []

    def reopen() -> Ledger:
        storage = memory if backend == "memory" else GitStorage(path, writable=True)
        ledger = Ledger.open(storage, signer, clock=clock, checkpoint_interval=interval)
        opened.append(ledger)
        return ledger

    storage = memory if backend == "memory" else GitStorage.init(path)
    first = Ledger.create(storage, signer, origin=ORIGIN, clock=clock, checkpoint_interval=interval)
    opened.append(first)
    count = SHAPES[shape](first, reopen)
    for ledger in opened:
        ledger.close()
    if backend == "memory":
        report = verify_repository(memory, [signer.public_key])
    else:
        report = verify(path, signer.public_key)
    assert report.findings == []
    assert report.valid
    assert report.total_entries == count
    assert report.checkpoints >= 1


def test_uncovered_tail_is_only_a_warning(tmp_path: Path) -> None:
    signer = Signer(SEED)
    path = tmp_path / "ledger.git"
    ledger = Ledger.create(
        GitStorage.init(path), signer, origin=ORIGIN, clock=FakeClock(), checkpoint_interval=3600
    )
    try:
        ledger.append("s", "decision", decision(0))
        ledger.checkpoint()
        ledger.append("s", "decision", decision(1))
        report = verify(path, signer.public_key)
    finally:
        ledger.close()
    assert report.valid
    assert [f.kind for f in report.findings] == [K.UNCOVERED]


@pytest.mark.parametrize("backend", ["memory", "git"])
def test_empty_ledger_is_never_valid(backend: str, tmp_path: Path) -> None:
    signer = Signer(SEED)
    path = tmp_path / "ledger.git"
    storage = MemoryStorage() if backend == "memory" else GitStorage.init(path)
    Ledger.create(storage, signer, origin=ORIGIN, clock=FakeClock()).close()
    for key in (signer.public_key, Signer(ATTACKER_SEED).public_key):
        report = verify_repository(storage, [key]) if backend == "memory" else verify(path, key)
        assert not report.valid
        assert K.EMPTY_LEDGER in {f.kind for f in report.findings}


def test_no_trusted_key_match_is_never_valid(built: Built) -> None:
    report = verify(built.path, Signer(ATTACKER_SEED).public_key)
    assert not report.valid
    kinds = {f.kind for f in report.findings}
    assert {K.COMMIT_SIGNATURE, K.CHECKPOINT_SIGNATURE, K.UNSIGNED, K.MANIFEST_SIGNATURE} <= kinds
    assert report.checkpoints == 0


def test_verification_needs_a_trusted_key(built: Built) -> None:
    storage = GitStorage(built.path)
    try:
        with pytest.raises(KeyMaterialError):
            verify_repository(storage, [])
    finally:
        storage.close()
