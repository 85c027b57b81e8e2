"""Canonical JSON (RFC 8785) and the hash helpers built on it.

Pure: no I/O. Signed data never contains floats: JSON numbers in signed structures are
integers within the I-JSON safe range, so every implementation agrees on their bytes.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from typing import Any

import rfc8785

from aegisflow.errors import InvalidEntry

MAX_SAFE_INT = 2**53 - 1
MAX_DEPTH = 32


def check_signable(value: Any, *, path: str = "$", depth: int = 0) -> None:
    """Reject values that have no single canonical encoding.

    Args:
        value: A JSON-like value (dict, list, str, int, bool, None).
        path: Where ``value`` sits, for the error message.
        depth: Current nesting depth.

    Raises:
        InvalidEntry: On floats, integers outside +-(2**53 - 1), non-string keys,
            unpaired surrogates, nesting deeper than ``MAX_DEPTH`` or non-JSON types.
    """
    if depth > MAX_DEPTH:
        raise InvalidEntry(f"{path}: nesting deeper than {MAX_DEPTH} levels")
    if value is None or isinstance(value, bool):
        return
    if isinstance(value, int):
        if not -MAX_SAFE_INT <= value <= MAX_SAFE_INT:
            raise InvalidEntry(f"{path}: integer {value} is outside the I-JSON range")
        return
    if isinstance(value, float):
        raise InvalidEntry(
            f"{path}: floats are not allowed in signed data",
            hint="send the number as a string or as an integer in fixed units",
        )
    if isinstance(value, str):
        _check_text(value, path)
        return
    if isinstance(value, Mapping):
        for key, item in value.items():
            if not isinstance(key, str):
                raise InvalidEntry(f"{path}: object key {key!r} is not a string")
            _check_text(key, path)
            check_signable(item, path=f"{path}.{key}", depth=depth + 1)
        return
    if isinstance(value, list | tuple):
        for i, item in enumerate(value):
            check_signable(item, path=f"{path}[{i}]", depth=depth + 1)
        return
    raise InvalidEntry(f"{path}: {type(value).__name__} is not a JSON value")


def _check_text(text: str, path: str) -> None:
    try:
        text.encode("utf-8")
    except UnicodeEncodeError as e:
        raise InvalidEntry(f"{path}: string is not valid Unicode (lone surrogate)") from e


def canonical_bytes(value: Any) -> bytes:
    """Return the RFC 8785 encoding of ``value`` after :func:`check_signable`.

    Raises:
        InvalidEntry: If ``value`` cannot be encoded canonically.
    """
    check_signable(value)
    # For float-free values json.dumps with sorted keys is RFC 8785, except that it
    # sorts keys by code point where RFC 8785 sorts by UTF-16 unit; the two orders
    # differ only around characters outside the BMP (4-byte UTF-8, lead byte >= 0xF0).
    fast = json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()
    if fast.isascii() or max(fast) < 0xF0:
        return fast
    try:
        return bytes(rfc8785.dumps(value))
    except (rfc8785.CanonicalizationError, TypeError, ValueError) as e:
        raise InvalidEntry(f"cannot canonicalize value: {e}") from e


def sha256(data: bytes) -> bytes:
    return hashlib.sha256(data).digest()


def sha256_hex(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()
