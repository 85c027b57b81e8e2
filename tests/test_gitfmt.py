"""Git object and pack encodings, checked bit-exact against real git and pygit2."""

from __future__ import annotations

import ast
import hashlib
import os
import shutil
import struct
import subprocess
import zlib
from collections.abc import Sequence
from pathlib import Path

import pygit2
import pytest
from hypothesis import given
from hypothesis import strategies as st

from aegisflow.errors import InvalidEntry, MalformedData
from aegisflow.ledger import gitfmt
from aegisflow.ledger.gitfmt import (
    MODE_BLOB,
    MODE_EXECUTABLE,
    MODE_GITLINK,
    MODE_SYMLINK,
    MODE_TREE,
    Ident,
    PackWriter,
    commit_payload,
    commit_with_signature,
    encode_pack_index,
    encode_tree,
    format_ident,
    object_id,
    oid_from_hex,
    oid_hex,
    pack_entry_header,
    parse_commit,
    parse_ident,
    parse_tree,
)

AUTHOR = format_ident("Aegis Ledger", "ledger@aegis.invalid", 1_700_000_000)
COMMITTER = format_ident("Aegis Writer", "writer@aegis.invalid", 1_700_000_123, -150)
FAKE_SIG = (
    "-----BEGIN SSH SIGNATURE-----\n"
    "U1NIU0lHAAAAAQAAADMAAAALc3NoLWVkMjU1MTkAAAAgk5vPz3JXnEbn2UmjWtT0vWhWJj\n"
    "dGhpcyBpcyBub3QgYSByZWFsIHNpZ25hdHVyZSBidXQgaXQgaGFzIHRoZSByaWdodCBzaG\n"
    "-----END SSH SIGNATURE-----\n"
)


# -- helpers -----------------------------------------------------------------------------


def git_env(home: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("GIT_")}
    env.update(
        HOME=str(home),
        GIT_CONFIG_NOSYSTEM="1",
        GIT_CONFIG_GLOBAL=os.devnull,
        LC_ALL="C",
        TZ="UTC",
    )
    return env


def git(
    repo: Path, *args: str, data: bytes | None = None, env: dict[str, str] | None = None
) -> bytes:
    result = subprocess.run(
        ["git", *args],
        cwd=repo,
        input=data,
        capture_output=True,
        env=env or git_env(repo.parent),
        check=False,
        timeout=120,
    )
    assert result.returncode == 0, (args, result.stderr.decode(errors="replace"))
    return result.stdout


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    path = tmp_path / "ledger.git"
    subprocess.run(
        ["git", "init", "--bare", "-q", "--initial-branch=main", str(path)],
        check=True,
        env=git_env(tmp_path),
        timeout=60,
    )
    return path


def install_pack(repo: Path, writer: PackWriter) -> str:
    pack, idx, name = writer.finish()
    pack_dir = repo / "objects" / "pack"
    (pack_dir / f"pack-{name}.pack").write_bytes(pack)
    (pack_dir / f"pack-{name}.idx").write_bytes(idx)
    return name


def history(writer: PackWriter, n: int, *, signed: bool = True) -> list[bytes]:
    """Add a ledger-shaped chain: each entry a blob, a one-entry tree, a commit."""
    commits: list[bytes] = []
    for i in range(n):
        blob = b'{"seq":%d,"tool":"Bash","decision":"allow"}\n' % i
        tree = encode_tree([(MODE_BLOB, "entry.json", writer.add("blob", blob))])
        payload = commit_payload(
            writer.add("tree", tree), commits[-1:], AUTHOR, COMMITTER, f"entry {i}\n"
        )
        body = commit_with_signature(payload, FAKE_SIG) if signed else payload
        commits.append(writer.add("commit", body))
    return commits


def commit_at(pg: pygit2.Repository, oid: bytes) -> pygit2.Commit:
    obj = pg[oid_hex(oid)]
    assert isinstance(obj, pygit2.Commit)
    return obj


def blob_data(pg: pygit2.Repository, oid: bytes | pygit2.Oid) -> bytes:
    obj = pg[oid.hex() if isinstance(oid, bytes) else str(oid)]
    assert isinstance(obj, pygit2.Blob)
    return obj.data


