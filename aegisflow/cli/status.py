"""Exit codes of ``aegisctl`` and ``aegisflow``, and the one place errors map to them."""

from __future__ import annotations

from enum import IntEnum

from aegisflow.errors import AegisError, InputError, IntegrityError, PolicyError


class Exit(IntEnum):
    SUCCESS = 0
    ERROR = 1
    """Operational failure: disk, git, locks, missing files or keys."""
    USAGE = 2
    """Bad command line (typer/click)."""
    VERIFY_FAILED = 3
    """Verification ran and found problems."""
    INVALID_INPUT = 4
    INTEGRITY = 5
    """Data did not match what was signed (outside a verification report)."""
    POLICY = 6


def exit_code_for(error: AegisError) -> Exit:
    if isinstance(error, InputError):
        return Exit.INVALID_INPUT
    if isinstance(error, IntegrityError):
        return Exit.INTEGRITY
    if isinstance(error, PolicyError):
        return Exit.POLICY
    return Exit.ERROR
