"""Ed25519 keys, signers and their file formats. The only module that imports PyNaCl.

Pure except for :func:`load_signer`, :func:`save_signer` and :func:`load_public_keys`,
which read and write key files. Private key bytes live only inside :class:`Signer`
(never in its ``repr``, never in config objects or logs).

Key files:

* private: OpenSSH private key format (``-----BEGIN OPENSSH PRIVATE KEY-----``),
  unencrypted, mode 0600, so ``ssh-keygen -Y sign`` and git can use it too;
* public: one OpenSSH line ``ssh-ed25519 <base64> <comment>``;
* trusted keys given to verifiers: OpenSSH public key lines, ``allowed_signers`` lines
  (``<principal> namespaces="git" ssh-ed25519 <base64>``) or C2SP verifier keys
  (``<name>+<hex key id>+<base64(0x01 || key)>``).
"""

from __future__ import annotations

import base64
import binascii
import functools
import hashlib
import os
import stat
import struct
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

import nacl.exceptions
import nacl.signing

from aegisflow.errors import KeyMaterialError

ED25519_ALG = b"ssh-ed25519"
_OPENSSH_MAGIC = b"openssh-key-v1\x00"


@dataclass(frozen=True, slots=True)
class PublicKey:
    """An Ed25519 public key."""

    raw: bytes

    def __post_init__(self) -> None:
        if len(self.raw) != 32:
            raise KeyMaterialError(f"an Ed25519 public key is 32 bytes, got {len(self.raw)}")

    @property
    def key_id(self) -> str:
        """SHA-256 of the OpenSSH wire encoding, hex: derived, never chosen."""
        return hashlib.sha256(self.ssh_wire()).hexdigest()

    @property
    def fingerprint(self) -> str:
        """The ``SHA256:...`` fingerprint ``ssh-keygen -l`` prints."""
        digest = hashlib.sha256(self.ssh_wire()).digest()
        return "SHA256:" + base64.b64encode(digest).decode().rstrip("=")

    def verify(self, message: bytes, signature: bytes) -> bool:
        """Return whether ``signature`` is a valid Ed25519 signature of ``message``."""
        if len(signature) != 64:
            return False
        try:
            _verify_key(self.raw).verify(message, signature)
        except nacl.exceptions.BadSignatureError:
            return False
        return True

    def ssh_wire(self) -> bytes:
        """The SSH wire encoding: string "ssh-ed25519", string key."""
        return ssh_string(ED25519_ALG) + ssh_string(self.raw)

    def openssh(self, comment: str = "") -> str:
        """The ``ssh-ed25519 AAAA... comment`` line (without newline)."""
        line = "ssh-ed25519 " + base64.b64encode(self.ssh_wire()).decode()
        return f"{line} {comment}" if comment else line

    @classmethod
    def from_openssh(cls, text: str) -> PublicKey:
        """Parse ``ssh-ed25519 <base64> [comment]``.

        Raises:
            KeyMaterialError: If the line is not an Ed25519 OpenSSH public key.
        """
        parts = text.strip().split()
        if len(parts) < 2 or parts[0] != "ssh-ed25519":
            raise KeyMaterialError("not an OpenSSH ssh-ed25519 public key line")
        try:
            wire = base64.b64decode(parts[1], validate=True)
        except binascii.Error as e:
            raise KeyMaterialError("OpenSSH public key is not valid base64") from e
        alg, rest = read_ssh_string(wire)
        key, rest = read_ssh_string(rest)
        if alg != ED25519_ALG or rest:
            raise KeyMaterialError("OpenSSH public key blob is not ssh-ed25519")
        return cls(key)


@functools.lru_cache(maxsize=64)
def _verify_key(raw: bytes) -> nacl.signing.VerifyKey:
    return nacl.signing.VerifyKey(raw)