def read_idx(idx: bytes) -> tuple[list[int], list[bytes], list[int], list[int]]:
    """Minimal v2 .idx reader for tests: fanout, oids, crcs, resolved offsets."""
    assert idx[:8] == b"\xfftOc\x00\x00\x00\x02"
    assert hashlib.sha1(idx[:-20], usedforsecurity=False).digest() == idx[-20:]
    fanout = list(struct.unpack(">256I", idx[8 : 8 + 1024]))
    n = fanout[-1]
    pos = 8 + 1024
    oids = [idx[pos + 20 * i : pos + 20 * (i + 1)] for i in range(n)]
    pos += 20 * n
    crcs = list(struct.unpack(f">{n}I", idx[pos : pos + 4 * n]))
    pos += 4 * n
    small = struct.unpack(f">{n}I", idx[pos : pos + 4 * n])
    pos += 4 * n
    large_count = sum(1 for s in small if s & 0x80000000)
    large = struct.unpack(f">{large_count}Q", idx[pos : pos + 8 * large_count])
    offsets = [large[s & 0x7FFFFFFF] if s & 0x80000000 else s for s in small]
    assert len(idx) == pos + 8 * large_count + 40
    return fanout, oids, crcs, offsets


def blob_with_prefix(prefix: bytes) -> bytes:
    """Find a blob whose object id starts with ``prefix`` (one byte: ~256 tries)."""
    for i in range(1_000_000):
        data = b"prefix-search %d\n" % i
        if object_id("blob", data).startswith(prefix):
            return data
    raise AssertionError(prefix)


def colliding_blobs(nbytes: int) -> tuple[bytes, bytes]:
    """Two blobs whose ids share their first ``nbytes`` bytes (birthday search)."""
    seen: dict[bytes, bytes] = {}
    for i in range(10_000_000):
        data = b"collide %d\n" % i
        key = object_id("blob", data)[:nbytes]
        if key in seen:
            return seen[key], data
        seen[key] = data
    raise AssertionError(nbytes)


# -- purity -----------------------------------------------------------------------------


def test_module_imports_only_stdlib_hashing_and_errors() -> None:
    source = Path(gitfmt.__file__).read_text(encoding="utf-8")
    imported: set[str] = set()
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            imported.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            imported.add(node.module or "")
    assert imported <= {
        "__future__",
        "functools",
        "hashlib",
        "re",
        "struct",
        "zlib",
        "collections.abc",
        "dataclasses",
        "aegisflow.errors",
    }


# -- object ids ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    "data", [b"", b"hello\n", bytes(range(256)), b"\0" * 5000], ids=["empty", "text", "bin", "nul"]
)
def test_blob_id_matches_git_hash_object(repo: Path, data: bytes) -> None:
    expected = git(repo, "hash-object", "-t", "blob", "--stdin", data=data).strip().decode()
    assert oid_hex(object_id("blob", data)) == expected


def test_object_id_rejects_unknown_kind() -> None:
    with pytest.raises(InvalidEntry):
        object_id("note", b"x")


def test_hex_helpers() -> None:
    oid = object_id("blob", b"")
    assert oid_hex(oid) == "e69de29bb2d1d6434b8b29ae775ad8c2e48c5391"
    assert oid_from_hex(oid_hex(oid)) == oid
    for bad in ("E69DE29BB2D1D6434B8B29AE775AD8C2E48C5391", "e69de2", "z" * 40, oid_hex(oid) + "0"):
        with pytest.raises(MalformedData):
            oid_from_hex(bad)
    with pytest.raises(InvalidEntry):
        oid_hex(b"\x00" * 19)


# -- trees ------------------------------------------------------------------------------


def sample_entries() -> list[tuple[str, str, bytes]]:
    blob = object_id("blob", b"x\n")
    sub = object_id("tree", b"")
    # Plain name order would put the directory "foo" first; git compares it as "foo/".
    return [
        (MODE_TREE, "foo", sub),
        (MODE_BLOB, "foo.txt", blob),
        (MODE_BLOB, "foo-bar", blob),
        (MODE_TREE, "foo0", sub),
        (MODE_EXECUTABLE, "run.sh", blob),
        (MODE_SYMLINK, "link", object_id("blob", b"foo.txt")),
        (MODE_GITLINK, "vendored", object_id("commit", b"not real")),
        (MODE_BLOB, "\u00e9t\u00e9 \u2713.json", blob),
        (MODE_BLOB, "A", blob),
    ]


