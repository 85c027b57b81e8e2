"""aegisflow.ledger.sshsig: PROTOCOL.sshsig round trips and interop with ssh-keygen and git."""

from __future__ import annotations

import base64
import hashlib
import os
import shutil
import struct
import subprocess
from collections.abc import Callable
from pathlib import Path

import pygit2
import pytest

from aegisflow.errors import InputError, MalformedData, SignatureError
from aegisflow.keys import PublicKey, Signer, ssh_string
from aegisflow.ledger import sshsig

SIGNER = Signer(bytes.fromhex("9d61b19deffd5a60ba844af492ec2cc44449c5697b326919703bac031cae7f60"))
OTHER = Signer(bytes.fromhex("4ccd089b28ff96da9db6c346ec114e0f5b8a319f35aba624da8cf6ed4fb8a6fb"))
MESSAGE = b"tree 0123\nauthor a <a@b> 1 +0000\n\nhello\n"
PRINCIPAL = "ledger@aegisflow.test"

needs_ssh_keygen = pytest.mark.skipif(
    shutil.which("ssh-keygen") is None, reason="ssh-keygen not installed"
)
needs_git = pytest.mark.skipif(shutil.which("git") is None, reason="git not installed")


# -- helpers ---------------------------------------------------------------------------


def _armor(blob: bytes) -> str:
    body = base64.b64encode(blob).decode()
    lines = [body[i : i + 70] for i in range(0, len(body), 70)]
    return "\n".join([sshsig.BEGIN, *lines, sshsig.END])


def _blob(
    *,
    signer: Signer = SIGNER,
    message: bytes = MESSAGE,
    magic: bytes = b"SSHSIG",
    version: int = 1,
    key_wire: bytes | None = None,
    namespace: bytes = b"git",
    reserved: bytes = b"",
    hash_alg: bytes = b"sha512",
    digest: Callable[[bytes], bytes] = lambda m: hashlib.sha512(m).digest(),
    sig_alg: bytes = b"ssh-ed25519",
) -> bytes:
    """Build an SSHSIG blob field by field, independently of the module under test."""
    signed = (
        b"SSHSIG"
        + ssh_string(namespace)
        + ssh_string(reserved)
        + ssh_string(hash_alg)
        + ssh_string(digest(message))
    )
    raw_sig = signer.sign(signed)
    return (
        magic
        + struct.pack(">I", version)
        + ssh_string(key_wire if key_wire is not None else signer.public_key.ssh_wire())
        + ssh_string(namespace)
        + ssh_string(reserved)
        + ssh_string(hash_alg)
        + ssh_string(ssh_string(sig_alg) + ssh_string(raw_sig))
    )


def _git_env(home: Path) -> dict[str, str]:
    return {
        "PATH": os.environ["PATH"],
        "HOME": str(home),
        "GIT_CONFIG_NOSYSTEM": "1",
        "GIT_CONFIG_GLOBAL": os.devnull,
        "LC_ALL": "C",
        "GIT_AUTHOR_NAME": "Agent",
        "GIT_AUTHOR_EMAIL": "agent@example.test",
        "GIT_AUTHOR_DATE": "1700000000 +0000",
        "GIT_COMMITTER_NAME": "Agent",
        "GIT_COMMITTER_EMAIL": "agent@example.test",
        "GIT_COMMITTER_DATE": "1700000000 +0000",
    }


def _write_private_key(path: Path, signer: Signer) -> Path:
    path.write_bytes(signer.openssh_private("test"))
    path.chmod(0o600)
    return path


def _allowed_signers(tmp_path: Path, *keys: PublicKey) -> Path:
    path = tmp_path / "allowed_signers"
    path.write_text("".join(sshsig.allowed_signers_line(PRINCIPAL, k) + "\n" for k in keys))
    return path


# -- in-process ------------------------------------------------------------------------


def test_round_trip() -> None:
    armored = sshsig.sign(MESSAGE, SIGNER)
    sshsig.verify(armored, MESSAGE, SIGNER.public_key)
    parsed = sshsig.parse(armored)
    assert parsed.public_key == SIGNER.public_key
    assert parsed.namespace == "git"
    assert parsed.hash_alg == "sha512"
    assert parsed.reserved == b""
    assert len(parsed.signature) == 64


def test_armor_layout_matches_ssh_keygen() -> None:
    armored = sshsig.sign(MESSAGE, SIGNER)
    lines = armored.split("\n")
    assert lines[0] == "-----BEGIN SSH SIGNATURE-----"
    assert lines[-1] == "-----END SSH SIGNATURE-----"
    assert not armored.endswith("\n")
    assert all(len(line) == 70 for line in lines[1:-2])
    assert 0 < len(lines[-2]) <= 70
    # The independent builder produces the same bytes: deterministic Ed25519.
    assert armored == _armor(_blob())
    assert sshsig.sign(MESSAGE, SIGNER) == armored