class Signer:
    """Holds an Ed25519 private key and signs with it. The seed never leaves this object."""

    __slots__ = ("_key", "public_key")

    def __init__(self, seed: bytes) -> None:
        if len(seed) != 32:
            raise KeyMaterialError("an Ed25519 private key seed is 32 bytes")
        self._key = nacl.signing.SigningKey(seed)
        self.public_key = PublicKey(bytes(self._key.verify_key))

    @classmethod
    def generate(cls) -> Signer:
        return cls(bytes(nacl.signing.SigningKey.generate()))

    def sign(self, message: bytes) -> bytes:
        """Return the 64-byte Ed25519 signature of ``message``."""
        return bytes(self._key.sign(message).signature)

    def __repr__(self) -> str:
        return f"Signer(public_key={self.public_key.fingerprint})"

    # The OpenSSH private key container, unencrypted ("none" cipher and kdf).
    def openssh_private(self, comment: str = "") -> bytes:
        """Serialize as an unencrypted OpenSSH private key file (PEM armored)."""
        pub_wire = self.public_key.ssh_wire()
        check = os.urandom(4)
        private = (
            check
            + check
            + ssh_string(ED25519_ALG)
            + ssh_string(self.public_key.raw)
            + ssh_string(bytes(self._key) + self.public_key.raw)
            + ssh_string(comment.encode())
        )
        pad = 1
        while len(private) % 8:
            private += bytes([pad])
            pad += 1
        blob = (
            _OPENSSH_MAGIC
            + ssh_string(b"none")
            + ssh_string(b"none")
            + ssh_string(b"")
            + struct.pack(">I", 1)
            + ssh_string(pub_wire)
            + ssh_string(private)
        )
        body = base64.b64encode(blob).decode()
        lines = [body[i : i + 70] for i in range(0, len(body), 70)]
        armored = "\n".join(
            ["-----BEGIN OPENSSH PRIVATE KEY-----", *lines, "-----END OPENSSH PRIVATE KEY-----"]
        )
        return (armored + "\n").encode()

    @classmethod
    def from_openssh_private(cls, data: bytes) -> Signer:
        """Parse an unencrypted OpenSSH Ed25519 private key file.

        Raises:
            KeyMaterialError: If the file is encrypted, not Ed25519, or malformed.
        """
        text = data.decode("ascii", errors="replace").strip().splitlines()
        if (
            len(text) < 3
            or text[0] != "-----BEGIN OPENSSH PRIVATE KEY-----"
            or text[-1] != "-----END OPENSSH PRIVATE KEY-----"
        ):
            raise KeyMaterialError("not an OpenSSH private key file")
        try:
            blob = base64.b64decode("".join(text[1:-1]), validate=True)
        except binascii.Error as e:
            raise KeyMaterialError("OpenSSH private key is not valid base64") from e
        if not blob.startswith(_OPENSSH_MAGIC):
            raise KeyMaterialError("OpenSSH private key has a bad magic header")
        rest = blob[len(_OPENSSH_MAGIC) :]
        cipher, rest = read_ssh_string(rest)
        kdf, rest = read_ssh_string(rest)
        _kdf_options, rest = read_ssh_string(rest)
        if cipher != b"none" or kdf != b"none":
            raise KeyMaterialError(
                "encrypted private keys are not supported",
                hint="store the ledger key unencrypted with mode 0600 (or in a secret store)",
            )
        if len(rest) < 4 or struct.unpack(">I", rest[:4])[0] != 1:
            raise KeyMaterialError("OpenSSH private key file must hold exactly one key")
        _pub, rest = read_ssh_string(rest[4:])
        private, _ = read_ssh_string(rest)
        if len(private) < 8 or private[:4] != private[4:8]:
            raise KeyMaterialError("OpenSSH private key check bytes differ (corrupt file)")
        alg, private = read_ssh_string(private[8:])
        if alg != ED25519_ALG:
            raise KeyMaterialError(
                f"private key type {alg.decode(errors='replace')} is not ssh-ed25519"
            )
        pub, private = read_ssh_string(private)
        secret, _ = read_ssh_string(private)
        if len(secret) != 64 or secret[32:] != pub:
            raise KeyMaterialError("OpenSSH private key is inconsistent with its public half")
        return cls(secret[:32])


def ssh_string(data: bytes) -> bytes:
    """SSH wire ``string``: uint32 big-endian length, then the bytes."""
    return struct.pack(">I", len(data)) + data


def read_ssh_string(data: bytes) -> tuple[bytes, bytes]:
    """Split one SSH wire ``string`` off ``data``.

    Raises:
        KeyMaterialError: If ``data`` is too short.
    """
    if len(data) < 4:
        raise KeyMaterialError("truncated SSH wire data")
    (n,) = struct.unpack(">I", data[:4])
    if len(data) < 4 + n:
        raise KeyMaterialError("truncated SSH wire data")
    return data[4 : 4 + n], data[4 + n :]