def test_encode_tree_matches_git_mktree(repo: Path) -> None:
    entries = sample_entries()
    kinds = {MODE_TREE: "tree", MODE_GITLINK: "commit"}
    listing = "".join(
        f"{mode} {kinds.get(mode, 'blob')} {oid.hex()}\t{name}\n" for mode, name, oid in entries
    )
    expected = git(repo, "mktree", "--missing", data=listing.encode()).strip().decode()
    body = encode_tree(entries)
    assert oid_hex(object_id("tree", body)) == expected
    names = [name for _, name, _ in parse_tree(body)]
    assert names == [
        "A",
        "foo-bar",
        "foo.txt",
        "foo",
        "foo0",
        "link",
        "run.sh",
        "vendored",
        "\u00e9t\u00e9 \u2713.json",
    ]
    assert sorted(parse_tree(body)) == sorted(entries)
    assert encode_tree(parse_tree(body)) == body


def test_empty_tree() -> None:
    assert encode_tree([]) == b""
    assert oid_hex(object_id("tree", b"")) == "4b825dc642cb6eb9a060e54bf8d69288fbee4904"
    assert parse_tree(b"") == []


@pytest.mark.parametrize(
    "entry",
    [
        (MODE_BLOB, "", None),
        (MODE_BLOB, "a/b", None),
        (MODE_BLOB, "a\0b", None),
        (MODE_BLOB, ".", None),
        (MODE_BLOB, "..", None),
        (MODE_TREE, ".git", None),
        (MODE_TREE, ".GIT", None),
        (MODE_TREE, ".git. ", None),
        (MODE_TREE, "GIT~1", None),
        (MODE_BLOB, "bad\udc80", None),
        ("040000", "dir", None),
        ("100664", "file", None),
        ("644", "file", None),
        (MODE_BLOB, "short-oid", b"\x01" * 19),
    ],
)
def test_encode_tree_rejects(entry: tuple[str, str, bytes | None]) -> None:
    mode, name, oid = entry
    with pytest.raises(InvalidEntry):
        encode_tree([(mode, name, oid if oid is not None else b"\x01" * 20)])


def test_encode_tree_rejects_duplicate_names() -> None:
    oid = b"\x01" * 20
    with pytest.raises(InvalidEntry):
        encode_tree([(MODE_BLOB, "a", oid), (MODE_BLOB, "a", oid)])
    with pytest.raises(InvalidEntry):
        encode_tree([(MODE_BLOB, "a", oid), (MODE_TREE, "a", oid)])


OID = b"\x11" * 20
GOOD_TREE = b"100644 a\0" + OID + b"40000 b\0" + OID


@pytest.mark.parametrize(
    "data",
    [
        pytest.param(GOOD_TREE[:-1], id="truncated-oid"),
        pytest.param(b"100644 a" + OID, id="no-nul"),
        pytest.param(b"100644a\0" + OID, id="no-space"),
        pytest.param(b"100664 a\0" + OID, id="noncanonical-mode"),
        pytest.param(b"040000 a\0" + OID, id="zero-padded-mode"),
        pytest.param(b"40000 b\0" + OID + b"100644 a\0" + OID, id="unsorted"),
        pytest.param(b"100644 a\0" + OID + b"100644 a\0" + OID, id="duplicate"),
        pytest.param(b"100644 a\0" + OID + b"40000 a\0" + OID, id="file-and-dir"),
        pytest.param(b"100644 a/b\0" + OID, id="slash"),
        pytest.param(b"100644 ..\0" + OID, id="dotdot"),
        pytest.param(b"40000 .git\0" + OID, id="dotgit"),
        pytest.param(b"100644 \0" + OID, id="empty-name"),
        pytest.param(b"100644 \xff\0" + OID, id="not-utf8"),
        pytest.param(GOOD_TREE + b"junk", id="trailing-garbage"),
        pytest.param(b"\x00" * 30, id="zeros"),
    ],
)
def test_parse_tree_rejects(data: bytes) -> None:
    assert len(parse_tree(GOOD_TREE)) == 2
    with pytest.raises(MalformedData):
        parse_tree(data)


# -- identities -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("offset", "zone"),
    [(0, "+0000"), (90, "+0130"), (-480, "-0800"), (-150, "-0230"), (825, "+1345")],
)
def test_format_ident(offset: int, zone: str) -> None:
    text = format_ident("A U Thor", "a@example.org", 1_700_000_000, offset)
    assert text == f"A U Thor <a@example.org> 1700000000 {zone}"
    assert parse_ident(text) == Ident(
        name="A U Thor", email="a@example.org", unix_time=1_700_000_000, offset_minutes=offset
    )


