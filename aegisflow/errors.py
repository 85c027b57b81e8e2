"""The one error hierarchy of AegisFlow.

Every error raised on purpose derives from :class:`AegisError`. The subtrees say whose
fault it is, which is what adapters need to decide what to do:

* :class:`InputError`: the caller sent something we refuse (hostile session id,
  oversized entry, malformed file). Retrying the same input fails again.
* :class:`IntegrityError`: stored or received data is not what was signed (tampered
  ledger, corrupt bundle). Never retried, never silently repaired.
* :class:`PolicyError`: a policy refused the action or the policy itself is invalid.
* :class:`OperationalError`: the environment failed (disk, lock, missing git binary,
  missing key). May succeed later.

Each class has a short ``reference`` (stable, for logs, exit codes and HTTP bodies) and an
optional ``hint`` telling a human what to do next. One place maps them to HTTP status,
one to CLI exit codes.
"""

from __future__ import annotations

from typing import ClassVar


class AegisError(Exception):
    """Root of every error AegisFlow raises on purpose."""

    reference: ClassVar[str] = "aegis-error"

    def __init__(self, message: str, *, hint: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.hint = hint

    def __str__(self) -> str:
        return self.message


class InputError(AegisError):
    """The caller supplied input that is refused as it stands."""

    reference = "invalid-input"


class IntegrityError(AegisError):
    """Data does not match what was signed or hashed."""

    reference = "integrity"


class PolicyError(AegisError):
    """A policy refused the action, or a policy file is invalid."""

    reference = "policy"


class OperationalError(AegisError):
    """The environment failed: disk, locks, subprocesses, missing files."""

    reference = "operational"


# -- input ---------------------------------------------------------------------------


class InvalidSessionId(InputError):
    reference = "invalid-session-id"


class InvalidEntry(InputError):
    reference = "invalid-entry"


class EntryTooLarge(InvalidEntry):
    reference = "entry-too-large"


class SessionClosed(InputError):
    reference = "session-closed"


class UnknownSession(InputError):
    reference = "session-unknown"


# -- keys ----------------------------------------------------------------------------


class KeyMaterialError(OperationalError):
    """A key file is missing, unreadable, of the wrong type or has unsafe permissions."""

    reference = "key-material"


# -- ledger --------------------------------------------------------------------------


class NotALedger(OperationalError):
    """The path is not an AegisFlow evidence repository."""

    reference = "not-a-ledger"


class LedgerLocked(OperationalError):
    """Another process holds the single-writer lock."""

    reference = "ledger-locked"


class LedgerUnavailable(OperationalError):
    """The writer stopped after a failed durable write; reopen to recover."""

    reference = "ledger-unavailable"


class MalformedData(IntegrityError):
    """Stored or received bytes do not parse as the format they claim to be."""

    reference = "malformed"


class SignatureError(IntegrityError):
    """A signature does not verify against the trusted key."""

    reference = "bad-signature"


class BundleError(IntegrityError):
    """A bundle is truncated, corrupt or not an AegisFlow export."""

    reference = "bad-bundle"


class ObjectMissing(IntegrityError):
    """A git object the ledger refers to is not in the repository."""

    reference = "object-missing"


def first_line(error: BaseException, limit: int = 200) -> str:
    """The first line of ``error``'s message, shortened: for wrapping third-party errors."""
    lines = str(error).strip().splitlines()
    return lines[0][:limit] if lines else type(error).__name__
