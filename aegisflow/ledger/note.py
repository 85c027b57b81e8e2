"""C2SP signed notes v1.0.0 (https://c2sp.org/signed-note), Ed25519 (type 0x01) only.

Pure: no file, network or clock I/O. Keys come from :mod:`aegisflow.keys`.

A signed note is a text ending in ``"\\n"``, a blank line, then one or more signature
lines ``"— <key name> <base64(4-byte key id || signature)>\\n"`` (U+2014, em dash). The
signature covers the UTF-8 text including its final newline, not the blank line. The text
may contain blank lines: it ends at the *last* blank line of the note. The whole note is
valid UTF-8 without ASCII control characters other than newline.

Key names are non-empty and contain no Unicode spaces and no ``+``. The Ed25519 key id is
``SHA-256(name || 0x0A || 0x01 || 32-byte public key)[:4]``; a verifier key ("vkey") is
``<name>+<8 hex key id>+<base64(0x01 || public key)>``.

Errors: data received from elsewhere (:func:`parse_note`) raises
:class:`~aegisflow.errors.MalformedData`; arguments a caller builds (text to sign, key
names) raise :class:`~aegisflow.errors.InputError`; vkeys are trust configuration and
raise :class:`~aegisflow.errors.KeyMaterialError`.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import re
from dataclasses import dataclass

from aegisflow.errors import InputError, KeyMaterialError, MalformedData
from aegisflow.keys import PublicKey, Signer

SIG_TYPE_ED25519 = 0x01
EM_DASH = "\u2014"
SIG_PREFIX = EM_DASH + " "
#: Refuse larger notes before parsing them (a checkpoint note is a few hundred bytes).
MAX_NOTE_BYTES = 1 << 20
#: The spec requires accepting at least 16; golang.org/x/mod/sumdb/note stops at 100.
MAX_SIGNATURES = 100

_CONTROL = re.compile("[\x00-\x09\x0b-\x1f\x7f-\x9f]")
_HEX8 = re.compile("[0-9a-fA-F]{8}")


@dataclass(frozen=True, slots=True, kw_only=True)
class NoteSignature:
    """One signature line of a note (not yet verified).

    Attributes:
        name: The key name.
        key_id: The 4-byte key id.
        signature: The signature bytes (64 for Ed25519; other types may differ).
    """

    name: str
    key_id: bytes
    signature: bytes

    def __post_init__(self) -> None:
        problem = _name_problem(self.name)
        if problem:
            raise MalformedData(f"note signature {problem}")
        if len(self.key_id) != 4:
            raise MalformedData(f"note key id is {len(self.key_id)} bytes, expected 4")
        if not self.signature:
            raise MalformedData("note signature is empty")

    def line(self) -> str:
        """Return the signature line, ``"— <name> <base64>\\n"``."""
        b64 = base64.b64encode(self.key_id + self.signature).decode("ascii")
        return f"{SIG_PREFIX}{self.name} {b64}\n"


@dataclass(frozen=True, slots=True, kw_only=True)
class Note:
    """A signed note: the text and its signature lines (verify before trusting the text).

    Attributes:
        text: The signed text, including its final newline.
        signatures: The signature lines, in order, at least one.
    """

    text: str
    signatures: tuple[NoteSignature, ...]

    def __post_init__(self) -> None:
        problem = _text_problem(self.text)
        if problem:
            raise MalformedData(problem)
        if not self.signatures:
            raise MalformedData("a signed note needs at least one signature")

    def serialize(self) -> str:
        """Return the note as text: the text, a blank line, the signature lines."""
        return self.text + "\n" + "".join(s.line() for s in self.signatures)


def key_id(name: str, key: PublicKey) -> bytes:
    """Return the 4-byte Ed25519 key id, ``SHA-256(name || 0x0A || 0x01 || key)[:4]``.

    Raises:
        InputError: If ``name`` is not a valid key name.
    """
    _check_name(name)
    return _key_id(name, key)


def verifier_key(name: str, key: PublicKey) -> str:
    """Return the verifier key ``<name>+<8 hex>+<base64(0x01 || key)>``.

    Raises:
        InputError: If ``name`` is not a valid key name.
    """
    kid = key_id(name, key)
    b64 = base64.b64encode(bytes([SIG_TYPE_ED25519]) + key.raw).decode("ascii")
    return f"{name}+{kid.hex()}+{b64}"


def parse_verifier_key(vkey: str) -> tuple[str, PublicKey]:
    """Parse a verifier key and check that its key id matches its name and key.

    Raises:
        KeyMaterialError: If the vkey is malformed, is not an Ed25519 (0x01) key, or its
            key id does not match.
    """
    # The name cannot contain "+" and the hex id cannot either; base64 can.
    name, sep1, rest = vkey.strip().partition("+")
    hex_id, sep2, b64 = rest.partition("+")
    if not sep1 or not sep2 or _name_problem(name) or not _HEX8.fullmatch(hex_id):
        raise KeyMaterialError(f"not a verifier key (<name>+<8 hex>+<base64>): {vkey[:80]!r}")
    try:
        blob = base64.b64decode(b64, validate=True)
    except binascii.Error as e:
        raise KeyMaterialError(f"verifier key {name!r}: key is not valid base64") from e
    if len(blob) != 33 or blob[0] != SIG_TYPE_ED25519:
        raise KeyMaterialError(f"verifier key {name!r} is not an Ed25519 (type 0x01) key")
    key = PublicKey(blob[1:])
    if _key_id(name, key).hex() != hex_id.lower():
        raise KeyMaterialError(
            f"verifier key {name!r}: key id {hex_id} does not match the name and key"
        )
    return name, key


def sign_note(text: str, name: str, signer: Signer) -> str:
    """Sign ``text`` as key ``name`` and return the signed note.

    Args:
        text: Non-empty text ending in ``"\\n"``, without control characters other than
            newline (blank lines inside are allowed by the spec).
        name: The key name (no spaces, no ``+``).
        signer: The Ed25519 signer.

    Returns:
        ``text + "\\n" + "— <name> <base64>\\n"``.

    Raises:
        InputError: If ``text`` or ``name`` break the spec's rules.
    """
    problem = _text_problem(text)
    if problem:
        raise InputError(problem)
    kid = key_id(name, signer.public_key)
    sig = signer.sign(text.encode("utf-8"))
    return Note(
        text=text, signatures=(NoteSignature(name=name, key_id=kid, signature=sig),)
    ).serialize()


def parse_note(
    data: str | bytes,
    *,
    max_bytes: int = MAX_NOTE_BYTES,
    max_signatures: int = MAX_SIGNATURES,
) -> Note:
    """Parse a signed note without verifying any signature.

    Args:
        data: The note, as text or as UTF-8 bytes.
        max_bytes: Refuse notes larger than this many UTF-8 bytes.
        max_signatures: Refuse notes with more signature lines than this.

    Raises:
        MalformedData: If the note is too large, not UTF-8, contains control characters,
            has no blank line before the signatures, or has a malformed signature line.
    """
    if isinstance(data, bytes):
        if len(data) > max_bytes:
            raise MalformedData(f"note is {len(data)} bytes, more than {max_bytes}")
        try:
            text = data.decode("utf-8")
        except UnicodeDecodeError as e:
            raise MalformedData("note is not valid UTF-8") from e
    else:
        if len(data) > max_bytes:  # characters <= bytes: a cheap early refusal
            raise MalformedData(f"note is more than {max_bytes} bytes")
        text = data
        try:
            size = len(text.encode("utf-8"))
        except UnicodeEncodeError as e:
            raise MalformedData("note is not valid UTF-8 (lone surrogate)") from e
        if size > max_bytes:
            raise MalformedData(f"note is {size} bytes, more than {max_bytes}")
    bad = _CONTROL.search(text)
    if bad:
        raise MalformedData(
            f"note contains control character {bad.group()!r} at offset {bad.start()}"
        )
    split = text.rfind("\n\n")
    if split < 0:
        raise MalformedData("note has no blank line before its signatures")
    body, sig_block = text[: split + 1], text[split + 2 :]
    if not sig_block or not sig_block.endswith("\n"):
        raise MalformedData("note signature block is empty or lacks its final newline")
    lines = sig_block[:-1].split("\n")
    if len(lines) > max_signatures:
        raise MalformedData(f"note has {len(lines)} signatures, more than {max_signatures}")
    return Note(text=body, signatures=tuple(_parse_sig_line(line) for line in lines))


def verify_note(note: Note, name: str, key: PublicKey) -> bool:
    """Return whether ``note`` carries a valid signature by key ``(name, key)``.

    Only lines with this name *and* key id count (others are ignored, as the spec
    requires). True if there is at least one such line and every such line verifies:
    a failing signature from a known key rejects the note (the spec's SHOULD).

    Raises:
        InputError: If ``name`` is not a valid key name.
    """
    kid = key_id(name, key)
    message: bytes | None = None
    found = False
    for sig in note.signatures:
        if sig.name != name or sig.key_id != kid:
            continue
        if message is None:
            message = note.text.encode("utf-8")
        if not key.verify(message, sig.signature):
            return False
        found = True
    return found


# -- internals ---------------------------------------------------------------------------


def _key_id(name: str, key: PublicKey) -> bytes:
    return hashlib.sha256(
        name.encode("utf-8") + b"\n" + bytes([SIG_TYPE_ED25519]) + key.raw
    ).digest()[:4]


def _name_problem(name: str) -> str | None:
    if not name:
        return "key name is empty"
    if "+" in name or any(c.isspace() or not c.isprintable() for c in name):
        return f"key name {name!r} contains a space, '+' or a control character"
    return None


def _check_name(name: str) -> None:
    problem = _name_problem(name)
    if problem:
        raise InputError(problem)


def _text_problem(text: str) -> str | None:
    if not text.endswith("\n"):
        return "note text must be non-empty and end with a newline"
    bad = _CONTROL.search(text)
    if bad:
        return f"note text contains control character {bad.group()!r} at offset {bad.start()}"
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return "note text is not valid UTF-8 (lone surrogate)"
    return None


def _parse_sig_line(line: str) -> NoteSignature:
    if not line.startswith(SIG_PREFIX):
        raise MalformedData(f"note signature line does not start with '— ': {line[:80]!r}")
    name, sep, b64 = line[len(SIG_PREFIX) :].partition(" ")
    if not sep:
        raise MalformedData(f"note signature line has no signature: {line[:80]!r}")
    try:
        raw = base64.b64decode(b64, validate=True)
    except binascii.Error as e:
        raise MalformedData(f"note signature by {name!r} is not valid base64") from e
    if len(raw) < 5 or base64.b64encode(raw).decode("ascii") != b64:
        raise MalformedData(f"note signature by {name!r} is too short or not canonical base64")
    return NoteSignature(name=name, key_id=raw[:4], signature=raw[4:])