@pytest.mark.parametrize(
    ("name", "email", "when", "offset"),
    [
        ("", "a@b", 0, 0),
        (" padded", "a@b", 0, 0),
        ("a<b", "a@b", 0, 0),
        ("a>b", "a@b", 0, 0),
        ("a\nb", "a@b", 0, 0),
        ("a", "a\n@b", 0, 0),
        ("a", "<a@b>", 0, 0),
        ("a", "a@b\0", 0, 0),
        ("a", "a@b", -1, 0),
        ("a", "a@b", 2**63, 0),
        ("a", "a@b", 0, 1440),
        ("a", "a@b", 0, -1440),
        ("a", "a@b", 1.5, 0),
        ("a", "a@b", True, 0),
        ("a", "a@b", 0, 1.0),
    ],
)
def test_format_ident_rejects(name: str, email: str, when: int, offset: int) -> None:
    with pytest.raises(InvalidEntry):
        format_ident(name, email, when, offset)


@pytest.mark.parametrize(
    "text",
    [
        "<a@b> 0 +0000",
        "a <a@b> 01 +0000",
        "a <a@b> 0 +000",
        "a <a@b> 0 0000",
        "a <a@b> 0 +0060",
        "a <a@b>0 +0000",
        "a<a@b> 0 +0000",
        "a <a@b> 0 +0000\n",
        "a <a@b> 99999999999999999999 +0000",
    ],
)
def test_parse_ident_rejects(text: str) -> None:
    with pytest.raises(MalformedData):
        parse_ident(text)


# -- commits ----------------------------------------------------------------------------


def commit_tree_env(home: Path) -> dict[str, str]:
    env = git_env(home)
    env.update(
        GIT_AUTHOR_NAME="Aegis Ledger",
        GIT_AUTHOR_EMAIL="ledger@aegis.invalid",
        GIT_AUTHOR_DATE="1700000000 +0000",
        GIT_COMMITTER_NAME="Aegis Writer",
        GIT_COMMITTER_EMAIL="writer@aegis.invalid",
        GIT_COMMITTER_DATE="1700000123 -0230",
    )
    return env


@pytest.mark.parametrize(
    "message", ["entry 1\n", "h\u00e9llo \u2713\n\nbody line\n", "no trailing newline", ""]
)
def test_commit_payload_matches_git_commit_tree(repo: Path, tmp_path: Path, message: str) -> None:
    env = commit_tree_env(tmp_path)
    tree_body = encode_tree(sample_entries()[1:3])
    tree_hex = git(repo, "hash-object", "-w", "-t", "tree", "--stdin", data=tree_body).strip()
    assert tree_hex.decode() == oid_hex(object_id("tree", tree_body))
    msg_file = tmp_path / "msg"
    msg_file.write_bytes(message.encode())
    roots = [
        git(repo, "commit-tree", tree_hex.decode(), "-m", f"root {i}", env=env).strip().decode()
        for i in range(2)
    ]
    for parents in ([], roots[:1], roots):
        args = [a for p in parents for a in ("-p", p)]
        got = git(repo, "commit-tree", tree_hex.decode(), *args, "-F", str(msg_file), env=env)
        raw = git(repo, "cat-file", "commit", got.strip().decode())
        payload = commit_payload(
            oid_from_hex(tree_hex.decode()),
            [oid_from_hex(p) for p in parents],
            AUTHOR,
            COMMITTER,
            message,
        )
        assert payload == raw
        assert oid_hex(object_id("commit", payload)) == got.strip().decode()
        parsed = parse_commit(payload)
        assert parsed.payload == payload
        assert parsed.gpgsig is None
        assert parsed.message == message
        assert parsed.parents == tuple(oid_from_hex(p) for p in parents)
        assert (parsed.author, parsed.committer) == (AUTHOR, COMMITTER)


@pytest.mark.parametrize(
    "signature",
    [
        FAKE_SIG,
        "one line\n",
        "with\n\nan empty line\n",
        "ends with an empty line\n\n",
    ],
)
def test_signature_layout_matches_pygit2(repo: Path, signature: str) -> None:
    pg = pygit2.Repository(str(repo))
    # libgit2 checks that the tree and parents exist before it writes a commit.
    tree = pg.odb.write(pygit2.enums.ObjectType.TREE, b"")
    parent_body = commit_payload(object_id("tree", b""), [], AUTHOR, COMMITTER, "root\n")
    parent = pg.odb.write(pygit2.enums.ObjectType.COMMIT, parent_body)
    assert (str(tree), str(parent)) == (
        oid_hex(object_id("tree", b"")),
        oid_hex(object_id("commit", parent_body)),
    )
    payload = commit_payload(
        object_id("tree", b""), [object_id("commit", parent_body)], AUTHOR, COMMITTER, "msg\n"
    )
    signed = commit_with_signature(payload, signature)
    # libgit2 appends the final newline itself; git stores the armor with it.
    pg_oid = pg.create_commit_with_signature(payload.decode(), signature[:-1], "gpgsig")
    assert pg[pg_oid].read_raw() == signed
    assert str(pg_oid) == oid_hex(object_id("commit", signed))
    assert commit_at(pg, bytes.fromhex(str(pg_oid))).gpg_signature == (
        signature[:-1].encode(),
        payload,
    )
    parsed = parse_commit(signed)
    assert parsed.gpgsig == signature
    assert parsed.payload == payload
    assert parsed.message == "msg\n"


