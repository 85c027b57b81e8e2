"""API keys: who is calling and in which roles.

Keys are stored as SHA-256 hashes (a key is a high-entropy bearer secret, so a plain
hash is the right verifier) and compared in constant time. The key file is JSON:
``{"keys": [{"sha256": "<hex>", "principal": "alice", "roles": ["reviewer"]}]}``.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import re
import secrets
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from aegisflow.approvals import Principal
from aegisflow.errors import InputError, OperationalError

ROLES = frozenset({"agent", "reviewer", "admin", "auditor"})
_HEX64 = re.compile(r"[0-9a-f]{64}")
_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._@-]{0,63}")


class Unauthenticated(InputError):
    reference = "unauthenticated"


def key_hash(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()


def new_key() -> str:
    return "af_" + secrets.token_urlsafe(32)


@dataclass(frozen=True, slots=True)
class KeyRecord:
    digest: str
    principal: Principal


class ApiKeys:
    """The keys a server accepts."""

    def __init__(self, records: Iterable[KeyRecord]) -> None:
        self._records = tuple(records)

    def principal(self, name: str) -> Principal | None:
        """The principal called ``name`` with the roles of all its keys (None if it has none).

        For channels that authenticate people themselves (Slack) and map them to a
        principal: the roles still come from the keys file.
        """
        roles = frozenset(
            r for k in self._records if k.principal.name == name for r in k.principal.roles
        )
        return Principal(name=name, roles=roles) if roles else None

    def authenticate(self, key: str | None) -> Principal:
        """The principal of ``key``.

        Raises:
            Unauthenticated: If the key is missing or unknown.
        """
        if not key:
            raise Unauthenticated("missing X-API-Key header")
        digest = key_hash(key)
        found: Principal | None = None
        for record in self._records:  # every record is compared: no early exit on a match
            if hmac.compare_digest(record.digest, digest):
                found = record.principal
        if found is None:
            raise Unauthenticated("unknown API key")
        return found

    @classmethod
    def from_json(cls, text: str, *, source: str = "<keys>") -> ApiKeys:
        """Parse the key file.

        Raises:
            OperationalError: If the file is malformed.
        """
        try:
            data = json.loads(text)
            records = [
                KeyRecord(item["sha256"], _principal(item["principal"], item["roles"]))
                for item in data["keys"]
            ]
        except (ValueError, KeyError, TypeError) as e:
            raise OperationalError(f"{source}: not a valid API key file ({e})") from None
        for record in records:
            if not _HEX64.fullmatch(record.digest):
                raise OperationalError(f"{source}: sha256 must be 64 lower-case hex digits")
        return cls(records)

    @classmethod
    def load(cls, path: Path) -> ApiKeys:
        try:
            return cls.from_json(path.read_text(encoding="utf-8"), source=str(path))
        except OSError as e:
            raise OperationalError(f"cannot read API keys {path}: {e.strerror}") from e


def _principal(name: object, roles: object) -> Principal:
    if not isinstance(name, str) or not _NAME.fullmatch(name):
        raise ValueError(f"principal {name!r} is not a valid name")
    if not isinstance(roles, list) or not roles or not set(roles) <= ROLES:
        raise ValueError(f"roles must be a non-empty list of {', '.join(sorted(ROLES))}")
    return Principal(name=name, roles=frozenset(roles))


def add_key(path: Path, key: str, principal: str, roles: list[str]) -> None:
    """Add ``key`` (stored hashed) for ``principal`` to the key file, creating it 0600.

    Raises:
        OperationalError: If the file exists but is malformed.
        InputError: If the principal or roles are invalid.
    """
    try:
        _principal(principal, roles)
    except ValueError as e:
        raise InputError(str(e)) from None
    data: dict[str, list[dict[str, object]]] = {"keys": []}
    if path.exists():
        ApiKeys.load(path)  # refuse to extend a malformed file
        data = json.loads(path.read_text(encoding="utf-8"))
    digest = key_hash(key)
    data["keys"] = [k for k in data["keys"] if k.get("sha256") != digest]
    data["keys"].append({"sha256": digest, "principal": principal, "roles": sorted(roles)})
    path.parent.mkdir(parents=True, exist_ok=True)
    path.touch(mode=0o600, exist_ok=True)
    path.write_text(json.dumps(data, indent=2) + "\n", encoding="utf-8")