@pytest.mark.parametrize("suffix", ["\n", "\r\n", "\n\n"])
def test_verify_accepts_trailing_newlines(suffix: str) -> None:
    armored = sshsig.sign(MESSAGE, SIGNER)
    sshsig.verify(armored + suffix, MESSAGE, SIGNER.public_key)
    sshsig.verify(armored.replace("\n", "\r\n"), MESSAGE, SIGNER.public_key)


def test_other_namespace_round_trip() -> None:
    armored = sshsig.sign(MESSAGE, SIGNER, namespace="aegisflow-checkpoint")
    sshsig.verify(armored, MESSAGE, SIGNER.public_key, namespace="aegisflow-checkpoint")


def test_sha256_signatures_are_accepted() -> None:
    armored = _armor(_blob(hash_alg=b"sha256", digest=lambda m: hashlib.sha256(m).digest()))
    sshsig.verify(armored, MESSAGE, SIGNER.public_key)


@pytest.mark.parametrize(
    ("armored", "message", "key", "namespace", "match"),
    [
        pytest.param(
            None, MESSAGE + b"x", SIGNER.public_key, "git", "does not verify", id="message"
        ),
        pytest.param(None, MESSAGE, OTHER.public_key, "git", "was made by key", id="other-key"),
        pytest.param(
            None, MESSAGE, SIGNER.public_key, "file", "namespace is 'git'", id="namespace"
        ),
        pytest.param(
            _armor(_blob(signer=OTHER, key_wire=SIGNER.public_key.ssh_wire())),
            MESSAGE,
            SIGNER.public_key,
            "git",
            "does not verify",
            id="signed-by-other-key-claims-ours",
        ),
        pytest.param(
            _armor(_blob(hash_alg=b"sha1", digest=lambda m: hashlib.sha1(m).digest())),  # noqa: S324
            MESSAGE,
            SIGNER.public_key,
            "git",
            "'sha1' is not supported",
            id="unsupported-hash",
        ),
        pytest.param(
            _armor(
                _blob().replace(
                    ssh_string(b"git") + ssh_string(b""),
                    ssh_string(b"git") + ssh_string(b"x"),
                )
            ),
            MESSAGE,
            SIGNER.public_key,
            "git",
            "does not verify",
            id="reserved-changed-after-signing",
        ),
        pytest.param(
            _armor(_blob(key_wire=ssh_string(b"ssh-rsa") + ssh_string(b"\x01\x00\x01"))),
            MESSAGE,
            SIGNER.public_key,
            "git",
            "key type 'ssh-rsa' is not supported",
            id="rsa-key",
        ),
        pytest.param(
            _armor(_blob(sig_alg=b"rsa-sha2-512")),
            MESSAGE,
            SIGNER.public_key,
            "git",
            "signature type 'rsa-sha2-512' is not supported",
            id="rsa-signature",
        ),
    ],
)
def test_signature_errors(
    armored: str | None, message: bytes, key: PublicKey, namespace: str, match: str
) -> None:
    armored = armored or sshsig.sign(MESSAGE, SIGNER)
    with pytest.raises(SignatureError, match=match):
        sshsig.verify(armored, message, key, namespace=namespace)


def test_every_flipped_signature_byte_fails() -> None:
    blob = _blob()
    for i in range(len(blob) - 64, len(blob)):
        bad = bytearray(blob)
        bad[i] ^= 0x80
        with pytest.raises(SignatureError, match="does not verify"):
            sshsig.verify(_armor(bytes(bad)), MESSAGE, SIGNER.public_key)


def test_every_single_byte_change_of_the_blob_fails() -> None:
    blob = _blob()
    for i in range(len(blob)):
        bad = bytearray(blob)
        bad[i] ^= 0x01
        with pytest.raises((MalformedData, SignatureError)):
            sshsig.verify(_armor(bytes(bad)), MESSAGE, SIGNER.public_key)