def test_signature_header_goes_after_the_last_header() -> None:
    payload = commit_payload(object_id("tree", b""), [], AUTHOR, COMMITTER, "m\n\nbody\n")
    signed = commit_with_signature(payload, "A\nB\n")
    assert signed == payload.replace(b"\n\nm\n", b"\ngpgsig A\n B\n\nm\n", 1)


def test_pygit2_commit_string_is_our_payload(repo: Path) -> None:
    pg = pygit2.Repository(str(repo))
    sig = pygit2.Signature("Aegis Ledger", "ledger@aegis.invalid", 1_700_000_000, 0)
    committer = pygit2.Signature("Aegis Writer", "writer@aegis.invalid", 1_700_000_123, -150)
    tree = pg.TreeBuilder().write()
    content = pg.create_commit_string(sig, committer, "msg\n", tree, [])
    assert str(content).encode() == commit_payload(
        object_id("tree", b""), [], AUTHOR, COMMITTER, "msg\n"
    )


sig_text = st.text(st.characters(exclude_categories=["Cs"], exclude_characters="\0"))


@given(signature=sig_text, message=sig_text)
def test_signature_round_trip_is_byte_exact(signature: str, message: str) -> None:
    payload = commit_payload(b"\x42" * 20, [b"\x07" * 20], AUTHOR, COMMITTER, message)
    parsed = parse_commit(commit_with_signature(payload, signature + "\n"))
    assert parsed.payload == payload
    assert parsed.gpgsig == signature + "\n"
    assert parsed.message == message


def test_extra_headers_are_kept_and_stay_in_the_payload() -> None:
    payload = commit_payload(object_id("tree", b""), [], AUTHOR, COMMITTER, "m\n")
    head, _, rest = payload.partition(b"\n\n")
    with_extra = head + b"\nencoding UTF-8\nx-note first\n second\n\n" + rest
    signed = commit_with_signature(with_extra, FAKE_SIG)
    parsed = parse_commit(signed)
    assert parsed.extra_headers == (("encoding", "UTF-8"), ("x-note", "first\nsecond"))
    assert parsed.payload == with_extra
    assert signed.index(b"gpgsig") > signed.index(b"x-note")


T = "tree " + "ab" * 20 + "\n"
P = "parent " + "cd" * 20 + "\n"
A = f"author {AUTHOR}\n"
C = f"committer {COMMITTER}\n"


@pytest.mark.parametrize(
    "data",
    [
        pytest.param(b"", id="empty"),
        pytest.param((T + A + C + "message").encode(), id="no-blank-line"),
        pytest.param((A + C + "\nm").encode(), id="no-tree"),
        pytest.param((P + T + A + C + "\nm").encode(), id="parent-before-tree"),
        pytest.param((T + C + A + "\nm").encode(), id="committer-first"),
        pytest.param((T + A + "\nm").encode(), id="no-committer"),
        pytest.param((T + A + A + C + "\nm").encode(), id="two-authors"),
        pytest.param((T.upper().replace("TREE", "tree") + A + C + "\nm").encode(), id="upper-hex"),
        pytest.param(("tree abcd\n" + A + C + "\nm").encode(), id="short-hex"),
        pytest.param((T + "author nobody\n" + C + "\nm").encode(), id="bad-ident"),
        pytest.param((T + A + " cont\n" + C + "\nm").encode(), id="multiline-author"),
        pytest.param((" " + T + A + C + "\nm").encode(), id="leading-continuation"),
        pytest.param((T + A + C + "novalue\n\nm").encode(), id="header-without-value"),
        pytest.param((T + A + C + "gpgsig a\ngpgsig b\n\nm").encode(), id="two-gpgsig"),
        pytest.param((T + A + C + "gpgsig-sha256 a\n\nm").encode(), id="gpgsig-sha256"),
        pytest.param((T + A + C + "\nm\0").encode(), id="nul"),
        pytest.param((T + A + C + "\n").encode() + b"\xff\xfe", id="message-not-utf8"),
        pytest.param(b"\n\nm", id="only-blank"),
        pytest.param(b"\x00\xff garbage \x01", id="garbage"),
    ],
)
def test_parse_commit_rejects(data: bytes) -> None:
    parse_commit((T + P + A + C + "\nm").encode())
    with pytest.raises(MalformedData):
        parse_commit(data)


