"""C2SP transparency log checkpoints v1.0.0 (https://c2sp.org/tlog-checkpoint).

Pure: no file, network or clock I/O. A checkpoint is a signed note
(:mod:`aegisflow.ledger.note`) whose text is::

    <origin>\\n
    <tree size, decimal, no leading zeros>\\n
    <base64 of the 32-byte RFC 6962 root hash>\\n
    [extension lines, each non-empty]

Key name convention: the log's key name **is** the checkpoint origin (the spec's SHOULD,
made a MUST here). :func:`sign_checkpoint` refuses any other key name and
:func:`open_checkpoint` only counts signatures whose key name equals the origin, so a key
trusted for one log can never vouch for a checkpoint that names another. Origins we sign
therefore also obey the key-name rules: no spaces and no ``+``.
"""

from __future__ import annotations

import base64
import binascii
import re
from collections.abc import Iterable
from dataclasses import dataclass

from aegisflow.errors import InputError, MalformedData, SignatureError
from aegisflow.keys import PublicKey, Signer
from aegisflow.ledger.note import key_id, parse_note, sign_note

#: Tree sizes are uint64, as in every checkpoint implementation.
MAX_TREE_SIZE = 2**64 - 1
ROOT_BYTES = 32

_SIZE = re.compile(r"0|[1-9][0-9]{0,19}", re.ASCII)


@dataclass(frozen=True, slots=True, kw_only=True)
class Checkpoint:
    """A log's tree head: origin, size and RFC 6962 root hash.

    Attributes:
        origin: The log identity, e.g. ``aegisflow.example/ledger/1``.
        size: The number of leaves.
        root: The 32-byte Merkle tree root at ``size``.

    Raises:
        InputError: If the origin is empty, contains a newline or a non-printable
            character, the size is negative or above 2**64-1, or the root is not 32 bytes.
    """

    origin: str
    size: int
    root: bytes

    def __post_init__(self) -> None:
        if not self.origin or not self.origin.isprintable():
            raise InputError(
                f"checkpoint origin {self.origin!r} must be non-empty and printable "
                "(no newline or control characters)"
            )
        if isinstance(self.size, bool) or not isinstance(self.size, int):
            raise InputError(f"checkpoint size must be an int, got {type(self.size).__name__}")
        if not 0 <= self.size <= MAX_TREE_SIZE:
            raise InputError(f"checkpoint size {self.size} is outside 0..2**64-1")
        if not isinstance(self.root, bytes) or len(self.root) != ROOT_BYTES:
            raise InputError(f"checkpoint root must be {ROOT_BYTES} bytes")

    def body(self) -> str:
        """Return the note text: ``origin\\nsize\\nbase64(root)\\n``."""
        root = base64.b64encode(self.root).decode("ascii")
        return f"{self.origin}\n{self.size}\n{root}\n"

    @classmethod
    def parse_body(cls, text: str) -> Checkpoint:
        """Parse a checkpoint note text strictly; extension lines are accepted and ignored.

        Raises:
            MalformedData: If there are fewer than three lines, the text does not end in a
                newline, the size is not canonical decimal (no sign, no leading zeros) up
                to 2**64-1, the root is not canonical base64 of exactly 32 bytes, an
                extension line is empty, or the origin is invalid.
        """
        if not text.endswith("\n"):
            raise MalformedData("checkpoint text must end with a newline")
        lines = text[:-1].split("\n")
        if len(lines) < 3:
            raise MalformedData(f"checkpoint text has {len(lines)} lines, needs at least 3")
        origin, size_text, root_text = lines[0], lines[1], lines[2]
        if not _SIZE.fullmatch(size_text) or int(size_text) > MAX_TREE_SIZE:
            raise MalformedData(f"checkpoint size {size_text[:24]!r} is not a canonical uint64")
        try:
            root = base64.b64decode(root_text, validate=True)
        except binascii.Error as e:
            raise MalformedData("checkpoint root hash is not valid base64") from e
        if len(root) != ROOT_BYTES or base64.b64encode(root).decode("ascii") != root_text:
            raise MalformedData(
                f"checkpoint root hash must be canonical base64 of {ROOT_BYTES} bytes"
            )
        if any(not line for line in lines[3:]):
            raise MalformedData("checkpoint extension lines must be non-empty")
        try:
            return cls(origin=origin, size=int(size_text), root=root)
        except InputError as e:
            raise MalformedData(e.message) from e


def sign_checkpoint(cp: Checkpoint, signer: Signer, *, key_name: str) -> str:
    """Return the signed note for ``cp`` (its body, a blank line, one signature line).

    Args:
        cp: The checkpoint.
        signer: The log's Ed25519 signer.
        key_name: The note key name; must equal ``cp.origin`` (stated explicitly so a
            misconfigured log name fails here rather than at every verifier).

    Raises:
        InputError: If ``key_name`` differs from the origin or is not a valid key name
            (no spaces, no ``+``).
    """
    if key_name != cp.origin:
        raise InputError(f"checkpoint key name {key_name!r} must equal the origin {cp.origin!r}")
    return sign_note(cp.body(), key_name, signer)


def open_checkpoint(
    note_text: str | bytes,
    trusted: Iterable[tuple[str, PublicKey] | PublicKey],
) -> Checkpoint:
    """Parse a signed checkpoint and return it only if a trusted key signed it.

    Steps, in order: parse the note (size and signature-count limits, syntax); parse the
    checkpoint body strictly; keep the trusted keys whose name equals the origin (a bare
    :class:`PublicKey` is taken to be named after the origin); for each, verify every
    signature line with that name and key id, rejecting the whole note if any fails;
    require at least one verified signature. Unknown signatures (e.g. witness
    cosignatures) are ignored.

    Args:
        note_text: The signed note.
        trusted: ``(key name, key)`` pairs, or bare keys named after the origin.

    Raises:
        MalformedData: If the note or its checkpoint body is malformed.
        SignatureError: If no trusted key for this origin signed it, or a signature by a
            trusted key fails to verify.
    """
    note = parse_note(note_text)
    cp = Checkpoint.parse_body(note.text)
    candidates = []
    for entry in trusted:
        name, key = (cp.origin, entry) if isinstance(entry, PublicKey) else entry
        if name == cp.origin:
            candidates.append(key)
    if not candidates:
        raise SignatureError(f"no trusted key for checkpoint origin {cp.origin!r}")
    try:
        candidate_ids = [(key, key_id(cp.origin, key)) for key in candidates]
    except InputError as e:
        raise SignatureError(f"checkpoint origin is not a valid key name: {e.message}") from e
    message = note.text.encode("utf-8")
    verified = False
    for key, kid in candidate_ids:
        for sig in note.signatures:
            if sig.name != cp.origin or sig.key_id != kid:
                continue
            if not key.verify(message, sig.signature):
                raise SignatureError(
                    f"checkpoint signature by trusted key {key.fingerprint} for "
                    f"{cp.origin!r} does not verify"
                )
            verified = True
    if not verified:
        raise SignatureError(f"checkpoint for {cp.origin!r} has no signature from a trusted key")
    return cp
