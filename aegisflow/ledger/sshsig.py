"""OpenSSH ``PROTOCOL.sshsig`` signatures, Ed25519 only: the format of git's ``gpg.format=ssh``.

Pure: no file, network or clock I/O. Signing and verifying happen in process (through
:mod:`aegisflow.keys`); callers that want ``ssh-keygen`` or ``git`` in the loop do that
themselves.

The signature blob (PROTOCOL.sshsig)::

    byte[6]  "SSHSIG"
    uint32   1                      (version)
    string   public key             (string "ssh-ed25519", string 32-byte key)
    string   namespace              ("git" for commits and tags)
    string   reserved               (empty)
    string   hash algorithm         ("sha512" here; "sha256" is also accepted)
    string   signature              (string "ssh-ed25519", string 64-byte signature)

and Ed25519 signs ``"SSHSIG" || string namespace || string reserved || string hash_alg
|| string H(message)``, so the message itself is hashed once and never copied.

Armor: ``-----BEGIN SSH SIGNATURE-----``, the base64 of the blob wrapped at 70 columns,
``-----END SSH SIGNATURE-----``. :func:`sign` returns it **without** a trailing newline,
which is what ``pygit2.Repository.create_commit_with_signature`` needs: libgit2 appends
the header's final newline itself, so a trailing newline in the signature would leave a
stray continuation line holding a single space in the ``gpgsig`` header (git still
verifies it, but the commit is no longer byte-identical to ``git commit -S``).
``ssh-keygen -Y sign`` writes the same text followed by ``"\\n"``, and git hands signatures
back with that newline; :func:`parse` and :func:`verify` accept either form.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import struct
from collections.abc import Callable
from dataclasses import dataclass
from functools import lru_cache
from typing import Protocol

from aegisflow.errors import InputError, MalformedData, SignatureError
from aegisflow.keys import ED25519_ALG, PublicKey, Signer, ssh_string

MAGIC = b"SSHSIG"
VERSION = 1
BEGIN = "-----BEGIN SSH SIGNATURE-----"
END = "-----END SSH SIGNATURE-----"
DEFAULT_NAMESPACE = "git"
DEFAULT_HASH = "sha512"
#: Column at which ``ssh-keygen`` wraps the base64 body.
WRAP = 70
#: An Ed25519 SSHSIG is about 300 characters; anything far larger is refused unread.
MAX_ARMORED_CHARS = 8192


class _Digest(Protocol):
    def digest(self) -> bytes: ...


_HASHES: dict[str, Callable[[bytes], _Digest]] = {
    "sha512": hashlib.sha512,
    "sha256": hashlib.sha256,
}
_VERSION_BYTES = struct.pack(">I", VERSION)
_UINT32 = struct.Struct(">I")


@dataclass(frozen=True, slots=True, kw_only=True)
class SshSignature:
    """A parsed SSHSIG blob (not yet verified).

    Attributes:
        public_key: The key the blob claims made the signature.
        namespace: The signing namespace (``"git"`` for commits).
        hash_alg: The name of the hash applied to the message (``"sha512"``).
        signature: The raw 64-byte Ed25519 signature.
        reserved: The reserved field; empty in every known producer, but signed over.
    """

    public_key: PublicKey
    namespace: str
    hash_alg: str
    signature: bytes
    reserved: bytes = b""

    def __post_init__(self) -> None:
        if len(self.signature) != 64:
            raise MalformedData(
                f"SSHSIG Ed25519 signature is {len(self.signature)} bytes, expected 64"
            )
        if not self.namespace:
            raise MalformedData("SSHSIG namespace is empty")

    def signed_data(self, message: bytes) -> bytes:
        """Return the bytes the Ed25519 signature covers for ``message``.

        Raises:
            SignatureError: If ``hash_alg`` is not ``sha512`` or ``sha256``.
        """
        hash_fn = _HASHES.get(self.hash_alg)
        if hash_fn is None:
            raise SignatureError(
                f"SSHSIG hash algorithm {self.hash_alg!r} is not supported "
                "(expected sha512 or sha256)"
            )
        prefix = _signed_prefix(self.namespace, self.reserved, self.hash_alg)
        return prefix + ssh_string(hash_fn(message).digest())


def sign(message: bytes, signer: Signer, *, namespace: str = DEFAULT_NAMESPACE) -> str:
    """Sign ``message`` the way ``ssh-keygen -Y sign -n <namespace>`` does.

    Ed25519 is deterministic, so the result is byte-identical to ssh-keygen's output
    for the same key, namespace and message (minus ssh-keygen's final newline).

    Args:
        message: The exact bytes to sign (for a git commit: the commit object without
            its ``gpgsig`` header, e.g. ``Repository.create_commit_string(...)``).
        signer: The Ed25519 signer.
        namespace: The SSHSIG namespace; git uses ``"git"``.

    Returns:
        The armored signature, lines joined by ``"\\n"``, no trailing newline.

    Raises:
        InputError: If ``namespace`` is empty or contains control characters.
    """
    _check_namespace(namespace)
    prefix = _signed_prefix(namespace, b"", DEFAULT_HASH)
    sig = signer.sign(prefix + ssh_string(hashlib.sha512(message).digest()))
    blob = (
        _blob_prefix(signer.public_key, namespace)
        + ssh_string(DEFAULT_HASH.encode())
        + ssh_string(ssh_string(ED25519_ALG) + ssh_string(sig))
    )
    return _armor(blob)


def verify(
    armored: str, message: bytes, key: PublicKey, *, namespace: str = DEFAULT_NAMESPACE
) -> None:
    """Verify an armored SSHSIG over ``message`` against one trusted key.

    Steps, in order: dearmor and parse the blob (magic, version, fields, no trailing
    bytes); require the expected namespace; require the blob's key to be ``key``;
    require a supported hash; verify the Ed25519 signature over the SSHSIG signed data.

    Args:
        armored: The armored signature, with or without a trailing newline.
        message: The exact bytes that were signed.
        key: The trusted public key.
        namespace: The namespace the signature must carry.

    Raises:
        MalformedData: If ``armored`` is not an armored, well-formed SSHSIG blob.
        SignatureError: If the namespace, key, hash or key type is not the expected
            one, or the signature does not verify.
    """
    sig = parse(armored)
    if sig.namespace != namespace:
        raise SignatureError(f"SSHSIG namespace is {sig.namespace!r}, expected {namespace!r}")
    if sig.public_key.raw != key.raw:
        raise SignatureError(
            f"SSHSIG was made by key {sig.public_key.fingerprint}, expected {key.fingerprint}"
        )
    if not key.verify(sig.signed_data(message), sig.signature):
        raise SignatureError(
            f"SSHSIG by {key.fingerprint} does not verify: the message or the signature was altered"
        )


def canonical_armor(armored: str) -> str:
    """The armor :func:`sign` would write for the blob inside ``armored``.

    Armor is malleable (whitespace, base64 padding bits); verifiers that pin commit bytes
    compare the stored armor with this to refuse any variant.

    Raises:
        MalformedData: If ``armored`` is not an armored SSHSIG blob.
    """
    return _armor(_dearmor(armored))


def parse(armored: str) -> SshSignature:
    """Parse an armored SSHSIG without verifying it.

    Raises:
        MalformedData: If the armor, base64, magic, version or field layout is wrong,
            or bytes follow the last field.
        SignatureError: If the key or signature algorithm is not ``ssh-ed25519``.
    """
    blob = _dearmor(armored)
    if blob[:6] != MAGIC:
        raise MalformedData("SSHSIG blob does not start with the SSHSIG magic")
    if blob[6:10] != _VERSION_BYTES:
        if len(blob) < 10:
            raise MalformedData("SSHSIG blob is truncated")
        (version,) = _UINT32.unpack_from(blob, 6)
        raise MalformedData(f"SSHSIG version {version} is not supported (expected 1)")
    pub_wire, off = _read(blob, 10, "public key")
    ns_raw, off = _read(blob, off, "namespace")
    reserved, off = _read(blob, off, "reserved")
    hash_raw, off = _read(blob, off, "hash algorithm")
    sig_wire, off = _read(blob, off, "signature")
    if off != len(blob):
        raise MalformedData(f"SSHSIG blob has {len(blob) - off} trailing bytes")

    key_alg, k = _read(pub_wire, 0, "public key type")
    key_raw, k = _read(pub_wire, k, "public key")
    if key_alg != ED25519_ALG:
        raise SignatureError(
            f"SSHSIG key type {key_alg.decode('ascii', 'replace')!r} is not supported "
            "(only ssh-ed25519)"
        )
    if k != len(pub_wire) or len(key_raw) != 32:
        raise MalformedData("SSHSIG ssh-ed25519 public key is malformed")
    sig_alg, s = _read(sig_wire, 0, "signature type")
    sig_raw, s = _read(sig_wire, s, "signature")
    if sig_alg != ED25519_ALG:
        raise SignatureError(
            f"SSHSIG signature type {sig_alg.decode('ascii', 'replace')!r} is not supported "
            "(only ssh-ed25519)"
        )
    if s != len(sig_wire):
        raise MalformedData("SSHSIG signature field has trailing bytes")
    try:
        namespace = ns_raw.decode("utf-8")
        hash_alg = hash_raw.decode("ascii")
    except UnicodeDecodeError as e:
        raise MalformedData("SSHSIG namespace or hash algorithm is not text") from e
    return SshSignature(
        public_key=PublicKey(key_raw),
        namespace=namespace,
        hash_alg=hash_alg,
        signature=sig_raw,
        reserved=reserved,
    )


def allowed_signers_line(
    principal: str, key: PublicKey, *, namespace: str = DEFAULT_NAMESPACE
) -> str:
    """Return the ``allowed_signers`` line trusting ``key`` for ``principal``.

    The form is ``<principal> namespaces="git" ssh-ed25519 <base64>`` (no newline),
    as read by ``ssh-keygen -Y verify`` and git's ``gpg.ssh.allowedSignersFile``.

    Raises:
        InputError: If ``principal`` is empty or contains whitespace, quotes, commas or
            control characters, or ``namespace`` is invalid.
    """
    if (
        not principal
        or not principal.isprintable()
        or any(c.isspace() or c in "\",'#" for c in principal)
    ):
        raise InputError(
            f"allowed_signers principal {principal!r} must be non-empty and contain no "
            "whitespace, quotes, commas, '#' or control characters"
        )
    _check_namespace(namespace)
    if '"' in namespace or "," in namespace:
        raise InputError(f"namespace {namespace!r} cannot be quoted in allowed_signers")
    return f'{principal} namespaces="{namespace}" {key.openssh()}'


# -- internals ---------------------------------------------------------------------------


def _check_namespace(namespace: str) -> None:
    if not namespace or not namespace.isprintable():
        raise InputError(f"SSHSIG namespace {namespace!r} must be non-empty and printable")


@lru_cache(maxsize=64)
def _signed_prefix(namespace: str, reserved: bytes, hash_alg: str) -> bytes:
    # Everything the signature covers except H(message): constant per namespace.
    return (
        MAGIC
        + ssh_string(namespace.encode("utf-8"))
        + ssh_string(reserved)
        + ssh_string(hash_alg.encode("ascii"))
    )


@lru_cache(maxsize=64)
def _blob_prefix(key: PublicKey, namespace: str) -> bytes:
    # The blob up to the hash algorithm field: constant per signer and namespace.
    return (
        MAGIC
        + _VERSION_BYTES
        + ssh_string(key.ssh_wire())
        + ssh_string(namespace.encode("utf-8"))
        + ssh_string(b"")
    )


def _armor(blob: bytes) -> str:
    body = base64.b64encode(blob).decode("ascii")
    lines = [body[i : i + WRAP] for i in range(0, len(body), WRAP)]
    return "\n".join([BEGIN, *lines, END])


def _dearmor(armored: str) -> bytes:
    if len(armored) > MAX_ARMORED_CHARS:
        raise MalformedData(
            f"armored SSH signature is {len(armored)} characters, more than {MAX_ARMORED_CHARS}"
        )
    text = armored.strip()
    if not text.startswith(BEGIN):
        raise MalformedData(f"not an armored SSH signature: missing {BEGIN}")
    if not text.endswith(END) or len(text) < len(BEGIN) + len(END):
        raise MalformedData(f"armored SSH signature is truncated: missing {END}")
    body = "".join(text[len(BEGIN) : -len(END)].split())
    try:
        return binascii.a2b_base64(body, strict_mode=True)
    except (binascii.Error, ValueError) as e:
        raise MalformedData(f"armored SSH signature is not valid base64: {e}") from e


def _read(buf: bytes, off: int, what: str) -> tuple[bytes, int]:
    # SSH wire "string" at ``off``; returns it and the offset after it.
    end = off + 4
    if end > len(buf):
        raise MalformedData(f"SSHSIG blob is truncated in the {what} field")
    (n,) = _UINT32.unpack_from(buf, off)
    if end + n > len(buf):
        raise MalformedData(f"SSHSIG blob is truncated in the {what} field")
    return buf[end : end + n], end + n