def test_commit_payload_rejects_header_injection_and_bad_input() -> None:
    tree = object_id("tree", b"")
    forged = AUTHOR + "\ngpgsig forged"
    with pytest.raises(InvalidEntry):
        commit_payload(tree, [], forged, COMMITTER, "m\n")
    with pytest.raises(InvalidEntry):
        commit_payload(tree, [], AUTHOR, "x", "m\n")
    with pytest.raises(InvalidEntry):
        commit_payload(tree[:19], [], AUTHOR, COMMITTER, "m\n")
    with pytest.raises(InvalidEntry):
        commit_payload(tree, [b"short"], AUTHOR, COMMITTER, "m\n")
    with pytest.raises(InvalidEntry):
        commit_payload(tree, [], AUTHOR, COMMITTER, "m\0")
    with pytest.raises(InvalidEntry):
        commit_payload(tree, [], AUTHOR, COMMITTER, "\udc80")


def test_commit_with_signature_rejects() -> None:
    payload = commit_payload(object_id("tree", b""), [], AUTHOR, COMMITTER, "m\n")
    for bad_sig in ("", "no final newline", "nul\0\n"):
        with pytest.raises(InvalidEntry):
            commit_with_signature(payload, bad_sig)
    with pytest.raises(InvalidEntry):
        commit_with_signature(commit_with_signature(payload, FAKE_SIG), FAKE_SIG)
    with pytest.raises(InvalidEntry):
        commit_with_signature(b"not a commit", FAKE_SIG)


@pytest.mark.skipif(shutil.which("ssh-keygen") is None, reason="needs ssh-keygen")
def test_real_ssh_signature_verifies_with_git(repo: Path, tmp_path: Path) -> None:
    env = git_env(tmp_path)
    key = tmp_path / "id_ed25519"
    subprocess.run(
        ["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", "ledger", "-f", str(key)],
        check=True,
        env=env,
        timeout=60,
    )
    writer = PackWriter()
    tree = writer.add("tree", encode_tree([(MODE_BLOB, "e.json", writer.add("blob", b"{}\n"))]))
    payload = commit_payload(tree, [], AUTHOR, COMMITTER, "signed entry\n")
    (tmp_path / "payload").write_bytes(payload)
    subprocess.run(
        ["ssh-keygen", "-Y", "sign", "-q", "-f", str(key), "-n", "git", str(tmp_path / "payload")],
        check=True,
        env=env,
        capture_output=True,
        timeout=60,
    )
    signature = (tmp_path / "payload.sig").read_text()
    commit = writer.add("commit", commit_with_signature(payload, signature))
    install_pack(repo, writer)
    git(repo, "update-ref", "refs/heads/main", oid_hex(commit))
    pub = (tmp_path / "id_ed25519.pub").read_text().split()
    allowed = tmp_path / "allowed_signers"
    allowed.write_text(f'ledger@aegis.invalid namespaces="git" {pub[0]} {pub[1]}\n')
    git(
        repo,
        "-c",
        "gpg.format=ssh",
        "-c",
        f"gpg.ssh.allowedSignersFile={allowed}",
        "verify-commit",
        oid_hex(commit),
    )
    pg_commit = commit_at(pygit2.Repository(str(repo)), commit)
    assert pg_commit.gpg_signature == (signature[:-1].encode(), payload)
    parsed = parse_commit(pg_commit.read_raw())
    assert (parsed.gpgsig, parsed.payload) == (signature, payload)


# -- packs ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("size", "encoded"),
    [
        (0, b"\x30"),
        (15, b"\x3f"),
        (16, b"\xb0\x01"),
        (2047, b"\xbf\x7f"),
        (2048, b"\xb0\x80\x01"),
        (2**32, b"\xb0\x80\x80\x80\x80\x01"),
    ],
)
def test_pack_entry_header(size: int, encoded: bytes) -> None:
    assert pack_entry_header(3, size) == encoded


