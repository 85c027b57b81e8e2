"""Console sign-ins: an API key exchanged for a session cookie, and the CSRF token with it.

The cookie holds a random token; the service keeps only its SHA-256, so neither a memory
dump nor a log line can be replayed as a cookie. Sessions expire (8 hours), end on sign
out, and are not kept across a restart (everyone signs in again).
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass

from aegisflow.approvals import Principal

COOKIE = "aegisflow_console"
LOGIN_COOKIE = "aegisflow_login"
"""Holds the sign-in form's CSRF token (double submit) before there is a session."""
TTL = 8 * 3600.0
MAX_LOGINS = 10_000
CONSOLE_ROLES = ("reviewer", "auditor", "admin")


@dataclass(frozen=True, slots=True)
class Login:
    principal: Principal
    csrf: str
    expires: float

    @property
    def may_decide(self) -> bool:
        return self.principal.has("reviewer", "admin")


class Logins:
    """Signed-in console sessions by the digest of their cookie token."""

    def __init__(self, *, ttl: float = TTL, clock: Callable[[], float] = time.monotonic) -> None:
        self.ttl = ttl
        self._clock = clock
        self._by_digest: dict[str, Login] = {}

    def start(self, principal: Principal) -> tuple[str, Login]:
        """A new session for ``principal``: the cookie token and the session."""
        self._prune()
        token = secrets.token_urlsafe(32)
        login = Login(principal, secrets.token_urlsafe(32), self._clock() + self.ttl)
        self._by_digest[_digest(token)] = login
        return token, login

    def get(self, token: str | None) -> Login | None:
        if not token or len(token) > 128:
            return None
        login = self._by_digest.get(_digest(token))
        if login is None or login.expires <= self._clock():
            return None
        return login

    def end(self, token: str | None) -> None:
        if token:
            self._by_digest.pop(_digest(token), None)

    def _prune(self) -> None:
        now = self._clock()
        for key in [k for k, v in self._by_digest.items() if v.expires <= now]:
            del self._by_digest[key]
        while len(self._by_digest) >= MAX_LOGINS:  # oldest first: dicts keep insertion order
            del self._by_digest[next(iter(self._by_digest))]


def same_token(given: object, expected: str) -> bool:
    """Constant-time comparison of a submitted CSRF token with the expected one."""
    return isinstance(given, str) and hmac.compare_digest(given.encode(), expected.encode())


def _digest(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()