@pytest.mark.parametrize(
    ("armored", "match"),
    [
        ("", "missing -----BEGIN"),
        ("hello", "missing -----BEGIN"),
        ("-----BEGIN PGP SIGNATURE-----\nAAAA\n-----END PGP SIGNATURE-----", "missing -----BEGIN"),
        (sshsig.BEGIN + "\nU1NIU0lH", "missing -----END"),
        (sshsig.BEGIN, "missing -----END"),
        (sshsig.BEGIN + "\nU1NIU0lH*\n" + sshsig.END, "not valid base64"),
        (sshsig.BEGIN + "\nU1NIU0l\n" + sshsig.END, "not valid base64"),
        (_armor(b""), "magic"),
        (_armor(b"SSHSIX" + _blob()[6:]), "magic"),
        (_armor(b"SSHSIG\x00\x00"), "truncated"),
        (_armor(_blob(version=2)), "version 2 is not supported"),
        (_armor(_blob()[:-1]), "truncated in the signature field"),
        (_armor(_blob()[:40]), "truncated"),
        (_armor(_blob() + b"\x00"), "1 trailing bytes"),
        (
            _armor(_blob(key_wire=ssh_string(b"ssh-ed25519") + ssh_string(b"\x01" * 31))),
            "public key is malformed",
        ),
        (sshsig.BEGIN + "\n" + "A" * 9000 + "\n" + sshsig.END, "more than 8192"),
    ],
)
def test_malformed(armored: str, match: str) -> None:
    with pytest.raises(MalformedData, match=match):
        sshsig.verify(armored, MESSAGE, SIGNER.public_key)


def test_sign_rejects_empty_namespace() -> None:
    with pytest.raises(InputError):
        sshsig.sign(MESSAGE, SIGNER, namespace="")


def test_allowed_signers_line() -> None:
    line = sshsig.allowed_signers_line(PRINCIPAL, SIGNER.public_key)
    assert line == f'{PRINCIPAL} namespaces="git" {SIGNER.public_key.openssh()}'
    assert line.split()[2:] == SIGNER.public_key.openssh().split()
    for bad in ["", "two words", 'q"uote', "a,b", "tab\there", "#comment"]:
        with pytest.raises(InputError):
            sshsig.allowed_signers_line(bad, SIGNER.public_key)


# -- ssh-keygen interop ----------------------------------------------------------------


def _ssh_keygen_verify(
    tmp_path: Path, armored: str, message: bytes, *, namespace: str = "git"
) -> subprocess.CompletedProcess[bytes]:
    allowed = _allowed_signers(tmp_path, SIGNER.public_key)
    sig = tmp_path / "msg.sig"
    sig.write_text(armored)
    return subprocess.run(
        [
            "ssh-keygen",
            "-Y",
            "verify",
            "-f",
            str(allowed),
            "-I",
            PRINCIPAL,
            "-n",
            namespace,
            "-s",
            str(sig),
        ],
        input=message,
        capture_output=True,
        check=False,
    )


@needs_ssh_keygen
def test_ssh_keygen_accepts_our_signature(tmp_path: Path) -> None:
    armored = sshsig.sign(MESSAGE, SIGNER)
    ok = _ssh_keygen_verify(tmp_path, armored, MESSAGE)
    assert ok.returncode == 0, ok.stderr
    assert f'Good "git" signature for {PRINCIPAL}'.encode() in ok.stdout
    assert _ssh_keygen_verify(tmp_path, armored + "\n", MESSAGE).returncode == 0
    assert _ssh_keygen_verify(tmp_path, armored, MESSAGE + b"!").returncode != 0
    assert _ssh_keygen_verify(tmp_path, armored, MESSAGE, namespace="file").returncode != 0


@needs_ssh_keygen
def test_ssh_keygen_rejects_other_key(tmp_path: Path) -> None:
    armored = sshsig.sign(MESSAGE, OTHER)
    assert _ssh_keygen_verify(tmp_path, armored, MESSAGE).returncode != 0


@needs_ssh_keygen
def test_we_accept_ssh_keygen_signatures_byte_identical(tmp_path: Path) -> None:
    key = _write_private_key(tmp_path / "id_ed25519", SIGNER)
    data = tmp_path / "data"
    data.write_bytes(MESSAGE)
    subprocess.run(
        ["ssh-keygen", "-Y", "sign", "-f", str(key), "-n", "git", str(data)],
        capture_output=True,
        check=True,
    )
    theirs = (tmp_path / "data.sig").read_text()
    sshsig.verify(theirs, MESSAGE, SIGNER.public_key)
    # ssh-keygen writes exactly our armor plus one newline.
    assert theirs == sshsig.sign(MESSAGE, SIGNER) + "\n"
    with pytest.raises(SignatureError):
        sshsig.verify(theirs, MESSAGE, OTHER.public_key)


# -- git interop -----------------------------------------------------------------------


def _signed_commit(
    repo: pygit2.Repository, signer: Signer, *, namespace: str = "git"
) -> tuple[pygit2.Oid, str, str]:
    blob = repo.create_blob(b"evidence\n")
    builder = repo.TreeBuilder()
    builder.insert("entry.json", blob, pygit2.GIT_FILEMODE_BLOB)
    tree = builder.write()
    who = pygit2.Signature("Agent", "agent@example.test", 1700000000, 0)
    # pygit2's stubs say Oid; it returns the commit text (str).
    content: str = repo.create_commit_string(who, who, "ledger entry 1\n", tree, [])  # type: ignore[assignment]
    assert isinstance(content, str)
    armored = sshsig.sign(content.encode(), signer, namespace=namespace)
    oid = repo.create_commit_with_signature(content, armored, "gpgsig")
    return oid, content, armored