def test_pack_is_accepted_by_git_and_pygit2(repo: Path) -> None:
    writer = PackWriter()
    commits = history(writer, 300)
    # Fanout edges and ids sharing their first one and two bytes.
    extremes = [blob_with_prefix(b"\x00"), blob_with_prefix(b"\xff"), *colliding_blobs(2)]
    sizes = [b"", b"a" * 15, b"b" * 16, b"c" * 2047, b"d" * 2048, os.urandom(300_000)]
    loose = [writer.add("blob", data) for data in extremes + sizes]
    for kind, data in (("blob", b"x\n"), ("blob", b"foo.txt"), ("tree", b"")):
        writer.add(kind, data)  # what sample_entries() points at, except the gitlink
    side_tree = writer.add(
        "tree",
        encode_tree([(MODE_BLOB, f"b{i}", oid) for i, oid in enumerate(loose)] + sample_entries()),
    )
    head = writer.add(
        "commit", commit_payload(side_tree, [commits[-1]], AUTHOR, COMMITTER, "tail\n")
    )
    assert len(writer) > 900
    assert len({oid[0] for oid in writer.oids}) < len(writer)
    name = install_pack(repo, writer)
    pack_path = repo / "objects" / "pack" / f"pack-{name}.pack"
    pack, idx, name2 = writer.finish()
    assert (name2, pack_path.read_bytes()) == (name, pack)
    assert name == hashlib.sha1(pack[:-20], usedforsecurity=False).hexdigest()
    assert len(pack) == writer.pack_size

    verify = git(repo, "verify-pack", "-v", str(pack_path.with_suffix(".idx"))).decode()
    rows = [line.split() for line in verify.splitlines() if len(line.split()[0]) == 40]
    assert {row[0] for row in rows} == {oid.hex() for oid in writer.oids}
    assert "chain length" not in verify  # no deltas

    # Our own reading of the index, against what we wrote.
    fanout, oids, crcs, offsets = read_idx(idx)
    assert oids == sorted(writer.oids)
    for b in range(256):
        assert fanout[b] == sum(1 for oid in oids if oid[0] <= b)
    by_offset = sorted(zip(offsets, crcs, strict=True))
    ends = [off for off, _ in by_offset[1:]] + [len(pack) - 20]
    for (off, crc), end in zip(by_offset, ends, strict=True):
        assert zlib.crc32(pack[off:end]) == crc

    git(repo, "update-ref", "refs/heads/main", oid_hex(head))
    fsck = subprocess.run(
        ["git", "fsck", "--full", "--strict", "--no-dangling"],
        cwd=repo,
        capture_output=True,
        env=git_env(repo.parent),
        check=False,
        timeout=120,
    )
    assert fsck.returncode == 0, fsck.stderr.decode()
    assert b"error" not in fsck.stderr
    assert b"warning" not in fsck.stderr

    batch = "".join(f"{oid.hex()}\n" for oid in writer.oids).encode()
    checked = git(repo, "cat-file", "--batch-check", data=batch).decode().splitlines()
    assert all("missing" not in line for line in checked)
    assert len(checked) == len(writer)

    log = git(repo, "log", "--format=%H", "main").decode().split()
    assert log == [oid_hex(head), *(oid_hex(c) for c in reversed(commits))]
    shown = git(repo, "cat-file", "-p", oid_hex(commits[5])).decode()
    assert f"parent {oid_hex(commits[4])}" in shown
    assert "gpgsig -----BEGIN SSH SIGNATURE-----" in shown
    listing = git(repo, "cat-file", "-p", oid_hex(side_tree)).decode()
    assert "040000 tree 4b825dc642cb6eb9a060e54bf8d69288fbee4904\tfoo\n" in listing
    assert git(repo, "cat-file", "blob", oid_hex(loose[-1])) == sizes[-1]

    pg = pygit2.Repository(str(repo))
    walked = [str(c.id) for c in pg.walk(pg.head.target)]
    assert walked == log
    entry = commit_at(pg, commits[7])
    assert entry.gpg_signature == (FAKE_SIG[:-1].encode(), parse_commit(entry.read_raw()).payload)
    assert (
        blob_data(pg, entry.tree["entry.json"].id)
        == b'{"seq":7,"tool":"Bash","decision":"allow"}\n'
    )
    for oid in writer.oids:
        assert oid_hex(oid) in pg
    assert "00" * 20 not in pg
    for data, oid in zip(extremes + sizes, loose, strict=True):
        assert blob_data(pg, oid) == data