# -- files --------------------------------------------------------------------------


def save_signer(signer: Signer, path: Path, *, comment: str) -> None:
    """Write ``signer`` to ``path`` (mode 0600) and its public key to ``path.pub``.

    Raises:
        KeyMaterialError: If ``path`` already exists.
    """
    if path.exists():
        raise KeyMaterialError(f"{path} already exists; refusing to overwrite a key")
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "wb") as f:
        f.write(signer.openssh_private(comment))
        f.flush()
        os.fsync(f.fileno())
    public_path(path).write_text(signer.public_key.openssh(comment) + "\n")


def public_path(path: Path) -> Path:
    return path.with_name(path.name + ".pub")


def load_signer(path: Path) -> Signer:
    """Read a private key file, refusing files readable by group or others.

    Raises:
        KeyMaterialError: If the file is missing, unsafe or malformed.
    """
    try:
        mode = path.stat().st_mode
        data = path.read_bytes()
    except FileNotFoundError as e:
        raise KeyMaterialError(
            f"signing key {path} does not exist", hint="create one with: aegisctl keys init"
        ) from e
    except OSError as e:
        raise KeyMaterialError(f"cannot read signing key {path}: {e.strerror}") from e
    if mode & (stat.S_IRWXG | stat.S_IRWXO):
        raise KeyMaterialError(
            f"signing key {path} is accessible by group or others (mode {stat.S_IMODE(mode):o})",
            hint=f"chmod 600 {path}",
        )
    return Signer.from_openssh_private(data)


def parse_public_keys(text: str) -> list[PublicKey]:
    """Parse trusted keys: OpenSSH lines, allowed_signers lines or C2SP vkeys.

    Blank lines and ``#`` comments are skipped.

    Raises:
        KeyMaterialError: If a line is none of the accepted forms, or nothing was found.
    """
    keys: list[PublicKey] = []
    for lineno, raw in enumerate(text.splitlines(), 1):
        line = raw.strip()
        if line and not line.startswith("#"):
            keys.append(_parse_key_line(line, lineno))
    if not keys:
        raise KeyMaterialError("no public key found")
    return keys


def _parse_key_line(line: str, lineno: int) -> PublicKey:
    fields = line.split()
    if "ssh-ed25519" in fields:
        at = fields.index("ssh-ed25519")
        try:
            return PublicKey.from_openssh(" ".join(fields[at:]))
        except KeyMaterialError as e:
            raise KeyMaterialError(f"line {lineno}: {e.message}") from e
    if len(fields) == 1 and fields[0].count("+") >= 2:
        # C2SP vkey: <name>+<hex key id>+<base64(0x01 || key)>; names contain no "+".
        name, key_hash, rest = fields[0].split("+", 2)
        try:
            blob = base64.b64decode(rest, validate=True)
        except binascii.Error as e:
            raise KeyMaterialError(f"line {lineno}: verifier key is not valid base64") from e
        if len(blob) != 33 or blob[0] != 0x01:
            raise KeyMaterialError(f"line {lineno}: verifier key is not an Ed25519 (0x01) key")
        expected = hashlib.sha256(name.encode() + b"\n" + blob).digest()[:4].hex()
        if key_hash != expected:
            raise KeyMaterialError(f"line {lineno}: verifier key id does not match its key")
        return PublicKey(blob[1:])
    raise KeyMaterialError(
        f"line {lineno}: not an ssh-ed25519 key, allowed_signers line or C2SP verifier key"
    )


def load_public_keys(paths: Iterable[Path]) -> list[PublicKey]:
    """Read trusted public keys from files (see :func:`parse_public_keys`).

    Raises:
        KeyMaterialError: If a file is missing or holds no usable key.
    """
    keys: list[PublicKey] = []
    for path in paths:
        try:
            text = path.read_text(encoding="utf-8")
        except FileNotFoundError as e:
            raise KeyMaterialError(f"trusted key file {path} does not exist") from e
        except (OSError, UnicodeDecodeError) as e:
            raise KeyMaterialError(f"cannot read trusted key file {path}: {e}") from e
        try:
            keys.extend(parse_public_keys(text))
        except KeyMaterialError as e:
            raise KeyMaterialError(f"{path}: {e.message}") from e
    return keys
