"""The credential broker: short-lived, narrowly scoped credentials minted per action.

An adapter (it calls GitHub over HTTP). The broker picks a provider by the rule's
credential type. The GitHub App provider signs an app JWT (RS256, ``iat`` backdated 60 s
for clock skew, ``exp`` at most 10 minutes ahead) and exchanges it for an installation
access token narrowed to the matched rule's permissions and to the action's target
repository. The static provider hands out a secret configured on the server by name, for
tools whose service cannot mint per-action credentials (the rule still bounds its use).
A token never leaves this process in a log, an error or a ledger entry: what is recorded
is its type, scope, expiry and a fingerprint; the caller gets it only when the rule says
``deliver: caller``.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, Protocol

import aiohttp
import jwt

from aegisflow.errors import OperationalError, PolicyError
from aegisflow.policy.model import CredentialSpec

JWT_LIFETIME = timedelta(minutes=9)
JWT_BACKDATE = timedelta(seconds=60)


class CredentialError(OperationalError):
    """A credential could not be minted."""

    reference = "credential"


class CredentialRefused(PolicyError):
    """The provider refused the narrowing the rule asked for."""

    reference = "credential-refused"


@dataclass(frozen=True, slots=True)
class Credential:
    """A minted credential. ``secret`` is excluded from repr and from :meth:`grant`."""

    type: str
    scope: str
    expires_at: datetime
    secret: str = field(repr=False)

    @property
    def fingerprint(self) -> str:
        """SHA-256 of the secret, first 16 hex digits: enough to correlate, not to use."""
        return hashlib.sha256(self.secret.encode()).hexdigest()[:16]

    def expires_in(self, now: datetime) -> int:
        return max(0, int((self.expires_at - now).total_seconds()))

    def grant(self, now: datetime) -> dict[str, Any]:
        """What the ledger and the agent see: never the secret."""
        return {
            "type": self.type,
            "scope": self.scope,
            "expires_in": self.expires_in(now),
            "fingerprint": self.fingerprint,
        }


@dataclass(frozen=True, slots=True, kw_only=True)
class GitHubApp:
    """A GitHub App installation to mint tokens from."""

    app_id: str
    installation_id: int
    private_key_pem: bytes = field(repr=False)
    api_url: str = "https://api.github.com"

    def app_jwt(self, now: datetime) -> str:
        """The app's own JWT: RS256, ``iss`` the app id, at most 10 minutes valid."""
        claims = {
            "iat": int((now - JWT_BACKDATE).timestamp()),
            "exp": int((now + JWT_LIFETIME).timestamp()),
            "iss": self.app_id,
        }
        return jwt.encode(claims, self.private_key_pem, algorithm="RS256")

    async def mint(
        self,
        spec: CredentialSpec,
        repository: str,
        *,
        session: aiohttp.ClientSession,
        now: datetime | None = None,
    ) -> Credential:
        """An installation token limited to ``spec``'s permissions and ``repository``.

        Raises:
            CredentialRefused: If GitHub refuses the permissions or the repository.
            CredentialError: If GitHub cannot be reached or answers nonsense.
        """
        moment = now or datetime.now(UTC)
        name = repository.rsplit("/", 1)[-1]
        url = f"{self.api_url.rstrip('/')}/app/installations/{self.installation_id}/access_tokens"
        body = {"repositories": [name], "permissions": dict(spec.permissions)}
        headers = {
            "Authorization": f"Bearer {self.app_jwt(moment)}",
            "Accept": "application/vnd.github+json",
        }
        try:
            async with session.post(url, json=body, headers=headers) as response:
                status = response.status
                data = await response.json(content_type=None)
        except (aiohttp.ClientError, TimeoutError, ValueError) as e:
            raise CredentialError(
                f"cannot reach GitHub to mint a token: {type(e).__name__}"
            ) from None
        if status in (401, 403, 422):
            message = data.get("message") if isinstance(data, dict) else None
            raise CredentialRefused(f"GitHub refused the token request ({status}): {message}")
        if status != 201 or not isinstance(data, dict) or not isinstance(data.get("token"), str):
            raise CredentialError(f"GitHub answered {status} to the token request")
        try:
            expires_at = datetime.fromisoformat(str(data["expires_at"]).replace("Z", "+00:00"))
        except (KeyError, ValueError):
            raise CredentialError("GitHub's token has no valid expires_at") from None
        limit = moment + timedelta(seconds=spec.ttl)
        return Credential(
            type=spec.type,
            scope=spec.scope,
            expires_at=min(expires_at, limit),
            secret=data["token"],
        )


class Provider(Protocol):
    async def mint(self, spec: CredentialSpec, target: str, *, now: datetime) -> Credential: ...


@dataclass(frozen=True, slots=True)
class GitHubProvider:
    """``github_app_jwt`` credentials from one app installation, over one HTTP session."""

    app: GitHubApp
    session: aiohttp.ClientSession

    async def mint(self, spec: CredentialSpec, target: str, *, now: datetime) -> Credential:
        return await self.app.mint(spec, target, session=self.session, now=now)


@dataclass(frozen=True, slots=True)
class StaticProvider:
    """``static`` credentials: secrets configured on the server, by name."""

    secrets: Mapping[str, str] = field(repr=False)

    async def mint(self, spec: CredentialSpec, target: str, *, now: datetime) -> Credential:
        secret = self.secrets.get(spec.name or "")
        if secret is None:
            raise CredentialError(f"no static credential named {spec.name!r} is configured")
        return Credential(
            type=spec.type,
            scope=spec.scope,
            expires_at=now + timedelta(seconds=spec.ttl),
            secret=secret,
        )


@dataclass(slots=True)
class Broker:
    """Mints the credential a rule names with the provider for its type."""

    providers: dict[str, Provider] = field(default_factory=dict)

    async def mint(self, spec: CredentialSpec, target: str, *, now: datetime) -> Credential:
        """Raises:
        CredentialError: If no provider for the type is configured, or it fails.
        CredentialRefused: If the provider refuses the narrowing.
        """
        provider = self.providers.get(spec.type)
        if provider is None:
            raise CredentialError(f"no {spec.type} provider is configured on this service")
        return await provider.mint(spec, target, now=now)