def test_commits_written_by_us_parse_back_from_git(repo: Path) -> None:
    writer = PackWriter()
    commits = history(writer, 3)
    install_pack(repo, writer)
    for i, commit in enumerate(commits):
        raw = git(repo, "cat-file", "commit", oid_hex(commit))
        parsed = parse_commit(raw)
        assert parsed.gpgsig == FAKE_SIG
        assert parsed.message == f"entry {i}\n"
        assert parsed.parents == tuple(commits[i - 1 : i])
        (mode, name, blob), *_ = parse_tree(git(repo, "cat-file", "tree", oid_hex(parsed.tree)))
        assert (mode, name) == (MODE_BLOB, "entry.json")
        assert object_id("blob", git(repo, "cat-file", "blob", oid_hex(blob))) == blob


def test_empty_pack(repo: Path) -> None:
    writer = PackWriter()
    pack, idx, name = writer.finish()
    assert pack[:12] == b"PACK\x00\x00\x00\x02\x00\x00\x00\x00"
    assert len(pack) == 32
    assert writer.oids == ()
    assert read_idx(idx)[0] == [0] * 256
    install_pack(repo, writer)
    git(repo, "verify-pack", str(repo / "objects" / "pack" / f"pack-{name}.idx"))
    git(repo, "fsck", "--full", "--strict")


@pytest.mark.parametrize("level", [0, 9])
def test_other_zlib_levels(repo: Path, level: int) -> None:
    writer = PackWriter(level=level)
    head = history(writer, 20)[-1]
    name = install_pack(repo, writer)
    git(repo, "verify-pack", str(repo / "objects" / "pack" / f"pack-{name}.idx"))
    git(repo, "update-ref", "refs/heads/main", oid_hex(head))
    git(repo, "fsck", "--full", "--strict")


@pytest.mark.parametrize("level", [-1, 10, True])
def test_bad_zlib_level(level: int) -> None:
    with pytest.raises(InvalidEntry):
        PackWriter(level=level)


def test_duplicates_are_written_once_and_finish_repeats() -> None:
    writer = PackWriter()
    first = writer.add("blob", b"same")
    assert writer.add("blob", b"same") == first
    assert writer.oids == (first,)
    assert writer.finish() == writer.finish()
    second = writer.add("tree", b"")
    pack, idx, _ = writer.finish()
    assert list(writer.oids) == [first, second]
    assert read_idx(idx)[1] == sorted([first, second])
    assert struct.unpack(">I", pack[8:12]) == (2,)
    with pytest.raises(InvalidEntry):
        writer.add("note", b"x")


def test_index_large_offsets_read_by_git(repo: Path) -> None:
    offsets = [12, 2**31 - 1, 2**31, 5 * 2**30, 2**40 + 7]
    records: Sequence[tuple[bytes, int, int]] = [
        (object_id("blob", b"%d" % i), 0xDEADBEEF - i, off) for i, off in enumerate(offsets)
    ]
    idx = encode_pack_index(records, b"\x5a" * 20)
    _, oids, _, got = read_idx(idx)
    assert dict(zip(oids, got, strict=True)) == {oid: off for oid, _, off in records}
    shown = git(repo, "show-index", data=idx).decode().splitlines()
    parsed = {line.split()[1]: (int(line.split()[0]), line.split()[2]) for line in shown}
    assert parsed == {oid.hex(): (off, f"({crc:08x})") for oid, crc, off in records}


def test_index_rejects_bad_records() -> None:
    oid = b"\x01" * 20
    with pytest.raises(InvalidEntry):
        encode_pack_index([(oid, 0, 12), (oid, 0, 40)], b"\0" * 20)
    with pytest.raises(InvalidEntry):
        encode_pack_index([(oid, 0, -1)], b"\0" * 20)
    with pytest.raises(InvalidEntry):
        encode_pack_index([(oid, 2**32, 12)], b"\0" * 20)
    with pytest.raises(InvalidEntry):
        encode_pack_index([(b"short", 0, 12)], b"\0" * 20)
    with pytest.raises(InvalidEntry):
        encode_pack_index([], b"\0" * 19)


def test_git_rejects_a_flipped_byte_in_our_pack(repo: Path) -> None:
    """Guards the checks above: the harness would notice a broken pack."""
    writer = PackWriter()
    history(writer, 5)
    pack, idx, name = writer.finish()
    pack_dir = repo / "objects" / "pack"
    tampered = bytearray(pack)
    tampered[len(pack) // 2] ^= 0x01
    (pack_dir / f"pack-{name}.pack").write_bytes(bytes(tampered))
    (pack_dir / f"pack-{name}.idx").write_bytes(idx)
    result = subprocess.run(
        ["git", "verify-pack", str(pack_dir / f"pack-{name}.idx")],
        cwd=repo,
        capture_output=True,
        env=git_env(repo.parent),
        check=False,
        timeout=60,
    )
    assert result.returncode != 0
