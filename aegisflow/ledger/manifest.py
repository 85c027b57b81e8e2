"""Session manifests: signed statements that close (a prefix of) a session.

Pure. A manifest covers the session's entries ``first_seq..last_seq`` (AegisFlow writes
cumulative manifests, so ``first_seq`` is 0) and binds them with the RFC 6962 root of
their entry hashes, their global index range, and the checkpoint that covers them. The
signature is Ed25519 by the ledger key over ``MANIFEST_DOMAIN || RFC 8785(fields)``,
where ``fields`` is the manifest body without ``signature``. The manifest is stored as an
ordinary entry of type ``manifest``; its entry hash is the ``session_manifest_hash``.
"""

from __future__ import annotations

import base64
import binascii
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from aegisflow.canonical import canonical_bytes
from aegisflow.errors import InputError, InvalidEntry, MalformedData
from aegisflow.keys import PublicKey, Signer
from aegisflow.ledger.entry import validate_origin, validate_session_id

MANIFEST_DOMAIN = b"aegisflow/session-manifest/v1\n"
_HEX64_RE = re.compile(r"[0-9a-f]{64}")
_FIELDS = frozenset(
    {
        "ledger",
        "session",
        "first_index",
        "last_index",
        "first_seq",
        "last_seq",
        "count",
        "session_root",
        "checkpoint",
        "final",
        "key_id",
    }
)


@dataclass(frozen=True, slots=True, kw_only=True)
class Manifest:
    """The signed fields of a session manifest."""

    ledger: str
    session: str
    first_index: int
    last_index: int
    first_seq: int
    last_seq: int
    count: int
    session_root: bytes
    checkpoint_size: int
    checkpoint_root: bytes
    final: bool
    key_id: str

    def __post_init__(self) -> None:
        validate_origin(self.ledger)
        validate_session_id(self.session)
        ints = (self.first_index, self.last_index, self.first_seq, self.last_seq, self.count)
        if any(isinstance(i, bool) or not isinstance(i, int) or i < 0 for i in ints):
            raise InvalidEntry("manifest indices and counts must be non-negative integers")
        if self.count != self.last_seq - self.first_seq + 1 or self.last_index < self.first_index:
            raise InvalidEntry("manifest count and ranges disagree")
        if len(self.session_root) != 32 or len(self.checkpoint_root) != 32:
            raise InvalidEntry("manifest roots must be 32 bytes")
        if self.checkpoint_size <= self.last_index:
            raise InvalidEntry("manifest checkpoint does not cover the session's last entry")
        if not _HEX64_RE.fullmatch(self.key_id):
            raise InvalidEntry("manifest key_id must be 64 hex characters")

    def fields(self) -> dict[str, Any]:
        return {
            "ledger": self.ledger,
            "session": self.session,
            "first_index": self.first_index,
            "last_index": self.last_index,
            "first_seq": self.first_seq,
            "last_seq": self.last_seq,
            "count": self.count,
            "session_root": self.session_root.hex(),
            "checkpoint": {
                "size": self.checkpoint_size,
                "root": base64.b64encode(self.checkpoint_root).decode(),
            },
            "final": self.final,
            "key_id": self.key_id,
        }

    def signing_input(self) -> bytes:
        """``MANIFEST_DOMAIN || RFC 8785(fields)``: the exact bytes signed."""
        return MANIFEST_DOMAIN + canonical_bytes(self.fields())

    def sign(self, signer: Signer) -> dict[str, Any]:
        """Return the manifest entry body: the fields plus ``signature`` (base64)."""
        body = self.fields()
        body["signature"] = base64.b64encode(signer.sign(self.signing_input())).decode()
        return body

    def verify(self, signature: bytes, key: PublicKey) -> bool:
        return key.verify(self.signing_input(), signature)


def parse_manifest_body(body: Mapping[str, Any]) -> tuple[Manifest, bytes]:
    """Split a manifest entry body into its fields and signature.

    Raises:
        MalformedData: If fields are missing, extra or of the wrong type.
    """
    if set(body) != _FIELDS | {"signature"}:
        raise MalformedData("manifest body does not have exactly the manifest fields")
    cp = body["checkpoint"]
    try:
        if not isinstance(cp, Mapping) or set(cp) != {"size", "root"}:
            raise MalformedData("manifest checkpoint must be {size, root}")
        signature = base64.b64decode(body["signature"], validate=True)
        manifest = Manifest(
            ledger=body["ledger"],
            session=body["session"],
            first_index=body["first_index"],
            last_index=body["last_index"],
            first_seq=body["first_seq"],
            last_seq=body["last_seq"],
            count=body["count"],
            session_root=bytes.fromhex(body["session_root"]),
            checkpoint_size=cp["size"],
            checkpoint_root=base64.b64decode(cp["root"], validate=True),
            final=body["final"],
            key_id=body["key_id"],
        )
    except (InputError, TypeError, ValueError, binascii.Error) as e:
        raise MalformedData(f"invalid manifest: {e}") from e
    if not isinstance(manifest.final, bool) or isinstance(manifest.checkpoint_size, bool):
        raise MalformedData("manifest final must be a boolean and checkpoint.size an integer")
    # Verify exactly what is stored: the parsed fields must re-encode to the stored ones
    # (lowercase hex, canonical base64), so the signature never covers a re-interpretation.
    if manifest.fields() != {k: v for k, v in body.items() if k != "signature"}:
        raise MalformedData("manifest fields are not in their canonical form")
    if base64.b64encode(signature).decode() != body["signature"] or len(signature) != 64:
        raise MalformedData("manifest signature is not 64 bytes in canonical base64")
    return manifest, signature