def _git(repo: Path, allowed: Path, *args: str, home: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [
            "git",
            "-C",
            str(repo),
            "-c",
            "gpg.format=ssh",
            "-c",
            f"gpg.ssh.allowedSignersFile={allowed}",
            *args,
        ],
        capture_output=True,
        text=True,
        env=_git_env(home),
        check=False,
    )


@needs_git
@needs_ssh_keygen
def test_git_verify_commit_accepts_our_signature(tmp_path: Path) -> None:
    repo_path = tmp_path / "repo.git"
    repo = pygit2.init_repository(str(repo_path), bare=True)
    allowed = _allowed_signers(tmp_path, SIGNER.public_key)
    oid, content, armored = _signed_commit(repo, SIGNER)

    verified = _git(repo_path, allowed, "verify-commit", str(oid), home=tmp_path)
    assert verified.returncode == 0, verified.stderr
    assert f'Good "git" signature for {PRINCIPAL} with ED25519 key' in verified.stderr
    assert SIGNER.public_key.fingerprint in verified.stderr

    log = _git(repo_path, allowed, "log", "--show-signature", "-1", str(oid), home=tmp_path)
    assert log.returncode == 0, log.stderr
    assert f'Good "git" signature for {PRINCIPAL}' in log.stdout

    status = _git(repo_path, allowed, "show", "-s", "--format=%G?", str(oid), home=tmp_path)
    assert status.stdout.strip() == "G"

    # What git stores and hands back: the payload is exactly the unsigned commit.
    commit = repo[oid]
    assert isinstance(commit, pygit2.Commit)
    signature, payload = commit.gpg_signature
    assert payload == content.encode()
    assert signature.decode() == armored
    sshsig.verify(signature.decode(), payload, SIGNER.public_key)
    raw = repo.odb.read(oid)[1]
    assert b"-----END SSH SIGNATURE-----\n\n" in raw  # no stray " " line in the header


@needs_git
@needs_ssh_keygen
def test_commit_is_byte_identical_to_git_commit_tree_s(tmp_path: Path) -> None:
    repo_path = tmp_path / "repo.git"
    repo = pygit2.init_repository(str(repo_path), bare=True)
    oid, _, _ = _signed_commit(repo, SIGNER)
    commit = repo[oid]
    assert isinstance(commit, pygit2.Commit)
    tree = str(commit.tree_id)
    key = _write_private_key(tmp_path / "id_ed25519", SIGNER)
    theirs = subprocess.run(
        [
            "git",
            "-C",
            str(repo_path),
            "-c",
            "gpg.format=ssh",
            "-c",
            f"user.signingKey={key}",
            "commit-tree",
            "-S",
            tree,
            "-m",
            "ledger entry 1",
        ],
        capture_output=True,
        text=True,
        env=_git_env(tmp_path),
        check=True,
    ).stdout.strip()
    assert theirs == str(oid)


@needs_git
@needs_ssh_keygen
@pytest.mark.parametrize("case", ["flipped byte", "other key", "other namespace"])
def test_git_rejects_bad_signatures(tmp_path: Path, case: str) -> None:
    repo_path = tmp_path / "repo.git"
    repo = pygit2.init_repository(str(repo_path), bare=True)
    allowed = _allowed_signers(tmp_path, SIGNER.public_key)
    if case == "flipped byte":
        good, _, _ = _signed_commit(repo, SIGNER)
        raw = repo.odb.read(good)[1]
        tampered = raw.replace(b"ledger entry 1", b"ledger entry 2")
        assert tampered != raw
        oid = repo.odb.write(pygit2.GIT_OBJECT_COMMIT, tampered)
        expect = "incorrect signature"
    elif case == "other key":
        oid, _, _ = _signed_commit(repo, OTHER)
        expect = "No principal matched"
    else:
        oid, _, _ = _signed_commit(repo, SIGNER, namespace="file")
        expect = "namespace does not match"

    verified = _git(repo_path, allowed, "verify-commit", str(oid), home=tmp_path)
    assert verified.returncode != 0
    assert expect in verified.stderr
    assert f'Good "git" signature for {PRINCIPAL}' not in verified.stderr
    log = _git(repo_path, allowed, "log", "--show-signature", "-1", str(oid), home=tmp_path)
    assert f'Good "git" signature for {PRINCIPAL}' not in log.stdout
    assert expect in log.stdout
